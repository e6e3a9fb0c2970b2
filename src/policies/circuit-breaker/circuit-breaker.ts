import { systemClock } from '../../core/clock.js';
import type { CallContext, Operation, Step } from '../../core/context.js';
import { CircuitOpenError } from './errors.js';
import { isAbortError, isBulwarkError, TimeoutError } from '../../core/errors.js';
import { startCall, terminalStep, type ExecuteOptions } from '../../core/pipeline.js';
import { ConsecutiveFailures } from './consecutive-failures.js';
import {
  BreakerController,
  FAILED,
  NEUTRAL,
  SUCCEEDED,
  type Trial,
  type Verdict,
} from './controller.js';
import { CountWindow } from './count-window.js';
import { OutcomeRate } from './rate.js';
import { readBreakerOptions, type BreakerConfig, type CircuitBreakerOptions } from './options.js';
import { SlowCallTimeWindow, TimeWindow } from './time-window.js';
import { AnyOfRules, type TripRule } from './trip-rule.js';
import type { OutcomeWindow } from './window.js';

type IsFailure = NonNullable<BreakerConfig['isFailure']>;

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
    if (config.consecutiveFailures !== undefined)
      rules.push(new ConsecutiveFailures(config.consecutiveFailures));
    if (config.failureRate !== undefined)
      rules.push(new OutcomeRate('failures', config.failureRate, config.minimumCalls));
    if (config.slowCallRate !== undefined)
      rules.push(new OutcomeRate('slow', config.slowCallRate, config.minimumCalls));
    super(config, rules.length === 1 ? rules[0]! : new AnyOfRules(rules), window);
    this.isFailure = config.isFailure;
    this.slowMs = config.slowCallMs;
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
    if (this.current !== 'closed') return this.runGated(ctx, fn, next);
    if (this.slowMs !== undefined) return this.runTimed(ctx, fn, next);
    const promise = next.invoke(ctx, fn);
    // One reaction observes the outcome; the caller gets the original promise, so it
    // sees the outcome only after the breaker has recorded it.
    promise.then((this.onClosedOk ??= this.closedOk.bind(this)), (error: unknown) =>
      this.closedError(error, ctx),
    );
    return promise;
  }

  private closedOk(value: unknown): void {
    const failed = this.isFailure !== undefined && this.judge(value, 'result');
    if (this.events !== undefined) this.emitOutcome(failed ? FAILED : SUCCEEDED, false, value);
    this.recordClosed(failed, false);
  }

  private closedError(error: unknown, ctx: CallContext): void {
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

  /** Not closed: reject at once, or run as one of the half-open trials. */
  private runGated<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const admitted = this.admit(this.now());
    if (admitted === undefined) return this.run(ctx, fn, next);
    if (admitted instanceof CircuitOpenError) return Promise.reject(admitted);
    const trial = admitted;
    const promise = next.invoke(ctx, this.trialWork(trial, fn));
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
 * Without a failure rule it opens after 5 consecutive failures.
 *
 * Open, it fails calls at once with a `CircuitOpenError`, which spares a struggling
 * dependency the load and the caller the wait. Share one breaker per dependency.
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
