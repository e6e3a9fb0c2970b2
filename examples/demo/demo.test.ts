import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

/** Keeps the README's first command true: `npm run demo` runs and each policy does its part. */
describe('npm run demo', () => {
  let out = '';

  beforeAll(async () => {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', main], { timeout: 30_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
  }, 40_000);

  it('runs against the local fault server and shows every policy at work', () => {
    // timeout: the slow first response is cut and retried
    expect(out).toMatch(/retry: attempt 2 in 50 ms \(timeout: TimeoutError ERR_TIMEOUT/);
    // retry: Retry-After honoured, a dropped connection retried
    expect(out).toContain('retry: attempt 2 in 1000 ms');
    expect(out).toMatch(/retry: attempt 2 in 20 ms \(error: /);
    // budget: no sleep past the deadline
    expect(out).toMatch(/gave up after attempt 1 \(deadline\)/);
    expect(out).toMatch(/retries refused: [1-9]/);
    // circuit breaker
    expect(out).toContain('breaker: closed -> open');
    expect(out).toContain('breaker: half-open -> closed');
    // bulkhead and load shedder
    expect(out).toContain('4 served, 2 rejected');
    expect(out).toContain('critical: 2/2 served');
    // idempotency, in the policy and in resilientFetch
    expect(out).toContain('the charge ran 1 time(s)');
    expect(out).toMatch(/POST without a key: status 503 after 1 request/);
    expect(out).toMatch(/POST with a key: +status 200 after 2 request/);
  });

  it('shows the fallback replacing a failure with its value', () => {
    expect(out).toContain('fallback: replaced the error');
    expect(out).toContain('the caller got {"results":[],"degraded":true}');
  });

  it('shows a hedge answering before the stuck first request', () => {
    expect(out).toContain('hedge: attempt 2 started (delay)');
    expect(out).toContain('hedge: attempt 2 answered first of 2');
  });

  it('shows the inbound adapter honouring a deadline header and shedding with Retry-After', () => {
    // The handler's context starts from the caller's 150 ms, not from no deadline.
    const left = Number(/arrived with (\d+) ms left/.exec(out)?.[1]);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(150);
    expect(out).toMatch(/=> 504 after \d+ ms/);
    expect(out).toContain('503 with Retry-After: 1');
    expect(out).toMatch(/=> [1-5] served, [1-5] shed with 503/);
  });

  it('ends with a scrape of /metrics counting what the policies did', () => {
    expect(out).toContain('bulwark_calls_total{dependency="search",outcome="fallback"} 1');
    expect(out).toContain('bulwark_calls_total{dependency="quotes",outcome="success"} 1');
    expect(out).toContain('bulwark_calls_total{dependency="inventory",outcome="timeout"} 1');
  });
});
