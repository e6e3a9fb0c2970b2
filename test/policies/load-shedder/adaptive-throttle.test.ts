import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, TimeoutError } from '../../../src/core/errors.js';
import { LoadShedError } from '../../../src/policies/load-shedder/errors.js';
import {
  adaptiveThrottle,
  isOverloadRejection,
} from '../../../src/policies/load-shedder/adaptive-throttle.js';
import { VirtualClock } from '../../../src/testing/index.js';

const unavailable = () => Promise.reject(Object.assign(new Error('503'), { status: 503 }));
const ok = () => Promise.resolve('ok');

function make(options: Parameters<typeof adaptiveThrottle>[0] = {}) {
  const clock = new VirtualClock();
  const state = { r: 0 };
  const throttle = adaptiveThrottle({ clock, random: () => state.r, ...options });
  return { clock, throttle, state };
}

/** Runs one call and says whether the throttle let it through to the dependency. */
async function attempt(
  throttle: ReturnType<typeof adaptiveThrottle>,
  dependency: () => Promise<string>,
) {
  let reached = false;
  try {
    await throttle.execute(() => {
      reached = true;
      return dependency();
    });
  } catch (error) {
    if (!reached) expect(error).toBeInstanceOf(LoadShedError);
  }
  return reached;
}

describe('adaptiveThrottle', () => {
  it('never sheds while the dependency accepts everything', async () => {
    const { throttle } = make();
    for (let i = 0; i < 200; i++) expect(await attempt(throttle, ok)).toBe(true);
    expect(throttle.probability()).toBe(0);
    expect([throttle.requests(), throttle.accepts()]).toEqual([200, 200]);
  });

  it('computes max(0, (requests − k·accepts) / (requests + 1)) from the history', async () => {
    const { throttle, state } = make({ k: 2 });
    state.r = 1; // nothing is shed locally while history builds
    for (let i = 0; i < 3; i++) await attempt(throttle, ok);
    for (let i = 0; i < 7; i++) await attempt(throttle, unavailable);
    expect(throttle.probability()).toBeCloseTo((10 - 2 * 3) / 11, 12);
  });

  it('decides on the history before counting the current request', async () => {
    const { throttle, state } = make({ k: 2 });
    // The very first request has no history: probability 0, whatever the random draw.
    state.r = 0;
    expect(await attempt(throttle, unavailable)).toBe(true);
    // One request, no accepts: (1 − 0) / 2 = 0.5 for the next one.
    state.r = 0.5;
    expect(await attempt(throttle, unavailable)).toBe(true);
    // Two requests, no accepts: 2/3.
    state.r = 0.66;
    expect(await attempt(throttle, ok)).toBe(false);
  });

  it('counts a locally refused request as a request, so the probability keeps rising', async () => {
    const { throttle, state } = make();
    await attempt(throttle, unavailable);
    state.r = 0;
    expect(await attempt(throttle, unavailable)).toBe(false);
    expect(throttle.requests()).toBe(2);
    expect(throttle.probability()).toBeCloseTo(2 / 3, 12);
  });

  it('refuses locally with a LoadShedError (reason capacity, no stack, no retryAfterMs)', async () => {
    const { throttle } = make();
    await attempt(throttle, unavailable);
    const events: unknown[] = [];
    throttle.on('shed', (e) => events.push(e));
    const error = (await throttle
      .execute(ok, { priority: 'high' })
      .catch((e: unknown) => e)) as LoadShedError;
    expect(error).toBeInstanceOf(LoadShedError);
    expect(error.code).toBe('ERR_LOAD_SHED');
    expect(error.reason).toBe('capacity');
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.stack ?? '').not.toMatch(/\n\s+at /);
    expect(events).toEqual([{ priority: 'high', reason: 'capacity', probability: 0.5 }]);
  });

  it('forgets history older than the window', async () => {
    const { clock, throttle, state } = make({ window: '10s' });
    state.r = 1;
    for (let i = 0; i < 20; i++) await attempt(throttle, unavailable);
    expect(throttle.probability()).toBeGreaterThan(0.9);
    await clock.advance(5_000);
    expect(throttle.probability()).toBeGreaterThan(0.9);
    await clock.advance(5_000);
    expect(throttle.probability()).toBe(0);
    expect(throttle.requests()).toBe(0);
  });

  it('treats 429, 503 and timeouts as rejections; other failures as accepted', () => {
    expect(isOverloadRejection({ status: 429 }, 'error')).toBe(true);
    expect(isOverloadRejection({ statusCode: 503 }, 'error')).toBe(true);
    expect(isOverloadRejection({ status: 503, headers: new Headers() }, 'result')).toBe(true);
    expect(isOverloadRejection(new TimeoutError('attempt', 100), 'error')).toBe(true);
    expect(isOverloadRejection({ status: 500 }, 'error')).toBe(false);
    expect(isOverloadRejection(new Error('bad input'), 'error')).toBe(false);
    expect(isOverloadRejection({ status: 200 }, 'result')).toBe(false);
  });

  it('counts a returned 503 response as a rejection', async () => {
    const { throttle } = make();
    await throttle.execute(() => ({ status: 503 }));
    expect([throttle.requests(), throttle.accepts()]).toEqual([1, 0]);
  });

  it('takes a custom rejection test', async () => {
    const { throttle, state } = make({ isRejected: (o) => o === 'busy' });
    state.r = 1;
    await throttle.execute(() => 'busy');
    await throttle
      .execute(() => Promise.reject(Object.assign(new Error(), { status: 503 })))
      .catch(() => {});
    expect(throttle.accepts()).toBe(1);
  });

  it('forgets a request its own caller aborted, once the call ends', async () => {
    const { throttle } = make();
    const controller = new AbortController();
    const untilAborted = (ctx: { signal: AbortSignal }) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
      );
    const call = throttle.execute(untilAborted, { signal: controller.signal }).catch(() => {});
    expect(throttle.requests()).toBe(1);
    controller.abort(new Error('bye'));
    await call;
    await new Promise((resolve) => setImmediate(resolve));
    expect(throttle.requests()).toBe(0);
  });

  it('validates its options with paths', () => {
    try {
      adaptiveThrottle({ k: 0.5, window: 'later', random: 3, extra: 1 } as never);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.path)).toEqual([
        'adaptiveThrottle.extra',
        'adaptiveThrottle.k',
        'adaptiveThrottle.window',
        'adaptiveThrottle.random',
      ]);
    }
    expect(adaptiveThrottle().kind).toBe('adaptiveThrottle');
  });
});

