/** A queued call that is settled later by its queue, not by the code that queued it. */
export interface SettledLater {
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
}

/**
 * The promise the caller awaits while `waiter` is queued: `waiter.resolve` and
 * `waiter.reject` are set to settle it. One promise and one executor per queued call.
 */
export function promiseSettledBy<T>(waiter: SettledLater): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    waiter.resolve = resolve as (value: unknown) => void;
    waiter.reject = reject;
  });
}
