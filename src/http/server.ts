import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import {
  ambientSlot,
  setAmbientContextProvider,
  type AmbientContextProvider,
} from '../core/ambient.js';
import { systemClock, type Clock } from '../core/clock.js';
import { CallContext, PRIORITIES, type Context, type Priority } from '../core/context.js';
import { BulkheadRejectedError } from '../policies/bulkhead-error.js';
import { CircuitOpenError } from '../policies/circuit-breaker/errors.js';
import { ConfigError, TimeoutError, withoutStack } from '../core/errors.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
} from '../policies/idempotency/errors.js';
import { LoadShedError } from '../policies/load-shedder/errors.js';
import { terminalStep } from '../core/pipeline.js';
import { Validator } from '../core/validate.js';
import { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import {
  LoadShedderPolicy,
  type LoadShedderOptions,
} from '../policies/load-shedder/load-shedder.js';
import { MemoryStore } from '../stores/memory.js';
import type { IdempotencyStore } from '../stores/store.js';
import { DEADLINE_HEADER, readDeadline } from './deadline-header.js';
import { formatRetryAfter } from './retry-after.js';

// ---------------------------------------------------------------------------------------
// The request context, made ambient through AsyncLocalStorage.

// One AsyncLocalStorage for every copy of bulwark in the process (ESM and CJS), found
// under a registry symbol: a request started by one copy is seen by the other's execute.
const ALS_KEY = Symbol.for('bulwark.http.requestContext');
const PROVIDER_MARK = Symbol.for('bulwark.http.provider');
const registry = globalThis as unknown as Record<symbol, unknown>;
const als = (registry[ALS_KEY] ??= new AsyncLocalStorage<Context>()) as AsyncLocalStorage<Context>;

function installProvider(): void {
  const current = ambientSlot.provider as
    (AmbientContextProvider & { [PROVIDER_MARK]?: true }) | undefined;
  if (current?.[PROVIDER_MARK]) return;
  // A provider someone else installed still answers outside our requests.
  const provider: AmbientContextProvider & { [PROVIDER_MARK]?: true } =
    current === undefined ? () => als.getStore() : () => als.getStore() ?? current();
  provider[PROVIDER_MARK] = true;
  setAmbientContextProvider(provider);
}

/**
 * The context of the request being served (inside a bulwark handler or middleware), if any.
 *
 * @example
 * ```ts
 * import { requestContext } from 'bulwark/http';
 *
 * // Deep in a request's call tree, without passing ctx down:
 * const ctx = requestContext();
 * console.log(ctx ? `${ctx.remaining()} ms left for this request` : 'not inside a request');
 * ```
 */
export function requestContext(): Context | undefined {
  return als.getStore();
}

/** @internal Runs `fn` with `ctx` as the request context (adapters whose hooks lose it). */
export function runInRequestContext<T>(ctx: Context, fn: () => T): T {
  return als.run(ctx, fn);
}

/**
 * Runs `fn` outside the current request's context: calls made there do not inherit the
 * request's deadline and are not cancelled when the request ends (background work).
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { bulwarkHandler, outsideRequest } from 'bulwark/http';
 *
 * const audit = dependency('audit-log', { budget: '30s', retry: { maxAttempts: 5 } });
 * const handler = bulwarkHandler(async (_req, res) => {
 *   res.end('ok');
 *   // Must outlive the response: not cancelled when it ends, not bound by its deadline.
 *   outsideRequest(() =>
 *     audit.execute(() => fetch('https://audit.internal/events', { method: 'POST' })),
 *   ).catch((error: unknown) => console.error('audit event lost', error));
 * });
 * ```
 */
export function outsideRequest<T>(fn: () => T): T {
  return als.exit(fn);
}

// ---------------------------------------------------------------------------------------
// Options.

/**
 * The `deadline` option of the inbound wrappers: which headers set a request's budget, and its
 * bounds.
 */
export interface DeadlineOptions {
  /** Our header's name (default `x-bulwark-deadline-ms`); `false` to ignore it. */
  header?: string | false;
  /** Read `grpc-timeout` (default true). */
  grpcTimeout?: boolean;
  /** Read `x-envoy-expected-rq-timeout-ms` (default true). */
  envoyTimeout?: boolean;
  /** Cap on the budget a caller may ask for (default Infinity). */
  maxBudget?: number | string;
  /** Budget of a request that carries no deadline header (default Infinity: none). */
  defaultBudget?: number | string;
  /** A request with less than this left is answered 504 before the handler runs (default 1 ms). */
  minBudget?: number | string;
}

/** The `idempotency` option of the inbound wrappers: the `Idempotency-Key` header protocol. */
export interface IdempotencyHttpOptions {
  /** Where claims and stored responses live (default: a MemoryStore of this handler's own). */
  store?: IdempotencyStore;
  /** Answer 400 to a request of `methods` without a key (default false: such requests just run). */
  required?: boolean;
  /** Methods the header applies to (default POST and PATCH). */
  methods?: readonly string[];
  /** Header name (default `idempotency-key`). */
  header?: string;
  /** How long a response is kept for replay (default 24 h). */
  ttl?: number | string;
  /** How long a running request holds its key before a duplicate may take over (default 60 s). */
  lockTtl?: number | string;
  /** A duplicate arriving while the first runs: 409 at once (default), or wait and replay. */
  onInProgress?: 'reject' | 'wait';
  /** The store fails: answer 503 (default 'fail'), or serve the request without idempotency. */
  onStoreError?: 'fail' | 'bypass';
  /** Longest key accepted (default 255). */
  maxKeyLength?: number;
  /** Response headers stored and replayed (default content-type, content-language, content-location, location, etag, last-modified, link). */
  replayHeaders?: readonly string[];
  /** Largest request body read for the fingerprint (default 1 MiB; larger → 413). */
  maxBodyBytes?: number;
  /** Largest response body stored (default 1 MiB); a larger response is not stored and its key is freed. */
  maxStoredBodyBytes?: number;
  /** Which responses are stored (default: every status below 500 except 408, 425 and 429). */
  storeStatus?: (status: number) => boolean;
  /** The client's namespace for keys (e.g. the authenticated account), so that two clients' keys never meet. */
  scope?: (req: IncomingMessage) => string | undefined;
}

/** Options of `bulwarkHandler()`, `bulwarkMiddleware()` and `bulwarkFastify()`; all optional. */
export interface BulwarkServerOptions {
  /** How the incoming deadline is read; `false` to ignore deadline headers. */
  deadline?: DeadlineOptions | false;
  /** A load shedder (or its options) guarding the handler: 503 with Retry-After, before the body is read. */
  loadShedder?: LoadShedderPolicy | LoadShedderOptions;
  /** Header naming the request's priority (`critical`, `high`, `normal`, `low`). Trust it only from trusted callers. */
  priorityHeader?: string;
  /** The request's priority, computed from the request (wins over `priorityHeader`). */
  priority?: (req: IncomingMessage) => Priority | undefined;
  /** The `Idempotency-Key` header (IETF httpapi draft): off unless given. */
  idempotency?: IdempotencyHttpOptions;
  /**
   * A handler failed (threw or rejected). Default: 504 for a TimeoutError, 503 (with
   * Retry-After when known) for an open circuit, a full bulkhead or shed load, otherwise
   * 500 and the error printed with console.error; a response already started is destroyed.
   */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
  /** The clock request budgets run on (default: the system clock). */
  clock?: Clock;
}

/** A request handler: `(req, res, ctx)`, where `ctx` is the request's context. */
export type BulwarkRequestHandler = (
  req: IncomingMessage & { body?: unknown },
  res: ServerResponse,
  ctx: Context,
) => unknown;

/** A `node:http` request listener, with the policies it applies exposed for metrics. */
export interface BulwarkListener {
  (req: IncomingMessage, res: ServerResponse): void;
  /** The load shedder guarding the handler, when configured (for its events and `limit`). */
  readonly loadShedder: LoadShedderPolicy | undefined;
  /**
   * The idempotency policy behind the `Idempotency-Key` header, when configured (for its events).
   */
  readonly idempotency: IdempotencyPolicy | undefined;
}

const SERVER_KEYS = [
  'deadline',
  'loadShedder',
  'priorityHeader',
  'priority',
  'idempotency',
  'onError',
  'clock',
];
const DEADLINE_KEYS = [
  'header',
  'grpcTimeout',
  'envoyTimeout',
  'maxBudget',
  'defaultBudget',
  'minBudget',
];
const IDEMPOTENCY_KEYS = [
  'store',
  'required',
  'methods',
  'header',
  'ttl',
  'lockTtl',
  'onInProgress',
  'onStoreError',
  'maxKeyLength',
  'replayHeaders',
  'maxBodyBytes',
  'maxStoredBodyBytes',
  'storeStatus',
  'scope',
];
const DEFAULT_REPLAY_HEADERS = [
  'content-type',
  'content-language',
  'content-location',
  'location',
  'etag',
  'last-modified',
  'link',
];
const PRIORITY_SET: ReadonlySet<string> = new Set(PRIORITIES);
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MIB = 1024 * 1024;

function defaultStoreStatus(status: number): boolean {
  return status < 500 && status !== 408 && status !== 425 && status !== 429;
}

// ---------------------------------------------------------------------------------------
// Responses the wrapper writes itself.

/** Writes a response: the raw `ServerResponse` by default; adapters may route it through their framework. */
export type Responder = (
  status: number,
  headers: Record<string, string>,
  body: Buffer | string,
) => void;

export function rawResponder(res: ServerResponse): Responder {
  return (status, headers, body) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, headers);
    res.end(body);
  };
}

