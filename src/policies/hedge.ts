import { systemClock, type Clock, type TimerHandle, setTimerRef } from '../core/clock.js';
import type { CallContext, Operation, Step } from '../core/context.js';
import { withoutStack } from '../core/errors.js';
import { EventHub, type Disposable, type Listener } from '../core/events.js';
import { BasePolicy } from '../core/pipeline.js';
import { Validator } from '../core/validate.js';

/** Options of `hedge()`; `delay` is required. */
export interface HedgeOptions {
  /** Wait this long for an answer before starting another attempt (ms or '50ms'; `Infinity` only on failure). */
  delay: number | string;
  /** Extra attempts at most, besides the first (default 1). */
  maxHedges?: number;
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

const KNOWN = ['delay', 'maxHedges', 'clock'];
const FIRING: TimerHandle = Symbol('firing');

/** The signal reason of an attempt abandoned because another one answered first. */
function hedgeLost(): DOMException {
  return withoutStack(
    () =>
      new DOMException('hedged attempt abandoned: another attempt answered first', 'AbortError'),
  );
}

interface Attempt {
  ctx: CallContext;
  running: boolean;
}

/** One hedged call: its attempts, its place in the policy's hedge timer list, and the first success. */
class HedgeRace {
  private readonly attempts: Attempt[] = [];
  private running = 0;
  private done = false;
  /** Links in the policy's list of races waiting for their next hedge, in due order. */
  prev: HedgeRace | undefined = undefined;
  next: HedgeRace | undefined = undefined;
  dueAt = Infinity;
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
 * others are aborted through their own signals. All attempts share the call's
 * idempotency key. Use it only for idempotent work.
 */
export class HedgePolicy extends BasePolicy {
  readonly kind = 'hedge';
  /** ms to wait for an answer before the next attempt starts (Infinity: only after a failure). */
  readonly delay: number;
  /** Extra attempts at most, besides the first. */
  readonly maxHedges: number;
  private readonly events = new EventHub<HedgeEvents>();
  // Races waiting for their next hedge. With one fixed delay they fall due in the order
  // they were scheduled, so one list and one timer armed for its head serve every call.
  private head: HedgeRace | undefined;
  private tail: HedgeRace | undefined;
  private timer: TimerHandle | undefined;
  private timerClock: Clock = systemClock;

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
    v.done();
    super(o.clock as Clock | undefined);
    this.delay = delay;
    this.maxHedges = maxHedges;
  }

  /** Subscribes to `hedge` or `win`; dispose the result to unsubscribe. */
  on<K extends keyof HedgeEvents>(event: K, listener: Listener<HedgeEvents[K]>): Disposable {
    return this.events.on(event, listener);
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
    if (this.delay === Infinity) return;
    race.dueAt = clock.now() + this.delay;
    const tail = this.tail;
    if (tail === undefined) this.head = race;
    else {
      tail.next = race;
      race.prev = tail;
    }
    const wasEmpty = tail === undefined;
    this.tail = race;
    if (this.timer === undefined) this.arm(clock, race.dueAt);
    // A race waiting for its hedge is a call somebody awaits: keep the process alive.
    else if (wasEmpty && this.timer !== FIRING) setTimerRef(this.timer, true);
  }

  /** @internal O(1); a no-op for a race not scheduled. */
  unschedule(race: HedgeRace): void {
    if (race.prev === undefined && this.head !== race) return;
    const { prev, next } = race;
    if (prev === undefined) this.head = next;
    else prev.next = next;
    if (next === undefined) this.tail = prev;
    else next.prev = prev;
    race.prev = race.next = undefined;
    if (this.head === undefined) this.idle();
  }

  /**
   * No race waits. On the system clock the armed timer stays (re-arming per call would
   * cost the setTimeout this list avoids) but no longer keeps the process alive; on other
   * clocks (a VirtualClock) it is cleared, so runAll() never jumps to a stale due time.
   */
  private idle(): void {
    const timer = this.timer;
    if (timer === undefined || timer === FIRING) return;
    if (this.timerClock === systemClock) setTimerRef(timer, false);
    else {
      this.timerClock.clearTimeout(timer);
      this.timer = undefined;
    }
  }

  /**
   * A race that settles early leaves the timer in place while others wait; it fires,
   * finds nothing due, and re-arms for the new head.
   */
  private arm(clock: Clock, at: number): void {
    this.timerClock = clock;
    this.timer = clock.setTimeout(this.onTimer, Math.max(0, Math.ceil(at - clock.now())));
    setTimerRef(this.timer, true);
  }

  private readonly onTimer = (): void => {
    const clock = this.timerClock;
    // While the list is walked, a race scheduled again (its next hedge) must not arm a second timer.
    this.timer = FIRING;
    const now = clock.now();
    let race = this.head;
    while (race !== undefined && race.dueAt <= now) {
      this.unschedule(race);
      race.onDue();
      race = this.head;
    }
    this.timer = undefined;
    if (race !== undefined) this.arm(clock, race.dueAt);
  };

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
