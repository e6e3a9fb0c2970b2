/**
 * A client service calling a flaky local HTTP dependency through `resilientFetch`:
 * one dependency declaration (budget, retry, breaker), one HTTP client over it.
 *   - GET /work?fail=2     the dependency answers 503 twice: retried, then 200
 *   - GET /work?retryAfter  the dependency asks for `Retry-After: 1`: honoured
 *   - POST /orders          no idempotency key: never sent twice, even on a 503;
 *                           with `idempotencyKeys: 'auto'` a key is sent and the POST retried
 * Run it: `tsx examples/http-client/client.ts` (starts its own fault-injecting server).
 */
import { dependency } from '../../src/index.js';
import { httpClient, type HttpClient } from '../../src/http.js';

export interface Inventory {
  /** GET `/work` on the dependency, with the fault query the demo server understands. */
  getWork(query: string): Promise<{ status: number; body: unknown }>;
  /** POST `/work`, once without a key and (with `keyed`) with a generated Idempotency-Key. */
  createOrder(query: string, keyed: boolean): Promise<{ status: number }>;
}

export function inventoryClient(baseUrl: string): Inventory {
  const inventory = dependency('inventory', {
    budget: '3s',
    retry: { maxAttempts: 3, backoff: { initial: 50, max: 500 } },
    circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: '5s' },
  });
  const api: HttpClient = httpClient(inventory);
  const keyedApi: HttpClient = httpClient(inventory, { idempotencyKeys: 'auto' });
  return {
    async getWork(query) {
      const res = await api.fetch(`${baseUrl}/work?${query}`);
      return { status: res.status, body: await res.json() };
    },
    async createOrder(query, keyed) {
      const res = await (keyed ? keyedApi : api).fetch(`${baseUrl}/work?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sku: 'A-1', quantity: 2 }),
      });
      await res.body?.cancel();
      return { status: res.status };
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { startFaultServer } = await import('../demo/fault-server.js');
  const server = await startFaultServer();
  const client = inventoryClient(server.url);
  const t0 = performance.now();
  const ms = () => `${Math.round(performance.now() - t0)} ms`;
  console.log(
    'GET, two 503s first   →',
    await client.getWork('id=a&fail=2'),
    `(${server.hits.get('a')} requests, ${ms()})`,
  );
  console.log(
    'GET, Retry-After: 1    →',
    (await client.getWork('id=b&fail=1&retryAfter=1')).status,
    `(${server.hits.get('b')} requests, ${ms()})`,
  );
  console.log(
    'POST without a key     →',
    await client.createOrder('id=c&fail=1', false),
    `(${server.hits.get('c')} request: never sent twice)`,
  );
  console.log(
    'POST with an auto key  →',
    await client.createOrder('id=d&fail=1', true),
    `(${server.hits.get('d')} requests)`,
  );
  await server.close();
}
