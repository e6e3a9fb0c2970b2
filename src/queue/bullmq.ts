import type { TimerHandle } from '../core/clock.js';
import type { BreakerState } from '../index.js';
import { type DeadLetter, FirstFailures } from './dead-letter.js';
import { failureRecord, type Decision } from './decision.js';
import type { MessageBreaker, MessageHandler } from './message-handler.js';

/*
 * bullmq itself is never imported: its workers recognise DelayedError and
 * UnrecoverableError by name, and the shapes below are the parts of Job, Worker and Queue
 * used here. So `bulwark/queue` loads without bullmq for a Redis Streams consumer.
 */

/** The parts of a BullMQ `Job` the processor uses. */
export interface BullmqJobLike<M = unknown> {
  readonly id?: string | undefined;
  readonly name: string;
  readonly data: M;
  readonly queueName: string;
  /** Retries already made (BullMQ counts one per failure it retried; never a delay). */
  readonly attemptsMade: number;
  /** Times the job was recovered from a worker that stopped renewing its lock. */
  readonly stalledCounter?: number;
  /** Read by BullMQ when the processor throws: how many attempts and which backoff. */
  opts: { attempts?: number; backoff?: unknown };
  moveToDelayed(timestamp: number, token?: string): Promise<void>;
}

/** The parts of a BullMQ `Worker` that `attach()` uses to pause fetching. */
export interface BullmqWorkerLike {
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): void | Promise<void>;
  concurrency: number;
}

/** The parts of a BullMQ `Queue` used to dead-letter and redrive. */
export interface BullmqQueueLike {
  readonly name: string;
  add(name: string, data: unknown, opts?: { jobId?: string }): Promise<unknown>;
  getJob?(id: string): Promise<unknown>;
}

/** Options of `bullmqProcessor()`. */
export interface BullmqProcessorOptions {
  /**
   * A BullMQ queue that receives dead letters as `DeadLetter` jobs (same job name, job id
   * `<queue>-<id>`); the source job then completes with `{ deadLetter: { queue, id } }`.
   * Without one, a dead letter fails its job with an `UnrecoverableError`.
   */
  deadLetterQueue?: BullmqQueueLike;
}

/** What a job that was moved to the dead-letter queue completes with. */
export interface DeadLettered {
  readonly deadLetter: { readonly queue: string; readonly id: string };
}

/** The processor for `new Worker(name, processor, opts)`, plus the hook to pause that worker. */
export interface BullmqProcessor<M = unknown, R = unknown> {
  (job: BullmqJobLike<M>, token?: string): Promise<R | DeadLettered | undefined>;
  /**
   * Wires the worker this processor runs in: while the dependency's breaker is open the
   * worker fetches nothing; when the breaker may admit its trial the worker resumes with
   * concurrency 1 (one probe, not a stampede), and its own concurrency comes back once
   * the breaker closes. Returns a handle whose `dispose()` unwires it.
   */
  attach(worker: BullmqWorkerLike): { dispose(): void };
}

/** Thrown after `job.moveToDelayed`: BullMQ then leaves the job where it was moved. */
class DelayedError extends Error {
  override name = 'DelayedError';
}

/** Fails the job without further attempts (BullMQ checks the name). */
class UnrecoverableError extends Error {
  override name = 'UnrecoverableError';
}

/** Redelivery delay when carrying out a decision failed (Redis did not answer), in ms. */
const ADAPTER_RETRY_MS = 1000;

/**
 * Carrying out a decision failed (moveToDelayed, the dead-letter add): have BullMQ retry the
 * job rather than fail it for good with its own `attempts` (1 by default), which would
 * leave it in neither place. It counts as a delivery.
 */
function retryLater(job: BullmqJobLike, error: unknown): Error {
  job.opts.attempts = job.attemptsMade + 2;
  job.opts.backoff = { type: 'fixed', delay: ADAPTER_RETRY_MS };
  return asError(error);
}