function problem(
  respond: Responder,
  status: number,
  title: string,
  extra: Record<string, string> = {},
): void {
  respond(
    status,
    { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...extra },
    JSON.stringify({ type: 'about:blank', title, status }),
  );
}

function retryAfterHeader(ms: number | undefined): Record<string, string> {
  return ms === undefined || !Number.isFinite(ms) ? {} : { 'retry-after': formatRetryAfter(ms) };
}

/** What the default onError answers for a failure of the handler. */
function statusFor(error: unknown): {
  status: number;
  title: string;
  headers: Record<string, string>;
} {
  if (error instanceof TimeoutError)
    return { status: 504, title: 'Deadline exceeded', headers: {} };
  if (error instanceof LoadShedError) {
    return { status: 503, title: 'Overloaded', headers: retryAfterHeader(error.retryAfterMs) };
  }
  if (error instanceof CircuitOpenError) {
    return {
      status: 503,
      title: 'A dependency is unavailable',
      headers: retryAfterHeader(error.retryAfterMs),
    };
  }
  if (error instanceof BulkheadRejectedError)
    return { status: 503, title: 'Overloaded', headers: {} };
  return { status: 500, title: 'Internal Server Error', headers: {} };
}

function defaultOnError(error: unknown, _req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent) {
    // Part of a response is out: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  const { status, title, headers } = statusFor(error);
  if (status === 500) console.error(error);
  problem(rawResponder(res), status, title, headers);
}

