import { brandClass, BulwarkError, formatMs } from '../../core/errors.js';

/** `ERR_CIRCUIT_OPEN`: the circuit breaker refused the call without running it. */
export class CircuitOpenError extends BulwarkError {
  static override readonly kind = 'CircuitOpenError';
  /** ms until the breaker admits its next trial call (Infinity while isolated). */
  readonly retryAfterMs: number;
  /**
   * The breaker's state: open, isolated by an operator, or half-open with every trial slot taken.
   */
  readonly state: 'open' | 'half-open' | 'isolated';
  constructor(state: 'open' | 'half-open' | 'isolated', retryAfterMs: number, name?: string) {
    super(
      'ERR_CIRCUIT_OPEN',
      `${name ? `${name}: ` : ''}circuit is ${state}` +
        (Number.isFinite(retryAfterMs) ? `; next trial in ${formatMs(retryAfterMs)}` : ''),
    );
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

brandClass(CircuitOpenError);
