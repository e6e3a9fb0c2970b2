/**
 * Invariant helpers for tests of resilient code. Each one watches a run (wraps fn, a
 * breaker or the calls), keeps what it saw, and has `assert()`, which throws an
 * `InvariantError` naming the invariant and listing the violations. They use no test
 * framework, so they work under vitest, jest, node:test or a plain script.
 */

/** Thrown by `assert()`: names the invariant and lists what broke it. */
export class InvariantError extends Error {
  /** The invariant's name, e.g. `the breaker never calls fn while open`. */
  readonly invariant: string;
  /** One line per violation. */
  readonly violations: readonly string[];
  constructor(invariant: string, violations: readonly string[], total = violations.length) {
    const shown = violations.slice(0, MAX_LISTED);
    const more = total > shown.length ? `\n  … and ${total - shown.length} more` : '';
    super(
      `invariant violated: ${invariant} (${total} violation${total === 1 ? '' : 's'})\n` +
        shown.map((s) => `  - ${s}`).join('\n') +
        more,
    );
    this.name = 'InvariantError';
    this.invariant = invariant;
    this.violations = violations;
  }
}

export const MAX_LISTED = 10;
/** Violations kept in memory; the count goes on past it. */
export const MAX_KEPT = 100;

/** What every helper has: the invariant's name, what broke it, and `assert()`. */
export interface Invariant {
  /** The invariant's name, used in messages. */
  readonly invariant: string;
  /** One line per violation (the first 100 are kept). */
  readonly violations: readonly string[];
  /** Violations seen, including those not kept. */
  readonly violationCount: number;
  /** Throws an `InvariantError` if anything broke the invariant. */
  assert(): void;
}

/** Shared bookkeeping: a named list of violations. */
export class Recorder implements Invariant {
  readonly violations: string[] = [];
  violationCount = 0;
  constructor(readonly invariant: string) {}

  violate(message: string): void {
    this.violationCount++;
    if (this.violations.length < MAX_KEPT) this.violations.push(message);
  }

  assert(): void {
    if (this.violationCount > 0) {
      throw new InvariantError(this.invariant, this.violations, this.violationCount);
    }
  }
}

/**
 * Gives a helper's result object the live `invariant`, `violations` and `violationCount`
 * of its recorder, and `assert()` unless the object brings its own.
 */
export function reportingTo<R extends Invariant>(
  target: Omit<R, keyof Invariant> & Partial<Pick<Invariant, 'assert'>>,
  recorder: Recorder,
): R {
  const props: PropertyDescriptorMap = {
    invariant: { get: () => recorder.invariant, enumerable: true },
    violations: { get: () => recorder.violations, enumerable: true },
    violationCount: { get: () => recorder.violationCount, enumerable: true },
  };
  if (!('assert' in target)) props.assert = { value: () => recorder.assert(), enumerable: true };
  return Object.defineProperties(target, props) as R;
}

/**
 * Checks several invariants at once and throws one `InvariantError` listing every one
 * that broke, so a failing fuzz run shows the whole picture.
 *
 * @example
 * ```ts
 * import { bulkhead } from 'bulwark';
 *
 *
 * const clock = new VirtualClock();
 * const pool = bulkhead({ clock, maxConcurrent: 2, maxQueue: 20 });
 * const concurrency = bulkheadNeverExceeds(2, { clock });
 * const settles = settlesExactlyOnce();
 * const work = concurrency.wrap(() => clock.sleep(50));
 * for (let i = 0; i < 10; i++) settles.track(pool.execute(work)).catch(() => {});
 * await clock.runAll();
 * assertInvariants(concurrency, settles); // one InvariantError listing everything that broke
 * ```
 */
export function assertInvariants(...invariants: Invariant[]): void {
  const broken: InvariantError[] = [];
  for (const invariant of invariants) {
    try {
      invariant.assert();
    } catch (error) {
      if (!(error instanceof InvariantError)) throw error;
      broken.push(error);
    }
  }
  if (broken.length === 0) return;
  if (broken.length === 1) throw broken[0]!;
  const lines = broken.flatMap((e) => e.violations.map((v) => `${e.invariant}: ${v}`));
  throw new InvariantError(broken.map((e) => e.invariant).join('; '), lines);
}

export type Fn<C, R> = (ctx: C) => R | PromiseLike<R>;

export function signalOf(ctx: unknown): AbortSignal | undefined {
  if (typeof ctx !== 'object' || ctx === null || !('signal' in ctx)) return undefined;
  const signal = (ctx as { signal?: unknown }).signal;
  return signal instanceof AbortSignal ? signal : undefined;
}
