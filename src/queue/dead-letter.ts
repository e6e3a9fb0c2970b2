import type { DeadLetterReason, FailureRecord } from './decision.js';

/**
 * What a dead-letter queue or stream holds for one message: the message itself, where it
 * came from and why it was set aside. `redrive()` puts `message` back on a queue.
 */
export interface DeadLetter<M = unknown> {
  /** The original message (a BullMQ job's data, a stream entry's fields). */
  readonly message: M;
  /** The queue or stream it came from, its id there and (BullMQ) its job name. */
  readonly source: { readonly queue: string; readonly id: string; readonly name?: string };
  /** The last failure, as plain data. */
  readonly error: FailureRecord;
  /** `not-retryable` (a poison message) or `max-deliveries` (retries used up). */
  readonly reason: DeadLetterReason;
  /** Counted deliveries made (deferrals while the dependency was unavailable do not count). */
  readonly deliveries: number;
  /** Epoch ms of the first failure (as seen by the process that dead-lettered it). */
  readonly firstFailureAt: number;
  /** Epoch ms of the last failure: when it was dead-lettered. */
  readonly lastFailureAt: number;
}

/**
 * First failure times of messages that are being retried, by message id, so a dead letter
 * can say when its trouble began. Bounded: the oldest entry goes first when full (a dead
 * letter then reports a later first failure, never a wrong last one).
 */
export class FirstFailures {
  private readonly times = new Map<string, number>();
  constructor(private readonly max = 10_000) {}

  /** Remembers `at` as the first failure of `id`, unless one is known; returns the first. */
  note(id: string, at: number): number {
    const known = this.times.get(id);
    if (known !== undefined) return known;
    if (this.times.size >= this.max) {
      const oldest = this.times.keys().next().value;
      if (oldest !== undefined) this.times.delete(oldest);
    }
    this.times.set(id, at);
    return at;
  }

  /** The first failure of `id` (or `at` when none was seen), forgetting it. */
  take(id: string, at: number): number {
    const known = this.times.get(id);
    this.times.delete(id);
    return known ?? at;
  }

  /** Forgets `id` (it succeeded). */
  forget(id: string): void {
    this.times.delete(id);
  }

  get size(): number {
    return this.times.size;
  }
}
