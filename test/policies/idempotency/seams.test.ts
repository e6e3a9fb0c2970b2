// The contract at the seams (issue 12, items 1–4): a keyed operation never runs twice, and
// a call never reports success for an outcome that was not stored.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  IdempotencyInProgressError,
  IdempotencyStoreError,
  TimeoutError,
  pipeline,
  timeout,
} from '../../../src/index.js';
import { idempotency } from '../../../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../../../src/stores/memory.js';
import type { IdempotencyStore } from '../../../src/stores/store.js';
import { VirtualClock } from '../../../src/testing/virtual-clock.js';

/** A MemoryStore whose `complete` rejects the first `failures` times (then works). */
function flakyComplete(clock: VirtualClock, failures: number) {
  const inner = new MemoryStore({ clock });
  let left = failures;
  const calls = { complete: 0, release: 0 };
  const store: IdempotencyStore = {
    name: 'FlakyComplete',
    claim: (...a) => inner.claim(...a),
    complete: (...a) => {
      calls.complete++;
      if (left-- > 0) return Promise.reject(new Error('connection reset'));
      return inner.complete(...a);
    },
    release: (...a) => (calls.release++, inner.release(...a)),
    get: (...a) => inner.get(...a),
  };
  return { store, inner, calls };
}

/** Settles `p` while advancing the virtual clock in small steps (bounded). */
async function drive<T>(clock: VirtualClock, p: Promise<T>, ms = 10_000): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let t = 0; t < ms && !done; t += 10) await clock.advance(10);
  return p;
}

describe('item 2: a failed complete()', () => {
  it('is retried within the budget: a complete that fails once still stores the outcome', async () => {
    const clock = new VirtualClock();
    const { store, calls } = flakyComplete(clock, 1);
    const policy = idempotency({ store, clock });
    let runs = 0;
    const fn = () => ({ charge: ++runs });
    expect(await drive(clock, policy.execute(fn, { idempotencyKey: 'k' }))).toEqual({ charge: 1 });
    expect(calls.complete).toBe(2);
    expect(await policy.execute(fn, { idempotencyKey: 'k' })).toEqual({ charge: 1 });
    expect(runs).toBe(1);
  });

  it('fails the call with IdempotencyStoreError when the outcome cannot be stored, and never frees the key', async () => {
    const clock = new VirtualClock();
    const { store, calls } = flakyComplete(clock, Infinity);
    const policy = idempotency({ store, clock, lockTtl: '1m' });
    let runs = 0;
    const fn = () => ++runs;
    const first = drive(clock, policy.execute(fn, { idempotencyKey: 'k' }));
    await expect(first).rejects.toBeInstanceOf(IdempotencyStoreError);
    await expect(first).rejects.toThrow(/complete/);
    expect(calls.release).toBe(0);
    // Within lockTtl a duplicate finds the key held: fn does not run again.
    await expect(policy.execute(fn, { idempotencyKey: 'k' })).rejects.toBeInstanceOf(
      IdempotencyInProgressError,
    );
    expect(runs).toBe(1);
  });

  it('gives up retrying when the call budget runs out', async () => {
    const clock = new VirtualClock();
    const { store } = flakyComplete(clock, Infinity);
    const policy = idempotency({ store, clock });
    const p = drive(
      clock,
      policy.execute(() => 1, { idempotencyKey: 'k', budget: 50 }),
      1_000,
    );
    await expect(p).rejects.toBeInstanceOf(Error);
    expect(clock.now()).toBeLessThan(1_000);
  });

  it('property: whatever complete() does, a resolved call means its outcome is stored', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 6 }), async (failures) => {
        const clock = new VirtualClock();
        const { store, inner } = flakyComplete(clock, failures);
        const policy = idempotency({ store, clock });
        let runs = 0;
        const outcome = await drive(
          clock,
          policy.execute(() => ++runs, { idempotencyKey: 'k' }),
        )
          .then(() => 'ok' as const)
          .catch((e: unknown) => e);
        const entry = await inner.get('k');
        if (outcome === 'ok') expect(entry?.state).toBe('completed');
        else expect(outcome).toBeInstanceOf(IdempotencyStoreError);
        // Never freed: a second call either replays or finds the key held.
        await policy.execute(() => ++runs, { idempotencyKey: 'k' }).catch(() => undefined);
        expect(runs).toBe(1);
      }),
      { numRuns: 30 },
    );
  });
});

describe('item 3: a result that cannot be stored', () => {
  it('keeps the key as failed with the serialization error and replays it', async () => {
    const clock = new VirtualClock();
    const store = new MemoryStore({ clock });
    const policy = idempotency({ store, clock });
    let runs = 0;
    const fn = () => {
      runs++;
      return { at: new Date(0) };
    };
    await expect(policy.execute(fn, { idempotencyKey: 'd' })).rejects.toThrow(/Date/);
    await expect(policy.execute(fn, { idempotencyKey: 'd' })).rejects.toThrow(/Date/);
    expect(runs).toBe(1);
    expect((await store.get('d'))?.state).toBe('completed');
  });
});

