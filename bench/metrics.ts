import { Registry } from 'prom-client';
import { dependency, systemClock, type DependencyConfig } from '../src/index.js';
import { prometheusMetrics } from '../src/prometheus.js';
import { floorAllFour } from './floors.js';
import { bareCall, type BenchCase } from './harness.js';

const config: DependencyConfig = {
  budget: '10s',
  timeout: '1s',
  retry: { maxAttempts: 3 },
  circuitBreaker: { consecutiveFailures: 5 },
  // The parts the issue-14 target names; the default load shedder (which would shed
  // 10,000 calls in flight) is left out so the same pipeline is measured as before.
  loadShedder: false,
  bulkhead: { maxConcurrent: 100 },
};
export const depOff = dependency('off', config);
const on = dependency('on', {
  ...config,
  metrics: prometheusMetrics({ registry: new Registry() }),
});
export const allFour = floorAllFour(100);

/**
 * The least a metrics wrapper that times each call and records its outcome does, by hand,
 * around the same pipeline: a clock read before and after, one reaction beside the
 * caller's, and the same Prometheus recorder. (bulwark's step shares its first clock read
 * with the budget behind it, so it can come in under this.)
 */
const handRecorder = prometheusMetrics({ registry: new Registry() }).forDependency('hand');
function handTimed(): Promise<unknown> {
  const start = systemClock.now();
  const running = depOff.execute(bareCall);
  running.then(
    () => handRecorder.recordCall('success', (systemClock.now() - start) / 1000),
    () => handRecorder.recordCall('failure', (systemClock.now() - start) / 1000),
  );
  return running;
}

export const cases: BenchCase[] = [
  {
    group: 'dependency',
    name: 'retry + breaker + semaphore + deadline in one async function',
    run: () => allFour(bareCall),
    floor: true,
  },
  {
    group: 'dependency',
    name: 'bulwark dependency() (budget, timeout, retry, breaker, bulkhead)',
    run: () => depOff.execute(bareCall),
  },
  {
    group: 'dependency',
    name: 'bulwark dependency() + prometheusMetrics',
    run: () => on.execute(bareCall),
  },
  {
    group: 'dependency',
    name: 'hand-written timing and recording around the same dependency() (floor of a metrics wrapper)',
    run: handTimed,
  },
];
