import { systemClock, type Clock } from '../core/clock.js';
import type { Context } from '../core/context.js';
import type { Policy } from '../core/pipeline.js';
import { Validator } from '../core/validate.js';
import type { DependencyMetrics, MessageOutcome, MetricsProvider } from '../metrics/recorder.js';
import type { BreakerState } from '../index.js';
import { compileBackoff, type Backoff, type BackoffOption } from '../policies/retry/backoff.js';
import { CircuitOpenError } from '../policies/circuit-breaker/errors.js';
import { retryAfterOf } from '../policies/retry/classification.js';
import { MemoryStore } from '../stores/memory.js';
import type { IdempotencyStore } from '../stores/store.js';
import { classifyFailure, type Decision, type FailureKind } from './decision.js';

/**
 * What `messageHandler()` needs of a dependency: a policy to run through, its name, and
 * its breaker when it has one (so a failure that opens it counts as unavailability).
 * `dependency()` from `bulwark` returns one; it must not retry in-process (`retry: false`):
 * the queue's redelivery is the retry.
 */
export interface MessageDependency extends Policy {
  readonly name: string;
  /** The whole-call budget in ms: `lockTtl` must be longer, so no run outlives its claim. */
  readonly budget?: number;
  /** The dependency's retry, when it has one: refused when it makes more than one attempt. */
  readonly retry?: { readonly maxAttempts: number } | undefined;
  /** The dependency's circuit breaker, when it has one. */
  readonly breaker?: MessageBreaker | undefined;
  /** The same, under the name some dependency objects give it. */
  readonly circuitBreaker?: MessageBreaker | undefined;
}

/** What the queue adapters read of a circuit breaker: its state, next trial, transitions. */
export interface MessageBreaker {
  readonly state: BreakerState;
  stats(): { retryAfterMs: number };
  on(
    event: 'stateChange',
    listener: (e: { from: BreakerState; to: BreakerState }) => void,
  ): { dispose(): void };
}

/** The work done for one message: runs inside the dependency's policies. */
export type MessageWork<M, R> = (message: M, ctx: Context) => Promise<R> | R;

/** Options of `messageHandler()`; all optional. */
export interface MessageHandlerOptions<M> {
  /**
   * The message's idempotency key (default: the queue's message id). A message whose
   * outcome is stored under its key is acknowledged without running the work again; the
   * key is also the work's `ctx.idempotencyKey`, so the downstream can deduplicate.
   */
  key?: (message: M, id: string | undefined) => string;
  /** Counted deliveries before a retryable failure is dead-lettered (default 5). */
  maxDeliveries?: number;
  /**
   * Delay before a counted redelivery: ms, a duration string, exponential options, or
   * `(delivery, error) => ms` (default exponential from 1 s, doubling, capped at 1 min,
   * equal jitter).
   */
  backoff?: BackoffOption;
  /** Redelivery delay of a deferral whose refusal names no `retryAfterMs` (default 1 s). */
  deferDelay?: number | string;
  /** Where outcomes and running claims are kept (default: a MemoryStore of its own). */
  store?: IdempotencyStore;
  /** How long a message's outcome is kept, answering redeliveries (default 24 h). */
  ttl?: number | string;
  /**
   * How long a running message holds its key (default 60 s): a redelivery while it is held
   * is deferred. Longer than the work can take, and than the dependency's budget (checked);
   * a holder that crashes frees it after this.
   */
  lockTtl?: number | string;
  /** Turns a failure into a retry, a deferral or a dead letter (default `classifyFailure`). */
  classify?: (error: unknown) => FailureKind;
  /** Where message outcomes go: the same provider the dependency reports to. */
  metrics?: MetricsProvider;
  /** The clock delays and failure times are read on (default: the dependency's). */
  clock?: Clock;
}

/** What an adapter knows about one delivery. */
export interface Delivery {
  /** The queue's own id for the message (BullMQ job id, stream entry id): the default key. */
  readonly id?: string;
  /** This delivery's number among the counted ones: 1 for the first; deferrals do not count. */
  readonly deliveries: number;
}

