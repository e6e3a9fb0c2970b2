/**
 * Cold import time: each sample is a fresh Node process that imports one module, in a
 * random order each round so that load on a shared machine falls on every case alike.
 * `tsx bench/import-time.ts` measures the built main entry (run `npx tsup` first) against
 * the peers and an empty module; bench/overhead.ts reuses `importTimes`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// The child times with process.hrtime: reading the `performance` global first would load
// perf_hooks before the import and hide what a module pays for reading it. The time is
// taken before `process.stdout` is touched: creating the stream costs about 2 ms.
const childScript = (specifier: string): string =>
  `const t = process.hrtime.bigint(); await import(${JSON.stringify(specifier)}); ` +
  `const ms = Number(process.hrtime.bigint() - t) / 1e6; process.stdout.write(String(ms));`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Median ms of `import(specifier)` in a fresh process, over `rounds` interleaved rounds. */
export function importTimes(specifiers: string[], rounds = 11): Map<string, number> {
  const samples = new Map<string, number[]>(specifiers.map((s) => [s, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...specifiers].sort(() => Math.random() - 0.5);
    for (const s of order) {
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', childScript(s)], {
        cwd: root,
      });
      samples.get(s)!.push(Number(out.toString()));
    }
  }
  return new Map([...samples].map(([s, xs]) => [s, median(xs)]));
}

/** A one-line module: what any import costs here (the loader itself, on a loaded machine). */
export const EMPTY_MODULE = 'data:text/javascript,export default 1';

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const entry = join(root, 'dist', 'index.js');
  if (!existsSync(entry)) throw new Error('dist/index.js is missing: run `npx tsup` first');
  const main = pathToFileURL(entry).href;
  const rounds = Number(process.env.IMPORT_ROUNDS ?? 11);
  const peers = ['cockatiel', 'opossum', 'mollitia'];
  const ms = importTimes([main, ...peers, EMPTY_MODULE], rounds);
  console.log(`| import (cold process, median of ${rounds}) | ms |\n|---|---:|`);
  console.log(`| bulwark (dist/index.js) | ${ms.get(main)!.toFixed(1)} |`);
  for (const p of peers) console.log(`| ${p} | ${ms.get(p)!.toFixed(1)} |`);
  console.log(
    `| a one-line module (the loader's own cost) | ${ms.get(EMPTY_MODULE)!.toFixed(1)} |`,
  );
}
