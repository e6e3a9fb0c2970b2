import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedHeap } from '../../src/core/heap.js';

interface Item {
  key: number;
  id: number;
  heapIndex: number;
}

const item = (key: number, id = key): Item => ({ key, id, heapIndex: -1 });
const byKey = (a: Item, b: Item): boolean => a.key < b.key;

function drain(heap: IndexedHeap<Item>): number[] {
  const keys: number[] = [];
  for (let top = heap.pop(); top !== undefined; top = heap.pop()) keys.push(top.key);
  return keys;
}

describe('IndexedHeap', () => {
  it('is empty at first: peek and pop give undefined', () => {
    const heap = new IndexedHeap<Item>(byKey);
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
    expect(heap.pop()).toBeUndefined();
  });

  it('pops in ascending order whatever the insertion order', () => {
    const heap = new IndexedHeap<Item>(byKey);
    for (const k of [5, 1, 9, 3, 7, 2, 8]) heap.push(item(k));
    expect(heap.size).toBe(7);
    expect(heap.peek()?.key).toBe(1);
    expect(drain(heap)).toEqual([1, 2, 3, 5, 7, 8, 9]);
    expect(heap.size).toBe(0);
  });

  it('keeps every entry’s heapIndex pointing at its own slot, and -1 once out', () => {
    const heap = new IndexedHeap<Item>(byKey);
    const items = [4, 2, 6, 1, 3].map((k) => item(k));
    for (const e of items) heap.push(e);
    for (const e of items) expect(e.heapIndex).toBeGreaterThanOrEqual(0);
    const indexes = new Set(items.map((e) => e.heapIndex));
    expect(indexes.size).toBe(items.length);
    const top = heap.pop()!;
    expect(top.key).toBe(1);
    expect(top.heapIndex).toBe(-1);
    heap.remove(items[0]!);
    expect(items[0]!.heapIndex).toBe(-1);
  });

  it('removes an entry from the middle and still pops the rest in order', () => {
    const heap = new IndexedHeap<Item>(byKey);
    const items = [10, 20, 30, 40, 50, 60, 70].map((k) => item(k));
    for (const e of items) heap.push(e);
    heap.remove(items[3]!); // 40
    heap.remove(items[0]!); // 10, the top
    heap.remove(items[6]!); // 70, the last slot
    expect(drain(heap)).toEqual([20, 30, 50, 60]);
  });

  it('moves the filler up when a removal leaves it smaller than its new parent', () => {
    const heap = new IndexedHeap<Item>(byKey);
    // Pushed in this order the array is already a heap: [0, 3, 1, 4, 5, 6, 2].
    const items = [0, 3, 1, 4, 5, 6, 2].map((k) => item(k));
    for (const e of items) heap.push(e);
    heap.remove(items[3]!); // 4 leaves; 2 (from the other subtree) fills its slot, below 3
    expect(drain(heap)).toEqual([0, 1, 2, 3, 5, 6]);
  });

  it('treats removing an entry twice, or one never pushed, as a no-op', () => {
    const heap = new IndexedHeap<Item>(byKey);
    const a = item(1);
    const b = item(2);
    heap.push(a);
    heap.push(b);
    heap.remove(a);
    heap.remove(a);
    heap.remove(item(0));
    expect(heap.size).toBe(1);
    expect(heap.peek()).toBe(b);
  });

  it('does not remove another heap’s entry that happens to share an index', () => {
    const one = new IndexedHeap<Item>(byKey);
    const two = new IndexedHeap<Item>(byKey);
    const mine = item(1);
    const theirs = item(2);
    one.push(mine);
    two.push(theirs); // both at index 0
    one.remove(theirs);
    expect(one.size).toBe(1);
    expect(one.peek()).toBe(mine);
  });

  it('keeps equal keys and can take an entry back after it was removed', () => {
    const heap = new IndexedHeap<Item>(byKey);
    const again = item(3, 100);
    for (const e of [item(3, 1), item(3, 2), again]) heap.push(e);
    heap.remove(again);
    heap.push(again);
    expect(heap.size).toBe(3);
    expect(drain(heap)).toEqual([3, 3, 3]);
  });

  it('uses the comparator it was given (a max-heap by flipping it)', () => {
    const heap = new IndexedHeap<Item>((a, b) => a.key > b.key);
    for (const k of [2, 9, 4]) heap.push(item(k));
    expect(drain(heap)).toEqual([9, 4, 2]);
  });
});

// A step: push a new entry with this key, remove the live entry at this position (modulo
// the number alive), or pop the minimum.
type Step = { op: 'push'; key: number } | { op: 'remove'; pick: number } | { op: 'pop' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.integer({ min: -50, max: 50 }).map((key) => ({ op: 'push', key }) as const),
  },
  { weight: 2, arbitrary: fc.nat().map((pick) => ({ op: 'remove', pick }) as const) },
  { weight: 1, arbitrary: fc.constant({ op: 'pop' } as const) },
);

describe('IndexedHeap properties', () => {
  it('pop order is sorted order of what is left, under any sequence of push, remove and pop', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200, size: 'max' }), (steps) => {
        const heap = new IndexedHeap<Item>(byKey);
        const alive: Item[] = [];
        let nextId = 0;
        for (const s of steps) {
          if (s.op === 'push') {
            const entry = item(s.key, nextId++);
            heap.push(entry);
            alive.push(entry);
          } else if (s.op === 'remove') {
            if (alive.length === 0) continue;
            const [gone] = alive.splice(s.pick % alive.length, 1);
            heap.remove(gone!);
            expect(gone!.heapIndex).toBe(-1);
          } else {
            const min = Math.min(...alive.map((e) => e.key));
            const top = heap.pop();
            if (alive.length === 0) {
              expect(top).toBeUndefined();
              continue;
            }
            expect(top!.key).toBe(min);
            alive.splice(alive.indexOf(top!), 1);
          }
          expect(heap.size).toBe(alive.length);
        }
        const expected = alive.map((e) => e.key).sort((a, b) => a - b);
        expect(drain(heap)).toEqual(expected);
      }),
    );
  });

  it('peek is always the minimum of the entries alive', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 100, size: 'max' }), (steps) => {
        const heap = new IndexedHeap<Item>(byKey);
        const alive: Item[] = [];
        for (const s of steps) {
          if (s.op === 'push') {
            const entry = item(s.key);
            heap.push(entry);
            alive.push(entry);
          } else if (alive.length > 0) {
            const [gone] = alive.splice(s.op === 'remove' ? s.pick % alive.length : 0, 1);
            heap.remove(gone!);
          }
          const min = alive.length === 0 ? undefined : Math.min(...alive.map((e) => e.key));
          expect(heap.peek()?.key).toBe(min);
        }
      }),
    );
  });
});
