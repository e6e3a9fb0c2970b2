import { systemClock } from '../../core/clock.js';
import type { CallContext, Operation, Step } from '../../core/context.js';
import { CircuitOpenError } from './errors.js';
import { rejectAfterAttach } from '../../core/fail-fast.js';
import { isAbortError, isBulwarkError, TimeoutError } from '../../core/errors.js';
import {
  PolicyStep,
  startCall,
  terminalStep,
  type AnyPolicy,
  type ExecuteOptions,
} from '../../core/pipeline.js';
import {
  handledBy,
  reportApart,
  WrappedHandler,
  type AttemptHandler,
  type HandingStep,
} from '../../core/attempt-handler.js';
import { ConsecutiveFailures } from './consecutive-failures.js';
import {
  BreakerController,
  type BreakerState,
  FAILED,
  NEUTRAL,
  SUCCEEDED,
  type Trial,
  type Verdict,
} from './controller.js';
import { CountWindow } from './count-window.js';
import { DefaultTripRule } from './default-trip-rule.js';
import { OpenWaiters, type OpenWaiter } from './open-waiters.js';
import { OutcomeRate } from './rate.js';
import { readBreakerOptions, type BreakerConfig, type CircuitBreakerOptions } from './options.js';
import { SlowStart } from './slow-start.js';
import { SlowCallTimeWindow, TimeWindow } from './time-window.js';
import { AnyOfRules, type TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

type IsFailure = NonNullable<BreakerConfig['isFailure']>;

/** What a breaker does while open and after closing; see `recoverySettings`. */
interface RecoverySettings {
  /** Waiting settings; undefined when calls fail at once while open. */
  readonly whileOpen: BreakerConfig['whileOpen'] | undefined;
  /** Slow-start window in ms (0: none). */
  readonly slowStartMs: number;
}

const NO_WAIT_BY_WINDOW = new Map<number, RecoverySettings>();

/** The settings object, shared between breakers that do not wait (the common case). */
function recoverySettings(config: BreakerConfig): RecoverySettings {
  if (config.whileOpen.wait) return { whileOpen: config.whileOpen, slowStartMs: config.slowStart };
  let shared = NO_WAIT_BY_WINDOW.get(config.slowStart);
  if (shared === undefined) {
    shared = Object.freeze({ whileOpen: undefined, slowStartMs: config.slowStart });
    // A handful of distinct windows in any real process; bounded anyway.
    if (NO_WAIT_BY_WINDOW.size < 64) NO_WAIT_BY_WINDOW.set(config.slowStart, shared);
  }
  return shared;
}

/**
 * A waiter must have at least this long left after the trial it waits for, or waiting is
 * pointless: it would be let through with no time to make its call.
 */
export const MIN_ATTEMPT_MS = 50;

/**
 * Stops calling a dependency that keeps failing, and lets a few trial calls through once
 * it may have recovered. This class is the thin part that runs a call and judges its
 * outcome; the state machine is its base class (breaker/controller.ts), the trip rules
 * and windows sit beside it.
 */
export class CircuitBreakerPolicy extends BreakerController implements Step {
  private readonly isFailure: IsFailure | undefined;
  /** Slow-call threshold in ms; undefined when slow calls are not tracked (no start time needed). */
  private readonly slowMs: number | undefined;
  /** The success reaction of closed calls, bound once (on first use: idle breakers stay small). */
  private onClosedOk: ((value: unknown) => void) | undefined;

  constructor(options: CircuitBreakerOptions = {}, path = 'circuitBreaker') {
    const config = readBreakerOptions(options, path);
    let window: OutcomeWindow | undefined;
    if (config.window !== undefined) {
      window =
        'calls' in config.window
          ? new CountWindow(config.window.calls)
          : config.slowCallRate !== undefined
            ? new SlowCallTimeWindow(config.window.ms, config.window.buckets)
            : new TimeWindow(config.window.ms, config.window.buckets);
    }
    const rules: TripRule[] = [];
    if (config.defaultRule) rules.push(new DefaultTripRule());
    if (config.consecutiveFailures !== undefined)
      rules.push(new ConsecutiveFailures(config.consecutiveFailures));
    if (config.failureRate !== undefined)
      rules.push(new OutcomeRate('failures', config.failureRate, config.minimumCalls));
    if (config.slowCallRate !== undefined)
      rules.push(new OutcomeRate('slow', config.slowCallRate, config.minimumCalls));
    super(config, rules.length === 1 ? rules[0]! : new AnyOfRules(rules), window);
    this.isFailure = config.isFailure;
    this.slowMs = config.slowCallMs;
    this.recovery = recoverySettings(config);
  }

  // Three fields, not six: a process may hold a breaker per host (see controller.ts).
  /** Waiting and slow-start settings (one shared object for the common configurations). */
  private readonly recovery: RecoverySettings;
  /** Calls waiting for a trial or for the slow-start share (created on first wait). */
  private waiters: OpenWaiters | undefined;
  /** The slow start in progress, if any (a new one per close: closes are rare). */
  private ramp: SlowStart | undefined;

  /** Calls waiting now for the breaker to let them through. */
  get waiting(): number {
    return this.waiters?.length ?? 0;
  }

  /** Whether a slow start is ramping traffic back now. */
  get rampingUp(): boolean {
    const ramp = this.ramp;
    if (ramp === undefined) return false;
    if (ramp.over(this.now())) this.ramp = undefined;
    return this.ramp !== undefined;
  }

  // Constant per class: a getter on the prototype rather than a field on every breaker.
  /** Always `'circuitBreaker'`. */
  get kind(): 'circuitBreaker' {
    return 'circuitBreaker';
  }

  /**
   * Run alone, the breaker is its own first step: same as the inherited execute, without
   * a step object per breaker.
   */
  override execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    return startCall(this.clock ?? systemClock, this, fn, options);
  }

  /** @internal Step: runs this breaker and then fn. */
  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      return this.run(ctx, fn, terminalStep);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.clock === undefined) this.callClock = ctx.clock;
    if (this.current !== 'closed' || this.ramp !== undefined) return this.runGated(ctx, fn, next);
    return this.runClosed(ctx, fn, next);
  }

  /**
   * `run` right after a clock read (see Step.invokeAt): a closed breaker that times no
   * slow calls passes the reading on to the steps inside.
   * @internal
   */
  runAt<T>(ctx: CallContext, fn: Operation<T>, next: Step, now: number): Promise<T> {
    if (
      this.current !== 'closed' ||
      this.ramp !== undefined ||
      this.slowMs !== undefined ||
      next.invokeAt === undefined
    )
      return this.run(ctx, fn, next);
    if (this.clock === undefined) this.callClock = ctx.clock;
    return this.observeClosed(next.invokeAt(ctx, fn, now), ctx);
  }

  /**
   * @internal In front of a step that hands over attempt outcomes (an attempt timeout, or
   * a bulkhead in front of one), a closed breaker counts each outcome when told it: no
   * reaction of its own. See BreakerStep.
   */
  composeStep(_inner: readonly AnyPolicy[], next: Step): Step | undefined {
    return next.invokeHandled === undefined
      ? undefined
      : new BreakerStep(this, next as HandingStep);
  }

  /**
   * @internal One attempt run by a BreakerStep: closed (and timing no slow calls), it
   * hands `counting` (which counts the outcome, then tells `outer`) to the step inside;
   * otherwise it runs the ordinary way and tells `outer` the outcome.
   */
  runHandled<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: HandingStep,
    now: number | undefined,
    counting: AttemptHandler,
    outer: AttemptHandler,
  ): Promise<T> {
    if (this.current !== 'closed' || this.ramp !== undefined || this.slowMs !== undefined)
      return handledBy(this.run(ctx, fn, next), ctx, fn, outer);
    if (this.clock === undefined) this.callClock = ctx.clock;
    return next.invokeHandled(ctx, fn, now, counting);
  }

  private runClosed<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (this.slowMs !== undefined) return this.runTimed(ctx, fn, next);
    return this.observeClosed(next.invoke(ctx, fn), ctx);
  }

  private observeClosed<T>(promise: Promise<T>, ctx: CallContext): Promise<T> {
    // One reaction observes the outcome; the caller gets the original promise, so it
    // sees the outcome only after the breaker has recorded it.
    promise.then((this.onClosedOk ??= this.closedOk.bind(this)), (error: unknown) =>
      this.closedError(error, ctx),
    );
    return promise;
  }

  /** @internal A call admitted while closed succeeded with `value`. */
  closedOk(value: unknown): void {
    const failed = this.isFailure !== undefined && this.judge(value, 'result');
    if (this.events !== undefined) this.emitOutcome(failed ? FAILED : SUCCEEDED, false, value);
    this.recordClosed(failed, false);
  }

  /** @internal A call admitted while closed failed with `error`. */
  closedError(error: unknown, ctx: CallContext): void {
    const verdict = this.errorVerdict(error, ctx);
    if (verdict === NEUTRAL) return;
    if (this.events !== undefined) this.emitOutcome(verdict, false, error);
    this.recordClosed(verdict === FAILED, false);
  }

  /** Closed, with slow calls tracked: the only closed path that reads the clock up front. */
  private runTimed<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const start = this.now();
    const promise = next.invoke(ctx, fn);
    promise.then(
      (value) => this.timedDone(start, this.resultVerdict(value), value),
      (error: unknown) => this.timedDone(start, this.errorVerdict(error, ctx), error),
    );
    return promise;
  }

  private timedDone(start: number, verdict: Verdict, outcome: unknown): void {
    if (verdict === NEUTRAL) return;
    const now = this.now();
    const slow = now - start > this.slowMs!;
    if (this.events !== undefined) this.emitOutcome(verdict, slow, outcome);
    this.recordClosed(verdict === FAILED, slow, now);
  }

  /**
   * Not closed, or closed and ramping up: run as a closed call or a half-open trial, wait
   * (whileOpen), or reject at once.
   */
  private runGated<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const now = this.now();
    const ramp = this.ramp;
    if (ramp !== undefined && this.current === 'closed') {
      if (ramp.over(now)) {
        this.ramp = undefined;
        if (this.waiting > 0) this.drain(now);
        return this.runClosed(ctx, fn, next);
      }
      ramp.offer();
      // Behind waiters, a new call keeps its place in line when it can wait.
      if (this.waiting > 0) {
        const queued = this.wait(ctx, fn, next, now, now);
        if (queued !== undefined) {
          this.drain(now);
          return queued;
        }
      }
      if (ramp.admit(now)) return this.runClosed(ctx, fn, next);
      const queued = this.wait(ctx, fn, next, now, now);
      if (queued !== undefined) {
        this.armFor(now);
        return queued;
      }
      return rejectAfterAttach(this.rejection('half-open', ramp.nextAdmissionAt() - now));
    }
    const admitted = this.admit(now);
    if (admitted === undefined) return this.run(ctx, fn, next);
    if (admitted instanceof CircuitOpenError) {
      if (this.recovery.whileOpen !== undefined && admitted.state !== 'isolated') {
        const readyAt = this.current === 'open' ? this.openUntil : now;
        const queued = this.wait(ctx, fn, next, now, readyAt);
        if (queued !== undefined) {
          this.armFor(now);
          return queued;
        }
      }
      return rejectAfterAttach(admitted);
    }
    return this.runTrial(admitted, ctx, fn, next);
  }

  private runTrial<T>(trial: Trial, ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = next.invoke(ctx, this.trialWork(trial, fn));
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (value) => this.trialDone(trial, this.resultVerdict(value), value),
      (error: unknown) => this.trialDone(trial, this.errorVerdict(error, ctx), error),
    );
    return promise;
  }

  private trialDone(trial: Trial, verdict: Verdict, outcome: unknown): void {
    const now = this.now();
    const slow = this.slowMs !== undefined && now - trial.start > this.slowMs;
    // A trial that succeeds slowly shows the dependency has not recovered yet.
    const effective = verdict === SUCCEEDED && slow ? FAILED : verdict;
    if (this.events !== undefined && effective !== NEUTRAL)
      this.emitOutcome(effective, slow, outcome);
    this.endTrial(trial, effective, now);
    // Still half-open (more successes needed, or a neutral outcome): the next waiter may try.
    if (this.waiting > 0) this.drainSoon();
  }

  // ------------------------------------------------------------ waiting while open

  /**
   * Queues the call when waiting is on, there is room, it has not ended, and its budget
   * covers the wait until `readyAt` plus MIN_ATTEMPT_MS within maxWait; else undefined.
   */
  private wait<T>(
    ctx: CallContext,
    fn: Operation<T>,
    next: Step,
    now: number,
    readyAt: number,
  ): Promise<T> | undefined {
    const settings = this.recovery.whileOpen;
    if (settings === undefined || ctx.isAborted) return undefined;
    const queue = (this.waiters ??= new OpenWaiters(
      settings.maxQueue,
      settings.maxWait,
      (at: number) => this.onTimer(at),
    ));
    if (queue.length >= settings.maxQueue) return undefined;
    if (readyAt - now > settings.maxWait || ctx.deadline - MIN_ATTEMPT_MS < readyAt)
      return undefined;
    return queue.push(ctx, fn, next, now + settings.maxWait);
  }

  /** The breaker's one waiter timer fired: expire, let through what may go, re-arm. */
  private onTimer(now: number): void {
    this.refresh(now);
    // maxWait bounds the wait for a trial; a call held back by slow start waits at most
    // until the ramp ends (or its own deadline).
    if (this.current !== 'closed') this.waiters?.expire(now, () => this.waitFailure(now));
    this.drain(now);
  }

  /** Lets waiting calls through as far as the state allows, then re-arms the one timer. */
  private drain(now: number): void {
    const queue = this.waiters;
    if (queue === undefined || queue.length === 0) return;
    this.refresh(now);
    const state = this.current;
    if (state === 'isolated') {
      queue.failWhere(
        () => true,
        () => this.rejection('isolated', Infinity),
      );
      return;
    }
    if (state === 'closed') {
      const ramp = this.ramp;
      if (ramp !== undefined && ramp.over(now)) this.ramp = undefined;
      for (let w = queue.head; w !== undefined; w = queue.head) {
        if (this.ramp !== undefined && !this.ramp.admit(now)) break;
        queue.shift();
        this.release(w, undefined);
      }
    } else if (state === 'half-open') {
      for (let w = queue.head; w !== undefined && this.current === 'half-open'; w = queue.head) {
        const trial = this.admit(now);
        if (!(trial !== undefined && !(trial instanceof CircuitOpenError))) break;
        queue.shift();
        this.release(w, trial);
      }
    }
    this.armFor(now);
  }

  /** Runs a waiter that was let through, as a closed call or as a trial. */
  private release(w: OpenWaiter, trial: Trial | undefined): void {
    let running: Promise<unknown>;
    try {
      running =
        trial === undefined
          ? this.runClosed(w.ctx, w.fn, w.step)
          : this.runTrial(trial, w.ctx, w.fn, w.step);
    } catch (error) {
      running = Promise.reject(error);
    }
    running.then(w.resolve, w.reject);
  }

  /** Arms the waiter timer for the next moment the breaker has something to do. */
  private armFor(now: number): void {
    const queue = this.waiters;
    if (queue === undefined || queue.length === 0) return;
    const state = this.current;
    let at = Infinity;
    if (state === 'open') at = this.openUntil;
    else if (state === 'half-open') {
      // A hung trial is failed at halfOpenTimeout: look again then.
      const after = this.halfOpenRetryAfter(now);
      at = after > 0 ? now + after : Infinity;
    } else if (state === 'closed' && this.ramp !== undefined) {
      // Rounded up (and at least 1 ms ahead) so a float edge cannot fire it early forever.
      at = Math.max(now + 1, Math.ceil(this.ramp.nextAdmissionAt()));
    }
    queue.arm(this.clock ?? this.callClock ?? systemClock, at, state !== 'closed');
  }

  /** The error a waiter fails with when it gives up (maxWait) or cannot make the next trial. */
  private waitFailure(now: number): CircuitOpenError {
    const state = this.current;
    if (state === 'open') return this.rejection('open', this.openUntil - now);
    if (state === 'isolated') return this.rejection('isolated', Infinity);
    if (state === 'half-open') return this.rejection('half-open', this.halfOpenRetryAfter(now));
    // Closed and ramping up: held back by slow start until its share grows.
    const ramp = this.ramp;
    return this.rejection('half-open', ramp === undefined ? 0 : ramp.nextAdmissionAt() - now);
  }

  private drainSoon(): void {
    const queue = this.waiters;
    if (queue === undefined || queue.drainQueued) return;
    queue.drainQueued = true;
    queueMicrotask(() => {
      queue.drainQueued = false;
      this.drain(this.now());
    });
  }

  protected override transitioned(from: BreakerState, to: BreakerState): void {
    if (to === 'closed') {
      // A dependency that was out (tripped, or isolated by an operator) gets traffic back
      // gradually; waiters released now count as offered at once.
      const window = this.recovery.slowStartMs;
      if (window > 0 && from !== 'closed') {
        const ramp = new SlowStart(window);
        ramp.begin(this.now(), this.waiting);
        this.ramp = ramp;
      }
    } else {
      this.ramp = undefined;
    }
    const queue = this.waiters;
    if (queue === undefined || queue.length === 0) return;
    if (to === 'open') {
      // The trial failed: those whose budget (or maxWait) cannot reach the next one fail now.
      const now = this.now();
      const readyAt = this.openUntil;
      queue.failWhere(
        (w) => w.ctx.deadline - MIN_ATTEMPT_MS < readyAt || w.expiresAt < readyAt,
        () => this.rejection('open', readyAt - now),
      );
      this.armFor(now);
      return;
    }
    this.drainSoon();
  }

  private resultVerdict(value: unknown): Verdict {
    return this.isFailure !== undefined && this.judge(value, 'result') ? FAILED : SUCCEEDED;
  }

  /**
   * The caller's own abort and bulwark's local rejections (bulkhead full, load shed, an
   * inner breaker open) say nothing about the dependency: not counted. An attempt timeout
   * is the dependency not answering: a failure (a hung dependency must trip the breaker).
   * A budget timeout is the caller's time running out: not counted by default.
   */
  private errorVerdict(error: unknown, ctx: CallContext): Verdict {
    if (ctx.abortedByCaller || isAbortError(error)) return NEUTRAL;
    const timeout = error instanceof TimeoutError;
    if (!timeout && isBulwarkError(error)) return NEUTRAL;
    if (this.isFailure !== undefined) return this.judge(error, 'error') ? FAILED : SUCCEEDED;
    if (timeout) return (error as TimeoutError).scope === 'attempt' ? FAILED : NEUTRAL;
    return FAILED;
  }

  private judge(outcome: unknown, kind: 'error' | 'result'): boolean {
    try {
      return this.isFailure!(outcome, kind) === true;
    } catch (error) {
      // A faulty predicate must not change the call's outcome; count it as a failure and
      // report the bug the way a faulty event listener is reported.
      queueMicrotask(() => {
        throw error;
      });
      return true;
    }
  }

  /** Emitted before the outcome is recorded: `state` is the state the call finished in. */
  private emitOutcome(verdict: Verdict, slow: boolean, outcome: unknown): void {
    const events = this.events!;
    const state = this.current;
    if (verdict === FAILED) {
      if (events.has('failure')) events.emit('failure', { state, slow, errorOrResult: outcome });
    } else if (events.has('success')) {
      events.emit('success', { state, slow });
    }
  }
}

