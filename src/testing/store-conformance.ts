import { randomBytes } from 'node:crypto';
import type { ClaimResult, IdempotencyRecord, IdempotencyStore } from '../stores/store.js';

/** Builds a fresh store; stores built with different prefixes must not see each other's keys. */
export type StoreFactory = (env: {
  prefix: string;
}) => IdempotencyStore | Promise<IdempotencyStore>;

/** Options of `storeConformance()`. */
export interface StoreConformanceOptions {
  /** Title of the generated `describe` block (default 'idempotency store conformance'). */
  name?: string;
  /**
   * Moves the store's time forward by `ms`. For a store on a VirtualClock pass
   * `(ms) => clock.advance(ms)`; the default sleeps for real, for stores whose TTLs run on
   * their server's time (Redis).
   */
  advance?: (ms: number) => Promise<void>;
  /** The short TTL (ms) time-based cases use (default 100; on real time keep it ≥ 50). */
  shortTtl?: number;
  /** Runs after each test with the store it used (close connections, delete keys). */
  cleanup?: (store: IdempotencyStore) => void | Promise<void>;
  /**
   * The test framework's `describe`, `it` and `expect` (vitest's or Jest's). Default: the
   * globals of that name (vitest with `globals: true`, Jest). Passed in rather than
   * imported, so that `bulwark/testing` loads from CommonJS and without vitest installed.
   */
  test?: TestApi;
}

/** The part of a vitest/Jest-style API the suite uses. */
export interface TestApi {
  describe: (name: string, body: () => void) => void;
  it: (name: string, body: () => Promise<void>, timeout?: number) => void;
  expect: ExpectFn;
}

// Loose on purpose: vitest's and Jest's expect differ in their types, not in what we call.
type ExpectFn = (actual: unknown) => any;

function testApi(given: TestApi | undefined): TestApi {
  if (given !== undefined) return given;
  const g = globalThis as unknown as Partial<TestApi>;
  if (
    typeof g.describe === 'function' &&
    typeof g.it === 'function' &&
    typeof g.expect === 'function'
  ) {
    return { describe: g.describe, it: g.it, expect: g.expect };
  }
  throw new TypeError(
    "storeConformance: no test framework found; pass { test: { describe, it, expect } } (e.g. from 'vitest')",
  );
}

const LONG = 60_000;

function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tokenOf(expect: ExpectFn, r: ClaimResult): string {
  if (r.state !== 'claimed')
    throw new Error(`expected the claim to succeed, got ${JSON.stringify(r)}`);
  expect(typeof r.token).toBe('string');
  return r.token;
}

/**
 * Registers vitest tests that check a store against the contract of `IdempotencyStore`:
 * claim states, fencing, release, TTL and lock expiry, fingerprints, prefix and scope
 * isolation, and atomicity under concurrent claims. Call it inside a test file:
 *
 *   storeConformance(() => new MyStore(), { advance: (ms) => clock.advance(ms) });
 *
 * Needs vitest, or Jest: a framework's `describe`, `it` and `expect`, passed as `test` or
 * found as globals.
 *
 * @example
 * ```ts
 * import { describe, expect, it } from 'vitest';
 * import { MemoryStore } from 'bulwark';
 * import { VirtualClock, storeConformance } from 'bulwark/testing';
 *
 * // Your store here; one with a key namespace as `({ prefix }) => new MyStore({ prefix })`.
 * const clock = new VirtualClock();
 * storeConformance(() => new MemoryStore({ clock }), {
 *   name: 'MemoryStore keeps the store contract',
 *   advance: (ms) => clock.advance(ms),
 *   test: { describe, it, expect },
 * });
 * ```
 */
