import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/;

/**
 * Reads a duration: a number of ms, a string like '250ms', '2s', '1.5m', '1h', or
 * Infinity / 'Infinity'. Returns undefined for anything else (including negatives, and a
 * string too large to be finite: Infinity is only ever meant when written out).
 * Every duration option of bulwark accepts the same forms.
 *
 * @example
 * ```ts
 * import { parseDuration } from 'bulwark';
 *
 * parseDuration('250ms'); // 250
 * parseDuration('1.5m'); // 90000
 * parseDuration(3000); // 3000
 * parseDuration('2 days'); // undefined
 * ```
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (value.trim() === 'Infinity') return Infinity;
  const m = PATTERN.exec(value);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS[m[2]!]!;
  // '1'.repeat(400) + 'ms' would read as Infinity: a typo must not mean "no limit".
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Like parseDuration but throws a ConfigError naming `path` for bad input: for reading
 * durations from your own config with the same rules and messages as bulwark's options.
 *
 * @example
 * ```ts
 * import { toMs } from 'bulwark';
 *
 * const pollEvery = toMs(process.env.POLL_INTERVAL ?? '30s', 'POLL_INTERVAL'); // 30000
 * toMs('soon', 'cache.ttl'); // throws ConfigError "cache.ttl: expected a duration (…)"
 * ```
 */
export function toMs(value: unknown, path = 'duration'): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new ConfigError([
      { path, expected: "a duration (ms number or '250ms', '2s', '1m')", got: value },
    ]);
  }
  return ms;
}
