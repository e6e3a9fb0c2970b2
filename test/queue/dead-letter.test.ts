import { describe, expect, it } from 'vitest';
import { FirstFailures } from '../../src/queue/dead-letter.js';

describe('FirstFailures', () => {
  it('keeps the first failure of a message until it is taken or forgotten', () => {
    const f = new FirstFailures();
    expect(f.note('a', 100)).toBe(100);
    expect(f.note('a', 250)).toBe(100);
    expect(f.take('a', 400)).toBe(100);
    // Taken: a later dead letter of the same id starts afresh.
    expect(f.take('a', 500)).toBe(500);
    f.note('b', 1);
    f.forget('b');
    expect(f.size).toBe(0);
  });

  it('stays bounded: the oldest entry goes first when full', () => {
    const f = new FirstFailures(3);
    for (const [id, at] of [
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 4],
    ] as const)
      f.note(id, at);
    expect(f.size).toBe(3);
    expect(f.take('a', 99)).toBe(99);
    expect(f.take('d', 99)).toBe(4);
  });
});
