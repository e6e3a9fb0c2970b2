import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sendJson } from '../../examples/demo/fault-server.js';

/** Answers with a JSON body (shared with the demo's fault server). */
export const json = sendJson;

/** What a test server saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  at: number;
}

export interface TestServer {
  url: string;
  port: number;
  server: Server;
  seen: SeenRequest[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every request before `handler` answers it. */
export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<TestServer> {
  const seen: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      at: performance.now(),
    });
    handler(req, res, seen.length);
  });
  return listen(server, seen, sockets);
}

/** Listens on 127.0.0.1 with any `server`, tracking its sockets so close() never hangs. */
export async function listen(
  server: Server,
  seen: SeenRequest[] = [],
  sockets = new Set<Socket>(),
): Promise<TestServer> {
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Resolves when `predicate` holds, polling every 5 ms; rejects after `ms`. */
export async function waitFor(predicate: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > until) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
