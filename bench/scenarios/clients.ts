/**
 * The five clients the scenario benchmarks compare. Each one turns a logical request into
 * calls to the same downstream function, `call(signal)`, a node:http GET over one shared
 * keep-alive Agent: every variant sends the same bytes the same way, and every downstream
 * call is counted in one place.
 *
 * Where the libraries share a concept, the peers get the same numbers (SHARED): an attempt
 * timeout of 1 s, 3 attempts in all with exponential backoff from 100 ms, a breaker that
 * opens after 5 consecutive failures and tries again after 5 s, a bulkhead of 100. Each
 * peer is written as its README shows, with the care a user would take: retries skip the
 * library's own fast rejections (open breaker, full bulkhead), as bulwark's default does.
 * "bulwark defaults" is `dependency(name, {})` with only the caller's budget given per call;
 * "bulwark retry+breaker defaults" is `{ retry: {}, circuitBreaker: {} }` (each part with its
 * own defaults); neither uses SHARED. "bulwark tuned" is chosen per scenario (TUNED) by
 * someone who knows which fault to expect.
 */
import http from 'node:http';
import {
  BrokenCircuitError,
  BulkheadRejectedError as CockatielBulkheadRejected,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  bulkhead as cockatielBulkhead,
  circuitBreaker as cockatielBreaker,
  handleWhen,
  retry as cockatielRetry,
  timeout as cockatielTimeout,
  wrap,
} from 'cockatiel';
import CircuitBreaker from 'opossum';
import pRetry from 'p-retry';
import { dependency, type DependencyConfig } from '../../src/index.js';

export type ScenarioName =
  'outage' | 'brownout' | 'overload' | 'retry-storm' | 'flapping' | 'slow-recovery';
export type VariantId =
  'none' | 'cockatiel' | 'opossum' | 'bulwark-defaults' | 'bulwark-retry-breaker' | 'bulwark-tuned';

/** The caller's budget, given per call to the bulwark variants (the caller gives up then anyway). */
export const CALLER_BUDGET_MS = 3000;

/** One downstream call: resolves on 200, rejects with HttpStatusError or a socket error. */
export type CallDependency = (signal?: AbortSignal) => Promise<void>;
/** One logical request, as the application makes it; `signal` is the caller giving up. */
export type Client = (signal: AbortSignal) => Promise<unknown>;

export interface ClientVariant {
  id: VariantId;
  label: string;
  /** One client instance (a scenario with many clients makes one per client). */
  make(call: CallDependency, scenario: ScenarioName): Client;
  /** The configuration in words, for the report. */
  describe(scenario: ScenarioName): string;
}

/** A non-2xx answer; `status` is where bulwark's and everyone's classifiers look. */
export class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
    this.name = 'HttpStatusError';
  }
}

/**
 * The downstream call every variant uses. `onAttempt` runs once per call actually sent
 * (a call refused locally by a breaker or bulkhead never gets here).
 */
