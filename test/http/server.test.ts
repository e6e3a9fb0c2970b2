import { randomUUID } from 'node:crypto';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setAmbientContextProvider } from '../../src/core/ambient.js';
import { systemClock } from '../../src/core/clock.js';
import { deadlineTimersOf } from '../../src/core/deadline-timers.js';
import { dependency } from '../../src/dependency.js';
import {
  DEADLINE_HEADER,
  bulwarkHandler,
  outsideRequest,
  requestContext,
  resilientFetch,
  type BulwarkServerOptions,
} from '../../src/http.js';
import { TimeoutError, type Context } from '../../src/index.js';
import { RedisStore } from '../../src/redis.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { VirtualClock } from '../../src/testing/index.js';
import type { IdempotencyStore } from '../../src/stores/store.js';
import { describeRedis, redisPort } from '../setup/redis.js';
import { json, listen, waitFor, type TestServer } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let servers: TestServer[] = [];
async function serve(
  handler: (
    req: IncomingMessage & { body?: unknown },
    res: ServerResponse,
    ctx: Context,
  ) => unknown,
  options?: BulwarkServerOptions,
): Promise<TestServer & { listener: ReturnType<typeof bulwarkHandler> }> {
  const listener = bulwarkHandler(handler, options);
  const s = await listen(createServer(listener));
  servers.push(s);
  return Object.assign(s, { listener });
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}
async function call(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

describe('deadline propagation', () => {
  it('gives C less budget than A started with, minus what A and B spent (A → B → C over real HTTP)', async () => {
    let cBudget = NaN;
    let cHeader = NaN;
    let cAt = 0;
    let aAt = 0;
    const c = await serve((req, res, ctx) => {
      cAt = performance.now();
      cBudget = ctx.remaining();
      cHeader = Number(req.headers[DEADLINE_HEADER]);
      json(res, 200, { ok: true });
    });
    const toC = dependency('c');
    const b = await serve(async (_req, res) => {
      await sleep(100); // B's own work before it calls C
      const r = await resilientFetch(toC, c.url);
      json(res, r.status, await r.json());
    });
    const toB = dependency('b');
    const a = await serve(async (_req, res) => {
      aAt = performance.now();
      await sleep(50);
      const r = await resilientFetch(toB, b.url);
      json(res, r.status, await r.json());
    });

    const r = await call(a.url, { headers: { [DEADLINE_HEADER]: '2000' } });
    expect(r.status).toBe(200);
    // A's budget starts when A receives the request.
    const elapsed = cAt - aAt;
    expect(elapsed).toBeGreaterThanOrEqual(150);
    // Two hops, each sending what is left minus its 10 ms margin.
    expect(cHeader).toBeLessThanOrEqual(2000 - 20 - 150);
    expect(cBudget).toBeLessThanOrEqual(2000 - elapsed);
    expect(cBudget).toBeGreaterThan(2000 - elapsed - 300);
  });

  it('answers 504 before the handler runs when the deadline has already passed', async () => {
    let runs = 0;
    const s = await serve((_req, res) => {
      runs++;
      json(res, 200, {});
    });
    for (const headers of [
      { [DEADLINE_HEADER]: '0' } as Record<string, string>,
      { 'grpc-timeout': '0m' },
      { 'x-envoy-expected-rq-timeout-ms': '0' },
    ]) {
      const r = await call(s.url, { method: 'POST', headers, body: 'x' });
      expect(r.status).toBe(504);
      expect(r.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(runs).toBe(0);
  });

  it('lets execute inside the handler inherit the remaining budget with no options', async () => {
    let inner = NaN;
    const dep = dependency('inner', { budget: 10_000 });
    const s = await serve(async (_req, res) => {
      inner = await dep.execute((ctx) => ctx.remaining());
      json(res, 200, {});
    });
    await call(s.url, { headers: { 'grpc-timeout': '300m' } });
    expect(inner).toBeLessThanOrEqual(300);
    expect(inner).toBeGreaterThan(200);
  });

  it('caps the budget at maxBudget and applies defaultBudget to requests without a header', async () => {
    const seen: number[] = [];
    const s = await serve(
      (_req, res, ctx) => {
        seen.push(ctx.remaining());
        json(res, 200, {});
      },
      { deadline: { maxBudget: 500, defaultBudget: 200 } },
    );
    await call(s.url, { headers: { [DEADLINE_HEADER]: '60000' } });
    await call(s.url);
    expect(seen[0]).toBeLessThanOrEqual(500);
    expect(seen[0]).toBeGreaterThan(400);
    expect(seen[1]).toBeLessThanOrEqual(200);
  });

  it('aborts calls made by the handler when the deadline passes, and answers 504', async () => {
    let innerError: unknown;
    const s = await serve(async () => {
      try {
        await dependency('slow').execute((ctx) => sleep(5000).then(() => ctx.signal.aborted));
      } catch (error) {
        innerError = error;
        throw error;
      }
    });
    const start = performance.now();
    const r = await call(s.url, { headers: { [DEADLINE_HEADER]: '150' } });
    expect(performance.now() - start).toBeLessThan(1000);
    expect(r.status).toBe(504);
    expect(innerError).toBeInstanceOf(TimeoutError);
  });

  it('cancels what the handler started when the client goes away', async () => {
    let signal: AbortSignal | undefined;
    const s = await serve(
      async (_req, res) => {
        await dependency('slow', { budget: 5000 }).execute((ctx) => {
          signal = ctx.signal;
          return new Promise((_resolve, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          );
        });
        json(res, 200, {});
      },
      { onError: () => {} },
    );
    const controller = new AbortController();
    const pending = fetch(s.url, { signal: controller.signal }).catch(() => undefined);
    await waitFor(() => signal !== undefined);
    controller.abort();
    await pending;
    await waitFor(() => signal!.aborted);
    expect((signal!.reason as Error).name).toBe('AbortError');
  });

  it('exposes the request context, and outsideRequest escapes it', async () => {
    let inside: Context | undefined;
    let outside: Context | undefined = {} as Context;
    let detachedRemaining = NaN;
    const s = await serve(async (_req, res, ctx) => {
      inside = requestContext();
      outsideRequest(() => {
        outside = requestContext();
      });
      detachedRemaining = await outsideRequest(() =>
        dependency('bg', { budget: Infinity }).execute((c) => c.remaining()),
      );
      expect(inside).toBe(ctx);
      json(res, 200, {});
    });
    await call(s.url, { headers: { [DEADLINE_HEADER]: '500' } });
    expect(inside).toBeDefined();
    expect(outside).toBeUndefined();
    expect(detachedRemaining).toBe(Infinity);
    expect(requestContext()).toBeUndefined();
  });
});

describe('the ambient context across clocks and library copies', () => {
  it('gives a dependency on another clock what is left of the request budget, on its own clock', async () => {
    const clock = new VirtualClock({ start: 5000 });
    let deadline = NaN;
    const s = await serve(async (_req, res) => {
      deadline = await dependency('virtual', { clock, budget: 60_000 }).execute(
        (ctx) => ctx.deadline,
      );
      json(res, 200, {});
    });
    await call(s.url, { headers: { [DEADLINE_HEADER]: '300' } });
    expect(deadline).toBeLessThanOrEqual(5300);
    expect(deadline).toBeGreaterThan(5100);
  });

  it('inherits the deadline, priority and abort of a context from another copy of bulwark', async () => {
    const controller = new AbortController();
    const foreign = {
      deadline: Infinity,
      remaining: () => 250,
      signal: controller.signal,
      attempt: 1,
      priority: 'high',
      idempotencyKey: 'not-shared',
      fingerprint: undefined,
    } as Context;
    const previous = setAmbientContextProvider(() => foreign);
    try {
      let seen: Context | undefined;
      const call = dependency('x', { budget: 10_000 }).execute((ctx) => {
        seen = ctx;
        return new Promise(() => {});
      });
      expect(seen!.remaining()).toBeLessThanOrEqual(250);
      expect(seen!.priority).toBe('high');
      expect(seen!.idempotencyKey).not.toBe('not-shared');
      controller.abort(new Error('request over'));
      await expect(call).rejects.toThrow('request over');
    } finally {
      setAmbientContextProvider(previous);
    }
  });
});

function idempotencySuite(name: string, makeStore: () => IdempotencyStore): void {
  describe(`Idempotency-Key with ${name}`, () => {
    let runs = 0;
    async function payments(
      options: Partial<NonNullable<BulwarkServerOptions['idempotency']>> = {},
      /** How long the handler takes: ms, or until the promise settles. */
      delay: number | Promise<void> = 100,
    ) {
      runs = 0;
      return serve(
        async (req, res) => {
          runs++;
          const n = runs;
          await (typeof delay === 'number' ? sleep(delay) : delay);
          res.setHeader('location', `/payments/${n}`);
          res.writeHead(201, { 'content-type': 'application/json', 'x-not-replayed': 'yes' });
          res.end(JSON.stringify({ id: n, got: String(req.body) }));
        },
        { idempotency: { store: makeStore(), scope: 'global', ...options } },
      );
    }
    const post = (url: string, key: string | undefined, body = '{"amount":5}') =>
      call(url, {
        method: 'POST',
        headers: key === undefined ? {} : { 'idempotency-key': key },
        body,
      });

    it('runs concurrent duplicates exactly once; the others get 409', async () => {
      // The first request holds its key until the nine duplicates were answered, however
      // slowly a loaded machine delivers them (and at most 5 s, so the test cannot hang).
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const safety = setTimeout(() => release(), 5_000);
      const s = await payments({}, held);
      const key = randomUUID();
      let answered = 0;
      const replies = await Promise.all(
        Array.from({ length: 10 }, () =>
          post(s.url, key).finally(() => {
            if (++answered === 9) release();
          }),
        ),
      );
      clearTimeout(safety);
      expect(runs).toBe(1);
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses.filter((st) => st === 201)).toHaveLength(1);
      expect(statuses.filter((st) => st === 409)).toHaveLength(9);
      expect(replies.find((r) => r.status === 409)!.headers.get('retry-after')).toBe('1');
    });

    it("runs concurrent duplicates exactly once and replays to the others with onInProgress: 'wait'", async () => {
      const s = await payments({ onInProgress: 'wait' });
      const key = randomUUID();
      const replies = await Promise.all(Array.from({ length: 8 }, () => post(s.url, key)));
      expect(runs).toBe(1);
      expect(replies.every((r) => r.status === 201)).toBe(true);
      expect(new Set(replies.map((r) => r.text)).size).toBe(1);
      expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(
        7,
      );
    });

    it('replays the stored status, selected headers and body, marked Idempotent-Replayed', async () => {
      const s = await payments({}, 0);
      const key = `"${randomUUID()}"`; // an sf-string, as the draft sends it
      const first = await post(s.url, key);
      const again = await post(s.url, key);
      expect(runs).toBe(1);
      expect(first.headers.get('idempotent-replayed')).toBeNull();
      expect(again.status).toBe(201);
      expect(again.text).toBe(first.text);
      expect(JSON.parse(again.text)).toEqual({ id: 1, got: '{"amount":5}' });
      expect(again.headers.get('location')).toBe('/payments/1');
      expect(again.headers.get('content-type')).toBe('application/json');
      expect(again.headers.get('x-not-replayed')).toBeNull();
      expect(again.headers.get('idempotent-replayed')).toBe('true');
    });

    it('answers 422 when the key comes back with another payload', async () => {
      const s = await payments({}, 0);
      const key = randomUUID();
      expect((await post(s.url, key, '{"amount":5}')).status).toBe(201);
      const other = await post(s.url, key, '{"amount":500}');
      expect(other.status).toBe(422);
      expect(other.headers.get('content-type')).toBe('application/problem+json');
      expect(runs).toBe(1);
    });

    it('answers 400 when a required key is missing or a key is malformed', async () => {
      const s = await payments({ required: true, maxKeyLength: 64 }, 0);
      expect((await post(s.url, undefined)).status).toBe(400);
      expect((await post(s.url, 'x'.repeat(65))).status).toBe(400);
      expect((await post(s.url, 'has space')).status).toBe(400);
      expect((await post(s.url, '""')).status).toBe(400);
      expect(runs).toBe(0);
      expect((await post(s.url, 'x'.repeat(64))).status).toBe(201);
    });

    it('lets requests without a key (not required) and GETs through untouched', async () => {
      const s = await payments({}, 0);
      await post(s.url, undefined);
      await post(s.url, undefined);
      await call(s.url, { headers: { 'idempotency-key': 'k' } });
      expect(runs).toBe(3);
    });

    it('does not store a 5xx answer: the retry runs the handler again', async () => {
      let n = 0;
      const store = makeStore();
      const s = await serve(
        (_req, res) => {
          n++;
          json(res, n === 1 ? 503 : 200, { n });
        },
        { idempotency: { store, scope: 'global' } },
      );
      const key = randomUUID();
      // The key is settled just after the response is sent: wait for it, as the client's
      // Retry-After would, so that the test does not race the store.
      let released = false;
      s.listener.idempotency!.on('released', () => (released = true));
      expect((await post(s.url, key)).status).toBe(503);
      await waitFor(() => released);
      expect((await post(s.url, key)).status).toBe(200);
      for (let i = 0; i < 100 && (await store.get(key, undefined))?.state !== 'completed'; i++)
        await sleep(5);
      const third = await post(s.url, key);
      expect(third.headers.get('idempotent-replayed')).toBe('true');
      expect(n).toBe(2);
    });

    it('keeps the keys of two scopes apart', async () => {
      const s = await payments({ scope: (req) => String(req.headers['x-account']) }, 0);
      const key = randomUUID();
      for (const account of ['a', 'b']) {
        await call(s.url, {
          method: 'POST',
          headers: { 'idempotency-key': key, 'x-account': account },
          body: '{}',
        });
      }
      expect(runs).toBe(2);
    });
  });
}

idempotencySuite('MemoryStore', () => new MemoryStore());

describeRedis('Idempotency-Key over Redis', () => {
  let io: Redis;
  beforeAll(async () => {
    io = new Redis({ port: redisPort(), host: '127.0.0.1', lazyConnect: true });
    await io.connect();
  });
  afterAll(() => io?.disconnect());
  idempotencySuite(
    'RedisStore',
    () => new RedisStore({ client: io, prefix: `test:http:${randomUUID()}` }),
  );
});

describe('Idempotency-Key limits', () => {
  it('answers 413 to a keyed request whose body is over maxBodyBytes, without running the handler', async () => {
    let runs = 0;
    const s = await serve(
      (_req, res) => {
        runs++;
        json(res, 200, {});
      },
      { idempotency: { maxBodyBytes: 16, scope: 'global' } },
    );
    const r = await call(s.url, {
      method: 'POST',
      headers: { 'idempotency-key': 'k' },
      body: 'x'.repeat(17),
    });
    expect(r.status).toBe(413);
    expect(runs).toBe(0);
  });
});

/** A bounded load loop: `concurrency` workers sending `total` requests on a keep-alive agent. */
async function load(
  url: string,
  total: number,
  concurrency: number,
  agent: Agent,
  headers: Record<string, string> = {},
): Promise<{ status: number; retryAfter: string | undefined }[]> {
  const results: { status: number; retryAfter: string | undefined }[] = [];
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      sent++;
      results.push(
        await new Promise((resolve, reject) => {
          const req = httpRequest(url, { agent, headers }, (res) => {
            res.resume();
            res.on('end', () =>
              resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] }),
            );
          });
          req.on('error', reject);
          req.end();
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

describe('load shedding', () => {
  it('sheds with 503 + Retry-After under load while critical requests are still served', async () => {
    const s = await serve(
      async (_req, res) => {
        await sleep(20);
        json(res, 200, {});
      },
      { loadShedder: { limit: 4, retryAfter: 2000 }, priorityHeader: 'x-priority' },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    try {
      const normal = load(s.url, 400, 24, agent);
      const critical: number[] = [];
      for (let i = 0; i < 20; i++) {
        const [r] = await load(s.url, 1, 1, agent, { 'x-priority': 'critical' });
        critical.push(r!.status);
      }
      const results = await normal;
      const shed = results.filter((r) => r.status === 503);
      expect(shed.length).toBeGreaterThan(0);
      expect(results.filter((r) => r.status === 200).length).toBeGreaterThan(0);
      expect(shed.every((r) => r.retryAfter === '2')).toBe(true);
      expect(critical.every((st) => st === 200)).toBe(true);
      expect(s.listener.loadShedder!.inFlight).toBe(0);
    } finally {
      agent.destroy();
    }
  });

  it('sheds before reading the body', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const s = await serve(
      async (_req, res) => {
        await held;
        json(res, 200, {});
      },
      { loadShedder: { limit: 1 } },
    );
    const slow = fetch(s.url).catch(() => undefined);
    await waitFor(() => s.listener.loadShedder!.inFlight === 1);
    // A POST whose body never ends: only a server that answers before reading it replies.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${s.url}/upload`,
        { method: 'POST', headers: { 'content-length': '1000000' } },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
          req.destroy();
        },
      );
      req.on('error', reject);
      req.write('x'.repeat(100));
    });
    expect(status).toBe(503);
    release();
    await slow;
  });
});

