/**
 * Scenario benchmarks: what each client does to a real dependency under four faults.
 * Run: `npm run bench:scenarios` (all four, about 7 minutes) or
 * `npm run bench:scenarios -- outage brownout` (a subset; the report keeps the others'
 * last results), or `-- --report-only` to rebuild the markdown from the saved JSON. Everything stops by itself; a watchdog ends the run if anything hangs.
 *
 * Each case (scenario × client variant) runs in two fresh child processes: the dependency
 * (dependency-server.ts, node:http on 127.0.0.1) and the load driver (this file with
 * `--case`), so no case inherits another's sockets, JIT state, breaker state or garbage.
 * This process only orchestrates: it starts both, tells the server its fault schedule and
 * the driver to go at the same moment, collects the raw records, and writes
 * bench/results/scenarios.md, scenarios-<name>.svg and scenarios-<name>.json.
 *
 * The driver is open-loop: logical requests leave on schedule whether or not earlier ones
 * were answered, as user traffic does. The caller gives up on a request after 3 s
 * (counted as a failure, its signal aborted); everything else is the variant's own doing.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CALLER_BUDGET_MS,
  VARIANTS,
  failureKind,
  httpCaller,
  type ScenarioName,
  type VariantId,
} from './clients.js';
import type {
  ServerConfig,
  ServerMessage,
  ServerPhase,
  ServerReply,
  ServerStats,
} from './dependency-server.js';
import {
  RECOVERY_THRESHOLD,
  RECOVERY_WINDOW_MS,
  figures,
  timeSeries,
  type CaseRaw,
  type Figures,
  type TimeSeries,
} from './stats.js';
import { chart, type Line } from './svg.js';

const HERE = fileURLToPath(import.meta.url);
const SERVER_FILE = join(dirname(HERE), 'dependency-server.ts');
const RESULTS = join(dirname(HERE), '..', 'results');

/** Timeline of most scenarios: healthy, fault window, after (flapping and slow recovery run longer). */
const WINDOW_START = 3000;
const WINDOW_END = 9000;
const DURATION_MS = 16_000;
/** The longest scenario, for the watchdog. */
const MAX_DURATION_MS = 22_000;
/** The caller gives up on a logical request after this long, whatever the variant does. */
const CALLER_CAP_MS = 3000;
const CHART_BUCKET_MS = 500;
/** An event-loop delay above this is flagged in the report: the case measured a stall too. */
const STALL_MS = 200;
/** Limit per case; a case normally takes DURATION_MS + the last requests' drain. */
const CASE_WATCHDOG_MS = MAX_DURATION_MS + CALLER_CAP_MS + 30_000;

/** Healthy service time: log-normal, median 15 ms, p99 60 ms. */
const HEALTHY = { kind: 'lognormal', median: 15, p99: 60 } as const;

interface LoadPhase {
  /** ms after start */
  at: number;
  /** logical requests per second, all clients together */
  rate: number;
}

interface ScenarioSpec {
  name: ScenarioName;
  title: string;
  /** What happens, for the report. */
  description: string;
  server: ServerConfig;
  phases: ServerPhase[];
  load: LoadPhase[];
  /** Independent client instances (each with its own policies); requests go round-robin. */
  clients: number;
  /** Mechanisms worth knowing when reading the table (no numbers: they hold for any run). */
  notes: string[];
  /** Run length (default DURATION_MS). */
  durationMs?: number;
  /** The span the "in window" figures cover (default [WINDOW_START, WINDOW_END]). */
  window?: [number, number];
  /** When the dependency is faulty (default: the window); outside them it is healthy. */
  faults?: [number, number][];
  /**
   * When the dependency is not healthy, for counting load-shed refusals of a healthy
   * dependency (default: the faults; slow recovery adds its weak phase).
   */
  unhealthy?: [number, number][];
  /** The dependency is down in its faults (outage-like): no call sent then can succeed. */
  down: boolean;
  /** Dependency capacity in requests/s, where the goodput bar applies (overload). */
  capacityRps?: number;
}

const windowOf = (spec: ScenarioSpec): [number, number] =>
  spec.window ?? [WINDOW_START, WINDOW_END];
const faultsOf = (spec: ScenarioSpec): [number, number][] => spec.faults ?? [windowOf(spec)];
const unhealthyOf = (spec: ScenarioSpec): [number, number][] => spec.unhealthy ?? faultsOf(spec);
const durationOf = (spec: ScenarioSpec): number => spec.durationMs ?? DURATION_MS;
const inAny = (t: number, spans: readonly (readonly [number, number])[]): boolean =>
  spans.some(([a, b]) => t >= a && t < b);

/** Down 2 s / up 2 s, four times, from WINDOW_START. */
const FLAPS: [number, number][] = [0, 1, 2, 3].map((i) => [
  WINDOW_START + i * 4000,
  WINDOW_START + i * 4000 + 2000,
]);

