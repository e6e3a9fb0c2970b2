import type { CallContext, Operation, Step } from './context.js';

/**
 * Where one attempt's outcome goes when the policies around it take it from the attempt's
 * guard instead of reacting to its promise (see Step.invokeHandled): a retry right
 * outside the attempt timeout, and between them a closed breaker counting outcomes and a
 * bulkhead freeing its slot. Each policy wraps the handler of the one outside it, so the
 * innermost hears first, as it would with a reaction per policy, and the guard's one
 * reaction serves them all.
 * @internal
 */
export interface AttemptHandler {
  /**
   * The attempt failed (or its context aborted) with `error`: what the call becomes, a
   * next attempt or the failure. `ctx` is the context the attempt was started in.
   */
  failed<T>(ctx: CallContext, fn: Operation<T>, error: unknown): Promise<T>;
  /** The attempt succeeded, before the caller sees the value (a throw is reported apart). */
  succeeded?(ctx: CallContext, value: unknown): void;
}

/** `promise`, its outcome told to `handler` (when there is one) as a guard would tell it. */
export function handledBy<T>(
  promise: Promise<T>,
  ctx: CallContext,
  fn: Operation<T>,
  handler: AttemptHandler | undefined,
): Promise<T> {
  if (handler === undefined) return promise;
  return promise.then(
    handler.succeeded === undefined
      ? undefined
      : (value) => {
          handler.succeeded!(ctx, value);
          return value;
        },
    (error: unknown) => handler.failed(ctx, fn, error),
  );
}

/** `handler.failed(…)`, with a throw of its own as the call's failure (not a hang). */
export function tellFailed<T>(
  handler: AttemptHandler,
  ctx: CallContext,
  fn: Operation<T>,
  error: unknown,
): Promise<T> {
  try {
    return handler.failed(ctx, fn, error);
  } catch (failure) {
    return Promise.reject(failure);
  }
}

const RESOLVED = Promise.resolve();

/** `handler` told of `error` one reaction later (not inside a timer or a parent's abort). */
export function failedLater<T>(
  handler: AttemptHandler,
  ctx: CallContext,
  fn: Operation<T>,
  error: unknown,
): Promise<T> {
  return RESOLVED.then(() => handler.failed(ctx, fn, error));
}

/**
 * Reports a throw from a policy's bookkeeping on an outcome it was handed (a faulty
 * listener or predicate) apart from the call, as a reaction's throw would be: it must not
 * change the call's outcome.
 */
export function reportApart(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}

/** A step that can hand its attempts' outcomes over (see Step.invokeHandled). */
export type HandingStep = Step & Required<Pick<Step, 'invokeHandled'>>;

/**
 * A step's wrapper of the handler outside it (a breaker's that counts, a bulkhead's that
 * frees the slot), made once: a pipeline hands a step the same outer handler on every
 * call.
 */
export class WrappedHandler {
  private outer: AttemptHandler | undefined = undefined;
  private wrapped: AttemptHandler | undefined = undefined;

  constructor(private readonly wrap: (outer: AttemptHandler) => AttemptHandler) {}

  of(outer: AttemptHandler): AttemptHandler {
    if (outer !== this.outer) {
      this.wrapped = this.wrap(outer);
      this.outer = outer;
    }
    return this.wrapped!;
  }
}
