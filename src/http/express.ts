import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';
import { InboundGuard } from './inbound-guard.js';
import type { BulwarkServerOptions } from './server-options.js';

// Written against the shapes Express passes (its req/res extend node's), so that this
// file never imports express: it stays an optional peer.

/** An Express request: node's IncomingMessage plus what body parsers and routers add. */
export type ExpressLikeRequest = IncomingMessage & { body?: unknown; originalUrl?: string };
/** Express's `next`: call it to go on, or with an error to hand that to error handling. */
export type ExpressLikeNext = (error?: unknown) => void;

/**
 * Express middleware from `bulwarkMiddleware()`, with the policies it applies exposed for metrics.
 */
export interface BulwarkMiddleware {
  /** Handles one request; Express calls it. */
  (req: ExpressLikeRequest, res: ServerResponse, next: ExpressLikeNext): void;
  /** The load shedder guarding the routes after it, when configured. */
  readonly loadShedder: LoadShedderPolicy | undefined;
  /** The idempotency policy behind the `Idempotency-Key` header, when configured. */
  readonly idempotency: IdempotencyPolicy | undefined;
}

/**
 * Express middleware: `app.use(express.json(), bulwarkMiddleware({ idempotency: { store, scope } }))`.
 * The same guard as `bulwarkHandler`: the caller's deadline becomes the request's context
 * (ambient for every `execute` in later handlers), load is shed before the body is read,
 * and keyed requests run once and are replayed. Put it after the body parser: it then
 * fingerprints `req.body`; without one, it reads the raw body itself into `req.body`.
 * Handler errors go to Express's error handling through `next(err)`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { bulwarkMiddleware } from 'bulwark/http';
 *
 * const app = express();
 * // After the body parser, so that keyed requests are fingerprinted by their parsed body.
 * app.use(
 *   express.json(),
 *   bulwarkMiddleware({
 *     loadShedder: { limit: 200 },
 *     idempotency: { required: true, scope: (req) => req.headers['x-account-id']?.toString() },
 *   }),
 * );
 * app.post('/orders', (req, res) => {
 *   res.status(201).json({ id: 'ord_1', items: req.body.items });
 * });
 * app.listen(8080);
 * ```
 */
export function bulwarkMiddleware(options: BulwarkServerOptions = {}): BulwarkMiddleware {
  const guard = new InboundGuard(options, 'bulwarkMiddleware');
  const middleware = (
    req: ExpressLikeRequest,
    res: ServerResponse,
    next: ExpressLikeNext,
  ): void => {
    guard.admit(req, res, (ctx) =>
      guard.serve(ctx, req, res, {
        body: req.body === undefined ? undefined : { value: req.body },
        run: () => next(),
        onError: next,
      }),
    );
  };
  return Object.assign(middleware, {
    loadShedder: guard.loadShedder,
    idempotency: guard.idempotency?.policy,
  });
}
