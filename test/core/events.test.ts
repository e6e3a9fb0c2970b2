import { describe, expect, it } from 'vitest';
import { EventHub } from '../../src/core/events.js';

describe('EventHub', () => {
  it('delivers events to listeners until disposed', () => {
    const hub = new EventHub<{ ping: number }>({ ping: true });
    const seen: number[] = [];
    expect(hub.has('ping')).toBe(false);
    const sub = hub.on('ping', (n) => seen.push(n));
    expect(hub.has('ping')).toBe(true);
    hub.emit('ping', 1);
    sub.dispose();
    hub.emit('ping', 2);
    expect(seen).toEqual([1]);
    expect(hub.has('ping')).toBe(false);
  });

  it('keeps delivering to the others when a listener throws', async () => {
    const hub = new EventHub<{ ping: number }>({ ping: true });
    const seen: number[] = [];
    const thrown = new Promise<unknown>((resolve) => {
      const original = queueMicrotask;
      globalThis.queueMicrotask = (cb) =>
        original(() => {
          try {
            cb();
          } catch (e) {
            resolve(e);
          } finally {
            globalThis.queueMicrotask = original;
          }
        });
    });
    hub.on('ping', () => {
      throw new Error('bad hook');
    });
    hub.on('ping', (n) => seen.push(n));
    hub.emit('ping', 7);
    expect(seen).toEqual([7]);
    expect(await thrown).toMatchObject({ message: 'bad hook' });
  });
});
