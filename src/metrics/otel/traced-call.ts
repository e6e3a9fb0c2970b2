import {
  context as otelContext,
  createContextKey,
  SpanKind,
  trace,
  type Attributes,
  type Context as OtelContext,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { Clock } from '../../core/clock.js';
import type { CallContext, Operation, Step } from '../../core/context.js';
import type { CallOutcome, TracedCall } from '../recorder.js';
import * as A from './attributes.js';
import { AttemptSpan, type AttemptOutcome } from './attempt-span.js';
import { recordError, stampTraceId } from './outcome.js';

/** Where a traced call sits in the OpenTelemetry context, for its policies' event listeners. */
export const CALL_KEY = createContextKey('bulwark.call');

/** Marks a call that was looked at and not traced (not sampled), so its attempts are not either. */
export const NOT_TRACED = Symbol('bulwark.notTraced');

/** One dependency's tracer and span names; the owner of its traced calls. */
export interface SpanSource {
  readonly tracer: Tracer;
  readonly dependency: string;
  readonly callName: string;
  readonly attemptName: string;
}

/**
 * One traced logical call: its span (kind CLIENT), made the active span for the rest of the
 * call, and the bookkeeping its attempts need (which attempt number runs, how many hedges
 * it has, whether one of them won). It lives on the call's context, never in the backend.
 */
export class CallSpan implements TracedCall {
  /** The parent context with this call's span and this object set: what attempts start in. */
  readonly scope: OtelContext;
  /** Attempt numbers seen (retries included, hedges not). */
  attempts = 0;
  /** The attempt number running now, its runs so far (1 + hedges), and how its runs fared. */
  private attemptNo = 0;
  private runs = 0;
  private failedRuns = 0;
  private failuresSeen = 0;
  private won = false;
  /** When the call joined the bulkhead queue, while it waits there. */
  private queuedAt: number | undefined;
  /** A rejection already written as an event (so the call's end does not write it twice). */
  private noted: unknown;

  constructor(
    readonly source: SpanSource,
    readonly span: Span,
    parent: OtelContext,
    readonly clock: Clock,
    readonly priority: string,
  ) {
    this.scope = trace.setSpan(parent, span).setValue(CALL_KEY, this);
  }

  /** Starts the span of one call; `undefined` (and the call marked) when it is not sampled. */
  static start(source: SpanSource, ctx: CallContext, budgetMs: number): CallSpan | undefined {
    const clock = ctx.clock;
    const now = clock.now();
    // Literal keys (the values of A.DEPENDENCY, …): V8 builds such an object in one step.
    const attributes: Attributes = {
      'bulwark.dependency': source.dependency,
      'bulwark.priority': ctx.priority,
    };
    const left = Math.min(Math.max(0, ctx.deadline - now), budgetMs);
    if (left !== Infinity) attributes['bulwark.budget.remaining_ms'] = left;
    const parent = otelContext.active();
    const span = source.tracer.startSpan(
      source.callName,
      { kind: SpanKind.CLIENT, attributes, startTime: now },
      parent,
    );
    if (!span.isRecording()) {
      ctx.traced = NOT_TRACED;
      return undefined;
    }
    const call = new CallSpan(source, span, parent, clock, ctx.priority);
    ctx.traced = call;
    return call;
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    // No closure: `with` passes `this` and the arguments on.
    return otelContext.with(this.scope, next.invoke<T>, next, ctx, fn);
  }

  end(outcome: CallOutcome, error: unknown): void {
    const now = this.clock.now();
    const span = this.span;
    const failed = outcome !== 'success' && outcome !== 'fallback';
    if (failed) this.noteRejection(error, now);
    if (this.queuedAt !== undefined) {
      // Still queued when the call ended: its deadline or its caller ended the wait.
      this.event(A.EVENTS.bulkheadRejected, now, {
        [A.BULKHEAD_REASON]: 'abandoned',
        [A.BULKHEAD_WAIT_MS]: now - this.queuedAt,
      });
      this.queuedAt = undefined;
    }
    span.setAttribute(A.OUTCOME, outcome);
    span.setAttribute(A.ATTEMPTS, this.attempts);
    if (failed) {
      recordError(span, error, now);
      stampTraceId(error, span.spanContext().traceId);
    }
    span.end(now);
  }

  /** A policy decision: an event on the call's span. */
  event(name: string, time: number, attributes?: Attributes): void {
    this.span.addEvent(name, attributes, time);
  }

  /** The call joined the bulkhead queue (an in-flow event: it happens inside the call). */
  queued(length: number): void {
    const now = this.clock.now();
    this.queuedAt = now;
    this.event(A.EVENTS.bulkheadQueued, now, { [A.BULKHEAD_QUEUED]: length });
  }

  /**
   * A rejection reached the call's end or its fallback: bulwark's own refusals are written
   * from the error they carry, because the policies emit some of them outside the call's
   * flow (timers, another call's release), where no listener could tell whose they are.
   */
  noteRejection(error: unknown, now: number): void {
    if (error === this.noted || typeof error !== 'object' || error === null) return;
    const e = error as { code?: unknown; state?: string; reason?: string; retryAfterMs?: number };
    const attributes: Attributes = {};
    let name: string;
    if (e.code === 'ERR_CIRCUIT_OPEN') {
      name = A.EVENTS.circuitRejected;
      attributes[A.CIRCUIT_STATE] = e.state;
      if (Number.isFinite(e.retryAfterMs)) attributes[A.RETRY_AFTER_MS] = e.retryAfterMs;
    } else if (e.code === 'ERR_BULKHEAD_FULL') {
      name = A.EVENTS.bulkheadRejected;
      attributes[A.BULKHEAD_REASON] = e.reason;
      if (this.queuedAt !== undefined) attributes[A.BULKHEAD_WAIT_MS] = now - this.queuedAt;
      this.queuedAt = undefined;
    } else if (e.code === 'ERR_LOAD_SHED') {
      name = A.EVENTS.shed;
      attributes[A.SHED_REASON] = e.reason;
      attributes[A.PRIORITY] = this.priority;
    } else return;
    this.noted = error;
    this.event(name, now, attributes);
  }

  /** Runs one attempt (one run of fn: a retry or a hedge) in its own span, a child of the call's. */
  runAttempt<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    const now = this.clock.now();
    if (this.queuedAt !== undefined) {
      // The first run after the call queued: the bulkhead just gave it a slot.
      this.event(A.EVENTS.bulkheadDequeued, now, { [A.BULKHEAD_WAIT_MS]: now - this.queuedAt });
      this.queuedAt = undefined;
    }
    const n = ctx.attempt;
    let hedge = 0;
    if (n === this.attemptNo) {
      hedge = this.runs++;
      // A hedge starts either at once after a sibling failed, or when the delay passed.
      const reason = this.failedRuns > this.failuresSeen ? 'failure' : 'delay';
      this.failuresSeen = this.failedRuns;
      this.event(A.EVENTS.hedge, now, {
        [A.ATTEMPT]: n,
        [A.HEDGE]: hedge,
        [A.HEDGE_REASON]: reason,
      });
    } else {
      this.attemptNo = n;
      this.runs = 1;
      this.failedRuns = this.failuresSeen = 0;
      this.won = false;
      this.attempts++;
    }
    const attributes: Attributes = {
      'bulwark.dependency': this.source.dependency,
      'bulwark.attempt': n,
    };
    if (hedge > 0) attributes['bulwark.hedge'] = hedge;
    const left = Math.max(0, ctx.deadline - now);
    if (left !== Infinity) attributes['bulwark.attempt.timeout_ms'] = left;
    const span = this.source.tracer.startSpan(
      this.source.attemptName,
      { attributes, startTime: now },
      this.scope,
    );
    const attempt = new AttemptSpan(this, span, ctx, n, hedge);
    // Ends the span when the attempt is abandoned (timeout, caller abort, a hedge won) even
    // if fn never settles.
    ctx.subscribe(attempt);
    const running = otelContext.with(
      trace.setSpan(this.scope, span),
      next.invoke<T>,
      next,
      ctx,
      fn,
    );
    return running.then(attempt.succeed, attempt.fail);
  }

  /** @internal An attempt run ended. */
  attemptEnded(n: number, hedge: number, outcome: AttemptOutcome, now: number): void {
    if (n !== this.attemptNo) return;
    if (outcome === 'success') {
      if (this.runs > 1 && !this.won) {
        this.won = true;
        this.event(A.EVENTS.hedgeWon, now, { [A.ATTEMPT]: n, [A.HEDGE]: hedge });
      }
    } else if (outcome !== 'abandoned') this.failedRuns++;
  }
}
