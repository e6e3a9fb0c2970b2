import type { Clock } from '../../core/clock.js';
import type { DependencyMetrics } from '../../metrics/recorder.js';
import { RateLimitPolicy, type RateLimitOptions } from './rate-limit.js';

/** The `rateLimit` section of a `dependency()` config: the options of `rateLimit()` but the clock. */
export type RateLimitConfig = Omit<RateLimitOptions, 'clock'>;

/**
 * Builds a dependency's rate limit from its config section, named after the dependency
 * unless the section names it (the name is also its key in a shared store). Throws a
 * ConfigError whose paths start at `path` (e.g. `payments.rateLimit.rate`).
 */
export function rateLimitFromConfig(
  section: Record<string, unknown>,
  dependencyName: string,
  clock: Clock | undefined,
  path: string,
): RateLimitPolicy {
  return new RateLimitPolicy({ name: dependencyName, ...section, clock } as RateLimitOptions, path);
}

/** Sends a rate limit's refusals and pacing waits to a dependency's metrics recorder. */
export function wireRateLimitMetrics(recorder: DependencyMetrics, limiter: RateLimitPolicy): void {
  recorder.observeRateLimit?.();
  if (recorder.recordRateLimited !== undefined) {
    const record = recorder.recordRateLimited.bind(recorder);
    limiter.on('rejected', () => record());
  }
  if (recorder.recordRateLimitWait !== undefined) {
    const record = recorder.recordRateLimitWait.bind(recorder);
    limiter.on('paced', (e) => record(e.waitedMs / 1000));
  }
}

/** JSON Schema of the `rateLimit` section (the JSON-expressible options; `store` is code). */
export function rateLimitSchema(duration: object, durationOrInfinity: object): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['rate'],
    properties: {
      rate: { type: 'number', exclusiveMinimum: 0 },
      per: duration,
      burst: { type: 'integer', minimum: 0 },
      wait: durationOrInfinity,
      name: { type: 'string', minLength: 1 },
      pauseOn429: { type: 'boolean' },
    },
  };
}