export function httpCaller(port: number, agent: http.Agent, onAttempt: () => void): CallDependency {
  return (signal) =>
    new Promise<void>((resolve, reject) => {
      onAttempt();
      const req = http.request({ host: '127.0.0.1', port, path: '/work', agent, signal }, (res) => {
        const status = res.statusCode ?? 0;
        res.on('error', reject);
        res.on('end', () => (status === 200 ? resolve() : reject(new HttpStatusError(status))));
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
}

export const SHARED = {
  attemptTimeoutMs: 1000,
  /** Attempts in all, counting the first. */
  attempts: 3,
  backoffInitialMs: 100,
  consecutiveFailures: 5,
  halfOpenAfterMs: 5000,
  concurrency: 100,
} as const;

/** What "bulwark defaults" passes: nothing; the dependency's defaults decide everything. */
export const DEFAULTS_CONFIG: DependencyConfig = {};
/** What "bulwark retry+breaker defaults" passes: the two parts switched on, every value defaulted. */
export const RETRY_BREAKER_CONFIG: DependencyConfig = { retry: {}, circuitBreaker: {} };

/**
 * bulwark tuned, per scenario. Common to all: a 2 s budget (the caller gives up at 3 s),
 * attempt timeouts sized from the healthy latency (p99 ≈ 60 ms; 20 ms fixed in overload),
 * and a retry budget so retries add a bounded share of load.
 */
export const TUNED: Record<ScenarioName, DependencyConfig> = {
  // Fast-failing outage: trip on 5 failures in a row (or half of the last 2 s), probe
  // every half second so recovery is seen within about half a second.
  outage: {
    budget: 2000,
    timeout: 500,
    retry: {
      maxAttempts: 3,
      backoff: { initial: 50, max: 500 },
      retryBudget: { ratio: 0.1, minPerSecond: 5 },
    },
    circuitBreaker: {
      consecutiveFailures: 5,
      failureRate: 0.5,
      window: { ms: 2000, buckets: 10 },
      minimumCalls: 10,
      halfOpenAfter: 500,
    },
    bulkhead: { maxConcurrent: 100 },
  },
  // 30 % errors must not trip the breaker (rate threshold 0.8, not 5 in a row), retries
  // need a budget above the error rate, and a hedge cuts the slow tail.
  brownout: {
    budget: 2000,
    timeout: 1000,
    retry: {
      maxAttempts: 3,
      backoff: { initial: 50, max: 500 },
      retryBudget: { ratio: 0.5, minPerSecond: 10 },
    },
    circuitBreaker: {
      failureRate: 0.8,
      window: { ms: 5000, buckets: 10 },
      minimumCalls: 20,
      halfOpenAfter: 1000,
    },
    bulkhead: { maxConcurrent: 100 },
    hedge: { delay: 300, maxHedges: 1 },
  },
  // Overload is a concurrency problem: an adaptive limit finds the dependency's
  // concurrency from latency and sheds the rest at once; a breaker would only add
  // whole seconds of refusals, so there is none. Retries are few and budgeted.
  overload: {
    budget: 2000,
    timeout: 1000,
    loadShedder: { limit: { algorithm: 'gradient', min: 4, max: 200, initial: 20 } },
    retry: { maxAttempts: 2, retryBudget: { ratio: 0.1, minPerSecond: 5 } },
  },
  // Per client instance (50 of them): each may retry only a trickle beyond 10 % of its
  // traffic (0.2/s, not the default 10/s: 50 replicas × 10/s would be a storm of its own),
  // trips after 3 failures in a row, and backs its half-open probes off (1 s, 2 s, 4 s).
  // Like the outage, but probes back off less (the dependency comes back every 4 s) and
  // waiting callers ride out the short down phases.
  flapping: {
    budget: 2000,
    timeout: 500,
    retry: {
      maxAttempts: 3,
      backoff: { initial: 50, max: 500 },
      retryBudget: { ratio: 0.1, minPerSecond: 5 },
    },
    circuitBreaker: {
      consecutiveFailures: 5,
      failureRate: 0.5,
      window: { ms: 2000, buckets: 10 },
      minimumCalls: 10,
      halfOpenAfter: 250,
      whileOpen: { wait: true, maxWait: 1000 },
    },
    bulkhead: { maxConcurrent: 100 },
  },
  // Outage then a dependency at 30 % capacity: the breaker for the outage, an adaptive
  // limit for the weak recovery, a long slow start.
  'slow-recovery': {
    budget: 2000,
    timeout: 1000,
    retry: { maxAttempts: 2, retryBudget: { ratio: 0.1, minPerSecond: 5 } },
    circuitBreaker: {
      consecutiveFailures: 5,
      halfOpenAfter: 500,
      whileOpen: { wait: true, maxWait: 1000 },
      slowStart: { window: 5000 },
    },
    loadShedder: { limit: { algorithm: 'gradient', min: 4, max: 200, initial: 20 } },
  },
  'retry-storm': {
    budget: 2000,
    timeout: 500,
    retry: {
      maxAttempts: 3,
      backoff: { initial: 50, max: 500 },
      retryBudget: { ratio: 0.1, minPerSecond: 0.2 },
    },
    circuitBreaker: {
      consecutiveFailures: 3,
      failureRate: 0.5,
      window: { ms: 2000, buckets: 10 },
      minimumCalls: 5,
      halfOpenAfter: { initial: 1000, multiplier: 2, max: 4000 },
    },
  },
};

function isLocalRejection(error: unknown): boolean {
  return error instanceof BrokenCircuitError || error instanceof CockatielBulkheadRejected;
}

/** opossum's own fast rejections: open breaker, capacity semaphore, shut down. */
const OPOSSUM_LOCAL = new Set(['EOPENBREAKER', 'ESEMLOCKED', 'ESHUTDOWN']);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const none: ClientVariant = {
  id: 'none',
  label: 'no policy',
  make: (call) => (signal) => call(signal),
  describe: () => 'one call per request, no timeout of its own (the caller gives up at 3 s)',
};

const cockatiel: ClientVariant = {
  id: 'cockatiel',
  label: 'cockatiel',
  make(call) {
    const policy = wrap(
      // maxAttempts counts retries in cockatiel: 2 retries = 3 attempts.
      cockatielRetry(
        handleWhen((e) => !isLocalRejection(e)),
        {
          maxAttempts: SHARED.attempts - 1,
          backoff: new ExponentialBackoff({ initialDelay: SHARED.backoffInitialMs }),
        },
      ),
      cockatielBreaker(
        handleWhen((e) => !(e instanceof CockatielBulkheadRejected)),
        {
          halfOpenAfter: SHARED.halfOpenAfterMs,
          breaker: new ConsecutiveBreaker(SHARED.consecutiveFailures),
        },
      ),
      cockatielBulkhead(SHARED.concurrency, 0),
      cockatielTimeout(SHARED.attemptTimeoutMs, TimeoutStrategy.Aggressive),
    );
    return (signal) => policy.execute(({ signal: attemptSignal }) => call(attemptSignal), signal);
  },
  describe: () =>
    `wrap(retry(handleWhen(not its own rejections), { maxAttempts: ${SHARED.attempts - 1} retries, ` +
    `ExponentialBackoff({ initialDelay: ${SHARED.backoffInitialMs} }) (decorrelated jitter) }), ` +
    `circuitBreaker(handleWhen(not bulkhead rejections), { ConsecutiveBreaker(${SHARED.consecutiveFailures}), halfOpenAfter: ${SHARED.halfOpenAfterMs} }), ` +
    `bulkhead(${SHARED.concurrency}, 0), timeout(${SHARED.attemptTimeoutMs}, Aggressive))`,
};

const opossum: ClientVariant = {
  id: 'opossum',
  label: 'opossum + p-retry',
  make(call) {
    const breaker = new CircuitBreaker((signal: AbortSignal) => call(signal), {
      timeout: SHARED.attemptTimeoutMs,
      resetTimeout: SHARED.halfOpenAfterMs,
      errorThresholdPercentage: 50,
    });
    return (signal) =>
      pRetry(() => breaker.fire(signal), {
        retries: SHARED.attempts - 1,
        minTimeout: SHARED.backoffInitialMs,
        factor: 2,
        randomize: true,
        signal,
        shouldRetry: ({ error }) => !OPOSSUM_LOCAL.has(codeOf(error) ?? ''),
      });
  },
  describe: () =>
    `pRetry(() => breaker.fire(signal), { retries: ${SHARED.attempts - 1}, minTimeout: ${SHARED.backoffInitialMs}, factor: 2, randomize: true, ` +
    `shouldRetry: not EOPENBREAKER }) around new CircuitBreaker(call, { timeout: ${SHARED.attemptTimeoutMs}, ` +
    `resetTimeout: ${SHARED.halfOpenAfterMs}, errorThresholdPercentage: 50 }) (rolling 10 s window, other options default; ` +
    'no bulkhead; its timeout does not abort the request, which runs on until the caller gives up)',
};

function bulwarkClient(
  config: DependencyConfig,
  call: CallDependency,
  budget: number | undefined,
): Client {
  const dep = dependency('dependency', config);
  const run = (ctx: { signal: AbortSignal }) => call(ctx.signal);
  return budget === undefined
    ? (signal) => dep.execute(run, { signal })
    : (signal) => dep.execute(run, { signal, budget });
}

const bulwarkDefaults: ClientVariant = {
  id: 'bulwark-defaults',
  label: 'bulwark defaults',
  make: (call) => bulwarkClient(DEFAULTS_CONFIG, call, CALLER_BUDGET_MS),
  describe() {
    // Read back from a real instance, so the report cannot drift from the library's defaults.
    const dep = dependency('dependency', DEFAULTS_CONFIG);
    const limit = dep.loadShedder?.limiter;
    return (
      `dependency('dependency', {}), each call given the caller's budget (${CALLER_BUDGET_MS} ms) = ` +
      `load shedder with a ${limit?.algorithm ?? '?'} limit in [${limit?.min}, ${limit?.max}] (initial ${dep.loadShedder?.limit}) ` +
      'and a queue of 100 (LIFO and 50 ms while it stands), ' +
      `attempt timeout ${dep.timeout} ms, retry maxAttempts ${dep.retry?.maxAttempts} (backoff 100 ms ×2, full jitter; ` +
      'retry budget 50 % + 1/s), breaker with the default trip rule (10 failures in a row, 5 at low traffic, 3 within ' +
      '10 s of a recovery, or 50 % of 10 s), open 300 ms growing ×1.5 to 30 s, up to 100 calls wait for the trial up to ' +
      '1 s within their budget, 1 s slow start'
    );
  },
};

const bulwarkRetryBreaker: ClientVariant = {
  id: 'bulwark-retry-breaker',
  label: 'bulwark retry+breaker',
  make: (call) => bulwarkClient(RETRY_BREAKER_CONFIG, call, CALLER_BUDGET_MS),
  describe() {
    const dep = dependency('dependency', RETRY_BREAKER_CONFIG);
    return (
      `dependency('dependency', { retry: {}, circuitBreaker: {} }), each call given the caller's budget = the same ` +
      `as bulwark defaults but retry without a retry budget (maxAttempts ${dep.retry?.maxAttempts}), attempt timeout ${dep.timeout} ms`
    );
  },
};

const bulwarkTuned: ClientVariant = {
  id: 'bulwark-tuned',
  label: 'bulwark tuned',
  make: (call, scenario) => bulwarkClient(TUNED[scenario], call, undefined),
  describe: (scenario) => `dependency('dependency', ${JSON.stringify(TUNED[scenario])})`,
};

export const VARIANTS: readonly ClientVariant[] = [
  none,
  cockatiel,
  opossum,
  bulwarkDefaults,
  bulwarkRetryBreaker,
  bulwarkTuned,
];

/** A short, bounded name for why a request failed (for the report's failure breakdown). */
export function failureKind(error: unknown): string {
  if (error instanceof HttpStatusError) return `HTTP ${error.status}`;
  const code = codeOf(error) ?? codeOf((error as { cause?: unknown } | null)?.cause);
  if (code !== undefined && !/^\d+$/.test(code)) return code;
  // cockatiel's errors keep the name 'Error'; their class names say what happened.
  const name = (error as { name?: unknown } | null)?.name;
  const ctor = (error as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  if (name === 'Error' && typeof ctor === 'string' && ctor !== 'Error') return ctor;
  return typeof name === 'string' ? name : 'unknown';
}
