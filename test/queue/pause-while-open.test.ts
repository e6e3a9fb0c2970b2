import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { dependency } from '../../src/index.js';
import { prometheusMetrics } from '../../src/prometheus.js';
import { bullmqProcessor, messageHandler, type BullmqWorkerLike } from '../../src/queue.js';
import { VirtualClock } from '../../src/testing/index.js';

/**
 * The pause/probe/restore logic of `attach()` on the virtual clock, against a worker that
 * records what it is told (real BullMQ workers: test/integration/queue-bullmq.test.ts).
 */
class RecordingWorker implements BullmqWorkerLike {
  concurrency = 8;
  paused = false;
  log: string[] = [];
  pause(): Promise<void> {
    this.paused = true;
    this.log.push('pause');
    return Promise.resolve();
  }
  resume(): void {
    this.paused = false;
    this.log.push(`resume@${this.concurrency}`);
  }
}

const down = () => Object.assign(new Error('HTTP 503'), { status: 503 });

function setup() {
  const clock = new VirtualClock();
  const registry = new Registry();
  const metrics = prometheusMetrics({ registry });
  const dep = dependency('payments', {
    clock,
    metrics,
    retry: false,
    circuitBreaker: {
      consecutiveFailures: 1,
      halfOpenAfter: 1000,
      whileOpen: { wait: true, maxWait: 1000 },
    },
  });
  let failing = true;
  const handler = messageHandler(
    dep,
    async () => {
      if (failing) throw down();
      return 'ok';
    },
    { metrics },
  );
  const worker = new RecordingWorker();
  const handle = bullmqProcessor(handler).attach(worker);
  const call = () => handler.handle({}, { id: String(Math.random()), deliveries: 1 });
  const gauge = async () => {
    const text = await registry.metrics();
    return Number(/bulwark_queue_paused\{dependency="payments"\} (\d+)/.exec(text)?.[1]);
  };
  return { clock, dep, worker, handle, call, gauge, registry, up: () => (failing = false) };
}

describe('processor.attach(worker): pause while the breaker is open', () => {
  it('pauses on open, probes with one job when the trial is due, restores on close', async () => {
    const { clock, dep, worker, call, gauge, up } = setup();
    expect(await gauge()).toBe(0);
    await call(); // opens the breaker
    expect(dep.breaker!.state).toBe('open');
    expect(worker.log).toEqual(['pause']);
    expect(await gauge()).toBe(1);
    await clock.advance(999);
    expect(worker.log).toEqual(['pause']);
    await clock.advance(1);
    // The open period is over: one job at a time, whose call is the trial.
    expect(worker.log).toEqual(['pause', 'resume@1']);
    expect(await gauge()).toBe(0);
    await call(); // the trial fails: open again, paused again
    expect(worker.log).toEqual(['pause', 'resume@1', 'pause']);
    await clock.advance(1000);
    up();
    await call(); // the trial succeeds: closed, full concurrency
    expect(dep.breaker!.state).toBe('closed');
    expect(worker.log).toEqual(['pause', 'resume@1', 'pause', 'resume@1']);
    expect(worker.concurrency).toBe(8);
  });

  it('counts message outcomes in bulwark_messages_total', async () => {
    const { call, registry, clock, up } = setup();
    await call();
    await clock.advance(1000);
    up();
    await call();
    const text = await registry.metrics();
    expect(text).toMatch(/bulwark_messages_total\{dependency="payments",outcome="deferred"\} 1/);
    expect(text).toMatch(/bulwark_messages_total\{dependency="payments",outcome="processed"\} 1/);
    expect(text).toMatch(
      /bulwark_messages_total\{dependency="payments",outcome="dead_lettered"\} 0/,
    );
  });

  it('pauses at once when attached to an open breaker; dispose() leaves no timer', async () => {
    const { clock, dep } = setup();
    dep.breaker!.isolate();
    const worker = new RecordingWorker();
    const handle = bullmqProcessor(messageHandler(dep, async () => 1)).attach(worker);
    expect(worker.log).toEqual(['pause']);
    handle.dispose();
    expect(clock.pending).toBe(0);
  });

  it('finds the breaker under circuitBreaker too', async () => {
    const clock = new VirtualClock();
    const dep = dependency('alt', {
      clock,
      retry: false,
      circuitBreaker: { consecutiveFailures: 1, whileOpen: { wait: false } },
    });
    const alt = {
      name: dep.name,
      kind: dep.kind,
      clock: dep.clock,
      execute: dep.execute.bind(dep),
      run: dep.run.bind(dep),
      circuitBreaker: dep.breaker,
    };
    const handler = messageHandler(alt, async () => {
      throw down();
    });
    const worker = new RecordingWorker();
    bullmqProcessor(handler).attach(worker);
    expect(await handler.handle({}, { id: '1', deliveries: 1 })).toMatchObject({ action: 'defer' });
    expect(worker.log).toEqual(['pause']);
  });

  it('a dependency without a breaker is never paused', async () => {
    const worker = new RecordingWorker();
    const handle = bullmqProcessor(
      messageHandler(dependency('plain', { retry: false }), async () => 1),
    ).attach(worker);
    handle.dispose();
    expect(worker.log).toEqual([]);
  });

  it('refuses what is not a worker', () => {
    const processor = bullmqProcessor(
      messageHandler(dependency('x', { retry: false }), async () => 1),
    );
    expect(() => processor.attach({} as never)).toThrow(/expected a BullMQ Worker/);
  });
});
