import { randomBytes } from 'node:crypto';
import { systemClock, type TimerHandle } from '../core/clock.js';
import { Validator } from '../core/validate.js';
import {
  type ConcurrencyGrant,
  type ConcurrencyStore,
  type StoreErrorMode,
} from './limit-store.js';
import { LEASE_ACQUIRE, LEASE_RELEASE, LEASE_RENEW } from './lua/lease.js';
import type { RedisClientLike } from './redis.js';
import { readClientAndPrefix, readStoreErrorOptions, storeFailure } from './redis-limit-options.js';
import { ScriptRunner, luaScript, type ScriptCallError } from './redis-scripts.js';

/** Options of `RedisConcurrencyStore`; only `client` is required. */
export interface RedisConcurrencyStoreOptions {
  /** An ioredis client (Redis or Cluster) or a node-redis client the application already has. */
  client: RedisClientLike;
  /** Namespace of the leases' keys (default `bulwark:conc`). Processes sharing it share limits. */
  prefix?: string;
  /**
   * How long a lease lives unless renewed (default 30 s). Renewed every third of it while
   * the call runs; a process that dies frees its slots within this time.
   */
  leaseTtl?: number | string;
  /** ms to wait for Redis per acquire before `onStoreError` applies (default 1000). */
  timeout?: number | string;
  /**
   * When Redis fails or does not answer in time (default `'local'`): `'fail'` refuses the
   * call with a `LimitStoreError`, `'allow'` runs it without a lease, `'local'` caps this
   * process at its share (`maxConcurrent / fleetSize`, at least 1) until Redis answers again.
   */
  onStoreError?: StoreErrorMode;
  /** How many processes usually share the limit: sizes the `'local'` fallback (default 1). */
  fleetSize?: number;
}

const ACQUIRE = luaScript('lease acquire', LEASE_ACQUIRE);
const RENEW = luaScript('lease renew', LEASE_RENEW);
const RELEASE = luaScript('lease release', LEASE_RELEASE);

/** A slot held in Redis (`id` set) or, in the local fallback, in this process. */
interface Lease {
  readonly key: string;
  readonly id: string | undefined;
  /** Set once the lease could not be renewed in time: the slot may be someone else's now. */
  lost: boolean;
}

interface AcquireContext {
  readonly key: string;
  readonly id: string;
  readonly max: number;
}

const UNLEASED: ConcurrencyGrant = Object.freeze({ ok: true, holders: 0 });

/**
 * A fleet-wide concurrency limit on Redis: pass it as a bulkhead's `store`, and the
 * bulkhead's `maxConcurrent` holds across every process sharing the same Redis and
 * `prefix`. A slot is a lease in one sorted set per limit (`{prefix:name}:leases`, hash-tagged for
 * Cluster), taken in one round trip with Redis server time; leases expire after `leaseTtl`
 * unless renewed (one renewal round trip per limit per third of the TTL, for all the leases
 * this process holds), so a killed process frees its slots within the TTL. Lease ids are
 * unique, so a late release of an expired lease never frees another holder's slot.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { bulkhead } from 'bulwark';
 * import { RedisConcurrencyStore } from 'bulwark/redis';
 *
 * const store = new RedisConcurrencyStore({ client: new Redis(), prefix: 'shop:conc', leaseTtl: '10s' });
 * // At most 20 reports generated at once across the whole fleet.
 * const reports = bulkhead({ name: 'reports', maxConcurrent: 20, store });
 * ```
 */
export class RedisConcurrencyStore implements ConcurrencyStore {
  /** `RedisConcurrencyStore(<prefix>)`, in errors. */
  readonly name: string;
  /** Namespace of the leases' keys. */
  readonly prefix: string;
  /** ms a lease lives unless renewed. */
  readonly leaseTtl: number;
  /** ms an acquire may wait for Redis. */
  readonly timeout: number;
  /** What happens when Redis fails. */
  readonly onStoreError: StoreErrorMode;
  /** Processes assumed to share each limit, for the `'local'` fallback. */
  readonly fleetSize: number;
  /** Acquires that Redis failed or did not answer in time (each handled per `onStoreError`). */
  storeErrors = 0;
  /** Leases found expired at renewal while their call still ran. */
  leasesLost = 0;
  private readonly runner: ScriptRunner;
  private readonly idPrefix = randomBytes(9).toString('base64url');
  private seq = 0;
  /** Leases this process holds in Redis, by limit key: what the renewal timer extends. */
  private readonly held = new Map<string, Map<string, Lease>>();
  /** Slots taken by the local fallback, by limit key. */
  private readonly localHeld = new Map<string, number>();
  private renewal: TimerHandle | undefined;