/** Runs messages through a dependency and decides what becomes of each. */
export interface MessageHandler<M = unknown, R = unknown> {
  /** The dependency every message runs through. */
  readonly dependency: MessageDependency;
  /** Counted deliveries before a retryable failure is dead-lettered. */
  readonly maxDeliveries: number;
  /** The clock delays and failure times are read on. */
  readonly clock: Clock;
  /** The dependency's recorder, when `metrics` was given: adapters report pauses to it. */
  readonly recorder: DependencyMetrics | undefined;
  /** The dependency's circuit breaker, if any: adapters stop fetching while it is open. */
  readonly breaker: MessageBreaker | undefined;
  /** The idempotency key of a message. */
  keyOf(message: M, id: string | undefined): string;
  /** Runs one delivery and returns what to do with the message. Never rejects. */
  handle(message: M, delivery: Delivery): Promise<Decision<R>>;
}

/** Keeps message claims apart from the dependency's own idempotency keys in a shared store. */
const SCOPE = 'bulwark-queue';

const KNOWN = [
  'key',
  'maxDeliveries',
  'backoff',
  'deferDelay',
  'store',
  'ttl',
  'lockTtl',
  'classify',
  'metrics',
  'clock',
] as const;

const defaultKey = (_message: unknown, id: string | undefined): string => id ?? '';

class Handler<M, R> implements MessageHandler<M, R> {
  readonly clock: Clock;
  readonly recorder: DependencyMetrics | undefined;
  readonly breaker: MessageBreaker | undefined;
  readonly maxDeliveries: number;
  readonly keyOf: (message: M, id: string | undefined) => string;
  private readonly backoff: Backoff;
  private readonly deferDelay: number;
  private readonly store: IdempotencyStore;
  private readonly ttl: number;
  private readonly lockTtl: number;
  private readonly classify: (error: unknown) => FailureKind;

  constructor(
    readonly dependency: MessageDependency,
    private readonly work: MessageWork<M, R>,
    options: MessageHandlerOptions<M>,
  ) {
    const v = new Validator('messageHandler');
    const o = v.object(options, KNOWN);
    if (
      typeof dependency !== 'object' ||
      dependency === null ||
      typeof dependency.execute !== 'function' ||
      typeof dependency.name !== 'string'
    ) {
      v.problem('dependency', 'a dependency (from dependency())', dependency);
    }
    // In-process retries would run the work deliveries × attempts times and send that many
    // calls into an outage; the queue already retries, with its own backoff and count.
    const retry = (dependency as MessageDependency | null)?.retry;
    if (retry !== undefined && retry !== null && retry.maxAttempts > 1) {
      v.problem(
        'dependency.retry',
        `no in-process retry (build '${dependency.name}' with retry: false; the queue's redelivery is the retry)`,
        `maxAttempts ${retry.maxAttempts}`,
      );
    }
    if (typeof work !== 'function') v.problem('handler', 'a function (message, ctx)', work);
    this.keyOf = v.func('key', o.key, defaultKey);
    this.maxDeliveries = v.int('maxDeliveries', o.maxDeliveries, 5, 1);
    this.backoff = compileBackoff(
      o.backoff ?? { initial: 1000, multiplier: 2, max: 60_000, jitter: 'equal' },
      v,
      Math.random,
    );
    this.deferDelay = v.duration('deferDelay', o.deferDelay, 1000);
    this.ttl = v.duration('ttl', o.ttl, 86_400_000, { min: 1 });
    this.lockTtl = v.duration('lockTtl', o.lockTtl, 60_000, { min: 1 });
    // A call may wait inside the dependency (slow start, a bulkhead queue) up to its budget:
    // a claim that expired meanwhile would let a redelivery run the same message alongside.
    const budget = (dependency as MessageDependency | null)?.budget;
    if (typeof budget === 'number' && !(this.lockTtl > budget)) {
      v.problem(
        'lockTtl',
        `longer than the budget of '${dependency.name}' (${budget} ms), so no run outlives its claim`,
        o.lockTtl ?? this.lockTtl,
      );
    }
    this.classify = v.func('classify', o.classify, classifyFailure);
    const store = o.store as IdempotencyStore | undefined;
    if (store !== undefined && (typeof store !== 'object' || typeof store?.claim !== 'function')) {
      v.problem('store', 'an idempotency store (claim, complete, release, get)', store);
    }
    const metrics = o.metrics as MetricsProvider | undefined;
    if (metrics !== undefined && typeof metrics?.forDependency !== 'function') {
      v.problem('metrics', 'a metrics provider (prometheusMetrics(...))', metrics);
    }
    const clock = o.clock as Clock | undefined;
    if (clock !== undefined && typeof clock?.now !== 'function') {
      v.problem('clock', 'a Clock', clock);
    }
    v.done();
    this.clock = clock ?? dependency.clock ?? systemClock;
    this.store = store ?? new MemoryStore({ clock: this.clock });
    this.recorder = metrics?.forDependency(dependency.name);
    this.breaker = dependency.breaker ?? dependency.circuitBreaker;
  }

