/** Real-time helpers for integration tests (unit tests use the VirtualClock instead). */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 50 ms until it resolves; rethrows its last error after `ms`. */
export async function eventually<T>(probe: () => Promise<T>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await probe();
    } catch (error) {
      if (Date.now() > until) throw error;
      await sleep(50);
    }
  }
}

/** Runs `call` and returns how it settled and how long it took (never rejects). */
export async function timed(
  call: () => Promise<unknown>,
): Promise<{ error: unknown; value: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    const value = await call();
    return { error: undefined, value, ms: performance.now() - t0 };
  } catch (error) {
    return { error, value: undefined, ms: performance.now() - t0 };
  }
}
