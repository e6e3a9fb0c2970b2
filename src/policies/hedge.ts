import type { Clock } from '../core/clock.js';
import type { CallContext, Context, Operation, Step } from '../core/context.js';
import { withoutStack } from '../core/errors.js';
import { TimerQueue, type TimedWaiter } from '../core/timer-queue.js';
import { ObservablePolicy } from '../core/observable-policy.js';
import type { EventNames } from '../core/events.js';
import { Validator } from '../core/validate.js';
import { isRetryableError } from './retry/classification.js';

/** Options of `hedge()`; `delay` is required. */
export interface HedgeOptions {
  /** Wait this long for an answer before starting another attempt (ms or '50ms'; `Infinity` only on failure). */
  delay: number | string;
  /** Extra attempts at most, besides the first (default 1). */
  maxHedges?: number;
  /**
   * Which failures start the next attempt at once (default `isRetryableError`, retry's own
   * rule). Any other failure ends the call with it: a 400 would only be sent again.
   */
  hedgeOn?: (error: unknown, ctx: Context) => boolean;
  /** The clock the delay is timed on (default: the pipeline's clock, else the system clock). */
  clock?: Clock;
}

/** Why a hedged attempt started: the delay passed without an answer, or an attempt failed. */
export type HedgeReason = 'delay' | 'failure';

/** Events of a hedge policy, by name: subscribe with `policy.on(name, listener)`. */
export interface HedgeEvents {
  /** Attempt `attempt` (2 = the first hedge) started, because the delay passed or an attempt failed. */
  hedge: { attempt: number; reason: HedgeReason };
  /** Attempt `attempt` answered first, out of `started` attempts. */
  win: { attempt: number; started: number };
}

const HEDGE_EVENTS: EventNames<HedgeEvents> = { hedge: true, win: true };

const KNOWN = ['delay', 'maxHedges', 'hedgeOn', 'clock'];

/** The signal reason of an attempt abandoned because another one answered first. */
function hedgeLost(): DOMException {
  return withoutStack(
    () =>
      new DOMException('hedged attempt abandoned: another attempt answered first', 'AbortError'),
  );
}

/** The signal reason of an attempt abandoned because another one failed for good. */
function hedgeDecided(): DOMException {
  return withoutStack(
    () =>
      new DOMException(
        'hedged attempt abandoned: another attempt failed with a non-retryable error',
        'AbortError',
      ),
  );
}

interface Attempt {
  ctx: CallContext;
  running: boolean;
}

/** One hedged call: its attempts, its place in the policy's hedge timer list, and the first success. */
class HedgeRace implements TimedWaiter {
  private readonly attempts: Attempt[] = [];
  private running = 0;
  private done = false;
  /** Links in the policy's timer queue of races waiting for their next hedge. */
  timerPrev: TimedWaiter | undefined = undefined;
  timerNext: TimedWaiter | undefined = undefined;
  expiresAt = Infinity;
  resolve!: (value: unknown) => void;
  reject!: (reason: unknown) => void;

  constructor(
    private readonly policy: HedgePolicy,
    private readonly ctx: CallContext,
    private readonly fn: Operation<unknown>,
    private readonly step: Step,
  ) {}

  launch(reason: HedgeReason | undefined): void {
    // Each attempt runs in its own child context, so a loser can be aborted alone.
    const attempt: Attempt = { ctx: this.ctx.child(Infinity, 'attempt', Infinity), running: true };
    const index = this.attempts.push(attempt);
    this.running++;
    if (reason !== undefined) this.policy.emitHedge(index, reason);
    if (index <= this.policy.maxHedges)
      this.policy.schedule(this, this.policy.clock ?? this.ctx.clock);
    attempt.ctx.guard(this.fn, this.step).then(
      (value) => this.succeed(attempt, index, value),
      (error: unknown) => this.fail(attempt, error),
    );
  }

  /** The delay passed with no answer. */
  onDue(): void {
    if (!this.done && !this.ctx.isAborted) this.launch('delay');
  }

  private disarm(): void {
    this.policy.unschedule(this);
  }

  private succeed(winner: Attempt, index: number, value: unknown): void {
    winner.running = false;
    this.running--;
    if (this.done) return;
    this.done = true;
    this.disarm();
    this.policy.emitWin(index, this.attempts.length);
    this.resolve(value);
    let reason: DOMException | undefined;
    for (const a of this.attempts) {
      if (a.running) a.ctx.abort((reason ??= hedgeLost()));
    }
  }

