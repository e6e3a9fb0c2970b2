/**
 * An HTTP service on 127.0.0.1 that calls two local dependencies through
 * `dependencies(config)` and serves Prometheus metrics on /metrics.
 *   GET /product?id=7   → calls inventory and pricing, returns both
 *   GET /metrics        → the exposition text
 * Run it: `tsx examples/metrics-server/server.ts` (starts its own fault-injecting dependencies).
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { dependencies, type Context, type DependencyConfig } from '../../src/index.js';
import { prometheusMetrics } from '../../src/prometheus.js';

export interface MetricsServer {
  url: string;
  registry: Registry;
  close(): Promise<void>;
}

export interface Upstreams {
  inventory: string;
  pricing: string;
}

async function getJson(url: string, ctx: Context): Promise<unknown> {
  const res = await fetch(url, { signal: ctx.signal });
  if (!res.ok) {
    await res.body?.cancel();
    throw Object.assign(new Error(`HTTP ${res.status} from ${new URL(url).pathname}`), {
      status: res.status,
    });
  }
  return res.json();
}

export async function startMetricsServer(upstreams: Upstreams, port = 0): Promise<MetricsServer> {
  const config = JSON.parse(readFileSync(new URL('./config.json', import.meta.url), 'utf8')) as {
    inventory: DependencyConfig;
    pricing: DependencyConfig;
  };
  const registry = new Registry();
  const deps = dependencies(config, { metrics: prometheusMetrics({ registry }) });

  const answer = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(await registry.metrics());
      return;
    }
    if (url.pathname === '/product') {
      const fault = url.searchParams.toString();
      try {
        const [stock, price] = await Promise.all([
          deps.inventory.execute((ctx) => getJson(`${upstreams.inventory}/work?${fault}`, ctx)),
          deps.pricing.execute((ctx) => getJson(`${upstreams.pricing}/work?${fault}`, ctx)),
        ]);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ stock, price }));
      } catch (e) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: (e as Error).message }));
      }
      return;
    }
    res.writeHead(404).end();
  };
  // A failed /metrics render must end that response, not the process (unhandled rejection).
  const server: Server = createServer((req, res) => {
    answer(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    registry,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { startFaultServer } = await import('../demo/fault-server.js');
  const inventory = await startFaultServer();
  const pricing = await startFaultServer();
  const s = await startMetricsServer(
    { inventory: inventory.url, pricing: pricing.url },
    Number(process.env.PORT ?? 0),
  );
  console.log(`listening on ${s.url} — try ${s.url}/product?id=1&fail=1 and ${s.url}/metrics`);
}
