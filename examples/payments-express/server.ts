/**
 * An idempotent payments endpoint: `POST /payments` with an `Idempotency-Key` charges a
 * card exactly once, however often the client (or its retries) sends the request, and
 * across every instance of the service sharing one Redis.
 *
 * Express is not a dependency of this repository, so this example serves the endpoint
 * with `node:http` and `bulwarkHandler`; the Express version is the same options object
 * handed to `bulwarkMiddleware`, after the body parser:
 *
 *   import express from 'express';
 *   import { bulwarkMiddleware } from 'bulwark/http';
 *   const app = express();
 *   app.use(express.json(), bulwarkMiddleware({ idempotency: { store, required: true, scope }, loadShedder: { limit: 200 } }));
 *   app.post('/payments', async (req, res) => res.status(201).json(await charge(req.body)));
 *
 * Run it: `REDIS_PORT=6379 tsx examples/payments-express/server.ts`, then
 *   curl -i -X POST localhost:<port>/payments -H 'Idempotency-Key: "order-1"' -d '{"amount":500,"currency":"EUR"}'
 * twice: the second answer is the first one replayed, with `Idempotent-Replayed: true`.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dependency, type Context } from '../../src/index.js';
import { bulwarkHandler } from '../../src/http.js';
import { RedisStore, type RedisClientLike } from '../../src/redis.js';

export interface Payment {
  id: string;
  amount: number;
  currency: string;
}

export interface PaymentsService {
  url: string;
  /** Charges the card provider actually made (one per distinct payment). */
  charges: Payment[];
  close(): Promise<void>;
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export async function startPaymentsService(
  redis: RedisClientLike,
  options: { port?: number; prefix?: string } = {},
): Promise<PaymentsService> {
  const charges: Payment[] = [];
  // The card provider, as a dependency: a budget and a breaker, no retry — a charge is not
  // repeated blindly; the client's Idempotency-Key is what makes its own retries safe.
  const provider = dependency('card-provider', {
    budget: '2s',
    circuitBreaker: { consecutiveFailures: 5 },
  });
  const charge = (payment: Payment) =>
    provider.execute(async (ctx: Context) => {
      await new Promise((r) => setTimeout(r, 50)); // the provider's latency
      if (ctx.signal.aborted) throw ctx.signal.reason;
      charges.push(payment);
      return payment;
    });

  const store = new RedisStore({ client: redis, prefix: options.prefix ?? 'payments:idem' });
  const handler = bulwarkHandler(
    async (req: IncomingMessage & { body?: unknown }, res: ServerResponse) => {
      if (req.method !== 'POST' || req.url !== '/payments')
        return send(res, 404, { error: 'not found' });
      let input: { amount?: unknown; currency?: unknown };
      try {
        input = JSON.parse(String(req.body));
      } catch {
        return send(res, 400, { error: 'body must be JSON' });
      }
      if (typeof input.amount !== 'number' || typeof input.currency !== 'string') {
        return send(res, 400, { error: 'amount (number) and currency (string) are required' });
      }
      // Inherits the caller's deadline (x-bulwark-deadline-ms) through the request context.
      const payment = await charge({
        id: randomUUID(),
        amount: input.amount,
        currency: input.currency,
      });
      send(res, 201, payment, { location: `/payments/${payment.id}` });
    },
    {
      idempotency: {
        store,
        required: true,
        ttl: '24h',
        lockTtl: '30s',
        // Each account's keys apart (in production: the account your auth layer verified).
        scope: (req) => req.headers['x-account-id']?.toString(),
      },
      loadShedder: { limit: 200 },
    },
  );
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    charges,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { Redis } = await import('ioredis');
  const redis = new Redis({ port: Number(process.env.REDIS_PORT ?? 6379), host: '127.0.0.1' });
  const service = await startPaymentsService(redis, { port: Number(process.env.PORT ?? 0) });
  console.log(`payments on ${service.url} — POST /payments with an Idempotency-Key header`);
}