const SCENARIOS: ScenarioSpec[] = [
  {
    name: 'outage',
    title: 'Outage: connection refused for 6 s, then recovery',
    description:
      'One client sends 100 requests/s. At 3 s the dependency process "crashes": its listening socket closes and ' +
      'open connections are destroyed, so calls fail at once with ECONNREFUSED/ECONNRESET. At 9 s it listens again, healthy. ' +
      'Dependency: 48 slots, service time log-normal (median 15 ms, p99 60 ms).',
    server: { slots: 48, latency: HEALTHY, seed: 1 },
    phases: [
      { at: 0, mode: 'ok' },
      { at: WINDOW_START, mode: 'refuse' },
      { at: WINDOW_END, mode: 'ok' },
    ],
    load: [{ at: 0, rate: 100 }],
    clients: 1,
    down: true,
    notes: [
      'No client can make a request succeed while the dependency is down (there is no fallback in any variant): ' +
        'what differs is how many calls each one sends into the outage, how long callers wait to learn of it, and how soon traffic flows again after it.',
      "bulwark's default breaker probes 300 ms after it opens, then after 0.45, 0.7, 1.0, 1.5, 2.3 s … (×1.5, up to 30 s), and a call that meets it open " +
        'waits up to 1 s for the next trial when its budget allows: calls started in the last second of the outage succeed once it is over. ' +
        'A breaker that waits 5 s before its trial call (cockatiel, opossum) can keep refusing for up to 5 s after the dependency is back; ' +
        "no policy has nothing to wait for, so it recovers at once. Where the end of the outage falls in a breaker's 5 s cycle is a matter of timing: " +
        'anywhere from 0 to 5 s, and one run shows one draw. opossum trips later than the others (its error rate over a 10 s window must pass 50 %, ' +
        'and the healthy seconds before the outage count), so its 5 s cycle is shifted; in this timeline its trial falls near the end of the outage.',
    ],
  },
  {
    name: 'brownout',
    title: 'Brownout: latency ×10 and 30 % errors for 6 s',
    description:
      'One client sends 100 requests/s. From 3 s to 9 s every service time is 10× longer (median 150 ms, p99 600 ms) and 30 % of ' +
      'requests end in 503 after that same latency. The slots stay at 48, so capacity falls 10× too (about 270 requests/s): ' +
      'extra calls from retries and hedges queue behind each other.',
    server: { slots: 48, latency: HEALTHY, seed: 2 },
    phases: [
      { at: 0, mode: 'ok' },
      { at: WINDOW_START, mode: 'ok', latencyFactor: 10, errorRate: 0.3 },
      { at: WINDOW_END, mode: 'ok' },
    ],
    load: [{ at: 0, rate: 100 }],
    clients: 1,
    down: false,
    notes: [
      'With 30 % errors, 5 consecutive failures happen by chance every few seconds at this rate (0.3⁵ per run of five, retries included), ' +
        'so a consecutive-failures breaker opens during a brownout and refuses everything for its 5 s; a failure-rate threshold above the error rate does not.',
      'Whether a 5-in-a-row breaker trips in a given run is chance: about one or two runs of five failures are expected among the ~900 attempts of the window. ' +
        "bulwark's default rule needs 10 failures in a row at this traffic (0.3¹⁰ ≈ 6·10⁻⁶ per run: about once in half an hour) or half of the last 10 s failing, so it stays closed.",
      'Three attempts turn a 70 % attempt success into about 97 % for the request, if the retries are allowed and fit in the time the caller waits.',
    ],
  },
  {
    name: 'overload',
    title: 'Overload: offered load 3× capacity for 6 s',
    description:
      'The dependency has 8 slots × 20 ms = 400 requests/s of capacity and a queue without bound; it finishes every request it ' +
      'accepted, even for callers that gave up. One client offers 200 requests/s (0.5×), then 1200 requests/s (3×) from 3 s to 9 s, then 200 requests/s again.',
    server: { slots: 8, latency: { kind: 'constant', ms: 20 }, seed: 3 },
    phases: [{ at: 0, mode: 'ok' }],
    load: [
      { at: 0, rate: 200 },
      { at: WINDOW_START, rate: 1200 },
      { at: WINDOW_END, rate: 200 },
    ],
    clients: 1,
    down: false,
    capacityRps: 400,
    notes: [
      'At best a client gets 400 of its 1200 requests/s through; the rest must fail either way. What matters is failing them fast and keeping ' +
        "the dependency's queue short, so that the requests it does serve are answered in time and nothing is left queued when the overload ends.",
      'A bulkhead of 100 caps the calls in flight, so the queue at the dependency stays at about 100 − 8 requests; an adaptive limit ' +
        'aims lower, at the concurrency where latency stays near its healthy baseline. bulwark defaults has a gradient limit that never goes below 600 ' +
        "(480 for normal priority): the queue at the dependency stays at about 480 requests (1.2 s), within the caller's 3 s, and the rest is refused " +
        'after at most 50 ms in its short queue (which lets the calls that arrive as the overload ends take the slots its backlog frees).',
      'opossum + p-retry has no bulkhead; its breaker opens on the 1 s timeouts, but a timed-out attempt is not aborted and keeps its socket and ' +
        "its place in the dependency's queue while p-retry sends the next one. opossum also recomputes its window statistics on every failure " +
        "(sorting the window's latencies, by default): with thousands of failures a second that can stall the client's event loop (see ⚠ below).",
    ],
  },
  {
    name: 'retry-storm',
    title: 'Retry storm: 50 clients, dependency answering 503 for 6 s',
    description:
      '50 independent client instances (each with its own breaker, retry state and budget, like 50 service replicas) each send 10 requests/s, ' +
      '500 requests/s in all. From 3 s to 9 s the dependency answers every request with 503 at once; then it is healthy again ' +
      '(48 slots, median 15 ms).',
    server: { slots: 48, latency: HEALTHY, seed: 4 },
    phases: [
      { at: 0, mode: 'ok' },
      { at: WINDOW_START, mode: 'error' },
      { at: WINDOW_END, mode: 'ok' },
    ],
    load: [{ at: 0, rate: 500 }],
    clients: 50,
    down: true,
    notes: [
      'Every client must learn of the outage on its own: 50 breakers each need their own failures to open, and each sends its own trial calls.',
      'A lower bound for any per-client breaker that also sees a short outage end within about a second (as the outage and flapping scenarios ask): ' +
        'one failed call per client to learn of it, and trials at growing intervals — bulwark probes 0.3, 0.75, 1.4, 2.4, 4.0 s after the trip, ' +
        "5 trials in a 6 s outage — so about 6 calls per client, 300 in all, against the bar's 5 % of no policy (150). " +
        'Fewer needs trials at least 3 s apart, which would keep callers waiting seconds after a short fault is over.',
      'Calls in the window is the load the fleet puts on a dependency that is already down; with no policy it equals the requests, ' +
        'with plain retries it is up to 3× that.',
      "As in the outage, a fixed 5 s half-open delay makes recovery a matter of where the outage ends in each breaker's cycle (0–5 s).",
    ],
  },
  {
    name: 'flapping',
    title: 'Flapping: down 2 s, up 2 s, four times',
    description:
      'One client sends 100 requests/s. From 3 s the dependency refuses connections for 2 s, then serves for 2 s, four times ' +
      '(down 3–5, 7–9, 11–13, 15–17 s); then it stays up. Dependency: 48 slots, median 15 ms, p99 60 ms.',
    server: { slots: 48, latency: HEALTHY, seed: 5 },
    phases: [
      { at: 0, mode: 'ok' },
      ...FLAPS.flatMap(([a, b]): ServerPhase[] => [
        { at: a, mode: 'refuse' },
        { at: b, mode: 'ok' },
      ]),
    ],
    load: [{ at: 0, rate: 100 }],
    clients: 1,
    down: true,
    durationMs: 22_000,
    window: [WINDOW_START, FLAPS[3]![1]],
    faults: FLAPS,
    notes: [
      '"in window" covers 3–17 s, up phases included; "calls in window" counts only the calls sent while the dependency was down.',
      'Every up phase is a recovery: a breaker that probes every 5 s misses most of them; one that never opens sends every request into the down phases.',
      "bulwark's default rule keeps a recovered dependency on probation for 10 s: 3 failures in a row reopen the breaker, so each down phase after the first " +
        'costs about 3 calls to detect instead of 10.',
    ],
  },
  {
    name: 'slow-recovery',
    title: 'Slow recovery: down 6 s, back at 30 % capacity, full capacity 5 s later',
    description:
      'One client sends 300 requests/s to a dependency with 8 slots × 20 ms = 400 requests/s of capacity and a queue without bound. ' +
      'From 3 s to 9 s it refuses connections; at 9 s it comes back at 30 % capacity (120 requests/s: service times ×3.3) and ' +
      'regains full capacity linearly by 14 s.',
    server: { slots: 8, latency: { kind: 'constant', ms: 20 }, seed: 6 },
    phases: [
      { at: 0, mode: 'ok' },
      { at: WINDOW_START, mode: 'refuse' },
      { at: WINDOW_END, mode: 'ok', capacityFrom: 0.3, rampMs: 5000 },
    ],
    load: [{ at: 0, rate: 300 }],
    clients: 1,
    down: true,
    durationMs: 18_000,
    faults: [[WINDOW_START, WINDOW_END]],
    unhealthy: [[WINDOW_START, WINDOW_END + 5000]],
    notes: [
      'After the outage the dependency can serve less than it is offered until about 12 s: whatever is sent beyond its capacity queues there, ' +
        'and a burst of waiting or retried calls at 9 s makes that queue longer for everyone.',
      'Calls in window counts the outage (3–9 s) only; the weak phase after it is judged by success and latency.',
    ],
  },
];

