/**
 * Queue scenario: 10,000 BullMQ jobs flow while their HTTP dependency is down for 6 s in
 * the middle of the run. Plain BullMQ (attempts 5, exponential backoff 200 ms) against
 * bulwark's message handler (breaker, pause-while-open, deferral, Redis idempotency store,
 * dead-letter queue). Writes bench/results/queue.md, queue.json and queue.svg.
 *
 *   npm run bench:queue              # the full run (about two minutes)
 *   npm run bench:queue -- --quick   # 2,000 jobs, shorter timeline; writes nothing
 *
 * Everything runs on 127.0.0.1: a redis-server of its own on a free port, and the
 * dependency, a node:http server in this process that "crashes" (closes its socket and
 * every connection, so calls get ECONNREFUSED) and comes back on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { loadavg } from 'node:os';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { dependency } from '../src/index.js';
import { bullmqProcessor, messageHandler } from '../src/queue.js';
import { RedisStore } from '../src/redis.js';
import { freePort, waitForPort } from '../test/support/net.js';
import { chart } from './scenarios/svg.js';

const quick = process.argv.includes('--quick');
const JOBS = quick ? 2_000 : 10_000;
/** The timeline, in ms from the start of a run. */
const PRODUCE_MS = quick ? 6_000 : 45_000;
const OUTAGE = quick ? { from: 2_000, to: 5_000 } : { from: 20_000, to: 26_000 };
const CONCURRENCY = 20;
const SERVICE_MS = 2;
const BUCKET_MS = 250;
const DRAIN_LIMIT_MS = 120_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The dependency: POST /charge?key=… does the work once per call and counts it per key. */
class Dependency {
  readonly effects = new Map<string, number>();
  private server = http.createServer((req, res) => this.serve(req, res));
  private sockets = new Set<Socket>();
  port = 0;
  down = false;

