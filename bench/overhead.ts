/**
 * `npm run bench`: ns per call on the success path for every policy against a bare
 * `await fn()` and the peers, all in one run. Writes bench/results/overhead.md.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bareCall, formatTable, measure, type BenchCase, type BenchResult } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const suites = ['kernel', 'breaker', 'bulkhead', 'metrics'].filter(
  (s) => only.length === 0 || only.includes(s),
);

const cases: BenchCase[] = [];
for (const suite of suites) {
  if (!existsSync(join(here, `${suite}.ts`))) continue;
  const mod = (await import(`./${suite}.js`)) as { cases: BenchCase[] };
  cases.push(...mod.cases);
}

// Measure the bare call first and again at the end; use the lower (a fair baseline).
const bare1 = await measure({ group: 'bare', name: 'bare', run: bareCall });
const results: BenchResult[] = [];
for (const c of cases) {
  const r = await measure(c);
  results.push(r);
  process.stderr.write(
    `${r.group.padEnd(22)} ${r.name.padEnd(50)} ${r.nsPerCall.toFixed(0).padStart(8)} ns\n`,
  );
}
const bare2 = await measure({ group: 'bare', name: 'bare', run: bareCall });
const bareNs = Math.min(bare1.nsPerCall, bare2.nsPerCall);

const table = formatTable(results, bareNs);
const header = `Node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString().slice(0, 10)}\n\n`;
console.log(header + table);
// Only a full run is the reference table; a run of some suites just prints.
if (only.length === 0) {
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results', 'overhead.md'), header + table + '\n');
}
