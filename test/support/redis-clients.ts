import { Redis } from 'ioredis';
import { createClient } from 'redis';

/** A node-redis client, as the tests hold it. */
export type NodeRedis = ReturnType<typeof createClient>;

/**
 * Reconnection for tests that stop their own server: retry every `retryEvery` ms and
 * swallow the connection errors meanwhile (the tests assert on the calls, not on events).
 */
export interface OutageClientOptions {
  retryEvery?: number;
}

/** An ioredis client connected to 127.0.0.1:`port`. */
export async function connectIoredis(
  port: number,
  options: OutageClientOptions = {},
): Promise<Redis> {
  const { retryEvery } = options;
  const io =
    retryEvery === undefined
      ? new Redis({ port, host: '127.0.0.1', lazyConnect: true })
      : new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => retryEvery });
  if (retryEvery !== undefined) io.on('error', () => {});
  await io.connect();
  return io;
}

/** A node-redis client connected to 127.0.0.1:`port` (RESP2 unless `resp3`). */
export async function connectNodeRedis(
  port: number,
  options: OutageClientOptions & { resp3?: boolean } = {},
): Promise<NodeRedis> {
  const { retryEvery } = options;
  const socket =
    retryEvery === undefined
      ? { port, host: '127.0.0.1' }
      : { port, host: '127.0.0.1', reconnectStrategy: () => retryEvery };
  const nr: NodeRedis = options.resp3
    ? createClient({ socket, RESP: 3 })
    : createClient({ socket });
  nr.on('error', () => {});
  await nr.connect();
  return nr;
}
