import { createHash, randomBytes } from 'node:crypto';
import { systemClock, type TimerHandle } from '../core/clock.js';
import { IdempotencyStoreError } from '../policies/idempotency/errors.js';
import { formatMs } from '../core/errors.js';
import { Validator } from '../core/validate.js';
import { CLAIM } from './lua/claim.js';
import { COMPLETE } from './lua/complete.js';
import { GET } from './lua/get.js';
import { RELEASE } from './lua/release.js';
import {
  scopedKey,
  type ClaimResult,
  type IdempotencyRecord,
  type IdempotencyStore,
  type StoreEntry,
} from './store.js';

/** The part of an ioredis client (Redis or Cluster) the store uses. */
export interface IoRedisClientLike {
  /** EVALSHA: runs a script Redis has cached. */
  evalsha(sha: string, numkeys: number, ...args: string[]): Promise<unknown>;
  /** EVAL: runs (and caches) a script by its text. */
  eval(script: string, numkeys: number, ...args: string[]): Promise<unknown>;
  /** `SET key value PX ms NX GET`: the claim, in one command on Redis ≥ 7. */
  set(key: string, value: string, px: 'PX', ms: string, nx: 'NX', get: 'GET'): Promise<unknown>;
}

/** The part of a node-redis v4+ client (`createClient`, `createCluster`) the store uses. */
export interface NodeRedisClientLike {
  /** EVALSHA: runs a script Redis has cached. */
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** EVAL: runs (and caches) a script by its text. */
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  /** `SET key value PX ms NX GET`: the claim, in one command on Redis ≥ 7. */
  set(key: string, value: string, options: { PX: number; NX: true; GET: true }): Promise<unknown>;
}

/** An ioredis or node-redis client; the store tells them apart by shape. */
export type RedisClientLike = IoRedisClientLike | NodeRedisClientLike;

/** Options of `RedisStore` / `redisStore()`; only `client` is required. */
export interface RedisStoreOptions {
  /** An ioredis or node-redis client the application already has (connected). */
  client: RedisClientLike;
  /** Namespace of every key this store writes (default `bulwark:idem`). */
  prefix?: string;
  /**
   * ms to wait for Redis to answer one operation before failing it with an
   * IdempotencyStoreError (default 1000). Clients queue commands while disconnected;
   * without this bound a call could wait for Redis forever.
   */
  timeout?: number | string;
}

/** The commands the store sends, in one shape for both clients. */
interface ScriptRunner {
  evalsha(sha: string, key: string, args: string[]): Promise<unknown>;
  eval(script: string, key: string, args: string[]): Promise<unknown>;
  /** `SET key value PX ms NX GET`: the old value, or null when this call set it. */
  setNxGet(key: string, value: string, ms: string): Promise<unknown>;
}

class IoRedisRunner implements ScriptRunner {
  constructor(private readonly client: IoRedisClientLike) {}
  evalsha(sha: string, key: string, args: string[]): Promise<unknown> {
    return this.client.evalsha(sha, 1, key, ...args);
  }
  eval(script: string, key: string, args: string[]): Promise<unknown> {
    return this.client.eval(script, 1, key, ...args);
  }
  setNxGet(key: string, value: string, ms: string): Promise<unknown> {
    return this.client.set(key, value, 'PX', ms, 'NX', 'GET');
  }
}

class NodeRedisRunner implements ScriptRunner {
  constructor(private readonly client: NodeRedisClientLike) {}
  evalsha(sha: string, key: string, args: string[]): Promise<unknown> {
    return this.client.evalSha(sha, { keys: [key], arguments: args });
  }
  eval(script: string, key: string, args: string[]): Promise<unknown> {
    return this.client.eval(script, { keys: [key], arguments: args });
  }
  setNxGet(key: string, value: string, ms: string): Promise<unknown> {
    // The flag form of the options: node-redis 4 knows only it, 5 and 6 still accept it.
    return this.client.set(key, value, { PX: Number(ms), NX: true, GET: true });
  }
}

interface Script {
  readonly op: 'claim' | 'complete' | 'release' | 'get';
  readonly text: string;
  readonly sha: string;
}

