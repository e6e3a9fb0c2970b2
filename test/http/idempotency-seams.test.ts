// Idempotency-Key at the seams (issue 12): over real node:http, a keyed request runs its
// handler once whatever the client does, and tenants never see each other's keys.
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type ServerResponse } from 'node:http';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { bulwarkHandler, bulwarkMiddleware, type BulwarkServerOptions } from '../../src/http.js';
import type { Context } from '../../src/index.js';
import { MemoryStore } from '../../src/stores/memory.js';
import { listen, waitFor, type TestServer } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function serve(
  handler: (req: { body?: unknown }, res: ServerResponse, ctx: Context) => unknown,
  options: BulwarkServerOptions,
): Promise<TestServer> {
  const s = await listen(createServer(bulwarkHandler(handler, options)));
  servers.push(s);
  return s;
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}
async function post(
  url: string,
  key: string,
  headers: Record<string, string> = {},
  body = '{"cents":4200}',
): Promise<Reply> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'idempotency-key': key, ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Sends a keyed POST and drops the connection after `ms`, before any answer. */
function postAndDrop(
  url: string,
  key: string,
  ms: number,
  headers: Record<string, string> = {},
): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = httpRequest(url, {
      method: 'POST',
      headers: { 'idempotency-key': key, ...headers },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => res.resume());
    req.end('{"cents":4200}');
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms);
  });
}

describe('item 1: a client that disconnects and retries', () => {
  it('never runs the handler twice: the key stays held until the handler settled, then replays', async () => {
    let charges = 0;
    let running = 0;
    let maxRunning = 0;
    const s = await serve(
      async (_req, res) => {
        charges++;
        maxRunning = Math.max(maxRunning, ++running);
        await sleep(400); // the charge ignores the disconnect, as a payment call would
        running--;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ charge: charges }));
      },
      { idempotency: { store: new MemoryStore(), scope: 'global' } },
    );
    const key = randomUUID();
    await postAndDrop(s.url, key, 60);
    await sleep(60);
    const retry = await post(s.url, key);
    expect(retry.status).toBe(409);
    await waitFor(() => running === 0, 3_000);
    const later = await post(s.url, key);
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(JSON.parse(later.text)).toEqual({ charge: 1 });
    expect(charges).toBe(1);
    expect(maxRunning).toBe(1);
  });

  it('holds the key the same way behind real Express 5 middleware', async () => {
    let charges = 0;
    let running = 0;
    const app = express();
    app.use(express.json(), bulwarkMiddleware({ idempotency: { scope: 'global' } }));
    app.post('/', async (_req, res) => {
      charges++;
      running++;
      await sleep(400);
      running--;
      res.status(201).json({ charge: charges });
    });
    const s = await listen(createServer(app));
    servers.push(s);
    const key = randomUUID();
    const json = { 'content-type': 'application/json' };
    await postAndDrop(s.url, key, 60, json);
    await sleep(60);
    expect((await post(s.url, key, json)).status).toBe(409);
    await waitFor(() => running === 0, 3_000);
    const later = await post(s.url, key, json);
    expect(later.status).toBe(201);
    expect(JSON.parse(later.text)).toEqual({ charge: 1 });
    expect(charges).toBe(1);
  });

  it('holds the key at most lockTtl when the handler of a dropped request never answers', async () => {
    let calls = 0;
    const s = await serve(
      async (_req, res, ctx) => {
        calls++;
        if (calls === 1) {
          // Gives up silently once the client is gone: never answers, never throws.
          await new Promise<void>((resolve) =>
            ctx.signal.addEventListener('abort', () => resolve()),
          );
          return;
        }
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      },
      { idempotency: { store: new MemoryStore(), scope: 'global', lockTtl: 300 } },
    );
    const key = randomUUID();
    await postAndDrop(s.url, key, 40);
    await sleep(40);
    expect((await post(s.url, key)).status).toBe(409);
    await sleep(350);
    expect((await post(s.url, key)).status).toBe(201);
    expect(calls).toBe(2);
  });

  it('frees the key when the handler of a dropped request fails, so the retry can run', async () => {
    let calls = 0;
    const s = await serve(
      async (_req, res) => {
        calls++;
        await sleep(150);
        if (calls === 1) throw new Error('downstream reset');
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      },
      { idempotency: { store: new MemoryStore(), scope: 'global' }, onError: () => undefined },
    );
    const key = randomUUID();
    await postAndDrop(s.url, key, 40);
    await waitFor(() => calls === 1);
    await sleep(200);
    expect((await post(s.url, key)).status).toBe(201);
    expect(calls).toBe(2);
  });
});

describe('item 6: tenants', () => {
  it("requires scope: a function of the request or 'global'", () => {
    const run = () => undefined;
    for (const idempotency of [{}, { scope: undefined }, { scope: 'tenant' }, { scope: 42 }]) {
      expect(() => bulwarkHandler(run, { idempotency } as unknown as BulwarkServerOptions)).toThrow(
        /idempotency\.scope: expected a function of the request .* or 'global'/,
      );
    }
    expect(() => bulwarkHandler(run, { idempotency: { scope: 'global' } })).not.toThrow();
    expect(() => bulwarkHandler(run, { idempotency: { scope: () => 'a' } })).not.toThrow();
  });

  it('refuses credential-bearing replayHeaders', () => {
    const run = () => undefined;
    for (const h of ['set-cookie', 'Set-Cookie', 'authorization', 'proxy-authorization']) {
      expect(() =>
        bulwarkHandler(run, {
          idempotency: { scope: 'global', replayHeaders: ['content-type', h] },
        }),
      ).toThrow(/idempotency\.replayHeaders: expected header names without credentials/);
    }
  });

  it("never replays one tenant's response to another, nor confirms with 422 that a key exists", async () => {
    let runs = 0;
    const s = await serve(
      (req, res) => {
        runs++;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ run: runs, body: String(req.body) }));
      },
      {
        idempotency: {
          store: new MemoryStore(),
          scope: (req) => req.headers['x-tenant']?.toString(),
        },
      },
    );
    const key = randomUUID();
    const a = await post(s.url, key, { 'x-tenant': 'a' }, '{"cents":1}');
    const bSame = await post(s.url, key, { 'x-tenant': 'b' }, '{"cents":1}');
    const bOther = await post(s.url, key, { 'x-tenant': 'c' }, '{"cents":2}');
    expect(a.status).toBe(201);
    expect(bSame.status).toBe(201);
    expect(bSame.headers.get('idempotent-replayed')).toBeNull();
    expect(JSON.parse(bSame.text).run).toBe(2);
    expect(bOther.status).toBe(201);
    expect(runs).toBe(3);
  });
});

describe('item 5: maxResponseBytes', () => {
  it('answers a larger response in full, keeps its key, and replays a marked problem with its status', async () => {
    let runs = 0;
    const s = await serve(
      (_req, res) => {
        runs++;
        res.setHeader('location', '/payments/1');
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ pad: 'p'.repeat(2_000) }));
      },
      { idempotency: { store: new MemoryStore(), scope: 'global', maxResponseBytes: 1_024 } },
    );
    const key = randomUUID();
    const first = await post(s.url, key);
    expect(first.status).toBe(201);
    expect(first.text.length).toBeGreaterThan(2_000);
    const again = await post(s.url, key);
    expect(runs).toBe(1);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('idempotent-body-omitted')).toBe('max-response-bytes');
    expect(again.headers.get('location')).toBe('/payments/1');
    expect(again.headers.get('content-type')).toBe('application/problem+json');
    expect(JSON.parse(again.text)).toMatchObject({ status: 201 });
  });
});
