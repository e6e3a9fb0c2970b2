import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import {
  BulkheadRejectedError,
  BulwarkError,
  CircuitOpenError,
  LoadShedError,
  bulkhead,
  circuitBreaker,
  isBulwarkError,
  loadShedder,
  rateLimit,
} from '../../src/index.js';
import { rejectAfterAttach, stacklessErrorOf } from '../../src/core/fail-fast.js';
import { VirtualClock } from '../../src/testing/index.js';

const never = () => new Promise<never>(() => {});
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('fail-fast rejections', () => {
  it('rejectAfterAttach returns a pending promise that rejects with the very error', async () => {
    const error = new Error('refused');
    const refusal = rejectAfterAttach<number>(error);
    // Still pending when returned: the caller attaches its handler before it rejects, so
    // Node's unhandled-rejection bookkeeping never starts (Promise.reject is rejected here).
    expect(inspect(refusal)).toBe('Promise { <pending> }');
    await expect(refusal).rejects.toBe(error);
  });

  it('a refusal nobody handles is still reported as an unhandled rejection', () => {
    // In a process of its own: vitest fails a run on any unhandled rejection.
    const script = [
      "import { rejectAfterAttach } from './src/core/fail-fast.ts';",
      "process.on('unhandledRejection', (e) => console.log('unhandled:', e.message));",
      "void rejectAfterAttach(new Error('nobody listens'));",
    ].join('\n');
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8', timeout: 20_000 },
    );
    expect(out.trim()).toBe('unhandled: nobody listens');
  });

  it('every refusal (open breaker, full bulkhead, shed, rate limited) is pending when returned', async () => {
    const clock = new VirtualClock();
    const open = circuitBreaker({ consecutiveFailures: 1, halfOpenAfter: 1000, clock });
    await open.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    const bh = bulkhead({ maxConcurrent: 1 });
    void bh.execute(never);
    const shedder = loadShedder({ limit: 1 });
    void shedder.execute(never);
    const limiter = rateLimit({ rate: 1, per: 1000, clock });
    await limiter.execute(() => 1);
    const refusals = [
      open.execute(() => 1),
      bh.execute(() => 1),
      shedder.execute(() => 1),
      limiter.execute(() => 1),
    ];
    for (const r of refusals) expect(inspect(r)).toBe('Promise { <pending> }');
    const errors = await Promise.all(refusals.map((r) => r.catch((e: unknown) => e)));
    expect(errors.map((e) => (e as BulwarkError).code)).toEqual([
      'ERR_CIRCUIT_OPEN',
      'ERR_BULKHEAD_FULL',
      'ERR_LOAD_SHED',
      'ERR_RATE_LIMITED',
    ]);
  });

  it('a stackless error is an instance of its class, with its message, name and a frameless stack', () => {
    const Fast = stacklessErrorOf(CircuitOpenError);
    const e = new Fast('pay: circuit is open');
    expect(e).toBeInstanceOf(CircuitOpenError);
    expect(e).toBeInstanceOf(BulwarkError);
    expect(e).toBeInstanceOf(Error);
    expect(isBulwarkError(e)).toBe(true);
    expect(e.name).toBe('CircuitOpenError');
    expect(e.message).toBe('pay: circuit is open');
    expect(e.stack).toBe('CircuitOpenError: pay: circuit is open');
    expect(String(e)).toBe('CircuitOpenError: pay: circuit is open');
    expect(inspect(e)).toContain('pay: circuit is open');
    e.message = 'changed';
    e.stack = 'custom';
    expect([e.message, e.stack]).toEqual(['changed', 'custom']);
    expect(Object.keys(e)).toEqual([]); // message and stack stay non-enumerable
  });

  it('an open breaker refuses each call with its own retryAfterMs, code and message', async () => {
    const clock = new VirtualClock();
    const breaker = circuitBreaker({
      name: 'pay',
      consecutiveFailures: 1,
      halfOpenAfter: 1000,
      clock,
    });
    await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    await clock.advance(300);
    const first = (await breaker.execute(() => 1).catch((e: unknown) => e)) as CircuitOpenError;
    await clock.advance(200);
    const second = (await breaker.execute(() => 1).catch((e: unknown) => e)) as CircuitOpenError;
    expect(first).toBeInstanceOf(CircuitOpenError);
    expect(first.code).toBe('ERR_CIRCUIT_OPEN');
    expect([first.retryAfterMs, second.retryAfterMs]).toEqual([700, 500]);
    expect(first.message).toBe('pay: circuit is open; next trial in 700 ms');
    expect(first.stack).not.toMatch(/\n\s+at /);
    expect(first.state).toBe('open');
  });

  it('a full bulkhead and a shedder refuse with stackless errors of their classes', async () => {
    const bh = bulkhead({ maxConcurrent: 1, name: 'db' });
    void bh.execute(never);
    const full = (await bh.execute(() => 1).catch((e: unknown) => e)) as BulkheadRejectedError;
    expect(full).toBeInstanceOf(BulkheadRejectedError);
    expect([full.code, full.reason]).toEqual(['ERR_BULKHEAD_FULL', 'full']);
    expect(full.message).toMatch(/^db: bulkhead is full/);
    expect(full.stack).not.toMatch(/\n\s+at /);

    const shedder = loadShedder({ limit: 1 });
    void shedder.execute(never);
    const shed = (await shedder.execute(() => 1).catch((e: unknown) => e)) as LoadShedError;
    expect(shed).toBeInstanceOf(LoadShedError);
    expect([shed.code, shed.reason]).toEqual(['ERR_LOAD_SHED', 'capacity']);
    expect(shed.message).toMatch(/load shed/);
    expect(shed.stack).not.toMatch(/\n\s+at /);
  });
});
