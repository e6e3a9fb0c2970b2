import { randomKey } from '../core/random-key.js';
import { systemClock, type Clock } from '../core/clock.js';
import { IdempotencyStoreError } from '../policies/idempotency/errors.js';
import { withoutStack } from '../core/errors.js';
import type { Disposable } from '../core/events.js';
import { Validator } from '../core/validate.js';
import {
  scopedKey,
  type ClaimResult,
  type IdempotencyRecord,
  type IdempotencyStore,
  type StoreEntry,
} from './store.js';

/** Options of `MemoryStore` / `memoryStore()`. */
export interface MemoryStoreOptions {
  /** Most entries (locks + records) held at once (default 10 000). */
  maxEntries?: number;
  /**
   * Most bytes of stored outcomes held at once (default 64 MiB), counted as the characters
   * of key, fingerprint and body plus ~100 per record. Older records are evicted to make
   * room; a single record larger than this is refused with IdempotencyStoreError.
   */
  maxBytes?: number;
  /** Source of time for TTLs (default the system clock); pass a VirtualClock in tests. */
  clock?: Clock;
}

interface Lock {
  readonly fingerprint: string;
  readonly token: string;
  readonly expiresAt: number;
}

interface Done {
  readonly fingerprint: string;
  readonly record: IdempotencyRecord;
  readonly expiresAt: number;
  readonly bytes: number;
  /** The use this entry's place in the map stands for, and its latest use (a tick). */
  placed: number;
  used: number;
}

const MISMATCH: ClaimResult = Object.freeze({ state: 'mismatch' });
/** Entries the amortised sweep examines per claim, in each map. */
const SWEEP_STEPS = 2;
/** Extra expired locks looked for before a store full of locks gives up. */
const FULL_SCAN_STEPS = 16;
/** Records used since placed that one eviction moves back before it drops the oldest anyway. */
const SECOND_CHANCES = 16;
/** Default `maxBytes`: far below what a default Node heap holds. */
const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
/** Estimated bytes of one record besides its strings (map slot, objects). */
const RECORD_OVERHEAD = 100;

/**
 * The embedded idempotency store: one process, bounded, TTL-evicting, every operation O(1).
 *
 * Locks and records live in two maps. Records are evicted least recently used first and
 * never a lock (dropping a lock would let a duplicate run). A hit only stamps the record
 * with a tick: re-inserting it on every hit churned the map (tens of µs per replay at 100k
 * entries). Eviction looks at the oldest-placed record and, if it was used since it was
 * placed, moves it to the end once (a second chance) instead of dropping it; at most 16
 * such moves per eviction keep every operation O(1), at the price of an approximate LRU.
 * Expiry needs no timer per key: every access checks the entry's time, and each claim
 * advances a sweep cursor over a couple of entries, so expired entries are reclaimed even
 * if never read. Stored outcomes are also bounded by bytes (`maxBytes`).
 *
 * Its keys live in one process: instances behind a load balancer, or a restarted one, do
 * not see each other's. Use `RedisStore` (from `bulwark/redis`) for those.
 *
 * @example
 * ```ts
 * import { MemoryStore, idempotency } from 'bulwark';
 *
 * const store = new MemoryStore({ maxEntries: 50_000 });
 * const webhooks = idempotency({ store, ttl: '1h' });
 * // A webhook delivered twice (same event id) is processed once.
 * await webhooks.execute(() => console.log('processing evt_123'), { idempotencyKey: 'evt_123' });
 * ```
 */
export class MemoryStore implements IdempotencyStore {
  readonly name = 'MemoryStore';
  /** Most entries (locks and records) held at once. */
  readonly maxEntries: number;
  /** Most bytes of stored outcomes held at once (see MemoryStoreOptions.maxBytes). */
  readonly maxBytes: number;
  /** The clock TTLs are measured on. */
  readonly clock: Clock;
  private readonly locks = new Map<string, Lock>();
  private readonly done = new Map<string, Done>();
  private watchers: Map<string, Set<() => void>> | undefined;
  private lockCursor: Iterator<[string, Lock]> | undefined;
  private doneCursor: Iterator<[string, Done]> | undefined;
  private seq = 0;
  private tick = 0;
  private recordBytes = 0;
  /** Makes tokens unique across stores too, so one store's token never fits another's lock. */
  // 48 random bits; node:crypto loads on first use, not at import.
  private readonly tokenPrefix = randomKey().replace(/-/g, '').slice(0, 12);

