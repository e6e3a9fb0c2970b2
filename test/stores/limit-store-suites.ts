import { expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  RateLimitError,
  bulkhead,
  rateLimit,
  type GcraLimit,
} from '../../src/index.js';
import { gcraLimit } from '../../src/policies/rate-limit/gcra.js';
import {
  RedisConcurrencyStore,
  RedisRateLimitStore,
  type RedisClientLike,
} from '../../src/redis.js';
import { counted } from '../support/counted-client.js';

/**
 * The behaviour every Redis limit store must show, on any client and topology (one server,
 * or a Cluster through ioredis's Cluster client): called inside a `describe`.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Retries `probe` until it returns true, for at most `ms` (a release is fire-and-forget). */
async function eventually(probe: () => Promise<boolean>, ms = 2000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > until) return false;
    await sleep(10);
  }
}
let unique = 0;
const prefixOf = (what: string) => `${what}:${process.pid}:${Date.now()}:${++unique}`;

export interface SuiteClients {
  /** The client the stores use (a plain client or a Cluster client). */
  client: () => RedisClientLike;
  /** PTTL of a key, for checking expiries. */
  pttl: (key: string) => Promise<number>;
  /** Drops the scripts Redis has cached (on every node). */
  flushScripts: () => Promise<void>;
}

export function rateLimitStoreSuite(c: SuiteClients): void {
  const limit: GcraLimit = gcraLimit(10, 1000, 2);

  it('grants rate + burst at once, then refuses with the time to the next slot', async () => {
    const store = new RedisRateLimitStore({ client: c.client(), prefix: prefixOf('rate') });
    const grants = [];
    const started = performance.now();
    for (let i = 0; i < 4; i++) grants.push(await store.acquire('k', limit, 0, 0));
    const took = performance.now() - started;
    expect(grants.slice(0, 3).map((g) => g.ok)).toEqual([true, true, true]);
    expect(grants[3]!.ok).toBe(false);
    // Three slots taken: the next is one interval (100 ms) minus the time the calls took
    // (on Redis's clock, which cannot have moved more than ours did around the calls; a
    // busy machine can take tens of ms for four round trips).
    expect(grants[3]!.retryAfterMs).toBeGreaterThanOrEqual(100 - took - 2);
    expect(grants[3]!.retryAfterMs).toBeLessThanOrEqual(100);
  });

  it('reserves future slots one interval apart in server time, within the longest wait', async () => {
    const store = new RedisRateLimitStore({ client: c.client(), prefix: prefixOf('rate') });
    // One slot a second: the round trips of a busy machine (tens of ms) stay far below
    // the margins asserted here.
    const steady = gcraLimit(1, 1000, 0);
    const a = await store.acquire('k', steady, 10_000, 0);
    const b = await store.acquire('k', steady, 10_000, 0);
    const d = await store.acquire('k', steady, 1500, 0);
    expect(a).toMatchObject({ ok: true, waitMs: 0 });
    expect(b.ok).toBe(true);
    expect(b.waitMs).toBeGreaterThan(500);
    expect(b.waitMs).toBeLessThanOrEqual(1000);
    expect(b.slotTime! - a.slotTime!).toBe(1_000_000);
    expect(d.ok).toBe(false);
    expect(d.retryAfterMs).toBeGreaterThan(1500);
  });

  it('gives back the newest reservation on cancel, and never an older one', async () => {
    const store = new RedisRateLimitStore({ client: c.client(), prefix: prefixOf('rate') });
    const steady = gcraLimit(10, 1000, 0);
    await store.acquire('k', steady, 1000, 0);
    const b = await store.acquire('k', steady, 1000, 0);
    const cc = await store.acquire('k', steady, 1000, 0);
    store.cancel(b.ok ? 'k' : 'k', steady, b); // not the newest: nothing changes
    store.cancel('k', steady, cc);
    await sleep(20);
    const d = await store.acquire('k', steady, 1000, 0);
    expect(d.slotTime).toBe(cc.slotTime);
  });

  it('keeps each limit under one hash-tagged key that expires when idle', async () => {
    const prefix = prefixOf('rate');
    const store = new RedisRateLimitStore({ client: c.client(), prefix });
    expect(store.redisKey('payments')).toBe(`{${prefix}:payments}:rate`);
    expect(new RedisConcurrencyStore({ client: c.client(), prefix }).redisKey('payments')).toBe(
      `{${prefix}:payments}:leases`,
    );
    await store.acquire('payments', gcraLimit(1, 2000, 0), 0, 0);
    const ttl = await c.pttl(store.redisKey('payments'));
    expect(ttl).toBeGreaterThan(1500);
    expect(ttl).toBeLessThanOrEqual(2002);
  });

  it('makes one round trip per acquire, and falls back to EVAL once after a script flush', async () => {
    const { client, calls } = counted(c.client() as object, /^eval/i);
    const store = new RedisRateLimitStore({
      client: client as RedisClientLike,
      prefix: prefixOf('rate'),
    });
    await store.acquire('k', limit, 0, 0);
    calls.length = 0;
    await store.acquire('k', limit, 0, 0);
    await store.acquire('k', limit, 0, 0);
    expect(calls.length).toBe(2);
    expect(calls.every((name) => /^evalsha$/i.test(name))).toBe(true);
    await c.flushScripts();
    calls.length = 0;
    await store.acquire('k2', limit, 0, 0);
    await store.acquire('k2', limit, 0, 0);
    expect(calls.map((n) => n.toLowerCase())).toEqual(['evalsha', 'eval', 'evalsha']);
  });

  it('limits two policies sharing the prefix as one, and paces a call through the store', async () => {
    const prefix = prefixOf('rate');
    // 2 per second: the second call is refused unless half a second passed (it does not).
    const a = rateLimit({
      name: 'shared',
      rate: 2,
      wait: 1000,
      store: new RedisRateLimitStore({ client: c.client(), prefix }),
    });
    const b = rateLimit({
      name: 'shared',
      rate: 2,
      store: new RedisRateLimitStore({ client: c.client(), prefix }),
    });
    const t0 = performance.now();
    expect(await a.execute(() => 'a')).toBe('a');
    await expect(b.execute(() => 'b')).rejects.toBeInstanceOf(RateLimitError);
    expect(await a.execute(() => 'paced')).toBe('paced');
    expect(performance.now() - t0).toBeGreaterThan(300);
  });
}

