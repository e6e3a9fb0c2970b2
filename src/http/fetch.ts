import type { Context } from '../core/context.js';
import type { MetricsProvider } from '../metrics/recorder.js';
import { ConfigError } from '../core/errors.js';
import type { ExecuteOptions, Policy } from '../core/pipeline.js';
import { Validator } from '../core/validate.js';
import { RETRYABLE_STATUSES } from '../policies/retry/classification.js';
import { DEADLINE_HEADER, DEFAULT_DEADLINE_MARGIN, encodeDeadline } from './deadline-header.js';
import { HttpError } from './errors.js';
import { HttpStatusFailure, NotRepeatableFailure } from './fetch-failures.js';
import { retryAfterFromHeaders } from './retry-after.js';

/** How every request of one client is sent; validated once by `httpClient()`. */
export interface HttpClientOptions {
  /**
   * Statuses that make an attempt fail so that the dependency's retry, breaker and hedge
   * see it (default 408, 425, 429, 500, 502, 503, 504). The failure is flagged
   * `retryable`, so the retry policy's default classification retries every status listed
   * here, the defaults and others (e.g. 409) alike.
   */
  retryStatuses?: Iterable<number>;
  /**
   * Throw `HttpError` instead of returning the final response when its status is an
   * error: `true` for every status ≥ 400, or a predicate (default false: a response is
   * returned whatever its status, once retries are exhausted).
   */
  throwOnStatus?: boolean | ((status: number) => boolean);
  /** Header carrying the remaining budget, in ms (default `x-bulwark-deadline-ms`); `false` to send none. */
  deadlineHeader?: string | false;
  /** Subtracted from the remaining budget before it is sent (ms or '10ms'; default 10 ms). */
  deadlineMargin?: number | string;
  /**
   * `'caller'` (default): an `Idempotency-Key` is sent only when the caller gives one
   * (header or `idempotencyKey` option). `'auto'`: a key is generated once per logical
   * request for non-idempotent methods — for servers known to honour the header.
   */
  idempotencyKeys?: 'caller' | 'auto';
  /** Name of the idempotency key header (default `Idempotency-Key`). */
  idempotencyKeyHeader?: string;
  /** The fetch to call (default: the global fetch, looked up at call time). */
  fetch?: typeof globalThis.fetch;
  /**
   * The metrics backend of the dependency, when it traces (`openTelemetry()` from
   * `bulwark/otel`): each attempt then carries the trace context in its headers, unless a
   * fetch instrumentation already adds it.
   */
  metrics?: Pick<MetricsProvider, 'injectTraceContext'>;
}

/** Per-request options: the dependency's execute options, plus what HTTP adds. */
export interface FetchCallOptions extends ExecuteOptions {
  /**
   * Whether the request may be sent more than once. Default: true for RFC 9110
   * idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and for any request that
   * carries an idempotency key; false otherwise, so a plain POST is never sent twice.
   */
  idempotent?: boolean;
}

/** Options of `resilientFetch()`: the client's options and the call's, in one object. */
export type ResilientFetchOptions = HttpClientOptions & FetchCallOptions;

/** A dependency (or any policy) whose pipeline the requests run through. */
export type FetchDependency = Pick<Policy, 'execute'> & { readonly name?: string };

/** An HTTP client bound to one dependency, from `httpClient()`. */
export interface HttpClient {
  /** `fetch` through the dependency: same arguments as the global fetch, plus call options. */
  fetch(
    input: string | URL | Request,
    init?: RequestInit,
    options?: FetchCallOptions,
  ): Promise<Response>;
  /** The dependency (or policy) every request runs through. */
  readonly dependency: FetchDependency;
}

const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'OPTIONS',
  'TRACE',
  'PUT',
  'DELETE',
]);