  async handle(message: M, delivery: Delivery): Promise<Decision<R>> {
    const deliveries = delivery.deliveries;
    let key: string;
    try {
      key = this.keyOf(message, delivery.id);
    } catch (error) {
      return this.deadLetter(error, deliveries, 'not-retryable');
    }
    if (typeof key !== 'string' || key === '') {
      return this.deadLetter(
        new TypeError(
          `${this.dependency.name}: a message needs a key (an id from the queue, or the key option)`,
        ),
        deliveries,
        'not-retryable',
      );
    }
    let claim;
    try {
      claim = await this.store.claim(key, undefined, this.lockTtl, SCOPE);
    } catch (error) {
      // The store decides whether the work may run at all: without it, wait and see.
      return this.defer(error, this.deferDelay, deliveries);
    }
    if (claim.state === 'completed') {
      this.record('replayed');
      const body = claim.record.body;
      return {
        action: 'done',
        result: (body === '' ? undefined : JSON.parse(body)) as R,
        replayed: true,
        deliveries,
        at: this.clock.now(),
      };
    }
    if (claim.state === 'in-progress') {
      // Another holder runs it now (or crashed holding it): look again soon, or when its
      // lock ends if that is sooner.
      const delay = Math.min(claim.lockRemaining ?? Infinity, this.deferDelay);
      return this.defer(undefined, Math.max(1, delay), deliveries);
    }
    if (claim.state === 'mismatch') {
      return this.deadLetter(
        new Error(`key ${key} is held with another fingerprint`),
        deliveries,
        'not-retryable',
      );
    }
    const token = claim.token;
    const unavailable = this.unavailable();
    if (unavailable !== undefined) {
      await this.store.release(key, token, SCOPE).catch(ignore);
      return this.defer(unavailable, unavailable.retryAfterMs, deliveries);
    }
    let result: R;
    try {
      result = await this.dependency.execute(this.run.bind(this, message), {
        idempotencyKey: key,
      });
    } catch (error) {
      await this.store.release(key, token, SCOPE).catch(ignore);
      return this.failed(error, deliveries);
    }
    let body = '';
    try {
      body = result === undefined ? '' : JSON.stringify(result);
    } catch {
      // An unserializable result is still a success; a redelivery replays `undefined`.
    }
    // The effect happened: acknowledge even if the outcome could not be stored.
    await this.store
      .complete(key, token, { outcome: 'value', body }, this.ttl, SCOPE)
      .catch(ignore);
    this.record('processed');
    return { action: 'done', result, deliveries, at: this.clock.now() };
  }

