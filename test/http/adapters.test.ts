// The Express and Fastify adapters against the real frameworks (express 5, fastify 5) over
// real HTTP on 127.0.0.1.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/dependency.js';
import {
  DEADLINE_HEADER,
  bulwarkErrorHandler,
  bulwarkFastify,
  bulwarkMiddleware,
  errorToStatus,
  problemResponse,
  requestContext,
  type BulwarkServerOptions,
} from '../../src/http.js';
import {
  BulkheadRejectedError,
  CircuitOpenError,
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
  LoadShedError,
  TimeoutError,
} from '../../src/index.js';
import { listen, waitFor, type TestServer } from './helpers.js';

let closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((close) => close()));
  closers = [];
});

async function serveExpress(app: express.Express): Promise<TestServer> {
  const s = await listen(createServer(app));
  closers.push(() => s.close());
  return s;
}

async function serveFastify(app: FastifyInstance): Promise<string> {
  closers.push(() => app.close());
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/** Errors bulwark makes, and what the adapters answer for each. */
const MAPPED: { name: string; error: () => Error; status: number; retryAfter: string | null }[] = [
  {
    name: 'TimeoutError',
    error: () => new TimeoutError('budget', 200),
    status: 504,
    retryAfter: null,
  },
  {
    name: 'CircuitOpenError',
    error: () => new CircuitOpenError('open', 30_000, 'payments'),
    status: 503,
    retryAfter: '30',
  },
  {
    name: 'BulkheadRejectedError',
    error: () => new BulkheadRejectedError('full', 'payments: bulkhead full (10 running)'),
    status: 503,
    retryAfter: '1',
  },
  {
    name: 'LoadShedError',
    error: () => new LoadShedError('capacity', 'payments: over capacity', 2000),
    status: 503,
    retryAfter: '2',
  },
];

/** Reads a reply and checks it is a problem+json body that gives nothing internal away. */
async function expectProblem(res: Response, status: number, retryAfter: string | null) {
  const text = await res.text();
  expect({ status: res.status, retryAfter: res.headers.get('retry-after') }).toEqual({
    status,
    retryAfter,
  });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json(;|$)/);
  expect(text).not.toMatch(/\n\s+at |\.ts:\d|node_modules/); // no stack trace
  expect(text).not.toMatch(/payments/); // no message naming internals
  expect(JSON.parse(text)).toMatchObject({ status });
}