  constructor(options: RedisConcurrencyStoreOptions, path = 'RedisConcurrencyStore') {
    const v = new Validator(path);
    const o = v.object(options, [
      'client',
      'prefix',
      'leaseTtl',
      'timeout',
      'onStoreError',
      'fleetSize',
    ]);
    const { evaluator, prefix } = readClientAndPrefix(v, o, 'bulwark:conc');
    const leaseTtl = v.duration('leaseTtl', o.leaseTtl, 30_000, { min: 30 });
    const { timeout, onStoreError, fleetSize } = readStoreErrorOptions(v, o);
    v.done();
    this.runner = new ScriptRunner(evaluator!, timeout);
    this.prefix = prefix;
    this.leaseTtl = Math.ceil(leaseTtl);
    this.timeout = timeout;
    this.onStoreError = onStoreError;
    this.fleetSize = fleetSize;
    this.name = `RedisConcurrencyStore(${prefix})`;
  }

  /** The Redis key of a limit's leases; public so that tests and tools can inspect it. */
  redisKey(key: string): string {
    return `{${this.prefix}:${key}}:leases`;
  }

  /** Leases this process holds in Redis now (all limits). */
  get leases(): number {
    let n = 0;
    for (const m of this.held.values()) n += m.size;
    return n;
  }

  acquire(key: string, max: number): Promise<ConcurrencyGrant> {
    const id = `${this.idPrefix}.${++this.seq}`;
    const context: AcquireContext = { key, id, max };
    return this.runner.run(
      ACQUIRE,
      [this.redisKey(key)],
      [String(max), String(this.leaseTtl), id],
      this,
      context,
    ) as Promise<ConcurrencyGrant>;
  }

  /** @internal The acquire script's reply: {1, holders} or {0, holders, ms to the first expiry}. */
  decode(reply: unknown, context: unknown): ConcurrencyGrant {
    const { key, id } = context as AcquireContext;
    const r = reply as [unknown, unknown, unknown?];
    const holders = Number(r[1]);
    if (Number(r[0]) !== 1) return { ok: false, holders };
    const lease: Lease = { key, id, lost: false };
    this.track(lease);
    return { ok: true, holders, lease };
  }

  /** @internal Redis failed or timed out: `onStoreError` decides. */
  fail(error: ScriptCallError, context: unknown): ConcurrencyGrant {
    const { key, max } = context as AcquireContext;
    return this.failed(key, max, error);
  }

  /** @internal A lease granted after its acquire timed out: nobody runs under it, so it goes back. */
  late(reply: unknown, context: unknown): void {
    const { key, id } = context as AcquireContext;
    if (Number((reply as unknown[])[0]) === 1) this.releaseId(key, id);
  }

  release(key: string, grant: ConcurrencyGrant): void {
    const lease = grant.lease as Lease | undefined;
    if (lease === undefined) return;
    if (lease.id === undefined) {
      this.localHeld.set(key, (this.localHeld.get(key) ?? 1) - 1);
      return;
    }
    const leases = this.held.get(key);
    if (leases?.delete(lease.id) && leases.size === 0) this.held.delete(key);
    if (this.held.size === 0) this.stopRenewal();
    this.releaseId(key, lease.id);
  }

  private releaseId(key: string, id: string): void {
    // Best effort: a release that never arrives is recovered by the lease's expiry.
    this.runner.run(RELEASE, [this.redisKey(key)], [id]).catch(() => undefined);
  }

  private failed(key: string, max: number, error: ScriptCallError): ConcurrencyGrant {
    this.storeErrors++;
    if (this.onStoreError === 'allow') return UNLEASED;
    if (this.onStoreError === 'fail') throw storeFailure(this.name, error);
    const share = Math.max(1, Math.floor(max / this.fleetSize));
    const used = this.localHeld.get(key) ?? 0;
    if (used >= share) return { ok: false, holders: used };
    this.localHeld.set(key, used + 1);
    return { ok: true, holders: used + 1, lease: { key, id: undefined, lost: false } };
  }

  private track(lease: Lease): void {
    let leases = this.held.get(lease.key);
    if (leases === undefined) this.held.set(lease.key, (leases = new Map()));
    leases.set(lease.id!, lease);
    if (this.renewal === undefined)
      this.renewal = systemClock.setTimeout(this.renew, this.leaseTtl / 3);
  }

  private stopRenewal(): void {
    if (this.renewal === undefined) return;
    systemClock.clearTimeout(this.renewal);
    this.renewal = undefined;
  }

  /** One round trip per limit extends every lease this process holds on it. */
  private readonly renew = (): void => {
    this.renewal = undefined;
    for (const [key, leases] of this.held) {
      const ids = [...leases.keys()];
      this.runner.run(RENEW, [this.redisKey(key)], [String(this.leaseTtl), ...ids]).then(
        (lost) => {
          for (const id of lost as string[]) {
            const lease = leases.get(String(id));
            if (lease !== undefined && !lease.lost) {
              lease.lost = true;
              this.leasesLost++;
            }
          }
        },
        () => undefined, // Redis is away: the next renewal tries again within the TTL
      );
    }
    if (this.held.size > 0) this.renewal = systemClock.setTimeout(this.renew, this.leaseTtl / 3);
  };
}
