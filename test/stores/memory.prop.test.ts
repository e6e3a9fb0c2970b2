import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { idempotency } from '../../src/policies/idempotency/idempotency.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { VirtualClock } from '../../src/testing/virtual-clock.js';

type Behaviour = 'ok' | 'retryable' | 'fatal' | 'crash';

interface Execution {
  key: number;
  value: string;
  behaviour: Behaviour;
  startTime: number;
  startSeq: number;
  endTime?: number;
  endSeq?: number;
}

const LOCK_TTL = 100;

class RetryableError extends Error {
  readonly code = 'ECONNRESET';
}

/**
 * Runs the calls concurrently, with the scheduler deciding the order of call starts,
 * completions and clock advances; then drains the clock so every call that can finish
 * does. Returns what ran and what each caller got.
 */
async function runScenario(
  s: fc.Scheduler,
  calls: Array<{ key: number; behaviour: Behaviour; duration: number }>,
  steps: number[],
  options: { ttl: number; onInProgress: 'reject' | 'wait' },
) {
  const clock = new VirtualClock();
  const store = new MemoryStore({ clock, maxEntries: 1000 });
  const policy = idempotency({
    store,
    clock,
    ttl: options.ttl,
    lockTtl: LOCK_TTL,
    onInProgress: options.onInProgress,
  });
  const executions: Execution[] = [];
  const answers: Array<{ key: number; ok: boolean; value: unknown } | undefined> = calls.map(
    () => undefined,
  );
  const crashed = new Set<number>();
  let seq = 0;

  const started = calls.map((call, i) =>
    s.schedule(Promise.resolve(i), `start ${i}`).then(() =>
      policy
        .execute(
          async () => {
            const e: Execution = {
              key: call.key,
              value: `k${call.key}-run${executions.length}`,
              behaviour: call.behaviour,
              startTime: clock.now(),
              startSeq: seq++,
            };
            executions.push(e);
            if (call.behaviour === 'crash') {
              crashed.add(i);
              return new Promise<never>(() => {});
            }
            await clock.sleep(call.duration);
            await s.schedule(Promise.resolve(), `finish ${e.value}`);
            e.endTime = clock.now();
            e.endSeq = seq++;
            if (call.behaviour === 'retryable') throw new RetryableError('reset');
            if (call.behaviour === 'fatal') throw new Error(`fatal ${e.value}`);
            return e.value;
          },
          { idempotencyKey: `key-${call.key}` },
        )
        .then(
          (value) => (answers[i] = { key: call.key, ok: true, value }),
          (error: unknown) => (answers[i] = { key: call.key, ok: false, value: error }),
        ),
    ),
  );
  void started;
  // The scheduler picks the order of starts and finishes; time moves only between steps.
  for (const step of steps) {
    if (step > 0) await clock.advance(step);
    else if (s.count() > 0) await s.waitOne();
  }
  for (let round = 0; round < 40; round++) {
    await s.waitAll();
    await clock.advance(LOCK_TTL / 2);
  }
  await s.waitAll();
  return { executions, answers, crashed };
}

const callArb = (maxDuration: number, behaviours: Behaviour[]) =>
  fc.record({
    key: fc.integer({ min: 0, max: 2 }),
    behaviour: fc.constantFrom(...behaviours),
    duration: fc.integer({ min: 0, max: maxDuration }),
  });

/** 0 = let the scheduler release one task; n > 0 = move the clock n ms. */
const stepsArb = (maxAdvance: number) =>
  fc.array(
    fc.oneof(
      fc.constant(0),
      fc.constant(0),
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: maxAdvance }),
    ),
    { maxLength: 30 },
  );

