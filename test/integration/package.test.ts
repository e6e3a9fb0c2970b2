import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Builds and packs the library, installs the tarball into a scratch project that has no
 * optional peers (prom-client, ioredis, redis), and imports every entry from ESM and CJS.
 */
const root = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  exports: Record<string, unknown>;
};
const entries = Object.keys(pkg.exports)
  .filter((k) => k !== './package.json')
  .map((k) => (k === '.' ? 'bulwark' : `bulwark/${k.slice(2)}`));

let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bulwark-pack-'));
  execFileSync('npx', ['tsup', '--silent'], { cwd: root, stdio: 'pipe', timeout: 120_000 });
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
    .trim()
    .split('\n')
    .pop()!;
  const target = join(dir, 'node_modules', 'bulwark');
  mkdirSync(target, { recursive: true });
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', target, '--strip-components=1']);
  // The one runtime dependency, linked rather than downloaded. The optional peers
  // (prom-client, ioredis, redis) are deliberately absent; the test tools that
  // bulwark/testing builds on (fast-check) is what its users already have.
  for (const name of ['tslib', 'fast-check']) {
    symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
  // bulwark/otel is built on the OpenTelemetry API and loads it at import: a user of that
  // entry has it. Only the API: the SDK stays absent, as it is the user's choice.
  mkdirSync(join(dir, 'node_modules', '@opentelemetry'), { recursive: true });
  symlinkSync(
    join(root, 'node_modules', '@opentelemetry', 'api'),
    join(dir, 'node_modules', '@opentelemetry', 'api'),
  );
  writeFileSync(join(dir, 'package.json'), '{"name":"scratch","private":true}');
}, 180_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = (file: string, code: string) => {
  writeFileSync(join(dir, file), code);
  return execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
};

describe('the packed package', () => {
  it('imports every entry from ESM without optional peers installed', () => {
    const code = entries
      .map(
        (e, i) =>
          `const m${i} = await import('${e}'); if (Object.keys(m${i}).length === 0) throw new Error('${e} is empty');`,
      )
      .join('\n');
    expect(run('esm.mjs', `${code}\nconsole.log('ok');`).trim()).toBe('ok');
  });

  it('requires every entry from CJS without optional peers installed', () => {
    const code = entries.map((e) => `require('${e}');`).join('\n');
    expect(run('cjs.cjs', `${code}\nconsole.log('ok');`).trim()).toBe('ok');
  });

  it('keeps instanceof and isBulwarkError working across the ESM and CJS copies', () => {
    const out = run(
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
});
