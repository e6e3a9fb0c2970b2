// The inbound guard every adapter shares: the caller's deadline header becomes the
// request's budget, the load shedder admits or refuses it, and a keyed request goes
// through the Idempotency-Key protocol.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../core/clock.js';
import { CallContext, PRIORITIES, type Priority } from '../core/context.js';
import { TimeoutError, withoutStack } from '../core/errors.js';
import { LoadShedError } from '../policies/load-shedder/errors.js';
import { terminalStep } from '../core/pipeline.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';
import { readDeadlineHeaders } from './deadline-header.js';
import { IdempotentExchange, parseKey } from './idempotent-exchange.js';
import { problem, rawResponder, retryAfterHeader, type Responder } from './problem-response.js';
import { installProvider, runInRequestContext } from './request-context.js';
import { runHandler } from './run-handler.js';
import {
  compileServerOptions,
  type BulwarkServerOptions,
  type CompiledDeadline,
  type CompiledIdempotency,
  type CompiledServerOptions,
} from './server-options.js';

const PRIORITY_SET: ReadonlySet<string> = new Set(PRIORITIES);

/** The first value of a request header, if sent. */
function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What a request's handling needs from its framework. */
export interface ServeOptions {
  /** The body, when the framework already read it (Express body parsers, Fastify). */
  body?: { value: unknown };
  /** Runs the handler (or the framework's next step). */
  run: () => unknown;
  /** Writes a response the wrapper makes itself (default: the raw response). */
  respond?: Responder;
  /** A handler failure (default: the `onError` option). */
  onError?: (error: unknown) => void;
}

/**
 * @internal The request guard behind `bulwarkHandler` and the Express and Fastify
 * adapters: deadline, load shedding and idempotency, in two stages so that a framework
 * can read the body in between.
 */
export class InboundGuard {
  readonly clock: Clock;
  readonly loadShedder: LoadShedderPolicy | undefined;
  readonly idempotency: CompiledIdempotency | undefined;
  private readonly deadline: CompiledDeadline | false;
  private readonly priorityHeader: string | undefined;
  private readonly priorityFn: ((req: IncomingMessage) => Priority | undefined) | undefined;
  readonly onError: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
  private readonly traceRequest: CompiledServerOptions['traceRequest'];
  /** Requests admitted and not yet handed to their handler (their body may still be arriving). */
  private readonly admissions = new WeakMap<CallContext, Admission>();

  constructor(options: BulwarkServerOptions = {}, path = 'bulwarkHandler') {
    const compiled = compileServerOptions(options, path);
    this.clock = compiled.clock;
    this.loadShedder = compiled.loadShedder;
    this.idempotency = compiled.idempotency;
    this.deadline = compiled.deadline;
    this.priorityHeader = compiled.priorityHeader;
    this.priorityFn = compiled.priorityFn;
    this.onError = compiled.onError;
    this.traceRequest = compiled.traceRequest;
    installProvider();
  }

  /**
   * The budget the caller gave: `undefined` when unbounded, a header name when a malformed
   * deadline header is to be refused.
   */
  private budgetOf(req: IncomingMessage): number | undefined | { invalid: string } {
    const d = this.deadline;
    if (d === false) return undefined;
    const { budget: asked, invalid } = readDeadlineHeaders(req.headers, d);
    if (invalid !== undefined && d.invalid === 'reject') return { invalid };
    // A caller that sent a deadline we cannot read gets the most we grant, never "none".
    const budget =
      asked !== undefined
        ? Math.min(asked, d.maxBudget)
        : invalid !== undefined
          ? d.maxBudget
          : d.defaultBudget;
    return budget === Infinity ? undefined : budget;
  }

  private priorityOf(req: IncomingMessage): Priority {
    const fromFn = this.priorityFn?.(req);
    if (fromFn !== undefined && PRIORITY_SET.has(fromFn)) return fromFn;
    if (this.priorityHeader !== undefined) {
      const v = headerOf(req, this.priorityHeader)?.trim().toLowerCase();
      if (v !== undefined && PRIORITY_SET.has(v)) return v as Priority;
    }
    return 'normal';
  }

  /**
   * Stage one, before the body is read: refuses an expired request (504) or one the load
   * shedder sheds (503 + Retry-After); otherwise starts the request's context — ambient for
   * everything `proceed` starts — and holds the shedder's slot until the response ends.
   */
  admit(
    req: IncomingMessage,
    res: ServerResponse,
    proceed: (ctx: CallContext) => void,
    respond: Responder = rawResponder(res),
  ): void {
    const trace = this.traceRequest;
    if (trace === undefined) this.admitNow(req, res, proceed, respond);
    else trace(req, res, () => this.admitNow(req, res, proceed, respond));
  }

  private admitNow(
    req: IncomingMessage,
    res: ServerResponse,
    proceed: (ctx: CallContext) => void,
    respond: Responder,
  ): void {
    const budget = this.budgetOf(req);
    if (typeof budget === 'object') {
      problem(respond, 400, `The ${budget.invalid} header is not a valid deadline`);
      return;
    }
    if (budget !== undefined && this.deadline !== false && budget < this.deadline.minBudget) {
      problem(respond, 504, 'Deadline exceeded before the request was handled');
      return;
    }
    const clock = this.clock;
    const idem = this.idempotency;
    let key: string | undefined;
    if (idem !== undefined) {
      const raw = headerOf(req, idem.header);
      key = raw === undefined ? undefined : parseKey(raw, idem.maxKeyLength);
    }
    const ctx = CallContext.root(
      clock,
      budget === undefined ? Infinity : clock.now() + budget,
      this.priorityOf(req),
      key,
    );
    ctx.setLimit(budget ?? Infinity);
    const admission = new Admission(this, ctx, res, proceed, respond);
    this.admissions.set(ctx, admission);
    admission.start();
  }

