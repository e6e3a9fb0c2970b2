// The 'bulwark/prometheus' entry: Prometheus metrics for every policy.
export {
  prometheusMetrics,
  type PrometheusMetrics,
  type PrometheusMetricsOptions,
  type PromClient,
  type PromRegistry,
} from './metrics/prometheus.js';
export type { DependencyMetrics, MetricsProvider } from './metrics/recorder.js';
