import { describe, expect, it } from 'vitest';
import {
  CircuitOpenError,
  ConfigError,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
  TimeoutError,
  budget,
  pipeline,
  retry,
  type Context,
} from '../../../src/index.js';
import {
  idempotency,
  jsonSerializer,
  type IdempotencyEvents,
} from '../../../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../../../src/stores/memory.js';
import type { IdempotencyStore } from '../../../src/stores/store.js';
import { VirtualClock } from '../../../src/testing/virtual-clock.js';

function setup(options: Parameters<typeof idempotency>[0] = {}) {
  const clock = new VirtualClock();
  const store = new MemoryStore({ clock });
  const policy = idempotency({ store, clock, ...options });
  const events: Array<[keyof IdempotencyEvents, unknown]> = [];
  for (const name of [
    'executed',
    'replayed',
    'in_progress',
    'key_reused',
    'released',
    'store_error',
    'lock_lost',
  ] as const) {
    policy.on(name, (e) => events.push([name, e]));
  }
  const names = () => events.map(([n]) => n);
  return { clock, store, policy, events, names };
}

/** A promise settled by hand, for operations that must stay in flight. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Wraps a store and counts calls per operation. */
function counting(store: IdempotencyStore, withWatch = true) {
  const calls = { claim: 0, complete: 0, release: 0, get: 0 };
  const wrapped: IdempotencyStore = {
    name: store.name,
    claim: (...a) => (calls.claim++, store.claim(...a)),
    complete: (...a) => (calls.complete++, store.complete(...a)),
    release: (...a) => (calls.release++, store.release(...a)),
    get: (...a) => (calls.get++, store.get(...a)),
  };
  if (withWatch && store.watch) wrapped.watch = store.watch.bind(store);
  return { store: wrapped, calls };
}

