import type { Attributes } from '@opentelemetry/api';
import {
  CALL_OUTCOMES,
  CIRCUIT_STATES,
  RETRY_REASONS,
  SHED_REASONS,
  SHED_PRIORITIES,
  type CallOutcome,
  type CallTracing,
  type CircuitStateName,
  type DependencyMetrics,
  type IdempotencyResult,
  type RetryMetricReason,
  type ShedPriority,
  type ShedReason,
} from '../recorder.js';
import * as A from './attributes.js';
import type { Instruments } from './instruments.js';

/** One attribute set per label value, built once: the hot path allocates nothing. */
function byValue<K extends string>(
  values: readonly K[],
  make: (value: K) => Attributes,
): Record<K, Attributes> {
  const out = {} as Record<K, Attributes>;
  for (const v of values) out[v] = Object.freeze(make(v));
  return out;
}

/** What the OpenTelemetry backend shares between its dependencies: are traces and metrics live? */
export interface Liveness {
  /** False while no SDK would receive anything (the API's no-op providers). */
  readonly live: boolean;
}

/** One dependency's recorder: the Prometheus table's instruments, plus its tracing. */
export class OtelDependencyMetrics implements DependencyMetrics {
  private readonly outcome: Record<CallOutcome, Attributes>;
  private readonly retryReason: Record<RetryMetricReason, Attributes>;
  private readonly shed = new Map<string, Attributes>();
  private readonly transitions = new Map<string, Attributes>();
  private readonly idempotencyAttrs = new Map<string, Attributes>();
  private readonly base: Attributes;
  /** Calls per outcome (CALL_OUTCOMES order), read at collection. */
  private readonly callCounts = new Float64Array(CALL_OUTCOMES.length);
  private readonly outcomeIndex = new Map<CallOutcome, number>(CALL_OUTCOMES.map((o, i) => [o, i]));

  constructor(
    readonly dependency: string,
    private readonly instruments: Instruments,
    private readonly liveness: Liveness,
    readonly tracing: CallTracing | undefined,
  ) {
    this.base = Object.freeze({ [A.DEPENDENCY]: dependency });
    this.outcome = byValue(CALL_OUTCOMES, (o) => ({ [A.DEPENDENCY]: dependency, [A.OUTCOME]: o }));
    this.retryReason = byValue(RETRY_REASONS, (r) => ({
      [A.DEPENDENCY]: dependency,
      [A.RETRY_REASON]: r,
    }));
    instruments.calls.addCallback((result) => {
      for (let i = 0; i < CALL_OUTCOMES.length; i++) {
        const count = this.callCounts[i]!;
        if (count > 0) result.observe(count, this.outcome[CALL_OUTCOMES[i]!]);
      }
    });
    for (const p of SHED_PRIORITIES) {
      for (const r of SHED_REASONS) {
        this.shed.set(
          `${p}/${r}`,
          Object.freeze({ [A.DEPENDENCY]: dependency, [A.PRIORITY]: p, [A.SHED_REASON]: r }),
        );
      }
    }
    for (const from of CIRCUIT_STATES) {
      for (const to of CIRCUIT_STATES) {
        this.transitions.set(
          `${from}/${to}`,
          Object.freeze({ [A.DEPENDENCY]: dependency, [A.CIRCUIT_FROM]: from, [A.CIRCUIT_TO]: to }),
        );
      }
    }
  }

  get enabled(): boolean {
    return this.liveness.live;
  }

  recordCall(outcome: CallOutcome, seconds: number): void {
    this.callCounts[this.outcomeIndex.get(outcome)!]! += 1;
    this.instruments.duration.record(seconds, this.outcome[outcome]);
  }

  recordRetry(reason: RetryMetricReason): void {
    this.instruments.retries.add(1, this.retryReason[reason]);
  }

  recordRetryBudgetExhausted(): void {
    this.instruments.retryBudgetExhausted.add(1, this.base);
  }

  recordCircuitTransition(from: CircuitStateName, to: CircuitStateName): void {
    this.instruments.circuitTransitions.add(1, this.transitions.get(`${from}/${to}`));
  }

  observeCircuitState(read: () => CircuitStateName): void {
    const states = byValue(CIRCUIT_STATES, (s) => ({
      [A.DEPENDENCY]: this.dependency,
      [A.CIRCUIT_STATE]: s,
    }));
    this.instruments.circuitState.addCallback((result) => {
      const now = read();
      for (const s of CIRCUIT_STATES) result.observe(s === now ? 1 : 0, states[s]);
    });
  }

  observeBulkhead(read: () => { inFlight: number; queued: number }): void {
    const { bulkheadInFlight, bulkheadQueued } = this.instruments;
    bulkheadInFlight.addCallback((result) => result.observe(read().inFlight, this.base));
    bulkheadQueued.addCallback((result) => result.observe(read().queued, this.base));
  }

  recordLoadShed(priority: ShedPriority, reason: ShedReason): void {
    this.instruments.loadShed.add(1, this.shed.get(`${priority}/${reason}`));
  }

  observeConcurrencyLimit(read: () => number): void {
    this.instruments.concurrencyLimit.addCallback((result) => result.observe(read(), this.base));
  }

  recordIdempotency(store: string, result: IdempotencyResult): void {
    // Store names are few and fixed by configuration: one attribute set each, kept.
    const key = `${store}/${result}`;
    let attributes = this.idempotencyAttrs.get(key);
    if (attributes === undefined) {
      attributes = Object.freeze({
        [A.IDEMPOTENCY_STORE]: store,
        [A.IDEMPOTENCY_RESULT]: result,
      });
      this.idempotencyAttrs.set(key, attributes);
    }
    this.instruments.idempotency.add(1, attributes);
  }
}
