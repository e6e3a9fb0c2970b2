/**
 * A small, honest micro-benchmark harness: every case runs sequential awaited calls in
 * the same process and the same run as the bare baseline, so ratios compare like with
 * like. Reports the median of several timed samples.
 */
export interface BenchCase {
  group: string;
  name: string;
  /** One operation (usually one awaited call through the policy). */
  run: () => Promise<unknown>;
  /** When one run makes many calls (e.g. 1,000 concurrent); default 1. */
  callsPerRun?: number;
}

export interface BenchResult {
  group: string;
  name: string;
  nsPerCall: number;
}

const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 60);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 7);

async function timeRuns(run: () => Promise<unknown>, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await run();
  return Number(process.hrtime.bigint() - start);
}

export async function measure(c: BenchCase): Promise<BenchResult> {
  const calls = c.callsPerRun ?? 1;
  // Warm up, then size a sample so it lasts about SAMPLE_MS.
  let n = 16;
  for (;;) {
    const ns = await timeRuns(c.run, n);
    if (ns > SAMPLE_MS * 1e6 * 0.25 || n > 1e7) {
      n = Math.max(1, Math.round((n * SAMPLE_MS * 1e6) / ns));
      break;
    }
    n *= 4;
  }
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) samples.push((await timeRuns(c.run, n)) / (n * calls));
  samples.sort((a, b) => a - b);
  return { group: c.group, name: c.name, nsPerCall: samples[samples.length >> 1]! };
}

export const bareCall = (): Promise<number> => Promise.resolve(1);

export function formatTable(results: BenchResult[], bareNs: number): string {
  const lines = [
    `bare \`await fn()\`: ${bareNs.toFixed(0)} ns/call`,
    '',
    '| group | case | ns/call | added ns | × bare |',
    '|---|---|---:|---:|---:|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.group} | ${r.name} | ${fmt(r.nsPerCall)} | ${fmt(r.nsPerCall - bareNs)} | ${(r.nsPerCall / bareNs).toFixed(1)} |`,
    );
  }
  return lines.join('\n');
}

function fmt(ns: number): string {
  return ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : ns.toFixed(0);
}
