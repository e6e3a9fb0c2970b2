import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IdempotencyStoreError, TimeoutError } from '../../src/index.js';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { RedisStore } from '../../src/redis.js';
import { describeRedis } from '../setup/redis.js';
import { freePort } from '../support/net.js';
import { eventually, timed } from '../support/real-time.js';
import { connectIoredis, connectNodeRedis, type NodeRedis } from '../support/redis-clients.js';
import { killRedisServer, startRedisServer } from '../support/redis-server.js';

/**
 * Runs on a redis-server of its own (append-only, fsync on every write), so that pausing
 * and killing it disturbs no other test file.
 */

describeRedis('RedisStore while Redis is unreachable', () => {
  let dir: string;
  let port: number;
  let server: ChildProcess | undefined;
  let io: Redis;
  let nr: NodeRedis;
  let admin: Redis;

  async function startServer(): Promise<void> {
    server = await startRedisServer(port, { dir, appendOnly: true });
  }

  const killServer = () => killRedisServer(server);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bulwark-redis-outage-'));
    port = await freePort();
    await startServer();
    io = await connectIoredis(port, { retryEvery: 50 });
    admin = await connectIoredis(port, { retryEvery: 50 });
    nr = await connectNodeRedis(port, { retryEvery: 50 });
  });

  afterAll(async () => {
    io?.disconnect();
    admin?.disconnect();
    nr?.destroy();
    await killServer();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const clients = () =>
    [
      ['ioredis', io],
      ['node-redis', nr],
    ] as const;

  it('fails fast with an error naming the store during CLIENT PAUSE, or bypasses; none outlives its budget', async () => {
    const prefix = `pause:${Date.now()}`;
    let runs = 0;
    const fn = async () => `ran-${++runs}`;
    const stores = clients().map(
      ([name, client]) => [name, new RedisStore({ client, prefix, timeout: 300 })] as const,
    );
    for (const [, store] of stores)
      await idempotency({ store }).execute(fn, { idempotencyKey: `before-${store.name}` });
    const before = runs;

    await admin.call('CLIENT', 'PAUSE', '1500', 'ALL');
    const pausedAt = performance.now();
    const outcomes = await Promise.all(
      stores.flatMap(([name, store]) => [
        timed(() =>
          idempotency({ store }).execute(fn, { idempotencyKey: `during-${name}`, budget: 1000 }),
        ),
        timed(() =>
          idempotency({ store, onStoreError: 'bypass' }).execute(fn, {
            idempotencyKey: `bypass-${name}`,
            budget: 1000,
          }),
        ),
        // A store that would wait forever is still bounded by the call's budget.
        timed(() =>
          idempotency({
            store: new RedisStore({
              client: store === stores[0]![1] ? io : nr,
              prefix,
              timeout: Infinity,
            }),
          }).execute(fn, { idempotencyKey: `unbounded-${name}`, budget: 400 }),
        ),
      ]),
    );
    expect(performance.now() - pausedAt).toBeLessThan(1400);
    for (let i = 0; i < stores.length; i++) {
      const [failed, bypassed, unbounded] = outcomes.slice(i * 3, i * 3 + 3);
      expect(failed!.error).toBeInstanceOf(IdempotencyStoreError);
      expect((failed!.error as Error).message).toBe(
        `RedisStore(${prefix}): claim got no answer from Redis within 300 ms (is Redis reachable?)`,
      );
      expect(failed!.ms).toBeLessThan(1000);
      expect(bypassed!.error).toBeUndefined();
      expect(bypassed!.value).toMatch(/^ran-/);
      expect(unbounded!.error).toBeInstanceOf(TimeoutError);
      expect(unbounded!.ms).toBeLessThan(700);
    }
    // Only the two bypassed calls ran fn.
    expect(runs).toBe(before + 2);

    // Redis answers again: stored outcomes are all there, and the claims that reached Redis
    // after their callers gave up are freed again.
    await eventually(() => admin.ping(), 3000);
    for (const [name, store] of stores) {
      expect(
        await idempotency({ store }).execute(fn, { idempotencyKey: `before-${store.name}` }),
      ).toMatch(/^ran-[12]$/);
      await eventually(async () => expect(await store.get(`during-${name}`)).toBeUndefined(), 2000);
      await eventually(
        async () => expect(await store.get(`unbounded-${name}`)).toBeUndefined(),
        2000,
      );
      expect(
        await idempotency({ store }).execute(fn, { idempotencyKey: `during-${name}` }),
      ).toMatch(/^ran-/);
    }
  }, 15_000);

  it('survives a redis-server restart with append-only persistence: fails clearly while down, loses nothing, works again', async () => {
    const prefix = `restart:${Date.now()}`;
    let runs = 0;
    const fn = async () => ({ run: ++runs });
    const stores = clients().map(
      ([name, client]) => [name, new RedisStore({ client, prefix, timeout: 300 })] as const,
    );
    const stored = new Map<string, unknown>();
    for (const [name, store] of stores) {
      stored.set(
        name,
        await idempotency({ store }).execute(fn, { idempotencyKey: `kept-${name}` }),
      );
    }

    await killServer();
    for (const [name, store] of stores) {
      const down = await timed(() =>
        idempotency({ store }).execute(fn, { idempotencyKey: `down-${name}`, budget: 1500 }),
      );
      expect(down.error).toBeInstanceOf(IdempotencyStoreError);
      expect((down.error as IdempotencyStoreError).store).toBe(`RedisStore(${prefix})`);
      expect((down.error as Error).message).toMatch(
        new RegExp(`^RedisStore\\(${prefix}\\): claim (failed|got no answer)`),
      );
      expect(down.ms).toBeLessThan(1500);
      const bypass = await timed(() =>
        idempotency({ store, onStoreError: 'bypass' }).execute(fn, {
          idempotencyKey: `down-${name}`,
          budget: 1500,
        }),
      );
      expect(bypass.error).toBeUndefined();
      expect(bypass.ms).toBeLessThan(1500);
    }
    const runsWhileDown = runs;

    await startServer();
    // The same store objects work again once their clients reconnect: no re-creation.
    for (const [name, store] of stores) {
      await eventually(() => store.get(`kept-${name}`), 5000);
      expect(await idempotency({ store }).execute(fn, { idempotencyKey: `kept-${name}` })).toEqual(
        stored.get(name),
      );
    }
    expect(runs).toBe(runsWhileDown);
    for (const [name, store] of stores) {
      expect(await idempotency({ store }).execute(fn, { idempotencyKey: `after-${name}` })).toEqual(
        { run: runs },
      );
      expect(await idempotency({ store }).execute(fn, { idempotencyKey: `after-${name}` })).toEqual(
        { run: runs },
      );
    }
    expect(runs).toBe(runsWhileDown + 2);
  }, 15_000);
});
