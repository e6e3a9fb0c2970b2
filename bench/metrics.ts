import { Registry } from 'prom-client';
import { dependency, type DependencyConfig } from '../src/index.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { bareCall, type BenchCase } from './harness.js';

const config: DependencyConfig = {
  budget: '10s',
  timeout: '1s',
  retry: { maxAttempts: 3 },
  circuitBreaker: { consecutiveFailures: 5 },
  bulkhead: { maxConcurrent: 100 },
};
const off = dependency('off', config);
const on = dependency('on', {
  ...config,
  metrics: prometheusMetrics({ registry: new Registry() }),
});

export const cases: BenchCase[] = [
  { group: 'metrics', name: 'full pipeline, metrics off', run: () => off.execute(bareCall) },
  { group: 'metrics', name: 'full pipeline, metrics on', run: () => on.execute(bareCall) },
];
