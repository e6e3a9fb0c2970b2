import { describe, inject } from 'vitest';

/** Port of the suite's redis-server (0 when absent). */
export const redisPort = (): number => inject('redisPort');

/** `describe` for tests that need Redis: skipped with the reason when it is absent. */
export function describeRedis(name: string, body: () => void): void {
  const missing = inject('redisMissing');
  if (missing) describe.skip(`${name} (skipped: ${missing})`, body);
  else describe(name, body);
}
