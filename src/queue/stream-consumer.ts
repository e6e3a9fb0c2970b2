import { Validator } from '../core/validate.js';
import type { DeadLetter } from './dead-letter.js';
import { failureRecord, type Decision } from './decision.js';
import type { MessageHandler } from './message-handler.js';

/**
 * The ioredis client calls the consumer makes. Give it a connection of its own: it blocks
 * on XREADGROUP for up to `block` ms at a time.
 */
export interface StreamsClientLike {
  call(command: string, ...args: Array<string | number>): Promise<unknown>;
  multi(commands: Array<Array<string | number>>): { exec(): Promise<unknown> };
}

/** One stream entry as the handler sees it. */
export interface StreamMessage {
  /** The id of the entry as first added: the default idempotency key. */
  readonly id: string;
  /** The id of the entry being delivered now (a redelivery is a new entry). */
  readonly entryId: string;
  /** The entry's fields, without bulwark's own. */
  readonly fields: Readonly<Record<string, string>>;
}

/** Options of `streamConsumer()`. */
export interface StreamConsumerOptions {
  /** An ioredis client of the consumer's own. */
  client: StreamsClientLike;
  /** The stream to consume. */
  stream: string;
  /** The consumer group (created at `start()` if missing, from `startId`). */
  group: string;
  /** This consumer's name in the group: unique per process. */
  consumer: string;
  /** The stream dead letters are added to: the original fields plus `bulwark-dead-letter`. */
  deadLetterStream: string;
  /** Where messages wait for a redelivery (default `<stream>:bulwark:delayed`, a sorted set). */
  delayedKey?: string;
  /** Entries read at a time, and run concurrently (default 10). */
  count?: number;
  /** How long one read blocks when the stream is empty, in ms (default 500). */
  block?: number;
  /** An entry another consumer has held unacknowledged this long is taken over (default 30 s). */
  claimIdle?: number;
  /** Where a new group starts reading (default '0': every entry in the stream). */
  startId?: string;
}

/** A running consumer: `start()` reads until `stop()`. */
export interface StreamConsumer {
  /** Creates the group if needed and consumes until `stop()`; resolves when stopped. */
  start(): Promise<void>;
  /** Reads and handles one batch (taken-over, due and new entries); returns how many it handled. */
  poll(): Promise<number>;
  /** Stops after the batch in hand; resolves when the loop has ended. */
  stop(): Promise<void>;
}

/** Fields of ours on an entry: origin id, counted deliveries, first failure time. */
const META = 'bulwark-meta';
const DEAD = 'bulwark-dead-letter';

interface Meta {
  /** The entry id the message was first added under. */
  o: string;
  /** Counted deliveries so far. */
  d: number;
  /** Epoch ms of the first failure. */
  f?: number;
}

/**
 * Moves due messages from the delayed set back onto the stream, atomically (two consumers
 * promoting at once cannot add one twice). Each member is a JSON array of field, value, ….
 */
const PROMOTE = `
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', unpack(cjson.decode(member)))
  redis.call('ZREM', KEYS[2], member)
end
return #due`;

type Entry = [id: string, fields: string[]];

const KNOWN = [
  'client',
  'stream',
  'group',
  'consumer',
  'deadLetterStream',
  'delayedKey',
  'count',
  'block',
  'claimIdle',
  'startId',
];

class Consumer implements StreamConsumer {
  private readonly client: StreamsClientLike;
  private readonly stream: string;
  private readonly group: string;
  private readonly consumer: string;
  private readonly deadLetterStream: string;
  private readonly delayedKey: string;
  private readonly count: number;
  private readonly block: number;
  private readonly claimIdle: number;
  private readonly startId: string;
  private running: Promise<void> | undefined;
  private stopping: AbortController | undefined;
  /** Reading nothing because the breaker is open (the paused gauge). */
  private paused = false;

