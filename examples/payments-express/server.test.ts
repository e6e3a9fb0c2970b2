import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRedis, redisPort } from '../../test/setup/redis.js';
import { startPaymentsService, type PaymentsService } from './server.js';

describeRedis('examples/payments-express', () => {
  let redis: Redis;
  let a: PaymentsService;
  let b: PaymentsService;

  beforeAll(async () => {
    redis = new Redis({ port: redisPort(), host: '127.0.0.1' });
    const prefix = `example:payments:${randomUUID()}`;
    // Two instances of the service behind one Redis, as in production.
    a = await startPaymentsService(redis, { prefix });
    b = await startPaymentsService(redis, { prefix });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    redis?.disconnect();
  });

  const pay = (url: string, key: string | undefined, body: unknown) =>
    fetch(`${url}/payments`, {
      method: 'POST',
      headers: key === undefined ? {} : { 'idempotency-key': key },
      body: JSON.stringify(body),
    });

  it('charges once for concurrent duplicates sent to two instances', async () => {
    const key = `"${randomUUID()}"`;
    const replies = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        pay(i % 2 === 0 ? a.url : b.url, key, { amount: 500, currency: 'EUR' }),
      ),
    );
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    expect(a.charges.length + b.charges.length).toBe(1);
  });

  it('replays the first answer to a retry, marked Idempotent-Replayed', async () => {
    const key = randomUUID();
    const first = await pay(a.url, key, { amount: 100, currency: 'USD' });
    const retry = await pay(b.url, key, { amount: 100, currency: 'USD' });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.headers.get('location')).toBe(first.headers.get('location'));
    expect(await retry.json()).toEqual(await first.json());
  });

  it('refuses a key reused for another payment (422) and a payment without a key (400)', async () => {
    const key = randomUUID();
    expect((await pay(a.url, key, { amount: 1, currency: 'EUR' })).status).toBe(201);
    expect((await pay(a.url, key, { amount: 2, currency: 'EUR' })).status).toBe(422);
    expect((await pay(a.url, undefined, { amount: 1, currency: 'EUR' })).status).toBe(400);
  });
});
