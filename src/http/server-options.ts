// Options of the inbound wrappers (bulwarkHandler, bulwarkMiddleware, bulwarkFastify),
// validated once and compiled into what the guard reads per request.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock } from '../core/clock.js';
import type { Context, Priority } from '../core/context.js';
import { ConfigError } from '../core/errors.js';
import { Validator } from '../core/validate.js';
import { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import {
  LoadShedderPolicy,
  type LoadShedderOptions,
} from '../policies/load-shedder/load-shedder.js';
import { MemoryStore } from '../stores/memory.js';
import type { IdempotencyStore } from '../stores/store.js';
import type { MetricsProvider } from '../metrics/recorder.js';
import { DEADLINE_HEADER, DEFAULT_MAX_BUDGET } from './deadline-header.js';
import { DEFAULT_SERVER_METRICS_NAME, wireServerMetrics } from './server-metrics.js';
import { defaultOnError } from './problem-response.js';
import { currentRequestScope } from './request-context.js';

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
  /** Cap on the budget a caller may ask for (default 60 s; `Infinity` must be written out). */
  maxBudget?: number | string;
  /**
   * A malformed deadline header (`-5`, `abc`, `1e3`, too many digits, an unknown gRPC unit):
   * give the request `maxBudget` (default), or answer 400 naming the header (`'reject'`).
   */
  invalid?: 'maxBudget' | 'reject';
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
  /**
   * Response headers stored and replayed (default content-type, content-language,
   * content-location, location, etag, last-modified, link). Credential-bearing headers
   * (`set-cookie`, `authorization`, …) are refused: a replay would hand one client's
   * credentials to whoever sends the key next.
   */
  replayHeaders?: readonly string[];
  /** Largest request body read for the fingerprint (default 1 MiB; larger → 413). */
  maxBodyBytes?: number;
  /**
   * Largest response body stored for replay (default 1 MiB). A larger response is answered in
   * full but not stored: its key keeps a marker, and duplicates get its status and replay
   * headers with a problem body and `Idempotent-Body-Omitted: max-response-bytes` (the handler
   * never runs twice).
   */
  maxResponseBytes?: number;
  /** Which responses are stored (default: every status below 500 except 408, 425 and 429). */
  storeStatus?: (status: number) => boolean;
  /**
   * Required: whose keys these are. A function of the request returning the client's
   * namespace (e.g. the authenticated account), so that two clients' keys never meet: no
   * replay of another client's response, no 422 telling that another client used a key.
   * `'global'` shares one namespace between every caller: only for a single trusted client.
   * A request for which the function returns undefined falls into the shared namespace.
   */
  scope: 'global' | ((req: IncomingMessage) => string | undefined);
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
   * A failure bulwark answers itself: any failure of a `bulwarkHandler` handler; in the
   * adapters, one before the route runs (routes' errors go through the framework). Default: bulwark's errors
   * answered as `errorToStatus` maps them (504 for a TimeoutError, 503 + Retry-After for an
   * open circuit, a full bulkhead or shed load, …), otherwise 500 and the error printed with
   * console.error; a response already started is destroyed. The Express and Fastify adapters
   * leave other errors to the framework's error handling.
   */
  onError?: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
  /** The clock request budgets run on (default: the system clock). */
  clock?: Clock;
  /**
   * Where shed requests and idempotent replays are counted: the same provider as `dependency()`'s
   * `metrics` (e.g. `prometheusMetrics({ registry })`), in the same series
   * (`bulwark_load_shed_total`, `bulwark_idempotency_total`, `bulwark_concurrency_limit`).
   */
  metrics?: MetricsProvider;
  /** The `dependency` label of this wrapper's series (default `'inbound'`). */
  name?: string;
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
  'metrics',
  'name',
];
const DEADLINE_KEYS = [
  'header',
  'grpcTimeout',
  'envoyTimeout',
  'maxBudget',
  'defaultBudget',
  'minBudget',
  'invalid',
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
  'maxResponseBytes',
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
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Response headers that carry credentials: never stored for replay to another request. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'set-cookie',
  'set-cookie2',
  'cookie',
  'authorization',
  'proxy-authorization',
  'authentication-info',
  'proxy-authentication-info',
]);
const MIB = 1024 * 1024;

function defaultStoreStatus(status: number): boolean {
  return status < 500 && status !== 408 && status !== 425 && status !== 429;
}

/** The `deadline` option, its durations resolved to milliseconds. */
export type CompiledDeadline = DeadlineOptions & {
  maxBudget: number;
  defaultBudget: number;
  minBudget: number;
  invalid: 'maxBudget' | 'reject';
};

/** The `idempotency` option, validated and with its policy built. */
export interface CompiledIdempotency {
  policy: IdempotencyPolicy;
  required: boolean;
  methods: ReadonlySet<string>;
  header: string;
  maxKeyLength: number;
  replayHeaders: readonly string[];
  maxBodyBytes: number;
  maxResponseBytes: number;
  storeStatus: (status: number) => boolean;
  scope: ((req: IncomingMessage) => string | undefined) | undefined;
}

/** Every option of the inbound wrappers, validated. */
export interface CompiledServerOptions {
  clock: Clock;
  deadline: CompiledDeadline | false;
  loadShedder: LoadShedderPolicy | undefined;
  priorityHeader: string | undefined;
  priorityFn: ((req: IncomingMessage) => Priority | undefined) | undefined;
  onError: (error: unknown, req: IncomingMessage, res: ServerResponse) => void;
  idempotency: CompiledIdempotency | undefined;
  traceRequest: (<T>(req: IncomingMessage, res: ServerResponse, handle: () => T) => T) | undefined;
}

