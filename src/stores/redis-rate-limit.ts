import { Validator } from '../core/validate.js';
import { GcraState, SLOT_EPSILON } from '../policies/rate-limit/gcra.js';
import {
  type GcraLimit,
  type RateLimitGrant,
  type RateLimitStore,
  type StoreErrorMode,
} from './limit-store.js';
import { RATE_ACQUIRE, RATE_CANCEL } from './lua/rate-acquire.js';
import type { RedisClientLike } from './redis.js';
import { readClientAndPrefix, readStoreErrorOptions, storeFailure } from './redis-limit-options.js';
import { ScriptRunner, luaScript, type ScriptCallError } from './redis-scripts.js';

/** Options of `RedisRateLimitStore`; only `client` is required. */
export interface RedisRateLimitStoreOptions {
  /** An ioredis client (Redis or Cluster) or a node-redis client the application already has. */
  client: RedisClientLike;
  /** Namespace of the limits' keys (default `bulwark:rate`). Processes sharing it share limits. */
  prefix?: string;
  /** ms to wait for Redis per acquire before `onStoreError` applies (default 1000). */
  timeout?: number | string;
  /**
   * When Redis fails or does not answer in time (default `'local'`): `'fail'` refuses the
   * call with a `LimitStoreError`, `'allow'` lets it through unlimited, `'local'` applies
   * this process's share of the limit (`rate / fleetSize`) until Redis answers again.
   */
  onStoreError?: StoreErrorMode;
  /** How many processes usually share the limit: sizes the `'local'` fallback (default 1). */
  fleetSize?: number;
}

const ACQUIRE = luaScript('rate acquire', RATE_ACQUIRE);
const CANCEL = luaScript('rate cancel', RATE_CANCEL);
const NOW: RateLimitGrant = Object.freeze({ ok: true, waitMs: 0, retryAfterMs: 0 });
/** Stands for "no longest wait" in the script (µs; 30 years). */
const UNBOUNDED_US = 1e15;

/**
 * One GCRA rate limit shared by every process that uses the same Redis and `prefix`: one
 * Lua script per acquire (one round trip, EVALSHA with a NOSCRIPT fallback), timed by Redis
 * server time (`TIME`), not by each host's clock. Each limit is one string key,
 * `{prefix:name}:rate`, hash-tagged so the store works on Redis Cluster.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { rateLimit } from 'bulwark';
 * import { RedisRateLimitStore } from 'bulwark/redis';
 *
 * const store = new RedisRateLimitStore({ client: new Redis(), prefix: 'shop:rate', fleetSize: 30 });
 * // 100 requests/s for the whole fleet, however many pods run.
 * const quota = rateLimit({ name: 'payments', rate: 100, burst: 10, wait: '200ms', store });
 * ```
 */
export class RedisRateLimitStore implements RateLimitStore {
  /** `RedisRateLimitStore(<prefix>)`, in errors. */
  readonly name: string;
  /** Namespace of the limits' keys. */
  readonly prefix: string;
  /** ms an acquire may wait for Redis. */
  readonly timeout: number;
  /** What happens when Redis fails. */
  readonly onStoreError: StoreErrorMode;
  /** Processes assumed to share each limit, for the `'local'` fallback. */
  readonly fleetSize: number;
  /** Acquires that Redis failed or did not answer in time (each handled per `onStoreError`). */
  storeErrors = 0;
  private readonly runner: ScriptRunner;
  private readonly fallback = new Map<string, GcraState>();
  private readonly argsCache = new WeakMap<GcraLimit, string[]>();
  private readonly keysCache = new Map<string, string[]>();

  constructor(options: RedisRateLimitStoreOptions, path = 'RedisRateLimitStore') {
    const v = new Validator(path);
    const o = v.object(options, ['client', 'prefix', 'timeout', 'onStoreError', 'fleetSize']);
    const { evaluator, prefix } = readClientAndPrefix(v, o, 'bulwark:rate');
    const { timeout, onStoreError, fleetSize } = readStoreErrorOptions(v, o);
    v.done();
    this.runner = new ScriptRunner(evaluator!, timeout);
    this.prefix = prefix;
    this.timeout = timeout;
    this.onStoreError = onStoreError;
    this.fleetSize = fleetSize;
    this.name = `RedisRateLimitStore(${prefix})`;
  }

