import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallContext } from '../core/context.js';
import type { IdempotencyPolicy } from '../policies/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder.js';
import {
  InboundGuard,
  runInRequestContext,
  type BulwarkServerOptions,
  type Responder,
} from './server.js';

// Written against the shapes Fastify passes, so that this file never imports fastify:
// it stays an optional peer.

export interface FastifyLikeRequest {
  readonly raw: IncomingMessage;
  readonly body?: unknown;
}

export interface FastifyLikeReply {
  readonly raw: ServerResponse;
  readonly sent?: boolean;
  code(status: number): FastifyLikeReply;
  headers(values: Record<string, string>): FastifyLikeReply;
  send(payload?: unknown): FastifyLikeReply;
}

export type FastifyLikeHook = (
  request: FastifyLikeRequest,
  reply: FastifyLikeReply,
  done: (error?: Error) => void,
) => void;

export interface FastifyLikeInstance {
  addHook(name: 'onRequest' | 'preHandler', hook: FastifyLikeHook): unknown;
}

export interface BulwarkFastifyPlugin {
  (instance: FastifyLikeInstance, options: unknown, done: (error?: Error) => void): void;
  readonly loadShedder: LoadShedderPolicy | undefined;
  readonly idempotency: IdempotencyPolicy | undefined;
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
 * whole instance rather than an encapsulated child.
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
