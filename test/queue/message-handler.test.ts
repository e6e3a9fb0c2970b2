import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ConfigError,
  IdempotencyStoreError,
  LoadShedError,
  TimeoutError,
  dependency,
} from '../../src/index.js';
import type { MessageOutcome } from '../../src/metrics/recorder.js';
import { classifyFailure, messageHandler } from '../../src/queue.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { VirtualClock } from '../../src/testing/index.js';

const status = (code: number) => Object.assign(new Error(`HTTP ${code}`), { status: code });
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

function recorderSpy() {
  const counts: Partial<Record<MessageOutcome, number>> = {};
  const provider = {
    forDependency: (name: string) =>
      ({
        dependency: name,
        recordCall() {},
        recordRetry() {},
        recordRetryBudgetExhausted() {},
        recordCircuitTransition() {},
        observeCircuitState() {},
        observeBulkhead() {},
        recordLoadShed() {},
        observeConcurrencyLimit() {},
        recordIdempotency() {},
        recordMessage(outcome: MessageOutcome) {
          counts[outcome] = (counts[outcome] ?? 0) + 1;
        },
      }) as const,
  };
  return { provider, counts };
}

describe('messageHandler', () => {
  it('runs the work once and acknowledges a redelivery from the stored outcome', async () => {
    const clock = new VirtualClock({ start: 1000 });
    const { provider, counts } = recorderSpy();
    let runs = 0;
    const handler = messageHandler(
      dependency('mailer', { clock, retry: false }),
      async (msg: { to: string }, ctx) => {
        runs++;
        return { to: msg.to, key: ctx.idempotencyKey };
      },
      { key: (msg) => `mail:${msg.to}`, metrics: provider },
    );
    const first = await handler.handle({ to: 'a' }, { id: '1', deliveries: 1 });
    const again = await handler.handle({ to: 'a' }, { id: '2', deliveries: 1 });
    expect(first).toMatchObject({ action: 'done', result: { to: 'a', key: 'mail:a' } });
    expect(first.replayed).toBeUndefined();
    expect(again).toMatchObject({ action: 'done', replayed: true, result: { to: 'a' } });
    expect(runs).toBe(1);
    expect(counts).toEqual({ processed: 1, replayed: 1 });
  });

  it('keys a message by the queue id by default', async () => {
    const seen: string[] = [];
    const handler = messageHandler(dependency('d', { retry: false }), async (_m: unknown, ctx) => {
      seen.push(ctx.idempotencyKey);
    });
    await handler.handle({}, { id: 'job-7', deliveries: 1 });
    expect(seen).toEqual(['job-7']);
  });

  it('dead-letters a poison message on its first delivery', async () => {
    const clock = new VirtualClock({ start: 5000 });
    const handler = messageHandler(dependency('d', { clock, retry: false }), async () => {
      throw status(400);
    });
    const d = await handler.handle({}, { id: '1', deliveries: 1 });
    expect(d).toMatchObject({ action: 'dead-letter', reason: 'not-retryable', deliveries: 1 });
    expect(d.at).toBe(5000);
  });

  it('retries a retryable failure with the backoff, and dead-letters it at maxDeliveries', async () => {
    const handler = messageHandler(
      dependency('d', { retry: false }),
      async () => {
        throw reset();
      },
      { maxDeliveries: 3, backoff: (n) => n * 100 },
    );
    const decisions = [];
    for (let n = 1; n <= 3; n++)
      decisions.push(await handler.handle({}, { id: '1', deliveries: n }));
    expect(decisions.map((d) => [d.action, d.delayMs])).toEqual([
      ['retry', 100],
      ['retry', 200],
      ['dead-letter', undefined],
    ]);
    expect(decisions[2]).toMatchObject({ reason: 'max-deliveries', deliveries: 3 });
  });

  it('frees the key after a failure, so the redelivery runs the work', async () => {
    let runs = 0;
    const handler = messageHandler(dependency('d', { retry: false }), async () => {
      if (++runs === 1) throw reset();
      return 'ok';
    });
    expect((await handler.handle({}, { id: '1', deliveries: 1 })).action).toBe('retry');
    expect(await handler.handle({}, { id: '1', deliveries: 2 })).toMatchObject({
      action: 'done',
      result: 'ok',
    });
  });

  // dependency() makes its breaker wait for the trial while open; the handler must defer
  // instead (the queue is the wait), whichever the breaker does.
  it.each([
    ['waits for its trial (as in dependency())', { wait: true, maxWait: 5000 }],
    ['fails at once', { wait: false }],
  ])(
    'defers on an open breaker that %s for its retryAfterMs, without counting a delivery',
    async (_how, whileOpen) => {
      const clock = new VirtualClock();
      const dep = dependency('payments', {
        clock,
        retry: false,
        circuitBreaker: { consecutiveFailures: 1, halfOpenAfter: 2000, whileOpen },
      });
      const { provider, counts } = recorderSpy();
      const handler = messageHandler(
        dep,
        async () => {
          throw status(503);
        },
        { maxDeliveries: 1, metrics: provider },
      );
      // This failure opens the breaker: it proves the dependency down, so it is a deferral.
      const tripping = await handler.handle({}, { id: '1', deliveries: 1 });
      expect(tripping).toMatchObject({ action: 'defer', delayMs: 2000, deliveries: 1 });
      await clock.advance(500);
      // Settles without the clock moving: nothing waits inside the breaker.
      const refused = await handler.handle({}, { id: '1', deliveries: 1 });
      expect(refused.action).toBe('defer');
      expect(refused.delayMs).toBe(1500);
      expect(refused.error).toBeInstanceOf(CircuitOpenError);
      await clock.advance(1500);
      // The half-open trial fails and reopens the breaker: still a deferral.
      expect((await handler.handle({}, { id: '1', deliveries: 1 })).action).toBe('defer');
      expect(counts).toEqual({ deferred: 3 });
    },
  );

  it('never defers for less than min(deferDelay, 100 ms), whatever the refusal says', async () => {
    const handler = messageHandler(
      dependency('d', { retry: false }),
      async () => {
        throw new LoadShedError('capacity', 'full', 0);
      },
      { deferDelay: 500 },
    );
    expect(await handler.handle({}, { id: '1', deliveries: 1 })).toMatchObject({
      action: 'defer',
      delayMs: 100,
    });
  });

  it('defers a message whose key another delivery holds, for at most deferDelay', async () => {
    const store = new MemoryStore();
    let release!: () => void;
    const handler = messageHandler(
      dependency('d', { retry: false }),
      () => new Promise<void>((resolve) => (release = resolve)),
      { store, deferDelay: 250 },
    );
    const first = handler.handle({}, { id: 'm', deliveries: 1 });
    await new Promise((r) => setImmediate(r));
    const second = await handler.handle({}, { id: 'm', deliveries: 1 });
    expect(second).toMatchObject({ action: 'defer', delayMs: 250 });
    release();
    expect((await first).action).toBe('done');
  });

  it('defers when the store does not answer: the work may not run without it', async () => {
    let runs = 0;
    const store = new MemoryStore();
    store.claim = () => Promise.reject(new Error('connection lost'));
    const handler = messageHandler(dependency('d', { retry: false }), async () => runs++, {
      store,
      deferDelay: 300,
    });
    expect(await handler.handle({}, { id: '1', deliveries: 1 })).toMatchObject({
      action: 'defer',
      delayMs: 300,
    });
    expect(runs).toBe(0);
  });

  it('acknowledges work that succeeded even when its outcome cannot be stored', async () => {
    const store = new MemoryStore();
    store.complete = () => Promise.reject(new Error('connection lost'));
    const handler = messageHandler(dependency('d', { retry: false }), async () => 'sent', {
      store,
    });
    expect(await handler.handle({}, { id: '1', deliveries: 1 })).toMatchObject({
      action: 'done',
      result: 'sent',
    });
  });

  it('dead-letters a message whose key function throws', async () => {
    const handler = messageHandler(dependency('d', { retry: false }), async () => 1, {
      key: () => {
        throw new TypeError('no id on message');
      },
    });
    expect(await handler.handle({}, { id: '1', deliveries: 1 })).toMatchObject({
      action: 'dead-letter',
      reason: 'not-retryable',
    });
  });

  it('dead-letters a message with no key: no id from the queue and no key option', async () => {
    let runs = 0;
    const handler = messageHandler(dependency('d', { retry: false }), async () => runs++);
    const d = await handler.handle({}, { deliveries: 1 });
    expect(d).toMatchObject({ action: 'dead-letter', reason: 'not-retryable' });
    expect(String(d.error)).toMatch(/d: a message needs a key/);
    expect(runs).toBe(0);
  });

  it('rejects bad options with every path named', () => {
    let error: unknown;
    try {
      messageHandler(dependency('d', { retry: false }), async () => 1, {
        maxDeliveries: 0,
        lockTtl: 'soon',
        nope: true,
      } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual([
      'messageHandler.lockTtl',
      'messageHandler.maxDeliveries',
      'messageHandler.nope',
    ]);
    expect(() => messageHandler({} as never, async () => 1)).toThrow(/messageHandler.dependency/);
  });

  it('refuses a dependency that retries in-process: the redelivery is the retry', () => {
    let error: unknown;
    try {
      messageHandler(dependency('payments'), async () => 1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.path)).toEqual([
      'messageHandler.dependency.retry',
    ]);
    expect(String(error)).toMatch(/payments.*retry: false/);
    expect(() =>
      messageHandler(dependency('payments', { retry: { maxAttempts: 1 } }), async () => 1),
    ).not.toThrow();
  });

  it('refuses a lockTtl no longer than the dependency budget: no run outlives its claim', () => {
    const dep = dependency('payments', { retry: false, budget: 2000 });
    expect(() => messageHandler(dep, async () => 1, { lockTtl: 2000 })).toThrow(
      /messageHandler\.lockTtl: expected longer than the budget of 'payments' \(2000 ms\)/,
    );
    expect(() => messageHandler(dep, async () => 1, { lockTtl: '3s' })).not.toThrow();
    // The defaults fit: a 60 s lock over a 10 s budget.
    expect(() => messageHandler(dependency('d', { retry: false }), async () => 1)).not.toThrow();
  });

  it('runs a message whose breaker trial is due: it is the trial, and closes the breaker', async () => {
    const clock = new VirtualClock();
    const dep = dependency('payments', {
      clock,
      retry: false,
      circuitBreaker: {
        consecutiveFailures: 1,
        halfOpenAfter: 1000,
        slowStart: false,
        whileOpen: { wait: true, maxWait: 1000 },
      },
    });
    let failing = true;
    let runs = 0;
    const handler = messageHandler(dep, async () => {
      runs++;
      if (failing) throw status(503);
      return 'ok';
    });
    expect((await handler.handle({}, { id: '1', deliveries: 1 })).action).toBe('defer');
    expect((await handler.handle({}, { id: '2', deliveries: 1 })).action).toBe('defer');
    expect(runs).toBe(1);
    failing = false;
    await clock.advance(1000);
    expect(await handler.handle({}, { id: '2', deliveries: 1 })).toMatchObject({
      action: 'done',
      result: 'ok',
    });
    expect(runs).toBe(2);
    expect(dep.breaker!.state).toBe('closed');
  });
});

describe('classifyFailure', () => {
  it.each([
    ['an open breaker', new CircuitOpenError('open', 100), 'defer'],
    ['shed load', new LoadShedError('capacity', 'full'), 'defer'],
    ['an idempotency store failure', new IdempotencyStoreError('s', 'down'), 'defer'],
    [
      'a rate limit, by code',
      Object.assign(new Error('slow down'), {
        code: 'ERR_RATE_LIMITED',
        [Symbol.for('bulwark.error.kind')]: 'RateLimitError',
      }),
      'defer',
    ],
    ['an attempt timeout', new TimeoutError('attempt', 100), 'retry'],
    ['a budget timeout', new TimeoutError('budget', 100), 'retry'],
    ['a configuration error', new ConfigError([]), 'dead-letter'],
    ['HTTP 503', status(503), 'retry'],
    ['HTTP 429', status(429), 'retry'],
    ['HTTP 400', status(400), 'dead-letter'],
    ['HTTP 404', status(404), 'dead-letter'],
    ['a reset connection', reset(), 'retry'],
    ['an unknown error', new Error('db deadlock'), 'retry'],
    ['retryable: false', Object.assign(new Error('no'), { retryable: false }), 'dead-letter'],
    ['a TypeError (a bug)', new TypeError('x is undefined'), 'dead-letter'],
    [
      'fetch failed on a refused connection',
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
      'retry',
    ],
    ['a string', 'oops', 'retry'],
  ] as const)('%s: %s', (_what, error, kind) => {
    expect(classifyFailure(error)).toBe(kind);
  });
});
