/**
 * Overload scenario: does the load shedder keep goodput up when offered load exceeds
 * capacity?  Run: `npx tsx bench/scenarios/overload.ts`  (about 90 s; stops by itself).
 *
 * Server (this process): node:http on 127.0.0.1 in front of a worker pool of 8 slots;
 * each request holds a slot for 10 ms. Slots are held with a timer, not busy CPU: this
 * machine has 2 cores shared with other jobs, so 8 CPU-bound slots would have a capacity
 * set by whatever else runs (at most 2 of them truly run at once, and a busy main thread
 * would also stall the HTTP plumbing we are measuring). A timer slot gives a capacity of
 * exactly 8 / 10 ms = 800 rps on every run (see WorkerPool), and leaves the CPU to HTTP,
 * the shedder and the client. The pool queues without bound, like a naive server.
 *
 * Client (a child process, so it has its own event loop and core): open loop — requests
 * leave on schedule whether or not earlier ones were answered — at 1×, 2× and 3× the
 * pool's capacity, with mixed priorities (header `x-priority`) and a 200 ms
 * deadline each (header `x-deadline-ms`, which the server turns into the call's budget).
 * It gives up on a request after 1 s.
 *
 * Variants, each on a fresh pool and shedder: no protection; a fixed limit sized right (16)
 * and one sized by guess (200); the adaptive limit with each algorithm. Every shedder has
 * the same priority shares (defaults), minRemainingBudget and queue: only the limit differs.
 * `OVERLOAD_NO_QUEUE=1` repeats the comparison with no queue in front of the shedders.
 *
 * Output: a markdown table on stdout and in bench/results/overload.md, and a goodput
 * chart in bench/results/overload.svg (overload-no-queue.* for the variant above).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Priority } from '../../src/core/context.js';
import { LoadShedError } from '../../src/policies/load-shedder/errors.js';
import { TimeoutError } from '../../src/core/errors.js';
import { adaptive } from '../../src/policies/load-shedder/limits/adaptive.js';
import { seededRandom } from '../../src/testing/seeded-random.js';
import {
  loadShedder,
  type LoadShedderPolicy,
} from '../../src/policies/load-shedder/load-shedder.js';

const SLOTS = 8;
const SERVICE_MS = 10;
const DEADLINE_MS = 200;
const CLIENT_TIMEOUT_MS = 1000;
/** A server event-loop stall longer than this is flagged in the report. */
const STALL_MS = 100;
const WARMUP_MS = Number(process.env.OVERLOAD_WARMUP_MS ?? 500);
const MEASURE_MS = Number(process.env.OVERLOAD_MEASURE_MS ?? 2500);
/** Offered load as multiples of capacity; 0.8× shows the unprotected server below its knee. */
const LOADS = [0.8, 1, 2, 3];
/** The whole script gives up after this long, whatever happens (the runs take about 90 s). */
const WATCHDOG_MS = 150_000;
/** Share of requests per priority: critical work is a minority, as it usually is. */
const MIX: readonly [Priority, number][] = [
  ['critical', 0.1],
  ['high', 0.2],
  ['normal', 0.4],
  ['low', 0.3],
];

// ---------------------------------------------------------------- client (child process)

interface ClientJob {
  port: number;
  rate: number;
  warmupMs: number;
  measureMs: number;
  seed: number;
}

interface ClientResult {
  sent: number;
  measured: number;
  good: number;
  accepted: number;
  shed: number;
  timedOutOnServer: number;
  clientGaveUp: number;
  errors: number;
  critical: number;
  criticalGood: number;
  criticalShed: number;
  criticalLate: number;
  latencies: number[];
  sendLagMs: number;
}

function pickPriority(r: number): Priority {
  let acc = 0;
  for (const [p, share] of MIX) {
    acc += share;
    if (r < acc) return p;
  }
  return 'low';
}

