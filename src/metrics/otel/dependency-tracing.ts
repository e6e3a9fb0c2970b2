import { context as otelContext, type Tracer } from '@opentelemetry/api';
import type { CallContext } from '../../core/context.js';
import { retryAfterOf } from '../../policies/retry/classification.js';
import type { CallTracing, TracedPolicies } from '../recorder.js';
import { AttemptSpanStep } from './attempt-step.js';
import * as A from './attributes.js';
import { CALL_KEY, CallSpan, type SpanSource } from './traced-call.js';

/**
 * Tracing for one dependency: a span per call, a child span per attempt, and the policies'
 * decisions as events on the call's span.
 */
export class DependencyTracing implements CallTracing, SpanSource {
  readonly callName: string;
  readonly attemptName: string;
  readonly attempt: AttemptSpanStep;
  private budgetMs = Infinity;

  constructor(
    readonly tracer: Tracer,
    readonly dependency: string,
  ) {
    this.callName = `${dependency} call`;
    this.attemptName = `${dependency} attempt`;
    this.attempt = new AttemptSpanStep(this);
  }

  startCall(ctx: CallContext): CallSpan | undefined {
    return CallSpan.start(this, ctx, this.budgetMs);
  }

  /**
   * The call a policy event belongs to. Only events a policy emits inside the call's own
   * flow are routed this way (see `watch`); the OpenTelemetry context there is the call's.
   */
  private current(): CallSpan | undefined {
    const call = otelContext.active().getValue(CALL_KEY);
    return call instanceof CallSpan && call.source === this ? call : undefined;
  }

  watch(p: TracedPolicies): void {
    if (p.budget !== undefined) this.budgetMs = p.budget;
    const now = (call: CallSpan): number => call.clock.now();
    p.retry?.on('retry', (e) => {
      const call = this.current();
      if (call === undefined) return;
      const attributes = {
        [A.ATTEMPT]: e.attempt,
        [A.RETRY_DELAY_MS]: e.delay,
        [A.RETRY_REASON]: e.reason,
      } as Record<string, number | string>;
      const after = retryAfterOf(e.outcome);
      if (after !== undefined) attributes[A.RETRY_AFTER_MS] = after;
      call.event(A.EVENTS.retry, now(call), attributes);
    });
    p.retry?.on('budgetExhausted', (e) => {
      const call = this.current();
      call?.event(A.EVENTS.retryBudgetExhausted, now(call), { [A.ATTEMPT]: e.attempt });
    });
    p.retry?.on('giveUp', (e) => {
      const call = this.current();
      call?.event(A.EVENTS.giveUp, now(call), {
        [A.ATTEMPT]: e.attempt,
        [A.GIVE_UP_REASON]: e.reason,
      });
    });
    p.breaker?.on('stateChange', (e) => {
      const call = this.current();
      call?.event(A.EVENTS.circuitStateChange, now(call), {
        [A.CIRCUIT_FROM]: e.from,
        [A.CIRCUIT_TO]: e.to,
      });
    });
    // Emitted synchronously as the call joins the queue; its release is seen by the attempt step.
    p.bulkhead?.on('queued', (e) => this.current()?.queued(e.queued));
    const idempotency = p.idempotency;
    if (idempotency !== undefined) {
      for (const result of ['executed', 'replayed', 'in_progress', 'key_reused'] as const) {
        const name = `${A.EVENTS.idempotency}.${result}`;
        idempotency.on(result, (e) => {
          const call = this.current();
          call?.event(name, now(call), { [A.IDEMPOTENCY_STORE]: e.store });
        });
      }
    }
    p.fallback?.on('fallback', (e) => {
      const call = this.current();
      if (call === undefined) return;
      const t = now(call);
      if (e.kind === 'error') call.noteRejection(e.outcome, t);
      call.event(A.EVENTS.fallback, t, { [A.FALLBACK_KIND]: e.kind });
    });
  }
}