/** Errors raised before a single byte of the request left: even a POST may be sent again. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
]);

interface CompiledClient {
  failing: ReadonlySet<number>;
  throwOn: ((status: number) => boolean) | undefined;
  deadlineHeader: string | false;
  margin: number;
  autoKeys: boolean;
  keyHeader: string;
  fetch: typeof globalThis.fetch | undefined;
  inject: ((headers: Headers) => void) | undefined;
}

const CLIENT_KEYS = [
  'retryStatuses',
  'throwOnStatus',
  'deadlineHeader',
  'deadlineMargin',
  'idempotencyKeys',
  'idempotencyKeyHeader',
  'fetch',
  'metrics',
] as const;
const CALL_KEYS = [
  'signal',
  'budget',
  'deadline',
  'priority',
  'idempotencyKey',
  'fingerprint',
  'parent',
  'idempotent',
];

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function compileClient(options: Record<string, unknown>, v: Validator): CompiledClient {
  let failing: ReadonlySet<number> = RETRYABLE_STATUSES;
  if (options.retryStatuses !== undefined) {
    const list = options.retryStatuses as Iterable<unknown> | null;
    if (
      list === null ||
      typeof list !== 'object' ||
      typeof (list as Iterable<unknown>)[Symbol.iterator] !== 'function'
    ) {
      v.problem('retryStatuses', 'an iterable of HTTP statuses (integers 100–599)', list);
    } else {
      const set = new Set<number>();
      for (const s of list) {
        if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) set.add(s);
        else v.problem('retryStatuses', 'HTTP statuses (integers 100–599)', s);
      }
      failing = set;
    }
  }
  let throwOn: ((status: number) => boolean) | undefined;
  const t = options.throwOnStatus;
  if (t === true) throwOn = (status) => status >= 400;
  else if (typeof t === 'function') throwOn = t as (status: number) => boolean;
  else if (t !== undefined && t !== false)
    v.problem('throwOnStatus', 'a boolean or a function of the status', t);

  let deadlineHeader: string | false = DEADLINE_HEADER;
  const h = options.deadlineHeader;
  if (h === false) deadlineHeader = false;
  else if (typeof h === 'string' && TOKEN.test(h)) deadlineHeader = h;
  else if (h !== undefined) v.problem('deadlineHeader', 'a header name or false', h);
  const margin = v.duration('deadlineMargin', options.deadlineMargin, DEFAULT_DEADLINE_MARGIN);
  const autoKeys =
    v.oneOf('idempotencyKeys', options.idempotencyKeys, ['caller', 'auto'] as const, 'caller') ===
    'auto';
  let keyHeader = 'Idempotency-Key';
  const k = options.idempotencyKeyHeader;
  if (typeof k === 'string' && TOKEN.test(k)) keyHeader = k;
  else if (k !== undefined) v.problem('idempotencyKeyHeader', 'a header name', k);
  const fetchFn = v.func<typeof globalThis.fetch | undefined>('fetch', options.fetch, undefined);
  const metrics = options.metrics as HttpClientOptions['metrics'] | null | undefined;
  if (metrics !== undefined && (metrics === null || typeof metrics !== 'object'))
    v.problem('metrics', 'a metrics backend (openTelemetry(...))', metrics);
  const inject = metrics?.injectTraceContext?.bind(metrics);
  return { failing, throwOn, deadlineHeader, margin, autoKeys, keyHeader, fetch: fetchFn, inject };
}

function validateCall(options: Record<string, unknown>, v: Validator): void {
  const idem = options.idempotent;
  if (idem !== undefined && typeof idem !== 'boolean') v.problem('idempotent', 'a boolean', idem);
  const key = options.idempotencyKey;
  if (key !== undefined && (typeof key !== 'string' || key === ''))
    v.problem('idempotencyKey', 'a non-empty string', key);
}

/**
 * An HTTP client bound to one dependency: `const api = httpClient(dependency('api', …), { … });
 * const res = await api.fetch(url, init)`. Options are validated here, once.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { httpClient } from 'bulwark/http';
 *
 * const payments = dependency('payments', { budget: '3s', retry: { maxAttempts: 3 } });
 * const api = httpClient(payments, { throwOnStatus: true });
 *
 * // A POST is retried only because it carries a key: the server answers a repeat from its store.
 * const res = await api.fetch('https://payments.internal/charges', {
 *   method: 'POST',
 *   headers: { 'content-type': 'application/json', 'idempotency-key': 'order-1001' },
 *   body: JSON.stringify({ cents: 4200 }),
 * });
 * ```
 */
export function httpClient(dep: FetchDependency, options: HttpClientOptions = {}): HttpClient {
  if (dep === null || typeof dep !== 'object' || typeof dep.execute !== 'function') {
    throw new ConfigError([
      { path: 'httpClient(dep)', expected: 'a dependency or policy', got: dep },
    ]);
  }
  const v = new Validator('httpClient');
  const client = compileClient(v.object(options, CLIENT_KEYS), v);
  v.done();
  return {
    dependency: dep,
    fetch(input, init, callOptions) {
      if (callOptions !== undefined) {
        const cv = new Validator('fetch options');
        validateCall(cv.object(callOptions, CALL_KEYS), cv);
        if (cv.problems.length > 0) return Promise.reject(new ConfigError(cv.problems));
      }
      return run(dep, client, input, init, callOptions ?? {});
    },
  };
}

