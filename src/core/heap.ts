/**
 * A binary min-heap whose entries remember their own index, so that removing any entry
 * (a call that settled before its deadline) is O(log n) without a search.
 */
export interface HeapEntry {
  heapIndex: number;
}

export class IndexedHeap<T extends HeapEntry> {
  private readonly items: T[] = [];

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(entry: T): void {
    entry.heapIndex = this.items.length;
    this.items.push(entry);
    this.up(entry.heapIndex);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  /** Removes `entry` if it is in this heap; a no-op otherwise. */
  remove(entry: T): void {
    const i = entry.heapIndex;
    if (i >= 0 && this.items[i] === entry) this.removeAt(i);
  }

  private removeAt(i: number): void {
    const items = this.items;
    const removed = items[i]!;
    const last = items.pop()!;
    removed.heapIndex = -1;
    if (i < items.length) {
      items[i] = last;
      last.heapIndex = i;
      this.down(i);
      this.up(last.heapIndex);
    }
  }

  private up(i: number): void {
    const items = this.items;
    const entry = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!this.less(entry, p)) break;
      items[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    items[i] = entry;
    entry.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const entry = items[i]!;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.less(items[right]!, items[left]!)) child = right;
      const c = items[child]!;
      if (!this.less(c, entry)) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = entry;
    entry.heapIndex = i;
  }
}
