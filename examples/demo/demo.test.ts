import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** Keeps the README's first command true: `npm run demo` runs and each policy does its part. */
describe('npm run demo', () => {
  it('runs against the local fault server and shows every policy at work', async () => {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', main], { timeout: 30_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    expect(out).toContain('retry: attempt 2 in 1000 ms'); // Retry-After honoured
    expect(out).toMatch(/gave up after attempt 1 \(deadline\)/);
    expect(out).toContain('breaker: closed -> open');
    expect(out).toContain('breaker: half-open -> closed');
    expect(out).toContain('4 served, 2 rejected');
    expect(out).toContain('critical: 2/2 served');
    expect(out).toContain('the charge ran 1 time(s)');
    expect(out).toMatch(/POST without a key: status 503 after 1 request/);
    expect(out).toMatch(/POST with a key: +status 200 after 2 request/);
  }, 40_000);
});