  private fail(attempt: Attempt, error: unknown): void {
    attempt.running = false;
    this.running--;
    if (this.done) return;
    if (this.ctx.isAborted) {
      // The whole call is over (deadline or caller): every attempt ended with it.
      this.done = true;
      this.disarm();
      this.reject(error);
      return;
    }
    if (!this.policy.hedgeOn(error, attempt.ctx)) {
      // The dependency answered for good (a 400, a refused payment): sending the same
      // request again would get the same answer, or do harm. The call ends with it.
      this.done = true;
      this.disarm();
      this.reject(error);
      let reason: DOMException | undefined;
      for (const a of this.attempts) {
        if (a.running) a.ctx.abort((reason ??= hedgeDecided()));
      }
      return;
    }
    if (this.attempts.length <= this.policy.maxHedges) {
      // This attempt will not answer: waiting out the delay would only add latency.
      this.disarm();
      this.launch('failure');
      return;
    }
    if (this.running === 0) {
      // Every attempt failed: report the last failure, as retry does.
      this.done = true;
      this.disarm();
      this.reject(error);
    }
  }
}

/**
 * Hedged requests: when the first attempt has not answered within `delay`, start another
 * (up to `maxHedges` more), each in its own child context; the first success wins and the
 * others are aborted through their own signals. A failure that `hedgeOn` accepts (by default
 * what retry would retry) starts the next attempt at once; any other failure ends the call. All attempts share the call's
 * idempotency key. Use it only for idempotent work.
 */
export class HedgePolicy extends ObservablePolicy<HedgeEvents> {
  readonly kind = 'hedge';
  /** ms to wait for an answer before the next attempt starts (Infinity: only after a failure). */
  readonly delay: number;
  /** Extra attempts at most, besides the first. */
  readonly maxHedges: number;
  /** Whether a failure starts the next attempt (otherwise it ends the call). */
  readonly hedgeOn: (error: unknown, ctx: Context) => boolean;
  // Races waiting for their next hedge. With one fixed delay they fall due in the order
  // they were scheduled, so one timer queue (one clock timer) serves every call.
  private readonly races: TimerQueue<HedgeRace> | undefined;

  constructor(options: HedgeOptions, path = 'hedge') {
    const v = new Validator(path);
    const o = v.object(options, KNOWN);
    if ((options === undefined || (o as unknown) === options) && o.delay === undefined) {
      v.problem(
        'delay',
        "a duration ≥ 0 ms (number of ms or '250ms', '2s', '1m') or Infinity",
        undefined,
      );
    }
    const delay = v.duration('delay', o.delay, Infinity, { min: 0, allowInfinity: true });
    const maxHedges = v.int('maxHedges', o.maxHedges, 1, 0);
    const hedgeOn = v.func<(error: unknown, ctx: Context) => boolean>(
      'hedgeOn',
      o.hedgeOn,
      isRetryableError,
    );
    v.done();
    super(o.clock as Clock | undefined, HEDGE_EVENTS);
    this.delay = delay;
    this.races = delay === Infinity ? undefined : new TimerQueue(delay, (race) => race.onDue());
    this.maxHedges = maxHedges;
    this.hedgeOn = hedgeOn;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.maxHedges === 0) return next.invoke(ctx, fn);
    const race = new HedgeRace(this, ctx, fn, next);
    const promise = new Promise<T>((resolve, reject) => {
      race.resolve = resolve as (value: unknown) => void;
      race.reject = reject;
    });
    race.launch(undefined);
    return promise;
  }

  /** @internal Schedules the race's next hedge `delay` from now. */
  schedule(race: HedgeRace, clock: Clock): void {
    if (this.races !== undefined) this.races.push(race, clock);
  }

  /** @internal O(1); a no-op for a race not scheduled. */
  unschedule(race: HedgeRace): void {
    if (this.races !== undefined) this.races.remove(race);
  }

  /** @internal */
  emitHedge(attempt: number, reason: HedgeReason): void {
    if (this.events.has('hedge')) this.events.emit('hedge', { attempt, reason });
  }

  /** @internal */
  emitWin(attempt: number, started: number): void {
    if (this.events.has('win')) this.events.emit('win', { attempt, started });
  }
}

/**
 * Starts another attempt after `delay` without an answer; the first success wins. See HedgePolicy.
 * It trims tail latency at the cost of extra load: set `delay` near the dependency's p95,
 * so only the slowest few calls are hedged.
 *
 * @example
 * ```ts
 * import { hedge, pipeline, timeout } from 'bulwark';
 *
 * // Profile reads answer in 40 ms at p95: after 50 ms without an answer, ask again.
 * const profiles = pipeline(timeout('1s'), hedge({ delay: '50ms', maxHedges: 1 }));
 * const profile = await profiles.execute(async (ctx) => {
 *   // The losing attempt's signal is aborted as soon as the other one answers.
 *   const res = await fetch('https://profiles.internal/users/7', { signal: ctx.signal });
 *   return res.json();
 * });
 * ```
 */
export function hedge(options: HedgeOptions): HedgePolicy {
  return new HedgePolicy(options);
}
