import {
  CALL_OUTCOMES,
  CIRCUIT_STATES,
  IDEMPOTENCY_RESULTS,
  MESSAGE_OUTCOMES,
  RETRY_REASONS,
  SHED_PRIORITIES,
  SHED_REASONS,
} from './recorder.js';
import type { Hub, Recorder } from './prometheus-recorder.js';

// The scrape-time half of the Prometheus metrics: the series bulwark exposes (name, help,
// type) and how each turns the recorders' counts into samples.

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** Marks our metrics in a registry, so a second `prometheusMetrics()` finds their hub. */
export const HUB = Symbol.for('bulwark.prometheus.hub');

/** A metric in prom-client's registry interface whose values are produced on scrape. */
export class CollectedMetric {
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

export function definitions(
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
