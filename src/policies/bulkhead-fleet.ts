import type { CallContext, Operation, Step } from '../core/context.js';
import { BulkheadRejectedError } from './bulkhead-error.js';
import type { ConcurrencyGrant, ConcurrencyStore } from '../stores/limit-store.js';

/**
 * The fleet-wide half of a bulkhead with a `store`: after the local slot (and queue) rules,
 * a call takes one of `maxConcurrent` leases shared by every process on the store, in one
 * round trip, and hands it back when it settles. No lease free fleet-wide is a
 * `BulkheadRejectedError` (`reason: 'full'`) at once: the local queue is for local slots.
 */
export class FleetSlots {
  private readonly fullMessage: string;

  constructor(
    private readonly store: ConcurrencyStore,
    private readonly key: string,
    private readonly max: number,
    who: string,
    private readonly onFull: () => void,
  ) {
    this.fullMessage = `${who} is full fleet-wide (maxConcurrent ${max} across processes, in ${store.name})`;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    let acquired: Promise<ConcurrencyGrant>;
    try {
      acquired = this.store.acquire(this.key, this.max);
    } catch (error) {
      // A store that throws must not leave the bulkhead's local slot taken.
      return Promise.reject(error);
    }
    return acquired.then((grant) => this.enter(grant, ctx, fn, next));
  }

  private enter<T>(
    grant: ConcurrencyGrant,
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
  ): Promise<T> {
    if (!grant.ok) {
      this.onFull();
      throw fleetFull(this.fullMessage);
    }
    if (ctx.isAborted) {
      // The call ended while Redis answered: nothing runs, the lease goes straight back.
      this.store.release(this.key, grant);
      throw ctx.abortReason;
    }
    let running: Promise<T>;
    try {
      running = next.invoke(ctx, fn);
    } catch (error) {
      running = Promise.reject(error);
    }
    return running.finally(() => this.store.release(this.key, grant));
  }
}

function fleetFull(message: string): BulkheadRejectedError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new BulkheadRejectedError('full', message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
