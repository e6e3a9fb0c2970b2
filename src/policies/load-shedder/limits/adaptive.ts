import { Validator } from '../../../core/validate.js';
import { AIMD_KEYS, AimdLimiter, type AimdOptions } from './aimd.js';
import { GRADIENT_KEYS, GradientLimiter, type GradientOptions } from './gradient.js';
import { BOUND_KEYS, readBounds, type AdaptiveBounds, type AdaptiveLimiter } from './limiter.js';
import { VEGAS_KEYS, VegasLimiter, type VegasOptions } from './vegas.js';

/** The adaptive limit algorithms; see GradientLimiter, AimdLimiter and VegasLimiter. */
export type AdaptiveAlgorithm = 'gradient' | 'aimd' | 'vegas';

/**
 * Options of `adaptive()`: the `algorithm` (default `'gradient'`), the bounds, and that
 * algorithm's own options (another algorithm's options are refused).
 */
export type AdaptiveOptions =
  | ({ algorithm?: 'gradient' } & AdaptiveBounds & GradientOptions)
  | ({ algorithm: 'aimd' } & AdaptiveBounds & AimdOptions)
  | ({ algorithm: 'vegas' } & AdaptiveBounds & VegasOptions);

const ALGORITHMS: readonly AdaptiveAlgorithm[] = ['gradient', 'aimd', 'vegas'];
const KEYS: Record<AdaptiveAlgorithm, readonly string[]> = {
  gradient: GRADIENT_KEYS,
  aimd: AIMD_KEYS,
  vegas: VEGAS_KEYS,
};

/**
 * An adaptive concurrency limit for `loadShedder({ limit })`:
 * `adaptive({ algorithm: 'gradient' | 'aimd' | 'vegas', min = 1, max = 1000, initial = 20, … })`.
 * Every option is validated here, once, with the path of each bad one; options that
 * belong to another algorithm are errors, not silently ignored.
 *
 * The limit follows what the dependency sustains, found from latency and drops, instead
 * of a number guessed once and wrong after the next deploy. Give each load shedder its
 * own limiter: it learns from that shedder's calls only.
 *
 * @param options - The algorithm, its bounds and its own options.
 * @param path - Names the options in `ConfigError` messages.
 *
 * @example
 * ```ts
 * import { adaptive, loadShedder } from 'bulwark';
 *
 * const limit = adaptive({ algorithm: 'vegas', min: 5, max: 200, initial: 20 });
 * const shedder = loadShedder({ limit });
 * shedder.on('limitChange', ({ limit }) => console.log('concurrency limit now', limit));
 * ```
 */
export function adaptive(options: AdaptiveOptions = {}, path = 'adaptive'): AdaptiveLimiter {
  const v = new Validator(path);
  const raw =
    options !== null && typeof options === 'object'
      ? (options as Record<string, unknown>)
      : undefined;
  const algorithm = v.oneOf('algorithm', raw?.algorithm, ALGORITHMS, 'gradient');
  const o = v.object(options, ['algorithm', ...BOUND_KEYS, ...KEYS[algorithm]]);
  const { min, max, initial } = readBounds(v, o);
  let limiter: AdaptiveLimiter;
  if (algorithm === 'aimd') limiter = new AimdLimiter(min, max, initial, o, v);
  else if (algorithm === 'vegas') limiter = new VegasLimiter(min, max, initial, o, v);
  else limiter = new GradientLimiter(min, max, initial, o, v);
  v.done();
  return limiter;
}