// ---------------------------------------------------------------- load driver (child)

interface CaseJob {
  type: 'case';
  scenario: ScenarioName;
  variant: VariantId;
  port: number;
  load: LoadPhase[];
  clients: number;
  durationMs: number;
  capMs: number;
  /** Unhealthy spans: a load-shed refusal outside them counts as a healthy-phase shed. */
  faults: [number, number][];
}

type DriverMessage = CaseJob | { type: 'go' };
type DriverReply = { type: 'ready' } | { type: 'result'; raw: CaseRaw };

/** How many requests the open-loop schedule has released by time t (ms). */
function arrivalsBy(load: readonly LoadPhase[], t: number): number {
  let n = 0;
  for (let i = 0; i < load.length; i++) {
    const from = load[i]!.at;
    const to = i + 1 < load.length ? load[i + 1]!.at : Infinity;
    if (t <= from) break;
    n += (load[i]!.rate * (Math.min(t, to) - from)) / 1000;
  }
  return n;
}

function runDriver(): void {
  process.on('disconnect', () => process.exit(0));
  let job: CaseJob | undefined;
  process.on('message', (m: DriverMessage) => {
    if (m.type === 'case') {
      job = m;
      prepare(m);
    } else if (m.type === 'go' && job !== undefined) go();
  });

  let go: () => void = () => {};

  function prepare(job: CaseJob): void {
    // maxSockets is finite only so a runaway variant cannot exhaust file descriptors; no
    // variant gets near it except "no policy" under overload (which queues in the Agent).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4096, maxFreeSockets: 512 });
    const raw: CaseRaw = {
      starts: [],
      latencies: [],
      ok: [],
      attempts: [],
      failures: {},
      durationMs: job.durationMs,
      clientLoopMaxMs: 0,
      unhandledRejections: 0,
      shedHealthy: 0,
    };
    process.on('unhandledRejection', () => raw.unhandledRejections++);
    let t0 = performance.now();
    const call = httpCaller(job.port, agent, () => raw.attempts.push(performance.now() - t0));
    const variant = VARIANTS.find((v) => v.id === job.variant)!;
    const clients = Array.from({ length: job.clients }, () => variant.make(call, job.scenario));
    const loop = monitorEventLoopDelay({ resolution: 10 });
    let sent = 0;
    let outstanding = 0;
    let stopped = false;

    const finish = () => {
      loop.disable();
      raw.clientLoopMaxMs = loop.max / 1e6;
      agent.destroy();
      const reply: DriverReply = { type: 'result', raw };
      // Exit right after: some peers keep interval timers (opossum's rolling window).
      process.send!(reply, () => process.exit(0));
    };

    const issue = (i: number) => {
      const client = clients[i % clients.length]!;
      const start = performance.now();
      raw.starts.push(start - t0);
      raw.latencies.push(NaN);
      raw.ok.push(0);
      outstanding++;
      const controller = new AbortController();
      let settled = false;
      const settle = (ok: boolean, kind: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        raw.latencies[i] = performance.now() - start;
        raw.ok[i] = ok ? 1 : 0;
        if (!ok) raw.failures[kind] = (raw.failures[kind] ?? 0) + 1;
        if (kind === 'ERR_LOAD_SHED' && !inAny(start - t0, job.faults)) raw.shedHealthy!++;
        outstanding--;
        if (stopped && outstanding === 0) finish();
      };
      const timer = setTimeout(() => {
        settle(false, `caller gave up (${job.capMs / 1000} s)`);
        controller.abort(new Error('caller gave up'));
      }, job.capMs);
      let p: Promise<unknown>;
      try {
        p = client(controller.signal);
      } catch (error) {
        p = Promise.reject(error);
      }
      p.then(
        () => settle(true, ''),
        (error: unknown) => settle(false, failureKind(error)),
      );
    };

    const tick = () => {
      const now = performance.now() - t0;
      if (now < job.durationMs) {
        const due = Math.floor(arrivalsBy(job.load, now));
        while (sent < due) issue(sent++);
        setTimeout(tick, 1);
      } else {
        stopped = true;
        if (outstanding === 0) finish();
      }
    };

    go = () => {
      loop.enable();
      t0 = performance.now();
      tick();
    };
    const ready: DriverReply = { type: 'ready' };
    process.send!(ready);
  }
}

