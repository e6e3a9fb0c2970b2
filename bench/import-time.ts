/**
 * Startup: what `import 'bulwark'` costs in a fresh Node process, and what a bundler puts in
 * an app that imports part of it. `npx tsup && tsx bench/import-time.ts` measures the built
 * main entry (dist/index.js, and dist/index.cjs through require) against the peers and the
 * floors below, each sample a fresh process, every case once per round in a random order so
 * that load on a shared machine falls on every case alike. Extra paths on the command line
 * (e.g. the dist/index.js of another build) are measured in the same rounds, to compare.
 * bench/overhead.ts reuses `startupReport`.
 *
 * The floors say what no library can go below on this machine:
 * - a one-line data: module: Node's module loader, with nothing read from disk;
 * - an empty file module: what Node pays to load any ESM file (the file loader's own
 *   modules, a package scope lookup, a read) — `import 'bulwark'` pays it too;
 * - the main entry's own bytes wrapped in a function that is never called: V8 parsing the
 *   same code, with nothing run and nothing exported.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** How a case is loaded in its fresh process. */
export type LoadKind = 'import' | 'require' | 'import after another file';

export interface StartupCase {
  label: string;
  kind: LoadKind;
  /** A specifier for import() (file: URL, data: URL or package name), a path for require(). */
  target: string;
  /** For 'import after another file': the file: URL imported first, untimed. */
  warmUp?: string;
}

// The child times with process.hrtime: reading the `performance` global first would load
// perf_hooks before the import and hide what a module pays for reading it. The time is
// taken before `process.stdout` is touched: creating the stream costs about 2 ms.
const timed = (load: string): string =>
  `const t = process.hrtime.bigint(); ${load}; ` +
  `const ms = Number(process.hrtime.bigint() - t) / 1e6; process.stdout.write(String(ms));`;

