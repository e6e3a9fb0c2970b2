import { describe, expect, it } from 'vitest';
import { ConfigError, IdempotencyStoreError } from '../../src/index.js';
import { MemoryStore, memoryStore } from '../../src/stores/memory.js';
import { storeConformance } from '../../src/testing/store-conformance.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

const clock = new VirtualClock();
storeConformance(() => new MemoryStore({ clock }), {
  name: 'MemoryStore passes the store conformance suite',
  advance: (ms) => clock.advance(ms),
  test: { describe, it, expect },
});

describe('storeConformance', () => {
  it('says how to pass a test framework when none is found', () => {
    expect(() => storeConformance(() => new MemoryStore())).toThrow(
      /pass \{ test: \{ describe, it, expect \} \}/,
    );
  });
});

const rec = (body: string) => ({ outcome: 'value' as const, body });

async function completeKey(store: MemoryStore, key: string, ttl = 60_000): Promise<void> {
  const r = await store.claim(key, 'fp', 60_000);
  if (r.state !== 'claimed') throw new Error(`could not claim ${key}: ${r.state}`);
  expect(await store.complete(key, r.token, rec(key), ttl)).toBe(true);
}

describe('MemoryStore', () => {
  it('rejects bad options with a ConfigError naming them', () => {
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(ConfigError);
    expect(() => new MemoryStore({ maxEntries: 0 })).toThrow(
      /MemoryStore\.maxEntries: expected integer ≥ 1, got 0/,
    );
    expect(() => new MemoryStore({ maxEntrys: 5 } as never)).toThrow(/maxEntrys/);
    expect(memoryStore().maxEntries).toBe(10_000);
  });

  it('evicts the least recently used completed record when full', async () => {
    const store = new MemoryStore({ maxEntries: 3, clock: new VirtualClock() });
    await completeKey(store, 'a');
    await completeKey(store, 'b');
    await completeKey(store, 'c');
    // A replay of "a" makes it recent, so "b" is now the oldest.
    expect((await store.claim('a', 'fp', 1000)).state).toBe('completed');
    await completeKey(store, 'd');
    expect(store.size).toBe(3);
    expect(await store.get('b')).toBeUndefined();
    expect((await store.get('a'))?.state).toBe('completed');
    expect((await store.get('c'))?.state).toBe('completed');
    expect((await store.get('d'))?.state).toBe('completed');
  });

  it('never evicts an in-progress claim to make room', async () => {
    const store = new MemoryStore({ maxEntries: 3, clock: new VirtualClock() });
    const held = await store.claim('held', 'fp', 60_000);
    await completeKey(store, 'x');
    await completeKey(store, 'y');
    await completeKey(store, 'z');
    await completeKey(store, 'w');
    expect(store.size).toBe(3);
    expect(await store.get('held')).toEqual({ state: 'in-progress', fingerprint: 'fp' });
    expect(held.state).toBe('claimed');
  });

  it('refuses a new claim with IdempotencyStoreError when every entry is in progress', async () => {
    const store = new MemoryStore({ maxEntries: 2, clock: new VirtualClock() });
    await store.claim('a', 'fp', 60_000);
    await store.claim('b', 'fp', 60_000);
    const error = await store.claim('c', 'fp', 60_000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyStoreError);
    expect((error as IdempotencyStoreError).store).toBe('MemoryStore');
    expect((error as Error).message).toMatch(/maxEntries \(2\) reached/);
    // Existing keys still answer.
    expect((await store.claim('a', 'fp', 60_000)).state).toBe('in-progress');
  });

  it('reclaims expired locks when full instead of refusing', async () => {
    const c = new VirtualClock();
    const store = new MemoryStore({ maxEntries: 2, clock: c });
    await store.claim('a', 'fp', 100);
    await store.claim('b', 'fp', 100);
    await c.advance(100);
    expect((await store.claim('c', 'fp', 100)).state).toBe('claimed');
    expect(store.size).toBeLessThanOrEqual(2);
  });

  it('reclaims expired entries that are never read again, without a timer', async () => {
    const c = new VirtualClock();
    const store = new MemoryStore({ clock: c });
    for (let i = 0; i < 100; i++) await completeKey(store, `old-${i}`, 1000);
    for (let i = 0; i < 20; i++) await store.claim(`lock-${i}`, 'fp', 500);
    expect(c.pending).toBe(0);
    await c.advance(1000);
    expect(store.size).toBe(120);
    // Claims of other keys sweep a few entries each.
    for (let i = 0; i < 100; i++) await completeKey(store, `new-${i}`, 60_000);
    expect(store.size).toBe(100);
    expect(store.lockCount).toBe(0);
  });

  it('expires lazily on access to the exact millisecond', async () => {
    const c = new VirtualClock();
    const store = new MemoryStore({ clock: c });
    const r = await store.claim('k', 'fp', 100);
    await c.advance(99);
    expect(await store.claim('k', 'fp', 100)).toEqual({ state: 'in-progress', lockRemaining: 1 });
    await c.advance(1);
    expect((await store.claim('k', 'fp', 100)).state).toBe('claimed');
    expect(r.state).toBe('claimed');
  });

  it('stops notifying a disposed watcher and notifies every live one once', async () => {
    const store = new MemoryStore({ clock: new VirtualClock() });
    const r = await store.claim('k', 'fp', 1000);
    const seen: string[] = [];
    const a = store.watch('k', undefined, () => seen.push('a'));
    store.watch('k', undefined, () => seen.push('b'));
    store.watch('k', 'other-scope', () => seen.push('scoped'));
    a.dispose();
    if (r.state !== 'claimed') throw new Error('not claimed');
    await store.complete('k', r.token, rec('v'), 1000);
    await store.complete('k', r.token, rec('v'), 1000);
    expect(seen).toEqual(['b']);
  });

  it('clears everything on clear()', async () => {
    const store = new MemoryStore({ clock: new VirtualClock() });
    await completeKey(store, 'a');
    await store.claim('b', 'fp', 1000);
    store.clear();
    expect(store.size).toBe(0);
    expect((await store.claim('a', 'fp', 1000)).state).toBe('claimed');
  });
});
