// MemoryStore bounded by bytes as well as entries (issue 12 item 5), and hot-key hits that
// do not churn its map (issue 14 item 6).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdempotencyStoreError } from '../../src/index.js';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

const MIB = 1024 * 1024;
/** One 1 MiB body shared by every record: the store counts it per record, the heap once. */
const ONE_MIB = 'x'.repeat(MIB);

async function put(store: MemoryStore, key: string, body: string): Promise<void> {
  const c = await store.claim(key, 'fp', 60_000);
  if (c.state !== 'claimed') throw new Error(`${key}: ${c.state}`);
  await store.complete(key, c.token, { outcome: 'value', body }, 3_600_000);
}

describe('MemoryStore maxBytes', () => {
  it('defaults to 64 MiB and is validated', () => {
    expect(new MemoryStore().maxBytes).toBe(64 * MIB);
    expect(() => new MemoryStore({ maxBytes: 0 })).toThrow(/MemoryStore\.maxBytes/);
  });

  it('keeps 1 MiB responses under the default bound by evicting the oldest ones', async () => {
    const store = new MemoryStore({ clock: new VirtualClock() });
    for (let i = 0; i < 500; i++) await put(store, `k${i}`, ONE_MIB);
    expect(store.bytes).toBeLessThanOrEqual(store.maxBytes);
    expect(store.size).toBeLessThan(64);
    expect((await store.get('k499'))?.state).toBe('completed');
    expect(await store.get('k0')).toBeUndefined();
  });

  it('refuses an outcome larger than maxBytes and keeps the key held', async () => {
    const store = new MemoryStore({ maxBytes: 1000, clock: new VirtualClock() });
    const c = await store.claim('big', 'fp', 60_000);
    if (c.state !== 'claimed') throw new Error('not claimed');
    const refused = store.complete('big', c.token, { outcome: 'value', body: 'y'.repeat(2000) }, 1);
    await expect(refused).rejects.toBeInstanceOf(IdempotencyStoreError);
    await expect(refused).rejects.toThrow(/exceeds maxBytes \(1000\)/);
    expect((await store.get('big'))?.state).toBe('in-progress');
  });

  it('through the policy: an outcome too large to keep fails the call, and fn never runs again', async () => {
    const clock = new VirtualClock();
    const store = new MemoryStore({ maxBytes: 1000, clock });
    const policy = idempotency({ store, clock });
    let runs = 0;
    const p = policy.execute(() => (runs++, 'y'.repeat(2000)), { idempotencyKey: 'k' });
    p.catch(() => undefined);
    await clock.advance(1_000);
    await expect(p).rejects.toBeInstanceOf(IdempotencyStoreError);
    await policy.execute(() => runs++, { idempotencyKey: 'k' }).catch(() => undefined);
    expect(runs).toBe(1);
  });

  it('property: bytes always equal the live records and never exceed maxBytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 400 })), {
          maxLength: 60,
        }),
        async (ops) => {
          const store = new MemoryStore({
            maxBytes: 2_000,
            maxEntries: 15,
            clock: new VirtualClock(),
          });
          for (const [key, size] of ops) {
            const c = await store.claim(`k${key}`, 'fp', 60_000);
            if (c.state === 'completed') continue;
            if (c.state !== 'claimed') continue;
            await store.complete(
              `k${key}`,
              c.token,
              { outcome: 'value', body: 'z'.repeat(size) },
              1e6,
            );
            expect(store.bytes).toBeLessThanOrEqual(2_000);
          }
          let sum = 0;
          for (let i = 0; i <= 20; i++) {
            const e = await store.get(`k${i}`);
            if (e?.state === 'completed') sum += 100 + `:k${i}`.length + 2 + e.record.body.length;
          }
          expect(store.bytes).toBe(sum);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('MemoryStore hot keys', () => {
  it('a hit does not re-insert the record (no map churn), and LRU order still holds', async () => {
    const store = new MemoryStore({ maxEntries: 3, clock: new VirtualClock() });
    await put(store, 'a', '1');
    await put(store, 'b', '2');
    await put(store, 'c', '3');
    const done = (store as unknown as { done: Map<string, unknown> }).done;
    for (let i = 0; i < 5; i++)
      expect((await store.claim('a', 'fp', 1000)).state).toBe('completed');
    expect([...done.keys()]).toEqual([':a', ':b', ':c']);
    await put(store, 'd', '4');
    expect(await store.get('b')).toBeUndefined();
    expect([...done.keys()].sort()).toEqual([':a', ':c', ':d']);
  });
});

describe('MemoryStore eviction work', () => {
  it('moves at most a bounded number of recently used records per eviction', async () => {
    const store = new MemoryStore({ maxEntries: 1_000, clock: new VirtualClock() });
    for (let i = 0; i < 1_000; i++) await put(store, `k${i}`, 'v');
    // Every record used since it was placed: one eviction must not walk all of them.
    for (let i = 0; i < 1_000; i++) await store.claim(`k${i}`, 'fp', 1000);
    const done = (store as unknown as { done: Map<string, unknown> }).done;
    const before = [...done.keys()];
    await put(store, 'new', 'v');
    const after = [...done.keys()];
    expect(after).toHaveLength(1_000);
    // 16 records moved to the end, the 17th dropped.
    expect(after.slice(0, 10)).toEqual(before.slice(17, 27));
    expect(after).not.toContain(before[16]);
  });
});