/** The failure BullMQ records on a retried job: the handler's own error when it is one. */
function asError(error: unknown): Error {
  if (error instanceof Error) return error;
  return new Error(typeof error === 'string' ? error : JSON.stringify(error));
}

/**
 * A BullMQ processor that runs every job through a message handler and carries out its
 * decision with BullMQ's own mechanisms:
 * - done: the job completes with the result (a replayed one when it ran before);
 * - retry: the job fails with its error and BullMQ redelivers it after the handler's
 *   backoff, counting an attempt (`attemptsMade` is the delivery count, kept in Redis);
 * - defer: `job.moveToDelayed` + DelayedError, which consumes no attempt;
 * - dead-letter: moved to `deadLetterQueue` with the failure recorded, or failed with an
 *   `UnrecoverableError` when there is none.
 * The job's own `attempts`/`backoff` options are not used: the handler decides.
 *
 * @example
 * ```ts
 * import { Queue, Worker } from 'bullmq';
 * import { dependency } from 'bulwark';
 * import { bullmqProcessor, messageHandler } from 'bulwark/queue';
 *
 * const connection = { host: '127.0.0.1', port: 6379 };
 * const payments = dependency('payments', {
 *   retry: false, // the queue's redelivery is the retry
 *   circuitBreaker: { consecutiveFailures: 5 },
 * });
 * const handler = messageHandler(payments, (order: { id: string }, ctx) => charge(order, ctx));
 * const processor = bullmqProcessor(handler, {
 *   deadLetterQueue: new Queue('orders-dead', { connection }),
 * });
 * const worker = new Worker('orders', processor, { connection, concurrency: 20 });
 * processor.attach(worker); // pause fetching while the breaker is open
 * ```
 */
export function bullmqProcessor<M, R>(
  handler: MessageHandler<M, R>,
  options: BullmqProcessorOptions = {},
): BullmqProcessor<M, R> {
  if (typeof handler?.handle !== 'function') {
    throw new TypeError('bullmqProcessor(handler): expected a message handler (messageHandler())');
  }
  const dlq = options.deadLetterQueue;
  if (dlq !== undefined && typeof dlq?.add !== 'function') {
    throw new TypeError('bullmqProcessor.deadLetterQueue: expected a BullMQ Queue');
  }
  const firstFailures = new FirstFailures();

  const processor = async (
    job: BullmqJobLike<M>,
    token?: string,
  ): Promise<R | DeadLettered | undefined> => {
    const id = job.id ?? '';
    const dlqId = `${job.queueName}-${id}`;
    // A worker that died after moving this job to the dead-letter queue and before
    // completing it: the job is already there, and must not run (and maybe succeed) again.
    if (dlq !== undefined && (job.stalledCounter ?? 0) > 0 && typeof dlq.getJob === 'function') {
      const moved = await dlq.getJob(dlqId).catch((error: unknown) => {
        throw retryLater(job, error);
      });
      if (moved) return { deadLetter: { queue: dlq.name, id: dlqId } };
    }
    const decision: Decision<R> = await handler.handle(job.data, {
      id,
      deliveries: job.attemptsMade + 1,
    });
    switch (decision.action) {
      case 'done':
        firstFailures.forget(id);
        return decision.result;
      case 'defer':
        // BullMQ's delayed set is ordered by wall-clock time, shared by every worker.
        await job.moveToDelayed(Date.now() + (decision.delayMs ?? 0), token).catch((error) => {
          throw retryLater(job, error);
        });
        throw new DelayedError();
      case 'retry':
        firstFailures.note(id, decision.at);
        // BullMQ reads these when the processor throws: one more attempt, after our delay.
        job.opts.attempts = job.attemptsMade + 2;
        job.opts.backoff = { type: 'fixed', delay: Math.round(decision.delayMs ?? 0) };
        throw asError(decision.error);
      case 'dead-letter': {
        const record = failureRecord(decision.error);
        if (dlq === undefined) {
          firstFailures.forget(id);
          throw new UnrecoverableError(
            `${handler.dependency.name}: dead-lettered after ${decision.deliveries} deliveries ` +
              `(${decision.reason}): ${record.message}`,
          );
        }
        const letter: DeadLetter<M> = {
          message: job.data,
          source: { queue: job.queueName, id, name: job.name },
          error: record,
          reason: decision.reason ?? 'max-deliveries',
          deliveries: decision.deliveries,
          firstFailureAt: firstFailures.take(id, decision.at),
          lastFailureAt: decision.at,
        };
        // A fixed job id: a worker that crashes after this add and redoes it adds nothing.
        await dlq.add(job.name, letter, { jobId: dlqId }).catch((error: unknown) => {
          throw retryLater(job, error);
        });
        return { deadLetter: { queue: dlq.name, id: dlqId } };
      }
    }
  };

  const attach = (worker: BullmqWorkerLike): { dispose(): void } => {
    if (typeof worker?.pause !== 'function' || typeof worker.resume !== 'function') {
      throw new TypeError('processor.attach(worker): expected a BullMQ Worker');
    }
    const breaker = handler.breaker;
    if (breaker === undefined) return { dispose() {} };
    return new PauseWhileOpen(worker, breaker, handler);
  };

  return Object.assign(processor, { attach });
}

