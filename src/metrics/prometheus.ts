import {
  CALL_OUTCOMES,
  CIRCUIT_STATES,
  IDEMPOTENCY_RESULTS,
  MESSAGE_OUTCOMES,
  RETRY_REASONS,
  SHED_PRIORITIES,
  SHED_REASONS,
  type CallOutcome,
  type CircuitStateName,
  type DependencyMetrics,
  type IdempotencyResult,
  type MessageOutcome,
  type MetricsProvider,
  type RetryMetricReason,
  type ShedPriority,
  type ShedReason,
} from './recorder.js';
import { ConfigError } from '../core/errors.js';

/**
 * The subset of a prom-client (or @prometheus-io/client) Registry bulwark uses. Our
 * metrics implement the registry's metric interface themselves (`get()` producing values
 * at scrape time), so the hot path only adds to plain numbers: prom-client's own
 * labelled counter + histogram timer costs about 2 µs per call.
 */
export interface PromRegistry {
  /** Adds a metric to the registry. */
  registerMetric(metric: unknown): void;
  /** The metric registered under `name`, if any: how a second call finds the first's metrics. */
  getSingleMetric(name: string): unknown;
}

/** The subset of the prom-client module used when no registry is given. */
export interface PromClient {
  /** The registry class, instantiated once by `prometheusMetrics()`. */
  Registry: new () => PromRegistry;
}

/** Options of `prometheusMetrics()`: a `registry`, or a `client` to create one. */
export interface PrometheusMetricsOptions {
  /** Where the metrics are registered. Never the global registry unless you pass it. */
  registry?: PromRegistry;
  /** prom-client or @prometheus-io/client; used only to create a registry when none is given. */
  client?: PromClient;
  /** Metric name prefix (default 'bulwark_'). */
  prefix?: string;
  /** Histogram buckets in seconds (default prom-client's: 5 ms … 10 s). */
  buckets?: number[];
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HUB = Symbol.for('bulwark.prometheus.hub');

class Recorder implements DependencyMetrics {
  readonly calls = new Float64Array(CALL_OUTCOMES.length);
  /** Per outcome: one count per bucket (non-cumulative), then +Inf, sum. */
  readonly histogram: Float64Array;
  readonly retries = new Float64Array(RETRY_REASONS.length);
  budgetExhausted = 0;
  readonly transitions = new Float64Array(CIRCUIT_STATES.length * CIRCUIT_STATES.length);
  readonly shed = new Float64Array(SHED_PRIORITIES.length * SHED_REASONS.length);
  readonly idempotency = new Map<string, Float64Array>();
  rateLimited = 0;
  /** Paced waits: one count per bucket (non-cumulative), then +Inf, sum. */
  readonly rateLimitWait: Float64Array;
  rateLimit = false;
  circuitState: (() => CircuitStateName) | undefined;
  bulkhead: (() => { inFlight: number; queued: number }) | undefined;
  concurrencyLimit: (() => number) | undefined;
  readonly messages = new Float64Array(MESSAGE_OUTCOMES.length);
  /** One reader per paused-able consumer of this dependency; the gauge is their sum. */
  readonly paused: Array<() => number> = [];

  constructor(
    readonly dependency: string,
    readonly buckets: readonly number[],
  ) {
    this.histogram = new Float64Array(CALL_OUTCOMES.length * (buckets.length + 2));
    this.rateLimitWait = new Float64Array(buckets.length + 2);
  }

  observeRateLimit(): void {
    this.rateLimit = true;
  }

  recordRateLimited(): void {
    this.rateLimit = true;
    this.rateLimited++;
  }

  recordRateLimitWait(seconds: number): void {
    this.rateLimit = true;
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    this.rateLimitWait[i]! += 1;
    this.rateLimitWait[this.buckets.length + 1]! += seconds;
  }

  recordCall(outcome: CallOutcome, seconds: number): void {
    const o = OUTCOME_INDEX[outcome];
    this.calls[o]! += 1;
    const stride = this.buckets.length + 2;
    const base = o * stride;
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    this.histogram[base + i]! += 1;
    this.histogram[base + stride - 1]! += seconds;
  }