describe('MemoryStore + idempotency under any interleaving', () => {
  it('runs a key at most once within ttl unless the first run was released, outlived its lock, or expired', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(callArb(LOCK_TTL - 1, ['ok', 'ok', 'retryable', 'fatal', 'crash']), {
          minLength: 1,
          maxLength: 10,
        }),
        stepsArb(400),
        fc.constantFrom<'reject' | 'wait'>('reject', 'wait'),
        fc.constantFrom(300, 5000),
        async (s, calls, steps, onInProgress, ttl) => {
          const { executions } = await runScenario(s, calls, steps, { ttl, onInProgress });
          for (let i = 0; i < executions.length; i++) {
            for (let j = i + 1; j < executions.length; j++) {
              const a = executions[i]!;
              const b = executions[j]!;
              if (a.key !== b.key) continue;
              const released =
                a.behaviour === 'retryable' && a.endSeq !== undefined && b.startSeq > a.endSeq;
              // A holder that crashed, or that was still running when its lock ran out.
              const overran = a.endTime === undefined || a.endTime >= a.startTime + LOCK_TTL;
              const lockExpired = overran && b.startTime >= a.startTime + LOCK_TTL;
              const outcomeExpired = a.endTime !== undefined && b.startTime >= a.endTime + ttl;
              if (!(released || lockExpired || outcomeExpired)) {
                throw new Error(
                  `key ${a.key} ran twice: ${JSON.stringify(a)} then ${JSON.stringify(b)}\n${s
                    .report()
                    .map((r) => r.label)
                    .join(', ')}`,
                );
              }
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('gives every caller of a key the same value even when holders crash or overrun their lock', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(callArb(3 * LOCK_TTL, ['ok', 'ok', 'crash']), { minLength: 1, maxLength: 10 }),
        stepsArb(300),
        async (s, calls, steps) => {
          const { answers, crashed } = await runScenario(s, calls, steps, {
            ttl: 1e9,
            onInProgress: 'wait',
          });
          const valueOf = new Map<number, unknown>();
          for (const [i, answer] of answers.entries()) {
            if (answer === undefined) {
              // Only a caller whose own fn crashed may still be waiting.
              expect(crashed.has(i)).toBe(true);
              continue;
            }
            expect(answer.ok).toBe(true);
            if (!valueOf.has(answer.key)) valueOf.set(answer.key, answer.value);
            expect(answer.value).toBe(valueOf.get(answer.key));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('accepts a completion only from the newest live claim and never replaces a record within its ttl', async () => {
    const TTL = 250;
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(
          fc.record({
            key: fc.integer({ min: 0, max: 1 }),
            finish: fc.constantFrom('complete', 'release', 'abandon'),
          }),
          { minLength: 1, maxLength: 12 },
        ),
        stepsArb(150),
        async (s, actors, steps) => {
          const clock = new VirtualClock();
          const store = new MemoryStore({ clock });
          // The model: the newest claim of each key, and the record stored for it.
          const newest = new Map<string, { token: string; at: number }>();
          const stored = new Map<string, { body: string; at: number }>();
          const problems: string[] = [];
          const live = (k: string) => {
            const r = stored.get(k);
            return r !== undefined && clock.now() < r.at + TTL ? r : undefined;
          };
          actors.forEach((actor, i) => {
            const key = `k${actor.key}`;
            void s.schedule(Promise.resolve(), `claim ${i}`).then(async () => {
              const before = live(key);
              const r = await store.claim(key, 'fp', LOCK_TTL);
              if (
                before !== undefined &&
                (r.state !== 'completed' || r.record.body !== before.body)
              ) {
                problems.push(
                  `claim ${i} of ${key} got ${r.state} while ${before.body} was stored`,
                );
              }
              if (r.state !== 'claimed') return;
              newest.set(key, { token: r.token, at: clock.now() });
              stored.delete(key);
              await s.schedule(Promise.resolve(), `finish ${i}`);
              const head = newest.get(key)!;
              const mayWrite = head.token === r.token && clock.now() < head.at + LOCK_TTL;
              if (actor.finish === 'complete') {
                const ok = await store.complete(
                  key,
                  r.token,
                  { outcome: 'value', body: `a${i}` },
                  TTL,
                );
                if (ok !== mayWrite)
                  problems.push(`complete ${i} of ${key} returned ${ok}, model says ${mayWrite}`);
                if (ok) stored.set(key, { body: `a${i}`, at: clock.now() });
              } else if (actor.finish === 'release') {
                const ok = await store.release(key, r.token);
                if (ok !== mayWrite)
                  problems.push(`release ${i} of ${key} returned ${ok}, model says ${mayWrite}`);
              }
            });
          });
          for (const step of steps) {
            if (step > 0) await clock.advance(step);
            else if (s.count() > 0) await s.waitOne();
          }
          await s.waitAll();
          expect(problems).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});
