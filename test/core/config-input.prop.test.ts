import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseDuration, retry, timeout } from '../../src/index.js';

const KNOWN_EXECUTE_OPTIONS = new Set([
  'signal',
  'budget',
  'deadline',
  'priority',
  'idempotencyKey',
  'fingerprint',
  'parent',
]);

describe('config input properties', () => {
  it('a duration string reads as a finite ms count or not at all: never Infinity unless written out', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^\d{1,500}(\.\d{1,5})?$/),
        fc.constantFrom('ms', 's', 'm', 'h'),
        (digits, unit) => {
          const ms = parseDuration(`${digits}${unit}`);
          return ms === undefined || (Number.isFinite(ms) && ms >= 0);
        },
      ),
    );
  });

  it('execute() rejects every unknown option with a ConfigError naming it, and never runs fn', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !KNOWN_EXECUTE_OPTIONS.has(k)),
        fc.anything(),
        async (key, value) => {
          let ran = false;
          const options = Object.defineProperty({}, key, { value, enumerable: true });
          const error = await retry()
            .execute(() => {
              ran = true;
            }, options as never)
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).problems[0]!.path).toBe(key);
          expect(ran).toBe(false);
        },
      ),
    );
  });

  it('timeout() accepts exactly the limits dependency() accepts: ≥ 1 ms or Infinity', () => {
    fc.assert(
      fc.property(fc.oneof(fc.double({ noNaN: true }), fc.constant(undefined)), (ms) => {
        const ok = ms !== undefined && ms >= 1;
        let made = true;
        try {
          timeout(ms as number);
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
          made = false;
        }
        return made === ok;
      }),
    );
  });
});