/**
 * `fetch` through a dependency's pipeline: `resilientFetch(payments, url, { method: 'POST', … })`.
 * See `HttpClientOptions` and `FetchCallOptions` for what the last argument may hold; for
 * many requests with the same options, `httpClient()` validates them once.
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { resilientFetch } from 'bulwark/http';
 *
 * const github = dependency('github', { budget: '5s', retry: { maxAttempts: 3 } });
 * const res = await resilientFetch(github, 'https://api.github.com/repos/nodejs/node', undefined, {
 *   throwOnStatus: (status) => status >= 400 && status !== 404, // a 404 is an answer here
 *   priority: 'low',
 * });
 * const repo = res.status === 404 ? undefined : await res.json();
 * ```
 */
export function resilientFetch(
  dep: FetchDependency,
  input: string | URL | Request,
  init?: RequestInit,
  options: ResilientFetchOptions = {},
): Promise<Response> {
  if (dep === null || typeof dep !== 'object' || typeof dep.execute !== 'function') {
    return Promise.reject(
      new ConfigError([
        { path: 'resilientFetch(dep)', expected: 'a dependency or policy', got: dep },
      ]),
    );
  }
  const v = new Validator('resilientFetch');
  const o = v.object(options, [...CLIENT_KEYS, ...CALL_KEYS]);
  const client = compileClient(o, v);
  validateCall(o, v);
  if (v.problems.length > 0) return Promise.reject(new ConfigError(v.problems));
  return run(dep, client, input, init, options);
}

/** Request bodies that fetch can send again as they are; a stream or iterable is read once. */
function replayableBody(body: unknown): boolean {
  return (
    body === null ||
    body === undefined ||
    typeof body === 'string' ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body) ||
    body instanceof Blob ||
    body instanceof FormData ||
    body instanceof URLSearchParams
  );
}

function cancelBody(response: Response): void {
  try {
    // Cancelling (rather than reading to the end) is bounded: the socket is freed even if
    // the server never finishes the body.
    if (response.body !== null && !response.body.locked) response.body.cancel().catch(() => {});
  } catch {
    // A body already gone: nothing to free.
  }
}

function codeOf(error: unknown): string | undefined {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null;
  if (e === null || typeof e !== 'object') return undefined;
  if (typeof e.code === 'string') return e.code;
  return typeof e.cause?.code === 'string' ? e.cause.code : undefined;
}

/** One logical request: every attempt and hedge of it shares this. */
class Exchange {
  /** Responses received and not handed to the caller (cancelled when discarded). */
  private readonly received: Response[] = [];
  /** For a request that must not be repeated: its one and only send. */
  private firstSend: Promise<Response> | undefined;
  private done = false;

  constructor(
    private readonly client: CompiledClient,
    private readonly input: string | URL | Request,
    private readonly init: RequestInit | undefined,
    private readonly baseHeaders: Headers,
    private readonly repeatable: boolean,
    /** The key header's value: fixed for a caller's key, `undefined` with 'auto' (read from ctx). */
    private readonly keyValue: string | undefined,
    private readonly autoKey: boolean,
  ) {}

  /** The operation the pipeline runs, once per attempt or hedge. */
  readonly attempt = (ctx: Context): Promise<Response> => {
    if (this.repeatable) return this.send(ctx);
    // Never a second send: a retry or hedge of this request gets the first one's outcome.
    return (this.firstSend ??= this.send(ctx));
  };

