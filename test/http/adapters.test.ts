import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/dependency.js';
import {
  DEADLINE_HEADER,
  bulwarkFastify,
  bulwarkMiddleware,
  requestContext,
  type BulwarkServerOptions,
  type ExpressLikeRequest,
  type FastifyLikeHook,
  type FastifyLikeInstance,
  type FastifyLikeReply,
  type FastifyLikeRequest,
} from '../../src/http.js';
import { listen, waitFor, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => resolve(text === '' ? undefined : JSON.parse(text)));
    req.on('error', reject);
  });
}

type Middleware = (
  req: ExpressLikeRequest,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

/** The part of Express these tests need: a middleware chain over real node:http objects. */
async function expressLike(chain: Middleware[]): Promise<TestServer> {
  const server = createServer((req, res) => {
    let i = 0;
    const next = (error?: unknown): void => {
      if (error !== undefined) {
        res.statusCode = 500;
        res.end(`error: ${String((error as Error).message)}`);
        return;
      }
      const mw = chain[i++];
      if (mw !== undefined) mw(req, res, next);
    };
    next();
  });
  const s = await listen(server);
  servers.push(s);
  return s;
}

/** A body parser like express.json(): parses before the routes and sets req.body. */
const jsonParser: Middleware = (req, _res, next) => {
  readJson(req).then((body) => {
    req.body = body;
    next();
  }, next);
};

describe('Express adapter (bulwarkMiddleware)', () => {
  it('replays a keyed request over the parsed body, and answers 422 for another body', async () => {
    let runs = 0;
    const s = await expressLike([
      jsonParser,
      bulwarkMiddleware({ idempotency: { scope: 'global' } }),
      (req, res) => {
        runs++;
        res.setHeader('content-type', 'application/json');
        res.statusCode = 201;
        res.end(JSON.stringify({ charged: (req.body as { amount: number }).amount }));
      },
    ]);
    const key = randomUUID();
    const post = (amount: number) =>
      fetch(s.url, {
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
    const s = await expressLike([
      bulwarkMiddleware({ idempotency: { scope: 'global' } }),
      (req, res) => {
        body = req.body;
        res.end('ok');
      },
    ]);
    await fetch(s.url, { method: 'POST', headers: { 'idempotency-key': 'k1' }, body: 'raw bytes' });
    expect(Buffer.isBuffer(body)).toBe(true);
    expect(String(body)).toBe('raw bytes');
  });

  it('gives later handlers the request context, so execute inherits the deadline', async () => {
    let remaining = NaN;
    const s = await expressLike([
      bulwarkMiddleware(),
      jsonParser,
      async (_req, res) => {
        expect(requestContext()).toBeDefined();
        remaining = await dependency('db').execute((ctx) => ctx.remaining());
        res.end('ok');
      },
    ]);
    await fetch(s.url, { method: 'POST', headers: { [DEADLINE_HEADER]: '400' }, body: '{}' });
    expect(remaining).toBeLessThanOrEqual(400);
    expect(remaining).toBeGreaterThan(250);
  });

  it('sheds with 503 and Retry-After while its slots are taken', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const mw = bulwarkMiddleware({ loadShedder: { limit: 1 } });
    const s = await expressLike([mw, (_req, res) => void held.then(() => res.end('ok'))]);
    const first = fetch(s.url);
    await waitFor(() => mw.loadShedder!.inFlight === 1);
    const shed = await fetch(s.url);
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('1');
    release();
    expect((await first).status).toBe(200);
  });
});

/** The part of Fastify these tests need: onRequest hooks, body parsing, preHandler hooks, a handler. */
async function fastifyLike(
  plugin: ReturnType<typeof bulwarkFastify>,
  handler: (request: FastifyLikeRequest, reply: FastifyLikeReply) => void,
): Promise<TestServer> {
  const hooks: Record<'onRequest' | 'preHandler', FastifyLikeHook[]> = {
    onRequest: [],
    preHandler: [],
  };
  const instance: FastifyLikeInstance = { addHook: (name, hook) => hooks[name].push(hook) };
  plugin(instance, {}, () => {});
  const server = createServer((raw, res) => {
    const request: { raw: IncomingMessage; body?: unknown } = { raw };
    const reply: FastifyLikeReply & {
      sent: boolean;
      status: number;
      values: Record<string, string>;
    } = {
      raw: res,
      sent: false,
      status: 200,
      values: {},
      code(status) {
        reply.status = status;
        return reply;
      },
      headers(values) {
        Object.assign(reply.values, values);
        return reply;
      },
      send(payload) {
        reply.sent = true;
        res.writeHead(reply.status, reply.values);
        res.end(
          typeof payload === 'string' || Buffer.isBuffer(payload)
            ? payload
            : JSON.stringify(payload),
        );
        return reply;
      },
    };
    const runHooks = (list: FastifyLikeHook[], then: () => void): void => {
      let i = 0;
      const done = (error?: Error): void => {
        if (error) return void reply.code(500).send(error.message);
        const hook = list[i++];
        if (hook === undefined) then();
        else hook(request, reply, done);
      };
      done();
    };
    runHooks(hooks.onRequest, () => {
      // Fastify parses the body on stream callbacks, which run outside any context the
      // hooks entered (a promise would carry it along; an event listener does not).
      let text = '';
      raw.on('data', (c: Buffer) => (text += c.toString()));
      raw.on('end', () => {
        request.body = text === '' ? undefined : JSON.parse(text);
        runHooks(hooks.preHandler, () => handler(request, reply));
      });
    });
  });
  const s = await listen(server);
  servers.push(s);
  return s;
}

describe('Fastify adapter (bulwarkFastify)', () => {
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
    const s = await fastifyLike(bulwarkFastify(options), (request, reply) => {
      runs++;
      reply.code(201).headers({ 'content-type': 'application/json' }).send({ got: request.body });
    });
    const key = randomUUID();
    const post = (body: unknown) =>
      fetch(s.url, {
        method: 'POST',
        headers: { 'idempotency-key': key },
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

  it('runs the handler in the request context even though the body was parsed outside it', async () => {
    let remaining = NaN;
    const s = await fastifyLike(bulwarkFastify(options), (_request, reply) => {
      void dependency('db')
        .execute((ctx) => ctx.remaining())
        .then((ms) => {
          remaining = ms;
          reply.send('ok');
        });
    });
    await fetch(s.url, { method: 'POST', headers: { 'grpc-timeout': '300m' }, body: '{}' });
    expect(remaining).toBeLessThanOrEqual(300);
    expect(remaining).toBeGreaterThan(150);
  });

  it('answers 504 through the reply when the deadline already passed', async () => {
    let runs = 0;
    const s = await fastifyLike(bulwarkFastify(options), (_request, reply) => {
      runs++;
      reply.send('ok');
    });
    const r = await fetch(s.url, { headers: { [DEADLINE_HEADER]: '0' } });
    expect(r.status).toBe(504);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(runs).toBe(0);
  });
});