export function concurrencyStoreSuite(c: SuiteClients): void {
  it('grants max leases, refuses the next, and frees a slot on release', async () => {
    const store = new RedisConcurrencyStore({ client: c.client(), prefix: prefixOf('conc') });
    const grants = [];
    for (let i = 0; i < 3; i++) grants.push(await store.acquire('k', 2));
    expect(grants.map((g) => g.ok)).toEqual([true, true, false]);
    expect(grants[2]!.holders).toBe(2);
    store.release('k', grants[0]!);
    let again: Awaited<ReturnType<typeof store.acquire>> | undefined;
    expect(await eventually(async () => (again = await store.acquire('k', 2)).ok)).toBe(true);
    expect(store.leases).toBe(2);
    store.release('k', grants[1]!);
    store.release('k', again!);
  });

  it('frees a dead holder’s slot when its lease expires, and its late release frees nothing else', async () => {
    const prefix = prefixOf('conc');
    const dead = new RedisConcurrencyStore({ client: c.client(), prefix, leaseTtl: 150 });
    const alive = new RedisConcurrencyStore({ client: c.client(), prefix, leaseTtl: 5000 });
    const stale = await dead.acquire('k', 1);
    expect(stale.ok).toBe(true);
    // The holder freezes: its renewals stop.
    (dead as unknown as { stopRenewal(): void }).stopRenewal();
    (dead as unknown as { held: Map<string, unknown> }).held.clear();
    expect((await alive.acquire('k', 1)).ok).toBe(false);
    await sleep(200);
    const fresh = await alive.acquire('k', 1);
    expect(fresh.ok).toBe(true);
    // The late release names the expired lease only: the new holder keeps its slot.
    dead.release('k', stale);
    await sleep(50);
    expect((await alive.acquire('k', 1)).ok).toBe(false);
    alive.release('k', fresh);
  });

  it('renews a lease while its call runs past the lease TTL', async () => {
    const prefix = prefixOf('conc');
    const store = new RedisConcurrencyStore({ client: c.client(), prefix, leaseTtl: 300 });
    const other = new RedisConcurrencyStore({ client: c.client(), prefix, leaseTtl: 300 });
    const held = await store.acquire('k', 1);
    expect(held.ok).toBe(true);
    await sleep(800);
    expect((await other.acquire('k', 1)).ok).toBe(false);
    expect(store.leasesLost).toBe(0);
    store.release('k', held);
    let next: Awaited<ReturnType<typeof other.acquire>> | undefined;
    expect(await eventually(async () => (next = await other.acquire('k', 1)).ok)).toBe(true);
    other.release('k', next!);
    const ttl = await c.pttl(store.redisKey('k'));
    expect(ttl).toBeLessThanOrEqual(300);
  });

  it('makes a bulkhead’s maxConcurrent fleet-wide: a full fleet is a BulkheadRejectedError', async () => {
    const prefix = prefixOf('conc');
    const make = () =>
      bulkhead({
        name: 'reports',
        maxConcurrent: 2,
        store: new RedisConcurrencyStore({ client: c.client(), prefix }),
      });
    const [p1, p2] = [make(), make()];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let started = 0;
    const hold = () => {
      started++;
      return gate;
    };
    const running = [p1.execute(hold), p2.execute(hold)];
    expect(await eventually(() => Promise.resolve(started === 2))).toBe(true);
    const refused = await p1.execute(() => 'x').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BulkheadRejectedError);
    expect((refused as BulkheadRejectedError).reason).toBe('full');
    expect((refused as Error).message).toMatch(/reports: bulkhead is full fleet-wide/);
    expect(p1.inFlight).toBe(1);
    release();
    await Promise.all(running);
    expect(
      await eventually(() =>
        p2
          .execute(() => true)
          .catch((e: unknown) => {
            if (e instanceof BulkheadRejectedError) return false;
            throw e;
          }),
      ),
    ).toBe(true);
  });
}