function script(op: Script['op'], text: string): Script {
  return { op, text, sha: createHash('sha1').update(text).digest('hex') };
}

const SCRIPTS = {
  claim: script('claim', CLAIM),
  complete: script('complete', COMPLETE),
  release: script('release', RELEASE),
  get: script('get', GET),
};

const MISMATCH: ClaimResult = Object.freeze({ state: 'mismatch' });

function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : '';
}

function isNoScript(error: unknown): boolean {
  return messageOf(error).startsWith('NOSCRIPT');
}

/** Redis before 7.0 refuses `SET … NX GET`. */
function isSyntaxError(error: unknown): boolean {
  return /^ERR syntax error/i.test(messageOf(error));
}

/** Replies are strings, or Buffers on clients set to return them. */
function text(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

/** One store operation in flight: settles once, by reply, error or the store's watchdog. */
class PendingOp {
  deadline = Infinity;
  prev: PendingOp | undefined = undefined;
  next: PendingOp | undefined = undefined;
  /** Sent as the native `SET … NX GET` (a claim on Redis ≥ 7) rather than a script. */
  native: boolean;
  /** Sent by SHA (until Redis answers NOSCRIPT). */
  viaSha = true;
  private done = false;

  constructor(
    private readonly store: RedisStore,
    readonly script: Script,
    readonly key: string,
    readonly args: string[],
    /** For a claim: the token it asks for and the fingerprint it carries. */
    readonly token: string,
    readonly fingerprint: string,
    private readonly resolve: (value: unknown) => void,
    private readonly reject: (error: unknown) => void,
  ) {
    this.native = script.op === 'claim' && store.nativeClaim;
  }

  send(): void {
    this.store.exec(this).then(
      (value) => this.settle(value, undefined),
      (error: unknown) => {
        if (this.native && isSyntaxError(error)) {
          // An old Redis: claim with the script from now on.
          this.store.nativeClaim = false;
          this.native = false;
          this.send();
        } else if (!this.native && this.viaSha && isNoScript(error)) {
          // Redis restarted or its script cache was flushed: send the text once, which loads it.
          this.viaSha = false;
          this.send();
        } else this.settle(undefined, this.store.wrap(this.script.op, error));
      },
    );
  }

  settle(value: unknown, error: IdempotencyStoreError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.store.finished(this);
    if (error !== undefined) {
      this.reject(error);
      return;
    }
    try {
      this.resolve(this.store.result(this, value));
    } catch (e) {
      this.reject(e);
    }
  }
}

/**
 * An idempotency store on Redis, safe across processes and hosts. Every operation is one
 * round trip and atomic: a claim is the native `SET key lock PX lockTtl NX GET` (Redis ≥
 * 7.0; a Lua script on older servers, detected on first use), and completion, release
 * and read are Lua scripts sent by EVALSHA, falling back to EVAL once after a restart or
 * SCRIPT FLUSH. Every entry is one string under one hash-tagged key (`{prefix:scope:key}`),
 * so it works on Redis Cluster, and no script does more than a GET and a SET: close to the
 * server cost of the raw commands. TTLs are Redis PX expiries, so no client clock is
 * trusted. Fencing tokens are random per store plus a counter; a lock is only ever replaced
 * or deleted by the exact token that wrote it.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { idempotency } from 'bulwark';
 * import { RedisStore } from 'bulwark/redis';
 *
 * const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
 * const store = new RedisStore({ client: redis, prefix: 'shop:idem', timeout: '500ms' });
 * // Every instance of the service sees the same keys: a duplicate is caught wherever it lands.
 * const orders = idempotency({ store, ttl: '24h' });
 * ```
 */
export class RedisStore implements IdempotencyStore {
  /** `RedisStore(<prefix>)`, in errors and metrics labels. */
  readonly name: string;
  /** Namespace of every key this store writes. */
  readonly prefix: string;
  /** ms an operation may wait for Redis before it fails (Infinity: no bound). */
  readonly timeout: number;
  private readonly runner: ScriptRunner;
  private readonly tokenPrefix = randomBytes(9).toString('base64url');
  private seq = 0;
  /** Operations in flight, oldest first (only with a finite timeout): an intrusive list. */
  private head: PendingOp | undefined;
  private tail: PendingOp | undefined;
  private watchdog: TimerHandle | undefined;
  /** @internal Claims use the native `SET … NX GET` until Redis refuses it (before 7.0). */
  nativeClaim = true;

  constructor(options: RedisStoreOptions, path = 'RedisStore') {
    const v = new Validator(path);
    const o = v.object(options, ['client', 'prefix', 'timeout']);
    const client = o.client as Record<string, unknown> | undefined;
    let runner: ScriptRunner | undefined;
    if (client !== null && typeof client === 'object') {
      // node-redis spells it evalSha, ioredis evalsha: the shape tells which client it is.
      if (typeof client.evalSha === 'function')
        runner = new NodeRedisRunner(client as unknown as NodeRedisClientLike);
      else if (typeof client.evalsha === 'function')
        runner = new IoRedisRunner(client as unknown as IoRedisClientLike);
    }
    if (runner === undefined)
      v.problem('client', 'an ioredis client or a node-redis (v4+) client', client);
    let prefix = 'bulwark:idem';
    if (o.prefix !== undefined) {
      if (typeof o.prefix !== 'string' || o.prefix === '')
        v.problem('prefix', 'a non-empty string', o.prefix);
      else prefix = o.prefix;
    }
    const timeout = v.duration('timeout', o.timeout, 1000, { min: 1, allowInfinity: true });
    v.done();
    this.runner = runner!;
    this.prefix = prefix;
    this.timeout = timeout;
    this.name = `RedisStore(${prefix})`;
  }

  /** The Redis key of an entry; public so that tests and tools can inspect it. */
  redisKey(key: string, scope?: string): string {
    return `{${this.prefix}:${scopedKey(key, scope)}}`;
  }

  claim(
    key: string,
    fingerprint: string | undefined,
    lockTtl: number,
    scope?: string,
  ): Promise<ClaimResult> {
    // The token carries the fingerprint, so completing needs no read of the lock's fields.
    const fp = fingerprint ?? '';
    const token = `${this.tokenPrefix}.${++this.seq}:${fp}`;
    return this.run(
      SCRIPTS.claim,
      this.redisKey(key, scope),
      [`p${token}`, px(lockTtl)],
      token,
      fp,
    );
  }

  complete(
    key: string,
    token: string,
    record: IdempotencyRecord,
    ttl: number,
    scope?: string,
  ): Promise<boolean> {
    const fp = token.slice(token.indexOf(':') + 1);
    const value = `c${record.outcome === 'error' ? 'e' : 'v'}${fp.length}:${fp}${record.body}`;
    return this.run(SCRIPTS.complete, this.redisKey(key, scope), [`p${token}`, value, px(ttl)]);
  }

  release(key: string, token: string, scope?: string): Promise<boolean> {
    return this.run(SCRIPTS.release, this.redisKey(key, scope), [`p${token}`]);
  }

  get(key: string, scope?: string): Promise<StoreEntry | undefined> {
    return this.run(SCRIPTS.get, this.redisKey(key, scope), []);
  }

  /** @internal Turns a script's reply into the operation's result (called by PendingOp). */
  result(op: PendingOp, reply: unknown): unknown {
    switch (op.script.op) {
      case 'complete':
      case 'release':
        return Number(reply) === 1;
      case 'get':
        return reply == null ? undefined : this.parse(reply);
      case 'claim': {
        if (reply == null) return { state: 'claimed', token: op.token };
        // The native claim answers the old value; the script answers [value, pttl?].
        const [value, pttl] = Array.isArray(reply) ? (reply as [unknown, unknown?]) : [reply];
        const entry = this.parse(value);
        if (entry.fingerprint !== op.fingerprint) return MISMATCH;
        if (entry.state === 'completed') return { state: 'completed', record: entry.record };
        const left = Number(pttl);
        return left > 0 ? { state: 'in-progress', lockRemaining: left } : { state: 'in-progress' };
      }
    }
  }

  /** Reads a stored string: `p<prefix>.<seq>:<fingerprint>` or `c<v|e><n>:<fingerprint><body>`. */
  private parse(reply: unknown): StoreEntry {
    const v = text(reply);
    if (v.startsWith('p')) {
      const colon = v.indexOf(':');
      if (colon > 0) return { state: 'in-progress', fingerprint: v.slice(colon + 1) };
    } else if (v.startsWith('c')) {
      const colon = v.indexOf(':', 2);
      const length = Number(v.slice(2, colon));
      if (colon > 2 && Number.isInteger(length)) {
        const fingerprint = v.slice(colon + 1, colon + 1 + length);
        const body = v.slice(colon + 1 + length);
        return {
          state: 'completed',
          fingerprint,
          record: { outcome: v[1] === 'e' ? 'error' : 'value', body },
        };
      }
    }
    throw new IdempotencyStoreError(
      this.name,
      `unreadable entry in Redis: ${JSON.stringify(v.slice(0, 40))}`,
    );
  }

  /** One script, one round trip (two only right after Redis lost its script cache), bounded by `timeout`. */
  private run<R>(s: Script, key: string, args: string[], token = '', fingerprint = ''): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const op = new PendingOp(
        this,
        s,
        key,
        args,
        token,
        fingerprint,
        resolve as (v: unknown) => void,
        reject,
      );
      if (this.timeout !== Infinity) {
        op.deadline = systemClock.now() + this.timeout;
        op.prev = this.tail;
        if (this.tail === undefined) this.head = op;
        else this.tail.next = op;
        this.tail = op;
        if (this.watchdog === undefined) this.arm(this.timeout);
      }
      op.send();
    });
  }

  /**
   * Every operation has the same timeout, so start order is deadline order: in-flight
   * operations sit in one insertion-ordered set and a single timer serves them all, instead
   * of a timer per command.
   */
  private arm(ms: number): void {
    this.watchdog = systemClock.setTimeout(() => this.expire(), ms);
  }

  private expire(): void {
    this.watchdog = undefined;
    const now = systemClock.now();
    for (let op = this.head; op !== undefined; op = this.head) {
      if (op.deadline > now) {
        this.arm(op.deadline - now);
        return;
      }
      const error = new IdempotencyStoreError(
        this.name,
        `${op.script.op} got no answer from Redis within ${formatMs(this.timeout)} (is Redis reachable?)`,
      );
      op.settle(undefined, error);
      if (op.script.op === 'claim') {
        // The claim may still reach Redis after we gave up: free the lock it would leave,
        // best effort (the release is queued behind the claim on the same connection).
        this.run(SCRIPTS.release, op.key, [`p${op.token}`]).catch(() => undefined);
      }
    }
  }

  /** @internal called by PendingOp. */
  finished(op: PendingOp): void {
    if (op.deadline === Infinity) return;
    if (op.prev === undefined) this.head = op.next;
    else op.prev.next = op.next;
    if (op.next === undefined) this.tail = op.prev;
    else op.next.prev = op.prev;
    op.prev = op.next = undefined;
  }

  /** @internal called by PendingOp. */
  exec(op: PendingOp): Promise<unknown> {
    if (op.native) return this.runner.setNxGet(op.key, op.args[0]!, op.args[1]!);
    return op.viaSha
      ? this.runner.evalsha(op.script.sha, op.key, op.args)
      : this.runner.eval(op.script.text, op.key, op.args);
  }

  /** @internal */
  wrap(op: string, error: unknown): IdempotencyStoreError {
    const message = (error as { message?: unknown } | null)?.message;
    return new IdempotencyStoreError(
      this.name,
      `${op} failed: ${typeof message === 'string' ? message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Milliseconds as a Redis PX argument: a positive integer. */
function px(ms: number): string {
  return String(ms === Infinity ? 2_147_483_647 : Math.max(1, Math.ceil(ms)));
}

/**
 * An idempotency store on an ioredis or node-redis client; see RedisStore.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { dependency } from 'bulwark';
 * import { redisStore } from 'bulwark/redis';
 *
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const payments = dependency('payments', {
 *   retry: { maxAttempts: 3 },
 *   idempotency: { store: redisStore({ client, prefix: 'payments' }) },
 * });
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  return new RedisStore(options);
}
