import type { ChildProcess } from 'node:child_process';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  BulkheadRejectedError,
  LimitStoreError,
  RateLimitError,
  bulkhead,
  rateLimit,
  type Policy,
  type StoreErrorMode,
} from '../../src/index.js';
import { RedisConcurrencyStore, RedisRateLimitStore } from '../../src/redis.js';
import { describeRedis } from '../setup/redis.js';
import { freePort } from '../support/net.js';
import { eventually, sleep, timed } from '../support/real-time.js';
import { connectIoredis } from '../support/redis-clients.js';
import { killRedisServer, startRedisServer } from '../support/redis-server.js';

/**
 * The limit stores while their redis-server is frozen (SIGSTOP) and while it is dead
 * (SIGKILL), on a server of this file's own so that no other test is disturbed. Every call
 * must end within the store timeout the way `onStoreError` says, and the limits must hold
 * again, fleet-wide, once Redis is back.
 */

const TIMEOUT = 200;

describeRedis('Redis limit stores while Redis is frozen or dead', () => {
  let port: number;
  let server: ChildProcess | undefined;
  let io: Redis;

  async function startServer(): Promise<void> {
    server = await startRedisServer(port);
  }

  const killServer = () => killRedisServer(server);

  beforeAll(async () => {
    port = await freePort();
    await startServer();
    io = await connectIoredis(port, { retryEvery: 50 });
  });

  afterAll(async () => {
    io?.disconnect();
    await killServer();
  });

  /** One rate limit (1 per 10 s, so a second call is refused) and one fleet bulkhead of 1 per mode. */
  function limits(prefix: string) {
    const modes: StoreErrorMode[] = ['fail', 'allow', 'local'];
    return modes.map((mode) => {
      const rates = new RedisRateLimitStore({
        client: io,
        prefix,
        timeout: TIMEOUT,
        onStoreError: mode,
        fleetSize: 2,
      });
      const leases = new RedisConcurrencyStore({
        client: io,
        prefix,
        timeout: TIMEOUT,
        onStoreError: mode,
        fleetSize: 2,
        leaseTtl: 2000,
      });
      return {
        mode,
        rates,
        leases,
        limiter: rateLimit({ name: `rate-${mode}`, rate: 2, per: '10s', store: rates }) as Policy,
        fleet: bulkhead({ name: `conc-${mode}`, maxConcurrent: 2, store: leases }) as Policy,
      };
    });
  }

  /** What each mode must do while Redis does not answer: within the store timeout, never hanging. */
  async function expectPerMode(all: ReturnType<typeof limits>): Promise<void> {
    for (const { mode, limiter, fleet } of all) {
      const first = await timed(() => limiter.execute(() => 'rate'));
      const second = await timed(() => limiter.execute(() => 'rate'));
      let release!: () => void;
      const held = fleet
        .execute(() => new Promise<string>((r) => (release = () => r('held'))))
        .catch((error: unknown) => error);
      await sleep(TIMEOUT + 50);
      const blocked = await timed(() => fleet.execute(() => 'conc'));
      for (const o of [first, second, blocked]) expect(o.ms).toBeLessThan(TIMEOUT + 300);
      if (mode === 'fail') {
        for (const o of [first, second, blocked]) expect(o.error).toBeInstanceOf(LimitStoreError);
        expect(await held).toBeInstanceOf(LimitStoreError);
      } else if (mode === 'allow') {
        expect([first.value, second.value, blocked.value]).toEqual(['rate', 'rate', 'conc']);
        release();
        expect(await held).toBe('held');
      } else {
        // This process's share of each limit (half of it) holds locally.
        expect(first.value).toBe('rate');
        expect(second.error).toBeInstanceOf(RateLimitError);
        expect(blocked.error).toBeInstanceOf(BulkheadRejectedError);
        release();
        expect(await held).toBe('held');
      }
    }
  }

  /** Once Redis answers again, each limit is enforced through Redis, across two "processes". */
  async function expectLimitsHoldAgain(prefix: string): Promise<void> {
    await eventually(() => io.ping(), 5000);
    const errorsBefore = new RedisRateLimitStore({ client: io, prefix }).storeErrors;
    const twin = () =>
      new RedisRateLimitStore({
        client: io,
        prefix: `${prefix}:after`,
        timeout: 2000,
        onStoreError: 'fail',
      });
    const a = rateLimit({ name: 'after', rate: 1, per: '10s', store: twin() });
    const b = rateLimit({ name: 'after', rate: 1, per: '10s', store: twin() });
    expect(await eventually(() => a.execute(() => 'once'), 3000)).toBe('once');
    await expect(b.execute(() => 'twice')).rejects.toBeInstanceOf(RateLimitError);
    const leases = () =>
      new RedisConcurrencyStore({
        client: io,
        prefix: `${prefix}:after`,
        timeout: 2000,
        onStoreError: 'fail',
      });
    const f1 = bulkhead({ name: 'after', maxConcurrent: 1, store: leases() });
    const f2 = bulkhead({ name: 'after', maxConcurrent: 1, store: leases() });
    let release!: () => void;
    const held = f1.execute(() => new Promise<void>((r) => (release = r)));
    await sleep(50);
    expect(f1.inFlight).toBe(1);
    await expect(f2.execute(() => 'x')).rejects.toBeInstanceOf(BulkheadRejectedError);
    release();
    await held;
    expect(errorsBefore).toBe(0);
  }

  it('SIGSTOP: calls fail, pass or fall back per onStoreError within the timeout; limits hold again after SIGCONT', async () => {
    const prefix = `stop:${Date.now()}`;
    const all = limits(prefix);
    process.kill(server!.pid!, 'SIGSTOP');
    try {
      await expectPerMode(all);
    } finally {
      process.kill(server!.pid!, 'SIGCONT');
    }
    await expectLimitsHoldAgain(prefix);
    // Acquires that reached Redis after their callers gave up left no lease behind.
    await eventually(async () => {
      for (const { leases } of all)
        expect(await io.zcard(leases.redisKey(`conc-${leases.onStoreError}`))).toBe(0);
    }, 3000);
  }, 20_000);

  it('SIGKILL: calls fail, pass or fall back per onStoreError within the timeout; limits hold again after a restart', async () => {
    const prefix = `kill:${Date.now()}`;
    const all = limits(prefix);
    await killServer();
    await expectPerMode(all);
    await startServer();
    // A fresh server has no scripts cached: the stores reload them (NOSCRIPT, then EVAL).
    await expectLimitsHoldAgain(prefix);
  }, 20_000);
});