  /** The handler of `ctx`'s request starts: from now on it answers the deadline itself. */
  private handing(ctx: CallContext, run: () => unknown): () => unknown {
    return () => {
      const admission = this.admissions.get(ctx);
      if (admission !== undefined) {
        this.admissions.delete(ctx);
        admission.handled = true;
      }
      return run();
    };
  }

  /**
   * Stage two: the `Idempotency-Key` protocol around the handler (or straight to it).
   * Runs inside the request's context.
   */
  serve(
    ctx: CallContext,
    req: IncomingMessage & { body?: unknown; originalUrl?: string },
    res: ServerResponse,
    options: ServeOptions,
  ): void {
    const idem = this.idempotency;
    const respond = options.respond ?? rawResponder(res);
    const onError = options.onError ?? ((error: unknown) => this.onError(error, req, res));
    const method = (req.method ?? 'GET').toUpperCase();
    const run = this.handing(ctx, options.run);
    if (idem === undefined || !idem.methods.has(method)) {
      runHandler(run, onError);
      return;
    }
    const raw = headerOf(req, idem.header);
    if (raw === undefined) {
      if (idem.required) problem(respond, 400, `This request needs an ${idem.header} header`);
      else runHandler(run, onError);
      return;
    }
    const key = parseKey(raw, idem.maxKeyLength);
    if (key === undefined) {
      problem(
        respond,
        400,
        `The ${idem.header} header is not a valid key (1–${idem.maxKeyLength} visible ASCII characters)`,
      );
      return;
    }
    new IdempotentExchange({
      guard: this,
      idem,
      ctx,
      req,
      res,
      key,
      method,
      path: req.originalUrl ?? req.url ?? '/',
      run,
      respond,
      onError,
    }).start(options.body);
  }
}

const REQUEST_ENDED = 'the request has ended';
const CLIENT_CLOSED = 'the client closed the request';

/** One request from admission to the end of its response. */
class Admission {
  private started = false;
  /** The handler runs: past this point the deadline is its to answer. */
  handled = false;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly guard: InboundGuard,
    private readonly ctx: CallContext,
    private readonly res: ServerResponse,
    private readonly proceed: (ctx: CallContext) => void,
    private readonly respond: Responder,
  ) {}

  start(): void {
    const { ctx, res } = this;
    const onClose = (): void => {
      res.off('close', onClose);
      this.resolveDone();
      // The request is over: whatever it started and still runs is cancelled, as the
      // caller is gone (or already answered). Not a failure of any dependency.
      ctx.callerAborted = true;
      ctx.abort(
        withoutStack(
          () =>
            new DOMException(res.writableFinished ? REQUEST_ENDED : CLIENT_CLOSED, 'AbortError'),
        ),
      );
    };
    res.on('close', onClose);
    runInRequestContext(ctx, () => {
      ctx.guard(this.inside, terminalStep).then(undefined, this.refused);
    });
  }

  /** Runs in the request's context (or, with a shedder, in its admitted slot). */
  private readonly inside = (): Promise<void> => {
    const shedder = this.guard.loadShedder;
    if (shedder === undefined) return this.enter();
    return shedder.execute(this.enter, { parent: this.ctx });
  };

  private readonly enter = (): Promise<void> => {
    this.started = true;
    this.proceed(this.ctx);
    // The slot (and the context) lasts until the response is over, not until the handler returns.
    return this.done;
  };

  /**
   * Refused before the handler ran (shed, or the deadline passed while queued); after, the
   * handler answers — except while the body is still arriving, when the deadline is ours to
   * answer.
   */
  private readonly refused = (error: unknown): void => {
    if (this.started) {
      if (!this.handled && error instanceof TimeoutError) this.bodyTimedOut();
      return;
    }
    if (error instanceof LoadShedError) {
      problem(
        this.respond,
        503,
        'Overloaded: try again later',
        retryAfterHeader(error.retryAfterMs),
      );
    } else if (error instanceof TimeoutError) {
      problem(this.respond, 504, 'Deadline exceeded before the request was handled');
    } else if (!this.ctx.isAborted) {
      this.guard.onError(error, this.res.req, this.res);
    }
  };

  /**
   * The deadline passed while the request's body was still being read (a slow or stalled
   * client): answer 504 and close the connection, whose unread body makes it unusable. The
   * response's end frees the shedder's slot, instead of Node's request timeout minutes later.
   */
  private bodyTimedOut(): void {
    const { res } = this;
    if (res.headersSent || res.destroyed) return;
    // Not "while reading the body": a keyed request may be waiting for its key's claim too.
    problem(this.respond, 504, 'Deadline exceeded before the request was handled', {
      connection: 'close',
    });
    // The unread rest of the body would otherwise keep the socket (and the slot) open.
    res.once('finish', () => res.req.destroy());
  }
}