// ---------------------------------------------------------------------------------------
// Reading the request body and recording the response, for idempotent replay.

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

/** A response as stored for replay: JSON-safe. */
export interface StoredResponse {
  /** The HTTP status. */
  status: number;
  /** The `replayHeaders` the response had. */
  headers: Record<string, string | string[]>;
  /** base64 */
  body: string;
}

/** Thrown into the idempotency policy when a response must not be stored: the key is freed. */
class NotStored extends Error {}

/** Tees what the handler writes to `res`, so the response can be stored once it finished. */
class ResponseRecorder {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflow = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly limit: number,
  ) {
    const add = (chunk: unknown, encoding: unknown): void => this.add(chunk, encoding);
    const { writeHead, write, end } = res;
    // writeHead(status, headers) bypasses getHeaders(); passing the headers through
    // setHeader first makes every header visible to the recording.
    res.writeHead = function (this: ServerResponse, status: number, a?: unknown, b?: unknown) {
      const reason = typeof a === 'string' ? a : undefined;
      const headers = typeof a === 'string' ? b : a;
      if (headers !== undefined && headers !== null && !this.headersSent)
        applyHeaders(this, headers);
      const original = writeHead as (this: ServerResponse, ...args: unknown[]) => ServerResponse;
      return reason === undefined
        ? original.call(this, status)
        : original.call(this, status, reason);
    } as ServerResponse['writeHead'];
    res.write = function (this: ServerResponse, chunk: unknown, encoding?: unknown, cb?: unknown) {
      add(chunk, encoding);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, encoding, cb);
    } as ServerResponse['write'];
    res.end = function (this: ServerResponse, chunk?: unknown, encoding?: unknown, cb?: unknown) {
      if (typeof chunk !== 'function') add(chunk, encoding);
      return (end as (...args: unknown[]) => ServerResponse).call(this, chunk, encoding, cb);
    } as ServerResponse['end'];
  }

  private add(chunk: unknown, encoding: unknown): void {
    if (chunk === undefined || chunk === null || this.overflow) return;
    let buf: Buffer;
    if (typeof chunk === 'string') {
      buf = Buffer.from(
        chunk,
        typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8',
      );
    } else if (chunk instanceof Uint8Array)
      buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    else return;
    this.size += buf.length;
    if (this.size > this.limit) {
      this.overflow = true;
      this.chunks.length = 0;
      return;
    }
    // Copied: the caller may reuse its buffer after write() returns.
    this.chunks.push(Buffer.from(buf));
  }

  result(replayHeaders: readonly string[]): StoredResponse {
    const headers: Record<string, string | string[]> = {};
    for (const name of replayHeaders) {
      const v = this.res.getHeader(name);
      if (v === undefined) continue;
      headers[name] = Array.isArray(v) ? v.map(String) : String(v);
    }
    return {
      status: this.res.statusCode,
      headers,
      body: Buffer.concat(this.chunks, this.size).toString('base64'),
    };
  }
}