describe('errorToStatus and problemResponse', () => {
  it('map every bulwark rejection to its documented status', () => {
    expect(errorToStatus(new TimeoutError('attempt', 50))).toBe(504);
    expect(errorToStatus(new TimeoutError('budget', 50))).toBe(504);
    expect(errorToStatus(new CircuitOpenError('open', 1000))).toBe(503);
    expect(errorToStatus(new BulkheadRejectedError('queue-timeout', 'x'))).toBe(503);
    expect(errorToStatus(new LoadShedError('priority', 'x'))).toBe(503);
    expect(errorToStatus(new IdempotencyInProgressError())).toBe(409);
    expect(errorToStatus(new IdempotencyKeyReuseError())).toBe(422);
    expect(errorToStatus(new IdempotencyStoreError('redis', 'down'))).toBe(503);
    expect(errorToStatus(new Error('boom'))).toBeUndefined();
    expect(errorToStatus('not an error')).toBeUndefined();
  });

  it('builds a problem+json response with Retry-After, and 500 without details for anything else', () => {
    const open = problemResponse(new CircuitOpenError('open', 1500, 'payments'));
    expect(open.status).toBe(503);
    expect(open.headers['retry-after']).toBe('2');
    expect(open.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(open.body)).toEqual({
      type: 'about:blank',
      title: 'A dependency is unavailable',
      status: 503,
    });
    const other = problemResponse(new Error('secret table users_v2 missing'));
    expect(other.status).toBe(500);
    expect(other.body).not.toMatch(/secret/);
  });

  it('never sends an error message or stack, and sends Retry-After exactly with 503 and 409 (property)', () => {
    const secret = fc.string({ minLength: 3 }).map((s) => `secret:${s}`);
    const anyError = fc.oneof(
      secret.map((m) => new TimeoutError('attempt', 10, m)),
      fc
        .tuple(secret, fc.integer({ min: -1, max: 1e7 }))
        .map(([m, ms]) => new CircuitOpenError('open', ms, m)),
      secret.map((m) => new BulkheadRejectedError('full', m)),
      fc
        .tuple(secret, fc.option(fc.integer({ min: 0, max: 1e7 }), { nil: undefined }))
        .map(([m, ms]) => new LoadShedError('capacity', m, ms)),
      secret.map((m) => new IdempotencyInProgressError(m)),
      secret.map((m) => new IdempotencyKeyReuseError(m)),
      secret.map((m) => new IdempotencyStoreError('redis', m)),
      secret.map((m) => new Error(m)),
      secret,
    );
    fc.assert(
      fc.property(anyError, (error) => {
        const p = problemResponse(error);
        expect(p.body).not.toContain('secret:');
        expect(JSON.parse(p.body)).toMatchObject({ status: p.status });
        expect([409, 422, 500, 503, 504]).toContain(p.status);
        expect(errorToStatus(error) ?? 500).toBe(p.status);
        const retryAfter = p.headers['retry-after'];
        expect(retryAfter !== undefined).toBe(p.status === 503 || p.status === 409);
        if (retryAfter !== undefined) expect(retryAfter).toMatch(/^[1-9]\d*$/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('Express adapter (bulwarkMiddleware) on express 5', () => {
  it('replays a keyed request over the parsed body, and answers 422 for another body', async () => {
    let runs = 0;
    const app = express();
    app.use(express.json(), bulwarkMiddleware({ idempotency: { scope: 'global' } }));
    app.post('/charges', (req, res) => {
      runs++;
      res.status(201).json({ charged: (req.body as { amount: number }).amount });
    });
    const s = await serveExpress(app);
    const key = randomUUID();
    const post = (amount: number) =>
      fetch(`${s.url}/charges`, {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ amount }),
      });
    const first = await post(5);
    const again = await post(5);
    const other = await post(7);
    expect([first.status, again.status, other.status]).toEqual([201, 201, 422]);
    expect(await again.json()).toEqual({ charged: 5 });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toBe(1);
  });

  it('reads the raw body itself when no parser ran before it', async () => {
    let body: unknown;
    const app = express();
    app.use(bulwarkMiddleware({ idempotency: { scope: 'global' } }));
    app.post('/', (req, res) => {
      body = req.body;
      res.send('ok');
    });
    const s = await serveExpress(app);
    await fetch(s.url, { method: 'POST', headers: { 'idempotency-key': 'k1' }, body: 'raw bytes' });
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(String(body)).toBe('raw bytes');
  });

  it('gives later handlers the request context, so execute inherits the deadline', async () => {
    let remaining = NaN;
    const app = express();
    app.use(bulwarkMiddleware(), express.json());
    app.post('/', async (_req, res) => {
      expect(requestContext()).toBeDefined();
      remaining = await dependency('db').execute((ctx) => ctx.remaining());
      res.send('ok');
    });
    const s = await serveExpress(app);
    await fetch(s.url, {
      method: 'POST',
      headers: { [DEADLINE_HEADER]: '400', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(remaining).toBeLessThanOrEqual(400);
    expect(remaining).toBeGreaterThan(250);
  });

  it('sheds with 503 and Retry-After while its slots are taken', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const mw = bulwarkMiddleware({ loadShedder: { limit: 1 } });
    const app = express();
    app.use(mw);
    app.get('/', (_req, res) => void held.then(() => res.send('ok')));
    const s = await serveExpress(app);
    const first = fetch(s.url);
    await waitFor(() => mw.loadShedder!.inFlight === 1);
    const shed = await fetch(s.url);
    await expectProblem(shed, 503, '1');
    release();
    expect((await first).status).toBe(200);
  });

  for (const { name, error, status, retryAfter } of MAPPED) {
    it(`answers ${status} for a ${name} thrown by a route, never Express's 500 with a stack trace`, async () => {
      const app = express();
      app.use(bulwarkMiddleware());
      app.get('/sync', () => {
        throw error();
      });
      app.get('/async', async () => {
        await Promise.resolve();
        throw error();
      });
      const s = await serveExpress(app);
      await expectProblem(await fetch(`${s.url}/sync`), status, retryAfter);
      await expectProblem(await fetch(`${s.url}/async`), status, retryAfter);
    });
  }

  it('answers 504 when a dependency call runs out of the request deadline', async () => {
    const app = express();
    app.use(bulwarkMiddleware());
    const slow = dependency('slow-db', { retry: false });
    app.get('/', async (_req, res) => {
      const rows = await slow.execute(
        ({ signal }) =>
          new Promise((resolve, reject) => {
            const t = setTimeout(resolve, 5000, []);
            signal.addEventListener('abort', () => {
              clearTimeout(t);
              reject(signal.reason as Error);
            });
          }),
      );
      res.json(rows);
    });
    const s = await serveExpress(app);
    const started = performance.now();
    await expectProblem(await fetch(s.url, { headers: { [DEADLINE_HEADER]: '100' } }), 504, null);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it("leaves other errors to the app's error handlers, which run before bulwark's own", async () => {
    const seen: unknown[] = [];
    const app = express();
    app.use(bulwarkMiddleware());
    app.get('/plain', () => {
      throw new Error('boom');
    });
    app.get('/timeout', () => {
      throw new TimeoutError('budget', 10);
    });
    const mine: ErrorRequestHandler = (err: unknown, _req, res, next) => {
      seen.push(err);
      if (errorToStatus(err) !== undefined) {
        next(err);
        return;
      }
      res.status(500).json({ mine: true });
    };
    app.use(mine);
    const s = await serveExpress(app);
    const plain = await fetch(`${s.url}/plain`);
    expect(plain.status).toBe(500);
    expect(await plain.json()).toEqual({ mine: true });
    await expectProblem(await fetch(`${s.url}/timeout`), 504, null);
    expect(seen).toHaveLength(2);
  });

  it('answers bulwark errors of routes added after the first request, without growing the stack', async () => {
    const app = express();
    app.use(bulwarkMiddleware());
    app.get('/early', (_req, res) => {
      res.send('early');
    });
    const s = await serveExpress(app);
    expect(await (await fetch(`${s.url}/early`)).text()).toBe('early');
    app.get('/late', () => {
      throw new CircuitOpenError('open', 2000, 'inventory');
    });
    await expectProblem(await fetch(`${s.url}/late`), 503, '2');
    const layers = () => app.router.stack.length;
    const before = layers();
    for (let i = 0; i < 5; i++) await (await fetch(`${s.url}/early`)).text();
    await expectProblem(await fetch(`${s.url}/late`), 503, '2');
    expect(layers()).toBe(before);
  });

  it('bulwarkErrorHandler() maps bulwark errors where the app puts it and passes others on', async () => {
    const app = express();
    const router = express.Router();
    router.get('/open', () => {
      throw new CircuitOpenError('open', 5000, 'inventory');
    });
    router.get('/plain', () => {
      throw new Error('boom');
    });
    app.use('/api', router, bulwarkErrorHandler());
    const fallthrough: ErrorRequestHandler = (_err, _req, res, _next) => {
      res.status(500).send('fell through');
    };
    app.use(fallthrough);
    const s = await serveExpress(app);
    await expectProblem(await fetch(`${s.url}/api/open`), 503, '5');
    expect(await (await fetch(`${s.url}/api/plain`)).text()).toBe('fell through');
  });
});

describe('Fastify adapter (bulwarkFastify) on fastify 5', () => {
  const options: BulwarkServerOptions = {
    idempotency: { scope: 'global' },
    loadShedder: { limit: 10 },
  };

  it('is marked to skip encapsulation like fastify-plugin', () => {
    const plugin = bulwarkFastify() as unknown as Record<symbol, unknown>;
    expect(plugin[Symbol.for('skip-override')]).toBe(true);
  });

  it('replays a keyed request through the reply, marked Idempotent-Replayed', async () => {
    let runs = 0;
    const app = Fastify();
    await app.register(bulwarkFastify(options));
    app.post('/', async (request, reply) => {
      runs++;
      return reply.code(201).send({ got: request.body });
    });
    const url = await serveFastify(app);
    const key = randomUUID();
    const post = (body: unknown) =>
      fetch(url, {
        method: 'POST',
        headers: { 'idempotency-key': key, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const first = await post({ a: 1 });
    const again = await post({ a: 1 });
    const other = await post({ a: 2 });
    expect([first.status, again.status, other.status]).toEqual([201, 201, 422]);
    expect(await again.json()).toEqual({ got: { a: 1 } });
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toBe(1);
  });

  it('runs the handler in the request context, so execute inherits the deadline', async () => {
    let remaining = NaN;
    const app = Fastify();
    await app.register(bulwarkFastify(options));
    app.post('/', async () => {
      remaining = await dependency('db').execute((ctx) => ctx.remaining());
      return 'ok';
    });
    const url = await serveFastify(app);
    await fetch(url, {
      method: 'POST',
      headers: { 'grpc-timeout': '300m', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(remaining).toBeLessThanOrEqual(300);
    expect(remaining).toBeGreaterThan(150);
  });

  it('answers 504 through the reply when the deadline already passed', async () => {
    let runs = 0;
    const app = Fastify();
    await app.register(bulwarkFastify(options));
    app.get('/', async () => {
      runs++;
      return 'ok';
    });
    const url = await serveFastify(app);
    await expectProblem(await fetch(url, { headers: { [DEADLINE_HEADER]: '0' } }), 504, null);
    expect(runs).toBe(0);
  });

  it('sheds with 503 and Retry-After while its slots are taken', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const plugin = bulwarkFastify({ loadShedder: { limit: 1 } });
    const app = Fastify();
    await app.register(plugin);
    app.get('/', async () => {
      await held;
      return 'ok';
    });
    const url = await serveFastify(app);
    const first = fetch(url);
    await waitFor(() => plugin.loadShedder!.inFlight === 1);
    await expectProblem(await fetch(url), 503, '1');
    release();
    expect((await first).status).toBe(200);
  });

  for (const { name, error, status, retryAfter } of MAPPED) {
    it(`answers ${status} for a ${name} thrown by a route, not Fastify's 500`, async () => {
      const app = Fastify();
      await app.register(bulwarkFastify());
      app.get('/async', async () => {
        await Promise.resolve();
        throw error();
      });
      app.get('/sync', () => {
        throw error();
      });
      const url = await serveFastify(app);
      await expectProblem(await fetch(`${url}/async`), status, retryAfter);
      await expectProblem(await fetch(`${url}/sync`), status, retryAfter);
    });
  }

  it('maps errors of routes in encapsulated child plugins too', async () => {
    const app = Fastify();
    await app.register(bulwarkFastify());
    await app.register(
      async (child) => {
        child.get('/open', async () => {
          throw new CircuitOpenError('open', 3000, 'ledger');
        });
      },
      { prefix: '/v1' },
    );
    const url = await serveFastify(app);
    await expectProblem(await fetch(`${url}/v1/open`), 503, '3');
  });

  it("leaves other errors to Fastify's error handler", async () => {
    const app = Fastify();
    await app.register(bulwarkFastify());
    app.setErrorHandler(async (error, _request, reply) =>
      reply.code(418).send({ mine: (error as Error).message }),
    );
    app.get('/', async () => {
      throw new Error('boom');
    });
    const url = await serveFastify(app);
    const r = await fetch(url);
    expect(r.status).toBe(418);
    expect(await r.json()).toEqual({ mine: 'boom' });
  });
});