// ---------------------------------------------------------------- orchestrator

interface CaseResult {
  /** Calls sent while the dependency was faulty (all fault spans). */
  callsInFaults?: number;
  /** Requests refused by a load shedder while the dependency was healthy. */
  shedHealthy?: number;
  variant: VariantId;
  label: string;
  config: string;
  figures: Figures;
  series: TimeSeries;
  failures: Record<string, number>;
  server: Omit<ServerStats, 'arrivals'>;
  clientLoopMaxMs: number;
  unhandledRejections: number;
}

interface ScenarioResult {
  scenario: ScenarioName;
  ranAt: string;
  node: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
  seconds: number;
  cases: CaseResult[];
}

const children = new Set<ChildProcess>();

function spawn(file: string, args: string[]): ChildProcess {
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The next message of `type` from `child`; rejects if it exits or takes longer than `ms`. */
function nextMessage<M extends { type: string }, K extends M['type']>(
  child: ChildProcess,
  type: K,
  ms: number,
): Promise<Extract<M, { type: K }>> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown) => {
      if ((m as { type?: unknown }).type !== type) return;
      cleanup();
      resolve(m as Extract<M, { type: K }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) before sending '${type}'`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no '${type}' from child within ${ms} ms`));
    }, ms);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function runCase(
  spec: ScenarioSpec,
  variantId: VariantId,
): Promise<{ raw: CaseRaw; stats: ServerStats }> {
  const server = spawn(SERVER_FILE, ['--dependency-server']);
  const driver = spawn(HERE, ['--case']);
  try {
    const listening = nextMessage<ServerReply, 'listening'>(server, 'listening', 30_000);
    const configure: ServerMessage = { type: 'configure', config: spec.server };
    server.send(configure);
    const { port } = await listening;
    const ready = nextMessage<DriverReply, 'ready'>(driver, 'ready', 30_000);
    const job: CaseJob = {
      type: 'case',
      scenario: spec.name,
      variant: variantId,
      port,
      load: spec.load,
      clients: spec.clients,
      durationMs: durationOf(spec),
      capMs: CALLER_CAP_MS,
      faults: unhealthyOf(spec),
    };
    driver.send(job);
    await ready;
    const result = nextMessage<DriverReply, 'result'>(driver, 'result', CASE_WATCHDOG_MS);
    // Same tick: the fault schedule and the load schedule start together.
    const start: ServerMessage = { type: 'start', phases: spec.phases };
    server.send(start);
    driver.send({ type: 'go' } satisfies DriverMessage);
    const { raw } = await result;
    const statsReply = nextMessage<ServerReply, 'stats'>(server, 'stats', 10_000);
    server.send({ type: 'stats' } satisfies ServerMessage);
    const { stats } = await statsReply;
    return { raw, stats };
  } finally {
    server.kill();
    driver.kill();
  }
}

