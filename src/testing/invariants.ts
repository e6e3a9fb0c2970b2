// Invariant helpers for tests of resilient code, one concept per file under invariants/.
export { assertInvariants, InvariantError, type Invariant } from './invariants/invariant.js';
export {
  bulkheadNeverExceeds,
  trackConcurrency,
  type ConcurrencyOptions,
  type ConcurrencyTracker,
} from './invariants/concurrency.js';
export {
  breakerNeverCallsWhileOpen,
  type BreakerCheck,
  type BreakerCheckOptions,
  type BreakerLike,
} from './invariants/breaker.js';
export {
  callsWithinBudget,
  type BudgetCheck,
  type BudgetCheckOptions,
} from './invariants/budget.js';
export { settlesExactlyOnce, type SettleCheck } from './invariants/settle.js';
export {
  noUnhandledRejections,
  type UnhandledCheck,
  type UnhandledOptions,
} from './invariants/unhandled.js';