export function storeConformance(
  makeStore: StoreFactory,
  options: StoreConformanceOptions = {},
): void {
  const { describe, it, expect } = testApi(options.test);
  const advance = options.advance ?? realSleep;
  const short = options.shortTtl ?? 100;
  const run = randomBytes(4).toString('hex');
  let n = 0;
  const nextPrefix = () => `conformance:${run}:${++n}`;

  const withStore =
    (body: (store: IdempotencyStore, prefix: string) => Promise<void>) => async () => {
      const prefix = nextPrefix();
      const store = await makeStore({ prefix });
      try {
        await body(store, prefix);
      } finally {
        await options.cleanup?.(store);
      }
    };

  const record = (
    body: string,
    outcome: IdempotencyRecord['outcome'] = 'value',
  ): IdempotencyRecord => ({ outcome, body });

  describe(options.name ?? 'idempotency store conformance', () => {
    it(
      'names itself',
      withStore(async (store) => {
        expect(typeof store.name).toBe('string');
        expect(store.name.length).toBeGreaterThan(0);
      }),
    );

    it(
      'claims an unknown key and hands out a token',
      withStore(async (store) => {
        const r = await store.claim('k1', 'fp', LONG);
        expect(r.state).toBe('claimed');
        tokenOf(expect, r);
        expect(await store.get('k1')).toEqual({ state: 'in-progress', fingerprint: 'fp' });
      }),
    );

    it(
      'reports in-progress to a second claim while the first holds the key',
      withStore(async (store) => {
        tokenOf(expect, await store.claim('k', 'fp', LONG));
        const again = await store.claim('k', 'fp', LONG);
        expect(again.state).toBe('in-progress');
        if (again.state === 'in-progress' && again.lockRemaining !== undefined) {
          expect(again.lockRemaining).toBeGreaterThan(0);
          expect(again.lockRemaining).toBeLessThanOrEqual(LONG);
        }
      }),
    );

    it(
      'returns the completed record to later claims, byte for byte',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        const body = JSON.stringify({ id: 'ü-ñ-✓-😀', nested: { a: [1, 2, 3] }, quote: '"\\' });
        expect(await store.complete('k', token, record(body), LONG)).toBe(true);
        expect(await store.claim('k', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record(body),
        });
        expect(await store.claim('k', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record(body),
        });
        expect(await store.get('k')).toEqual({
          state: 'completed',
          fingerprint: 'fp',
          record: record(body),
        });
      }),
    );

    it(
      'keeps an empty body and an error outcome as given',
      withStore(async (store) => {
        const t1 = tokenOf(expect, await store.claim('void', undefined, LONG));
        expect(await store.complete('void', t1, record(''), LONG)).toBe(true);
        expect(await store.claim('void', undefined, LONG)).toEqual({
          state: 'completed',
          record: record(''),
        });
        const t2 = tokenOf(expect, await store.claim('err', 'fp', LONG));
        expect(await store.complete('err', t2, record('{"message":"no"}', 'error'), LONG)).toBe(
          true,
        );
        expect(await store.claim('err', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record('{"message":"no"}', 'error'),
        });
      }),
    );

    it(
      'answers mismatch to another fingerprint, in progress or completed',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp-a', LONG));
        expect(await store.claim('k', 'fp-b', LONG)).toEqual({ state: 'mismatch' });
        expect(await store.claim('k', undefined, LONG)).toEqual({ state: 'mismatch' });
        expect(await store.complete('k', token, record('1'), LONG)).toBe(true);
        expect(await store.claim('k', 'fp-b', LONG)).toEqual({ state: 'mismatch' });
        expect(await store.claim('k', 'fp-a', LONG)).toEqual({
          state: 'completed',
          record: record('1'),
        });
      }),
    );

    it(
      'treats a missing fingerprint as the empty one',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', undefined, LONG));
        expect((await store.claim('k', '', LONG)).state).toBe('in-progress');
        expect(await store.complete('k', token, record('1'), LONG)).toBe(true);
        expect((await store.claim('k', undefined, LONG)).state).toBe('completed');
      }),
    );

    it(
      'refuses to complete with a wrong token and stores nothing',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.complete('k', `${token}-not`, record('forged'), LONG)).toBe(false);
        expect(await store.complete('unknown', token, record('forged'), LONG)).toBe(false);
        expect((await store.claim('k', 'fp', LONG)).state).toBe('in-progress');
        expect(await store.get('unknown')).toBeUndefined();
      }),
    );

    it(
      'completes once per claim: a second completion with the same token fails',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.complete('k', token, record('first'), LONG)).toBe(true);
        expect(await store.complete('k', token, record('second'), LONG)).toBe(false);
        expect(await store.claim('k', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record('first'),
        });
      }),
    );

    it(
      'frees the key on release, so the next claim runs',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.release('k', token)).toBe(true);
        expect(await store.get('k')).toBeUndefined();
        const next = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(next).not.toBe(token);
        // The old token is dead: it can neither complete nor release the new claim.
        expect(await store.complete('k', token, record('old'), LONG)).toBe(false);
        expect(await store.release('k', token)).toBe(false);
        expect((await store.claim('k', 'fp', LONG)).state).toBe('in-progress');
      }),
    );

    it(
      'ignores a release with a wrong token and a release after completion',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.release('k', `${token}-not`)).toBe(false);
        expect((await store.claim('k', 'fp', LONG)).state).toBe('in-progress');
        expect(await store.complete('k', token, record('v'), LONG)).toBe(true);
        expect(await store.release('k', token)).toBe(false);
        expect(await store.claim('k', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record('v'),
        });
      }),
    );

    it(
      'lets another caller claim once the lock expires',
      withStore(async (store) => {
        const first = tokenOf(expect, await store.claim('k', 'fp', short));
        await advance(short / 2);
        expect((await store.claim('k', 'fp', short)).state).toBe('in-progress');
        await advance(short);
        const second = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(second).not.toBe(first);
      }),
    );

    it(
      'fences: a holder whose lock expired cannot overwrite the caller who claimed after it',
      withStore(async (store) => {
        const late = tokenOf(expect, await store.claim('k', 'fp', short));
        await advance(short * 1.5);
        const winner = tokenOf(expect, await store.claim('k', 'fp', LONG));
        // The expired holder finishes while the new one still runs…
        expect(await store.complete('k', late, record('late'), LONG)).toBe(false);
        expect(await store.release('k', late)).toBe(false);
        expect((await store.claim('k', 'fp', LONG)).state).toBe('in-progress');
        // …and after the new one completed.
        expect(await store.complete('k', winner, record('winner'), LONG)).toBe(true);
        expect(await store.complete('k', late, record('late'), LONG)).toBe(false);
        expect(await store.claim('k', 'fp', LONG)).toEqual({
          state: 'completed',
          record: record('winner'),
        });
      }),
    );

    it(
      'refuses a completion after the lock expired even if nobody claimed since',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', short));
        await advance(short * 1.5);
        expect(await store.complete('k', token, record('late'), LONG)).toBe(false);
        tokenOf(expect, await store.claim('k', 'fp', LONG));
      }),
    );

    it(
      'forgets a completed record after its ttl',
      withStore(async (store) => {
        const token = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.complete('k', token, record('v'), short)).toBe(true);
        await advance(short / 2);
        expect((await store.claim('k', 'fp', LONG)).state).toBe('completed');
        await advance(short);
        expect(await store.get('k')).toBeUndefined();
        // The fingerprint is forgotten with the record: a new payload may use the key.
        tokenOf(expect, await store.claim('k', 'other', LONG));
      }),
    );

    it(
      'keeps keys of different scopes and of no scope apart',
      withStore(async (store) => {
        const a = tokenOf(expect, await store.claim('k', 'fp', LONG, 'tenant-a'));
        const b = tokenOf(expect, await store.claim('k', 'fp-other', LONG, 'tenant-b'));
        const none = tokenOf(expect, await store.claim('k', 'fp', LONG));
        expect(await store.complete('k', a, record('a'), LONG, 'tenant-a')).toBe(true);
        expect(await store.complete('k', a, record('a'), LONG, 'tenant-b')).toBe(false);
        expect((await store.claim('k', 'fp-other', LONG, 'tenant-b')).state).toBe('in-progress');
        expect((await store.claim('k', 'fp', LONG)).state).toBe('in-progress');
        expect(await store.complete('k', b, record('b'), LONG, 'tenant-b')).toBe(true);
        expect(await store.release('k', none)).toBe(true);
        expect(await store.get('k', 'tenant-a')).toEqual({
          state: 'completed',
          fingerprint: 'fp',
          record: record('a'),
        });
        expect(await store.get('k', 'tenant-b')).toEqual({
          state: 'completed',
          fingerprint: 'fp-other',
          record: record('b'),
        });
        expect(await store.get('k')).toBeUndefined();
      }),
    );

    it(
      'never confuses scope and key boundaries',
      withStore(async (store) => {
        tokenOf(expect, await store.claim('b:c', 'fp', LONG, 'a'));
        tokenOf(expect, await store.claim('c', 'fp', LONG, 'a:b'));
        tokenOf(expect, await store.claim('a:b:c', 'fp', LONG));
        tokenOf(expect, await store.claim(':b:c', 'fp', LONG, 'a'));
        tokenOf(expect, await store.claim('{x}', 'fp', LONG, '{a}'));
        tokenOf(expect, await store.claim('x', 'fp', LONG, '{a}'));
      }),
    );

    it(
      'accepts keys with unusual characters and long keys',
      withStore(async (store) => {
        const keys = ['with space', 'brace}{', 'ünï©ødé 😀', 'x'.repeat(2000), '', '\n\t'];
        for (const key of keys) {
          const token = tokenOf(expect, await store.claim(key, 'fp', LONG));
          expect(await store.complete(key, token, record(JSON.stringify(key)), LONG)).toBe(true);
        }
        for (const key of keys) {
          expect(await store.claim(key, 'fp', LONG)).toEqual({
            state: 'completed',
            record: record(JSON.stringify(key)),
          });
        }
      }),
    );

    it(
      'keeps stores with different prefixes apart',
      withStore(async (store, prefix) => {
        const other = await makeStore({ prefix: `${prefix}:other` });
        try {
          const t = tokenOf(expect, await store.claim('k', 'fp', LONG));
          tokenOf(expect, await other.claim('k', 'fp-2', LONG));
          expect(await other.complete('k', t, record('x'), LONG)).toBe(false);
          expect(await store.complete('k', t, record('mine'), LONG)).toBe(true);
          expect((await other.claim('k', 'fp-2', LONG)).state).toBe('in-progress');
        } finally {
          await options.cleanup?.(other);
        }
      }),
    );

    it(
      'grants exactly one of many concurrent claims of one key',
      withStore(async (store) => {
        const results = await Promise.all(
          Array.from({ length: 50 }, () => store.claim('hot', 'fp', LONG)),
        );
        expect(results.filter((r) => r.state === 'claimed')).toHaveLength(1);
        expect(results.filter((r) => r.state === 'in-progress')).toHaveLength(49);
      }),
    );

    it(
      'hands out a distinct token for every claim',
      withStore(async (store) => {
        const tokens = new Set<string>();
        for (let i = 0; i < 20; i++)
          tokens.add(tokenOf(expect, await store.claim(`k${i}`, 'fp', LONG)));
        expect(tokens.size).toBe(20);
      }),
    );

    it(
      'notifies watchers of a completion and of a release (stores that offer watch)',
      withStore(async (store) => {
        if (store.watch === undefined) return;
        const t = tokenOf(expect, await store.claim('k', 'fp', LONG));
        let calls = 0;
        const w = store.watch('k', undefined, () => calls++);
        await store.complete('k', t, record('v'), LONG);
        expect(calls).toBe(1);
        w.dispose();
        const t2 = tokenOf(expect, await store.claim('r', 'fp', LONG));
        let released = 0;
        const w2 = store.watch('r', undefined, () => released++);
        const w3 = store.watch('r', undefined, () => released++);
        w3.dispose();
        await store.release('r', t2);
        expect(released).toBe(1);
        w2.dispose();
      }),
    );
  });
}