describe('item 4: keys', () => {
  for (const [what, key] of [
    ['the empty string', ''],
    ['a 256-character key', 'k'.repeat(256)],
    ['a 10 KB key', 'k'.repeat(10_000)],
    ['a 1 MB key', 'k'.repeat(1_000_000)],
  ] as const) {
    it(`rejects ${what} with a ConfigError naming idempotencyKey, before fn runs`, async () => {
      const policy = idempotency({ clock: new VirtualClock() });
      let runs = 0;
      const p = policy.execute(() => ++runs, { idempotencyKey: key });
      await expect(p).rejects.toBeInstanceOf(ConfigError);
      await expect(p).rejects.toThrow(/idempotencyKey/);
      const message = await p.then(String, (e: Error) => e.message);
      expect(message.length).toBeLessThan(500); // the key itself is not echoed
      expect(runs).toBe(0);
    });
  }

  it('accepts keys of 1 to 255 characters', async () => {
    const policy = idempotency({ clock: new VirtualClock() });
    expect(await policy.execute(() => 1, { idempotencyKey: 'k' })).toBe(1);
    expect(await policy.execute(() => 2, { idempotencyKey: 'k'.repeat(255) })).toBe(2);
  });
});

describe('item 1: a key stays held until the work it guards has settled', () => {
  it('does not free the key when an inner timeout abandons fn: a duplicate cannot run it again', async () => {
    const clock = new VirtualClock();
    const store = new MemoryStore({ clock });
    const policy = pipeline(idempotency({ store, clock }), timeout(50));
    let runs = 0;
    let running = 0;
    let maxRunning = 0;
    // A charge that ignores its signal and takes 400 ms.
    const charge = async () => {
      runs++;
      maxRunning = Math.max(maxRunning, ++running);
      await clock.sleep(400);
      running--;
      return { id: runs };
    };
    const first = policy.execute(charge, { idempotencyKey: 'pay' });
    first.catch(() => undefined);
    await clock.advance(60);
    await expect(first).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(60);
    await expect(policy.execute(charge, { idempotencyKey: 'pay' })).rejects.toBeInstanceOf(
      IdempotencyInProgressError,
    );
    await clock.advance(400);
    // The abandoned charge finished: its value is the key's outcome, replayed.
    expect(await policy.execute(charge, { idempotencyKey: 'pay' })).toEqual({ id: 1 });
    expect(runs).toBe(1);
    expect(maxRunning).toBe(1);
  });

  it("stores an abandoned fn's late value with retries, though the call's deadline has passed", async () => {
    const clock = new VirtualClock();
    const { store, calls } = flakyComplete(clock, 2);
    const policy = pipeline(idempotency({ store, clock }), timeout(50));
    let runs = 0;
    const charge = async () => {
      runs++;
      await clock.sleep(100);
      return { id: runs };
    };
    const first = policy.execute(charge, { idempotencyKey: 'pay', budget: 60 });
    first.catch(() => undefined);
    await clock.advance(60);
    await expect(first).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(200);
    expect(calls.complete).toBe(3);
    expect(await policy.execute(charge, { idempotencyKey: 'pay' })).toEqual({ id: 1 });
    expect(runs).toBe(1);
  });

  it('frees the key once the abandoned fn failed', async () => {
    const clock = new VirtualClock();
    const policy = pipeline(idempotency({ clock }), timeout(50));
    let runs = 0;
    const charge = async () => {
      const n = ++runs;
      await clock.sleep(n === 1 ? 100 : 10);
      if (n === 1) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'ok';
    };
    const first = policy.execute(charge, { idempotencyKey: 'pay' });
    first.catch(() => undefined);
    await clock.advance(60);
    await expect(first).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(100);
    const second = policy.execute(charge, { idempotencyKey: 'pay' });
    await clock.advance(20);
    expect(await second).toBe('ok');
    expect(runs).toBe(2);
  });
});

describe('item 1, property: timeouts inside the policy never let a key run beside itself', () => {
  it('at most one fn runs per key at any time, and every caller that got a value got the same one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            at: fc.integer({ min: 0, max: 300 }),
            takes: fc.integer({ min: 1, max: 200 }),
            fails: fc.boolean(),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.integer({ min: 5, max: 150 }),
        async (calls, limit) => {
          const clock = new VirtualClock();
          const policy = pipeline(idempotency({ clock }), timeout(limit));
          let running = 0;
          let maxRunning = 0;
          let n = 0;
          const values: unknown[] = [];
          const pending: Promise<unknown>[] = [];
          for (const c of [...calls].sort((a, b) => a.at - b.at)) {
            await clock.advanceTo(c.at);
            const fn = async () => {
              maxRunning = Math.max(maxRunning, ++running);
              try {
                await clock.sleep(c.takes);
                if (c.fails) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
                return { run: ++n };
              } finally {
                running--;
              }
            };
            pending.push(
              policy.execute(fn, { idempotencyKey: 'k' }).then(
                (v) => values.push(v),
                () => undefined,
              ),
            );
          }
          await clock.advance(2_000);
          await Promise.all(pending);
          expect(maxRunning).toBeLessThanOrEqual(1);
          expect(new Set(values.map((v) => JSON.stringify(v))).size).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 100 },
    );
  });
});
