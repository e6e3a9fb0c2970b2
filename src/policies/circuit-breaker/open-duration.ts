/**
 * How long the breaker stays open after its `trip`-th opening in a row (1 for the first
 * since it last closed): initial × multiplier^(trip − 1), capped at max. A fixed delay is
 * the case multiplier = 1. Growing the delay keeps a dependency that keeps failing its
 * trials from being probed at full rate forever.
 */
export function openDuration(
  initial: number,
  multiplier: number,
  max: number,
  trip: number,
): number {
  if (multiplier === 1 || trip <= 1) return initial < max ? initial : max;
  const ms = initial * Math.pow(multiplier, trip - 1);
  return ms < max ? ms : max;
}