/**
 * A circuit breaker: `circuitBreaker({ consecutiveFailures: 5, halfOpenAfter: '30s' })`,
 * or `circuitBreaker({ failureRate: 0.5, window: { ms: 10_000, buckets: 10 }, minimumCalls: 20 })`.
 * Without a trip rule it uses the default rule (default-trip-rule.ts: 10 failures in a row,
 * 5 at low traffic, or half of the last 10 s); it stays open 300 ms at first, ×1.5 per trip
 * in a row up to 30 s, and ramps traffic back over 1 s after closing (`slowStart`).
 *
 * Open, it fails calls at once with a `CircuitOpenError`, which spares a struggling
 * dependency the load and the caller the wait; with `whileOpen: { wait: true }` a call whose
 * budget allows waits for the next trial instead. Share one breaker per dependency.
 *
 * @example
 * ```ts
 * import { circuitBreaker } from 'bulwark';
 *
 * const payments = circuitBreaker({
 *   name: 'payments',
 *   failureRate: 0.5, // open when half the calls of the last 10 s (the default window) failed,
 *   minimumCalls: 20, // once there were at least 20 of them
 *   halfOpenAfter: { initial: '5s', max: '1m' }, // longer after each trip in a row
 *   isFailure: (outcome, kind) => kind === 'error' || (outcome as Response).status >= 500,
 * });
 * payments.on('stateChange', ({ from, to }) => console.warn(`payments breaker ${from} → ${to}`));
 * const res = await payments.execute((ctx) =>
 *   fetch('https://payments.internal/balance', { signal: ctx.signal }),
 * );
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreakerPolicy {
  return new CircuitBreakerPolicy(options);
}

/**
 * A breaker in front of an attempt timeout (see Step.invokeHandled): while closed, a call
 * hands its outcome to a handler that counts it and passes it on.
 */