  recordRetry(reason: RetryMetricReason): void {
    this.retries[RETRY_REASONS.indexOf(reason)]! += 1;
  }

  recordRetryBudgetExhausted(): void {
    this.budgetExhausted++;
  }

  recordCircuitTransition(from: CircuitStateName, to: CircuitStateName): void {
    this.transitions[
      CIRCUIT_STATES.indexOf(from) * CIRCUIT_STATES.length + CIRCUIT_STATES.indexOf(to)
    ]! += 1;
  }

  observeCircuitState(read: () => CircuitStateName): void {
    this.circuitState = read;
  }

  observeBulkhead(read: () => { inFlight: number; queued: number }): void {
    this.bulkhead = read;
  }

  recordLoadShed(priority: ShedPriority, reason: ShedReason): void {
    this.shed[
      SHED_PRIORITIES.indexOf(priority) * SHED_REASONS.length + SHED_REASONS.indexOf(reason)
    ]! += 1;
  }

  observeConcurrencyLimit(read: () => number): void {
    this.concurrencyLimit = read;
  }

  recordIdempotency(store: string, result: IdempotencyResult): void {
    let counts = this.idempotency.get(store);
    if (counts === undefined)
      this.idempotency.set(store, (counts = new Float64Array(IDEMPOTENCY_RESULTS.length)));
    counts[IDEMPOTENCY_RESULTS.indexOf(result)]! += 1;
  }

  recordMessage(outcome: MessageOutcome): void {
    this.messages[MESSAGE_OUTCOMES.indexOf(outcome)]! += 1;
  }

  observeQueuePaused(read: () => number): void {
    this.paused.push(read);
  }
}

const OUTCOME_INDEX = Object.fromEntries(CALL_OUTCOMES.map((o, i) => [o, i])) as Record<
  CallOutcome,
  number
>;

/** Holds every dependency's recorder for one registry + prefix; shared by repeated calls. */
class Hub {
  readonly recorders = new Map<string, Recorder>();
  constructor(readonly buckets: readonly number[]) {}
}

/** A metric in prom-client's registry interface whose values are produced on scrape. */
class CollectedMetric {
  readonly aggregator = 'sum';
  [HUB]: Hub;
  constructor(
    public name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    hub: Hub,
    private readonly collect: (hub: Hub, name: string) => MetricValue[],
  ) {
    this[HUB] = hub;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: this.collect(this[HUB], this.name),
    };
  }

  /** Counters here are derived from the policies' own counts; a registry reset leaves them be. */
  reset(): void {}
}

function definitions(
  p: string,
): Array<
  [string, string, 'counter' | 'gauge' | 'histogram', (hub: Hub, name: string) => MetricValue[]]
