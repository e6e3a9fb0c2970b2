// Runs a handler (sync or async) and routes whatever it throws or rejects with to onError.

/** Runs `run`, sending a throw or a rejection to `onError` (never an unhandled rejection). */
export function runHandler(run: () => unknown, onError: (error: unknown) => void): void {
  try {
    const result = run();
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(undefined, onError);
    }
  } catch (error) {
    onError(error);
  }
}