const failingStore = (message = 'connection refused'): IdempotencyStore => ({
  name: 'FlakyStore',
  claim: () => Promise.reject(new Error(message)),
  complete: () => Promise.reject(new Error(message)),
  release: () => Promise.reject(new Error(message)),
  get: () => Promise.reject(new Error(message)),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

describe('idempotency: execute once, replay after', () => {
  it('runs fn once and replays the stored value to a later call with the same key', async () => {
    const { policy, names, events } = setup();
    let runs = 0;
    const fn = () => ({ charged: ++runs, currency: 'EUR' });
    const first = await policy.execute(fn, { idempotencyKey: 'order-1' });
    const second = await policy.execute(fn, { idempotencyKey: 'order-1' });
    expect(runs).toBe(1);
    expect(first).toEqual({ charged: 1, currency: 'EUR' });
    expect(second).toEqual(first);
    expect(names()).toEqual(['executed', 'replayed']);
    expect(events[1]![1]).toEqual({ key: 'order-1', store: 'MemoryStore', outcome: 'value' });
  });

  it('runs fn for each distinct key', async () => {
    const { policy } = setup();
    let runs = 0;
    await policy.execute(() => ++runs, { idempotencyKey: 'a' });
    await policy.execute(() => ++runs, { idempotencyKey: 'b' });
    expect(runs).toBe(2);
  });

  it('replays undefined for an operation that returns nothing', async () => {
    const { policy } = setup();
    let runs = 0;
    const fn = async () => {
      runs++;
    };
    expect(await policy.execute(fn, { idempotencyKey: 'void' })).toBeUndefined();
    expect(await policy.execute(fn, { idempotencyKey: 'void' })).toBeUndefined();
    expect(runs).toBe(1);
  });

  it('generates a key per logical call when none is given, shared by its retries', async () => {
    const { policy, store } = setup();
    const keys: string[] = [];
    let attempt = 0;
    const value = await pipeline(retry({ maxAttempts: 3, backoff: 0 }), policy).execute(
      (ctx: Context) => {
        keys.push(ctx.idempotencyKey);
        if (++attempt === 1) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return 'ok';
      },
    );
    expect(value).toBe('ok');
    expect(keys).toHaveLength(2);
    expect(keys[0]).toBe(keys[1]);
    expect((await store.get(keys[0]!))?.state).toBe('completed');
  });

  it('forgets the outcome after ttl and runs fn again', async () => {
    const { policy, clock } = setup({ ttl: '1m' });
    let runs = 0;
    await policy.execute(() => ++runs, { idempotencyKey: 'k' });
    await clock.advance(59_999);
    expect(await policy.execute(() => ++runs, { idempotencyKey: 'k' })).toBe(1);
    await clock.advance(1);
    expect(await policy.execute(() => ++runs, { idempotencyKey: 'k' })).toBe(2);
  });
});

describe('idempotency: fingerprints', () => {
  it('rejects the same key with another fingerprint with IdempotencyKeyReuseError', async () => {
    const { policy, names } = setup();
    await policy.execute(() => 1, { idempotencyKey: 'k', fingerprint: 'amount=10' });
    const error = await policy
      .execute(() => 2, { idempotencyKey: 'k', fingerprint: 'amount=99' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReuseError);
    expect((error as IdempotencyKeyReuseError).code).toBe('ERR_IDEMPOTENCY_KEY_REUSED');
    expect(names()).toEqual(['executed', 'key_reused']);
    expect(await policy.execute(() => 3, { idempotencyKey: 'k', fingerprint: 'amount=10' })).toBe(
      1,
    );
  });

  it('takes the fingerprint from a fingerprint(ctx) option when given', async () => {
    const { policy } = setup({ fingerprint: (ctx) => `${ctx.priority}` });
    await policy.execute(() => 1, { idempotencyKey: 'k', priority: 'high' });
    await expect(
      policy.execute(() => 2, { idempotencyKey: 'k', priority: 'low' }),
    ).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
  });

  it('rejects a reused key with another fingerprint even while the first call runs', async () => {
    const { policy } = setup();
    const gate = deferred<number>();
    const first = policy.execute(() => gate.promise, { idempotencyKey: 'k', fingerprint: 'a' });
    await expect(
      policy.execute(() => 2, { idempotencyKey: 'k', fingerprint: 'b' }),
    ).rejects.toBeInstanceOf(IdempotencyKeyReuseError);
    gate.resolve(1);
    expect(await first).toBe(1);
  });
});

describe('idempotency: duplicates in flight', () => {
  it('rejects a duplicate while the first call runs with IdempotencyInProgressError', async () => {
    const { policy, names } = setup();
    const gate = deferred<string>();
    let runs = 0;
    const first = policy.execute(() => (runs++, gate.promise), { idempotencyKey: 'k' });
    const error = await policy
      .execute(() => (runs++, 'dup'), { idempotencyKey: 'k' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyInProgressError);
    expect((error as IdempotencyInProgressError).code).toBe('ERR_IDEMPOTENCY_IN_PROGRESS');
    gate.resolve('first');
    expect(await first).toBe('first');
    expect(runs).toBe(1);
    expect(names()).toEqual(['executed', 'in_progress']);
  });

  it("with onInProgress 'wait', waits for the first outcome without running fn or polling", async () => {
    const clock = new VirtualClock();
    const memory = new MemoryStore({ clock });
    const { store, calls } = counting(memory);
    const policy = idempotency({ store, clock, onInProgress: 'wait', lockTtl: 10_000 });
    const gate = deferred<string>();
    let runs = 0;
    const first = policy.execute(() => (runs++, gate.promise), { idempotencyKey: 'k' });
    const second = policy.execute(() => (runs++, 'dup'), { idempotencyKey: 'k' });
    await clock.advance(5000);
    const claimsWhileWaiting = calls.claim;
    await clock.advance(4000);
    expect(calls.claim).toBe(claimsWhileWaiting);
    expect(claimsWhileWaiting).toBe(3);
    gate.resolve('first');
    expect(await first).toBe('first');
    expect(await second).toBe('first');
    expect(runs).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it("with onInProgress 'wait', gives up at the call's budget with a TimeoutError and leaves nothing behind", async () => {
    const { policy, clock, names } = setup({ onInProgress: 'wait', lockTtl: 60_000 });
    const held = policy.execute(() => new Promise<never>(() => {}), { idempotencyKey: 'k' });
    void held;
    const waiting = policy
      .execute(() => 'dup', { idempotencyKey: 'k', budget: 250 })
      .catch((e: unknown) => e);
    await clock.advance(249);
    let settled = false;
    void waiting.then(() => (settled = true));
    await clock.advance(0);
    expect(settled).toBe(false);
    await clock.advance(1);
    const error = await waiting;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).scope).toBe('budget');
    await clock.advance(0);
    expect(names()).toEqual(['executed', 'in_progress']);
    expect(clock.pending).toBe(0);
  });

  it("with onInProgress 'wait', takes over once a crashed holder's lock expires", async () => {
    const { policy, clock, names } = setup({ onInProgress: 'wait', lockTtl: 1000 });
    void policy.execute(() => new Promise<never>(() => {}), { idempotencyKey: 'k' });
    const second = policy.execute(() => 'second', { idempotencyKey: 'k' });
    await clock.advance(1000);
    expect(await second).toBe('second');
    expect(names()).toEqual(['executed', 'executed']);
  });

  it('polls with growing pauses when the store cannot notify', async () => {
    const clock = new VirtualClock();
    const { store, calls } = counting(new MemoryStore({ clock }), false);
    const policy = idempotency({ store, clock, onInProgress: 'wait', lockTtl: 60_000 });
    const gate = deferred<string>();
    const first = policy.execute(() => gate.promise, { idempotencyKey: 'k' });
    const second = policy.execute(() => 'dup', { idempotencyKey: 'k' });
    await clock.advance(3000);
    // 2 initial claims, then polls at 10, 30, 70, 150, 310, 810, 1310, … ms: bounded by the 500 ms cap.
    expect(calls.claim).toBeGreaterThanOrEqual(8);
    expect(calls.claim).toBeLessThanOrEqual(14);
    gate.resolve('first');
    await clock.advance(500);
    expect(await first).toBe('first');
    expect(await second).toBe('first');
  });
});

describe('idempotency: failures', () => {
  it('releases the key after a retryable failure so a retry runs fn again', async () => {
    const { policy, names } = setup();
    let runs = 0;
    const flaky = () => {
      if (++runs === 1) throw new HttpError(503, 'unavailable');
      return 'ok';
    };
    await expect(policy.execute(flaky, { idempotencyKey: 'k' })).rejects.toThrow('unavailable');
    expect(await policy.execute(flaky, { idempotencyKey: 'k' })).toBe('ok');
    expect(runs).toBe(2);
    expect(names()).toEqual(['executed', 'released', 'executed']);
  });

  it('stores a non-retryable failure and replays it as an equal error', async () => {
    const { policy, names } = setup();
    let runs = 0;
    const original = Object.assign(new HttpError(422, 'card declined'), {
      code: 'CARD_DECLINED',
      detail: { a: 1 },
    });
    const fn = () => {
      runs++;
      throw original;
    };
    const first = await policy.execute(fn, { idempotencyKey: 'k' }).catch((e: unknown) => e);
    expect(first).toBe(original);
    const replayed = (await policy
      .execute(fn, { idempotencyKey: 'k' })
      .catch((e: unknown) => e)) as Error & {
      status: number;
      code: string;
    };
    expect(runs).toBe(1);
    expect(replayed).toBeInstanceOf(Error);
    expect(replayed.message).toBe('card declined');
    expect(replayed.name).toBe('HttpError');
    expect(replayed.status).toBe(422);
    expect(replayed.code).toBe('CARD_DECLINED');
    expect(names()).toEqual(['executed', 'replayed']);
  });

  it('replays a thrown non-Error value as thrown', async () => {
    const { policy } = setup();
    const fn = () => Promise.reject({ reason: 'nope' });
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toEqual({ reason: 'nope' });
    await expect(policy.execute(() => 1, { idempotencyKey: 'k' })).rejects.toEqual({
      reason: 'nope',
    });
  });

  it('releases instead of storing a non-retryable failure when storeFailures is false', async () => {
    const { policy } = setup({ storeFailures: false });
    let runs = 0;
    const fn = () => {
      if (++runs === 1) throw new HttpError(400, 'bad');
      return 'ok';
    };
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toThrow('bad');
    expect(await policy.execute(fn, { idempotencyKey: 'k' })).toBe('ok');
  });

  it('classifies failures with isRetryable when given', async () => {
    const { policy } = setup({ isRetryable: (e) => (e as Error).message === 'again' });
    let runs = 0;
    const fn = () => {
      runs++;
      throw new Error(runs === 1 ? 'again' : 'final');
    };
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toThrow('again');
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toThrow('final');
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toThrow('final');
    expect(runs).toBe(2);
  });

  it('never stores a local rejection (breaker, timeout) as the outcome', async () => {
    const { policy } = setup();
    await expect(
      policy.execute(() => Promise.reject(new CircuitOpenError('open', 1000)), {
        idempotencyKey: 'k',
      }),
    ).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(
      policy.execute(() => Promise.reject(new TimeoutError('budget', 5)), { idempotencyKey: 't' }),
    ).rejects.toBeInstanceOf(TimeoutError);
    expect(await policy.execute(() => 'later', { idempotencyKey: 'k' })).toBe('later');
    expect(await policy.execute(() => 'later', { idempotencyKey: 't' })).toBe('later');
  });

  it('does not store the failure of an operation cut off by its deadline', async () => {
    const { policy, clock } = setup();
    const outcome = pipeline(budget(100, { clock }), policy)
      .execute(
        (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(new Error('cancelled'))),
          ),
        { idempotencyKey: 'k' },
      )
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    await clock.advance(0);
    expect(await policy.execute(() => 'again', { idempotencyKey: 'k' })).toBe('again');
  });

  it('stores the real outcome of an operation that finishes after its caller gave up', async () => {
    const { policy, clock } = setup();
    const gate = deferred<string>();
    const outcome = pipeline(budget(100, { clock }), policy)
      .execute(() => gate.promise, { idempotencyKey: 'k' })
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    gate.resolve('done late');
    await clock.advance(0);
    expect(await policy.execute(() => 'again', { idempotencyKey: 'k' })).toBe('done late');
  });
});

describe('idempotency: crashed and overrunning holders', () => {
  it("lets another caller claim after a crashed holder's lockTtl", async () => {
    const { policy, clock } = setup({ lockTtl: '2s' });
    void policy.execute(() => new Promise<never>(() => {}), { idempotencyKey: 'k' });
    await expect(policy.execute(() => 'b', { idempotencyKey: 'k' })).rejects.toBeInstanceOf(
      IdempotencyInProgressError,
    );
    await clock.advance(2000);
    expect(await policy.execute(() => 'b', { idempotencyKey: 'k' })).toBe('b');
    expect(await policy.execute(() => 'c', { idempotencyKey: 'k' })).toBe('b');
  });

  it('does not let a holder whose lock expired overwrite the outcome of the caller who took over', async () => {
    const { policy, clock, store, names } = setup({ lockTtl: 100 });
    const slow = deferred<string>();
    const late = policy.execute(() => slow.promise, { idempotencyKey: 'k' });
    await clock.advance(120);
    expect(await policy.execute(() => 'winner', { idempotencyKey: 'k' })).toBe('winner');
    slow.resolve('late');
    // The late holder's caller is answered with the stored outcome: nobody sees two results.
    expect(await late).toBe('winner');
    const entry = await store.get('k');
    expect(entry?.state === 'completed' && entry.record.body).toBe('"winner"');
    expect(names()).toEqual(['executed', 'executed', 'lock_lost']);
  });

  it('stores the late outcome when its lock expired but nobody took over', async () => {
    const { policy, clock } = setup({ lockTtl: 100 });
    const slow = deferred<string>();
    const late = policy.execute(() => slow.promise, { idempotencyKey: 'k' });
    await clock.advance(150);
    slow.resolve('late');
    expect(await late).toBe('late');
    expect(await policy.execute(() => 'other', { idempotencyKey: 'k' })).toBe('late');
  });
});

describe('idempotency: the store fails', () => {
  it('fails closed by default with an error naming the store, without running fn', async () => {
    const policy = idempotency({ store: failingStore() });
    let runs = 0;
    const error = await policy
      .execute(() => ++runs, { idempotencyKey: 'k' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyStoreError);
    expect((error as IdempotencyStoreError).store).toBe('FlakyStore');
    expect((error as Error).message).toBe('FlakyStore: claim failed: connection refused');
    expect(((error as Error).cause as Error).message).toBe('connection refused');
    expect(runs).toBe(0);
  });

  it("runs fn without idempotency when onStoreError is 'bypass'", async () => {
    const policy = idempotency({ store: failingStore(), onStoreError: 'bypass' });
    const seen: IdempotencyEvents['store_error'][] = [];
    policy.on('store_error', (e) => seen.push(e));
    expect(await policy.execute(() => 'ran', { idempotencyKey: 'k' })).toBe('ran');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ operation: 'claim', bypassed: true, store: 'FlakyStore' });
  });

  it('never starts fn when the claim answers after the call is over, and frees the key', async () => {
    const clock = new VirtualClock();
    const memory = new MemoryStore({ clock });
    const slowClaim = deferred<void>();
    const store: IdempotencyStore = {
      name: 'SlowStore',
      claim: (...a) => slowClaim.promise.then(() => memory.claim(...a)),
      complete: (...a) => memory.complete(...a),
      release: (...a) => memory.release(...a),
      get: (...a) => memory.get(...a),
    };
    let runs = 0;
    const outcome = idempotency({ store, clock })
      .execute(() => ++runs, { idempotencyKey: 'k', budget: 100 })
      .catch((e: unknown) => e);
    await clock.advance(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    slowClaim.resolve();
    await clock.advance(0);
    expect(runs).toBe(0);
    expect(await memory.get('k')).toBeUndefined();
  });

  it("fails with IdempotencyStoreError when only storing the outcome fails ('bypass' returns the value)", async () => {
    const clock = new VirtualClock();
    const memory = new MemoryStore({ clock });
    const store: IdempotencyStore = {
      name: 'HalfStore',
      claim: (...a) => memory.claim(...a),
      complete: () => Promise.reject(new Error('disk full')),
      release: (...a) => memory.release(...a),
      get: (...a) => memory.get(...a),
    };
    const policy = idempotency({ store, clock });
    const seen: unknown[] = [];
    policy.on('store_error', (e) => seen.push(e.operation));
    const failed = policy.execute(() => 'v', { idempotencyKey: 'k' });
    failed.catch(() => undefined);
    await clock.advance(1_000);
    await expect(failed).rejects.toThrow('HalfStore: complete failed: disk full');
    expect(seen).toEqual(['complete']);
    const bypass = idempotency({ store, clock, onStoreError: 'bypass' });
    const ok = bypass.execute(() => 'v', { idempotencyKey: 'k2' });
    await clock.advance(1_000);
    expect(await ok).toBe('v');
  });
});

describe('idempotency: serialization', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a BigInt', { amount: 10n }, /\$\.amount as JSON: a BigInt has no JSON form/],
    ['a function', { cb: () => 1 }, /\$\.cb as JSON: a function/],
    [
      'a Date',
      { at: new Date(0) },
      /\$\.at as JSON: an instance of Date would come back as a string/,
    ],
    [
      'a Map',
      new Map([[1, 2]]),
      /the result as JSON: an instance of Map would come back as a plain object/,
    ],
    ['a class instance', new (class Money {})(), /an instance of Money/],
    ['undefined in an array', [1, undefined], /\$\[1\] as JSON: undefined would come back as null/],
    // eslint-disable-next-line no-sparse-arrays -- a hole is the case under test
    ['an empty array slot', [1, , 3], /\$\[1\] as JSON: an empty array slot/],
    ['NaN', { n: NaN }, /the number NaN would come back as null/],
    ['a symbol', { s: Symbol('x') }, /a symbol/],
  ];
  for (const [what, value, message] of cases) {
    it(`refuses to store ${what} with a message naming it, and keeps that failure as the key's outcome`, async () => {
      const { policy } = setup();
      let runs = 0;
      const error = await policy
        .execute(() => (runs++, value), { idempotencyKey: 'k' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/pass a serializer/);
      // fn ran: a retry gets the refusal replayed, never a second run.
      const again = await policy
        .execute(() => (runs++, 'fine'), { idempotencyKey: 'k' })
        .catch((e: unknown) => e);
      expect((again as Error).message).toBe((error as Error).message);
      expect(runs).toBe(1);
    });
  }

  it('refuses a circular value', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => jsonSerializer.serialize(a)).toThrow(/\$\.self as JSON: a circular reference/);
  });

  it('accepts shared (non-circular) references and drops undefined properties', () => {
    const shared = { x: 1 };
    const text = jsonSerializer.serialize({ a: shared, b: shared, gone: undefined });
    expect(jsonSerializer.deserialize(text)).toEqual({ a: { x: 1 }, b: { x: 1 } });
  });

  it('uses a custom serializer when given', async () => {
    const serializer = {
      serialize: (v: unknown) => `custom:${String(v)}`,
      deserialize: (t: string) => BigInt(t.slice('custom:'.length)),
    };
    const { policy, store } = setup({ serializer });
    expect(await policy.execute(() => 5n, { idempotencyKey: 'k' })).toBe(5n);
    expect(await policy.execute(() => 6n, { idempotencyKey: 'k' })).toBe(5n);
    const entry = await store.get('k');
    expect(entry?.state === 'completed' && entry.record.body).toBe('custom:5');
  });

  it('fails with an error naming the store when a stored outcome cannot be read back', async () => {
    const { policy, store } = setup();
    const r = await store.claim('k', undefined, 1000);
    if (r.state !== 'claimed') throw new Error('not claimed');
    await store.complete('k', r.token, { outcome: 'value', body: '{not json' }, 1000);
    const error = await policy.execute(() => 1, { idempotencyKey: 'k' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyStoreError);
    expect((error as Error).message).toMatch(
      /MemoryStore: the stored outcome could not be deserialized/,
    );
  });
});

describe('idempotency: scopes, clocks and options', () => {
  it('keeps the same key apart in different scopes', async () => {
    const { store, clock } = setup();
    let tenant = 'a';
    const policy = idempotency({ store, clock, scope: () => tenant });
    let runs = 0;
    await policy.execute(() => ++runs, { idempotencyKey: 'k' });
    tenant = 'b';
    await policy.execute(() => ++runs, { idempotencyKey: 'k' });
    expect(runs).toBe(2);
    expect((await store.get('k', 'a'))?.state).toBe('completed');
    expect(await store.get('k')).toBeUndefined();
    const fixed = idempotency({ store, clock, scope: 'b' });
    expect(await fixed.execute(() => 99, { idempotencyKey: 'k' })).toBe(2);
  });

  it("creates its default MemoryStore on the pipeline's clock", async () => {
    const clock = new VirtualClock();
    const policy = idempotency({ lockTtl: 1000 });
    const p = pipeline(budget(Infinity, { clock }), policy);
    void p.execute(() => new Promise<never>(() => {}), { idempotencyKey: 'k' });
    await clock.advance(0);
    await expect(p.execute(() => 1, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(
      IdempotencyInProgressError,
    );
    await clock.advance(1000);
    expect(await p.execute(() => 2, { idempotencyKey: 'k' })).toBe(2);
  });

  it('validates every option at once, naming each path', () => {
    let error: unknown;
    try {
      idempotency({
        ttl: -1,
        lockTtl: 'soon',
        onInProgress: 'queue',
        onStoreError: 'ignore',
        store: {},
        serializer: { serialize: 1 },
        storeFailures: 'yes',
        scope: 3,
      } as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const paths = (error as ConfigError).problems.map((p) => p.path).sort();
    expect(paths).toEqual([
      'idempotency.lockTtl',
      'idempotency.onInProgress',
      'idempotency.onStoreError',
      'idempotency.scope',
      'idempotency.serializer',
      'idempotency.store',
      'idempotency.storeFailures',
      'idempotency.ttl',
    ]);
  });

  it('has kind idempotency and documented defaults', () => {
    const policy = idempotency();
    expect(policy.kind).toBe('idempotency');
    expect(policy.ttl).toBe(24 * 3600 * 1000);
    expect(policy.lockTtl).toBe(60_000);
    expect(policy.onInProgress).toBe('reject');
    expect(policy.onStoreError).toBe('fail');
    expect(policy.storeFailures).toBe(true);
  });
});
