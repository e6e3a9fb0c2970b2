import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gcraLimit } from '../../src/policies/rate-limit/gcra.js';
import {
  RedisConcurrencyStore,
  RedisRateLimitStore,
  RedisStore,
  type RedisClientLike,
} from '../../src/redis.js';
import { storeConformance } from '../../src/testing/store-conformance.js';
import { startRedisCluster, type RedisCluster } from '../setup/redis-cluster.js';
import { describeRedis } from '../setup/redis.js';
import {
  concurrencyStoreSuite,
  rateLimitStoreSuite,
  type SuiteClients,
} from '../stores/limit-store-suites.js';

/**
 * Every Redis-backed store on a real three-master Redis Cluster, through ioredis's Cluster
 * client: the scripts' keys are hash-tagged, so each script touches one slot and the client
 * routes it to that slot's node; a key outside the tag would fail with CROSSSLOT.
 */
describeRedis('Redis stores on a three-node Redis Cluster', () => {
  let cluster: RedisCluster;
  let client: Cluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    client = new Cluster(
      cluster.ports.map((port) => ({ host: '127.0.0.1', port })),
      { lazyConnect: true, redisOptions: { connectTimeout: 2000 } },
    );
    await client.connect();
  }, 40_000);

  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  const clients: SuiteClients = {
    client: () => client as unknown as RedisClientLike,
    pttl: (key) => client.pttl(key),
    flushScripts: async () => {
      await Promise.all(client.nodes('master').map((node) => node.script('FLUSH')));
    },
  };

  storeConformance(
    ({ prefix }) => new RedisStore({ client: client as unknown as RedisClientLike, prefix }),
    {
      name: 'RedisStore on a Cluster passes the idempotency store conformance suite',
      shortTtl: 100,
      test: { describe, it, expect },
    },
  );
  describe('RedisRateLimitStore on a Cluster', () => rateLimitStoreSuite(clients));
  describe('RedisConcurrencyStore on a Cluster', () => concurrencyStoreSuite(clients));

  it('spreads limits over every master, each limit’s keys in one slot', async () => {
    const prefix = `spread:${Date.now()}`;
    const rates = new RedisRateLimitStore({ client: client as unknown as RedisClientLike, prefix });
    const leases = new RedisConcurrencyStore({
      client: client as unknown as RedisClientLike,
      prefix,
    });
    const names = Array.from({ length: 24 }, (_, i) => `dep-${i}`);
    for (const name of names) {
      expect((await rates.acquire(name, gcraLimit(5, 1000, 0), 0, 0)).ok).toBe(true);
      const grant = await leases.acquire(`${name}-c`, 1);
      expect(grant.ok).toBe(true);
      leases.release(`${name}-c`, grant);
    }
    const slots = new Set<number>();
    for (const name of names)
      slots.add(Number(await client.cluster('KEYSLOT', rates.redisKey(name))));
    const owners = new Set<string>();
    for (const node of client.nodes('master')) {
      const keys = await node.keys(`{${prefix}:*`);
      if (keys.length > 0) owners.add(`${node.options.port}`);
    }
    expect(slots.size).toBeGreaterThan(3);
    expect(owners.size).toBe(3);
  });
});
