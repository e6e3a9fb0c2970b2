/**
 * Rate limits, two questions (run with `npx tsx bench/rate-limit.ts`; BENCH_ROUNDS, BENCH_MS):
 * 1. Acquire throughput of RedisRateLimitStore vs rate-limiter-flexible's RateLimiterRedis,
 *    same ioredis client, same throwaway redis-server on 127.0.0.1, rounds interleaved,
 *    with Redis round trips counted from the server's own command counter.
 * 2. The cost a local `rateLimit()` adds to a call, vs cockatiel's bulkhead, in this run.
 * Writes bench/results/rate-limit.md.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cockatiel from 'cockatiel';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { rateLimit } from '../src/policies/rate-limit/rate-limit.js';
import { gcraLimit } from '../src/policies/rate-limit/gcra.js';
import { RedisRateLimitStore } from '../src/redis.js';
import { freePort, waitForPort } from '../test/support/net.js';
import { bareCall, measure, type BenchResult } from './harness.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RUN_MS = Number(process.env.BENCH_MS ?? 1500);
const IN_FLIGHT = 50;

/** Counts the commands a client sends: each is one round trip (scripts' inner calls are not). */
function countRoundTrips(client: Redis): { readonly sent: number } {
  const counter = { sent: 0 };
  const send = client.sendCommand.bind(client);
  client.sendCommand = ((...args: Parameters<Redis['sendCommand']>) => {
    counter.sent++;
    return send(...args);
  }) as Redis['sendCommand'];
  return counter;
}

/** Keeps `IN_FLIGHT` acquires going for `RUN_MS`; returns ops/s and round trips per op. */
async function throughput(
  trips: { readonly sent: number },
  acquire: () => Promise<unknown>,
): Promise<{ opsPerSec: number; commandsPerOp: number }> {
  const before = trips.sent;
  let ops = 0;
  const start = performance.now();
  const until = start + RUN_MS;
  const worker = async () => {
    while (performance.now() < until) {
      await acquire();
      ops++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - start) / 1000;
  return { opsPerSec: ops / seconds, commandsPerOp: (trips.sent - before) / ops };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function redisBench(): Promise<string[]> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  try {
    await waitForPort(port, 10_000);
    const client = new Redis({ port, host: '127.0.0.1' });
    await client.ping();
    const trips = countRoundTrips(client);
    // Limits high enough that every acquire is granted: this measures the acquire itself.
    const store = new RedisRateLimitStore({ client, prefix: 'bench' });
    const limit = gcraLimit(1_000_000, 1000, 0);
    const viaPolicy = rateLimit({ name: 'policy', rate: 1_000_000, store });
    const rlf = new RateLimiterRedis({
      storeClient: client,
      points: 1_000_000_000,
      duration: 1,
      keyPrefix: 'bench-rlf',
    });
    const contenders: Array<[string, () => Promise<unknown>]> = [
      ['bulwark RedisRateLimitStore.acquire', () => store.acquire('k', limit, 0, 0)],
      ['bulwark rateLimit({ store }).execute', () => viaPolicy.execute(bareCall)],
      ['rate-limiter-flexible RateLimiterRedis.consume', () => rlf.consume('k')],
    ];
    for (const [, run] of contenders) for (let i = 0; i < 200; i++) await run(); // warm-up
    const results = new Map<string, { ops: number[]; cmds: number[] }>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of contenders) {
        const r = await throughput(trips, run);
        const entry = results.get(name) ?? { ops: [], cmds: [] };
        entry.ops.push(r.opsPerSec);
        entry.cmds.push(r.commandsPerOp);
        results.set(name, entry);
      }
    }
    // Head to head: both at once on the same client, half the calls in flight each. The
    // machine's noise then hits both alike, and the ratio of their counts is the inverse
    // ratio of their costs.
    const ratios: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const counts = [0, 0];
      const until = performance.now() + RUN_MS;
      const side = (i: number, run: () => Promise<unknown>) => async () => {
        while (performance.now() < until) {
          await run();
          counts[i]!++;
        }
      };
      await Promise.all([
        ...Array.from({ length: IN_FLIGHT / 2 }, side(0, contenders[0]![1])),
        ...Array.from({ length: IN_FLIGHT / 2 }, side(1, contenders[2]![1])),
      ]);
      ratios.push(counts[0]! / counts[1]!);
    }
    const rlfOps = median(results.get(contenders[2]![0])!.ops);
    const lines = [
      `Redis acquire throughput (${IN_FLIGHT} in flight, one ioredis client, median of ${ROUNDS} interleaved ${RUN_MS} ms rounds):`,
      '',
      '| case | acquires/s | × rate-limiter-flexible | round trips per acquire |',
      '|---|---:|---:|---:|',
    ];
    for (const [name] of contenders) {
      const r = results.get(name)!;
      lines.push(
        `| ${name} | ${median(r.ops).toFixed(0)} | ${(median(r.ops) / rlfOps).toFixed(2)} | ${median(r.cmds).toFixed(2)} |`,
      );
    }
    lines.push(
      '',
      `Head to head (both at once on the one client, ${IN_FLIGHT / 2} in flight each; median of ${ROUNDS} rounds): ` +
        `RedisRateLimitStore completes ${median(ratios).toFixed(2)}× as many acquires as RateLimiterRedis ` +
        `(rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')}).`,
    );
    client.disconnect();
    return lines;
  } finally {
    server.kill('SIGTERM');
  }
}

async function localBench(): Promise<string[]> {
  const open = rateLimit({ rate: 1e12 });
  const full = rateLimit({ rate: 1, per: '1h' });
  await full.execute(bareCall);
  const ck = cockatiel.bulkhead(10, 0);
  const cases = [
    { group: 'local', name: 'bare `await fn()`', run: bareCall },
    { group: 'local', name: 'bulwark rateLimit (admitted)', run: () => open.execute(bareCall) },
    {
      group: 'local',
      name: 'bulwark rateLimit (refused, RateLimitError)',
      run: () => full.execute(bareCall).catch(() => undefined),
    },
    { group: 'local', name: 'cockatiel bulkhead (admitted)', run: () => ck.execute(bareCall) },
  ];
  const samples = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const r: BenchResult = await measure(c);
      samples.set(c.name, [...(samples.get(c.name) ?? []), r.nsPerCall]);
    }
  }
  const bare = median(samples.get(cases[0]!.name)!);
  const lines = [
    `Local cost per call (median of ${ROUNDS} interleaved rounds; bare \`await fn()\` ${bare.toFixed(0)} ns):`,
    '',
    '| case | ns/call | added ns |',
    '|---|---:|---:|',
  ];
  for (const c of cases.slice(1)) {
    const ns = median(samples.get(c.name)!);
    lines.push(`| ${c.name} | ${ns.toFixed(0)} | ${(ns - bare).toFixed(0)} |`);
  }
  return lines;
}

const lines = [...(await redisBench()), '', ...(await localBench())];
const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'rate-limit.md');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `# Rate limit benchmark\n\n${text}`);
