import { describe, expect, it } from 'vitest';
import {
  adaptiveThrottle,
  bulkhead,
  circuitBreaker,
  ConfigError,
  fallback,
  hedge,
  idempotency,
  loadShedder,
  retry,
} from '../../src/index.js';

// Every policy with events, with one event name it really has.
const policies = [
  ['retry', () => retry(), 'giveUp'],
  ['fallback', () => fallback(1), 'fallback'],
  ['bulkhead', () => bulkhead({ maxConcurrent: 1 }), 'rejected'],
  ['hedge', () => hedge({ delay: 10 }), 'hedge'],
  ['loadShedder', () => loadShedder({ limit: 1 }), 'shed'],
  ['adaptiveThrottle', () => adaptiveThrottle(), 'shed'],
  ['idempotency', () => idempotency(), 'executed'],
  ['circuitBreaker', () => circuitBreaker(), 'stateChange'],
] as const;

interface Observable {
  kind: string;
  on(event: string, listener: (e: unknown) => void): { dispose(): void };
}

describe('policy.on()', () => {
  it.each(policies)(
    '%s rejects an unknown event name, naming it and the known ones',
    (_, make, known) => {
      const policy = make() as unknown as Observable;
      let error: unknown;
      try {
        policy.on('open', () => {});
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(
        new RegExp(`^${policy.kind}\\.on\\(event\\): unknown event "open" \\(known: .*${known}`),
      );
      expect(() => policy.on(known, () => {}).dispose()).not.toThrow();
    },
  );

  it.each(policies)('%s returns a subscription that `using` disposes', (_, make, known) => {
    const policy = make() as unknown as Observable;
    const subscription = policy.on(known, () => {}) as { dispose(): void } & Disposable;
    // `using` calls [Symbol.dispose], which is dispose() itself.
    expect(subscription[Symbol.dispose]).toBe(subscription.dispose);
    {
      using _held = subscription;
    }
  });

  it('a disposed listener hears nothing more, through `using` as through dispose()', async () => {
    const policy = fallback('dflt');
    const heard: unknown[] = [];
    {
      using _sub = policy.on('fallback', (e) => heard.push(e.kind));
      await policy.execute(() => Promise.reject(new Error('down')));
    }
    await policy.execute(() => Promise.reject(new Error('down')));
    expect(heard).toEqual(['error']);
  });
});
