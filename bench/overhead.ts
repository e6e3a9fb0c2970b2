/**
 * `npm run bench`: the cost bulwark adds per call, against a bare `await fn()`, the
 * hand-rolled floor of each job and the peers, all interleaved in one run (see
 * harness.ts); plus startup and bundle sizes of the built main entry (bench/import-time.ts:
 * `npm run bench` builds it first) and memory per in-flight call.
 * Writes bench/results/overhead.md. `tsx bench/overhead.ts kernel breaker` runs some suites
 * only and writes nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  fmt,
  formatTable,
  measureInterleaved,
  type BenchCase,
  type BenchResult,
} from './harness.js';
import { startupReport } from './import-time.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
/** Set in the child processes that measure (see below). */
const measureHere = args.includes('--measure');
const only = args.filter((a) => a !== '--measure');
const suites = ['parts', 'kernel', 'breaker', 'bulkhead', 'metrics', 'scale'].filter(
  (s) => only.length === 0 || only.includes(s),
);
const log = (line: string): void => void process.stderr.write(line + '\n');

interface Measured {
  bareNs: number;
  results: BenchResult[];
}

if (measureHere) {
  const cases: BenchCase[] = [];
  for (const suite of suites) {
    const mod = (await import(`./${suite}.js`)) as { cases: BenchCase[] };
    cases.push(...mod.cases);
  }
  const measured: Measured = await measureInterleaved(cases, log);
  await new Promise((done) => process.stdout.write(JSON.stringify(measured), done));
  process.exit(0);
}

// The cases are measured in fresh processes, and each figure is the median over them. One
// process now and then runs a case several times slower for its whole life (V8 settles on
// worse code or allocation for a site, depending on the order the cases warmed up in, with
// or without this library's changes); a median over processes is not moved by one such run.
// The 10,000-in-flight bursts get processes of their own: the objects of 10,000 pending
// calls survive the young generation, V8 then allocates at those sites straight in the old
// one (allocation-site pretenuring), and single calls measured after a burst in the same
// process read up to 10× slower. Each process's cases are ratios to its own bare call.
const PROCESSES = Number(process.env.BENCH_PROCESSES ?? 3);
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
function measureApart(script: string, args: string[]): Measured {
  return JSON.parse(
    execFileSync(process.execPath, ['--import', 'tsx', join(here, script), ...args], {
      cwd: root,
      env: process.env,
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 26,
    }).toString(),
  ) as Measured;
}
function combine(runs: Measured[]): Measured {
  const bare = median(runs.map((r) => r.bareNs));
  return {
    bareNs: bare,
    results: runs[0]!.results.map((first, i) => {
      const ratio = median(runs.map((r) => r.results[i]!.ratio));
      return {
        ...first,
        nsPerCall: median(runs.map((r) => r.results[i]!.nsPerCall)),
        ratio,
        addedNs: (ratio - 1) * bare,
      };
    }),
  };
}
const perCall: Measured[] = [];
const bursts: Measured[] = [];
const inline = suites.filter((s) => s !== 'scale');
for (let p = 0; p < PROCESSES; p++) {
  log(`process ${p + 1}/${PROCESSES}`);
  if (inline.length > 0) perCall.push(measureApart('overhead.ts', ['--measure', ...inline]));
  if (suites.includes('scale')) bursts.push(measureApart('scale.ts', ['--measure']));
}
const { bareNs, results } =
  perCall.length > 0 ? combine(perCall) : { bareNs: NaN, results: [] as BenchResult[] };
if (bursts.length > 0) results.push(...combine(bursts).results);
const table = formatTable(results, bareNs);

// ---- import time, bundle contents ----------------------------------------------------

// The built main entry (dist/index.js, what users import and bundle), the peers and the
// floors, measured by bench/import-time.ts in its own interleaved rounds.
const startup = await startupReport();
const bulwarkImport = startup.importMs;

// ---- memory per in-flight call --------------------------------------------------------

const memory = JSON.parse(
  execFileSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(here, 'memory-inflight.ts')],
    {
      cwd: root,
    },
  ).toString(),
) as { bytesPerCall: number };