describe('adaptiveThrottle properties', () => {
  it('refuses nothing while accepts ≥ requests / k', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 80 }),
        async (k, accepted) => {
          // random() = 0: the throttle refuses whenever its probability is above 0.
          const { throttle } = make({ k });
          let requests = 0;
          let accepts = 0;
          for (const ok of accepted) {
            const reached = await attempt(throttle, ok ? () => Promise.resolve('ok') : unavailable);
            if (accepts >= requests / k) expect(reached).toBe(true);
            requests++;
            if (reached && ok) accepts++;
            const model = Math.max(0, (requests - k * accepts) / (requests + 1));
            expect(throttle.probability()).toBeCloseTo(model, 9);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('raises the refusal probability toward 1 while the dependency rejects everything', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.integer({ min: 1, max: 200 }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        async (k, n, draws) => {
          const it = draws[Symbol.iterator]();
          const { throttle } = make({ k, random: () => it.next().value as number });
          let previous = -1;
          for (let i = 1; i <= n; i++) {
            await attempt(throttle, unavailable);
            const p = throttle.probability();
            expect(p).toBeGreaterThan(previous);
            expect(p).toBeCloseTo(i / (i + 1), 12);
            expect(p).toBeLessThan(1);
            previous = p;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps the probability in [0, 1) whatever the outcomes and the passage of time', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ ok: fc.boolean(), gap: fc.integer({ min: 0, max: 3000 }) }), {
          maxLength: 60,
        }),
        async (steps) => {
          const { clock, throttle, state } = make({ window: '10s' });
          state.r = 0.5;
          for (const step of steps) {
            await clock.advance(step.gap);
            await attempt(throttle, step.ok ? ok : unavailable);
            const p = throttle.probability();
            expect(p).toBeGreaterThanOrEqual(0);
            expect(p).toBeLessThan(1);
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
