import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from '../src/index.js';
import { dependency } from '../src/dependency.js';
import {
  DEFAULT_LOAD_SHEDDER,
  DEFAULT_RETRY,
  DEFAULT_WHILE_OPEN,
  withDependencyDefaults,
} from '../src/dependency-defaults.js';
import { VirtualClock } from '../src/testing/index.js';

const refused = () => {
  throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
};

describe('dependency() defaults', () => {
  it('builds a load shedder, retry and a waiting breaker when the config leaves them out', () => {
    const dep = dependency('search', {});
    expect(dep.pipeline.policies.map((p) => p.kind)).toEqual([
      'loadShedder',
      'budget',
      'retry',
      'circuitBreaker',
      'timeout',
    ]);
    expect(dep.retry?.maxAttempts).toBe(DEFAULT_RETRY.maxAttempts);
    expect(dep.loadShedder?.limit).toBe(DEFAULT_LOAD_SHEDDER.limit.initial);
    expect(dep.breaker?.state).toBe('closed');
    expect(dep.timeout).toBe(Math.floor(10_000 / DEFAULT_RETRY.maxAttempts));
  });

  it('turns each default part off with false', () => {
    const dep = dependency('search', { retry: false, circuitBreaker: false, loadShedder: false });
    expect(dep.pipeline.policies.map((p) => p.kind)).toEqual(['budget']);
    expect(dep.retry).toBeUndefined();
    expect(dep.breaker).toBeUndefined();
    expect(dep.loadShedder).toBeUndefined();
  });

  it('builds a part given explicitly from what it says, but lets its breaker wait', () => {
    const c = withDependencyDefaults({ retry: {}, circuitBreaker: { consecutiveFailures: 2 } });
    expect(c.retry).toEqual({});
    expect(c.circuitBreaker).toEqual({ consecutiveFailures: 2, whileOpen: DEFAULT_WHILE_OPEN });
    const fast = withDependencyDefaults({ circuitBreaker: { whileOpen: { wait: false } } });
    expect(fast.circuitBreaker).toEqual({ whileOpen: { wait: false } });
  });

  it('does not change the config it is given', () => {
    const config = { circuitBreaker: {} };
    withDependencyDefaults(config);
    expect(config).toEqual({ circuitBreaker: {} });
  });

  it('waits out a short outage instead of failing, within the budget', async () => {
    const clock = new VirtualClock();
    const dep = dependency('inventory', { clock });
    let down = true;
    let sent = 0;
    const call = () => {
      sent++;
      if (down) refused();
      return 'ok';
    };
    // Enough failures to open the breaker (5 in a row at low traffic).
    for (let i = 0; i < 3; i++) {
      const failing = dep.execute(call, { budget: 1000 }).catch((e: unknown) => e);
      await clock.advance(1000);
      await failing;
    }
    expect(dep.breaker?.state).toBe('open');
    const before = sent;
    const waiting = dep.execute(call, { budget: 1000 }).then(
      (value) => ({ value, at: clock.now() }),
      (error: unknown) => ({ error, at: clock.now() }),
    );
    down = false;
    const start = clock.now();
    await clock.advance(1000);
    const outcome = await waiting;
    expect(outcome).toMatchObject({ value: 'ok' });
    expect(outcome.at - start).toBeLessThanOrEqual(1000);
    // One call: the trial it waited for was its own.
    expect(sent - before).toBe(1);
  });

  it('does not double-wait: a call the breaker cannot serve in time fails at once, unretried', async () => {
    const clock = new VirtualClock();
    const dep = dependency('inventory', {
      clock,
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: 5000 },
    });
    const first = dep.execute(refused, { budget: 1000 }).catch((e: unknown) => e);
    await clock.runAll();
    await first;
    expect(dep.breaker?.state).toBe('open');
    let sent = 0;
    const start = clock.now();
    const error = await dep
      .execute(
        () => {
          sent++;
          return 'ok';
        },
        { budget: 1000 },
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(clock.now() - start).toBe(0);
    expect(sent).toBe(0);
  });

  it('holds at most 100 calls waiting for an open breaker; the others fail at once', async () => {
    const clock = new VirtualClock();
    const dep = dependency('inventory', { clock });
    for (let i = 0; i < 3; i++) {
      const failing = dep.execute(refused, { budget: 1000 }).catch((e: unknown) => e);
      await clock.advance(1000);
      await failing;
    }
    expect(dep.breaker?.state).toBe('open');
    const start = clock.now();
    const outcomes = Array.from({ length: 150 }, () =>
      dep
        .execute(() => 'ok', { budget: 3000 })
        .then(
          () => 'ok',
          (error: unknown) => ({ error, after: clock.now() - start }),
        ),
    );
    expect(dep.breaker?.waiting).toBe(DEFAULT_WHILE_OPEN.maxQueue);
    await clock.advance(3000);
    const settled = await Promise.all(outcomes);
    const failed = settled.filter((o) => o !== 'ok');
    expect(failed).toHaveLength(50);
    for (const r of failed) expect(r).toEqual({ error: expect.any(CircuitOpenError), after: 0 });
  });

  it('lets a call that finds the load shedder full wait briefly for a slot', async () => {
    const clock = new VirtualClock();
    const dep = dependency('search', { clock, retry: false, circuitBreaker: false });
    const limit = dep.loadShedder!.limit;
    const normalShare = Math.floor(limit * 0.8);
    const running = Array.from({ length: normalShare }, (_, i) =>
      dep.execute(() => clock.sleep(1 + (i % 10)).then(() => 'ok')),
    );
    // The share is full: this one queues instead of being refused, and runs 1 ms later.
    const late = dep.execute(() => 'late');
    await clock.advance(20);
    await expect(late).resolves.toBe('late');
    expect((await Promise.allSettled(running)).every((o) => o.status === 'fulfilled')).toBe(true);
  });

  it('never sheds a healthy dependency: 150 calls at once all run', async () => {
    const clock = new VirtualClock();
    const dep = dependency('search', { clock });
    const all = Array.from({ length: 150 }, () =>
      dep.execute(async () => {
        await clock.sleep(15);
        return 'ok';
      }),
    );
    await clock.advance(20);
    const outcomes = await Promise.allSettled(all);
    expect(outcomes.every((o) => o.status === 'fulfilled')).toBe(true);
  });
});
