import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/index.js';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { RedisStore, redisStore, type RedisClientLike } from '../../src/redis.js';
import { storeConformance } from '../../src/testing/store-conformance.js';
import { describeRedis, redisPort } from '../setup/redis.js';
import { counted } from '../support/counted-client.js';
import { connectIoredis, connectNodeRedis, type NodeRedis } from '../support/redis-clients.js';

/** A client that answers SET … NX GET like Redis 6 does. */
function oldRedis<C extends object>(client: C): C {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'set') return () => Promise.reject(new Error('ERR syntax error'));
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

describeRedis('RedisStore', () => {
  let io: Redis;
  let nr: NodeRedis;
  let nr3: NodeRedis;

  beforeAll(async () => {
    io = await connectIoredis(redisPort());
    nr = await connectNodeRedis(redisPort());
    nr3 = await connectNodeRedis(redisPort(), { resp3: true });
  });

  afterAll(async () => {
    io?.disconnect();
    nr?.destroy();
    nr3?.destroy();
  });

  storeConformance(({ prefix }) => new RedisStore({ client: io, prefix }), {
    name: 'RedisStore on ioredis passes the store conformance suite',
    shortTtl: 100,
    test: { describe, it, expect },
  });
  storeConformance(({ prefix }) => new RedisStore({ client: nr, prefix }), {
    name: 'RedisStore on node-redis passes the store conformance suite',
    shortTtl: 100,
    test: { describe, it, expect },
  });
  storeConformance(({ prefix }) => new RedisStore({ client: oldRedis(io), prefix }), {
    name: 'RedisStore with the Lua claim (Redis < 7) passes the store conformance suite',
    shortTtl: 100,
    test: { describe, it, expect },
  });

  describe('on either client', () => {
    it('works on a node-redis client speaking RESP3', async () => {
      const store = new RedisStore({ client: nr3, prefix: `resp3:${Date.now()}` });
      const r = await store.claim('k', 'fp', 5000);
      if (r.state !== 'claimed') throw new Error(r.state);
      expect(await store.complete('k', r.token, { outcome: 'value', body: '{"a":1}' }, 5000)).toBe(
        true,
      );
      expect(await store.claim('k', 'fp', 5000)).toEqual({
        state: 'completed',
        record: { outcome: 'value', body: '{"a":1}' },
      });
      expect((await store.claim('k', 'x', 5000)).state).toBe('mismatch');
    });

    it('rejects something that is not a Redis client with a ConfigError', () => {
      expect(() => new RedisStore({ client: {} as RedisClientLike })).toThrow(ConfigError);
      expect(() => new RedisStore({ client: {} as RedisClientLike })).toThrow(
        /RedisStore\.client: expected an ioredis client or a node-redis \(v4\+\) client/,
      );
      expect(() => new RedisStore({ client: io, prefix: '' })).toThrow(/RedisStore\.prefix/);
      expect(() => new RedisStore({ client: io, timeout: -5 })).toThrow(/RedisStore\.timeout/);
    });

    it('names itself after its prefix', () => {
      expect(redisStore({ client: io }).name).toBe('RedisStore(bulwark:idem)');
      expect(redisStore({ client: nr, prefix: 'pay' }).name).toBe('RedisStore(pay)');
    });

    it('keeps each entry under one hash-tagged key with a Redis-side expiry', async () => {
      const prefix = `tag:${Date.now()}`;
      const store = new RedisStore({ client: io, prefix });
      expect(store.redisKey('order-1')).toBe(`{${prefix}::order-1}`);
      expect(store.redisKey('order-1', 'tenant:a')).toBe(`{${prefix}:tenant%3Aa:order-1}`);
      const r = await store.claim('order-1', 'fp', 3000);
      if (r.state !== 'claimed') throw new Error(r.state);
      const lockTtl = await io.pttl(store.redisKey('order-1'));
      expect(lockTtl).toBeGreaterThan(2000);
      expect(lockTtl).toBeLessThanOrEqual(3000);
      await store.complete('order-1', r.token, { outcome: 'value', body: '1' }, 60_000);
      const ttl = await io.pttl(store.redisKey('order-1'));
      expect(ttl).toBeGreaterThan(59_000);
      expect(await io.keys(`{${prefix}*`)).toEqual([store.redisKey('order-1')]);
    });

    for (const kind of ['ioredis', 'node-redis'] as const) {
      const sha = kind === 'ioredis' ? 'evalsha' : 'evalSha';

      it(`makes exactly one round trip per operation (${kind})`, async () => {
        const { client, calls } = counted(kind === 'ioredis' ? io : nr);
        const store = new RedisStore({
          client: client as RedisClientLike,
          prefix: `rt:${kind}:${Date.now()}`,
        });
        // Warm-up: the first use of each script after a SCRIPT FLUSH loads it (EVAL).
        const w = await store.claim('warm', 'fp', 1000);
        if (w.state !== 'claimed') throw new Error(w.state);
        await store.complete('warm', w.token, { outcome: 'value', body: '1' }, 1000);
        await store.release('warm', w.token);
        await store.get('warm');
        calls.length = 0;
        const r = await store.claim('k', 'fp', 5000);
        if (r.state !== 'claimed') throw new Error(r.state);
        await store.claim('k', 'fp', 5000);
        await store.complete('k', r.token, { outcome: 'value', body: '1' }, 5000);
        await store.claim('k', 'fp', 5000);
        await store.release('k', r.token);
        await store.get('k');
        // Claims are the native SET … NX GET; the rest are scripts.
        expect(calls).toEqual(['set', 'set', sha, 'set', sha, sha]);
      });

      it(`falls back to EVAL once when Redis lost its script cache (${kind})`, async () => {
        const { client, calls } = counted(kind === 'ioredis' ? io : nr);
        const store = new RedisStore({
          client: client as RedisClientLike,
          prefix: `noscript:${kind}:${Date.now()}`,
        });
        await store.get('a');
        await io.script('FLUSH');
        calls.length = 0;
        expect(await store.get('b')).toBeUndefined();
        expect(await store.get('c')).toBeUndefined();
        expect(calls).toEqual([sha, 'eval', sha]);
      });

      it(`claims with a Lua script on a Redis older than 7.0 (${kind})`, async () => {
        const { client, calls } = counted(oldRedis(kind === 'ioredis' ? io : nr));
        const store = new RedisStore({
          client: client as RedisClientLike,
          prefix: `old:${kind}:${Date.now()}`,
        });
        const r = await store.claim('k', 'fp', 5000);
        expect(r.state).toBe('claimed');
        const again = await store.claim('k', 'fp', 5000);
        expect(again.state === 'in-progress' && again.lockRemaining).toBeGreaterThan(4000);
        // One refused SET, then scripts only.
        expect(calls.filter((c) => c === 'set')).toEqual(['set']);
      });
    }

    it('lets an ioredis process and a node-redis process share keys', async () => {
      const prefix = `mixed:${Date.now()}`;
      const a = new RedisStore({ client: io, prefix });
      const b = new RedisStore({ client: nr, prefix });
      const r = await a.claim('k', 'fp', 5000);
      expect((await b.claim('k', 'fp', 5000)).state).toBe('in-progress');
      if (r.state !== 'claimed') throw new Error(r.state);
      expect(await a.complete('k', r.token, { outcome: 'error', body: '{"m":"x"}' }, 5000)).toBe(
        true,
      );
      expect(await b.get('k')).toEqual({
        state: 'completed',
        fingerprint: 'fp',
        record: { outcome: 'error', body: '{"m":"x"}' },
      });
    });

    it('runs the idempotency policy end to end on both clients', async () => {
      const prefix = `policy:${Date.now()}`;
      let runs = 0;
      const viaIo = idempotency({ store: new RedisStore({ client: io, prefix }) });
      const viaNr = idempotency({ store: new RedisStore({ client: nr, prefix }) });
      const fn = () => ({ id: ++runs, items: ['a', 'b'] });
      const first = await viaIo.execute(fn, { idempotencyKey: 'order-9' });
      const second = await viaNr.execute(fn, { idempotencyKey: 'order-9' });
      expect(second).toEqual(first);
      expect(runs).toBe(1);
    });
  });
});
