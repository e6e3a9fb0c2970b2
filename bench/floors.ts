/**
 * Hand-rolled floors: the least each job can cost written inline in one async function,
 * with no library, no options and no events. A policy's "× floor" is its cost over this.
 */
const now = (): number => performance.now();
const refused = new Error('refused');

/** Retry: up to `attempts` tries of fn. */
export async function floorRetry<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= attempts) throw e;
    }
  }
}

/** A consecutive-failures breaker. */
export class FloorBreaker {
  failures = 0;
  open = false;
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.open) throw refused;
    try {
      const v = await fn();
      this.failures = 0;
      return v;
    } catch (e) {
      if (++this.failures >= 5) this.open = true;
      throw e;
    }
  }
}

/** A semaphore that refuses when full. */
export class FloorSemaphore {
  running = 0;
  constructor(readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) throw refused;
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
    }
  }
}

/** A deadline check: read the clock before and after, fail if the call overran. */
export async function floorDeadline<T>(fn: () => Promise<T>, ms = 1000): Promise<T> {
  const deadline = now() + ms;
  const v = await fn();
  if (now() > deadline) throw refused;
  return v;
}

/** Retry, breaker, semaphore and a deadline check, all four in one async function. */
export function floorAllFour(maxConcurrent = 100): <T>(fn: () => Promise<T>) => Promise<T> {
  let failures = 0;
  let open = false;
  let running = 0;
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    const deadline = now() + 10_000;
    if (open) throw refused;
    if (running >= maxConcurrent) throw refused;
    running++;
    try {
      for (let i = 1; ; i++) {
        try {
          const v = await fn();
          failures = 0;
          if (now() > deadline) throw refused;
          return v;
        } catch (e) {
          if (++failures >= 5) open = true;
          if (i >= 3 || now() > deadline) throw e;
        }
      }
    } finally {
      running--;
    }
  };
}

/** Fail-fast floor: an async function that rejects with a shared, prebuilt error. */
export async function floorRefuse(): Promise<never> {
  throw refused;
}
