/**
 * Figures of one scenario case, computed from what the load driver recorded: every logical
 * request (start, latency as the caller saw it, success) and the start time of every
 * downstream call. All times are ms since the case started.
 */

export interface CaseRaw {
  starts: number[];
  latencies: number[];
  /** 1 = the request succeeded before the caller gave up. */
  ok: number[];
  /** Start time of every call that was actually sent downstream. */
  attempts: number[];
  /** Failed requests by kind of the error the caller got. */
  failures: Record<string, number>;
  durationMs: number;
  /** Worst event-loop delay of the client process (ms). */
  clientLoopMaxMs: number;
  unhandledRejections: number;
  /** Requests refused by a load shedder while the dependency was healthy. */
  shedHealthy?: number;
}

export interface Figures {
  requests: number;
  calls: number;
  /** Downstream calls per logical request. */
  amplification: number;
  successRate: number;
  /** Success rate of requests started inside the fault window. */
  windowSuccessRate: number;
  requestsInWindow: number;
  callsInWindow: number;
  /**
   * ms from the end of the window to the first time t from which the requests started in
   * [t, t + RECOVERY_WINDOW_MS) succeed at ≥ 90 %; undefined when that never happens.
   */
  recoveryMs: number | undefined;
  /** The longest recovery this run can measure (its tail must hold a whole rolling window). */
  recoveryLimitMs: number;
  p50: number;
  p99: number;
  /** p99 of successful requests only. */
  p99ok: number;
  /** Successful requests per second, over the whole run. */
  goodput: number;
  /** Successful requests per second inside the fault window. */
  windowGoodput: number;
}

export const RECOVERY_WINDOW_MS = 1000;
export const RECOVERY_THRESHOLD = 0.9;
const GRID_MS = 100;

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

function ascending(values: number[]): number[] {
  return values.sort((a, b) => a - b);
}

export function figures(raw: CaseRaw, window: readonly [number, number]): Figures {
  const [w0, w1] = window;
  const n = raw.starts.length;
  let successes = 0;
  let inWindow = 0;
  let okInWindow = 0;
  const all: number[] = [];
  const okLatencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = raw.starts[i]!;
    const ok = raw.ok[i] === 1;
    all.push(raw.latencies[i]!);
    if (ok) {
      successes++;
      okLatencies.push(raw.latencies[i]!);
    }
    if (start >= w0 && start < w1) {
      inWindow++;
      if (ok) okInWindow++;
    }
  }
  const callsInWindow = raw.attempts.filter((t) => t >= w0 && t < w1).length;
  ascending(all);
  ascending(okLatencies);
  const recovery = recoveryAfter(raw, w1);
  return {
    requests: n,
    calls: raw.attempts.length,
    amplification: n === 0 ? NaN : raw.attempts.length / n,
    successRate: n === 0 ? NaN : successes / n,
    windowSuccessRate: inWindow === 0 ? NaN : okInWindow / inWindow,
    requestsInWindow: inWindow,
    callsInWindow,
    recoveryMs: recovery.ms,
    recoveryLimitMs: recovery.limit,
    p50: percentile(all, 50),
    p99: percentile(all, 99),
    p99ok: percentile(okLatencies, 99),
    goodput: successes / (raw.durationMs / 1000),
    windowGoodput: okInWindow / ((w1 - w0) / 1000),
  };
}

/** First grid time after `end` whose forward rolling window succeeds at ≥ 90 %. */
function recoveryAfter(raw: CaseRaw, end: number): { ms: number | undefined; limit: number } {
  const buckets = Math.ceil(raw.durationMs / GRID_MS);
  const count = new Float64Array(buckets);
  const good = new Float64Array(buckets);
  for (let i = 0; i < raw.starts.length; i++) {
    const b = Math.floor(raw.starts[i]! / GRID_MS);
    if (b < 0 || b >= buckets) continue;
    count[b]! += 1;
    good[b]! += raw.ok[i]!;
  }
  const span = RECOVERY_WINDOW_MS / GRID_MS;
  const first = Math.ceil(end / GRID_MS);
  const last = buckets - span;
  for (let b = first; b <= last; b++) {
    let c = 0;
    let g = 0;
    for (let k = b; k < b + span; k++) {
      c += count[k]!;
      g += good[k]!;
    }
    if (c > 0 && g / c >= RECOVERY_THRESHOLD)
      return { ms: b * GRID_MS - end, limit: last * GRID_MS - end };
  }
  return { ms: undefined, limit: Math.max(0, last * GRID_MS - end) };
}

export interface TimeSeries {
  /** Bucket centres, in seconds. */
  t: number[];
  /** Success rate (0..1) of requests started in the bucket; undefined when there were none. */
  success: (number | undefined)[];
  /** p99 latency (ms) of requests started in the bucket, success or failure. */
  p99: (number | undefined)[];
  /** Downstream calls per second started in the bucket. */
  callRate: number[];
}

export function timeSeries(raw: CaseRaw, bucketMs: number): TimeSeries {
  const buckets = Math.ceil(raw.durationMs / bucketMs);
  const lat: number[][] = Array.from({ length: buckets }, () => []);
  const good = new Float64Array(buckets);
  const calls = new Float64Array(buckets);
  for (let i = 0; i < raw.starts.length; i++) {
    const b = Math.floor(raw.starts[i]! / bucketMs);
    if (b < 0 || b >= buckets) continue;
    lat[b]!.push(raw.latencies[i]!);
    good[b]! += raw.ok[i]!;
  }
  for (const t of raw.attempts) {
    const b = Math.floor(t / bucketMs);
    if (b >= 0 && b < buckets) calls[b]! += 1;
  }
  const series: TimeSeries = { t: [], success: [], p99: [], callRate: [] };
  for (let b = 0; b < buckets; b++) {
    const l = ascending(lat[b]!);
    series.t.push(((b + 0.5) * bucketMs) / 1000);
    series.success.push(l.length === 0 ? undefined : good[b]! / l.length);
    series.p99.push(l.length === 0 ? undefined : percentile(l, 99));
    series.callRate.push(calls[b]! / (bucketMs / 1000));
  }
  return series;
}