  constructor(options: MemoryStoreOptions = {}, path = 'MemoryStore') {
    const v = new Validator(path);
    const o = v.object(options, ['maxEntries', 'maxBytes', 'clock']);
    this.maxEntries = v.int('maxEntries', o.maxEntries, 10_000, 1);
    this.maxBytes = v.int('maxBytes', o.maxBytes, DEFAULT_MAX_BYTES, 1);
    const clock = o.clock as Clock | undefined;
    if (clock !== undefined && (typeof clock !== 'object' || typeof clock.now !== 'function')) {
      v.problem('clock', 'a Clock (with now())', clock);
    }
    v.done();
    this.clock = clock ?? systemClock;
  }

  /** Entries held now (locks + records), expired ones not yet reclaimed included. */
  get size(): number {
    return this.locks.size + this.done.size;
  }

  /** Estimated bytes of the stored outcomes held now (see MemoryStoreOptions.maxBytes). */
  get bytes(): number {
    return this.recordBytes;
  }

  /** Locks currently held (expired ones not yet reclaimed included). */
  get lockCount(): number {
    return this.locks.size;
  }

  claim(
    key: string,
    fingerprint: string | undefined,
    lockTtl: number,
    scope?: string,
  ): Promise<ClaimResult> {
    try {
      return Promise.resolve(this.claimNow(scopedKey(key, scope), fingerprint ?? '', lockTtl));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  complete(
    key: string,
    token: string,
    record: IdempotencyRecord,
    ttl: number,
    scope?: string,
  ): Promise<boolean> {
    const k = scopedKey(key, scope);
    const now = this.clock.now();
    const lock = this.locks.get(k);
    if (lock === undefined || lock.token !== token) return Promise.resolve(false);
    if (lock.expiresAt <= now) {
      this.locks.delete(k);
      return Promise.resolve(false);
    }
    const bytes = RECORD_OVERHEAD + k.length + lock.fingerprint.length + record.body.length;
    if (bytes > this.maxBytes) {
      // Refused before the lock goes: the key stays held, so its operation cannot run again.
      return Promise.reject(
        withoutStack(
          () =>
            new IdempotencyStoreError(
              this.name,
              `an outcome of ${bytes} bytes exceeds maxBytes (${this.maxBytes})`,
            ),
        ),
      );
    }
    this.locks.delete(k);
    while (this.recordBytes + bytes > this.maxBytes && this.done.size > 0) this.evictOldest();
    const t = ++this.tick;
    this.done.set(k, {
      fingerprint: lock.fingerprint,
      record,
      expiresAt: now + ttl,
      bytes,
      placed: t,
      used: t,
    });
    this.recordBytes += bytes;
    this.notify(k);
    return Promise.resolve(true);
  }

  release(key: string, token: string, scope?: string): Promise<boolean> {
    const k = scopedKey(key, scope);
    const lock = this.locks.get(k);
    if (lock === undefined || lock.token !== token) return Promise.resolve(false);
    this.locks.delete(k);
    if (lock.expiresAt <= this.clock.now()) return Promise.resolve(false);
    this.notify(k);
    return Promise.resolve(true);
  }

  get(key: string, scope?: string): Promise<StoreEntry | undefined> {
    const k = scopedKey(key, scope);
    const now = this.clock.now();
    const d = this.done.get(k);
    if (d !== undefined) {
      if (d.expiresAt > now) {
        return Promise.resolve({
          state: 'completed',
          fingerprint: d.fingerprint,
          record: d.record,
        });
      }
      this.dropDone(k, d);
    }
    const lock = this.locks.get(k);
    if (lock !== undefined) {
      if (lock.expiresAt > now)
        return Promise.resolve({ state: 'in-progress', fingerprint: lock.fingerprint });
      this.locks.delete(k);
    }
    return Promise.resolve(undefined);
  }

  watch(key: string, scope: string | undefined, onChange: () => void): Disposable {
    const k = scopedKey(key, scope);
    const all = (this.watchers ??= new Map());
    let set = all.get(k);
    if (set === undefined) all.set(k, (set = new Set()));
    set.add(onChange);
    return {
      dispose: () => {
        const current = all.get(k);
        if (current === undefined) return;
        current.delete(onChange);
        if (current.size === 0) all.delete(k);
      },
    };
  }

  /** Drops every entry (locks included): for tests and shutdown. */
  clear(): void {
    this.locks.clear();
    this.done.clear();
    this.recordBytes = 0;
    this.lockCursor = undefined;
    this.doneCursor = undefined;
  }

  private claimNow(k: string, fingerprint: string, lockTtl: number): ClaimResult {
    const now = this.clock.now();
    this.sweep(now, SWEEP_STEPS);
    const d = this.done.get(k);
    if (d !== undefined) {
      if (d.expiresAt > now) {
        if (d.fingerprint !== fingerprint) return MISMATCH;
        // A hit makes the record the most recently used (its place is fixed up on eviction).
        d.used = ++this.tick;
        return { state: 'completed', record: d.record };
      }
      this.dropDone(k, d);
    }
    const lock = this.locks.get(k);
    if (lock !== undefined) {
      if (lock.expiresAt > now) {
        if (lock.fingerprint !== fingerprint) return MISMATCH;
        return { state: 'in-progress', lockRemaining: lock.expiresAt - now };
      }
      // The holder's lock expired (it crashed or overran): the key is free again.
      this.locks.delete(k);
    }
    if (this.locks.size + this.done.size >= this.maxEntries) this.makeRoom(now);
    const token = `${this.tokenPrefix}.${++this.seq}`;
    this.locks.set(k, { fingerprint, token, expiresAt: now + lockTtl });
    return { state: 'claimed', token };
  }

  private makeRoom(now: number): void {
    if (this.done.size > 0) {
      this.evictOldest();
      return;
    }
    // Only locks are left; evicting a live one would allow a duplicate, so reclaim only
    // expired ones and otherwise refuse the claim.
    const before = this.locks.size;
    this.sweep(now, FULL_SCAN_STEPS);
    if (this.locks.size < before) return;
    throw withoutStack(
      () =>
        new IdempotencyStoreError(
          this.name,
          `maxEntries (${this.maxEntries}) reached and every entry is an operation still in progress`,
        ),
    );
  }

  /** Drops the least recently used record: the oldest-placed one not used since it was placed. */
  private evictOldest(): void {
    for (let moved = 0; ; moved++) {
      const first = this.done.entries().next();
      if (first.done) return;
      const [k, d] = first.value;
      // Bounded, so that one claim never walks a whole store of recently used records.
      if (d.used === d.placed || moved >= SECOND_CHANCES) {
        this.dropDone(k, d);
        return;
      }
      // Used since it was placed: move it behind the others, once per use.
      this.done.delete(k);
      d.placed = d.used;
      this.done.set(k, d);
    }
  }

  private dropDone(k: string, d: Done): void {
    this.done.delete(k);
    this.recordBytes -= d.bytes;
  }

  private sweep(now: number, steps: number): void {
    for (let i = 0; i < steps; i++) {
      const it = (this.doneCursor ??= this.done.entries());
      const next = it.next();
      if (next.done) {
        this.doneCursor = undefined;
        break;
      }
      if (next.value[1].expiresAt <= now) this.dropDone(next.value[0], next.value[1]);
    }
    for (let i = 0; i < steps; i++) {
      const it = (this.lockCursor ??= this.locks.entries());
      const next = it.next();
      if (next.done) {
        this.lockCursor = undefined;
        break;
      }
      if (next.value[1].expiresAt <= now) this.locks.delete(next.value[0]);
    }
  }

  private notify(k: string): void {
    const set = this.watchers?.get(k);
    if (set === undefined) return;
    this.watchers!.delete(k);
    for (const onChange of set) {
      try {
        onChange();
      } catch (error) {
        // A faulty waiter must not break the completion that woke it.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The embedded idempotency store; see MemoryStore.
 *
 * @example
 * ```ts
 * import { idempotency, memoryStore } from 'bulwark';
 * import { VirtualClock } from 'bulwark/testing';
 *
 * // In a test, TTLs run on the virtual clock: an hour passes in an instant.
 * const clock = new VirtualClock();
 * const policy = idempotency({ store: memoryStore({ clock }), ttl: '1h', clock });
 * await clock.advance(3_600_000); // every stored outcome has expired now
 * ```
 */
export function memoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