/** Validates the options (every problem at once, paths under `path`) and builds their policies. */
export function compileServerOptions(
  options: BulwarkServerOptions = {},
  path = 'bulwarkHandler',
): CompiledServerOptions {
  const v = new Validator(path);
  const o = v.object(options, SERVER_KEYS);
  const clock = (o.clock as Clock | undefined) ?? systemClock;
  if (typeof clock !== 'object' || typeof clock.now !== 'function')
    v.problem('clock', 'a Clock', o.clock);
  const deadline = compileDeadline(o.deadline, v);
  const loadShedder = compileLoadShedder(o.loadShedder, o.clock, v);
  const ph = o.priorityHeader;
  if (ph !== undefined && !(typeof ph === 'string' && HEADER_NAME.test(ph)))
    v.problem('priorityHeader', 'a header name', ph);
  const priorityHeader = typeof ph === 'string' ? ph.toLowerCase() : undefined;
  const priorityFn = v.func<((req: IncomingMessage) => Priority | undefined) | undefined>(
    'priority',
    o.priority,
    undefined,
  );
  const onError = v.func('onError', o.onError, defaultOnError);
  const idempotency =
    o.idempotency === undefined ? undefined : compileIdempotency(o.idempotency, v, clock);
  const metrics = o.metrics as MetricsProvider | undefined;
  if (
    metrics !== undefined &&
    (metrics === null || typeof (metrics as Partial<MetricsProvider>).forDependency !== 'function')
  ) {
    v.problem('metrics', 'a metrics provider (prometheusMetrics(...))', metrics);
  }
  const name = o.name ?? DEFAULT_SERVER_METRICS_NAME;
  if (typeof name !== 'string' || name.length === 0) v.problem('name', 'a non-empty string', name);
  v.done();
  if (metrics !== undefined)
    wireServerMetrics(metrics.forDependency(name as string), loadShedder, idempotency?.policy);
  // A tracing backend wraps each request's handling in its server span.
  const traceRequest = metrics?.traceRequest?.bind(metrics);
  return {
    clock,
    deadline,
    loadShedder,
    priorityHeader,
    priorityFn,
    onError,
    idempotency,
    traceRequest,
  };
}

function compileDeadline(options: unknown, v: Validator): CompiledDeadline | false {
  if (options === false) return false;
  const dv = new Validator(v.path('deadline'));
  const d = dv.object(options, DEADLINE_KEYS);
  const header = d.header;
  if (
    header !== undefined &&
    header !== false &&
    !(typeof header === 'string' && HEADER_NAME.test(header))
  ) {
    dv.problem('header', 'a header name or false', header);
  }
  const deadline: CompiledDeadline = {
    header:
      typeof header === 'string'
        ? header.toLowerCase()
        : header === false
          ? false
          : DEADLINE_HEADER,
    grpcTimeout: dv.bool('grpcTimeout', d.grpcTimeout, true),
    envoyTimeout: dv.bool('envoyTimeout', d.envoyTimeout, true),
    maxBudget: dv.duration('maxBudget', d.maxBudget, DEFAULT_MAX_BUDGET, {
      min: 1,
      allowInfinity: true,
    }),
    defaultBudget: dv.duration('defaultBudget', d.defaultBudget, Infinity, {
      min: 1,
      allowInfinity: true,
    }),
    minBudget: dv.duration('minBudget', d.minBudget, 1),
    invalid: dv.oneOf('invalid', d.invalid, ['maxBudget', 'reject'], 'maxBudget'),
  };
  v.problems.push(...dv.problems);
  return deadline;
}

/** A ready shedder is used as given; options build one on the wrapper's clock. */
function compileLoadShedder(
  options: unknown,
  clock: unknown,
  v: Validator,
): LoadShedderPolicy | undefined {
  const ls = options as Partial<LoadShedderPolicy> | LoadShedderOptions | undefined;
  if (ls === undefined) return undefined;
  if (
    ls !== null &&
    typeof ls === 'object' &&
    typeof (ls as Partial<LoadShedderPolicy>).run === 'function'
  ) {
    return ls as LoadShedderPolicy;
  }
  try {
    return new LoadShedderPolicy(
      { clock: clock as Clock | undefined, ...(ls as LoadShedderOptions) },
      v.path('loadShedder'),
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    v.problems.push(...error.problems);
    return undefined;
  }
}

function compileIdempotency(
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
  } else {
    const refused = (replayHeaders as string[]).filter((h) =>
      CREDENTIAL_HEADERS.has(h.toLowerCase()),
    );
    if (refused.length > 0) {
      v.problem(
        'replayHeaders',
        'header names without credentials (set-cookie, authorization, … are never replayed to another request)',
        refused,
      );
    }
  }
  const required = v.bool('required', o.required, false);
  const maxKeyLength = v.int('maxKeyLength', o.maxKeyLength, 255, 1);
  const maxBodyBytes = v.int('maxBodyBytes', o.maxBodyBytes, MIB, 0);
  const maxResponseBytes = v.int('maxResponseBytes', o.maxResponseBytes, MIB, 0);
  const storeStatus = v.func('storeStatus', o.storeStatus, defaultStoreStatus);
  // Required, so that sharing one key space between clients is a visible choice.
  let scope: ((req: IncomingMessage) => string | undefined) | undefined;
  if (typeof o.scope === 'function') {
    scope = o.scope as (req: IncomingMessage) => string | undefined;
  } else if (o.scope !== 'global') {
    v.problem(
      'scope',
      "a function of the request returning the client's namespace (e.g. its account id), or 'global' for a single trusted client",
      o.scope,
    );
  }
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
        scope: scope === undefined ? undefined : currentRequestScope,
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
    maxResponseBytes,
    storeStatus,
    scope,
  };
}
