import type { Context, Operation } from '../../core/context.js';

/**
 * Follows the attempts of fn that inner policies start: a timeout or an abort inside
 * the idempotency policy ends the call while fn may still run, and the key it holds must
 * stay held until every attempt has settled (else a duplicate would run fn beside it).
 */
export class AttemptTracker<T> {
  private running = 0;
  private idle: (() => void) | undefined;
  /** The first value an attempt returned: the side effect happened, so it is the outcome. */
  value: { readonly value: T } | undefined;

  constructor(private readonly fn: Operation<T>) {}

  /** The operation handed to the inner policies in place of fn. */
  readonly run = async (ctx: Context): Promise<T> => {
    this.running++;
    try {
      const value = await this.fn(ctx);
      this.value ??= { value };
      return value;
    } finally {
      if (--this.running === 0) this.idle?.();
    }
  };

  /** Resolves once no attempt is running. */
  settled(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.idle = resolve));
  }

  get busy(): boolean {
    return this.running > 0;
  }
}
