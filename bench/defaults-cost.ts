/**
 * What the protective defaults cost per call: `dependency(name, {})` against the same
 * dependency with every default part turned off (a budget and an attempt timeout only) and
 * against a bare call, interleaved in random order each round (bench/harness.ts).
 * Run: `npx tsx bench/defaults-cost.ts`.
 */
import { dependency } from '../src/index.js';
import { measureInterleaved, type BenchCase } from './harness.js';

const work = (): Promise<number> => Promise.resolve(1);
const defaults = dependency('with-defaults', {});
const bare = dependency('budget-only', { retry: false, circuitBreaker: false, loadShedder: false });

const cases: BenchCase[] = [
  { group: 'defaults', name: 'dependency(name, {})', run: () => defaults.execute(work) },
  {
    group: 'defaults',
    name: 'dependency(name, { retry: false, circuitBreaker: false, loadShedder: false })',
    run: () => bare.execute(work),
  },
];
const measured = await measureInterleaved(cases, () => {});
console.log(`bare call: ${measured.bareNs.toFixed(0)} ns`);
for (const r of measured.results)
  console.log(`${r.name}: ${r.addedNs.toFixed(0)} ns added (${r.ratio.toFixed(2)}× bare)`);
