/**
 * Circuit breakers on the success path, and failing fast once open: bulwark vs cockatiel
 * vs opossum. Each case is one awaited call of a function that resolves at once.
 */
import * as cockatiel from 'cockatiel';
import CircuitBreaker from 'opossum';
import { circuitBreaker } from '../src/policies/circuit-breaker/circuit-breaker.js';
import Brakes from 'brakes';
import { Circuit, SlidingCountBreaker } from 'mollitia';
import { FloorBreaker, floorRefuse } from './floors.js';
import { bareCall, type BenchCase } from './harness.js';

const HOUR = 3_600_000;
const failure = new Error('dependency failed');
const failing = (): Promise<never> => Promise.reject(failure);
const noop = (): void => {};

// Closed breakers: every call succeeds.
const bwConsecutive = circuitBreaker({ consecutiveFailures: 5 });
const bwCount = circuitBreaker({ failureRate: 0.5, window: { calls: 100 } });
const bwTime = circuitBreaker({ failureRate: 0.5, window: { ms: 10_000, buckets: 10 } });
const bwSlow = circuitBreaker({
  consecutiveFailures: 5,
  slowCall: { ms: 1000, rate: 0.5 },
  window: { calls: 100 },
});
const ckConsecutive = cockatiel.circuitBreaker(cockatiel.handleAll, {
  halfOpenAfter: 5_000,
  breaker: new cockatiel.ConsecutiveBreaker(5),
});
const ckSampling = cockatiel.circuitBreaker(cockatiel.handleAll, {
  halfOpenAfter: 5_000,
  breaker: new cockatiel.SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
});
// opossum wraps one action per breaker; its default 10 s timeout arms a timer per call.
const opNoTimeout = new CircuitBreaker(bareCall, { timeout: false });
const opTimeout = new CircuitBreaker(bareCall, { timeout: 10_000 });

const floor = new FloorBreaker();
const brakes = new Brakes(bareCall, { timeout: 10_000 });
const moBreaker = new Circuit({
  func: bareCall,
  options: {
    modules: [new SlidingCountBreaker({ slidingWindowSize: 100, failureRateThreshold: 50 })],
  },
});

// Open breakers: tripped once, and kept open for the whole run.
const bwOpen = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: HOUR });
await bwOpen.execute(failing).catch(noop);
const ckOpen = cockatiel.circuitBreaker(cockatiel.handleAll, {
  halfOpenAfter: HOUR,
  breaker: new cockatiel.ConsecutiveBreaker(1),
});
await ckOpen.execute(failing).catch(noop);
const opOpen = new CircuitBreaker(bareCall, { timeout: false, resetTimeout: HOUR });
opOpen.open();
if (bwOpen.state !== 'open' || ckOpen.state !== cockatiel.CircuitState.Open || !opOpen.opened) {
  throw new Error('bench/breaker: a breaker meant to be open is not');
}

export const cases: BenchCase[] = [
  {
    group: 'breaker',
    name: 'consecutive-failures breaker',
    run: () => floor.run(bareCall),
    floor: true,
  },
  {
    group: 'breaker',
    name: 'bulwark circuitBreaker (consecutive)',
    run: () => bwConsecutive.execute(bareCall),
  },
  {
    group: 'breaker',
    name: 'bulwark circuitBreaker (count window)',
    run: () => bwCount.execute(bareCall),
  },
  {
    group: 'breaker',
    name: 'bulwark circuitBreaker (time window)',
    run: () => bwTime.execute(bareCall),
  },
  {
    group: 'breaker',
    name: 'bulwark circuitBreaker (+ slowCall)',
    run: () => bwSlow.execute(bareCall),
  },
  {
    group: 'breaker',
    name: 'cockatiel ConsecutiveBreaker',
    run: () => ckConsecutive.execute(bareCall),
  },
  { group: 'breaker', name: 'cockatiel SamplingBreaker', run: () => ckSampling.execute(bareCall) },
  { group: 'breaker', name: 'opossum (timeout: false)', run: () => opNoTimeout.fire() },
  { group: 'breaker', name: 'opossum (timeout: 10 s)', run: () => opTimeout.fire() },
  { group: 'breaker', name: 'brakes (timeout: 10 s)', run: () => brakes.exec() },
  { group: 'breaker', name: 'mollitia SlidingCountBreaker', run: () => moBreaker.execute() },
  {
    group: 'fail-fast',
    name: 'async function throwing a prebuilt error',
    run: () => floorRefuse().catch(noop),
    floor: true,
  },
  {
    group: 'fail-fast',
    name: 'bulwark open breaker',
    run: () => bwOpen.execute(bareCall).catch(noop),
  },
  {
    group: 'fail-fast',
    name: 'cockatiel open breaker',
    run: () => ckOpen.execute(bareCall).catch(noop),
  },
  { group: 'fail-fast', name: 'opossum open breaker', run: () => opOpen.fire().catch(noop) },
];