async function runScenario(spec: ScenarioSpec): Promise<ScenarioResult> {
  const began = performance.now();
  const loadAverageStart = loadavg();
  const cases: CaseResult[] = [];
  for (const variant of VARIANTS) {
    if (ONLY !== undefined && !ONLY.includes(variant.id)) continue;
    const { raw, stats } = await runCase(spec, variant.id);
    const f = figures(raw, windowOf(spec));
    const faults = faultsOf(spec);
    const { arrivals: _arrivals, ...server } = stats;
    cases.push({
      variant: variant.id,
      label: variant.label,
      config: variant.describe(spec.name),
      figures: f,
      series: timeSeries(raw, CHART_BUCKET_MS),
      failures: raw.failures,
      server,
      clientLoopMaxMs: raw.clientLoopMaxMs,
      unhandledRejections: raw.unhandledRejections,
      callsInFaults: raw.attempts.filter((t) => inAny(t, faults)).length,
      shedHealthy: raw.shedHealthy ?? 0,
    });
    process.stdout.write(
      `${spec.name.padEnd(12)} ${variant.label.padEnd(18)} success ${pct(f.successRate).padStart(7)}  ` +
        `calls/req ${fmt(f.amplification, 2)}  calls in window ${f.callsInWindow}  ` +
        `recovery ${recovery(f)}  p99 ${fmt(f.p99)} ms  goodput in window ${fmt(f.windowGoodput)}  ` +
        `healthy sheds ${raw.shedHealthy ?? 0}\n`,
    );
    if (ONLY !== undefined) process.stdout.write(`  failures ${JSON.stringify(raw.failures)}\n`);
  }
  const verdict = verdictFor(spec, cases);
  if (verdict !== undefined) process.stdout.write(`${verdict}\n`);
  return {
    scenario: spec.name,
    ranAt: new Date().toISOString(),
    node: `${process.version} ${process.platform}/${process.arch}`,
    loadAverageStart,
    loadAverageEnd: loadavg(),
    seconds: (performance.now() - began) / 1000,
    cases,
  };
}

// ---------------------------------------------------------------- report

/** `--variants a,b`: a tuning run of some variants only; it prints and writes nothing else. */
const ONLY = (() => {
  const arg = process.argv.find((a) => a.startsWith('--variants='));
  return arg === undefined ? undefined : arg.slice('--variants='.length).split(',');
})();

/**
 * Issue 13's bars for "bulwark defaults", as one line: success ≥ the best peer's and ≥ no
 * policy's − 2 points; calls sent while the dependency is down ≤ 5 % of no policy's; p99 ≤
 * the caller's budget; no load-shed refusal while the dependency is healthy; in overload,
 * goodput in the window ≥ 90 % of capacity.
 */
