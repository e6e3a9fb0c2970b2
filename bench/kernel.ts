import asyncRetry from 'async-retry';
import * as cockatiel from 'cockatiel';
import pRetry from 'p-retry';
import { budget, pipeline, retry, timeout } from '../src/index.js';
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

/** A hand-rolled retry loop: the floor a retry policy can reach. */
async function handRetry<T>(fn: () => Promise<T>, attempts: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
    }
  }
}

export const cases: BenchCase[] = [
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
  { group: 'retry', name: 'bulwark retry', run: () => bwRetry.execute(bareCall) },
  { group: 'retry', name: 'hand-rolled retry loop', run: () => handRetry(bareCall, 3) },
  { group: 'retry', name: 'cockatiel retry', run: () => ckRetry.execute(bareCall) },
  { group: 'retry', name: 'p-retry', run: () => pRetry(bareCall, { retries: 2 }) },
  { group: 'retry', name: 'async-retry', run: () => asyncRetry(bareCall, { retries: 2 }) },
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
