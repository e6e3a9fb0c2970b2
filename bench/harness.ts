/**
 * An interleaved micro-benchmark harness. On a shared, noisy machine a case measured
 * alone can read 2–5× apart between runs; so every round runs every case once, in a fresh
 * random order, each right after a sample of the bare call, and each case is reported as
 * the median over rounds of its ratio to that adjacent bare sample. Absolute ns are
 * printed for reference.
 */
export interface BenchCase {
  group: string;
  name: string;
  /** One operation (usually one awaited call through the policy). */
  run: () => Promise<unknown>;
  /** When one run makes many calls (e.g. 10,000 concurrent); default 1. */
  callsPerRun?: number;
  /** The hand-rolled floor of its group: the least any library could add. */
  floor?: boolean;
}

export interface BenchResult {
  group: string;
  name: string;
  floor: boolean;
  /** Median over rounds of ns per call. */
  nsPerCall: number;
  /** Median over rounds of (ns per call ÷ that round's bare ns per call). */
  ratio: number;
  /** (ratio − 1) × the median bare ns: what the case adds to a bare call. */
  addedNs: number;
}

const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);

async function timeRuns(run: () => Promise<unknown>, n: number): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await run();
  return Number(process.hrtime.bigint() - start);
}

/** Runs needed for a sample of about SAMPLE_MS (after a warm-up). */
async function calibrate(c: BenchCase): Promise<number> {
  let n = 4;
  for (;;) {
    const ns = await timeRuns(c.run, n);
    if (ns > SAMPLE_MS * 1e6 * 0.25 || n > 1e7)
      return Math.max(1, Math.round((n * SAMPLE_MS * 1e6) / ns));
    n *= 4;
  }
}

export const bareCall = (): Promise<number> => Promise.resolve(1);
const BARE: BenchCase = { group: 'bare', name: 'bare `await fn()`', run: bareCall };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function shuffle<T>(xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

export async function measureInterleaved(
  cases: BenchCase[],
  log: (line: string) => void = () => {},
): Promise<{ bareNs: number; results: BenchResult[] }> {
  const all = [BARE, ...cases];
  const runs = new Map<BenchCase, number>();
  for (const c of all) runs.set(c, await calibrate(c));
  const ns = new Map<BenchCase, number[]>(all.map((c) => [c, []]));
  const ratios = new Map<BenchCase, number[]>(all.map((c) => [c, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // Each case is timed right after a bare sample and compared with it: the machine's
    // load drifts over seconds, so a ratio to an adjacent bare sample is the steadiest.
    for (const c of shuffle([...cases])) {
      const nb = runs.get(BARE)!;
      const bare = (await timeRuns(BARE.run, nb)) / nb;
      const n = runs.get(c)!;
      const v = (await timeRuns(c.run, n)) / (n * (c.callsPerRun ?? 1));
      ns.get(BARE)!.push(bare);
      ns.get(c)!.push(v);
      ratios.get(c)!.push(v / bare);
    }
    log(`round ${round + 1}/${ROUNDS}`);
  }
  const bareNs = median(ns.get(BARE)!);
  return {
    bareNs,
    results: cases.map((c) => {
      const ratio = median(ratios.get(c)!);
      // From the (steadier) median ratio, not a median of differences of noisy samples.
      return {
        group: c.group,
        name: c.name,
        floor: c.floor === true,
        nsPerCall: median(ns.get(c)!),
        ratio,
        addedNs: (ratio - 1) * bareNs,
      };
    }),
  };
}

export function fmt(ns: number): string {
  return Math.abs(ns) >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : ns.toFixed(0);
}

export function formatTable(results: BenchResult[], bareNs: number): string {
  const floors = new Map(results.filter((r) => r.floor).map((r) => [r.group, r]));
  const lines = [
    `bare \`await fn()\`: ${bareNs.toFixed(0)} ns/call (median of rounds)`,
    '',
    '| group | case | ns/call | added ns | × bare | floor × bare | × floor |',
    '|---|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const f = floors.get(r.group);
    lines.push(
      `| ${r.group} | ${r.floor ? `**floor:** ${r.name}` : r.name} | ${fmt(r.nsPerCall)} | ${fmt(r.addedNs)} | ${r.ratio.toFixed(2)} | ${f === undefined ? '' : f.ratio.toFixed(2)} | ${f === undefined || r.floor ? '' : (r.ratio / f.ratio).toFixed(2)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * One case measured on its own: the median ns per call of several samples. For benches that
 * interleave their cases by hand (otel, rate-limit); ratio and addedNs are left NaN.
 */
export async function measure(c: BenchCase, samples = 7): Promise<BenchResult> {
  const n = await calibrate(c);
  const calls = c.callsPerRun ?? 1;
  const ns: number[] = [];
  for (let i = 0; i < samples; i++) ns.push((await timeRuns(c.run, n)) / (n * calls));
  return {
    group: c.group,
    name: c.name,
    floor: c.floor ?? false,
    nsPerCall: median(ns),
    ratio: NaN,
    addedNs: NaN,
  };
}
