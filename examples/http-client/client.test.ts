import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultServer, type FaultServer } from '../demo/fault-server.js';
import { inventoryClient, type Inventory } from './client.js';

let server: FaultServer;
let client: Inventory;

beforeAll(async () => {
  server = await startFaultServer();
  client = inventoryClient(server.url);
});
afterAll(() => server.close());

describe('examples/http-client', () => {
  it('rides out two 503s with retries', async () => {
    const r = await client.getWork('id=a&fail=2');
    expect(r.status).toBe(200);
    expect(server.hits.get('a')).toBe(3);
  });

  it('waits the Retry-After the dependency asks for', async () => {
    const start = performance.now();
    const r = await client.getWork('id=b&fail=1&retryAfter=1');
    expect(r.status).toBe(200);
    expect(performance.now() - start).toBeGreaterThanOrEqual(950);
  });

  it('never sends a POST twice without a key, and retries it with one', async () => {
    expect(await client.createOrder('id=c&fail=1', false)).toEqual({ status: 503 });
    expect(server.hits.get('c')).toBe(1);
    expect(await client.createOrder('id=d&fail=1', true)).toEqual({ status: 200 });
    expect(server.hits.get('d')).toBe(2);
  });
});