  private async send(ctx: Context): Promise<Response> {
    this.discardFailed();
    const headers = new Headers(this.baseHeaders);
    const { client } = this;
    if (client.deadlineHeader !== false) {
      const value = encodeDeadline(ctx.remaining(), client.margin);
      if (value !== undefined) headers.set(client.deadlineHeader, value);
    }
    if (this.keyValue !== undefined) headers.set(client.keyHeader, this.keyValue);
    else if (this.autoKey) headers.set(client.keyHeader, `"${ctx.idempotencyKey}"`);
    client.inject?.(headers);
    const input =
      this.input instanceof Request && this.input.body !== null ? this.input.clone() : this.input;
    const fetchFn = client.fetch ?? globalThis.fetch;
    let response: Response;
    try {
      response = await fetchFn(input, { ...this.init, headers, signal: ctx.signal });
    } catch (error) {
      if (this.repeatable) throw error;
      if (NOT_SENT_CODES.has(codeOf(error) ?? '')) {
        // Nothing reached the server: the next attempt may send it after all.
        this.firstSend = undefined;
        throw error;
      }
      throw new NotRepeatableFailure(error);
    }
    if (this.done) {
      // A hedge that lost, answering after the call ended: nobody will read this body.
      cancelBody(response);
      throw new NotRepeatableFailure(new Error('response arrived after the call ended'));
    }
    this.received.push(response);
    if (!client.failing.has(response.status)) return response;
    const failure = new HttpStatusFailure(response, retryAfterFromHeaders(response.headers));
    if (!this.repeatable) throw new NotRepeatableFailure(failure);
    throw failure;
  }

  /** A new attempt starts: the failed responses before it will never be returned. */
  private discardFailed(): void {
    const kept: Response[] = [];
    for (const r of this.received) {
      if (this.client.failing.has(r.status)) cancelBody(r);
      else kept.push(r);
    }
    this.received.length = 0;
    this.received.push(...kept);
  }

  /** The call is over: every response but the one returned is cancelled, now and later. */
  finish(keep: Response | undefined): void {
    this.done = true;
    for (const r of this.received) if (r !== keep) cancelBody(r);
    this.received.length = 0;
  }
}

function describeRequest(
  dep: FetchDependency,
  method: string,
  input: string | URL | Request,
): string {
  const raw =
    input instanceof Request ? input.url : input instanceof URL ? input.href : String(input);
  let where = raw;
  try {
    const u = new URL(raw);
    where = `${u.origin}${u.pathname}`; // no query string: it may hold secrets
  } catch {
    // A relative or odd URL: fetch itself will say what is wrong with it.
  }
  return `${dep.name ?? 'http'}: ${method} ${where}`;
}

async function run(
  dep: FetchDependency,
  client: CompiledClient,
  input: string | URL | Request,
  init: RequestInit | undefined,
  options: ResilientFetchOptions,
): Promise<Response> {
  const request = input instanceof Request ? input : undefined;
  const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
  const baseHeaders = new Headers(init?.headers ?? request?.headers);

  // The caller's key (header or option) is sent unchanged; with 'auto', one is made per call.
  const headerKey = baseHeaders.get(client.keyHeader);
  const callerKey = headerKey ?? options.idempotencyKey;
  const idempotentMethod = IDEMPOTENT_METHODS.has(method);
  const autoKey = callerKey === undefined && client.autoKeys && !idempotentMethod;
  const keyed = callerKey !== undefined || autoKey;
  const body = init?.body !== undefined ? init.body : undefined;
  const repeatable = (options.idempotent ?? (idempotentMethod || keyed)) && replayableBody(body);

  const exchange = new Exchange(client, input, init, baseHeaders, repeatable, callerKey, autoKey);
  const execOptions: ExecuteOptions = {
    signal: options.signal ?? init?.signal ?? request?.signal,
    budget: options.budget,
    deadline: options.deadline,
    priority: options.priority,
    // Policies (a client-side idempotency policy, metrics) see the same key as the server.
    idempotencyKey: callerKey === undefined ? undefined : unquote(callerKey),
    fingerprint: options.fingerprint,
    parent: options.parent,
  };

  let response: Response;
  try {
    response = await dep.execute(exchange.attempt, execOptions);
  } catch (error) {
    const failure = error instanceof NotRepeatableFailure ? error.failure : error;
    if (!(failure instanceof HttpStatusFailure)) {
      exchange.finish(undefined);
      throw failure;
    }
    response = failure.response;
  }
  if (!(response instanceof Response)) {
    // A fallback value stood in for the response.
    exchange.finish(undefined);
    return response;
  }
  exchange.finish(response);
  if (client.throwOn !== undefined && client.throwOn(response.status)) {
    throw new HttpError(
      response,
      retryAfterFromHeaders(response.headers),
      describeRequest(dep, method, input),
    );
  }
  return response;
}

/** An sf-string (`"abc"`, as the IETF draft sends keys) to its content; anything else as is. */
export function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
    return v.slice(1, -1).replace(/\\(["\\])/g, '$1');
  return v;
}
