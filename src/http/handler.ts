// The node:http request listener: bulwarkHandler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../core/errors.js';
import { InboundGuard } from './inbound-guard.js';
import type {
  BulwarkListener,
  BulwarkRequestHandler,
  BulwarkServerOptions,
} from './server-options.js';

/**
 * Wraps a `node:http` handler: `http.createServer(bulwarkHandler(async (req, res, ctx) => …, options))`.
 * Reads the caller's deadline, so that every `execute` inside the handler inherits what is
 * left of it; sheds load before the body is read; implements the `Idempotency-Key` header.
 * With idempotency on, the body of a keyed request is read first and handed over as
 * `req.body` (a Buffer).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { dependency } from 'bulwark';
 * import { bulwarkHandler } from 'bulwark/http';
 *
 * const inventory = dependency('inventory', { retry: {} });
 * const options = { loadShedder: { limit: 100 } };
 * const handler = bulwarkHandler(async (_req, res) => {
 *   // Inherits what is left of the caller's deadline: no `parent` option needed.
 *   const stock = await inventory.execute(({ signal }) =>
 *     fetch('http://inventory/stock', { signal }),
 *   );
 *   res.setHeader('content-type', 'application/json').end(await stock.text());
 * }, options);
 * createServer(handler).listen(8080);
 * ```
 */
export function bulwarkHandler(
  handler: BulwarkRequestHandler,
  options: BulwarkServerOptions = {},
): BulwarkListener {
  if (typeof handler !== 'function') {
    throw new ConfigError([
      { path: 'bulwarkHandler(handler)', expected: 'a function (req, res, ctx)', got: handler },
    ]);
  }
  const guard = new InboundGuard(options, 'bulwarkHandler');
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    guard.admit(req, res, (ctx) =>
      guard.serve(ctx, req, res, { run: () => handler(req, res, ctx) }),
    );
  };
  return Object.assign(listener, {
    loadShedder: guard.loadShedder,
    idempotency: guard.idempotency?.policy,
  });
}