function verdictFor(spec: ScenarioSpec, cases: readonly CaseResult[]): string | undefined {
  const mine = cases.find((c) => c.variant === 'bulwark-defaults');
  const none = cases.find((c) => c.variant === 'none');
  if (mine === undefined || none === undefined) return undefined;
  const peers = cases.filter((c) => c.variant === 'cockatiel' || c.variant === 'opossum');
  const best = peers.reduce((a, c) => Math.max(a, c.figures.successRate), 0);
  const checks: [string, boolean][] = [];
  const s = mine.figures.successRate;
  checks.push([`success ${pct(s)} ≥ best peer ${pct(best)}`, s >= best]);
  checks.push([
    `≥ no policy − 2 pts (${pct(none.figures.successRate - 0.02)})`,
    s >= none.figures.successRate - 0.02,
  ]);
  if (spec.down) {
    const mineCalls = mine.callsInFaults ?? mine.figures.callsInWindow;
    const noneCalls = none.callsInFaults ?? none.figures.callsInWindow;
    checks.push([
      `calls while down ${mineCalls} ≤ 5 % of no policy's ${noneCalls} (${fmt(noneCalls * 0.05)})`,
      mineCalls <= noneCalls * 0.05,
    ]);
  }
  checks.push([
    `p99 ${fmt(mine.figures.p99)} ms ≤ budget ${CALLER_BUDGET_MS} ms`,
    mine.figures.p99 <= CALLER_BUDGET_MS,
  ]);
  checks.push([`healthy-phase sheds ${mine.shedHealthy ?? 0} = 0`, (mine.shedHealthy ?? 0) === 0]);
  if (spec.capacityRps !== undefined) {
    checks.push([
      `goodput in window ${fmt(mine.figures.windowGoodput)} rps ≥ 90 % of ${spec.capacityRps}`,
      mine.figures.windowGoodput >= 0.9 * spec.capacityRps,
    ]);
  }
  const failed = checks.filter(([, ok]) => !ok).length;
  return (
    `verdict ${spec.name}: ${failed === 0 ? 'PASS' : `FAIL (${failed} of ${checks.length})`} — ` +
    checks.map(([text, ok]) => `${ok ? '✓' : '✗'} ${text}`).join('; ')
  );
}

const COLORS: Record<VariantId, { color: string; dash?: string }> = {
  none: { color: '#7f7f7f', dash: '5 3' },
  cockatiel: { color: '#1f77b4' },
  opossum: { color: '#ff7f0e', dash: '9 3' },
  'bulwark-defaults': { color: '#2ca02c', dash: '3 2' },
  'bulwark-retry-breaker': { color: '#9467bd', dash: '6 2 2 2' },
  'bulwark-tuned': { color: '#d62728' },
};

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const pct = (n: number) => (Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : '–');
const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' / ');

function recovery(f: Figures): string {
  if (f.recoveryMs === undefined) return `> ${fmt(f.recoveryLimitMs / 1000, 1)} s`;
  return `${fmt(f.recoveryMs / 1000, 1)} s`;
}

function svgFor(spec: ScenarioSpec, result: ScenarioResult): string {
  const lines = (pick: (s: TimeSeries) => readonly (number | undefined)[], scale = 1): Line[] =>
    result.cases.map((c) => ({
      name: c.label,
      ...COLORS[c.variant],
      points: c.series.t.map((t, i) => {
        const v = pick(c.series)[i];
        return [t, v === undefined ? undefined : v * scale] as const;
      }),
    }));
  return chart({
    title: spec.title,
    subtitle: `${CHART_BUCKET_MS} ms buckets by request start time; shaded: the fault window. Run ${result.ranAt.slice(0, 16).replace('T', ' ')} UTC.`,
    xMax: durationOf(spec) / 1000,
    xLabel: 'time since start (s)',
    shade: {
      from: windowOf(spec)[0] / 1000,
      to: windowOf(spec)[1] / 1000,
      label: spec.faults && spec.faults.length > 1 ? 'faults (flapping)' : 'fault',
    },
    panels: [
      {
        title: 'Success rate',
        yLabel: 'requests succeeded (%)',
        lines: lines((s) => s.success, 100),
        scale: 'linear',
        min: 0,
        max: 100,
      },
      {
        title: 'p99 latency as the caller sees it (success or failure)',
        yLabel: 'p99 latency (ms, log)',
        lines: lines((s) => s.p99),
        scale: 'log',
        min: 1,
      },
      {
        title: 'Calls sent to the dependency',
        yLabel: 'calls per second',
        lines: lines((s) => s.callRate),
        scale: 'linear',
        min: 0,
      },
    ],
  });
}

interface Metric {
  name: string;
  get: (f: Figures) => number;
  higherIsBetter: boolean;
  /** Whether `a` beats `b` by more than noise. */
  beats: (a: number, b: number) => boolean;
  show: (v: number) => string;
}