  constructor(
    private readonly handler: MessageHandler<StreamMessage>,
    options: StreamConsumerOptions,
  ) {
    const v = new Validator('streamConsumer');
    const o = v.object(options, KNOWN);
    if (typeof handler?.handle !== 'function') {
      v.problem('handler', 'a message handler (messageHandler())', handler);
    }
    const client = o.client as StreamsClientLike | undefined;
    if (typeof client?.call !== 'function' || typeof client.multi !== 'function') {
      v.problem('client', 'an ioredis client', client);
    }
    const text = (name: string, value: unknown, def?: string): string => {
      if (value === undefined && def !== undefined) return def;
      if (typeof value !== 'string' || value === '') v.problem(name, 'a non-empty string', value);
      return String(value);
    };
    this.client = client!;
    this.stream = text('stream', o.stream);
    this.group = text('group', o.group);
    this.consumer = text('consumer', o.consumer);
    this.deadLetterStream = text('deadLetterStream', o.deadLetterStream);
    this.delayedKey = text('delayedKey', o.delayedKey, `${this.stream}:bulwark:delayed`);
    this.startId = text('startId', o.startId, '0');
    this.count = v.int('count', o.count, 10, 1);
    this.block = v.duration('block', o.block, 500, { min: 1 });
    this.claimIdle = v.duration('claimIdle', o.claimIdle, 30_000, { min: 1 });
    v.done();
    handler.recorder?.observeQueuePaused?.(() => (this.paused ? 1 : 0));
  }

  start(): Promise<void> {
    if (this.running !== undefined) return this.running;
    this.stopping = new AbortController();
    this.running = this.loop(this.stopping.signal);
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopping?.abort();
    await this.running?.catch(() => {});
    this.running = undefined;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    await this.createGroup();
    while (!signal.aborted) {
      const wait = this.unavailableFor();
      this.paused = wait > 0;
      if (wait > 0) {
        // The breaker is open: fetch nothing until it may admit its trial.
        await this.handler.clock.sleep(wait, signal).catch(() => {});
        continue;
      }
      try {
        await this.poll();
      } catch {
        // Redis went away or refused a command: the messages stay pending or delayed, and
        // are read again (or taken over) once it answers. Wait a moment, then go on.
        await this.handler.clock.sleep(this.block, signal).catch(() => {});
      }
    }
    this.paused = false;
  }

  /** ms until the dependency's breaker may admit a call (0: fetch now). */
  private unavailableFor(): number {
    const breaker = this.handler.breaker;
    if (breaker === undefined) return 0;
    const state = breaker.state;
    if (state !== 'open' && state !== 'isolated') return 0;
    const ms = breaker.stats().retryAfterMs;
    // Isolated: look again now and then, for an operator's release.
    return Number.isFinite(ms) ? Math.max(1, ms) : this.block;
  }

  private async createGroup(): Promise<void> {
    try {
      await this.client.call('XGROUP', 'CREATE', this.stream, this.group, this.startId, 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error)?.message).includes('BUSYGROUP')) throw error;
    }
  }

  async poll(): Promise<number> {
    // Half-open: one entry at a time, whose call is the trial.
    const count = this.handler.breaker?.state === 'half-open' ? 1 : this.count;
    // Due times are wall-clock epoch ms: every consumer process shares them.
    await this.client.call('EVAL', PROMOTE, 2, this.stream, this.delayedKey, Date.now(), count);
    const claimed = (await this.client.call(
      'XAUTOCLAIM',
      this.stream,
      this.group,
      this.consumer,
      this.claimIdle,
      '0-0',
      'COUNT',
      count,
    )) as [string, Entry[]] | null;
    let entries = (claimed?.[1] ?? []).filter((e) => e !== null && Array.isArray(e[1]));
    if (entries.length === 0) {
      const read = (await this.client.call(
        'XREADGROUP',
        'GROUP',
        this.group,
        this.consumer,
        'COUNT',
        count,
        'BLOCK',
        this.block,
        'STREAMS',
        this.stream,
        '>',
      )) as unknown;
      entries = entriesOf(read);
    }
    await Promise.all(entries.map((entry) => this.deliver(entry)));
    return entries.length;
  }

  private async deliver([entryId, raw]: Entry): Promise<void> {
    const fields: Record<string, string> = {};
    let meta: Meta = { o: entryId, d: 0 };
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (raw[i] === META) meta = parseMeta(raw[i + 1]!, entryId);
      else fields[raw[i]!] = raw[i + 1]!;
    }
    const message: StreamMessage = { id: meta.o, entryId, fields };
    const decision = await this.handler.handle(message, { id: meta.o, deliveries: meta.d + 1 });
    // ioredis's multi() takes lowercase command names.
    const ack = ['xack', this.stream, this.group, entryId];
    switch (decision.action) {
      case 'done':
        await this.client.call('XACK', this.stream, this.group, entryId);
        return;
      case 'retry':
      case 'defer': {
        const next: Meta = {
          o: meta.o,
          d: decision.action === 'retry' ? meta.d + 1 : meta.d,
          f: meta.f ?? (decision.action === 'retry' ? decision.at : undefined),
        };
        const member = JSON.stringify([...flatten(fields), META, JSON.stringify(next)]);
        // Both or neither: the message is either pending here or waiting in the delayed set.
        await this.client
          .multi([['zadd', this.delayedKey, Date.now() + (decision.delayMs ?? 0), member], ack])
          .exec()
          .then(checkExec);
        return;
      }
      case 'dead-letter': {
        const letter = this.deadLetter(message, meta, decision);
        await this.client
          .multi([
            ['xadd', this.deadLetterStream, '*', ...flatten(fields), DEAD, JSON.stringify(letter)],
            ack,
          ])
          .exec()
          .then(checkExec);
        return;
      }
    }
  }

  private deadLetter(
    message: StreamMessage,
    meta: Meta,
    decision: Decision,
  ): Omit<DeadLetter, 'message'> {
    return {
      source: { queue: this.stream, id: message.id },
      error: failureRecord(decision.error),
      reason: decision.reason ?? 'max-deliveries',
      deliveries: decision.deliveries,
      firstFailureAt: meta.f ?? decision.at,
      lastFailureAt: decision.at,
    };
  }
}