> {
  const each = (hub: Hub, fn: (r: Recorder) => MetricValue[]) =>
    [...hub.recorders.values()].flatMap(fn);
  return [
    [
      `${p}calls_total`,
      'Calls through a dependency by final outcome.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          CALL_OUTCOMES.map((outcome, i) => ({
            labels: { dependency: r.dependency, outcome },
            value: r.calls[i]!,
          })),
        ),
    ],
    [
      `${p}call_duration_seconds`,
      'Duration of calls through a dependency, by final outcome.',
      'histogram',
      (hub, name) => each(hub, (r) => histogramValues(r, name)),
    ],
    [
      `${p}retries_total`,
      'Retries made, by the reason for the retry.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          RETRY_REASONS.map((reason, i) => ({
            labels: { dependency: r.dependency, reason },
            value: r.retries[i]!,
          })),
        ),
    ],
    [
      `${p}retry_budget_exhausted_total`,
      'Retries refused because the retry budget was empty.',
      'counter',
      (hub) =>
        each(hub, (r) => [{ labels: { dependency: r.dependency }, value: r.budgetExhausted }]),
    ],
    [
      `${p}circuit_state`,
      'Circuit breaker state: 1 for the current state, 0 for the others.',
      'gauge',
      (hub) =>
        each(hub, (r) => {
          if (r.circuitState === undefined) return [];
          const current = r.circuitState();
          return CIRCUIT_STATES.map((state) => ({
            labels: { dependency: r.dependency, state },
            value: state === current ? 1 : 0,
          }));
        }),
    ],
    [
      `${p}circuit_transitions_total`,
      'Circuit breaker state transitions.',
      'counter',
      (hub) =>
        each(hub, (r) => {
          if (r.circuitState === undefined) return [];
          const out: MetricValue[] = [];
          CIRCUIT_STATES.forEach((from, i) =>
            CIRCUIT_STATES.forEach((to, j) => {
              if (i !== j)
                out.push({
                  labels: { dependency: r.dependency, from, to },
                  value: r.transitions[i * CIRCUIT_STATES.length + j]!,
                });
            }),
          );
          return out;
        }),
    ],
    [
      `${p}bulkhead_in_flight`,
      'Calls running inside the bulkhead.',
      'gauge',
      (hub) =>
        each(hub, (r) =>
          r.bulkhead
            ? [{ labels: { dependency: r.dependency }, value: r.bulkhead().inFlight }]
            : [],
        ),
    ],
    [
      `${p}bulkhead_queued`,
      'Calls waiting in the bulkhead queue.',
      'gauge',
      (hub) =>
        each(hub, (r) =>
          r.bulkhead ? [{ labels: { dependency: r.dependency }, value: r.bulkhead().queued }] : [],
        ),
    ],
    [
      `${p}load_shed_total`,
      'Calls rejected by the load shedder, by priority and reason.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          r.concurrencyLimit === undefined
            ? []
            : SHED_PRIORITIES.flatMap((priority, i) =>
                SHED_REASONS.map((reason, j) => ({
                  labels: { dependency: r.dependency, priority, reason },
                  value: r.shed[i * SHED_REASONS.length + j]!,
                })),
              ),
        ),
    ],
    [
      `${p}concurrency_limit`,
      'Current concurrency limit of the load shedder.',
      'gauge',
      (hub) =>
        each(hub, (r) =>
          r.concurrencyLimit
            ? [{ labels: { dependency: r.dependency }, value: r.concurrencyLimit() }]
            : [],
        ),
    ],
    [
      `${p}messages_total`,
      'Queued messages handled through a dependency, by outcome.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          r.messages.some((c) => c > 0) || r.paused.length > 0
            ? MESSAGE_OUTCOMES.map((outcome, i) => ({
                labels: { dependency: r.dependency, outcome },
                value: r.messages[i]!,
              }))
            : [],
        ),
    ],
    [
      `${p}queue_paused`,
      'Queue consumers paused because the dependency is unavailable (open circuit).',
      'gauge',
      (hub) =>
        each(hub, (r) =>
          r.paused.length > 0
            ? [
                {
                  labels: { dependency: r.dependency },
                  value: r.paused.reduce((sum, read) => sum + read(), 0),
                },
              ]
            : [],
        ),
    ],
    [
      `${p}rate_limited_total`,
      'Calls refused by the rate limit.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          r.rateLimit ? [{ labels: { dependency: r.dependency }, value: r.rateLimited }] : [],
        ),
    ],
    [
      `${p}rate_limit_wait_seconds`,
      'Time calls paced by the rate limit waited for their slot.',
      'histogram',
      (hub, name) => each(hub, (r) => (r.rateLimit ? rateLimitWaitValues(r, name) : [])),
    ],
    [
      `${p}idempotency_total`,
      'Idempotent calls by dependency, store and result.',
      'counter',
      (hub) =>
        each(hub, (r) =>
          [...r.idempotency].flatMap(([store, counts]) =>
            IDEMPOTENCY_RESULTS.map((result, i) => ({
              labels: { dependency: r.dependency, store, result },
              value: counts[i]!,
            })),
          ),
        ),
    ],
  ];
}

function histogramValues(r: Recorder, name: string): MetricValue[] {
  const out: MetricValue[] = [];
  const stride = r.buckets.length + 2;
  CALL_OUTCOMES.forEach((outcome, o) => {
    const base = o * stride;
    let cumulative = 0;
    r.buckets.forEach((le, i) => {
      cumulative += r.histogram[base + i]!;
      out.push({
        metricName: `${name}_bucket`,
        labels: { dependency: r.dependency, outcome, le },
        value: cumulative,
      });
    });
    cumulative += r.histogram[base + r.buckets.length]!;
    out.push({
      metricName: `${name}_bucket`,
      labels: { dependency: r.dependency, outcome, le: '+Inf' },
      value: cumulative,
    });
    out.push({
      metricName: `${name}_sum`,
      labels: { dependency: r.dependency, outcome },
      value: r.histogram[base + stride - 1]!,
    });
    out.push({
      metricName: `${name}_count`,
      labels: { dependency: r.dependency, outcome },
      value: cumulative,
    });
  });
  return out;
}

