// Hostile or broken deadline headers over real HTTP: none of them may leave a request
// without a bound by accident.
import { createServer } from 'node:http';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEADLINE_HEADER,
  DEFAULT_MAX_BUDGET,
  bulwarkHandler,
  readDeadlineHeaders,
  type BulwarkServerOptions,
} from '../../src/http.js';
import { ConfigError } from '../../src/index.js';
import { listen, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

/** A server answering with the budget its request got (`Infinity` as the string). */
async function budgetServer(
  options?: BulwarkServerOptions,
): Promise<TestServer & { handled: { runs: number } }> {
  const handled = { runs: 0 };
  const listener = bulwarkHandler((_req, res, ctx) => {
    handled.runs++;
    res.end(String(ctx.remaining()));
  }, options);
  const s = await listen(createServer(listener));
  servers.push(s);
  return Object.assign(s, { handled });
}

const MALFORMED: Record<string, string>[] = [
  { [DEADLINE_HEADER]: '-5' },
  { [DEADLINE_HEADER]: 'abc' },
  { [DEADLINE_HEADER]: '1e3' },
  { [DEADLINE_HEADER]: '1.5' },
  { [DEADLINE_HEADER]: '99999999999999999999' },
  { [DEADLINE_HEADER]: '' },
  { 'grpc-timeout': '100000000H' },
  { 'grpc-timeout': '5X' },
  { 'grpc-timeout': '-1S' },
  { 'x-envoy-expected-rq-timeout-ms': '15s' },
];

describe('malformed deadline headers', () => {
  it('DEFAULT_MAX_BUDGET is finite', () => {
    expect(DEFAULT_MAX_BUDGET).toBe(60_000);
  });

  for (const headers of MALFORMED) {
    it(`${JSON.stringify(headers)} gives the request maxBudget (60 s by default), never no deadline`, async () => {
      const s = await budgetServer();
      const res = await fetch(s.url, { headers });
      expect(res.status).toBe(200);
      const budget = Number(await res.text());
      expect(budget).toBeLessThanOrEqual(60_000);
      expect(budget).toBeGreaterThan(59_000);
    });
  }

  it('maxBudget set lower bounds a malformed header to it', async () => {
    const s = await budgetServer({ deadline: { maxBudget: '2s' } });
    const budget = Number(
      await (await fetch(s.url, { headers: { [DEADLINE_HEADER]: 'abc' } })).text(),
    );
    expect(budget).toBeLessThanOrEqual(2000);
    expect(budget).toBeGreaterThan(1000);
  });

  it('caps a well-formed but huge budget at maxBudget', async () => {
    const s = await budgetServer();
    for (const headers of [
      { [DEADLINE_HEADER]: '999999999999999' } as Record<string, string>,
      { 'grpc-timeout': '99999999H' },
    ]) {
      const budget = Number(await (await fetch(s.url, { headers })).text());
      expect(budget).toBeLessThanOrEqual(60_000);
      expect(budget).toBeGreaterThan(59_000);
    }
  });

  it('a valid header beside a malformed one wins', async () => {
    const s = await budgetServer();
    const budget = Number(
      await (
        await fetch(s.url, { headers: { [DEADLINE_HEADER]: 'abc', 'grpc-timeout': '500m' } })
      ).text(),
    );
    expect(budget).toBeLessThanOrEqual(500);
    expect(budget).toBeGreaterThan(300);
  });

  it("invalid: 'reject' answers 400 naming the header, before the handler runs", async () => {
    const s = await budgetServer({ deadline: { invalid: 'reject' } });
    for (const headers of MALFORMED) {
      const res = await fetch(s.url, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const name = Object.keys(headers)[0]!;
      expect((await res.json()) as { title: string }).toMatchObject({
        title: expect.stringContaining(name) as unknown,
      });
    }
    expect(s.handled.runs).toBe(0);
  });

  it('a request with no deadline header keeps defaultBudget (none unless configured)', async () => {
    const s = await budgetServer();
    expect(await (await fetch(s.url)).text()).toBe('Infinity');
    const bounded = await budgetServer({ deadline: { defaultBudget: '5s' } });
    expect(Number(await (await fetch(bounded.url)).text())).toBeLessThanOrEqual(5000);
  });

  it('maxBudget: Infinity must be written out, and invalid takes only its two values', async () => {
    const s = await budgetServer({ deadline: { maxBudget: Infinity } });
    const budget = Number(
      await (await fetch(s.url, { headers: { [DEADLINE_HEADER]: '999999999999999' } })).text(),
    );
    expect(budget).toBeGreaterThan(60_000);
    expect(() => bulwarkHandler(() => {}, { deadline: { invalid: 'ignore' as never } })).toThrow(
      ConfigError,
    );
    expect(() => bulwarkHandler(() => {}, { deadline: { invalid: 'ignore' as never } })).toThrow(
      /bulwarkHandler\.deadline\.invalid: expected 'maxBudget' \| 'reject'/,
    );
  });
});

describe('any deadline headers over real HTTP (property)', () => {
  it('a request carrying any deadline header gets a budget ≤ maxBudget; only one with none is unbounded', async () => {
    const s = await budgetServer();
    const value = fc.oneof(
      fc.stringMatching(/^[\x21-\x7e]{1,24}$/),
      fc.stringMatching(/^-?\d{1,22}[HMSmunx]?$/),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            [DEADLINE_HEADER]: value,
            'grpc-timeout': value,
            'x-envoy-expected-rq-timeout-ms': value,
          },
          { requiredKeys: [] },
        ),
        async (headers) => {
          const res = await fetch(s.url, { headers: headers as Record<string, string> });
          expect(res.status === 200 || res.status === 504).toBe(true);
          const text = await res.text();
          if (res.status === 504) return; // a valid 0 ms: the caller already gave up
          if (Object.keys(headers).length === 0) expect(text).toBe('Infinity');
          else expect(Number(text)).toBeLessThanOrEqual(DEFAULT_MAX_BUDGET);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('readDeadlineHeaders', () => {
  it('reports the first malformed header and the tightest valid budget', () => {
    expect(readDeadlineHeaders({ [DEADLINE_HEADER]: '-5' })).toEqual({
      budget: undefined,
      invalid: DEADLINE_HEADER,
    });
    expect(readDeadlineHeaders({ [DEADLINE_HEADER]: '300', 'grpc-timeout': '1x' })).toEqual({
      budget: 300,
      invalid: 'grpc-timeout',
    });
    expect(readDeadlineHeaders({})).toEqual({ budget: undefined, invalid: undefined });
  });

  it('any header value is either a finite budget ≥ 0 or reported invalid (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(DEADLINE_HEADER, 'grpc-timeout', 'x-envoy-expected-rq-timeout-ms'),
        fc.oneof(fc.string(), fc.stringMatching(/^-?\d{0,25}(\.\d+)?(e\d+)?[HMSmunx]?$/)),
        (name, value) => {
          const { budget, invalid } = readDeadlineHeaders({ [name]: value });
          if (budget !== undefined) {
            expect(Number.isFinite(budget) && budget >= 0).toBe(true);
          }
          // A value that gives no budget is reported: it never silently means "no deadline".
          expect(budget !== undefined || invalid === name).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