  /** The Redis key of a limit; public so that tests and tools can inspect it. */
  redisKey(key: string): string {
    return `{${this.prefix}:${key}}:rate`;
  }

  acquire(key: string, limit: GcraLimit, maxWaitMs: number, now: number): Promise<RateLimitGrant> {
    // A policy asks with the same limit object every time: its script arguments are kept.
    let limitArgs = this.argsCache.get(limit);
    if (limitArgs === undefined) {
      const interval = Math.max(1, Math.ceil(limit.interval * 1000));
      const burst = Math.round(limit.tolerance / limit.interval);
      limitArgs = [String(interval), String(burst * interval)];
      this.argsCache.set(limit, limitArgs);
    }
    let keys = this.keysCache.get(key);
    if (keys === undefined) {
      keys = [this.redisKey(key)];
      if (this.keysCache.size < 1024) this.keysCache.set(key, keys);
    }
    const maxWait = maxWaitMs === Infinity ? UNBOUNDED_US : Math.floor(maxWaitMs * 1000);
    return this.runner.run(ACQUIRE, keys, [limitArgs[0]!, limitArgs[1]!, String(maxWait)], this, {
      key,
      limit,
      maxWaitMs,
      now,
    }) as Promise<RateLimitGrant>;
  }

  /** @internal The script's reply: {1, wait µs, TAT, slot µs} or {0, wait µs}. */
  decode(reply: unknown): RateLimitGrant {
    const r = reply as [unknown, unknown, unknown?, unknown?];
    const waitMs = Number(r[1]) / 1000;
    if (Number(r[0]) !== 1) return { ok: false, waitMs: 0, retryAfterMs: waitMs };
    return { ok: true, waitMs, retryAfterMs: 0, token: String(r[2]), slotTime: Number(r[3]) };
  }

  /** @internal Redis failed or timed out: `onStoreError` decides. */
  fail(error: ScriptCallError, context: unknown): RateLimitGrant {
    const c = context as { key: string; limit: GcraLimit; maxWaitMs: number; now: number };
    return this.failed(c.key, c.limit, c.maxWaitMs, c.now, error);
  }

  cancel(key: string, limit: GcraLimit, grant: RateLimitGrant): void {
    if (typeof grant.token !== 'string') return; // a fallback grant: nothing in Redis
    const interval = Math.max(1, Math.ceil(limit.interval * 1000));
    this.runner
      .run(CANCEL, [this.redisKey(key)], [grant.token, String(interval)])
      .catch(() => undefined); // best effort: an unreturned slot only makes the limit stricter
  }

  private failed(
    key: string,
    limit: GcraLimit,
    maxWaitMs: number,
    now: number,
    error: ScriptCallError,
  ): RateLimitGrant {
    this.storeErrors++;
    if (this.onStoreError === 'allow') return NOW;
    if (this.onStoreError === 'fail') throw storeFailure(this.name, error);
    // This process's share: one n-th of the rate and of the burst.
    const share: GcraLimit = {
      interval: limit.interval * this.fleetSize,
      tolerance:
        Math.floor(Math.round(limit.tolerance / limit.interval) / this.fleetSize) *
        limit.interval *
        this.fleetSize,
    };
    let state = this.fallback.get(key);
    if (state === undefined) this.fallback.set(key, (state = new GcraState()));
    const wait = state.waitAt(now, share);
    if (wait > maxWaitMs + SLOT_EPSILON) return { ok: false, waitMs: 0, retryAfterMs: wait };
    state.reserve(now, share);
    return wait <= SLOT_EPSILON ? NOW : { ok: true, waitMs: wait, retryAfterMs: 0 };
  }
}
