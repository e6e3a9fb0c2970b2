/**
 * Idempotency store throughput: claim + complete per operation, against the same number of
 * raw round trips (`SET NX PX` + `SET PX`) in the same run, on the same Redis.
 *
 *   tsx bench/idempotency.ts            # starts its own redis-server on a free port
 *   REDIS_PORT=6379 tsx bench/idempotency.ts
 *
 * Prints a markdown table. Rounds alternate between cases so that drift in machine load
 * hits every case alike; each cell is the median round. Bounded to well under a minute.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { idempotency } from '../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../src/stores/memory.js';
import type { IdempotencyStore } from '../src/stores/store.js';
import { RedisStore } from '../src/redis.js';
import { freePort, waitForPort } from '../test/support/net.js';

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 400);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CONCURRENCY = [1, 64];
const TTL = 10_000;
const RECORD = { outcome: 'value' as const, body: '{"id":"ch_1","amount":1250,"currency":"EUR"}' };

interface Case {
  name: string;
  client: string;
  /** Raw round trips this case is compared with (same client), if any. */
  reference?: string;
  op: (key: string) => Promise<unknown>;
}

interface Sample {
  opsPerSec: number;
  p50: number;
  p99: number;
}

/** `concurrency` loops issue operations on fresh keys for ROUND_MS; returns throughput and latency. */
async function measure(c: Case, tag: string, concurrency: number, round: number): Promise<Sample> {
  const latencies: number[] = [];
  let ops = 0;
  const start = performance.now();
  const stopAt = start + ROUND_MS;
  const loops = Array.from({ length: concurrency }, async (_, w) => {
    for (let i = 0; ; i++) {
      const t0 = performance.now();
      if (t0 >= stopAt) return;
      await c.op(`${tag}:r${round}:c${concurrency}:w${w}:${i}`);
      latencies.push(performance.now() - t0);
      ops++;
    }
  });
  await Promise.all(loops);
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! * 1000;
  return { opsPerSec: (ops / elapsed) * 1000, p50: at(0.5), p99: at(0.99) };
}

function storeOp(store: IdempotencyStore): (key: string) => Promise<unknown> {
  return async (key) => {
    const r = await store.claim(key, 'fp', 30_000);
    if (r.state !== 'claimed') throw new Error(`bench: ${key} was ${r.state}`);
    return store.complete(key, r.token, RECORD, TTL);
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

let server: ChildProcess | undefined;

async function main(): Promise<void> {
  let port = Number(process.env.REDIS_PORT ?? 0);
  if (!port) {
    port = await freePort();
    server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    await waitForPort(port, 10_000);
  }
  const io = new Redis({ port, host: '127.0.0.1' });
  const nr = createClient({ socket: { port, host: '127.0.0.1' } });
  nr.on('error', () => {});
  await nr.connect();
  const prefix = `bench:${Date.now()}`;
  const ioStore = new RedisStore({ client: io, prefix });
  const nrStore = new RedisStore({ client: nr, prefix });
  const memory = new MemoryStore({ maxEntries: 2_000_000 });
  const viaPolicy = idempotency({ store: ioStore });
  const payload = () => ({ id: 'ch_1', amount: 1250, currency: 'EUR' });

  const cases: Case[] = [
    { name: 'MemoryStore claim+complete', client: '-', op: storeOp(memory) },
    {
      name: 'raw SET NX PX + SET PX',
      client: 'ioredis',
      op: async (key) => {
        const k = `${prefix}:raw:${key}`;
        await io.set(k, 'token', 'PX', 30_000, 'NX');
        return io.set(k, RECORD.body, 'PX', TTL);
      },
    },
    {
      name: 'RedisStore claim+complete',
      client: 'ioredis',
      reference: 'ioredis',
      op: storeOp(ioStore),
    },
    {
      name: 'idempotency().execute on RedisStore',
      client: 'ioredis',
      reference: 'ioredis',
      op: (key) => viaPolicy.execute(payload, { idempotencyKey: key }),
    },
    {
      name: 'raw SET NX PX + SET PX',
      client: 'node-redis',
      op: async (key) => {
        const k = `${prefix}:raw:${key}`;
        await nr.set(k, 'token', { condition: 'NX', expiration: { type: 'PX', value: 30_000 } });
        return nr.set(k, RECORD.body, { expiration: { type: 'PX', value: TTL } });
      },
    },
    {
      name: 'RedisStore claim+complete',
      client: 'node-redis',
      reference: 'node-redis',
      op: storeOp(nrStore),
    },
  ];

  // Warm-up: load the scripts, open the connections, JIT the paths.
  for (const c of cases)
    for (let i = 0; i < 200; i++) await c.op(`warm:${c.name}:${c.client}:${i}`);

  const samples = new Map<string, Sample[]>();
  const ratios = new Map<string, number[]>();
  const id = (c: Case, n: number) => `${c.name}|${c.client}|${n}`;
  const rawOf = (c: Case) =>
    cases.find((r) => r.name.startsWith('raw') && r.client === c.reference)!;
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of CONCURRENCY) {
      const thisRound = new Map<Case, Sample>();
      for (const [i, c] of cases.entries()) {
        // A growing keyspace makes Redis slower (rehashing, expiry): on our own server every
        // case starts from an empty one; on a given REDIS_PORT keys just expire.
        if (server !== undefined) await io.flushall();
        const s = await measure(c, `case${i}`, n, round);
        thisRound.set(c, s);
        samples.set(id(c, n), [...(samples.get(id(c, n)) ?? []), s]);
        // Paired with the raw run of the same round, a few hundred ms apart: load drift cancels.
        if (c.reference !== undefined) {
          const raw = thisRound.get(rawOf(c))!;
          ratios.set(id(c, n), [...(ratios.get(id(c, n)) ?? []), s.opsPerSec / raw.opsPerSec]);
        }
      }
    }
  }

  const rows: string[] = [
    '| operation | client | callers | ops/s | p50 µs | p99 µs | vs raw round trips: median of paired rounds (range) |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const n of CONCURRENCY) {
    for (const c of cases) {
      const s = samples.get(id(c, n))!;
      const r = ratios.get(id(c, n));
      const pct = (x: number) => Math.round(x * 100);
      const vs =
        r === undefined
          ? ''
          : `${pct(median(r))} % (${pct(Math.min(...r))}–${pct(Math.max(...r))})`;
      rows.push(
        `| ${c.name} | ${c.client} | ${n} | ${Math.round(median(s.map((x) => x.opsPerSec))).toLocaleString('en')} | ` +
          `${median(s.map((x) => x.p50)).toFixed(0)} | ${median(s.map((x) => x.p99)).toFixed(0)} | ${vs} |`,
      );
    }
  }
  console.log(
    `\nIdempotency stores: claim + complete per operation (${ROUNDS} rounds × ${ROUND_MS} ms, median)\n`,
  );
  console.log(rows.join('\n'));
  console.log(
    `\nnode ${process.version}, redis on 127.0.0.1:${port}${server ? ' (started by the bench)' : ''}`,
  );

  io.disconnect();
  nr.destroy();
}

try {
  await main();
} finally {
  // The server is ours: stop it by PID even when the bench failed.
  if (server?.pid !== undefined && server.exitCode === null) process.kill(server.pid, 'SIGTERM');
}