  constructor() {
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const key = new URL(req.url!, 'http://x').searchParams.get('key') ?? '';
    setTimeout(() => {
      this.effects.set(key, (this.effects.get(key) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }, SERVICE_MS);
  }

  listen(port = 0): Promise<void> {
    return new Promise((resolve) =>
      this.server.listen(port, '127.0.0.1', () => {
        this.port = (this.server.address() as { port: number }).port;
        resolve();
      }),
    );
  }

  /** A crash: the listening socket closes and every open connection is destroyed. */
  crash(): void {
    this.down = true;
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }

  async recover(): Promise<void> {
    this.server = http.createServer((req, res) => this.serve(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await this.listen(this.port);
    this.down = false;
  }

  close(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
  }
}

interface Run {
  name: string;
  /** Jobs that ended failed (plain) or in the dead-letter queue (bulwark). */
  lost: number;
  completed: number;
  calls: number;
  callsInOutage: number;
  /** From the dependency's recovery to the moment every job has finished. */
  drainMs: number;
  /** Jobs whose handler ran to success more than once. */
  duplicates: number;
  /** Keys the server did the work for more than once (it does not deduplicate). */
  serverDuplicates: number;
  /** Jobs whose effect never happened. */
  missing: number;
  totalMs: number;
  completedPerBucket: number[];
  callsPerBucket: number[];
}

interface Variant {
  name: string;
  /** Adds `count` jobs numbered from `from`. */
  add(queue: Queue, from: number, count: number): Promise<unknown>;
  start(
    name: string,
    call: (key: string) => Promise<void>,
  ): Promise<{
    worker: Worker;
    lost(): Promise<number>;
    close(): Promise<void>;
  }>;
}

function connection(port: number) {
  return { host: '127.0.0.1', port, maxRetriesPerRequest: null };
}

function plainBullmq(redisPort: number): Variant {
  return {
    name: 'plain BullMQ (attempts 5, exponential 200 ms)',
    add: (queue, from, count) =>
      queue.addBulk(
        Array.from({ length: count }, (_, i) => ({
          name: 'charge',
          data: { n: from + i },
          opts: {
            jobId: `j${from + i}`,
            attempts: 5,
            backoff: { type: 'exponential', delay: 200 },
          },
        })),
      ),
    async start(name, call) {
      const worker = new Worker(name, (job: Job) => call(job.id!), {
        connection: connection(redisPort),
        concurrency: CONCURRENCY,
        drainDelay: 0.05,
      });
      worker.on('error', () => {});
      const queue = new Queue(name, { connection: connection(redisPort) });
      return {
        worker,
        lost: () => queue.getFailedCount(),
        close: async () => {
          await worker.close();
          await queue.close();
        },
      };
    },
  };
}

function withBulwark(redisPort: number, io: Redis): Variant {
  return {
    name: 'bulwark messageHandler + bullmqProcessor',
    add: (queue, from, count) =>
      queue.addBulk(
        Array.from({ length: count }, (_, i) => ({
          name: 'charge',
          data: { n: from + i },
          opts: { jobId: `j${from + i}` },
        })),
      ),
    async start(name, call) {
      const payments = dependency('payments', {
        timeout: '1s',
        retry: false,
        circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '1s' },
      });
      const handler = messageHandler(payments, (_job: unknown, ctx) => call(ctx.idempotencyKey), {
        maxDeliveries: 5,
        backoff: { initial: 200, multiplier: 2, max: 10_000, jitter: 'none' },
        store: new RedisStore({ client: io, prefix: `bench-queue:${name}` }),
      });
      const dead = new Queue(`${name}-dead`, { connection: connection(redisPort) });
      const processor = bullmqProcessor(handler, { deadLetterQueue: dead });
      const worker = new Worker(name, processor, {
        connection: connection(redisPort),
        concurrency: CONCURRENCY,
        drainDelay: 0.05,
      });
      worker.on('error', () => {});
      const attached = processor.attach(worker);
      return {
        worker,
        lost: () => dead.count(),
        close: async () => {
          attached.dispose();
          await worker.close();
          await dead.close();
        },
      };
    },
  };
}

async function runVariant(variant: Variant, redisPort: number, tag: string): Promise<Run> {
  const dep = new Dependency();
  await dep.listen();
  const name = `bench-queue-${tag}-${Date.now()}`;
  const queue = new Queue(name, { connection: connection(redisPort) });
  const buckets = Math.ceil(DRAIN_LIMIT_MS / BUCKET_MS);
  const callsPerBucket = new Array<number>(buckets).fill(0);
  const completedPerBucket = new Array<number>(buckets).fill(0);
  let t0 = 0;
  const bucket = () => Math.min(buckets - 1, Math.floor((performance.now() - t0) / BUCKET_MS));
  let calls = 0;
  let callsInOutage = 0;
  const successes = new Map<string, number>();
  const call = async (key: string): Promise<void> => {
    calls++;
    callsPerBucket[bucket()]!++;
    if (dep.down) callsInOutage++;
    const res = await fetch(`http://127.0.0.1:${dep.port}/charge?key=${key}`, { method: 'POST' });
    await res.arrayBuffer();
    if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
    successes.set(key, (successes.get(key) ?? 0) + 1);
  };
  const started = await variant.start(name, call);
  started.worker.on('completed', () => completedPerBucket[bucket()]!++);

  t0 = performance.now();
  const producer = (async () => {
    const ticks = Math.ceil(PRODUCE_MS / 100);
    let added = 0;
    for (let tick = 0; tick < ticks && added < JOBS; tick++) {
      const count = Math.min(JOBS - added, Math.ceil(JOBS / ticks));
      await variant.add(queue, added, count);
      added += count;
      const next = t0 + (tick + 1) * 100;
      await sleep(Math.max(0, next - performance.now()));
    }
  })();
  await sleep(OUTAGE.from);
  dep.crash();
  await sleep(OUTAGE.to - OUTAGE.from);
  await dep.recover();
  const recoveredAt = performance.now();
  await producer;

  let finishedAt = 0;
  const end = performance.now() + DRAIN_LIMIT_MS;
  for (;;) {
    const counts = await queue.getJobCounts('completed', 'failed');
    if ((counts.completed ?? 0) + (counts.failed ?? 0) >= JOBS) {
      finishedAt = performance.now();
      break;
    }
    if (performance.now() > end) throw new Error(`${variant.name}: not drained`);
    await sleep(20);
  }
  const lost = await started.lost();
  const completed = await queue.getCompletedCount();
  await started.close();
  await queue.obliterate({ force: true }).catch(() => {});
  await queue.close();
  dep.close();
  let duplicates = 0;
  let serverDuplicates = 0;
  let missing = 0;
  for (let n = 0; n < JOBS; n++) {
    const times = dep.effects.get(`j${n}`) ?? 0;
    if (times > 1) serverDuplicates++;
    if (times === 0) missing++;
    if ((successes.get(`j${n}`) ?? 0) > 1) duplicates++;
  }
  const used = Math.ceil((finishedAt - t0) / BUCKET_MS);
  return {
    name: variant.name,
    lost,
    completed,
    calls,
    callsInOutage,
    drainMs: finishedAt - recoveredAt,
    duplicates,
    serverDuplicates,
    missing,
    totalMs: finishedAt - t0,
    completedPerBucket: completedPerBucket.slice(0, used),
    callsPerBucket: callsPerBucket.slice(0, used),
  };
}

function report(runs: Run[], meta: { startedAt: string; load: number[]; loadEnd: number[] }) {
  const [plain, ours] = runs as [Run, Run];
  const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(2)} %`);
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const rows = runs.map(
    (r) =>
      `| ${r.name} | ${r.lost} | ${r.missing} | ${r.calls} | ${r.callsInOutage} | ${s(r.drainMs)} | ${r.duplicates} | ${r.serverDuplicates} | ${s(r.totalMs)} |`,
  );
  const verdicts = [
    [`bulwark dead-letters 0 jobs because of the outage`, ours.lost === 0],
    [
      `bulwark sends ≤ 1 % of plain BullMQ's calls into the outage (${ours.callsInOutage} vs ${plain.callsInOutage}: ${pct(ours.callsInOutage, plain.callsInOutage)})`,
      ours.callsInOutage <= plain.callsInOutage / 100,
    ],
    [`no job's handler ran to success twice under bulwark`, ours.duplicates === 0],
    [
      `bulwark drains within 2× plain BullMQ's time (${s(ours.drainMs)} vs ${s(plain.drainMs)})`,
      ours.drainMs <= 2 * Math.max(plain.drainMs, 1),
    ],
  ] as const;
  const md = [
    '# Queue scenario: plain BullMQ vs bulwark during a 6 s outage',
    '',
    'Generated by `npm run bench:queue` (bench/queue.ts); do not edit by hand. One run, not a mean of several, on a machine with 2 cores shared with other jobs.',
    '',
    `${JOBS.toLocaleString('en')} jobs are added at an even rate over ${PRODUCE_MS / 1000} s to a BullMQ queue on a local redis-server; one worker (concurrency ${CONCURRENCY}) runs each as \`POST /charge?key=<job id>\` to a node:http server on 127.0.0.1 (${SERVICE_MS} ms of work, counted per key). From ${OUTAGE.from / 1000} s to ${OUTAGE.to / 1000} s the server is down (socket closed, connections destroyed: ECONNREFUSED), then it listens again on the same port.`,
    '',
    '- **plain BullMQ**: `attempts: 5, backoff: { type: "exponential", delay: 200 }`; the processor throws on a failed call.',
    "- **bulwark**: `dependency('payments', { timeout: '1s', retry: false, circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '1s' } })`, `messageHandler(payments, work, { maxDeliveries: 5, backoff: 200 ms doubling, store: RedisStore })`, `bullmqProcessor(handler, { deadLetterQueue })` and `processor.attach(worker)`.",
    '',
    `Run ${meta.startedAt}, Node ${process.version} ${process.platform}/${process.arch}; load average (1/5/15 min) ${meta.load.map((l) => l.toFixed(2)).join(' / ')} at start, ${meta.loadEnd.map((l) => l.toFixed(2)).join(' / ')} at end.`,
    '',
    '| variant | jobs failed / dead-lettered | effects missing | calls | calls into the outage | drain after recovery | handler succeeded twice | server did the work twice | total time |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    `- **drain after recovery**: from the dependency's recovery (${OUTAGE.to / 1000} s) to the moment every job is completed, failed or dead-lettered; jobs are still being added until ${PRODUCE_MS / 1000} s.`,
    '- **calls into the outage**: calls the worker started while the server was down.',
    '- **effects missing**: jobs whose work never reached the dependency (failed for good).',
    '- **handler succeeded twice**: jobs whose call returned 200 more than once (a redelivery ran work that had already succeeded).',
    "- **server did the work twice**: keys the server counted more than once. The server does not deduplicate, and its crash destroys connections whose request it had already done: the client sees a reset for work that happened, and retries it. That is the case the message's key (`ctx.idempotencyKey`, here the `key` query parameter) exists for: a real downstream deduplicates on it.",
    '',
    '![jobs completed and calls per second](queue.svg)',
    '',
    '## Against the targets of issue 15',
    '',
    ...verdicts.map(([text, ok]) => `- ${ok ? 'met' : '**not met**'}: ${text}`),
    '',
  ].join('\n');
  const perSecond = (xs: number[]) =>
    xs.map((v, i) => [((i + 0.5) * BUCKET_MS) / 1000, (v * 1000) / BUCKET_MS] as const);
  const colors = ['#d62728', '#1f77b4'];
  const xMax = Math.ceil(Math.max(...runs.map((r) => r.totalMs)) / 1000);
  const svg = chart({
    title: 'BullMQ jobs through a 6 s dependency outage',
    subtitle: `${JOBS.toLocaleString('en')} jobs; shaded: the dependency is down`,
    xMax,
    xLabel: 'seconds since the first job',
    shade: { from: OUTAGE.from / 1000, to: OUTAGE.to / 1000, label: 'outage' },
    panels: [
      {
        title: 'Jobs completed per second',
        yLabel: 'jobs/s',
        scale: 'linear',
        lines: runs.map((r, i) => ({
          name: i === 0 ? 'plain BullMQ' : 'bulwark',
          color: colors[i]!,
          points: perSecond(r.completedPerBucket),
        })),
      },
      {
        title: 'Calls to the dependency per second',
        yLabel: 'calls/s',
        scale: 'log',
        min: 1,
        lines: runs.map((r, i) => ({
          name: i === 0 ? 'plain BullMQ' : 'bulwark',
          color: colors[i]!,
          points: perSecond(r.callsPerBucket),
        })),
      },
    ],
  });
  return { md, svg, verdicts };
}

let redis: ChildProcess | undefined;

async function main(): Promise<void> {
  const startedAt = new Date().toISOString().replace('T', ' ').slice(0, 19) + ' UTC';
  const load = loadavg();
  const port = await freePort();
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await waitForPort(port, 10_000);
  const io = new Redis({ port, host: '127.0.0.1' });
  const runs: Run[] = [];
  for (const [tag, variant] of [
    ['plain', plainBullmq(port)],
    ['bulwark', withBulwark(port, io)],
  ] as const) {
    console.log(`running ${variant.name} …`);
    const run = await runVariant(variant, port, tag);
    console.log(
      `  lost ${run.lost}, calls ${run.calls}, into outage ${run.callsInOutage}, drain ${run.drainMs.toFixed(0)} ms, duplicates ${run.duplicates}`,
    );
    runs.push(run);
  }
  io.disconnect();
  const { md, svg, verdicts } = report(runs, { startedAt, load, loadEnd: loadavg() });
  console.log(md);
  if (!quick) {
    const dir = new URL('./results/', import.meta.url);
    writeFileSync(new URL('queue.md', dir), md);
    writeFileSync(new URL('queue.svg', dir), svg);
    writeFileSync(
      new URL('queue.json', dir),
      `${JSON.stringify({ startedAt, jobs: JOBS, outage: OUTAGE, runs }, null, 1)}\n`,
    );
  }
  if (verdicts.some(([, ok]) => !ok)) process.exitCode = 1;
}

main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => {
    if (redis?.pid !== undefined) process.kill(redis.pid, 'SIGTERM');
  });
