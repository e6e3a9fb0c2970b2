import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import {
  messageHandler,
  streamConsumer,
  type DeadLetter,
  type StreamConsumer,
  type StreamMessage,
} from '../../src/queue.js';
import { describeRedis, redisPort } from '../setup/redis.js';

/** The same message handler on a second engine: Redis Streams consumer groups, via ioredis. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let serial = 0;
const cleanup: Array<() => Promise<unknown> | void> = [];

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function client(): Redis {
  const io = new Redis({ host: '127.0.0.1', port: redisPort() });
  cleanup.push(() => io.disconnect());
  return io;
}

function names(name: string) {
  const stream = `s${process.pid}-${Date.now()}-${serial++}-${name}`;
  return { stream, group: 'g', deadLetterStream: `${stream}:dead` };
}

function run(consumer: StreamConsumer): void {
  void consumer.start();
  cleanup.push(() => consumer.stop());
}

async function until(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

async function deadLetters(io: Redis, stream: string): Promise<Array<DeadLetter<unknown>>> {
  const entries = await io.xrange(stream, '-', '+');
  return entries.map(([, fields]) =>
    JSON.parse(fields[fields.indexOf('bulwark-dead-letter') + 1]!),
  );
}

describeRedis('streamConsumer on a real redis-server', () => {
  it('processes, retries up to maxDeliveries and dead-letters poison at once', async () => {
    const io = client();
    const { stream, group, deadLetterStream } = names('basic');
    const runs = new Map<string, number>();
    const handler = messageHandler(
      dependency('streams', { retry: false }),
      async (msg: StreamMessage) => {
        runs.set(msg.fields.kind!, (runs.get(msg.fields.kind!) ?? 0) + 1);
        if (msg.fields.kind === 'poison')
          throw Object.assign(new Error('HTTP 400'), { status: 400 });
        if (msg.fields.kind === 'flaky')
          throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
        return msg.fields.kind;
      },
      { maxDeliveries: 3, backoff: 10 },
    );
    run(
      streamConsumer(handler, {
        client: client(),
        stream,
        group,
        consumer: 'c1',
        deadLetterStream,
        block: 50,
      }),
    );
    const okId = await io.xadd(stream, '*', 'kind', 'ok');
    const poisonId = await io.xadd(stream, '*', 'kind', 'poison');
    const flakyId = await io.xadd(stream, '*', 'kind', 'flaky');
    await until(async () => (await io.xlen(deadLetterStream)) === 2, 5000, 'two dead letters');
    const letters = await deadLetters(io, deadLetterStream);
    const poison = letters.find((l) => l.source.id === poisonId)!;
    const flaky = letters.find((l) => l.source.id === flakyId)!;
    expect(poison).toMatchObject({
      reason: 'not-retryable',
      deliveries: 1,
      error: { status: 400 },
    });
    expect(flaky).toMatchObject({ reason: 'max-deliveries', deliveries: 3 });
    expect(flaky.error.code).toBe('ECONNRESET');
    expect(Object.fromEntries(runs)).toEqual({ ok: 1, poison: 1, flaky: 3 });
    // Every entry was acknowledged; none waits to be redelivered.
    await until(
      async () => ((await io.xpending(stream, group)) as [number])[0] === 0,
      2000,
      'acked',
    );
    expect(await io.zcard(`${stream}:bulwark:delayed`)).toBe(0);
    expect(okId).toBeTruthy();
  });

  it('defers without counting deliveries and reads nothing while the breaker is open', async () => {
    const io = client();
    const { stream, group, deadLetterStream } = names('outage');
    let down = true;
    let callsWhileDown = 0;
    const done = new Set<string>();
    const dep = dependency('streams-outage', {
      retry: false,
      circuitBreaker: {
        consecutiveFailures: 2,
        halfOpenAfter: 100,
        whileOpen: { wait: true, maxWait: 1000 },
      },
    });
    const handler = messageHandler(
      dep,
      async (msg: StreamMessage) => {
        if (down) {
          callsWhileDown++;
          throw Object.assign(new Error('HTTP 503'), { status: 503 });
        }
        done.add(msg.id);
      },
      { maxDeliveries: 2, backoff: 10 },
    );
    run(
      streamConsumer(handler, {
        client: client(),
        stream,
        group,
        consumer: 'c1',
        deadLetterStream,
        count: 5,
        block: 50,
      }),
    );
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await io.xadd(stream, '*', 'n', String(i)))!);
    await sleep(1000);
    expect(await io.xlen(deadLetterStream)).toBe(0);
    // A first batch trips the breaker; then one trial per open period.
    expect(callsWhileDown).toBeLessThanOrEqual(5 + Math.ceil(1000 / 100) + 1);
    down = false;
    await until(() => done.size === 20, 5000, 'all 20 processed');
    expect([...done].sort()).toEqual([...ids].sort());
    expect(await io.xlen(deadLetterStream)).toBe(0);
  });

  it('takes over entries a crashed consumer left unacknowledged', async () => {
    const io = client();
    const { stream, group, deadLetterStream } = names('claim');
    await io.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    const id = await io.xadd(stream, '*', 'n', '1');
    // A consumer reads it and dies before acknowledging.
    await io.xreadgroup('GROUP', group, 'dead-consumer', 'COUNT', 1, 'STREAMS', stream, '>');
    const seen: string[] = [];
    const handler = messageHandler(
      dependency('streams-claim', { retry: false }),
      async (msg: StreamMessage) => {
        seen.push(msg.id);
      },
    );
    run(
      streamConsumer(handler, {
        client: client(),
        stream,
        group,
        consumer: 'c2',
        deadLetterStream,
        claimIdle: 100,
        block: 50,
      }),
    );
    await until(() => seen.length === 1, 3000, 'taken over');
    expect(seen).toEqual([id]);
  });

  it('every entry ends in exactly one place when a consumer dies mid-batch and another takes over', async () => {
    const io = client();
    const { stream, group, deadLetterStream } = names('takeover');
    const prefix = `${stream}:idem`;
    const store = new RedisStore({ client: io, prefix });
    const work = async (msg: StreamMessage) => {
      const n = Number(msg.fields.n);
      await sleep(n % 4);
      if (n % 13 === 0) throw Object.assign(new Error('HTTP 400'), { status: 400 });
      if (Math.random() < 0.3) throw Object.assign(new Error('HTTP 503'), { status: 503 });
      return n;
    };
    const options = { store, maxDeliveries: 3, backoff: 5, lockTtl: 300, deferDelay: 50 };
    // No in-process retry; the default breaker stays (30 % errors may trip it at this low
    // traffic: its deferrals are part of the run), and a budget under lockTtl.
    const config = { retry: false, budget: 250 } as const;
    const clientA = new Redis({ host: '127.0.0.1', port: redisPort() });
    const a = streamConsumer(messageHandler(dependency('takeover', config), work, options), {
      client: clientA,
      stream,
      group,
      consumer: 'a',
      deadLetterStream,
      count: 20,
      block: 50,
    });
    const b = streamConsumer(messageHandler(dependency('takeover', config), work, options), {
      client: client(),
      stream,
      group,
      consumer: 'b',
      deadLetterStream,
      count: 5,
      block: 50,
      claimIdle: 400,
    });
    const ids: string[] = [];
    for (let n = 0; n < 150; n++) ids.push((await io.xadd(stream, '*', 'n', String(n)))!);
    void a.start();
    // Wait until a holds entries it has read and not acknowledged.
    await until(
      async () => ((await io.xpending(stream, group, '-', '+', 10, 'a')) as unknown[]).length > 0,
      3000,
      'a holds pending entries',
    );
    // Consumer a dies: its connection drops with entries read and not acknowledged.
    clientA.disconnect();
    void a.stop();
    run(b);
    const deadIds = async () =>
      new Set((await deadLetters(io, deadLetterStream)).map((l) => l.source.id));
    const settled = async () => {
      const gone = await deadIds();
      let open = 0;
      for (const id of ids) {
        const entry = await store.get(id, 'bulwark-queue');
        if (entry?.state !== 'completed' && !gone.has(id)) open++;
      }
      return open === 0;
    };
    await until(settled, 10_000, 'every entry processed or dead-lettered');
    const gone = await deadIds();
    let both = 0;
    for (const id of ids) {
      const entry = await store.get(id, 'bulwark-queue');
      if (entry?.state === 'completed' && gone.has(id)) both++;
    }
    expect(both).toBe(0);
    expect((await deadLetters(io, deadLetterStream)).length).toBe(gone.size);
  }, 20_000);
});
