import {
  CALL_OUTCOMES,
  CIRCUIT_STATES,
  IDEMPOTENCY_RESULTS,
  MESSAGE_OUTCOMES,
  RETRY_REASONS,
  SHED_PRIORITIES,
  SHED_REASONS,
  type CallOutcome,
  type CircuitStateName,
  type DependencyMetrics,
  type IdempotencyResult,
  type MessageOutcome,
  type RetryMetricReason,
  type ShedPriority,
  type ShedReason,
} from './recorder.js';

// The hot-path half of the Prometheus metrics: each policy adds to plain numbers here;
// prometheus-series.ts turns them into samples only when the registry is scraped.

/** One dependency's counts, in flat typed arrays indexed by the recorder's fixed label values. */
export class Recorder implements DependencyMetrics {
  readonly calls = new Float64Array(CALL_OUTCOMES.length);
  /** Per outcome: one count per bucket (non-cumulative), then +Inf, sum. */
  readonly histogram: Float64Array;
  readonly retries = new Float64Array(RETRY_REASONS.length);
  budgetExhausted = 0;
  readonly transitions = new Float64Array(CIRCUIT_STATES.length * CIRCUIT_STATES.length);
  readonly shed = new Float64Array(SHED_PRIORITIES.length * SHED_REASONS.length);
  readonly idempotency = new Map<string, Float64Array>();
  rateLimited = 0;
  /** Paced waits: one count per bucket (non-cumulative), then +Inf, sum. */
  readonly rateLimitWait: Float64Array;
  rateLimit = false;
  circuitState: (() => CircuitStateName) | undefined;
  bulkhead: (() => { inFlight: number; queued: number }) | undefined;
  concurrencyLimit: (() => number) | undefined;
  readonly messages = new Float64Array(MESSAGE_OUTCOMES.length);
  /** One reader per paused-able consumer of this dependency; the gauge is their sum. */
  readonly paused: Array<() => number> = [];

  constructor(
    readonly dependency: string,
    readonly buckets: readonly number[],
  ) {
    this.histogram = new Float64Array(CALL_OUTCOMES.length * (buckets.length + 2));
    this.rateLimitWait = new Float64Array(buckets.length + 2);
  }

  observeRateLimit(): void {
    this.rateLimit = true;
  }

  recordRateLimited(): void {
    this.rateLimit = true;
    this.rateLimited++;
  }

  recordRateLimitWait(seconds: number): void {
    this.rateLimit = true;
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    this.rateLimitWait[i]! += 1;
    this.rateLimitWait[this.buckets.length + 1]! += seconds;
  }

  recordCall(outcome: CallOutcome, seconds: number): void {
    const o = OUTCOME_INDEX[outcome];
    this.calls[o]! += 1;
    const stride = this.buckets.length + 2;
    const base = o * stride;
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    this.histogram[base + i]! += 1;
    this.histogram[base + stride - 1]! += seconds;
  }

  recordRetry(reason: RetryMetricReason): void {
    this.retries[RETRY_REASONS.indexOf(reason)]! += 1;
  }

  recordRetryBudgetExhausted(): void {
    this.budgetExhausted++;
  }

  recordCircuitTransition(from: CircuitStateName, to: CircuitStateName): void {
    this.transitions[
      CIRCUIT_STATES.indexOf(from) * CIRCUIT_STATES.length + CIRCUIT_STATES.indexOf(to)
    ]! += 1;
  }

  observeCircuitState(read: () => CircuitStateName): void {
    this.circuitState = read;
  }

  observeBulkhead(read: () => { inFlight: number; queued: number }): void {
    this.bulkhead = read;
  }

  recordLoadShed(priority: ShedPriority, reason: ShedReason): void {
    this.shed[
      SHED_PRIORITIES.indexOf(priority) * SHED_REASONS.length + SHED_REASONS.indexOf(reason)
    ]! += 1;
  }

  observeConcurrencyLimit(read: () => number): void {
    this.concurrencyLimit = read;
  }

  recordIdempotency(store: string, result: IdempotencyResult): void {
    let counts = this.idempotency.get(store);
    if (counts === undefined)
      this.idempotency.set(store, (counts = new Float64Array(IDEMPOTENCY_RESULTS.length)));
    counts[IDEMPOTENCY_RESULTS.indexOf(result)]! += 1;
  }

  recordMessage(outcome: MessageOutcome): void {
    this.messages[MESSAGE_OUTCOMES.indexOf(outcome)]! += 1;
  }

  observeQueuePaused(read: () => number): void {
    this.paused.push(read);
  }
}

const OUTCOME_INDEX = Object.fromEntries(CALL_OUTCOMES.map((o, i) => [o, i])) as Record<
  CallOutcome,
  number
>;

/** Holds every dependency's recorder for one registry + prefix; shared by repeated calls. */
export class Hub {
  readonly recorders = new Map<string, Recorder>();
  constructor(readonly buckets: readonly number[]) {}
}