/**
 * Pauses a worker while a breaker is open, and lets one job through when a trial may run.
 * The breaker has no timer of its own (it half-opens on the next call after its open
 * period), so this schedules the probe itself on the handler's clock.
 */
class PauseWhileOpen {
  private paused = false;
  private probing = false;
  private timer: TimerHandle | undefined;
  private concurrency: number;
  private readonly subscription: { dispose(): void };
  private disposed = false;

  constructor(
    private readonly worker: BullmqWorkerLike,
    private readonly breaker: MessageBreaker,
    private readonly handler: MessageHandler,
  ) {
    this.concurrency = worker.concurrency;
    this.subscription = breaker.on('stateChange', (e) => this.onState(e.to));
    handler.recorder?.observeQueuePaused?.(() => (this.paused ? 1 : 0));
    const state = breaker.state;
    if (state === 'open' || state === 'isolated') this.pause();
  }

  private onState(to: BreakerState): void {
    if (this.disposed) return;
    if (to === 'open' || to === 'isolated') this.pause();
    else if (to === 'closed') this.restore();
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      if (!this.probing) this.concurrency = this.worker.concurrency;
      // Jobs already running finish on their own; only fetching stops.
      this.worker.pause(true).catch(ignore);
    }
    this.schedule(this.breaker.stats().retryAfterMs);
  }

  private schedule(ms: number): void {
    const clock = this.handler.clock;
    if (this.timer !== undefined) clock.clearTimeout(this.timer);
    this.timer = undefined;
    // Isolated: no trial until an operator releases it (a transition to closed).
    if (!Number.isFinite(ms)) return;
    this.timer = clock.setTimeout(() => this.probe(), Math.max(1, ms));
  }

  /** The open period is over: fetch one job at a time, whose call is the breaker's trial. */
  private probe(): void {
    this.timer = undefined;
    if (this.disposed || !this.paused) return;
    this.probing = true;
    this.paused = false;
    this.worker.concurrency = 1;
    void Promise.resolve(this.worker.resume()).catch(ignore);
  }

  private restore(): void {
    if (this.timer !== undefined) this.handler.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const wasPaused = this.paused;
    this.paused = false;
    if (this.probing || wasPaused) this.worker.concurrency = this.concurrency;
    this.probing = false;
    if (wasPaused) void Promise.resolve(this.worker.resume()).catch(ignore);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.subscription.dispose();
    if (this.timer !== undefined) this.handler.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function ignore(): void {}
