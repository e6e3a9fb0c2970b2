import { systemClock, type Clock } from '../../core/clock.js';
import { CircuitOpenError } from './errors.js';
import { EventHub, type EventNames, type Listener, type Subscription } from '../../core/events.js';
import type { Operation } from '../../core/context.js';
import { BasePolicy } from '../../core/pipeline.js';
import { openDuration } from './open-duration.js';
import type { TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

/**
 * A circuit breaker's state: `closed` (calls run), `open` (calls are refused until
 * `halfOpenAfter` has passed), `half-open` (a few trial calls decide), `isolated` (forced
 * open by `isolate()` until released).
 */
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

/** Events of a circuit breaker, by name: subscribe with `breaker.on(name, listener)`. */
export interface CircuitBreakerEvents {
  /** The breaker moved from one state to another. */
  stateChange: { from: BreakerState; to: BreakerState };
  /** A call counted as a success (`slow`: it took longer than `slowCall.ms`). */
  success: { state: BreakerState; slow: boolean };
  /** A call counted as a failure; `errorOrResult` is what was judged a failure. */
  failure: { state: BreakerState; slow: boolean; errorOrResult: unknown };
  /** A call was refused without running. */
  rejected: { state: 'open' | 'half-open' | 'isolated' };
}

const BREAKER_EVENTS: EventNames<CircuitBreakerEvents> = {
  stateChange: true,
  success: true,
  failure: true,
  rejected: true,
};

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** A snapshot from `breaker.stats()`: the state and what the rolling window holds now. */
export interface CircuitBreakerStats {
  /** The breaker's `name`. */
  name: string;
  /** The current state, after any transition that was due. */
  state: BreakerState;
  /** Outcomes in the rolling window (all 0 when the breaker only counts consecutive failures). */
  calls: number;
  /** Outcomes in the window counted as successes. */
  successes: number;
  /** Outcomes in the window counted as failures. */
  failures: number;
  /** Outcomes in the window slower than `slowCall.ms`. */
  slowCalls: number;
  /** `failures / calls` (0 for an empty window). */
  failureRate: number;
  /** `slowCalls / calls` (0 for an empty window). */
  slowCallRate: number;
  /** Failures since the last success (0 without a consecutive-failures rule). */
  consecutiveFailures: number;
  /** Times the breaker opened since it was created. */
  timesOpened: number;
  /** Trial calls running now (half-open only). */
  halfOpenTrials: number;
  /** ms until the next trial may start: 0 when closed, Infinity while isolated. */
  retryAfterMs: number;
  /** Isolation handles not yet released. */
  isolations: number;
}

/** Returned by `isolate()`: the breaker stays isolated until every handle is released. */
export interface IsolationHandle {
  /** Gives up this handle's hold; the breaker closes when the last one is released. Idempotent. */
  release(): void;
  /** Same as release(), so a handle is a Disposable. */
  dispose(): void;
}

/** One admitted half-open trial: when it started and in which half-open round. */
export interface Trial {
  readonly start: number;
  readonly round: HalfOpenRound;
  /** Work started under this trial (fn calls) that has not settled yet. */
  working: number;
  /** The call's verdict, kept while its work still runs (the caller left first). */
  pending: Verdict | undefined;
}

/** What a finished call means for the breaker. */
export const SUCCEEDED = 0;
export const FAILED = 1;
/** Says nothing about the dependency (the caller aborted, a local rejection): not counted. */
export const NEUTRAL = 2;
export type Verdict = typeof SUCCEEDED | typeof FAILED | typeof NEUTRAL;

export interface ControllerSettings {
  name: string;
  clock: BasePolicy['clock'];
  halfOpenAfter: { initial: number; multiplier: number; max: number };
  halfOpenMaxCalls: number;
  halfOpenSuccesses: number;
  halfOpenTimeout: number;
}

/**
 * One half-open period: its running trials and successes. A new round is allocated each
 * time the breaker half-opens (rare), so a trial from an earlier round is told apart by
 * identity: its late outcome is ignored.
 */
export interface HalfOpenRound {
  trials: Trial[];
  successes: number;
}

/** Isolation bookkeeping; allocated on the first isolate(). */
interface Isolation {
  count: number;
  /** Bumped by reset(): handles from before it no longer count. */
  epoch: number;
}

/**
 * The state machine: closed → open → half-open → closed (or back to open), plus isolated
 * (forced open by an operator). It owns no timer: open → half-open happens on the first
 * call (or state read) after the open period, and a hung trial is failed the first time
 * someone looks after its `halfOpenTimeout`. A trial's outcome counts only in the
 * half-open period that admitted it, so a late answer cannot close a breaker that has
 * reopened since. When to open is the trip rule's business, what happened recently the
 * window's; how a call runs is the subclass's (`CircuitBreakerPolicy`).
 *
 * It is the policy's base class rather than an object the policy holds, settings are
 * copied into flat fields and rare state is allocated on first use: a process may hold
 * a breaker per host, and each should cost a few hundred bytes, not a few objects more.
 */
export abstract class BreakerController extends BasePolicy {
  /** Names the breaker in `CircuitOpenError` messages and in `stats()`. */
  readonly name: string;
  /** The stored state; transitions that are due but not yet applied are not reflected. */
  protected current: BreakerState = 'closed';
  /** Clock time at which an open breaker admits its next trial. */
  protected openUntil = 0;
  /** The listeners, created by the first `on()` (an idle breaker stays small). */
  protected events: EventHub<CircuitBreakerEvents> | undefined;
  /** Decides, from each recorded outcome, when the breaker opens. */
  protected readonly rule: TripRule;
  /** Recent outcomes, for rate rules (undefined when only consecutive failures count). */
  protected readonly window: OutcomeWindow | undefined;
  private timesOpened = 0;
  private tripsInARow = 0;
  /** The current half-open round (undefined in every other state). */
  private round: HalfOpenRound | undefined;
  private isolation: Isolation | undefined;
  /** A fixed open duration in ms, or the growing one. */
  private readonly openAfter: number | { initial: number; multiplier: number; max: number };
  private readonly halfOpenMaxCalls: number;
  private readonly halfOpenSuccesses: number;
  private readonly halfOpenTimeout: number;

  constructor(settings: ControllerSettings, rule: TripRule, window: OutcomeWindow | undefined) {
    super(settings.clock);
    const h = settings.halfOpenAfter;
    this.name = settings.name;
    this.rule = rule;
    this.window = window;
    // The settings object itself, not a copy: the default one is shared by every breaker.
    this.openAfter = h.multiplier === 1 ? h.initial : h;
    this.halfOpenMaxCalls = settings.halfOpenMaxCalls;
    this.halfOpenSuccesses = settings.halfOpenSuccesses;
    this.halfOpenTimeout = settings.halfOpenTimeout;
  }

  /** The current state, after any transition that is due (open → half-open, hung trial → open). */
  get state(): BreakerState {
    if (this.current !== 'closed') this.refresh(this.now());
    return this.current;
  }

  /**
   * Subscribes to `stateChange`, `success`, `failure` or `rejected`; dispose the result (or
   * hold it with `using`) to unsubscribe. The one policy that does not extend
   * ObservablePolicy: its hub is created on first use, so an idle breaker stays small.
   */
  on<K extends keyof CircuitBreakerEvents>(
    event: K,
    listener: Listener<CircuitBreakerEvents[K]>,
  ): Subscription {
    return (this.events ??= new EventHub(BREAKER_EVENTS)).on(event, listener, this.kind);
  }

  /**
   * Forces the breaker open (state 'isolated') until every handle returned so far is released.
   * For operators: take a dependency out of service (maintenance, a known incident) without
   * waiting for failures. Calls fail fast with a `CircuitOpenError` meanwhile.
   *
   * @example
   * ```ts
   * import { circuitBreaker } from 'bulwark';
   *
   * const breaker = circuitBreaker({ name: 'ledger' });
   * const maintenance = breaker.isolate(); // breaker.state === 'isolated'
   * // … later, when the ledger is back:
   * maintenance.release(); // closed again, with a fresh window
   * ```
   */
  isolate(): IsolationHandle {
    const isolation = (this.isolation ??= { count: 0, epoch: 0 });
    if (isolation.count++ === 0) this.transition('isolated');
    const epoch = isolation.epoch;
    let released = false;
    const release = (): void => {
      if (released || epoch !== isolation.epoch) return;
      released = true;
      if (--isolation.count === 0) this.close();
    };
    return { release, dispose: release };
  }

  /** Closes the breaker and clears its window; isolation handles still out stop counting. */
  reset(): void {
    if (this.isolation !== undefined) {
      this.isolation.count = 0;
      this.isolation.epoch++;
    }
    this.close();
  }

  /** A snapshot of the state and the window's counts, for dashboards and health endpoints. */
  stats(): CircuitBreakerStats {
    const now = this.now();
    this.refresh(now);
    const w = this.window;
    if (w !== undefined) w.roll(now);
    const calls = w?.calls ?? 0;
    const failures = w?.failures ?? 0;
    const slow = w?.slow ?? 0;
    const state = this.current;
    return {
      name: this.name,
      state,
      calls,
      successes: calls - failures,
      failures,
      slowCalls: slow,
      failureRate: calls > 0 ? failures / calls : 0,
      slowCallRate: calls > 0 ? slow / calls : 0,
      consecutiveFailures: this.rule.consecutiveFailures?.() ?? 0,
      timesOpened: this.timesOpened,
      halfOpenTrials: state === 'half-open' ? this.round!.trials.length : 0,
      retryAfterMs:
        state === 'open'
          ? Math.max(0, this.openUntil - now)
          : state === 'isolated'
            ? Infinity
            : state === 'half-open'
              ? this.halfOpenRetryAfter(now)
              : 0,
      isolations: this.isolation?.count ?? 0,
    };
  }

  /** The clock of the latest call, for a breaker given no clock of its own. */
  protected callClock: Clock | undefined;

  /** Time on the breaker's own clock, else on the clock its calls run on. */
  protected now(): number {
    return (this.clock ?? this.callClock ?? systemClock).now();
  }

  /**
   * A call admitted while closed finished with a counted outcome. `now` is passed when
   * the caller already read the clock; otherwise it is read only if needed.
   */
  protected recordClosed(failed: boolean, slow: boolean, now?: number): void {
    // Admitted while closed but finished after the breaker opened: says nothing about
    // the current period. (Closed calls are not tagged with their period, to keep the
    // success path free of allocations; one that outlives a whole open/half-open cycle
    // is counted in the new closed period.)
    if (this.current !== 'closed') return;
    const window = this.window;
    if (window !== undefined && window.timed) now ??= this.now();
    if (window !== undefined) window.record(now ?? 0, failed, slow);
    if (this.rule.record(failed, slow, window, now)) this.open(now ?? this.now());
  }

  /**
   * Decides a call that arrives while the breaker is not closed: a trial slot while
   * half-open, the rejection to fail it with, or undefined to run it as a closed call.
   */
  protected admit(now: number): Trial | CircuitOpenError | undefined {
    this.refresh(now);
    const state = this.current;
    if (state === 'half-open') {
      const trials = this.round!.trials;
      if (trials.length < this.halfOpenMaxCalls) {
        const trial: Trial = { start: now, round: this.round!, working: 0, pending: undefined };
        trials.push(trial);
        return trial;
      }
      return this.rejection('half-open', this.halfOpenRetryAfter(now));
    }
    if (state === 'open') return this.rejection('open', this.openUntil - now);
    if (state === 'isolated') return this.rejection('isolated', Infinity);
    return undefined;
  }

  /**
   * `fn` for a half-open trial: it tells the trial when the work itself has settled. The
   * call can end first (the caller aborts, an outer deadline passes) while the dependency
   * is still busy with the work: the trial slot belongs to the work, not to the caller.
   * (Half-open calls are rare: a closure per trial costs nothing that matters.)
   */
  protected trialWork<T>(trial: Trial, fn: Operation<T>): Operation<T> {
    return (ctx) => {
      const result = fn(ctx);
      if (!isPromiseLike(result)) return result;
      trial.working++;
      const settled = (): void => {
        if (--trial.working === 0 && trial.pending !== undefined)
          this.settleTrial(trial, trial.pending, this.now());
      };
      Promise.resolve(result).then(settled, settled);
      return result;
    };
  }

  /**
   * A half-open trial's call ended with `verdict`. A failure counts at once; otherwise the
   * slot is freed only when the work has settled too (a hung one is failed by `refresh`).
   */
  protected endTrial(trial: Trial, verdict: Verdict, now: number): void {
    if (verdict === FAILED || trial.working === 0) this.settleTrial(trial, verdict, now);
    else trial.pending = verdict;
  }

  /** A half-open trial finished. */
  protected settleTrial(trial: Trial, verdict: Verdict, now: number): void {
    const round = trial.round;
    if (round !== this.round || this.current !== 'half-open') return;
    const i = round.trials.indexOf(trial);
    if (i >= 0) round.trials.splice(i, 1);
    // Past halfOpenTimeout the trial already counts as failed, whatever it returns now.
    if (verdict === FAILED || now - trial.start >= this.halfOpenTimeout) this.open(now);
    else if (verdict === SUCCEEDED && ++round.successes >= this.halfOpenSuccesses) this.close(now);
  }

  /** Applies the transitions that are due by `now`: a hung trial fails, an open period ends. */
  protected refresh(now: number): void {
    if (this.current === 'half-open') {
      const trials = this.round!.trials;
      if (trials.length > 0 && now - trials[0]!.start >= this.halfOpenTimeout) this.open(now);
    }
    if (this.current === 'open' && now >= this.openUntil) this.transition('half-open');
  }

  protected halfOpenRetryAfter(now: number): number {
    // An upper bound: by then the oldest trial has finished or been failed for hanging.
    const trials = this.round!.trials;
    if (trials.length < this.halfOpenMaxCalls) return 0;
    return Math.max(0, trials[0]!.start + this.halfOpenTimeout - now);
  }

  protected rejection(
    state: 'open' | 'half-open' | 'isolated',
    retryAfterMs: number,
  ): CircuitOpenError {
    const events = this.events;
    if (events !== undefined && events.has('rejected')) events.emit('rejected', { state });
    return CircuitOpenError.refusal(state, retryAfterMs, this.name);
  }

  private open(now: number): void {
    const trip = ++this.tripsInARow;
    const after = this.openAfter;
    this.openUntil =
      now +
      (typeof after === 'number'
        ? after
        : openDuration(after.initial, after.multiplier, after.max, trip));
    this.timesOpened++;
    this.transition('open');
  }

  /** `recoveredAt`: closing because the trials succeeded (the trip rule may keep watch). */
  private close(recoveredAt?: number): void {
    this.rule.reset(recoveredAt);
    this.window?.reset();
    this.tripsInARow = 0;
    this.transition('closed');
  }

  private transition(to: BreakerState): void {
    const from = this.current;
    this.current = to;
    // Trials still running belong to the round that just ended: their outcomes are ignored.
    this.round = to === 'half-open' ? { trials: [], successes: 0 } : undefined;
    const events = this.events;
    if (from !== to && events !== undefined && events.has('stateChange'))
      events.emit('stateChange', { from, to });
    this.transitioned(from, to);
  }

  /** Called after every transition; the policy serves its waiters and slow start here. */
  protected transitioned(_from: BreakerState, _to: BreakerState): void {
    // Nothing to do for a breaker without waiters.
  }
}
