import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, LimitStoreError, rateLimit } from '../../src/index.js';
import { gcraLimit } from '../../src/policies/rate-limit/gcra.js';
import {
  RedisConcurrencyStore,
  RedisRateLimitStore,
  type RedisClientLike,
} from '../../src/redis.js';
import { describeRedis, redisPort } from '../setup/redis.js';
import { connectIoredis, connectNodeRedis, type NodeRedis } from '../support/redis-clients.js';
import {
  concurrencyStoreSuite,
  rateLimitStoreSuite,
  type SuiteClients,
} from './limit-store-suites.js';

describeRedis('Redis limit stores', () => {
  let io: Redis;
  let nr: NodeRedis;

  beforeAll(async () => {
    io = await connectIoredis(redisPort());
    nr = await connectNodeRedis(redisPort());
  });

  afterAll(() => {
    io?.disconnect();
    nr?.destroy();
  });

  const clients = (which: () => RedisClientLike): SuiteClients => ({
    client: which,
    pttl: (key) => io.pttl(key),
    flushScripts: async () => {
      await io.script('FLUSH');
    },
  });

  describe('RedisRateLimitStore on ioredis', () => rateLimitStoreSuite(clients(() => io)));
  describe('RedisRateLimitStore on node-redis', () => rateLimitStoreSuite(clients(() => nr)));
  describe('RedisConcurrencyStore on ioredis', () => concurrencyStoreSuite(clients(() => io)));
  describe('RedisConcurrencyStore on node-redis', () => concurrencyStoreSuite(clients(() => nr)));

  describe('options', () => {
    it('rejects bad options with a ConfigError naming each path', () => {
      expect(() => new RedisRateLimitStore({ client: {} as RedisClientLike })).toThrow(
        /RedisRateLimitStore\.client: expected an ioredis client or a node-redis/,
      );
      expect(() => new RedisRateLimitStore({ client: io, onStoreError: 'maybe' as never })).toThrow(
        "RedisRateLimitStore.onStoreError: expected 'fail' | 'allow' | 'local'",
      );
      expect(() => new RedisConcurrencyStore({ client: io, leaseTtl: 5 })).toThrow(
        /RedisConcurrencyStore\.leaseTtl/,
      );
      expect(() => new RedisConcurrencyStore({ client: io, fleetSize: 0 })).toThrow(ConfigError);
      expect(new RedisRateLimitStore({ client: io }).onStoreError).toBe('local');
      expect(new RedisConcurrencyStore({ client: io }).leaseTtl).toBe(30_000);
    });

    it('fails closed with a LimitStoreError when told to and Redis errs', async () => {
      const broken = {
        evalsha: () =>
          Promise.reject(new Error("READONLY You can't write against a read only replica.")),
        eval: () => Promise.reject(new Error('unreachable')),
      } as unknown as RedisClientLike;
      const store = new RedisRateLimitStore({ client: broken, onStoreError: 'fail' });
      const err = await Promise.resolve(store.acquire('k', gcraLimit(1, 1000, 0), 0, 0)).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LimitStoreError);
      expect((err as LimitStoreError).code).toBe('ERR_LIMIT_STORE');
      expect((err as Error).message).toMatch(
        /^RedisRateLimitStore\(bulwark:rate\): rate acquire failed: READONLY/,
      );
      const limiter = rateLimit({
        rate: 10,
        store: new RedisRateLimitStore({ client: broken, onStoreError: 'local', fleetSize: 5 }),
      });
      // Its share of 10/s is 2/s: one call now, the next refused.
      expect(await limiter.execute(() => 1)).toBe(1);
      await expect(limiter.execute(() => 2)).rejects.toMatchObject({ code: 'ERR_RATE_LIMITED' });
    });
  });
});