function rateLimitWaitValues(r: Recorder, name: string): MetricValue[] {
  const out: MetricValue[] = [];
  const labels = { dependency: r.dependency };
  let cumulative = 0;
  r.buckets.forEach((le, i) => {
    cumulative += r.rateLimitWait[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
  });
  cumulative += r.rateLimitWait[r.buckets.length]!;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({
    metricName: `${name}_sum`,
    labels,
    value: r.rateLimitWait[r.buckets.length + 1]!,
  });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
  return out;
}

/** A metrics provider backed by a Prometheus registry, from `prometheusMetrics()`. */
export interface PrometheusMetrics extends MetricsProvider {
  /** The registry the metrics are in: the one given, or the one created from `client`. */
  readonly registry: PromRegistry;
}

/**
 * Prometheus metrics for bulwark, in your registry: pass the result as the `metrics`
 * option of `dependency()` / `dependencies()`. Calling it again on the same registry and
 * prefix reuses the metrics (no "already registered" error). Labels are bounded:
 * dependency, policy and fixed outcome/state/reason values — never keys, URLs or messages.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { dependency } from 'bulwark';
 * import { prometheusMetrics } from 'bulwark/prometheus';
 *
 * const registry = new Registry(); // yours: serve `await registry.metrics()` on /metrics
 * const metrics = prometheusMetrics({ registry });
 * const payments = dependency('payments', { retry: {}, metrics });
 * const search = dependency('search', { hedge: { delay: '50ms' }, metrics });
 * console.log(await registry.metrics()); // bulwark_calls_total{dependency="payments",…} 0 …
 * ```
 */
export function prometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const prefix = options.prefix ?? 'bulwark_';
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new ConfigError([
      {
        path: 'prometheusMetrics.prefix',
        expected: 'a metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)',
        got: prefix,
      },
    ]);
  }
  const buckets = options.buckets ?? DEFAULT_BUCKETS;
  if (
    !Array.isArray(buckets) ||
    buckets.length === 0 ||
    buckets.some((b, i) => !(b > 0) || (i > 0 && b <= buckets[i - 1]!))
  ) {
    throw new ConfigError([
      {
        path: 'prometheusMetrics.buckets',
        expected: 'increasing positive numbers (seconds)',
        got: buckets,
      },
    ]);
  }
  let registry = options.registry;
  if (registry === undefined) {
    if (options.client === undefined) {
      throw new ConfigError([
        {
          path: 'prometheusMetrics.registry',
          expected: 'a prom-client Registry (or pass `client` to create one)',
          got: undefined,
        },
      ]);
    }
    registry = new options.client.Registry();
  }
  if (
    typeof registry.registerMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    throw new ConfigError([
      { path: 'prometheusMetrics.registry', expected: 'a prom-client Registry', got: registry },
    ]);
  }

  const defs = definitions(prefix);
  const existing = registry.getSingleMetric(defs[0]![0]) as { [HUB]?: Hub } | undefined;
  let hub: Hub;
  if (existing !== undefined) {
    if (existing[HUB] === undefined) {
      throw new ConfigError([
        {
          path: 'prometheusMetrics.registry',
          expected: `no foreign metric named ${defs[0]![0]} (use another prefix)`,
          got: 'a metric of that name',
        },
      ]);
    }
    hub = existing[HUB];
  } else {
    hub = new Hub(buckets);
    for (const [name, help, type, collect] of defs)
      registry.registerMetric(new CollectedMetric(name, help, type, hub, collect));
  }
  return {
    registry,
    forDependency(name: string): DependencyMetrics {
      let r = hub.recorders.get(name);
      if (r === undefined) hub.recorders.set(name, (r = new Recorder(name, hub.buckets)));
      return r;
    },
  };
}
