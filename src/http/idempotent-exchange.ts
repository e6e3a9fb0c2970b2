// The Idempotency-Key protocol for one keyed request: read (or take) its body, fingerprint
// it, run the handler once, store its response, and replay it to duplicates.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallContext } from '../core/context.js';
import { TimeoutError } from '../core/errors.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
} from '../policies/idempotency/errors.js';
import type { InboundGuard } from './inbound-guard.js';
import { problem, type Responder } from './problem-response.js';
import { runInRequestContext, setRequestScope } from './request-context.js';
import { NotStored, ResponseRecorder, type StoredResponse } from './response-recorder.js';
import { runHandler } from './run-handler.js';
import type { CompiledIdempotency } from './server-options.js';

class BodyTooLarge extends Error {}

/** Reads the whole request body, up to `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error('the request was closed before its body was read'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

function fingerprintOf(method: string, path: string, body: unknown): string {
  const bodyHash = createHash('sha256');
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) bodyHash.update(body);
  else if (typeof body === 'string') bodyHash.update(body);
  else if (body !== undefined && body !== null) bodyHash.update(JSON.stringify(body) ?? '');
  return createHash('sha256')
    .update(method)
    .update('\n')
    .update(path)
    .update('\n')
    .update(bodyHash.digest())
    .digest('base64url');
}

/** The key as sent (an sf-string per the draft, or bare as many clients send it), or `undefined` if invalid. */
export function parseKey(raw: string, maxLength: number): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length === 0 || key.length > maxLength) return undefined;
  // Visible ASCII only, no quote or backslash: keys end up in store keys and logs.
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(key) ? key : undefined;
}

/** Everything one keyed request's exchange needs. */
export interface ExchangeParts {
  /** Answers a failure the exchange does not map itself (its `onError` option). */
  guard: InboundGuard;
  idem: CompiledIdempotency;
  ctx: CallContext;
  req: IncomingMessage & { body?: unknown };
  res: ServerResponse;
  /** The parsed `Idempotency-Key`. */
  key: string;
  /** Upper-case method and the path as sent: with the body, the request's fingerprint. */
  method: string;
  path: string;
  /** Runs the handler (or the framework's next step). */
  run: () => unknown;
  respond: Responder;
  /** A handler failure. */
  onError: (error: unknown) => void;
}

/** A request carrying an idempotency key: run it once, store its response, replay it to duplicates. */
export class IdempotentExchange {
  private executed = false;

  constructor(private readonly parts: ExchangeParts) {}

  /** Starts with the body the framework already read, or reads the body first. */
  start(body: { value: unknown } | undefined): void {
    if (body !== undefined) {
      this.claim(body.value);
      return;
    }
    readBody(this.parts.req, this.parts.idem.maxBodyBytes).then(this.bodyRead, this.bodyFailed);
  }

  private readonly bodyRead = (bytes: Buffer): void => {
    const { req, ctx } = this.parts;
    if (req.body === undefined) req.body = bytes;
    runInRequestContext(ctx, () => this.claim(bytes));
  };

  private readonly bodyFailed = (error: unknown): void => {
    const { respond, res } = this.parts;
    if (error instanceof BodyTooLarge) {
      problem(respond, 413, 'The request body is too large for an idempotent request', {
        connection: 'close',
      });
    } else if (!res.destroyed) {
      problem(respond, 400, 'The request body could not be read');
    }
  };

  /** Claims the key (or finds its stored response) for this request's fingerprint. */
  private claim(body: unknown): void {
    const { idem, ctx, req, key, method, path } = this.parts;
    if (idem.scope !== undefined) {
      const scope = idem.scope(req);
      if (scope !== undefined) setRequestScope(ctx, scope);
    }
    idem.policy
      .execute(this.execute, {
        parent: ctx,
        idempotencyKey: key,
        fingerprint: fingerprintOf(method, path, body),
      })
      .then(this.replay, this.failed);
  }
  /**
   * The first request with this key: run the handler and record what it answers. The
   * promise settles only once the handler has (answered or failed), even if the client went
   * away first: the key stays held while the work it guards runs, so a retry gets 409
   * until then and the stored response after.
   */
  private readonly execute = (): Promise<StoredResponse> => {
    this.executed = true;
    const { res, idem, run, onError } = this.parts;
    return new Promise<StoredResponse>((resolve, reject) => {
      let closedEarly = false;
      let timer: unknown;
      const settle = (): void => {
        res.off('finish', onFinish);
        res.off('close', onClose);
        if (timer !== undefined) this.parts.ctx.clock.clearTimeout(timer);
        if (!idem.storeStatus(res.statusCode)) reject(new NotStored('response not stored'));
        // Too large to keep, but the handler ran: the key keeps a marker, never a second run.
        else if (recorder.overflow) resolve(recorder.omitted(idem.replayHeaders));
        else resolve(recorder.result(idem.replayHeaders));
      };
      const onFinish = (): void => settle();
      const onClose = (): void => {
        if (recorder.ended) return settle();
        // The client left while the handler runs: wait for the handler's answer (stored for
        // the retry) or failure; after lockTtl the store has let the key go anyway.
        closedEarly = true;
        timer = this.parts.ctx.clock.setTimeout(() => {
          recorder.onEnd = undefined;
          reject(new NotStored('the handler did not answer within lockTtl'));
        }, idem.policy.lockTtl);
      };
      const recorder = new ResponseRecorder(res, idem.maxResponseBytes, () => {
        if (closedEarly) settle();
      });
      res.once('finish', onFinish);
      res.once('close', onClose);
      runHandler(run, (error) => {
        if (closedEarly && !recorder.ended) {
          if (timer !== undefined) this.parts.ctx.clock.clearTimeout(timer);
          recorder.onEnd = undefined;
          reject(error);
        }
        onError(error);
      });
    });
  };

  private readonly replay = (stored: StoredResponse): void => {
    if (this.executed) return;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(stored.headers))
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    headers['idempotent-replayed'] = 'true';
    this.parts.respond(stored.status, headers, Buffer.from(stored.body, 'base64'));
  };

  private readonly failed = (error: unknown): void => {
    if (this.executed) return; // the handler answered (or failed and onError answered)
    if (error instanceof IdempotencyInProgressError) {
      problem(
        this.parts.respond,
        409,
        'A request with this idempotency key is still being processed',
        {
          'retry-after': '1',
        },
      );
    } else if (error instanceof IdempotencyKeyReuseError) {
      problem(this.parts.respond, 422, 'This idempotency key was used with a different request');
    } else if (error instanceof IdempotencyStoreError) {
      problem(this.parts.respond, 503, 'Idempotency store unavailable', { 'retry-after': '1' });
    } else if (error instanceof TimeoutError) {
      problem(
        this.parts.respond,
        504,
        'Deadline exceeded while a request with this key was being processed',
      );
    } else if (!this.parts.ctx.isAborted) {
      this.parts.guard.onError(error, this.parts.req, this.parts.res);
    }
  };
}
