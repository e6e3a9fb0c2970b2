import { brandClass, BulwarkError, formatMs } from '../../core/errors.js';
import { stacklessErrorOf } from '../../core/fail-fast.js';

type BreakerRefusal = 'open' | 'half-open' | 'isolated';

function openMessage(
  state: BreakerRefusal,
  retryAfterMs: number,
  name: string | undefined,
): string {
  return (
    `${name ? `${name}: ` : ''}circuit is ${state}` +
    (Number.isFinite(retryAfterMs) ? `; next trial in ${formatMs(retryAfterMs)}` : '')
  );
}

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
    super('ERR_CIRCUIT_OPEN', openMessage(state, retryAfterMs, name));
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * The same error for a breaker's per-call refusal, built without a stack or the Error
   * constructor (about a tenth of the cost), with this call's `retryAfterMs`.
   * @internal
   */
  static refusal(state: BreakerRefusal, retryAfterMs: number, name?: string): CircuitOpenError {
    const e = new StacklessCircuitOpen(openMessage(state, retryAfterMs, name)) as Writable;
    e.code = 'ERR_CIRCUIT_OPEN';
    e.state = state;
    e.retryAfterMs = retryAfterMs;
    return e;
  }
}

brandClass(CircuitOpenError);

type Writable = { -readonly [K in keyof CircuitOpenError]: CircuitOpenError[K] };
const StacklessCircuitOpen = stacklessErrorOf(CircuitOpenError);
