import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallContext } from '../core/context.js';
import type { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';
import { InboundGuard } from './inbound-guard.js';
import { answerBulwarkError, type Responder } from './problem-response.js';
import { runInRequestContext } from './request-context.js';
import type { BulwarkServerOptions } from './server-options.js';

// Written against the shapes Fastify passes, so that this file never imports fastify:
// it stays an optional peer.

/** The part of a Fastify request the plugin reads. */
export interface FastifyLikeRequest {
  /** Node's request underneath. */
  readonly raw: IncomingMessage;
  /** The parsed body (by `preHandler` time). */
  readonly body?: unknown;
}

/** The part of a Fastify reply the plugin uses to answer itself (503, 409, a replay…). */
export interface FastifyLikeReply {
  /** Node's response underneath. */
  readonly raw: ServerResponse;
  /** True once a response was sent. */
  readonly sent?: boolean;
  /** Sets the status. */
  code(status: number): FastifyLikeReply;
  /** Sets response headers. */
  headers(values: Record<string, string>): FastifyLikeReply;
  /** Sends the response. */
  send(payload?: unknown): FastifyLikeReply;
}

/** A Fastify hook in callback style. */
export type FastifyLikeHook = (
  request: FastifyLikeRequest,
  reply: FastifyLikeReply,
  done: (error?: Error) => void,
) => void;

/** A Fastify route handler: returns the payload (or a promise of it), or sends through the reply. */
export type FastifyLikeHandler = (
  this: unknown,
  request: FastifyLikeRequest,
  reply: FastifyLikeReply,
) => unknown;

/** The part of Fastify's route options an `onRoute` hook sees that the plugin changes. */
export interface FastifyLikeRouteOptions {
  /** The route's handler. */
  handler: FastifyLikeHandler;
}

/** The part of a Fastify instance the plugin uses. */
export interface FastifyLikeInstance {
  /** Adds a hook to the instance (the plugin also adds an `onRoute` hook, see `FastifyLikeRouteOptions`). */
  addHook(name: 'onRequest' | 'preHandler', hook: FastifyLikeHook): unknown;
}

/** Fastify's `addHook('onRoute', …)`: its hooks see every route added afterwards. */
interface OnRouteHooks {
  addHook(name: 'onRoute', hook: (route: FastifyLikeRouteOptions) => void): unknown;
}

/** A Fastify plugin from `bulwarkFastify()`, with the policies it applies exposed for metrics. */
export interface BulwarkFastifyPlugin {
  /** Adds the plugin's `onRequest` and `preHandler` hooks; `app.register` calls it. */
  (instance: FastifyLikeInstance, options: unknown, done: (error?: Error) => void): void;
  /** The load shedder guarding the instance's routes, when configured. */
  readonly loadShedder: LoadShedderPolicy | undefined;
  /** The idempotency policy behind the `Idempotency-Key` header, when configured. */
  readonly idempotency: IdempotencyPolicy | undefined;
}

/**
 * The route's handler, with bulwark's errors answered by their status (problem+json, with
 * Retry-After) instead of going to Fastify's error handler, which would answer 500. Keeps the
 * handler's sync or async nature: Fastify treats the two differently.
 */
function mappingErrors(handler: FastifyLikeHandler): FastifyLikeHandler {
  return function (this: unknown, request, reply) {
    const answer = (error: unknown): boolean =>
      reply.sent !== true &&
      !reply.raw.headersSent &&
      answerBulwarkError(replyResponder(reply), error);
    let result: unknown;
    try {
      result = handler.call(this, request, reply);
    } catch (error) {
      if (answer(error)) return undefined;
      throw error;
    }
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      return (result as PromiseLike<unknown>).then(undefined, (error: unknown) => {
        // A reply is thenable until its response ends: resolving with it tells Fastify it was sent.
        if (answer(error)) return reply;
        throw error;
      });
    }
    return result;
  };
}

function replyResponder(reply: FastifyLikeReply): Responder {
  return (status, headers, body) => {
    if (reply.sent === true) return;
    reply.code(status).headers(headers).send(body);
  };
}

/**
 * A Fastify plugin: `await app.register(bulwarkFastify({ loadShedder: { limit: 100 } }))`.
 * `onRequest` reads the deadline and sheds load before the body is parsed; `preHandler`
 * implements the `Idempotency-Key` header over the parsed body and runs the route handler
 * in the request's context. Marked like `fastify-plugin` does, so its hooks apply to the
 * whole instance rather than an encapsulated child. Routes added after it answer bulwark's
 * errors by their status (504 for a `TimeoutError`, 503 + Retry-After for an open circuit, a
 * full bulkhead or shed load; see `errorToStatus`) rather than Fastify's 500; other errors go to
 * Fastify's error handler as before. Register it (and await it) before your routes.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { bulwarkFastify } from 'bulwark/http';
 *
 * const app = Fastify();
 * // `x-priority: low` requests are shed first; accept the header only from your own edge.
 * await app.register(
 *   bulwarkFastify({ loadShedder: { limit: 200 }, priorityHeader: 'x-priority' }),
 * );
 * app.get('/products/:id', async (request) => ({ id: (request.params as { id: string }).id }));
 * await app.listen({ port: 8080 });
 * ```
 */
export function bulwarkFastify(options: BulwarkServerOptions = {}): BulwarkFastifyPlugin {
  const guard = new InboundGuard(options, 'bulwarkFastify');
  const contexts = new WeakMap<IncomingMessage, CallContext>();
  const onRequest: FastifyLikeHook = (request, reply, done) => {
    guard.admit(
      request.raw,
      reply.raw,
      (ctx) => {
        contexts.set(request.raw, ctx);
        done();
      },
      replyResponder(reply),
    );
  };
  const preHandler: FastifyLikeHook = (request, reply, done) => {
    const ctx = contexts.get(request.raw);
    if (ctx === undefined) {
      done();
      return;
    }
    // Body parsing ran on stream callbacks outside the request's context: enter it again.
    runInRequestContext(ctx, () =>
      guard.serve(ctx, request.raw, reply.raw, {
        body: { value: request.body },
        run: () => done(),
        respond: replyResponder(reply),
        onError: (error) => done(error instanceof Error ? error : new Error(String(error))),
      }),
    );
  };
  const plugin = (
    instance: FastifyLikeInstance,
    _options: unknown,
    done: (error?: Error) => void,
  ): void => {
    instance.addHook('onRequest', onRequest);
    instance.addHook('preHandler', preHandler);
    (instance as unknown as OnRouteHooks).addHook('onRoute', (route) => {
      route.handler = mappingErrors(route.handler);
    });
    done();
  };
  const marks = plugin as unknown as Record<symbol, unknown>;
  marks[Symbol.for('skip-override')] = true;
  marks[Symbol.for('fastify.display-name')] = 'bulwark';
  return Object.assign(plugin, {
    loadShedder: guard.loadShedder,
    idempotency: guard.idempotency?.policy,
  });
}
