import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Builds and packs the library, installs the tarball into scratch projects that have none
 * of the optional peers (prom-client, ioredis, redis, fast-check, …), and imports every
 * entry from ESM and CJS. An entry that needs a peer must say so in its error, and load
 * once the peer is there.
 */
const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
};
const entries = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => (k === '.' ? 'bulwark' : `bulwark/${k.slice(2)}`));

/** The entries that load an optional peer when imported, and that peer. */
const PEER_OF: Record<string, string> = {
  'bulwark/testing/arbitraries': 'fast-check',
  'bulwark/otel': '@opentelemetry/api',
};
const peerFree = entries.filter((e) => !(e in PEER_OF));

let tarball = '';
let bare = ''; // the tarball and tslib (its one dependency), nothing else
let withFastCheck = ''; // the same, plus fast-check

/** A scratch project with the packed bulwark and the given packages linked from ours. */
function scratchProject(links: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-pack-'));
  const target = join(dir, 'node_modules', 'bulwark');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', target, '--strip-components=1']);
  for (const name of links) {
    const link = join(dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(root, 'node_modules', name), link);
  }
  writeFileSync(join(dir, 'package.json'), '{"name":"scratch","private":true}');
  return dir;
}

beforeAll(() => {
  const packDir = mkdtempSync(join(tmpdir(), 'bulwark-tarball-'));
  execFileSync('npx', ['tsup', '--silent'], { cwd: root, stdio: 'pipe', timeout: 120_000 });
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
    .trim()
    .split('\n')
    .pop()!;
  tarball = join(packDir, name);
  // @types/node only for the type check below; it has no runtime part.
  bare = scratchProject(['tslib', '@types/node']);
  // The peers an entry may load, for the entries that need one: fast-check for the
  // arbitraries, the OpenTelemetry API (not the SDK: that stays the user's choice) for otel.
  withFastCheck = scratchProject(['tslib', 'fast-check', '@opentelemetry/api']);
}, 180_000);