const METRICS: Metric[] = [
  {
    name: 'success rate',
    get: (f) => f.successRate,
    higherIsBetter: true,
    beats: (a, b) => a > b + 0.01,
    show: pct,
  },
  {
    name: 'calls in the window',
    get: (f) => f.callsInWindow,
    higherIsBetter: false,
    beats: (a, b) => a < b * 0.9 && b - a >= 10,
    show: (v) => fmt(v),
  },
  {
    name: 'calls per request',
    get: (f) => f.amplification,
    higherIsBetter: false,
    beats: (a, b) => a < b - 0.05,
    show: (v) => fmt(v, 2),
  },
  {
    name: 'recovery',
    get: (f) => f.recoveryMs ?? Infinity,
    higherIsBetter: false,
    beats: (a, b) => a < b - 250,
    show: (v) => (Number.isFinite(v) ? `${fmt(v / 1000, 1)} s` : 'not within the run'),
  },
  {
    name: 'p99 latency',
    get: (f) => f.p99,
    higherIsBetter: false,
    beats: (a, b) => a < b * 0.9 && b - a > 5,
    show: (v) => `${fmt(v)} ms`,
  },
  {
    name: 'goodput',
    get: (f) => f.goodput,
    higherIsBetter: true,
    beats: (a, b) => a > b * 1.03,
    show: (v) => `${fmt(v)} rps`,
  },
];

/** Where a non-bulwark variant beats a bulwark one, metric by metric, as sentences. */
function whereOthersDoBetter(result: ScenarioResult): string[] {
  const out: string[] = [];
  const others = result.cases.filter((c) => !c.variant.startsWith('bulwark'));
  for (const mine of result.cases.filter((c) => c.variant.startsWith('bulwark'))) {
    const wins: string[] = [];
    for (const m of METRICS) {
      const own = m.get(mine.figures);
      const better = others.filter((o) => m.beats(m.get(o.figures), own));
      if (better.length === 0) continue;
      wins.push(
        `${m.name}: ${better.map((o) => `${o.label} ${m.show(m.get(o.figures))}`).join(', ')} vs ${m.show(own)}`,
      );
    }
    out.push(
      wins.length === 0
        ? `- **${mine.label}**: no other variant is better on any figure above (beyond noise margins).`
        : `- **${mine.label}** is beaten on ${wins.join('; ')}.`,
    );
  }
  return out;
}

