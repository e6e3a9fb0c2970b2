// The 'bulwark/otel' entry: OpenTelemetry traces and metrics for every policy.
export {
  openTelemetry,
  type OpenTelemetry,
  type OpenTelemetryOptions,
} from './metrics/otel/open-telemetry.js';
export type { DependencyMetrics, MetricsProvider } from './metrics/recorder.js';
