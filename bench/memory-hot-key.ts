/**
 * MemoryStore hot keys: replaying one key while the store holds many entries. Each round
 * times a fixed number of replays of one hot key (store.claim, and policy.execute) at
 * 1,000 and 100,000 stored entries; rounds alternate between sizes, each cell is the
 * median round. Bounded to a few seconds.
 *
 *   tsx bench/memory-hot-key.ts
 */
import { idempotency } from '../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../src/stores/memory.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const OPS = Number(process.env.BENCH_OPS ?? 50_000);
const SIZES = [1_000, 100_000];
const BODY = '{"id":"ch_1","amount":1250,"currency":"EUR"}';

async function filled(entries: number): Promise<MemoryStore> {
  const store = new MemoryStore({ maxEntries: entries * 2 });
  for (let i = 0; i < entries; i++) {
    const c = await store.claim(`k${i}`, 'fp', 60_000);
    if (c.state === 'claimed')
      await store.complete(`k${i}`, c.token, { outcome: 'value', body: BODY }, 3_600_000);
  }
  return store;
}

async function main(): Promise<void> {
  const stores = new Map<number, MemoryStore>();
  for (const n of SIZES) stores.set(n, await filled(n));
  const claimNs = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  const replayNs = new Map<number, number[]>(SIZES.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of SIZES) {
      const store = stores.get(n)!;
      const hot = `k${n >> 1}`;
      let t0 = performance.now();
      for (let i = 0; i < OPS; i++) await store.claim(hot, 'fp', 60_000);
      claimNs.get(n)!.push(((performance.now() - t0) / OPS) * 1e6);
      const policy = idempotency({ store });
      const fn = () => 'never runs';
      const opts = { idempotencyKey: hot, fingerprint: 'fp' };
      t0 = performance.now();
      for (let i = 0; i < OPS; i++) await policy.execute(fn, opts);
      replayNs.get(n)!.push(((performance.now() - t0) / OPS) * 1e6);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  console.log('| entries | store.claim (hot key) | policy.execute replay |');
  console.log('|---:|---:|---:|');
  for (const n of SIZES) {
    console.log(
      `| ${n.toLocaleString('en')} | ${(median(claimNs.get(n)!) / 1000).toFixed(2)} µs | ${(median(replayNs.get(n)!) / 1000).toFixed(2)} µs |`,
    );
  }
}

void main();
