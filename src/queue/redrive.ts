import type { BullmqQueueLike } from './bullmq.js';
import type { DeadLetter } from './dead-letter.js';

/** A job as `redrive()` reads and removes it. */
interface StoredJobLike {
  readonly id?: string | undefined;
  readonly name: string;
  readonly data: unknown;
  remove(): Promise<void>;
  getState?(): Promise<string>;
}

/** The dead-letter queue as `redrive()` uses it. */
export interface DeadLetterQueueLike {
  readonly name: string;
  getJobs(
    types: Array<'waiting' | 'delayed' | 'prioritized'>,
    start?: number,
    end?: number,
    asc?: boolean,
  ): Promise<StoredJobLike[]>;
}

/** The target queue as `redrive()` uses it. */
export interface RedriveTargetLike extends BullmqQueueLike {
  getJob(id: string): Promise<StoredJobLike | undefined | null>;
}

/** Options of `redrive()`. */
export interface RedriveOptions<M> {
  /** Which dead letters go back (default: all); the others stay in the dead-letter queue. */
  filter?: (letter: DeadLetter<M>) => boolean;
  /** At most this many are moved in one call (default: all). */
  limit?: number;
}

/** What `redrive()` did. */
export interface RedriveResult {
  /** Dead letters put back on the target queue. */
  moved: number;
  /** Dead letters left where they were (filtered out, or not dead letters of ours). */
  kept: number;
}

const PAGE = 500;

function isDeadLetter(data: unknown): data is DeadLetter {
  const d = data as Partial<DeadLetter> | null;
  return (
    typeof d === 'object' &&
    d !== null &&
    'message' in d &&
    typeof d.source === 'object' &&
    d.source !== null &&
    typeof d.source.id === 'string'
  );
}

/**
 * Moves dead letters back to a queue once their cause is fixed: each goes back under its
 * original job id and name with its original data, and leaves the dead-letter queue. Safe
 * to run again after a crash: a message already back on the target is not added twice,
 * and a finished job of that id (the receipt of the hand-over) is replaced.
 *
 * @example
 * ```ts
 * import { redrive } from 'bulwark/queue';
 *
 * // The payments API rejected these for a bug that is now fixed.
 * const { moved } = await redrive(ordersDead, orders, {
 *   filter: (letter) => letter.error.status === 422,
 * });
 * ```
 */
export async function redrive<M = unknown>(
  deadLetterQueue: DeadLetterQueueLike,
  targetQueue: RedriveTargetLike,
  options: RedriveOptions<M> = {},
): Promise<RedriveResult> {
  if (typeof deadLetterQueue?.getJobs !== 'function') {
    throw new TypeError('redrive(deadLetterQueue): expected a BullMQ Queue');
  }
  if (typeof targetQueue?.add !== 'function' || typeof targetQueue.getJob !== 'function') {
    throw new TypeError('redrive(targetQueue): expected a BullMQ Queue');
  }
  const filter = options.filter;
  const limit = options.limit ?? Infinity;
  let moved = 0;
  let kept = 0;
  // Moved jobs leave the list, so the next page starts after the ones kept.
  for (;;) {
    if (moved >= limit) break;
    const jobs = await deadLetterQueue.getJobs(
      ['waiting', 'delayed', 'prioritized'],
      kept,
      kept + PAGE - 1,
      true,
    );
    if (jobs.length === 0) break;
    for (const job of jobs) {
      if (moved >= limit) break;
      const letter = job.data;
      if (!isDeadLetter(letter) || (filter !== undefined && !filter(letter as DeadLetter<M>))) {
        kept++;
        continue;
      }
      const id = letter.source.id;
      const existing = id === '' ? undefined : await targetQueue.getJob(id);
      let present = false;
      if (existing) {
        const state = existing.getState ? await existing.getState() : 'completed';
        if (state === 'completed' || state === 'failed') await existing.remove();
        else present = true;
      }
      if (!present) {
        await targetQueue.add(
          letter.source.name ?? job.name,
          letter.message,
          id === '' ? {} : { jobId: id },
        );
      }
      await job.remove();
      moved++;
    }
  }
  return { moved, kept };
}
