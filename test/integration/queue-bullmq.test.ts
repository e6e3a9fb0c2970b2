import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import {
  bullmqProcessor,
  messageHandler,
  redrive,
  type BullmqJobLike,
  type DeadLetter,
} from '../../src/queue.js';
import { describeRedis, redisPort } from '../setup/redis.js';

/** Real BullMQ workers on the suite's redis-server; each test on queues of its own. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const connection = () => ({ host: '127.0.0.1', port: redisPort(), maxRetriesPerRequest: null });
let serial = 0;
const closers: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => {});
});

function queues(name: string) {
  const base = `q${process.pid}-${Date.now()}-${serial++}-${name}`;
  const queue = new Queue(base, { connection: connection() });
  const dead = new Queue(`${base}-dead`, { connection: connection() });
  closers.push(
    () => queue.close(),
    () => dead.close(),
  );
  return { queue, dead, name: base };
}

function startWorker<M, R>(
  name: string,
  processor: ReturnType<typeof bullmqProcessor<M, R>>,
  concurrency = 4,
): Worker {
  const worker = new Worker(name, processor, {
    connection: connection(),
    concurrency,
    // Short idle waits, so a resumed worker notices new and delayed jobs at once.
    drainDelay: 0.05,
  });
  worker.on('error', () => {});
  const handle = processor.attach(worker);
  closers.push(async () => {
    handle.dispose();
    await worker.close(true);
  });
  return worker;
}

/** Polls until `check` is true, for at most `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

async function deadLetters(dead: Queue): Promise<DeadLetter[]> {
  const jobs = await dead.getJobs(['waiting'], 0, -1, true);
  return jobs.map((j) => j.data as DeadLetter);
}

describeRedis('bullmqProcessor on real BullMQ workers', () => {
  it('dead-letters a poison message on its first delivery, without retries', async () => {
    const { queue, dead, name } = queues('poison');
    let calls = 0;
    const handler = messageHandler(dependency('orders', { retry: false }), async () => {
      calls++;
      throw Object.assign(new Error('HTTP 400: amount must be positive'), { status: 400 });
    });
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: dead }));
    await queue.add('charge', { amount: -1 }, { jobId: 'order-1' });
    await until(async () => (await dead.count()) === 1, 5000, 'one dead letter');
    const [letter] = await deadLetters(dead);
    expect(calls).toBe(1);
    expect(letter).toMatchObject({
      message: { amount: -1 },
      source: { queue: name, id: 'order-1', name: 'charge' },
      error: { message: 'HTTP 400: amount must be positive', status: 400 },
      reason: 'not-retryable',
      deliveries: 1,
    });
    expect(letter!.firstFailureAt).toBe(letter!.lastFailureAt);
    const source = await queue.getJob('order-1');
    expect(await source!.getState()).toBe('completed');
    expect(source!.returnvalue).toEqual({
      deadLetter: { queue: dead.name, id: `${name}-order-1` },
    });
  });

  it('dead-letters a retryable failure after exactly maxDeliveries deliveries', async () => {
    const { queue, dead, name } = queues('retryable');
    let calls = 0;
    const handler = messageHandler(
      dependency('orders', { retry: false }),
      async () => {
        calls++;
        throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      },
      { maxDeliveries: 3, backoff: 20 },
    );
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: dead }));
    await queue.add('charge', { amount: 5 }, { jobId: 'order-2' });
    await until(async () => (await dead.count()) === 1, 5000, 'one dead letter');
    const [letter] = await deadLetters(dead);
    expect(calls).toBe(3);
    expect(letter).toMatchObject({ reason: 'max-deliveries', deliveries: 3 });
    expect(letter!.error.code).toBe('ECONNREFUSED');
    expect(letter!.lastFailureAt).toBeGreaterThanOrEqual(letter!.firstFailureAt + 40);
  });

  it('fails the job with an UnrecoverableError when there is no dead-letter queue', async () => {
    const { queue, name } = queues('no-dlq');
    const handler = messageHandler(dependency('orders', { retry: false }), async () => {
      throw Object.assign(new Error('HTTP 422'), { status: 422 });
    });
    startWorker(name, bullmqProcessor(handler));
    await queue.add('charge', {}, { jobId: 'order-3' });
    await until(async () => (await queue.getFailedCount()) === 1, 5000, 'one failed job');
    const job = await queue.getJob('order-3');
    expect(job!.failedReason).toMatch(
      /orders: dead-lettered after 1 deliveries \(not-retryable\): HTTP 422/,
    );
    expect(job!.attemptsMade).toBe(1);
  });

  it('acknowledges a redelivered message whose outcome was stored, without running it again', async () => {
    const { queue, name } = queues('replay');
    let calls = 0;
    const handler = messageHandler(
      dependency('mailer', { retry: false }),
      async (msg: { to: string }) => {
        calls++;
        return { sent: msg.to };
      },
      // The duplicate may arrive while the first still runs: it is deferred this long.
      { key: (msg) => `mail:${msg.to}`, deferDelay: 50 },
    );
    startWorker(name, bullmqProcessor(handler));
    await queue.add('send', { to: 'a@example.org' }, { jobId: 'm1' });
    // The same message enqueued again (a producer retry): another job, the same key.
    await queue.add('send', { to: 'a@example.org' }, { jobId: 'm2' });
    await until(async () => (await queue.getCompletedCount()) === 2, 5000, 'two completed');
    expect(calls).toBe(1);
    expect((await queue.getJob('m2'))!.returnvalue).toEqual({ sent: 'a@example.org' });
  });

  it('defers while the dependency is down: nothing dead-lettered, no deliveries used, one call per trial', async () => {
    const { queue, dead, name } = queues('outage');
    let down = true;
    let calls = 0;
    let callsWhileDown = 0;
    let callsWhileNotClosed = 0;
    let trials = 0;
    const payments = dependency('payments', {
      retry: false,
      circuitBreaker: {
        consecutiveFailures: 3,
        halfOpenAfter: 150,
        whileOpen: { wait: true, maxWait: 1000 },
      },
    });
    payments.breaker!.on('stateChange', (e) => {
      if (e.to === 'half-open') trials++;
    });
    const handler = messageHandler(
      payments,
      async (msg: { n: number }) => {
        calls++;
        if (payments.breaker!.state !== 'closed') callsWhileNotClosed++;
        if (down) {
          callsWhileDown++;
          throw Object.assign(new Error('HTTP 503'), { status: 503 });
        }
        return msg.n;
      },
      // 3 deliveries × 20 ms backoff is far shorter than the outage.
      { maxDeliveries: 3, backoff: 20 },
    );
    const processor = bullmqProcessor(handler, { deadLetterQueue: dead });
    let fetchesWhileOpen = 0;
    const counted = Object.assign(
      async (job: BullmqJobLike<{ n: number }>, token?: string) => {
        if (payments.breaker!.stats().state === 'open') fetchesWhileOpen++;
        return processor(job, token);
      },
      { attach: processor.attach },
    );
    const worker = startWorker(name, counted, 8);
    await queue.addBulk(Array.from({ length: 40 }, (_, n) => ({ name: 'pay', data: { n } })));
    await sleep(1500);
    expect(await dead.count()).toBe(0);
    // While not closed, the dependency sees exactly one call per half-open period: the trial.
    expect(trials).toBeGreaterThanOrEqual(3);
    // (The latest trial may have begun and not yet reached the dependency.)
    expect(callsWhileNotClosed).toBeLessThanOrEqual(trials);
    expect(callsWhileNotClosed).toBeGreaterThanOrEqual(trials - 1);
    // Before it opened, at most one call per worker slot had started.
    expect(callsWhileDown - trials).toBeLessThanOrEqual(8);
    // A fetch while open is one BullMQ had in flight when the breaker opened.
    expect(fetchesWhileOpen).toBeLessThanOrEqual(8);
    expect(worker.concurrency).toBe(1);
    down = false;
    await until(async () => (await queue.getCompletedCount()) === 40, 8000, 'all 40 completed');
    expect(await dead.count()).toBe(0);
    expect(calls - callsWhileDown).toBe(40);
    expect(payments.breaker!.state).toBe('closed');
    expect(worker.concurrency).toBe(8);
  });

  it('a failed half-open trial is a deferral, not a counted delivery', async () => {
    const { queue, dead, name } = queues('trial');
    let down = true;
    const payments = dependency('payments', {
      retry: false,
      circuitBreaker: {
        consecutiveFailures: 1,
        halfOpenAfter: 50,
        whileOpen: { wait: true, maxWait: 1000 },
      },
    });
    let calls = 0;
    const handler = messageHandler(
      payments,
      async () => {
        calls++;
        if (down) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return 'ok';
      },
      { maxDeliveries: 1, backoff: 10 },
    );
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: dead }), 1);
    await queue.add('pay', {}, { jobId: 'only' });
    // maxDeliveries 1: a counted failure would dead-letter it at once.
    await until(() => calls >= 4, 5000, 'four trials');
    expect(await dead.count()).toBe(0);
    down = false;
    await until(async () => (await queue.getCompletedCount()) === 1, 5000, 'completed');
    // BullMQ counts the completion itself as an attempt: no failure was counted before it.
    expect((await queue.getJob('only'))!.attemptsMade).toBe(1);
  });

  it('does not run a recovered stalled job again once it is in the dead-letter queue', async () => {
    const { queue, dead, name } = queues('stalled-after-dlq');
    let calls = 0;
    const handler = messageHandler(dependency('orders', { retry: false }), async () => {
      calls++;
      return 'ran';
    });
    await queue.add('o', { sku: 'x' }, { jobId: 'x' });
    // As if a worker had moved it to the dead-letter queue and died before completing it,
    // and BullMQ had then recovered it as stalled.
    await dead.add('o', { message: { sku: 'x' } }, { jobId: `${name}-x` });
    const io = new Redis({ host: '127.0.0.1', port: redisPort() });
    await io.hset(`bull:${name}:x`, 'stc', '1');
    io.disconnect();
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: dead }));
    await until(async () => (await queue.getCompletedCount()) === 1, 5000, 'completed');
    expect(calls).toBe(0);
    expect((await queue.getJob('x'))!.returnvalue).toEqual({
      deadLetter: { queue: dead.name, id: `${name}-x` },
    });
  });

  it('retries a job whose move to the dead-letter queue failed, instead of failing it for good', async () => {
    const { queue, dead, name } = queues('dlq-down');
    let refuse = true;
    // The real dead-letter queue, whose first add fails as if Redis had not answered.
    const flaky = {
      name: dead.name,
      add: (jobName: string, data: unknown, opts?: { jobId?: string }) => {
        if (refuse) {
          refuse = false;
          return Promise.reject(new Error('Connection is closed.'));
        }
        return dead.add(jobName, data, opts);
      },
    };
    const handler = messageHandler(dependency('orders', { retry: false }), async () => {
      throw Object.assign(new Error('HTTP 400'), { status: 400 });
    });
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: flaky }));
    await queue.add('o', {}, { jobId: 'p' });
    await until(async () => (await dead.count()) === 1, 5000, 'dead-lettered on the second try');
    expect(await queue.getFailedCount()).toBe(0);
    await until(async () => (await queue.getCompletedCount()) === 1, 5000, 'completed');
  });

  it('redrive moves dead letters back under their ids, filtered, and they run again', async () => {
    const { queue, dead, name } = queues('redrive');
    let fixed = false;
    const runs: string[] = [];
    const handler = messageHandler(
      dependency('orders', { retry: false }),
      async (msg: { sku: string }) => {
        runs.push(msg.sku);
        if (!fixed) throw Object.assign(new Error('HTTP 422 unknown sku'), { status: 422 });
        return msg.sku;
      },
    );
    startWorker(name, bullmqProcessor(handler, { deadLetterQueue: dead }));
    await queue.add('o', { sku: 'a' }, { jobId: 'a' });
    await queue.add('o', { sku: 'b' }, { jobId: 'b' });
    await until(async () => (await dead.count()) === 2, 5000, 'two dead letters');
    fixed = true;
    const result = await redrive<{ sku: string }>(dead, queue, {
      filter: (letter) => letter.message.sku === 'a',
    });
    expect(result).toEqual({ moved: 1, kept: 1 });
    await until(
      async () => (await queue.getJob('a'))?.returnvalue === 'a',
      5000,
      'a processed again',
    );
    expect(await dead.count()).toBe(1);
    expect(runs.sort()).toEqual(['a', 'a', 'b']);
    // Running it again is harmless: b is the only one left, and filtered out.
    expect(await redrive(dead, queue, { filter: () => false })).toEqual({ moved: 0, kept: 1 });
  });
});
