import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/;

/**
 * Reads a duration: a number of ms, a string like '250ms', '2s', '1.5m', '1h', or
 * Infinity / 'Infinity'. Returns undefined for anything else (including negatives).
 */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (value.trim() === 'Infinity') return Infinity;
  const m = PATTERN.exec(value);
  if (!m) return undefined;
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** Like parseDuration but throws a ConfigError naming `path` for bad input. */
export function toMs(value: unknown, path = 'duration'): number {
  const ms = parseDuration(value);
  if (ms === undefined) {
    throw new ConfigError([
      { path, expected: "a duration (ms number or '250ms', '2s', '1m')", got: value },
    ]);
  }
  return ms;
}