/**
 * The entries of an XREADGROUP reply for one stream: `[[stream, entries]]` as Redis sends
 * it, `[stream, entries]` as some ioredis versions pass it on, or a RESP3 map.
 */
function entriesOf(reply: unknown): Entry[] {
  if (reply === null || typeof reply !== 'object') return [];
  if (!Array.isArray(reply)) {
    const first = Object.values(reply)[0] as unknown;
    return Array.isArray(first) ? (first as Entry[]) : [];
  }
  if (typeof reply[0] === 'string') return Array.isArray(reply[1]) ? (reply[1] as Entry[]) : [];
  const first = reply[0] as unknown;
  return Array.isArray(first) && Array.isArray(first[1]) ? (first[1] as Entry[]) : [];
}

/** A MULTI reports each command's error in its reply instead of rejecting: surface it. */
function checkExec(replies: unknown): void {
  if (!Array.isArray(replies)) throw new Error('MULTI was aborted');
  for (const reply of replies) {
    const error = Array.isArray(reply) ? (reply[0] as unknown) : undefined;
    if (error) throw error;
  }
}

function flatten(fields: Record<string, string>): string[] {
  const out: string[] = [];
  for (const key in fields) out.push(key, fields[key]!);
  return out;
}

function parseMeta(text: string, entryId: string): Meta {
  try {
    const m = JSON.parse(text) as Partial<Meta>;
    return {
      o: typeof m.o === 'string' ? m.o : entryId,
      d: typeof m.d === 'number' ? m.d : 0,
      f: typeof m.f === 'number' ? m.f : undefined,
    };
  } catch {
    return { o: entryId, d: 0 };
  }
}

/**
 * A Redis Streams consumer-group consumer that runs every entry through a message handler
 * — the same handler a BullMQ worker uses. Done: XACK. Retry and defer: the entry is
 * acknowledged and, in the same MULTI, parked in a sorted set until it is due, then added
 * to the stream again carrying its origin id and delivery count. Dead letter: added to
 * `deadLetterStream` with the failure, acknowledged in the same MULTI. Entries a crashed
 * consumer held longer than `claimIdle` are taken over with XAUTOCLAIM. While the
 * dependency's breaker is open nothing is read; when half-open, one entry at a time.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { dependency } from 'bulwark';
 * import { messageHandler, streamConsumer, type StreamMessage } from 'bulwark/queue';
 *
 * const mailer = dependency('mailer', {
 *   retry: false, // the queue's redelivery is the retry
 *   circuitBreaker: { consecutiveFailures: 5 },
 * });
 * const handler = messageHandler(mailer, (msg: StreamMessage, ctx) => sendMail(msg.fields, ctx));
 * const consumer = streamConsumer(handler, {
 *   client: new Redis(), // a connection of its own: reads block
 *   stream: 'emails',
 *   group: 'senders',
 *   consumer: `sender-${process.pid}`,
 *   deadLetterStream: 'emails:dead',
 * });
 * void consumer.start();
 * process.on('SIGTERM', () => void consumer.stop());
 * ```
 */
export function streamConsumer(
  handler: MessageHandler<StreamMessage>,
  options: StreamConsumerOptions,
): StreamConsumer {
  return new Consumer(handler, options);
}
