import { afterEach, describe, expect, it } from 'vitest';
import { dependency } from '../../src/dependency.js';
import { BulwarkError, ConfigError, isBulwarkError } from '../../src/index.js';
import {
  DEADLINE_HEADER,
  HttpError,
  httpClient,
  isRetryableHttpError,
  resilientFetch,
} from '../../src/http.js';
import { json, startServer, waitFor, type TestServer } from './helpers.js';

let servers: TestServer[] = [];
async function server(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const retrying = (budget = 5000, maxAttempts = 3) =>
  dependency('api', { budget, retry: { maxAttempts, backoff: 10 } });

describe('resilientFetch: statuses and Retry-After', () => {
  it('retries a 503 and returns the success', async () => {
    const s = await server((_req, res, n) =>
      n < 3 ? json(res, 503, { n }) : json(res, 200, { ok: true }),
    );
    const res = await resilientFetch(retrying(), `${s.url}/x`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(s.seen).toHaveLength(3);
  });

  it('waits the Retry-After delta-seconds before the next attempt', async () => {
    const s = await server((_req, res, n) =>
      n === 1 ? json(res, 503, {}, { 'retry-after': '1' }) : json(res, 200, {}),
    );
    const res = await resilientFetch(retrying(), s.url);
    expect(res.status).toBe(200);
    const gap = s.seen[1]!.at - s.seen[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950); // backoff alone would be 10 ms
    expect(gap).toBeLessThan(1500);
  });

  it('waits until the Retry-After HTTP-date, measured on the server Date header', async () => {
    const s = await server((_req, res, n) => {
      if (n > 1) return json(res, 200, {});
      const now = Math.floor(Date.now() / 1000) * 1000;
      json(
        res,
        503,
        {},
        {
          date: new Date(now).toUTCString(),
          'retry-after': new Date(now + 1000).toUTCString(),
        },
      );
    });
    const res = await resilientFetch(retrying(), s.url);
    expect(res.status).toBe(200);
    const gap = s.seen[1]!.at - s.seen[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(1500);
  });

  it('gives up at once when Retry-After is beyond the budget, returning the last response', async () => {
    const s = await server((_req, res) => json(res, 503, { busy: true }, { 'retry-after': '120' }));
    const start = performance.now();
    const res = await resilientFetch(retrying(800), s.url);
    expect(performance.now() - start).toBeLessThan(400);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ busy: true });
    expect(s.seen).toHaveLength(1);
  });

  it('does not retry 404 or 400', async () => {
    for (const status of [404, 400]) {
      const s = await server((_req, res) => json(res, status, {}));
      const res = await resilientFetch(retrying(), s.url);
      expect(res.status).toBe(status);
      expect(s.seen).toHaveLength(1);
    }
  });

  it('returns the last response when retries are exhausted', async () => {
    const s = await server((_req, res, n) => json(res, 502, { n }));
    const res = await resilientFetch(retrying(), s.url);
    expect(res.status).toBe(502);
    expect(await res.json()).toEqual({ n: 3 });
    expect(s.seen).toHaveLength(3);
  });

  it('throws HttpError with status, Retry-After and the response under throwOnStatus', async () => {
    const s = await server((_req, res) =>
      json(res, 503, { why: 'maintenance' }, { 'retry-after': '120' }),
    );
    const error = await resilientFetch(retrying(800), `${s.url}/pay?secret=1`, undefined, {
      throwOnStatus: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpError);
    expect(error).toBeInstanceOf(BulwarkError);
    expect(isBulwarkError(error)).toBe(true);
    const e = error as HttpError;
    expect(e.code).toBe('ERR_HTTP_STATUS');
    expect(e.status).toBe(503);
    expect(e.retryAfterMs).toBe(120_000);
    expect(await e.response.json()).toEqual({ why: 'maintenance' });
    expect(e.message).toContain('api: GET');
    expect(e.message).not.toContain('secret');
  });

  it('throws HttpError for a non-retryable error status under throwOnStatus, and only for the statuses chosen', async () => {
    const s = await server((_req, res) => json(res, 404, {}));
    await expect(
      resilientFetch(retrying(), s.url, undefined, { throwOnStatus: true }),
    ).rejects.toMatchObject({
      status: 404,
    });
    const res = await resilientFetch(retrying(), s.url, undefined, {
      throwOnStatus: (st) => st >= 500,
    });
    expect(res.status).toBe(404);
    expect(s.seen).toHaveLength(2);
  });

  it('treats the configured retryStatuses as failures (and others as answers)', async () => {
    const s = await server((_req, res, n) => json(res, n === 1 ? 500 : 200, {}));
    const res = await resilientFetch(retrying(), s.url, undefined, { retryStatuses: [503] });
    expect(res.status).toBe(500);
    expect(s.seen).toHaveLength(1);
  });

  it('retries a status outside the default set with retryOn: isRetryableHttpError', async () => {
    const s = await server((_req, res, n) => json(res, n === 1 ? 409 : 200, {}));
    const dep = dependency('api', {
      retry: { maxAttempts: 2, backoff: 10, retryOn: isRetryableHttpError },
    });
    const res = await resilientFetch(dep, s.url, undefined, { retryStatuses: [409, 503] });
    expect(res.status).toBe(200);
    expect(s.seen).toHaveLength(2);
  });
});

describe('resilientFetch: methods and idempotency keys', () => {
  it('never sends a POST without a key twice, even on a retryable status', async () => {
    const s = await server((_req, res) => json(res, 503, {}));
    const res = await resilientFetch(retrying(), s.url, { method: 'POST', body: '{}' });
    expect(res.status).toBe(503);
    expect(s.seen).toHaveLength(1);
  });

  it('never sends a POST without a key twice after a dropped connection', async () => {
    const s = await server((req) => req.socket.destroy());
    await expect(resilientFetch(retrying(), s.url, { method: 'POST', body: 'x' })).rejects.toThrow(
      /fetch failed/,
    );
    expect(s.seen).toHaveLength(1);
  });

  it('retries a POST carrying the caller Idempotency-Key, sending the same key each time', async () => {
    const s = await server((_req, res, n) => (n < 3 ? json(res, 503, {}) : json(res, 201, {})));
    const res = await resilientFetch(retrying(), s.url, {
      method: 'POST',
      body: '{"amount":5}',
      headers: { 'Idempotency-Key': 'order-42' },
    });
    expect(res.status).toBe(201);
    expect(s.seen.map((r) => r.headers['idempotency-key'])).toEqual([
      'order-42',
      'order-42',
      'order-42',
    ]);
  });

  it('sends the idempotencyKey option unchanged and retries with it', async () => {
    const s = await server((_req, res, n) => (n < 2 ? json(res, 500, {}) : json(res, 200, {})));
    const res = await resilientFetch(
      retrying(),
      s.url,
      { method: 'PATCH', body: 'x' },
      { idempotencyKey: 'k-1' },
    );
    expect(res.status).toBe(200);
    expect(s.seen.map((r) => r.headers['idempotency-key'])).toEqual(['k-1', 'k-1']);
  });

  it("generates one key per logical request with idempotencyKeys: 'auto', the same across retries", async () => {
    const s = await server((_req, res, n) =>
      n % 2 === 1 ? json(res, 503, {}) : json(res, 200, {}),
    );
    const api = httpClient(retrying(), { idempotencyKeys: 'auto' });
    await api.fetch(s.url, { method: 'POST', body: 'a' });
    await api.fetch(s.url, { method: 'POST', body: 'b' });
    const keys = s.seen.map((r) => r.headers['idempotency-key']);
    expect(keys).toHaveLength(4);
    expect(keys[0]).toMatch(/^"[0-9a-f-]{36}"$/); // an sf-string, as the IETF draft sends it
    expect(keys[1]).toBe(keys[0]);
    expect(keys[3]).toBe(keys[2]);
    expect(keys[2]).not.toBe(keys[0]);
  });

  it("adds no generated key to idempotent methods with idempotencyKeys: 'auto'", async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    await httpClient(retrying(), { idempotencyKeys: 'auto' }).fetch(s.url);
    expect(s.seen[0]!.headers['idempotency-key']).toBeUndefined();
  });

  it('retries a PUT and a DELETE without a key (RFC 9110 idempotent methods)', async () => {
    for (const method of ['PUT', 'DELETE']) {
      const s = await server((_req, res, n) => json(res, n === 1 ? 503 : 200, {}));
      const res = await resilientFetch(retrying(), s.url, {
        method,
        body: method === 'PUT' ? 'x' : undefined,
      });
      expect(res.status).toBe(200);
      expect(s.seen).toHaveLength(2);
    }
  });

  it('retries a POST whose connection was refused: nothing reached the server', async () => {
    let calls = 0;
    const s = await server((_req, res) => json(res, 200, {}));
    const refusing: typeof fetch = (input, init) => {
      calls++;
      if (calls === 1) {
        return Promise.reject(
          Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
        );
      }
      return fetch(input, init);
    };
    const res = await resilientFetch(
      retrying(),
      s.url,
      { method: 'POST', body: 'x' },
      { fetch: refusing },
    );
    expect(res.status).toBe(200);
    expect(calls).toBe(2);
  });

  it('sends a hedged GET twice but a hedged POST without a key once', async () => {
    const s = await server((_req, res) => {
      const t = setTimeout(() => json(res, 200, {}), 150);
      res.on('close', () => clearTimeout(t));
    });
    const dep = dependency('api', { budget: 2000, hedge: { delay: 20 } });
    await resilientFetch(dep, `${s.url}/get`);
    await resilientFetch(dep, `${s.url}/post`, { method: 'POST', body: 'x' });
    expect(s.seen.filter((r) => r.url === '/get')).toHaveLength(2);
    expect(s.seen.filter((r) => r.url === '/post')).toHaveLength(1);
  });
});

describe('resilientFetch: deadline, abort and bodies', () => {
  it('sends the remaining budget minus the margin in the deadline header', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    await resilientFetch(dependency('api', { budget: 1000, retry: false }), s.url);
    const sent = Number(s.seen[0]!.headers[DEADLINE_HEADER]);
    expect(sent).toBeLessThanOrEqual(990);
    expect(sent).toBeGreaterThan(800);

    await resilientFetch(dependency('api', { budget: 1000, retry: false }), s.url, undefined, {
      deadlineHeader: 'x-timeout-ms',
      deadlineMargin: 100,
    });
    expect(Number(s.seen[1]!.headers['x-timeout-ms'])).toBeLessThanOrEqual(900);
    expect(s.seen[1]!.headers[DEADLINE_HEADER]).toBeUndefined();
  });

  it('sends the tighter of the attempt timeout and the budget', async () => {
    const s = await server((_req, res) => json(res, 200, {}));
    await resilientFetch(dependency('api', { budget: 5000, timeout: 300 }), s.url);
    expect(Number(s.seen[0]!.headers[DEADLINE_HEADER])).toBeLessThanOrEqual(290);
  });

  it('aborts the request at the attempt timeout and retries it', async () => {
    const closed: number[] = [];
    const s = await server((_req, res, n) => {
      if (n === 1) {
        res.on('close', () => closed.push(n));
        return; // never answers
      }
      json(res, 200, {});
    });
    const res = await resilientFetch(
      dependency('api', { budget: 2000, timeout: 200, retry: { backoff: 10 } }),
      s.url,
    );
    expect(res.status).toBe(200);
    await waitFor(() => closed.length === 1);
  });

  it("ends at once with the caller's abort", async () => {
    const s = await server(() => {});
    const controller = new AbortController();
    const call = resilientFetch(retrying(), s.url, { signal: controller.signal });
    await waitFor(() => s.seen.length === 1);
    controller.abort(new Error('user left'));
    await expect(call).rejects.toThrow('user left');
    expect(s.seen).toHaveLength(1);
  });

  it('cancels the body of a discarded response so its connection is freed', async () => {
    const firstClosed: boolean[] = [];
    const s = await server((_req, res, n) => {
      if (n === 1) {
        // Headers and a first chunk, then nothing: only a client that lets go frees it.
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.write('partial');
        res.on('close', () => firstClosed.push(true));
        return;
      }
      json(res, 200, {});
    });
    const responses: Response[] = [];
    const recording: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      responses.push(r);
      return r;
    };
    const res = await resilientFetch(retrying(), s.url, undefined, { fetch: recording });
    expect(res.status).toBe(200);
    expect(responses).toHaveLength(2);
    expect(responses[0]!.bodyUsed).toBe(true);
    expect(responses[1]!.bodyUsed).toBe(false);
    await waitFor(() => firstClosed.length === 1);
  });

  it('cancels the body of a hedge that lost', async () => {
    const s = await server((req, res, n) => {
      if (n === 1) {
        const t = setTimeout(() => json(res, 200, { slow: true }), 150);
        res.on('close', () => clearTimeout(t));
      } else json(res, 200, { fast: true });
    });
    const responses: Response[] = [];
    const recording: typeof fetch = async (input, init) => {
      const r = await fetch(input, init);
      responses.push(r);
      return r;
    };
    const res = await resilientFetch(
      dependency('api', { hedge: { delay: 20 } }),
      s.url,
      undefined,
      { fetch: recording },
    );
    expect(await res.json()).toEqual({ fast: true });
    // The slow attempt was aborted (no response) or, if it answered, its body was cancelled.
    for (const r of responses) if (r !== res) expect(r.bodyUsed).toBe(true);
  });

  it('sends a Request input again on retry, body included', async () => {
    const bodies: string[] = [];
    const s = await server((req, res, n) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        bodies.push(body);
        json(res, n === 1 ? 503 : 200, {});
      });
    });
    const request = new Request(s.url, { method: 'PUT', body: 'payload' });
    const res = await resilientFetch(retrying(), request);
    expect(res.status).toBe(200);
    expect(bodies).toEqual(['payload', 'payload']);
  });

  it('rejects bad options with a ConfigError naming them', async () => {
    const dep = retrying();
    await expect(
      resilientFetch(dep, 'http://127.0.0.1:1', undefined, {
        retryStatuses: [700],
        idempotencyKeys: 'always',
      } as never),
    ).rejects.toBeInstanceOf(ConfigError);
    expect(() => httpClient(dep, { deadlineHeader: 'bad header' })).toThrow(
      /httpClient.deadlineHeader/,
    );
  });
});
