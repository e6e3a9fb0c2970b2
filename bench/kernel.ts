import asyncRetry from 'async-retry';
import * as cockatiel from 'cockatiel';
import { backOff } from 'exponential-backoff';
import { Circuit, Retry, Timeout } from 'mollitia';
import pRetry from 'p-retry';
import { retry as tsRetry } from 'ts-retry-promise';
import { budget, pipeline, retry, timeout } from '../src/index.js';
import { floorDeadline, floorRetry } from './floors.js';
import { bareCall, type BenchCase } from './harness.js';

const bwTimeout = timeout(1000);
const bwRetry = retry({ maxAttempts: 3 });
const bwFull = pipeline(budget(10_000), retry({ maxAttempts: 3 }), timeout(1000));
const bwSignal = timeout(1000);

const ckTimeout = cockatiel.timeout(1000, cockatiel.TimeoutStrategy.Cooperative);
const ckRetry = cockatiel.retry(cockatiel.handleAll, {
  maxAttempts: 2,
  backoff: new cockatiel.ExponentialBackoff(),
});
const ckFull = cockatiel.wrap(
  cockatiel.timeout(10_000, cockatiel.TimeoutStrategy.Cooperative),
  cockatiel.retry(cockatiel.handleAll, {
    maxAttempts: 2,
    backoff: new cockatiel.ExponentialBackoff(),
  }),
  cockatiel.timeout(1000, cockatiel.TimeoutStrategy.Cooperative),
);
const moTimeout = new Circuit({
  func: bareCall,
  options: { modules: [new Timeout({ delay: 1000 })] },
});
const moRetry = new Circuit({
  func: bareCall,
  options: { modules: [new Retry({ attempts: 2, interval: 0 })] },
});

/** The textbook alternative: race the call against a per-call setTimeout. */
function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Budget, retry and attempt timeout by hand: a deadline check around a retry loop. */
async function floorBudgetRetryTimeout<T>(fn: () => Promise<T>): Promise<T> {
  const budgetEnd = performance.now() + 10_000;
  for (let i = 1; ; i++) {
    try {
      const attemptEnd = performance.now() + 1000;
      const v = await fn();
      if (performance.now() > Math.min(attemptEnd, budgetEnd)) throw new Error('late');
      return v;
    } catch (e) {
      if (i >= 3 || performance.now() > budgetEnd) throw e;
    }
  }
}

export const cases: BenchCase[] = [
  { group: 'timeout', name: 'deadline check', run: () => floorDeadline(bareCall), floor: true },
  {
    group: 'timeout',
    name: 'bulwark timeout (fn ignores signal)',
    run: () => bwTimeout.execute(bareCall),
  },
  {
    group: 'timeout',
    name: 'bulwark timeout (fn reads ctx.signal)',
    run: () => bwSignal.execute((ctx) => (void ctx.signal, 1)),
  },
  { group: 'timeout', name: 'Promise.race + setTimeout', run: () => raceTimeout(bareCall(), 1000) },
  {
    group: 'timeout',
    name: 'cockatiel timeout (cooperative)',
    run: () => ckTimeout.execute(bareCall),
  },
  { group: 'timeout', name: 'mollitia Timeout', run: () => moTimeout.execute() },
  { group: 'retry', name: 'retry loop', run: () => floorRetry(bareCall, 3), floor: true },
  { group: 'retry', name: 'bulwark retry', run: () => bwRetry.execute(bareCall) },
  { group: 'retry', name: 'cockatiel retry', run: () => ckRetry.execute(bareCall) },
  { group: 'retry', name: 'p-retry', run: () => pRetry(bareCall, { retries: 2 }) },
  { group: 'retry', name: 'async-retry', run: () => asyncRetry(bareCall, { retries: 2 }) },
  {
    group: 'retry',
    name: 'exponential-backoff',
    run: () => backOff(bareCall, { numOfAttempts: 3 }),
  },
  {
    group: 'retry',
    name: 'ts-retry-promise',
    run: () => tsRetry(bareCall, { retries: 2, delay: 0 }),
  },
  { group: 'retry', name: 'mollitia Retry', run: () => moRetry.execute() },
  {
    group: 'budget+retry+timeout',
    name: 'deadline checks around a retry loop',
    run: () => floorBudgetRetryTimeout(bareCall),
    floor: true,
  },
  {
    group: 'budget+retry+timeout',
    name: 'bulwark budget+retry+timeout',
    run: () => bwFull.execute(bareCall),
  },
  {
    group: 'budget+retry+timeout',
    name: 'cockatiel timeout+retry+timeout',
    run: () => ckFull.execute(bareCall),
  },
];