function markdown(results: ScenarioResult[]): string {
  const lines: string[] = [
    '# Scenario benchmarks: bulwark vs cockatiel vs opossum + p-retry',
    '',
    'Generated by `npm run bench:scenarios` (bench/scenarios/run.ts); do not edit by hand. ' +
      'Each case runs in two fresh child processes: the dependency, a real node:http server on 127.0.0.1 ' +
      '(bench/scenarios/dependency-server.ts), and an open-loop load driver; this machine has 2 cores shared with ' +
      'other jobs, so every figure carries some noise (load averages below; one run, not a mean of several).',
    '',
    `Timeline of most scenarios: healthy 0–${WINDOW_START / 1000} s, fault window ${WINDOW_START / 1000}–${WINDOW_END / 1000} s, ` +
      `healthy again until ${DURATION_MS / 1000} s (flapping and slow recovery say their own). The caller gives up on any request after ${CALLER_CAP_MS / 1000} s ` +
      '(a failure); every client variant sends its calls with node:http over one keep-alive Agent, through the same function.',
    '',
    '## Figures',
    '',
    '- **requests**: logical requests the application made; **calls**: requests that reached the network (attempts, hedges, trials), and **calls/req** = calls ÷ requests (amplification).',
    '- **success**: requests that succeeded before the caller gave up; **in window**: the same for requests started inside the fault window.',
    '- **calls in window**: calls sent while the fault lasted (for overload: while the load was 3×).',
    `- **recovery**: from the end of the window to the first moment t after which requests started in [t, t + ${RECOVERY_WINDOW_MS / 1000} s) ` +
      `succeed at ≥ ${RECOVERY_THRESHOLD * 100} % (100 ms grid); "> x s" = not within what the run can measure.`,
    '- **p50 / p99**: latency as the caller sees it, over all requests, failures included (a fast failure is fast); **p99 ok**: over successes only.',
    '- **goodput**: successful requests per second over the whole run (and inside the window).',
    '',
    '## Variants',
    '',
  ];
  for (const v of VARIANTS) {
    if (v.id === 'bulwark-tuned') {
      lines.push(
        `- **${v.label}**: one config per scenario, given in each section below, chosen knowing which fault comes — an advantage ` +
          'the other variants do not get. The outage and retry-storm configs were revised once after a first trial run ' +
          '(a consecutive-failures rule added, half-open and per-client retry floor changed).',
      );
    } else lines.push(`- **${v.label}**: ${v.describe('outage')}.`);
  }
  lines.push('');

  for (const spec of SCENARIOS) {
    const result = results.find((r) => r.scenario === spec.name);
    if (!result) continue;
    lines.push(`## ${spec.title}`, '', spec.description, '');
    lines.push(
      `Run ${result.ranAt.slice(0, 19).replace('T', ' ')} UTC, Node ${result.node}, ${fmt(result.seconds)} s for the ${result.cases.length} cases; ` +
        `load average (1/5/15 min) ${loads(result.loadAverageStart)} at start, ${loads(result.loadAverageEnd)} at end.`,
      '',
    );
    lines.push(
      '| variant | requests | calls (calls/req) | success | success in window | calls in window | recovery | p50 ms | p99 ms | p99 ok ms | goodput rps (in window) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const c of result.cases) {
      const f = c.figures;
      lines.push(
        `| ${c.label} | ${f.requests} | ${f.calls} (${fmt(f.amplification, 2)}) | ${pct(f.successRate)} | ${pct(f.windowSuccessRate)} | ` +
          `${f.callsInWindow} | ${recovery(f)} | ${fmt(f.p50, 1)} | ${fmt(f.p99)} | ${fmt(f.p99ok)} | ${fmt(f.goodput)} (${fmt(f.windowGoodput)}) |`,
      );
    }
    const verdict = verdictFor(spec, result.cases);
    if (verdict !== undefined) lines.push('', `**${verdict}**`);
    lines.push('', `![${spec.title}](scenarios-${spec.name}.svg)`, '');
    const tuned = result.cases.find((c) => c.variant === 'bulwark-tuned');
    if (tuned) lines.push(`bulwark tuned here: \`${tuned.config}\``, '');
    lines.push('Why requests failed, and what the dependency saw:', '');
    let anyStall = false;
    for (const c of result.cases) {
      const kinds = Object.entries(c.failures)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${n}`)
        .join(', ');
      const stalled = c.clientLoopMaxMs > STALL_MS || c.server.loopMaxMs > STALL_MS ? ' ⚠' : '';
      if (stalled) anyStall = true;
      lines.push(
        `- ${c.label}: ${kinds || 'no failures'}. Dependency received ${c.server.received}, finished ${c.server.wasted} for callers already gone; ` +
          `worst event-loop delay client ${fmt(c.clientLoopMaxMs)} ms, dependency ${fmt(c.server.loopMaxMs)} ms${stalled}` +
          (c.unhandledRejections > 0 ? `; ${c.unhandledRejections} unhandled rejections` : '') +
          '.',
      );
    }
    if (anyStall)
      lines.push(
        '',
        `⚠ = an event loop stalled for more than ${STALL_MS} ms: that case's figures include the stall (timers fired late, so a ` +
          `latency can exceed the caller's ${CALLER_CAP_MS / 1000} s limit, and requests due during the stall left in a burst).`,
      );
    lines.push('', 'Reading it:', '');
    for (const note of spec.notes) lines.push(`- ${note}`);
    lines.push('', 'Where another variant does better than bulwark (computed from the table):', '');
    lines.push(...whereOthersDoBetter(result), '');
  }
  return lines.join('\n');
}

function writeReport(): void {
  const results: ScenarioResult[] = [];
  for (const spec of SCENARIOS) {
    const file = join(RESULTS, `scenarios-${spec.name}.json`);
    if (existsSync(file)) results.push(JSON.parse(readFileSync(file, 'utf8')) as ScenarioResult);
  }
  writeFileSync(join(RESULTS, 'scenarios.md'), markdown(results));
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !SCENARIOS.some((s) => s.name === w));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown scenario(s): ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`,
    );
    process.exit(2);
  }
  const selected =
    wanted.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => wanted.includes(s.name));
  const watchdog = setTimeout(
    () => {
      process.stderr.write('bench:scenarios: watchdog fired, stopping\n');
      for (const c of children) c.kill('SIGKILL');
      process.exit(1);
    },
    selected.length * VARIANTS.length * CASE_WATCHDOG_MS,
  );
  watchdog.unref();
  mkdirSync(RESULTS, { recursive: true });
  if (process.argv.includes('--report-only')) {
    writeReport();
    process.stdout.write(`rewrote ${join(RESULTS, 'scenarios.md')} from the saved results\n`);
    process.exit(0);
  }
  for (const spec of selected) {
    const result = await runScenario(spec);
    if (ONLY !== undefined) continue;
    writeFileSync(join(RESULTS, `scenarios-${spec.name}.json`), `${JSON.stringify(result)}\n`);
    writeFileSync(join(RESULTS, `scenarios-${spec.name}.svg`), svgFor(spec, result));
    writeReport();
    process.stdout.write(`${spec.name}: ${fmt(result.seconds)} s\n`);
  }
  process.stdout.write(`wrote ${join(RESULTS, 'scenarios.md')}\n`);
  process.exit(0);
}

if (process.argv.includes('--case')) runDriver();
else
  main().catch((error: unknown) => {
    process.stderr.write(`bench:scenarios failed: ${String((error as Error)?.stack ?? error)}\n`);
    for (const c of children) c.kill('SIGKILL');
    process.exit(1);
  });
