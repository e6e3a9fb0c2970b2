import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real local HTTP dependency that injects faults on request, for the demo and the
 * integration tests. Query parameters choose the fault:
 *   /work?id=a&fail=2            the first 2 requests for id "a" get 503 (then 200)
 *   /work?id=a&fail=1&retryAfter=1   ... with `Retry-After: 1`
 *   /work?id=a&drop=1            the first request for id "a" has its connection dropped
 *   /work?latency=500            answer after 500 ms
 *   /work?id=a&slowFirst=400     the first request for id "a" takes 400 ms, later ones are fast
 *   /work?down=1                 always 503 (an outage)
 */
export interface FaultServer {
  url: string;
  /** Requests received per id (and in all under '*'). */
  hits: Map<string, number>;
  close(): Promise<void>;
}

export async function startFaultServer(port = 0): Promise<FaultServer> {
  const hits = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = (name: string) => Number(url.searchParams.get(name) ?? 0);
    const id = url.searchParams.get('id') ?? '';
    const n = (hits.get(id) ?? 0) + 1;
    hits.set(id, n);
    hits.set('*', (hits.get('*') ?? 0) + 1);

    if (q('down')) return sendJson(res, 503, { error: 'down' });
    if (n <= q('drop')) return req.socket.destroy();
    if (n <= q('fail')) {
      const headers: Record<string, string> = {};
      if (url.searchParams.has('retryAfter'))
        headers['retry-after'] = url.searchParams.get('retryAfter')!;
      return sendJson(res, 503, { error: 'unavailable', attempt: n }, headers);
    }
    const latency = n === 1 && q('slowFirst') ? q('slowFirst') : q('latency');
    const timer = setTimeout(() => sendJson(res, 200, { ok: true, attempt: n }), latency);
    res.on('close', () => clearTimeout(timer));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Answers with a JSON body (unless the client is already gone). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