// ---- targets --------------------------------------------------------------------------

const by = (group: string, name: string): BenchResult => {
  const r = results.find((x) => x.group === group && x.name.startsWith(name));
  if (r === undefined) throw new Error(`no case ${group} / ${name}`);
  return r;
};
/** ns, or µs past 10,000 ns, with the unit. */
const withUnit = (ns: number): string => (Math.abs(ns) >= 10_000 ? fmt(ns) : `${fmt(ns)} ns`);
const targets: Array<[string, string, boolean | undefined]> = []; // undefined: for reference
const has = (g: string) => results.some((r) => r.group === g);
if (has('timeout')) {
  const t = by('timeout', 'bulwark timeout (fn ignores');
  // What any timeout that rejects hung work pays before bookkeeping (parts.ts), if measured.
  const least = results.find((r) => r.name.startsWith('bare call + one clock read + a guard'));
  // …and with the deadline in a shared list whose one timer is ref'd while calls are
  // pending: the documented contract written by hand, with no context or options.
  const contract = results.find((r) => r.name.startsWith('clock read + guard + an entry'));
  // …and that guard around bulwark's own context and timers: what the context adds.
  const ours = results.find((r) => r.name.startsWith('the same guard written by hand'));
  targets.push([
    '`timeout` ≤ 4× bare',
    `${t.ratio.toFixed(2)}×` +
      (least === undefined ? '' : ` (clock read + guard alone: ${least.ratio.toFixed(2)}×`) +
      (contract === undefined
        ? ''
        : `; the same with a shared deadline list and ref'd timer: ${contract.ratio.toFixed(2)}×`) +
      (ours === undefined
        ? ''
        : `; that guard by hand around bulwark's context and timers: ${ours.ratio.toFixed(2)}×`) +
      (least === undefined ? '' : ')'),
    t.ratio <= 4,
  ]);
  const b = by('budget+retry+timeout', 'bulwark');
  targets.push([
    '`pipeline(budget, retry, timeout)` ≤ 6× bare',
    `${b.ratio.toFixed(2)}×`,
    b.ratio <= 6,
  ]);
}
if (has('dependency')) {
  const floor = by('dependency', 'retry + breaker');
  const d = by('dependency', 'bulwark dependency() (');
  const m = by('dependency', 'bulwark dependency() +');
  const x = d.ratio / floor.ratio;
  targets.push(['full `dependency()` ≤ 3× the all-in-one floor', `${x.toFixed(2)}× floor`, x <= 3]);
  const hand = by('dependency', 'hand-written timing');
  const extra = m.addedNs - d.addedNs;
  const rel = m.ratio / d.ratio;
  targets.push([
    '`prometheusMetrics` adds ≤ 1.2× or ≤ 150 ns',
    `${rel.toFixed(2)}×, ${withUnit(extra)} (hand-written timing and recording: ` +
      `${(hand.ratio / d.ratio).toFixed(2)}×, ${withUnit(hand.addedNs - d.addedNs)})`,
    rel <= 1.2 || extra <= 150,
  ]);
}
if (has('fail-fast')) {
  for (const name of ['bulwark open breaker', 'bulwark full bulkhead', 'bulwark load shedder']) {
    const r = by('fail-fast', name);
    targets.push([
      `fail-fast ${name.replace('bulwark ', '')} ≤ 500 ns added`,
      withUnit(r.addedNs),
      r.addedNs <= 500,
    ]);
  }
}
if (has('10,000 in flight') && has('timeout') && has('dependency')) {
  const floorGrowth =
    by('10,000 in flight', 'deadline check').ratio / by('timeout', 'deadline check').ratio;
  const pairs: Array<[string, BenchResult, BenchResult]> = [
    [
      'timeout',
      by('timeout', 'bulwark timeout (fn ignores'),
      by('10,000 in flight', 'bulwark timeout'),
    ],
    [
      'budget+retry+timeout',
      by('budget+retry+timeout', 'bulwark'),
      by('10,000 in flight', 'bulwark budget'),
    ],
    [
      'dependency()',
      by('dependency', 'bulwark dependency() ('),
      by('10,000 in flight', 'bulwark dependency'),
    ],
  ];
  for (const [name, one, many] of pairs) {
    const growth = many.ratio / one.ratio;
    targets.push([
      `${name} at 10,000 in flight ≤ 1.5× its cost at 1, beyond the floor's growth (${floorGrowth.toFixed(2)}×)`,
      `${growth.toFixed(2)}× (÷ floor growth: ${(growth / floorGrowth).toFixed(2)})`,
      growth / floorGrowth <= 1.5,
    ]);
  }
  // The promise machinery alone (a guard per call, no library) grows too: the GC copies
  // every live promise and closure of the 10,000 calls on each scavenge.
  const least = results.find((r) => r.name.startsWith('bare call + one clock read + a guard'));
  const guards = results.find((r) => r.name.startsWith('clock read + guard, no library'));
  if (least !== undefined && guards !== undefined) {
    const g = guards.ratio / least.ratio;
    targets.push([
      '(building block) clock read + guard at 10,000 in flight, against 1',
      `${g.toFixed(2)}× (÷ floor growth: ${(g / floorGrowth).toFixed(2)})`,
      undefined,
    ]);
  }
  const c =
    by('10,000 children', '10,000 timeout calls, { parent').ratio /
    by('10,000 children', '10,000 timeout calls, no').ratio;
  targets.push([
    '10,000 children of one parent ≤ 1.5× without a parent',
    `${c.toFixed(2)}×`,
    c <= 1.5,
  ]);
}
targets.push([
  "`import 'bulwark'` ≤ 8 ms cold (median of 11)",
  `${bulwarkImport.toFixed(1)} ms (floors: empty file ${startup.emptyFileMs.toFixed(1)}, same code parsed only ${startup.parseOnlyMs.toFixed(1)})`,
  bulwarkImport <= 8,
]);
targets.push([
  'memory per in-flight `dependency()` call ≤ 1.5 KB',
  `${Math.round(memory.bytesPerCall)} B`,
  memory.bytesPerCall <= 1536,
]);

