/**
 * The 'bulwark/testing/arbitraries' entry: fast-check arbitraries for fault schedules and
 * dependency configs. It is the only testing entry that loads fast-check (an optional
 * peer), so `bulwark/testing` works for users who only want VirtualClock.
 *
 * @module testing/arbitraries
 */
export {
  faultScheduleArb,
  dependencyConfigArb,
  type DependencyConfigArbOptions,
  type DependencyPart,
  type FaultSchedule,
  type FaultScheduleArbOptions,
} from './arbitraries.js';
