import type { Clock, TimerHandle } from '../../core/clock.js';
import type { AbortSubscriber, CallContext } from '../../core/context.js';
import type { IdempotencyStore } from '../../stores/store.js';
import { IdempotencyStoreError } from './errors.js';

/** A store failure, kept apart from abort reasons while waiting. */
export class StoreFailure {
  constructor(
    readonly operation: 'claim' | 'complete' | 'release',
    readonly error: IdempotencyStoreError,
  ) {}
}

export function asStoreError(
  store: IdempotencyStore,
  operation: string,
  error: unknown,
): IdempotencyStoreError {
  if (error instanceof IdempotencyStoreError) return error;
  const message = (error as { message?: unknown } | null)?.message;
  return new IdempotencyStoreError(
    store.name,
    `${operation} failed: ${typeof message === 'string' ? message : String(error)}`,
    { cause: error },
  );
}

/**
 * One wait for a running duplicate: ends when the store reports a change, when the
 * holder's lock runs out (or the next poll is due), or rejects when the call aborts.
 */
export class DuplicateWait implements AbortSubscriber {
  private resolve: (() => void) | undefined;
  private reject: ((reason: unknown) => void) | undefined;
  private timer: TimerHandle | undefined;
  private woken = false;

  constructor(
    private readonly ctx: CallContext,
    private readonly clock: Clock,
  ) {}

  /** Passed to `store.watch`, so an arrow: it may fire before `wait` is even called. */
  readonly wake = (): void => {
    this.woken = true;
    const resolve = this.resolve;
    if (resolve === undefined) return;
    this.cleanup();
    resolve();
  };

  wait(ms: number): Promise<void> {
    if (this.woken) return Promise.resolve();
    if (this.ctx.isAborted) return Promise.reject(this.ctx.abortReason);
    return new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      this.timer = this.clock.setTimeout(this.wake, ms);
      this.ctx.subscribe(this);
    });
  }

  abort(reason: unknown): void {
    const reject = this.reject;
    if (reject === undefined) return;
    this.cleanup();
    reject(reason);
  }

  private cleanup(): void {
    this.resolve = undefined;
    this.reject = undefined;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.ctx.unsubscribe(this);
  }
}