function runClient(job: ClientJob): Promise<ClientResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  const random = seededRandom(job.seed);
  const total = Math.round((job.rate * (job.warmupMs + job.measureMs)) / 1000);
  const result: ClientResult = {
    sent: 0,
    measured: 0,
    good: 0,
    accepted: 0,
    shed: 0,
    timedOutOnServer: 0,
    clientGaveUp: 0,
    errors: 0,
    critical: 0,
    criticalGood: 0,
    criticalShed: 0,
    criticalLate: 0,
    latencies: [],
    sendLagMs: 0,
  };
  let outstanding = 0;
  const t0 = performance.now();

  return new Promise((resolve) => {
    const finish = () => {
      agent.destroy();
      resolve(result);
    };

    const send = (i: number) => {
      const priority = pickPriority(random());
      const scheduledAt = t0 + (i * 1000) / job.rate;
      const sentAt = performance.now();
      result.sendLagMs = Math.max(result.sendLagMs, sentAt - scheduledAt);
      const measured = scheduledAt - t0 >= job.warmupMs;
      if (measured) {
        result.measured++;
        if (priority === 'critical') result.critical++;
      }
      outstanding++;
      let settled = false;
      const done = (status: number) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outstanding--;
        const latency = performance.now() - sentAt;
        if (measured) {
          if (status === 200) {
            result.accepted++;
            result.latencies.push(latency);
            if (latency <= DEADLINE_MS) {
              result.good++;
              if (priority === 'critical') result.criticalGood++;
            } else if (priority === 'critical') result.criticalLate++;
          } else if (status === 503) {
            result.shed++;
            if (priority === 'critical') result.criticalShed++;
          } else if (status === 504) result.timedOutOnServer++;
          else if (status === -1) result.clientGaveUp++;
          else result.errors++;
        }
        if (result.sent === total && outstanding === 0) finish();
      };
      const req = http.request(
        {
          host: '127.0.0.1',
          port: job.port,
          path: '/work',
          agent,
          headers: { 'x-priority': priority, 'x-deadline-ms': String(DEADLINE_MS) },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode ?? 0));
          res.on('error', () => done(0));
        },
      );
      const timer = setTimeout(() => {
        done(-1);
        req.destroy();
      }, CLIENT_TIMEOUT_MS);
      req.on('error', () => done(0));
      req.end();
    };

    // Open loop: every tick sends whatever the schedule says is due, answered or not.
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * job.rate) / 1000) + 1);
      while (result.sent < due) send(result.sent++);
      if (result.sent < total) setTimeout(tick, 1);
      else if (outstanding === 0) finish();
    };
    tick();
  });
}

// ---------------------------------------------------------------- server (this process)

/**
 * A fixed-capacity resource: `slots` servers, FIFO, each job holding one for `ms`. Each
 * job's completion time is computed on arrival from when its slot frees (start =
 * max(now, earliest slot free time)), and a timer delivers it then. A timer that fires
 * late (this machine is shared) delays that response but does not push back the next
 * job, so capacity is exactly slots / ms whatever the CPU noise.
 */
class WorkerPool {
  private readonly freeAt: number[];
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(slots: number) {
    this.freeAt = Array.from({ length: slots }, () => 0);
  }

  run(ms: number): Promise<void> {
    const now = performance.now();
    let slot = 0;
    for (let i = 1; i < this.freeAt.length; i++) if (this.freeAt[i]! < this.freeAt[slot]!) slot = i;
    const done = Math.max(now, this.freeAt[slot]!) + ms;
    this.freeAt[slot] = done;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, done - now);
      this.timers.add(timer);
    });
  }

  /** Drops the backlog so one run's leftovers never compete with the next run. */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

type Handler = (priority: Priority, deadlineMs: number) => Promise<number>;

interface Variant {
  name: string;
  make: (pool: WorkerPool) => { handler: Handler; shedder?: LoadShedderPolicy };
}

/**
 * `OVERLOAD_NO_QUEUE=1` runs every shedder without its queue (results go to
 * overload-no-queue.*): it shows what the queue does for critical work.
 */
const NO_QUEUE = process.env.OVERLOAD_NO_QUEUE === '1';
const shedderBase = {
  minRemainingBudget: 2 * SERVICE_MS,
  ...(NO_QUEUE
    ? {}
    : { queue: { maxSize: 32, timeout: 50, overloadTimeout: 5, interval: 100, lifo: true } }),
};

function protectedHandler(pool: WorkerPool, shedder: LoadShedderPolicy): Handler {
  const work = () => pool.run(SERVICE_MS);
  return async (priority, deadlineMs) => {
    try {
      await shedder.execute(work, { priority, budget: deadlineMs });
      return 200;
    } catch (error) {
      if (error instanceof LoadShedError) return 503;
      if (error instanceof TimeoutError) return 504;
      return 500;
    }
  };
}

