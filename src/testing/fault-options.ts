// Reading faultyDependency()'s options: latency distributions, fault windows, and their errors.
import { parseDuration } from '../core/duration.js';
import { ConfigError, type ConfigProblem } from '../core/errors.js';
import type { Validator } from '../core/validate.js';
import type { FaultWindow } from './fault-types.js';

export type Sampler = (random: () => number) => number;

/** z for the 99th percentile of the standard normal distribution. */
export const Z99 = 2.3263478740408408;

export interface Window {
  from: number;
  to: number;
}
export interface OutageSpec extends Window {
  error: unknown;
  hasError: boolean;
  latency: number;
  hang: boolean;
}
export interface SlowdownSpec extends Window {
  factor: number;
  failureRate: number | undefined;
}

export const KNOWN = [
  'latency',
  'failureRate',
  'outages',
  'slowdowns',
  'hangs',
  'seed',
  'clock',
  'origin',
  'errors',
  'value',
  'history',
];

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function readLatency(v: Validator, value: unknown): Sampler {
  if (value === undefined) return () => 0;
  if (typeof value === 'number' || typeof value === 'string') {
    const ms = v.duration('latency', value, 0);
    return () => ms;
  }
  if (isObject(value) && 'min' in value && 'max' in value) {
    const min = v.duration('latency.min', value.min, 0);
    const max = v.duration('latency.max', value.max, min);
    if (max < min) v.problem('latency.max', `a duration ≥ latency.min (${min} ms)`, value.max);
    return (random) => min + random() * (max - min);
  }
  if (isObject(value) && 'p50' in value && 'p99' in value) {
    const p50 = v.duration('latency.p50', value.p50, 1, { min: Number.MIN_VALUE });
    const p99 = v.duration('latency.p99', value.p99, p50);
    if (p99 < p50) v.problem('latency.p99', `a duration ≥ latency.p50 (${p50} ms)`, value.p99);
    // ln(latency) is normal with median ln(p50); p99 fixes its spread.
    const mu = Math.log(p50);
    const sigma = p99 > p50 ? Math.log(p99 / p50) / Z99 : 0;
    return (random) => {
      // Box–Muller; 1 − u keeps the log argument in (0, 1].
      const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return Math.exp(mu + sigma * z);
    };
  }
  v.problem('latency', "ms, '20ms', { min, max } or { p50, p99 }", value);
  return () => 0;
}

export function readWindow(v: Validator, path: string, value: Record<string, unknown>): Window {
  const from = v.duration(`${path}.from`, value.from, 0);
  const to = v.duration(`${path}.to`, value.to, from, { allowInfinity: true });
  if (value.from === undefined)
    v.problem(`${path}.from`, 'a duration (ms since origin)', undefined);
  if (value.to === undefined) v.problem(`${path}.to`, 'a duration (ms since origin)', undefined);
  if (to < from) v.problem(`${path}.to`, `a duration ≥ ${path}.from (${from} ms)`, value.to);
  return { from, to };
}

export function readList<S>(
  v: Validator,
  name: string,
  value: unknown,
  known: readonly string[],
  read: (path: string, item: Record<string, unknown>) => S,
): S[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    v.problem(name, 'an array of { from, to, … }', value);
    return [];
  }
  return value.flatMap((item, i) => {
    const path = `${name}[${i}]`;
    if (!isObject(item)) {
      v.problem(path, '{ from, to, … }', item);
      return [];
    }
    for (const key of Object.keys(item)) {
      if (!known.includes(key)) v.unknownKey(`${path}.${key}`, known);
    }
    return [read(path, item)];
  });
}

/** Reads a window given as `{ from, to }` for callsDuring(); throws on a bad one. */
export function windowOf(window: FaultWindow): Window {
  const from = parseDuration(window?.from);
  const to = parseDuration(window?.to);
  if (from === undefined || to === undefined || to < from) {
    const problem: ConfigProblem = {
      path: 'callsDuring(window)',
      expected: '{ from, to } with durations, from ≤ to',
      got: window,
    };
    throw new ConfigError([problem]);
  }
  return { from, to };
}