afterAll(() => {
  for (const dir of [bare, withFastCheck, tarball && resolve(tarball, '..')]) {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

const run = (dir: string, file: string, code: string) => {
  writeFileSync(join(dir, file), code);
  return execFileSync(process.execPath, [file], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    stdio: 'pipe',
  });
};

/** Runs `code` and returns what it threw (stderr), failing if it did not throw. */
const runFailing = (dir: string, file: string, code: string): string => {
  try {
    run(dir, file, code);
  } catch (e) {
    return String((e as { stderr?: unknown }).stderr);
  }
  throw new Error(`${file} was expected to fail`);
};

describe('the packed package', () => {
  it('imports every peer-free entry from ESM without optional peers installed', () => {
    expect(peerFree).toContain('bulwark/testing');
    const code = peerFree
      .map(
        (e, i) =>
          `const m${i} = await import('${e}'); if (Object.keys(m${i}).length === 0) throw new Error('${e} is empty');`,
      )
      .join('\n');
    expect(run(bare, 'esm.mjs', `${code}\nconsole.log('ok');`).trim()).toBe('ok');
  });

  it('requires every peer-free entry from CJS without optional peers installed', () => {
    const code = peerFree.map((e) => `require('${e}');`).join('\n');
    expect(run(bare, 'cjs.cjs', `${code}\nconsole.log('ok');`).trim()).toBe('ok');
  });

  it('loads neither perf_hooks, the performance global nor crypto at import (ESM and CJS)', () => {
    // Each costs a millisecond or more on a cold start; bulwark loads them on first use.
    const report = `const loaded = process.moduleLoadList.filter((m) => !before.has(m) && /perf|crypto/.test(m));
      console.log(loaded.join(',') || 'none');`;
    const esm = `const before = new Set(process.moduleLoadList); await import('bulwark');\n${report}`;
    const cjs = `const before = new Set(process.moduleLoadList); require('bulwark');\n${report}`;
    expect(run(bare, 'lazy-builtins.mjs', esm).trim()).toBe('none');
    expect(run(bare, 'lazy-builtins.cjs', cjs).trim()).toBe('none');
  });

  it('runs VirtualClock from bulwark/testing without fast-check installed (ESM and CJS)', () => {
    const use = `
      const clock = new VirtualClock();
      let fired = 0;
      clock.setTimeout(() => fired++, 1000);
      await clock.advance(1000);
      console.log(fired === 1 && clock.now() === 1000 ? 'ok' : 'wrong');`;
    expect(
      runFailing(bare, 'no-fc.mjs', `import 'fast-check';`),
      'fast-check must be absent from this scratch project',
    ).toMatch(/Cannot find (package|module) 'fast-check'/);
    expect(run(bare, 'clock.mjs', `import { VirtualClock } from 'bulwark/testing';${use}`)).toBe(
      'ok\n',
    );
    expect(
      run(
        bare,
        'clock.cjs',
        `const { VirtualClock } = require('bulwark/testing');(async () => {${use}})();`,
      ),
    ).toBe('ok\n');
  });

  it('type-checks a strict TypeScript import of bulwark/testing without fast-check', () => {
    writeFileSync(
      join(bare, 'clock-types.mts'),
      `import { VirtualClock, faultyDependency } from 'bulwark/testing';
       const clock: VirtualClock = new VirtualClock();
       const downstream = faultyDependency({ clock, latency: 5 });
       await clock.advance(downstream.calls);`,
    );
    // No skipLibCheck: the declarations of bulwark/testing must not name fast-check either.
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext'];
    expect(
      execFileSync(process.execPath, [tsc, ...args, '--types', 'node', 'clock-types.mts'], {
        cwd: bare,
        encoding: 'utf8',
        timeout: 120_000,
      }),
    ).toBe('');
  }, 120_000);

  it('loads every entry that needs a peer once the peer is installed (ESM and CJS)', () => {
    for (const entry of Object.keys(PEER_OF)) {
      const esm = `const m = await import('${entry}'); console.log(Object.keys(m).length > 0);`;
      expect(run(withFastCheck, 'peer-ok.mjs', esm).trim()).toBe('true');
      const cjs = `console.log(Object.keys(require('${entry}')).length > 0);`;
      expect(run(withFastCheck, 'peer-ok.cjs', cjs).trim()).toBe('true');
    }
  });

  it('names the missing peer when an entry that needs one is imported without it', () => {
    for (const [entry, peer] of Object.entries(PEER_OF)) {
      expect(entries).toContain(entry);
      expect(runFailing(bare, 'peer.mjs', `await import('${entry}');`)).toContain(`'${peer}'`);
      expect(runFailing(bare, 'peer.cjs', `require('${entry}');`)).toContain(`'${peer}'`);
    }
  });

  it('loads bulwark/testing/arbitraries once fast-check is installed (ESM and CJS)', () => {
    const use = `
      const [config] = fc.sample(dependencyConfigArb({ maxBudget: 500 }), { numRuns: 1, seed: 1 });
      const [faults] = fc.sample(faultScheduleArb(), { numRuns: 1, seed: 1 });
      console.log(config.budget <= 500 && typeof faults.seed === 'number' ? 'ok' : 'wrong');`;
    expect(
      run(
        withFastCheck,
        'arb.mjs',
        `import fc from 'fast-check';
         import { dependencyConfigArb, faultScheduleArb } from 'bulwark/testing/arbitraries';${use}`,
      ),
    ).toBe('ok\n');
    expect(
      run(
        withFastCheck,
        'arb.cjs',
        `const fc = require('fast-check');
         const { dependencyConfigArb, faultScheduleArb } = require('bulwark/testing/arbitraries');${use}`,
      ),
    ).toBe('ok\n');
  });

  it('keeps instanceof and isBulwarkError working across the ESM and CJS copies', () => {
    const out = run(
      bare,
      'dual.mjs',
      `import { createRequire } from 'node:module';
       import * as esm from 'bulwark';
       const cjs = createRequire(import.meta.url)('bulwark');
       if (esm.TimeoutError === cjs.TimeoutError) throw new Error('expected two copies');
       const fromCjs = new cjs.TimeoutError('attempt', 10);
       const fromEsm = new esm.CircuitOpenError('open', 10);
       const checks = [
         fromCjs instanceof esm.TimeoutError, fromCjs instanceof esm.BulwarkError, esm.isBulwarkError(fromCjs),
         fromEsm instanceof cjs.CircuitOpenError, !(fromEsm instanceof cjs.TimeoutError),
       ];
       // A policy from one copy and a call through the other still time out correctly.
       const err = await cjs.timeout(5).execute(() => new Promise(() => {})).catch((e) => e);
       checks.push(err instanceof esm.TimeoutError && err.scope === 'attempt');
       console.log(checks.join(','));`,
    );
    expect(out.trim()).toBe('true,true,true,true,true,true');
  });

  it('keeps the names of what it exports, in ESM and CJS (the build minifies, never renames)', () => {
    // Stack traces and error names read as the source does.
    const misnamed = (m: string) =>
      `console.log(Object.entries(${m}).filter(([k, v]) => typeof v === 'function' && v.name !== k).map(([k]) => k).join(',') || 'none');`;
    const esm = peerFree.map((e, i) => `import * as m${i} from '${e}';`).join('\n');
    const all = peerFree.map((_, i) => `{ ...m${i} }`).join(', ');
    expect(run(bare, 'names.mjs', `${esm}\n${misnamed(`Object.assign({}, ${all})`)}`).trim()).toBe(
      'none',
    );
    const cjs = `const all = Object.assign({}, ${peerFree.map((e) => `require('${e}')`).join(', ')});`;
    expect(run(bare, 'names.cjs', `${cjs}\n${misnamed('all')}`).trim()).toBe('none');
  });

  it('lets a bundler drop what an app does not import from the main entry', async () => {
    const bundle = async (contents: string) => {
      const out = await build({
        stdin: { contents, resolveDir: bare, loader: 'js' },
        bundle: true,
        format: 'esm',
        platform: 'node',
        write: false,
        logLevel: 'silent',
      });
      return out.outputFiles[0]!.text;
    };
    const whole = await bundle(`import * as b from 'bulwark'; console.log(b);`);
    const timeoutOnly = await bundle(`import { timeout } from 'bulwark'; console.log(timeout);`);
    expect(whole).toContain('CircuitBreakerPolicy');
    expect(timeoutOnly).toContain('TimeoutPolicy');
    // Neither the policies dependency() can build nor the config schema come along.
    for (const absent of [
      'CircuitBreakerPolicy',
      'LoadShedderPolicy',
      'IdempotencyPolicy',
      'RateLimitPolicy',
      'HedgePolicy',
      'urn:bulwark:dependencies-config',
    ]) {
      expect(timeoutOnly).not.toContain(absent);
    }
    expect(timeoutOnly.length).toBeLessThan(whole.length / 4);
  });
});