const targetTable = [
  '| target | measured | met |',
  '|---|---:|:---:|',
  ...targets.map(
    ([t, v, ok]) => `| ${t} | ${v} | ${ok === undefined ? '—' : ok ? 'yes' : '**no**'} |`,
  ),
].join('\n');

const header =
  `Node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString().slice(0, 10)}; ` +
  `${Number(process.env.BENCH_ROUNDS ?? 9)} interleaved rounds (random order each round) in each of ${PROCESSES} processes; ratios are medians over the processes of the medians of per-round ratios to that round's bare call.\n\n`;
const notes =
  'Read the ratios, not the ns: on a shared machine absolute numbers move 2–5× between runs. ' +
  'A group\'s **floor** is the same job hand-written in one async function; "× floor" is a case\'s ratio over it. ' +
  'The *building blocks* group shows what any implementation pays (a clock read, a reaction, a guard promise, a rejection): ' +
  'where a target sits below those, it is out of reach. See README.md, Benchmarks. ' +
  'At 10,000 calls in flight most of the cost is the garbage collector: each scavenge copies every pending ' +
  "call's promises, closures and contexts, and once they outgrow V8's young generation (16 MB semi-space by " +
  'default) they are promoted to the old one; with `node --max-semi-space-size=64` the same `dependency()` ' +
  'burst cost about 2× its cost at 1 in flight on the machine these numbers come from (about 6× with the default).\n\n';
const report = `${header}${notes}## Targets\n\n${targetTable}\n\n## Per call\n\n${table}\n\n## Startup and size\n\n${startup.markdown}\n\n## Memory\n\nPer in-flight \`dependency()\` call (budget, timeout, retry, breaker, bulkhead), heap after forced GC with 10,000 calls pending, minus the same pending work without bulwark: ${Math.round(memory.bytesPerCall)} B.\n`;
console.log(report);
if (only.length === 0) {
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'overhead.md'), report);
}
