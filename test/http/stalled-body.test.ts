// Requests whose body stalls (7 of 1,000 bytes sent, then nothing) must not hold the load
// shedder's slots past their deadline: real sockets against node:http, Express 5 and Fastify 5.
import { createServer } from 'node:http';
import { connect } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEADLINE_HEADER,
  bulwarkFastify,
  bulwarkHandler,
  bulwarkMiddleware,
  type BulwarkServerOptions,
} from '../../src/http.js';
import type { LoadShedderPolicy } from '../../src/index.js';
import { listen, waitFor } from './helpers.js';

let closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((close) => close()));
  closers = [];
});

/**
 * Sends a request announcing 1,000 body bytes, sends 7, then stalls. Resolves with the
 * status line's code once the server answers (or `undefined` if the socket closes without
 * one); rejects after `ms`.
 */
function stalledPost(port: number, key: string, ms = 3000): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${ms} ms`));
    }, ms);
    const done = (status: number | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) done(Number(m[1]));
    });
    socket.on('close', () => done(undefined));
    socket.on('error', () => done(undefined));
    socket.write(
      [
        'POST /pay HTTP/1.1',
        'host: 127.0.0.1',
        'content-type: application/json',
        'content-length: 1000',
        `idempotency-key: ${key}`,
        `${DEADLINE_HEADER}: 200`,
        '',
        '{"a":1,',
      ].join('\r\n'),
    );
  });
}

const OPTIONS: BulwarkServerOptions = {
  loadShedder: { limit: 5 },
  idempotency: { scope: 'global' },
};

interface Target {
  url: string;
  port: number;
  shedder: LoadShedderPolicy;
}

async function nodeTarget(): Promise<Target> {
  const listener = bulwarkHandler((_req, res) => {
    res.end('paid');
  }, OPTIONS);
  const s = await listen(createServer(listener));
  closers.push(() => s.close());
  return { url: `${s.url}/pay`, port: s.port, shedder: listener.loadShedder! };
}

async function expressTarget(): Promise<Target> {
  const mw = bulwarkMiddleware(OPTIONS);
  const app = express();
  app.use(mw); // no body parser before it: it reads the keyed body itself
  app.post('/pay', (_req, res) => {
    res.send('paid');
  });
  const s = await listen(createServer(app));
  closers.push(() => s.close());
  return { url: `${s.url}/pay`, port: s.port, shedder: mw.loadShedder! };
}

async function fastifyTarget(): Promise<Target> {
  const plugin = bulwarkFastify(OPTIONS);
  const app = Fastify();
  await app.register(plugin);
  app.post('/pay', async () => 'paid');
  closers.push(() => app.close());
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url: `${url}/pay`, port: Number(new URL(url).port), shedder: plugin.loadShedder! };
}

describe.each([
  ['node:http', nodeTarget],
  ['Express 5', expressTarget],
  ['Fastify 5', fastifyTarget],
])('a stalled request body (%s)', (_name, makeTarget) => {
  it('is answered 504 at its deadline and frees its shedder slot: later requests are served', async () => {
    const target = await makeTarget();
    const started = performance.now();
    const stalled = Promise.all(
      Array.from({ length: 5 }, (_, i) => stalledPost(target.port, `stall-${i}`)),
    );
    // Normal priority may use 80 % of the limit: four stalled requests fill it.
    await waitFor(() => target.shedder.inFlight === 4);
    const statuses = await stalled;
    expect(statuses.filter((s) => s === 504).length).toBeGreaterThanOrEqual(4);
    expect(statuses.every((s) => s === 504 || s === 503)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
    await waitFor(() => target.shedder.inFlight === 0);
    const later = await fetch(target.url, {
      method: 'POST',
      headers: { 'idempotency-key': 'later', 'content-type': 'application/json' },
      body: '{"a":1}',
    });
    expect(later.status).toBe(200);
    expect(await later.text()).toBe('paid');
  });
});

describe('the deadline once the handler runs', () => {
  it('is the handler’s to answer: bulwark does not answer 504 over a handler past its deadline', async () => {
    const listener = bulwarkHandler(async (_req, res) => {
      await new Promise((r) => setTimeout(r, 300)); // ignores its deadline on purpose
      res.end('late but mine');
    }, OPTIONS);
    const s = await listen(createServer(listener));
    closers.push(() => s.close());
    for (const init of [
      { method: 'GET' },
      { method: 'POST', headers: { 'idempotency-key': 'late-1' }, body: '{"a":1}' },
    ] as RequestInit[]) {
      const res = await fetch(s.url, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), [DEADLINE_HEADER]: '100' },
      });
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('late but mine');
    }
  });

  it('a body that arrives slowly but within the deadline is served', async () => {
    const listener = bulwarkHandler((req, res) => {
      res.end(String((req.body as Buffer).length));
    }, OPTIONS);
    const s = await listen(createServer(listener));
    closers.push(() => s.close());
    const status = await new Promise<string>((resolve, reject) => {
      const socket = connect(s.port, '127.0.0.1');
      const timer = setTimeout(() => reject(new Error('no answer')), 3000);
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        if (text.includes('\r\n\r\n') && text.endsWith('10')) {
          clearTimeout(timer);
          socket.destroy();
          resolve(text.split('\r\n')[0]!);
        }
      });
      socket.write(
        `POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nidempotency-key: slow-1\r\n${DEADLINE_HEADER}: 1000\r\n\r\n12345`,
      );
      setTimeout(() => socket.write('67890'), 150);
    });
    expect(status).toBe('HTTP/1.1 200 OK');
  });
});
