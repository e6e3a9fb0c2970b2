// The 'bulwark/testing' entry: virtual time, simulated faults, invariants and store
// conformance. Nothing here loads fast-check; its arbitraries live in
// 'bulwark/testing/arbitraries' so a user who only wants VirtualClock needs no fast-check.
export { VirtualClock, type VirtualClockOptions } from './virtual-clock.js';
export { faultyDependency } from './faulty-dependency.js';
export { seededRandom } from './seeded-random.js';
export {
  FaultError,
  type FaultInfo,
  type FaultWindow,
  type FaultyDependency,
  type FaultyDependencyOptions,
  type FaultyResponse,
  type LatencyOption,
  type Outage,
  type Slowdown,
} from './fault-types.js';
export {
  assertInvariants,
  breakerNeverCallsWhileOpen,
  bulkheadNeverExceeds,
  callsWithinBudget,
  InvariantError,
  noUnhandledRejections,
  settlesExactlyOnce,
  trackConcurrency,
  type BreakerCheck,
  type BreakerCheckOptions,
  type BreakerLike,
  type BudgetCheck,
  type BudgetCheckOptions,
  type ConcurrencyOptions,
  type ConcurrencyTracker,
  type Invariant,
  type SettleCheck,
  type UnhandledCheck,
  type UnhandledOptions,
} from './invariants.js';
export {
  storeConformance,
  type StoreConformanceOptions,
  type StoreFactory,
} from './store-conformance.js';
