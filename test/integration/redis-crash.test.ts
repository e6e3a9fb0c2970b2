import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IdempotencyInProgressError } from '../../src/index.js';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { RedisStore } from '../../src/redis.js';
import { describeRedis, redisPort } from '../setup/redis.js';
import { connectIoredis, connectNodeRedis, type NodeRedis } from '../support/redis-clients.js';
import { spawnWorker, type Worker } from './fixtures/spawn-worker.js';

describeRedis('idempotency on Redis when a holder crashes or overruns', () => {
  let io: Redis;
  let nr: NodeRedis;
  const workers: Worker[] = [];

  beforeAll(async () => {
    io = await connectIoredis(redisPort());
    nr = await connectNodeRedis(redisPort());
  });

  afterAll(() => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    io?.disconnect();
    nr?.destroy();
  });

  it('lets another caller claim after a SIGKILLed holder’s lockTtl; every caller sees one result', async () => {
    const prefix = `crash:${Date.now()}`;
    const key = 'order-1';
    const lockTtl = 600;
    const holder = spawnWorker({
      mode: 'hold',
      port: redisPort(),
      prefix,
      client: 'ioredis',
      keys: [key],
      lockTtl,
    });
    workers.push(holder);
    await holder.waitFor('ready', 15_000);
    holder.go();
    await holder.waitFor('holding', 5000);
    const exited = new Promise((resolve) => holder.child.once('exit', resolve));
    holder.child.kill('SIGKILL');
    await exited;

    const ioStore = new RedisStore({ client: io, prefix });
    const nrStore = new RedisStore({ client: nr, prefix });
    let runs = 0;
    const fn = async () => {
      await io.incr(`${prefix}:count:${key}`);
      return { by: `taker-${++runs}` };
    };
    // While the dead holder's lock lives, a duplicate is told the key is in progress.
    await expect(
      idempotency({ store: ioStore, lockTtl }).execute(fn, { idempotencyKey: key }),
    ).rejects.toBeInstanceOf(IdempotencyInProgressError);
    const waiting = [ioStore, nrStore].flatMap((store) =>
      Array.from({ length: 10 }, () =>
        idempotency({ store, lockTtl: 5000, onInProgress: 'wait' }).execute(fn, {
          idempotencyKey: key,
          budget: 5000,
        }),
      ),
    );
    const results = await Promise.all(waiting);
    expect(new Set(results.map((r) => r.by))).toEqual(new Set(['taker-1']));
    expect(runs).toBe(1);
    // The dead holder's run and the one takeover.
    expect(await io.get(`${prefix}:count:${key}`)).toBe('2');
    expect(await idempotency({ store: nrStore }).execute(fn, { idempotencyKey: key })).toEqual({
      by: 'taker-1',
    });
  }, 20_000);

  it('does not let a holder that overran its lock overwrite the result of the caller who took over', async () => {
    const prefix = `overrun:${Date.now()}`;
    const key = 'order-2';
    const late = spawnWorker({
      mode: 'overrun',
      port: redisPort(),
      prefix,
      client: 'node-redis',
      keys: [key],
      lockTtl: 300,
      runMs: 1200,
    });
    workers.push(late);
    await late.waitFor('ready', 15_000);
    late.go();
    await late.waitFor('holding', 5000);

    const store = new RedisStore({ client: io, prefix });
    const winner = await idempotency({ store, onInProgress: 'wait', lockTtl: 5000 }).execute(
      async () => {
        await io.incr(`${prefix}:count:${key}`);
        return { by: 'winner' };
      },
      { idempotencyKey: key, budget: 3000 },
    );
    expect(winner).toEqual({ by: 'winner' });
    // The late holder finishes after the takeover: it is answered with the stored outcome.
    const [lateResult] = await late.results(5000);
    expect(lateResult).toEqual({ key, value: { by: 'winner' } });
    expect(await store.get(key)).toMatchObject({
      state: 'completed',
      record: { body: '{"by":"winner"}' },
    });
    expect(await io.get(`${prefix}:count:${key}`)).toBe('2');
  }, 20_000);
});