const VARIANTS: Variant[] = [
  {
    name: 'no protection',
    make: (pool) => ({
      handler: async () => {
        await pool.run(SERVICE_MS);
        return 200;
      },
    }),
  },
  // A fixed limit is only as good as its sizing: 16 is 2× the pool, chosen knowing the
  // capacity; 200 is what a guess looks like when the capacity is not known.
  ...[16, 200].map((limit): Variant => ({
    name: `fixed limit ${limit}`,
    make: (pool) => {
      const shedder = loadShedder({ ...shedderBase, limit });
      return { shedder, handler: protectedHandler(pool, shedder) };
    },
  })),
  ...(['gradient', 'aimd', 'vegas'] as const).map((algorithm): Variant => ({
    name: `adaptive ${algorithm}`,
    make: (pool) => {
      const limit =
        algorithm === 'aimd'
          ? adaptive({ algorithm, min: 4, max: 200, initial: 16, latencyThreshold: 5 * SERVICE_MS })
          : adaptive({ algorithm, min: 4, max: 200, initial: 16 });
      const shedder = loadShedder({ ...shedderBase, limit });
      return { shedder, handler: protectedHandler(pool, shedder) };
    },
  })),
];

interface Row {
  variant: string;
  load: number;
  offered: number;
  goodput: number;
  p50: number;
  p99: number;
  criticalServed: number;
  shedShare: number;
  limitMean: number | undefined;
  limitRange: string;
  /** Why the shedder refused critical work, by reason (server side). */
  criticalShedReasons: Record<string, number>;
  /** The server's worst event-loop delay in the cell, ms: how much the shared CPU got in the way. */
  serverLoopMaxMs: number;
  result: ClientResult;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function ask(child: ChildProcess, job: ClientJob): Promise<ClientResult> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`client exited with ${code}`));
    child.once('exit', onExit);
    child.once('message', (m) => {
      child.off('exit', onExit);
      resolve(m as ClientResult);
    });
    child.send(job);
  });
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : '–');

