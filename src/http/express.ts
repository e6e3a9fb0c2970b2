import type { IncomingMessage, ServerResponse } from 'node:http';
import type { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';
import { InboundGuard } from './inbound-guard.js';
import { answerBulwarkError, rawResponder } from './problem-response.js';
import type { BulwarkServerOptions } from './server-options.js';

// Written against the shapes Express passes (its req/res extend node's), so that this
// file never imports express: it stays an optional peer.

/** An Express request: node's IncomingMessage plus what body parsers and routers add. */
export type ExpressLikeRequest = IncomingMessage & { body?: unknown; originalUrl?: string };
/** Express's `next`: call it to go on, or with an error to hand that to error handling. */
export type ExpressLikeNext = (error?: unknown) => void;

/** An Express error-handling middleware (four parameters, as Express tells them apart). */
export type ExpressLikeErrorHandler = (
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: ExpressLikeNext,
) => void;

/** The part of an Express app the middleware uses: `use`, to add bulwark's error handler last. */
interface ExpressLikeApp {
  use(handler: ExpressLikeErrorHandler): unknown;
}

/**
 * Express error middleware answering bulwark's errors as `errorToStatus` maps them (504 for a
 * `TimeoutError`, 503 + Retry-After for an open circuit, a full bulkhead or shed load, …) with
 * a problem+json body — never Express's default 500 with a stack trace — and passing every other
 * error on. `bulwarkMiddleware()` adds one after the app's own error handlers by itself; use this
 * to place one elsewhere (e.g. before a catch-all handler of yours).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { bulwarkErrorHandler, bulwarkMiddleware } from 'bulwark/http';
 *
 * const app = express();
 * app.use(bulwarkMiddleware({ loadShedder: { limit: 200 } }));
 * app.get('/orders', (_req, res) => {
 *   res.json([]);
 * });
 * // Before your catch-all: bulwark's errors get their status, everything else goes on to yours.
 * app.use(bulwarkErrorHandler());
 * app.use((_err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
 *   res.status(500).json({ error: 'internal error' });
 * });
 * ```
 */
export function bulwarkErrorHandler(): ExpressLikeErrorHandler {
  return mapBulwarkErrors;
}

function mapBulwarkErrors(
  error: unknown,
  _req: IncomingMessage,
  res: ServerResponse,
  next: ExpressLikeNext,
): void {
  // Once headers are out, only Express's own handling (which destroys the socket) is left.
  if (res.headersSent || !answerBulwarkError(rawResponder(res), error)) next(error);
}

/** The error handler `bulwarkMiddleware()` appends: its own function, so it is told apart. */
function mapBulwarkErrorsLast(
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: ExpressLikeNext,
): void {
  mapBulwarkErrors(error, req, res, next);
}

/** An Express 5 app's router stack (Express 4 names it `_router`); undefined for other apps. */
function stackOf(app: object): readonly { handle?: unknown }[] | undefined {
  const router =
    (app as { _router?: unknown; router?: unknown })._router ??
    (app as { router?: unknown }).router;
  const stack = (router as { stack?: unknown } | undefined)?.stack;
  return Array.isArray(stack) ? (stack as { handle?: unknown }[]) : undefined;
}

// Per app, the stack length after bulwark's error handler was last made the final layer
// (-1 for an app without a readable stack: appended once).
const mappedAt = new WeakMap<object, number>();

/**
 * Keeps bulwark's error handler after every handler of the request's app: appended on the
 * first request, and again when routes were added since (an app may register routes
 * late). The earlier copy stays where it is (removing a layer would shift the stack under
 * requests in flight); it still serves the routes before it. O(1) per request.
 */
function mapErrorsOf(req: IncomingMessage): void {
  const app = (req as { app?: Partial<ExpressLikeApp> }).app;
  // An Express app is a function (the request listener) with methods.
  if (app === undefined || app === null || typeof app.use !== 'function') return;
  const stack = stackOf(app);
  const length = stack === undefined ? -1 : stack.length;
  const seen = mappedAt.get(app);
  if (seen === length || (seen !== undefined && length === -1)) return;
  const last = stack?.[stack.length - 1]?.handle;
  if (last !== mapBulwarkErrorsLast && last !== mapBulwarkErrors)
    (app as ExpressLikeApp).use(mapBulwarkErrorsLast);
  mappedAt.set(app, stack === undefined ? -1 : stack.length);
}

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
 * Errors of later handlers go through Express's error handling: the app's own error handlers
 * first, then a handler this middleware keeps at the end of the app (appended on its first
 * request, and again after routes added later) that answers bulwark's errors with their
 * status (see `bulwarkErrorHandler`) instead of Express's default 500 with a stack trace.
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
    mapErrorsOf(req);
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