function applyHeaders(res: ServerResponse, headers: unknown): void {
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [k, v] of headers as [string, string][]) res.appendHeader(k, v);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2)
        res.appendHeader(String(headers[i]), headers[i + 1] as string);
    }
    return;
  }
  for (const [k, v] of Object.entries(headers as OutgoingHttpHeaders)) {
    if (v !== undefined) res.setHeader(k, v);
  }
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
function parseKey(raw: string, maxLength: number): string | undefined {
  let key = raw.trim();
  if (key.length >= 2 && key.startsWith('"') && key.endsWith('"')) key = key.slice(1, -1);
  if (key.length === 0 || key.length > maxLength) return undefined;
  // Visible ASCII only, no quote or backslash: keys end up in store keys and logs.
  return /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(key) ? key : undefined;
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

// ---------------------------------------------------------------------------------------
// The core every adapter shares.

interface CompiledIdempotency {
  policy: IdempotencyPolicy;
  required: boolean;
  methods: ReadonlySet<string>;
  header: string;
  maxKeyLength: number;
  replayHeaders: readonly string[];
  maxBodyBytes: number;
  maxStoredBodyBytes: number;
  storeStatus: (status: number) => boolean;
  scope: ((req: IncomingMessage) => string | undefined) | undefined;
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

/** Scopes of requests being served, read by the idempotency policy's scope option. */
const scopes = new WeakMap<Context, string>();

/**
 * @internal The request guard behind `bulwarkHandler` and the Express and Fastify
 * adapters: deadline, load shedding and idempotency, in two stages so that a framework
 * can read the body in between.
 */
export class InboundGuard {
  readonly clock: Clock;
  readonly loadShedder: LoadShedderPolicy | undefined;
  readonly idempotency: CompiledIdempotency | undefined;
  private readonly deadline:
    false | (DeadlineOptions & { maxBudget: number; defaultBudget: number; minBudget: number });
  private readonly priorityHeader: string | undefined;
  private readonly priorityFn: ((req: IncomingMessage) => Priority | undefined) | undefined;
  readonly onError: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;

  constructor(options: BulwarkServerOptions = {}, path = 'bulwarkHandler') {
    const v = new Validator(path);
    const o = v.object(options, SERVER_KEYS);
    const clock = (o.clock as Clock | undefined) ?? systemClock;
    if (typeof clock !== 'object' || typeof clock.now !== 'function')
      v.problem('clock', 'a Clock', o.clock);

    if (o.deadline === false) this.deadline = false;
    else {
      const dv = new Validator(v.path('deadline'));
      const d = dv.object(o.deadline, DEADLINE_KEYS);
      const header = d.header;
      if (
        header !== undefined &&
        header !== false &&
        !(typeof header === 'string' && HEADER_NAME.test(header))
      ) {
        dv.problem('header', 'a header name or false', header);
      }
      this.deadline = {
        header:
          typeof header === 'string'
            ? header.toLowerCase()
            : header === false
              ? false
              : DEADLINE_HEADER,
        grpcTimeout: dv.bool('grpcTimeout', d.grpcTimeout, true),
        envoyTimeout: dv.bool('envoyTimeout', d.envoyTimeout, true),
        maxBudget: dv.duration('maxBudget', d.maxBudget, Infinity, { min: 1, allowInfinity: true }),
        defaultBudget: dv.duration('defaultBudget', d.defaultBudget, Infinity, {
          min: 1,
          allowInfinity: true,
        }),
        minBudget: dv.duration('minBudget', d.minBudget, 1),
      };
      v.problems.push(...dv.problems);
    }

    let shedder: LoadShedderPolicy | undefined;
    const ls = o.loadShedder as Partial<LoadShedderPolicy> | LoadShedderOptions | undefined;
    if (ls !== undefined) {
      if (
        ls !== null &&
        typeof ls === 'object' &&
        typeof (ls as Partial<LoadShedderPolicy>).run === 'function'
      ) {
        shedder = ls as LoadShedderPolicy;
      } else {
        try {
          shedder = new LoadShedderPolicy(
            { clock: o.clock as Clock | undefined, ...(ls as LoadShedderOptions) },
            v.path('loadShedder'),
          );
        } catch (error) {
          if (!(error instanceof ConfigError)) throw error;
          v.problems.push(...error.problems);
        }
      }
    }
    this.loadShedder = shedder;

    const ph = o.priorityHeader;
    if (ph !== undefined && !(typeof ph === 'string' && HEADER_NAME.test(ph)))
      v.problem('priorityHeader', 'a header name', ph);
    this.priorityHeader = typeof ph === 'string' ? ph.toLowerCase() : undefined;
    this.priorityFn = v.func<((req: IncomingMessage) => Priority | undefined) | undefined>(
      'priority',
      o.priority,
      undefined,
    );
    this.onError = v.func('onError', o.onError, defaultOnError);
    this.idempotency =
      o.idempotency === undefined ? undefined : this.compileIdempotency(o.idempotency, v, clock);
    v.done();
    this.clock = clock;
    installProvider();
  }

  private compileIdempotency(
    options: unknown,
    parent: Validator,
    clock: Clock,
  ): CompiledIdempotency | undefined {
    const v = new Validator(parent.path('idempotency'));
    const o = v.object(options, IDEMPOTENCY_KEYS);
    const methods = o.methods ?? ['POST', 'PATCH'];
    if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) {
      v.problem('methods', 'an array of HTTP methods', methods);
    }
    const header = o.header ?? 'idempotency-key';
    if (typeof header !== 'string' || !HEADER_NAME.test(header))
      v.problem('header', 'a header name', header);
    const replayHeaders = o.replayHeaders ?? DEFAULT_REPLAY_HEADERS;
    if (
      !Array.isArray(replayHeaders) ||
      !replayHeaders.every((h) => typeof h === 'string' && HEADER_NAME.test(h))
    ) {
      v.problem('replayHeaders', 'an array of header names', replayHeaders);
    }
    const required = v.bool('required', o.required, false);
    const maxKeyLength = v.int('maxKeyLength', o.maxKeyLength, 255, 1);
    const maxBodyBytes = v.int('maxBodyBytes', o.maxBodyBytes, MIB, 0);
    const maxStoredBodyBytes = v.int('maxStoredBodyBytes', o.maxStoredBodyBytes, MIB, 0);
    const storeStatus = v.func('storeStatus', o.storeStatus, defaultStoreStatus);
    const scope = v.func<((req: IncomingMessage) => string | undefined) | undefined>(
      'scope',
      o.scope,
      undefined,
    );
    let policy: IdempotencyPolicy | undefined;
    try {
      policy = new IdempotencyPolicy(
        {
          store: (o.store as IdempotencyStore | undefined) ?? new MemoryStore({ clock }),
          ttl: o.ttl as number | string | undefined,
          lockTtl: o.lockTtl as number | string | undefined,
          onInProgress: o.onInProgress as 'reject' | 'wait' | undefined,
          onStoreError: o.onStoreError as 'fail' | 'bypass' | undefined,
          // A failed or unstored response frees the key: the client's retry runs the handler again.
          storeFailures: false,
          scope: scope === undefined ? undefined : () => scopes.get(als.getStore() as Context),
          clock,
        },
        v.prefix,
      );
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      v.problems.push(...error.problems);
    }
    parent.problems.push(...v.problems);
    if (policy === undefined || v.problems.length > 0) return undefined;
    return {
      policy,
      required,
      methods: new Set((methods as string[]).map((m) => m.toUpperCase())),
      header: (header as string).toLowerCase(),
      maxKeyLength,
      replayHeaders: (replayHeaders as string[]).map((h) => h.toLowerCase()),
      maxBodyBytes,
      maxStoredBodyBytes,
      storeStatus,
      scope,
    };
  }

  /** The budget the caller gave: `undefined` when unbounded. */
  private budgetOf(req: IncomingMessage): number | undefined {
    const d = this.deadline;
    if (d === false) return undefined;
    const asked = readDeadline(req.headers, d);
    const budget = asked === undefined ? d.defaultBudget : Math.min(asked, d.maxBudget);
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
    const budget = this.budgetOf(req);
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
    new Admission(this, ctx, res, proceed, respond).start();
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
    if (idem === undefined || !idem.methods.has(method)) {
      runHandler(options.run, onError);
      return;
    }
    const raw = headerOf(req, idem.header);
    if (raw === undefined) {
      if (idem.required) problem(respond, 400, `This request needs an ${idem.header} header`);
      else runHandler(options.run, onError);
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
    const body = options.body;
    const path = req.originalUrl ?? req.url ?? '/';
    if (body !== undefined) {
      new IdempotentExchange(
        this,
        idem,
        ctx,
        req,
        res,
        key,
        fingerprintOf(method, path, body.value),
        options.run,
        respond,
        onError,
      ).start();
      return;
    }
    readBody(req, idem.maxBodyBytes).then(
      (bytes) => {
        if (req.body === undefined) req.body = bytes;
        als.run(ctx, () =>
          new IdempotentExchange(
            this,
            idem,
            ctx,
            req,
            res,
            key,
            fingerprintOf(method, path, bytes),
            options.run,
            respond,
            onError,
          ).start(),
        );
      },
      (error: unknown) => {
        if (error instanceof BodyTooLarge) {
          problem(respond, 413, 'The request body is too large for an idempotent request', {
            connection: 'close',
          });
        } else if (!res.destroyed) {
          problem(respond, 400, 'The request body could not be read');
        }
      },
    );
  }
}

function runHandler(run: () => unknown, onError: (error: unknown) => void): void {
  try {
    const result = run();
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as PromiseLike<unknown>).then === 'function'
    ) {
      (result as PromiseLike<unknown>).then(undefined, onError);
    }
  } catch (error) {
    onError(error);
  }
}