describe('resources', () => {
  it('leaks no socket, timer or slot after 10,000 requests, and closes cleanly', async () => {
    const before = process.getActiveResourcesInfo().sort();
    const timers = deadlineTimersOf(systemClock);
    const listener = bulwarkHandler(
      async (req, res) => {
        await dependency('inner', { budget: 1000 }).execute(() => 1);
        if (req.method === 'POST') {
          res.writeHead(201, { 'content-type': 'text/plain' });
          res.end('ok');
        } else json(res, 200, {});
      },
      {
        loadShedder: { limit: 1000 },
        idempotency: { store: new MemoryStore({ maxEntries: 20_000 }), scope: 'global' },
      },
    );
    const server = createServer(listener);
    const s = await listen(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    let statuses: number[] = [];
    try {
      const gets = await load(s.url, 8000, 32, agent, { [DEADLINE_HEADER]: '5000' });
      statuses = gets.map((r) => r.status);
      // Keyed POSTs exercise claim, record, store and replay.
      let i = 0;
      const posts = await Promise.all(
        Array.from({ length: 2000 }, async () => {
          const key = `k-${i++ % 1000}`;
          return new Promise<number>((resolve, reject) => {
            const req = httpRequest(
              s.url,
              { method: 'POST', agent, headers: { 'idempotency-key': key } },
              (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode!));
              },
            );
            req.on('error', reject);
            req.end('body');
          });
        }),
      );
      statuses.push(...posts);
    } finally {
      agent.destroy();
      await s.close();
    }
    expect(statuses).toHaveLength(10_000);
    expect(statuses.filter((st) => st !== 200 && st !== 201 && st !== 409)).toEqual([]);
    expect(listener.loadShedder!.inFlight).toBe(0);
    await waitFor(() => timers.size === 0);
    // Nothing of ours may remain: no type of resource (sockets, servers, timers) grows.
    const counts = (list: string[]) =>
      list.reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map<string, number>());
    const base = counts(before);
    await waitFor(
      () =>
        [...counts(process.getActiveResourcesInfo())].every(([t, n]) => n <= (base.get(t) ?? 0)),
      3000,
    );
  });
});
