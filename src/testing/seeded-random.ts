// Seeded randomness (our own: a 32-bit mixer and mulberry32), so a simulated run replays exactly.

/** Mixes two 32-bit numbers into one well-spread seed (murmur3's finalizer). */
export function mix(a: number, b: number): number {
  let h = (a ^ Math.imul(b, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * A small, fast, seeded PRNG (mulberry32) returning floats in [0, 1). Use it wherever
 * a policy takes a `random` option (retry jitter) so a test run replays exactly.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { VirtualClock, seededRandom } from 'bulwark/testing';
 *
 * const clock = new VirtualClock();
 * const random = seededRandom(42);
 * const payments = dependency('payments', { clock, retry: { maxAttempts: 3, random } });
 * ```
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
