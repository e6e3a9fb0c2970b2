import type { DependencyMetrics, MetricsProvider } from './recorder.js';
import { ConfigError } from '../core/errors.js';
import { Hub, Recorder } from './prometheus-recorder.js';
import { CollectedMetric, definitions, HUB } from './prometheus-series.js';

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

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

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