  /**
   * The breaker's refusal when it is open (or isolated, or its trials are taken) and the
   * next trial is not due yet. The queue is the wait: the message is deferred until then
   * instead of waiting inside the breaker (whileOpen), which would hold a worker slot.
   * When the trial is due the message runs and may be the trial.
   */
  private unavailable(): CircuitOpenError | undefined {
    const breaker = this.breaker;
    if (breaker === undefined) return undefined;
    const state = breaker.state;
    if (state === 'closed') return undefined;
    const retryAfterMs = breaker.stats().retryAfterMs;
    if (retryAfterMs <= 0) return undefined;
    return new CircuitOpenError(state, retryAfterMs, this.dependency.name);
  }

  private run(message: M, ctx: Context): Promise<R> | R {
    return this.work(message, ctx);
  }

  private failed(error: unknown, deliveries: number): Decision<R> {
    let kind = this.classify(error);
    const breaker = this.breaker;
    // A failure that opened the breaker (or a failed half-open trial that reopened it)
    // proves the dependency down, not the message bad: it must not use up a delivery.
    if (kind === 'retry' && breaker !== undefined && breaker.state === 'open') kind = 'defer';
    if (kind === 'defer') {
      let delay = retryAfterOf(error);
      if (delay === undefined && breaker !== undefined && breaker.state === 'open') {
        delay = breaker.stats().retryAfterMs;
      }
      return this.defer(error, delay ?? this.deferDelay, deliveries);
    }
    if (kind === 'dead-letter') return this.deadLetter(error, deliveries, 'not-retryable');
    if (deliveries >= this.maxDeliveries)
      return this.deadLetter(error, deliveries, 'max-deliveries');
    this.record('retried');
    return {
      action: 'retry',
      delayMs: Math.max(0, this.backoff(deliveries, 0, error)),
      error,
      deliveries,
      at: this.clock.now(),
    };
  }

  private defer(error: unknown, delayMs: number, deliveries: number): Decision<R> {
    this.record('deferred');
    // A refusal that says "now" (retryAfterMs 0) would bring the message straight back
    // into the same refusal: wait at least a little, so a deferral never spins.
    const floor = Math.min(this.deferDelay, 100);
    const delay = Number.isFinite(delayMs) ? Math.max(floor, delayMs) : this.deferDelay;
    return { action: 'defer', delayMs: delay, error, deliveries, at: this.clock.now() };
  }

  private deadLetter(
    error: unknown,
    deliveries: number,
    reason: 'not-retryable' | 'max-deliveries',
  ): Decision<R> {
    this.record('dead_lettered');
    return { action: 'dead-letter', error, reason, deliveries, at: this.clock.now() };
  }

  private record(outcome: MessageOutcome): void {
    this.recorder?.recordMessage?.(outcome);
  }
}

function ignore(): void {}

/**
 * A queue-agnostic message handler: runs each message's work through a dependency's
 * policies and decides what becomes of it — done, retried after a backoff (counting a
 * delivery), deferred while the dependency is unavailable (not counting one), or
 * dead-lettered (a poison message at once, a retryable one after `maxDeliveries`). Each
 * message's outcome is stored under its key, so a redelivered message that already
 * succeeded is acknowledged without running the work again.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { messageHandler } from 'bulwark/queue';
 *
 * const payments = dependency('payments', {
 *   retry: false, // the queue's redelivery is the retry
 *   circuitBreaker: { consecutiveFailures: 5 },
 * });
 * const charge = messageHandler(payments, async (order: { id: string }, ctx) => {
 *   const res = await fetch('https://payments.internal/charges', {
 *     method: 'POST',
 *     headers: { 'idempotency-key': ctx.idempotencyKey },
 *     body: JSON.stringify(order),
 *     signal: ctx.signal,
 *   });
 *   if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
 * }, { key: (order) => order.id, maxDeliveries: 5 });
 * const decision = await charge.handle({ id: 'o-1' }, { id: '1', deliveries: 1 });
 * ```
 */
export function messageHandler<M, R>(
  dependency: MessageDependency,
  handler: MessageWork<M, R>,
  options: MessageHandlerOptions<M> = {},
): MessageHandler<M, R> {
  return new Handler(dependency, handler, options);
}