async function main(): Promise<void> {
  const began = performance.now();
  const startLoad = loadAverage();
  const capacity = (SLOTS * 1000) / SERVICE_MS;

  let current: Handler = async () => 500;
  const server = http.createServer((req, res) => {
    const priority = (req.headers['x-priority'] as Priority | undefined) ?? 'normal';
    const deadlineMs = Number(req.headers['x-deadline-ms'] ?? DEADLINE_MS);
    req.resume();
    void current(priority, deadlineMs).then((status) => {
      if (status === 503) res.writeHead(503, { 'retry-after': '1', 'content-length': '0' });
      else res.writeHead(status, { 'content-length': '0' });
      res.end();
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) =>
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve),
  );
  const port = (server.address() as AddressInfo).port;

  const here = fileURLToPath(import.meta.url);
  const child = fork(here, ['--client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const watchdog = setTimeout(() => {
    process.stderr.write(`overload: gave up after ${WATCHDOG_MS / 1000} s\n`);
    child.kill();
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();

  const rows: Row[] = [];
  try {
    for (const variant of VARIANTS) {
      for (const load of LOADS) {
        const pool = new WorkerPool(SLOTS);
        const { handler, shedder } = variant.make(pool);
        current = handler;
        const limits: number[] = [];
        const criticalShedReasons: Record<string, number> = {};
        shedder?.on('shed', (e) => {
          if (e.priority === 'critical')
            criticalShedReasons[e.reason] = (criticalShedReasons[e.reason] ?? 0) + 1;
        });
        const loop = monitorEventLoopDelay({ resolution: 10 });
        loop.enable();
        const sampler = setInterval(() => {
          if (shedder) limits.push(shedder.limit);
        }, 50);
        sampler.unref();
        const rate = Math.round(capacity * load);
        const result = await ask(child, {
          port,
          rate,
          warmupMs: WARMUP_MS,
          measureMs: MEASURE_MS,
          seed: 42 + Math.round(load * 10),
        });
        clearInterval(sampler);
        loop.disable();
        pool.close();
        const sorted = result.latencies.sort((a, b) => a - b);
        const seconds = MEASURE_MS / 1000;
        rows.push({
          variant: variant.name,
          load,
          offered: result.measured / seconds,
          goodput: result.good / seconds,
          p50: percentile(sorted, 50),
          p99: percentile(sorted, 99),
          criticalServed: result.critical === 0 ? NaN : result.criticalGood / result.critical,
          shedShare: result.measured === 0 ? NaN : result.shed / result.measured,
          limitMean: limits.length ? limits.reduce((a, b) => a + b, 0) / limits.length : undefined,
          limitRange: limits.length ? `${Math.min(...limits)}–${Math.max(...limits)}` : '–',
          criticalShedReasons,
          serverLoopMaxMs: Math.max(0, loop.max / 1e6 - 10),
          result,
        });
        process.stderr.write(
          `  ${variant.name} at ${load}×: goodput ${fmt(result.good / seconds)} rps\n`,
        );
        // Let the previous run's stragglers and sockets settle before the next one.
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
  } finally {
    clearTimeout(watchdog);
    child.kill();
    server.closeAllConnections();
    server.close();
  }

  const report = render(rows, capacity, (performance.now() - began) / 1000, startLoad);
  process.stdout.write(report);
  const outDir = join(dirname(here), '..', 'results');
  mkdirSync(outDir, { recursive: true });
  const base = NO_QUEUE ? 'overload-no-queue' : 'overload';
  writeFileSync(join(outDir, `${base}.md`), report);
  writeFileSync(join(outDir, `${base}.svg`), chart(rows));
}

function render(rows: Row[], capacity: number, seconds: number, startLoad: string): string {
  const lines: string[] = [];
  lines.push(`# Overload scenario${NO_QUEUE ? ' (shedders without a queue)' : ''}`, '');
  lines.push(
    `Worker pool: ${SLOTS} slots × ${SERVICE_MS} ms (timer-held, FIFO, unbounded queue); capacity ${fmt(capacity)} rps. ` +
      `Open-loop client in a child process; deadline ${DEADLINE_MS} ms per request; ` +
      `mix ${MIX.map(([p, s]) => `${p} ${s * 100} %`).join(', ')}; ` +
      `${WARMUP_MS} ms warm-up, then ${MEASURE_MS} ms measured per cell. ` +
      `Node ${process.version}, ${platform()}, 2 cores shared with other jobs; load average (1/5/15 min) ${startLoad} at start, ${loadAverage()} at end; whole run ${fmt(seconds)} s.`,
    '',
  );
  lines.push(
    'Goodput = responses with status 200 within the deadline, per second. Latency percentiles are over ' +
      'accepted (200) responses, late ones included. Critical served = critical requests answered 200 within ' +
      "the deadline. Limit = the shedder's concurrency limit sampled every 50 ms (mean, min–max).",
    '',
  );
  lines.push(
    '| variant | load | offered rps | goodput rps | vs 1× | p50 ms | p99 ms | critical served (shed / late of n) | shed | limit mean (range) | server loop max ms | client lag ms |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const base = rows.find((x) => x.variant === r.variant && x.load === 1)!;
    lines.push(
      `| ${r.variant} | ${r.load}× | ${fmt(r.offered)} | ${fmt(r.goodput)} | ${pct(r.goodput / base.goodput)} | ` +
        `${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${pct(r.criticalServed)} ` +
        `(${r.result.criticalShed} / ${r.result.criticalLate} of ${r.result.critical}) | ${pct(r.shedShare)} | ` +
        `${r.limitMean === undefined ? '–' : `${fmt(r.limitMean, 1)} (${r.limitRange})`} | ` +
        `${fmt(r.serverLoopMaxMs, 0)}${r.serverLoopMaxMs > STALL_MS ? ' ⚠' : ''} | ${fmt(r.result.sendLagMs, 0)} |`,
    );
  }
  lines.push('', '## Targets at 3× offered load', '');
  for (const r of rows.filter((x) => x.load === 3)) {
    const base = rows.find((x) => x.variant === r.variant && x.load === 1)!;
    const ratio = r.goodput / base.goodput;
    if (r.variant === 'no protection') {
      lines.push(`- ${r.variant}: goodput ${pct(ratio)} of its 1× goodput (expected to collapse)`);
    } else {
      const ok = ratio >= 0.9 && r.criticalServed >= 0.99;
      const reasons = Object.entries(r.criticalShedReasons)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      lines.push(
        `- ${r.variant}: goodput ${pct(ratio)} of 1× (target ≥ 90 %), critical served ${pct(r.criticalServed)} ` +
          `(target ≥ 99 %)${reasons ? `; critical shed for: ${reasons}` : ''} — ${ok ? 'met' : 'NOT met'}` +
          (r.serverLoopMaxMs > STALL_MS
            ? ` (server stalled ${fmt(r.serverLoopMaxMs)} ms in this cell)`
            : ''),
      );
    }
  }
  const gaveUp = rows.reduce((a, r) => a + r.result.clientGaveUp, 0);
  lines.push(
    '',
    `Server loop max = the server's worst event-loop delay in the cell (time it could not run: GC, ` +
      `or the shared CPU busy elsewhere); ⚠ marks a stall over ${STALL_MS} ms, which costs every ` +
      `variant goodput that no shedder can save (requests wait in the kernel, not in bulwark). ` +
      `Client lag = the worst delay of a send behind its open-loop schedule in that cell; the schedule ` +
      `holds only while it stays small. ${gaveUp} requests were abandoned by the client after ` +
      `${CLIENT_TIMEOUT_MS} ms across all cells.`,
    '',
  );
  return lines.join('\n');
}

function platform(): string {
  return `${process.platform}/${process.arch}`;
}

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}

/** Goodput vs offered load, one line per variant; plain SVG, no dependency. */
function chart(rows: Row[]): string {
  const W = 640;
  const H = 400;
  const m = { l: 64, r: 170, t: 36, b: 48 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const maxY = Math.max(1, ...rows.map((r) => r.goodput)) * 1.15;
  const lo = Math.min(...LOADS);
  const hi = Math.max(...LOADS);
  const x = (load: number) => m.l + ((load - lo) / (hi - lo)) * pw;
  const y = (v: number) => m.t + ph - (v / maxY) * ph;
  const colors = ['#d62728', '#7f7f7f', '#8c564b', '#1f77b4', '#2ca02c', '#9467bd'];
  // Lines that sit on top of each other (every good variant ends near capacity) stay
  // distinguishable by their dash pattern.
  const dashes = ['', '8 4', '2 3', '', '10 3 2 3', '4 4'];
  const variants = [...new Set(rows.map((r) => r.variant))];
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(
    `<text x="${m.l}" y="20" font-size="14" font-weight="bold">Goodput vs offered load</text>`,
  );
  const step = niceStep(maxY);
  for (let v = 0; v <= maxY; v += step) {
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#eee"/>`,
    );
    out.push(`<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  for (const load of LOADS) {
    out.push(
      `<text x="${x(load).toFixed(1)}" y="${m.t + ph + 18}" text-anchor="middle">${load}×</text>`,
    );
  }
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(
    `<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">offered load (× capacity)</text>`,
  );
  out.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">goodput (responses within deadline / s)</text>`,
  );
  const capacityY = y((SLOTS * 1000) / SERVICE_MS).toFixed(1);
  out.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${capacityY}" y2="${capacityY}" stroke="#bbb" stroke-dasharray="3 3"/>`,
  );
  out.push(
    `<text x="${m.l + 4}" y="${Number(capacityY) - 4}" fill="#888">capacity ${(SLOTS * 1000) / SERVICE_MS} rps</text>`,
  );
  variants.forEach((name, i) => {
    const color = colors[i % colors.length];
    const dash = dashes[i % dashes.length]
      ? ` stroke-dasharray="${dashes[i % dashes.length]}"`
      : '';
    const pts = rows
      .filter((r) => r.variant === name)
      .map((r) => `${x(r.load).toFixed(1)},${y(r.goodput).toFixed(1)}`);
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`,
    );
    for (const p of pts) {
      const [cx, cy] = p.split(',');
      out.push(`<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`);
    }
    const ly = m.t + 10 + i * 20;
    out.push(
      `<line x1="${m.l + pw + 16}" x2="${m.l + pw + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`,
    );
    out.push(`<text x="${m.l + pw + 42}" y="${ly + 4}">${name}</text>`);
  });
  out.push('</svg>', '');
  return out.join('\n');
}

function niceStep(max: number): number {
  const raw = max / 5;
  const pow = 10 ** Math.floor(Math.log10(raw));
  for (const f of [1, 2, 5, 10]) if (f * pow >= raw) return f * pow;
  return 10 * pow;
}

// The same file is the server (run directly) and the client (forked with --client).
if (process.argv[2] === '--client') {
  process.on('message', (job: ClientJob) => {
    void runClient(job).then((r) => process.send!(r));
  });
} else {
  void main();
}