function childArgs(c: StartupCase): string[] {
  const target = JSON.stringify(c.target);
  switch (c.kind) {
    case 'require':
      return ['-e', timed(`require(${target})`)];
    case 'import':
      return ['--input-type=module', '-e', timed(`await import(${target})`)];
    case 'import after another file':
      return [
        '--input-type=module',
        '-e',
        `await import(${JSON.stringify(c.warmUp)}); ${timed(`await import(${target})`)}`,
      ];
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Ms of each case in a fresh process, one sample per round (rounds interleaved). */
export function startupSamples(cases: StartupCase[], rounds = 11): Map<string, number[]> {
  const samples = new Map<StartupCase, number[]>(cases.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...cases].sort(() => Math.random() - 0.5);
    for (const c of order) {
      const out = execFileSync(process.execPath, childArgs(c), { cwd: root });
      samples.get(c)!.push(Number(out.toString()));
    }
  }
  return new Map([...samples].map(([c, xs]) => [c.label, xs]));
}

/** A one-line module: what any import costs here (the loader itself, on a loaded machine). */
export const EMPTY_MODULE = 'data:text/javascript,export default 1';

/** The built main entry; throws when it is missing. */
export function builtMainEntry(): { esm: string; cjs: string } {
  const esm = join(root, 'dist', 'index.js');
  const cjs = join(root, 'dist', 'index.cjs');
  if (!existsSync(esm) || !existsSync(cjs)) {
    throw new Error('dist/index.js or dist/index.cjs is missing: run `npx tsup` first');
  }
  return { esm, cjs };
}

/**
 * The floor modules, in a scratch directory whose package.json is the project's own (so
 * Node's package scope lookup reads the same file it reads for dist/).
 */
function writeFloors(mainEntry: string): {
  emptyEsm: string;
  emptyCjs: string;
  parseOnly: string;
  dir: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-startup-'));
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  const emptyEsm = join(dir, 'empty.js');
  const emptyCjs = join(dir, 'empty.cjs');
  const parseOnly = join(dir, 'parse-only.js');
  writeFileSync(emptyEsm, 'export default 1;\n');
  writeFileSync(emptyCjs, 'module.exports = 1;\n');
  const code = readFileSync(mainEntry, 'utf8');
  if (/^\s*import[\s{*"']/m.test(code)) {
    throw new Error('the main entry imports a module at load: the parse-only floor needs updating');
  }
  const body = code
    .replace(/\/\/# sourceMappingURL=\S+\s*/g, '')
    .replace(/export\s*\{[^}]*\};?\s*$/, '');
  if (body.length === code.length || /\bexport\s*\{/.test(body)) {
    throw new Error('could not strip the export list of the main entry');
  }
  writeFileSync(parseOnly, `function neverCalled() {\n${body}\n}\nexport default neverCalled;\n`);
  return { emptyEsm, emptyCjs, parseOnly, dir };
}

export const PEERS = ['cockatiel', 'opossum', 'mollitia'];

export interface ImportSet {
  label: string;
  names: string[] | '*';
}

/** What apps import, for the bundle sizes: the whole entry, and some typical parts. */
export const IMPORT_SETS: ImportSet[] = [
  { label: 'everything (`import * as bulwark`)', names: '*' },
  { label: '`timeout`', names: ['timeout'] },
  {
    label: '`timeout, retry, budget, pipeline`',
    names: ['timeout', 'retry', 'budget', 'pipeline'],
  },
  { label: '`circuitBreaker`', names: ['circuitBreaker'] },
  { label: '`bulkhead, fallback`', names: ['bulkhead', 'fallback'] },
  { label: '`dependency` (builds every policy from config)', names: ['dependency'] },
];

/**
 * What a user's bundler (esbuild, minified, ESM) puts in an app that imports `set` from the
 * built main entry: the shipped file, not our sources, so that this is what users get.
 */
export async function bundledSize(
  mainEntry: string,
  set: ImportSet,
): Promise<{ minBytes: number; gzipBytes: number }> {
  const spec = JSON.stringify(mainEntry);
  const contents =
    set.names === '*'
      ? `import * as b from ${spec};\nconsole.log(b);\n`
      : `import { ${set.names.join(', ')} } from ${spec};\nconsole.log(${set.names.join(', ')});\n`;
  const out = await build({
    stdin: { contents, resolveDir: root, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const bytes = out.outputFiles[0]!.contents;
  return { minBytes: bytes.length, gzipBytes: gzipSync(bytes).length };
}

/** The source files in the main entry, and those only a subpath should need (none, we hope). */
async function mainEntryInputs(): Promise<{ files: string[]; subpathOnly: string[] }> {
  const out = await build({
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    write: false,
    outdir: join(tmpdir(), 'unused'),
    metafile: true,
    external: ['prom-client', 'ioredis', 'redis', 'bullmq', '@opentelemetry/api', 'fast-check'],
    logLevel: 'silent',
  });
  const files = Object.keys(out.metafile.inputs).map((p) => relative(root, join(process.cwd(), p)));
  const subpathOnly = files.filter((p) =>
    /src[\\/](http|metrics|queue|testing)[\\/]|src[\\/]stores[\\/]redis|prometheus|otel|lua/.test(
      p,
    ),
  );
  return { files, subpathOnly };
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;

/**
 * Measures startup and bundle sizes; returns the markdown, the headline number (the cold
 * ESM import of the main entry) and its two file floors (medians). `compare` adds other
 * builds of the main entry (paths to an index.js) to the same rounds.
 */
export async function startupReport(
  rounds = 11,
  compare: string[] = [],
): Promise<{ markdown: string; importMs: number; emptyFileMs: number; parseOnlyMs: number }> {
  const main = builtMainEntry();
  const floors = writeFloors(main.esm);
  const mainUrl = pathToFileURL(main.esm).href;
  const L = {
    esm: '`import` bulwark (dist/index.js)',
    cjs: '`require` bulwark (dist/index.cjs)',
    warm: '`import` bulwark after another file module (the loader already warm, as in an app)',
    data: 'floor: a one-line data: module (the module loader, nothing read from disk)',
    empty: 'floor: an empty file module (what Node pays to load any ESM file)',
    emptyCjs: 'floor: `require` of an empty file',
    parse: 'floor: dist/index.js wrapped in a function never called (V8 parsing the same code)',
  };
  const cases: StartupCase[] = [
    { label: L.esm, kind: 'import', target: mainUrl },
    { label: L.cjs, kind: 'require', target: main.cjs },
    {
      label: L.warm,
      kind: 'import after another file',
      target: mainUrl,
      warmUp: pathToFileURL(floors.emptyEsm).href,
    },
    ...PEERS.map((p): StartupCase => ({ label: p, kind: 'import', target: p })),
    { label: L.data, kind: 'import', target: EMPTY_MODULE },
    { label: L.empty, kind: 'import', target: pathToFileURL(floors.emptyEsm).href },
    { label: L.emptyCjs, kind: 'require', target: floors.emptyCjs },
    { label: L.parse, kind: 'import', target: pathToFileURL(floors.parseOnly).href },
    ...compare.map((p): StartupCase => ({
      label: `\`import\` ${relative(root, p) || p} (compared)`,
      kind: 'import',
      target: pathToFileURL(p).href,
    })),
  ];
  const compareLabels = new Set(cases.slice(cases.length - compare.length).map((c) => c.label));
  let samples: Map<string, number[]>;
  try {
    samples = startupSamples(cases, rounds);
  } finally {
    rmSync(floors.dir, { recursive: true, force: true });
  }
  const ms = (label: string): number => median(samples.get(label)!);
  // Differences per round, then their median: steadier than a difference of medians.
  const over = (a: string, b: string): string => {
    const xs = samples.get(a)!;
    const ys = samples.get(b)!;
    return median(xs.map((x, i) => x - ys[i]!)).toFixed(1);
  };
  const fastest = (label: string): number => Math.min(...samples.get(label)!);
  const row = (label: string): string => {
    const vsMain = compareLabels.has(label) ? `${over(label, L.esm)} ms` : '';
    return `| ${label} | ${ms(label).toFixed(1)} | ${fastest(label).toFixed(1)} | ${vsMain} |`;
  };
  const sizes = await Promise.all(IMPORT_SETS.map((s) => bundledSize(main.esm, s)));
  const inputs = await mainEntryInputs();
  const esmBytes = readFileSync(main.esm).length;
  const markdown = [
    `| cold start, fresh process (${rounds} interleaved rounds) | median ms | fastest ms | compared: more than dist/index.js (median of per-round differences) |`,
    '|---|---:|---:|---:|',
    ...cases.map((c) => row(c.label)),
    '',
    `Above the floors (medians of per-round differences): bulwark's ESM import costs ${over(L.esm, L.empty)} ms more ` +
      `than an empty file module; parsing its ${kb(esmBytes)} alone (the parse-only floor) costs ${over(L.parse, L.empty)} ms ` +
      `more, running its module-level code and linking its exports ${over(L.esm, L.parse)} ms.`,
    '',
    '| app imports from the main entry | bundled, minified | + gzip |',
    '|---|---:|---:|',
    ...IMPORT_SETS.map(
      (s, i) => `| ${s.label} | ${kb(sizes[i]!.minBytes)} | ${kb(sizes[i]!.gzipBytes)} |`,
    ),
    '',
    `The shipped main entry: ${kb(esmBytes)} (whitespace and syntax minified, names kept), ` +
      `${inputs.files.length} source files; subpath-only modules (http, metrics, queue, otel, testing, redis) in it: ` +
      `${inputs.subpathOnly.length === 0 ? 'none' : inputs.subpathOnly.join(', ')}; it imports no module at load. ` +
      'Bundle sizes are esbuild ' +
      '(ESM, minified) bundling dist/index.js, the file a user gets.',
  ].join('\n');
  return { markdown, importMs: ms(L.esm), emptyFileMs: ms(L.empty), parseOnlyMs: ms(L.parse) };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rounds = Number(process.env.IMPORT_ROUNDS ?? 11);
  const { markdown } = await startupReport(rounds, process.argv.slice(2));
  console.log(markdown);
}