class BreakerStep extends PolicyStep {
  private readonly counting: WrappedHandler;

  constructor(
    private readonly breaker: CircuitBreakerPolicy,
    next: HandingStep,
  ) {
    super(breaker, next);
    this.counting = new WrappedHandler((outer) => new CountingHandler(breaker, outer));
  }

  invokeHandled<T>(
    ctx: CallContext,
    fn: Operation<T>,
    now: number | undefined,
    handler: AttemptHandler,
  ): Promise<T> {
    try {
      const next = this.next as HandingStep;
      return this.breaker.runHandled(ctx, fn, next, now, this.counting.of(handler), handler);
    } catch (error) {
      return handler.failed(ctx, fn, error);
    }
  }
}

/** Counts an attempt's outcome in a closed breaker, then passes it on. */
class CountingHandler implements AttemptHandler {
  constructor(
    private readonly breaker: CircuitBreakerPolicy,
    private readonly outer: AttemptHandler,
  ) {}

  failed<T>(ctx: CallContext, fn: Operation<T>, error: unknown): Promise<T> {
    try {
      this.breaker.closedError(error, ctx);
    } catch (failure) {
      reportApart(failure);
    }
    return this.outer.failed(ctx, fn, error);
  }

  succeeded(ctx: CallContext, value: unknown): void {
    try {
      this.breaker.closedOk(value);
    } catch (failure) {
      reportApart(failure);
    }
    this.outer.succeeded?.(ctx, value);
  }
}
