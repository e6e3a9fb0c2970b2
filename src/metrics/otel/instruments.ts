import type {
  Attributes,
  Counter,
  Histogram,
  Meter,
  ObservableCounter,
  ObservableGauge,
  ObservableUpDownCounter,
} from '@opentelemetry/api';

/** Histogram bounds in seconds, the same as the Prometheus recorder's default buckets. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The instruments of the Prometheus recorder's table, created once per meter. Names follow
 * OpenTelemetry's guidance (dot-separated, seconds for durations, no `_total`), so an OTel
 * Prometheus exporter turns them back into the same metric names: `bulwark.calls` into
 * `bulwark_calls_total`, `bulwark.call.duration` (s) into `bulwark_call_duration_seconds`.
 */
export class Instruments {
  readonly calls: ObservableCounter<Attributes>;
  readonly duration: Histogram<Attributes>;
  readonly retries: Counter<Attributes>;
  readonly retryBudgetExhausted: Counter<Attributes>;
  readonly circuitState: ObservableGauge<Attributes>;
  readonly circuitTransitions: Counter<Attributes>;
  readonly bulkheadInFlight: ObservableUpDownCounter<Attributes>;
  readonly bulkheadQueued: ObservableUpDownCounter<Attributes>;
  readonly loadShed: Counter<Attributes>;
  readonly concurrencyLimit: ObservableGauge<Attributes>;
  readonly idempotency: Counter<Attributes>;

  constructor(meter: Meter) {
    // Observed at collection from plain per-outcome counts: the SDK hashes the attributes of
    // every synchronous record (about a microsecond), and the histogram already pays once.
    this.calls = meter.createObservableCounter('bulwark.calls', {
      description: 'Calls through a dependency, by outcome.',
      unit: '{call}',
    });
    this.duration = meter.createHistogram('bulwark.call.duration', {
      description: 'Duration of calls through a dependency, retries and waits included.',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.retries = meter.createCounter('bulwark.retries', {
      description: 'Retries made, by reason.',
      unit: '{retry}',
    });
    this.retryBudgetExhausted = meter.createCounter('bulwark.retry_budget.exhausted', {
      description: 'Retries the retry budget refused.',
      unit: '{retry}',
    });
    this.circuitState = meter.createObservableGauge('bulwark.circuit.state', {
      description: "1 for the circuit breaker's current state, 0 for the others.",
    });
    this.circuitTransitions = meter.createCounter('bulwark.circuit.transitions', {
      description: 'Circuit breaker state changes.',
      unit: '{transition}',
    });
    this.bulkheadInFlight = meter.createObservableUpDownCounter('bulwark.bulkhead.in_flight', {
      description: 'Calls holding a bulkhead slot.',
      unit: '{call}',
    });
    this.bulkheadQueued = meter.createObservableUpDownCounter('bulwark.bulkhead.queued', {
      description: 'Calls waiting for a bulkhead slot.',
      unit: '{call}',
    });
    this.loadShed = meter.createCounter('bulwark.load_shed', {
      description: 'Calls the load shedder refused, by priority and reason.',
      unit: '{call}',
    });
    this.concurrencyLimit = meter.createObservableGauge('bulwark.concurrency_limit', {
      description: "The load shedder's current concurrency limit.",
      unit: '{call}',
    });
    this.idempotency = meter.createCounter('bulwark.idempotency', {
      description: 'Keyed calls by what the idempotency policy did.',
      unit: '{call}',
    });
  }
}