const REQUEST_ENDED = 'the request has ended';
const CLIENT_CLOSED = 'the client closed the request';

/** One request from admission to the end of its response. */
class Admission {
  private started = false;
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
    als.run(ctx, () => {
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

  /** Refused before the handler ran (shed, or the deadline passed while queued); after, the handler answers. */
  private readonly refused = (error: unknown): void => {
    if (this.started) return;
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
}

/** A request carrying an idempotency key: run it once, store its response, replay it to duplicates. */
class IdempotentExchange {
  private executed = false;

  constructor(
    private readonly guard: InboundGuard,
    private readonly idem: CompiledIdempotency,
    private readonly ctx: CallContext,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly key: string,
    private readonly fingerprint: string,
    private readonly run: () => unknown,
    private readonly respond: Responder,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    const { idem, ctx } = this;
    if (idem.scope !== undefined) {
      const scope = idem.scope(this.req);
      if (scope !== undefined) scopes.set(ctx, scope);
    }
    idem.policy
      .execute(this.execute, {
        parent: ctx,
        idempotencyKey: this.key,
        fingerprint: this.fingerprint,
      })
      .then(this.replay, this.failed);
  }

  /** The first request with this key: run the handler and record what it answers. */
  private readonly execute = (): Promise<StoredResponse> => {
    this.executed = true;
    const { res, idem } = this;
    const recorder = new ResponseRecorder(res, idem.maxStoredBodyBytes);
    return new Promise<StoredResponse>((resolve, reject) => {
      const onFinish = (): void => {
        res.off('close', onClose);
        if (recorder.overflow || !idem.storeStatus(res.statusCode))
          reject(new NotStored('response not stored'));
        else resolve(recorder.result(idem.replayHeaders));
      };
      const onClose = (): void => {
        res.off('finish', onFinish);
        reject(new NotStored('the response did not complete'));
      };
      res.once('finish', onFinish);
      res.once('close', onClose);
      runHandler(this.run, this.onError);
    });
  };

  private readonly replay = (stored: StoredResponse): void => {
    if (this.executed) return;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(stored.headers))
      headers[k] = Array.isArray(v) ? v.join(', ') : v;
    headers['idempotent-replayed'] = 'true';
    this.respond(stored.status, headers, Buffer.from(stored.body, 'base64'));
  };

  private readonly failed = (error: unknown): void => {
    if (this.executed) return; // the handler answered (or failed and onError answered)
    if (error instanceof IdempotencyInProgressError) {
      problem(this.respond, 409, 'A request with this idempotency key is still being processed', {
        'retry-after': '1',
      });
    } else if (error instanceof IdempotencyKeyReuseError) {
      problem(this.respond, 422, 'This idempotency key was used with a different request');
    } else if (error instanceof IdempotencyStoreError) {
      problem(this.respond, 503, 'Idempotency store unavailable', { 'retry-after': '1' });
    } else if (error instanceof TimeoutError) {
      problem(
        this.respond,
        504,
        'Deadline exceeded while a request with this key was being processed',
      );
    } else if (!this.ctx.isAborted) {
      this.guard.onError(error, this.req, this.res);
    }
  };
}

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
