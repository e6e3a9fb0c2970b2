// The inbound wrappers' `metrics` option: shed requests and idempotent replays land in the
// same Prometheus series as dependency()'s, scraped from a real prom-client registry.
import { createServer } from 'node:http';
import express from 'express';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/dependency.js';
import {
  bulwarkFastify,
  bulwarkHandler,
  bulwarkMiddleware,
  type BulwarkServerOptions,
} from '../../src/http.js';
import { ConfigError } from '../../src/index.js';
import { prometheusMetrics } from '../../src/prometheus.js';
import { listen, waitFor } from './helpers.js';

/** Series name with labels → value, from the exposition text. */
function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) series.set(m[1]!, Number(m[2]));
  }
  return series;
}

let closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((close) => close()));
  closers = [];
});

interface Served {
  url: string;
  release: () => void;
  inFlight: () => number;
}

/** A server whose GET / waits for `release()`, and whose POST /pay answers 201 at once. */
type Make = (options: BulwarkServerOptions) => Promise<Served>;

function gate() {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  return { held, release };
}

const makeNode: Make = async (options) => {
  const { held, release } = gate();
  const listener = bulwarkHandler(async (req, res) => {
    if (req.method === 'GET') await held;
    res.statusCode = req.method === 'GET' ? 200 : 201;
    res.end('ok');
  }, options);
  const s = await listen(createServer(listener));
  closers.push(() => s.close());
  return { url: s.url, release, inFlight: () => listener.loadShedder!.inFlight };
};

const makeExpress: Make = async (options) => {
  const { held, release } = gate();
  const mw = bulwarkMiddleware(options);
  const app = express();
  app.use(express.json(), mw);
  app.get('/', async (_req, res) => {
    await held;
    res.send('ok');
  });
  app.post('/pay', (_req, res) => {
    res.status(201).send('ok');
  });
  const s = await listen(createServer(app));
  closers.push(() => s.close());
  return { url: s.url, release, inFlight: () => mw.loadShedder!.inFlight };
};

const makeFastify: Make = async (options) => {
  const { held, release } = gate();
  const plugin = bulwarkFastify(options);
  const app = Fastify();
  await app.register(plugin);
  app.get('/', async () => {
    await held;
    return 'ok';
  });
  app.post('/pay', async (_request, reply) => reply.code(201).send('ok'));
  closers.push(() => app.close());
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, release, inFlight: () => plugin.loadShedder!.inFlight };
};

describe.each([
  ['bulwarkHandler', makeNode],
  ['bulwarkMiddleware (Express 5)', makeExpress],
  ['bulwarkFastify (Fastify 5)', makeFastify],
])('%s with metrics', (_name, make) => {
  it('counts shed requests and idempotent replays in the series dependency() uses', async () => {
    const registry = new Registry();
    const metrics = prometheusMetrics({ registry });
    // A dependency in the same registry: the inbound series sit beside its own.
    dependency('payments', { metrics });
    const s = await make({
      metrics,
      name: 'checkout-api',
      loadShedder: { limit: 1 },
      idempotency: { scope: 'global' },
    });

    const held = fetch(s.url);
    await waitFor(() => s.inFlight() === 1);
    const shed = await Promise.all([fetch(s.url), fetch(s.url)]);
    expect(shed.map((r) => r.status)).toEqual([503, 503]);
    s.release();
    expect((await held).status).toBe(200);

    const pay = () =>
      fetch(`${s.url}/pay`, {
        method: 'POST',
        headers: { 'idempotency-key': 'order-7', 'content-type': 'application/json' },
        body: '{"amount":5}',
      });
    expect((await pay()).status).toBe(201);
    const replay = await pay();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    await replay.text();

    const series = parseExposition(await registry.metrics());
    expect(
      series.get(
        'bulwark_load_shed_total{dependency="checkout-api",priority="normal",reason="capacity"}',
      ),
    ).toBe(2);
    const idem = [...series].filter(([k]) => k.startsWith('bulwark_idempotency_total{'));
    const count = (result: string) =>
      idem.filter(([k]) => k.includes(`result="${result}"`)).reduce((n, [, v]) => n + v, 0);
    expect(count('executed')).toBe(1);
    expect(count('replayed')).toBe(1);
    expect(series.get('bulwark_concurrency_limit{dependency="checkout-api"}')).toBe(1);
    // The dependency's own series are still there, beside them.
    expect(
      [...series.keys()].some((k) => k.startsWith('bulwark_calls_total{dependency="payments"')),
    ).toBe(true);
  });
});

describe('the metrics option', () => {
  it('labels the series "inbound" unless named', async () => {
    const registry = new Registry();
    const listener = bulwarkHandler(() => {}, {
      metrics: prometheusMetrics({ registry }),
      loadShedder: { limit: 7 },
    });
    expect(listener.loadShedder).toBeDefined();
    const series = parseExposition(await registry.metrics());
    expect(series.get('bulwark_concurrency_limit{dependency="inbound"}')).toBe(7);
  });

  it('rejects what is not a metrics provider, and a bad name, naming the path', () => {
    expect(() => bulwarkHandler(() => {}, { metrics: {} as never })).toThrow(ConfigError);
    expect(() => bulwarkMiddleware({ metrics: {} as never })).toThrow(
      /^bulwarkMiddleware\.metrics: expected a metrics provider/,
    );
    expect(() => bulwarkFastify({ name: '' })).toThrow(/^bulwarkFastify\.name: expected/);
  });
});
