/**
 * Deadline propagation over HTTP. A client sends what is left of its budget as *relative*
 * ms (hosts' clocks are not synchronised well enough for absolute times), minus a safety
 * margin for the trip back; the server starts its own budget from it on arrival.
 */

/** Our header: the ms the caller still waits for this response. */
export const DEADLINE_HEADER = 'x-bulwark-deadline-ms';
/** gRPC's `grpc-timeout` (`100m`, `2S`, …), also sent by gRPC-Web and some proxies. */
export const GRPC_TIMEOUT_HEADER = 'grpc-timeout';
/** Envoy's per-request timeout, in ms, set on requests it forwards. */
export const ENVOY_TIMEOUT_HEADER = 'x-envoy-expected-rq-timeout-ms';
/** Subtracted from the remaining budget before it is sent (ms): the response must still travel back. */
export const DEFAULT_DEADLINE_MARGIN = 10;
/**
 * The most budget the inbound wrappers grant a request by default (ms): a larger deadline is
 * cut to it, and a malformed deadline header gets it. `Infinity` must be written out.
 */
export const DEFAULT_MAX_BUDGET = 60_000;

/**
 * The header value for `remainingMs` left: whole ms after the margin, never negative
 * (`0` tells the server the caller has already given up). `undefined` for an unbounded
 * call — no header is sent then. `httpClient()` sends it by itself; this is for other clients.
 *
 * @example
 * ```ts
 * import { encodeDeadline } from 'bulwark/http';
 *
 * encodeDeadline(850); // '840': 10 ms are kept for the response's trip back
 * encodeDeadline(850, 50); // '800'
 * encodeDeadline(Infinity); // undefined: send no header
 * ```
 */
export function encodeDeadline(
  remainingMs: number,
  margin: number = DEFAULT_DEADLINE_MARGIN,
): string | undefined {
  if (!(remainingMs < Infinity)) return undefined;
  const ms = Math.floor(remainingMs - margin);
  return ms > 0 ? String(ms) : '0';
}

const MS = /^\d{1,15}$/;

/**
 * Parses our header (or Envoy's): a non-negative integer of ms.
 *
 * @example
 * ```ts
 * import { parseDeadlineMs } from 'bulwark/http';
 *
 * parseDeadlineMs('840'); // 840
 * parseDeadlineMs('1.5s'); // undefined: malformed values are ignored, not guessed at
 * ```
 */
export function parseDeadlineMs(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  return MS.test(text) ? Number(text) : undefined;
}

const GRPC = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 1e-3,
  n: 1e-6,
};

/**
 * Parses `grpc-timeout`: at most 8 digits and a unit (H, M, S, m, u, n); ms, possibly fractional.
 *
 * @example
 * ```ts
 * import { parseGrpcTimeout } from 'bulwark/http';
 *
 * parseGrpcTimeout('2S'); // 2000
 * parseGrpcTimeout('250m'); // 250
 * ```
 */
export function parseGrpcTimeout(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const m = GRPC.exec(value.trim());
  if (m === null) return undefined;
  return Number(m[1]) * GRPC_UNIT_MS[m[2]!]!;
}

/**
 * Formats ms as a `grpc-timeout` value, in the finest unit that fits in 8 digits.
 *
 * @example
 * ```ts
 * import { formatGrpcTimeout } from 'bulwark/http';
 *
 * formatGrpcTimeout(50); // '50000000n'
 * formatGrpcTimeout(2500); // '2500000u'
 * ```
 */
export function formatGrpcTimeout(ms: number): string | undefined {
  if (!(ms < Infinity)) return undefined;
  const v = ms > 0 ? ms : 0;
  for (const [unit, size] of [
    ['n', 1e-6],
    ['u', 1e-3],
    ['m', 1],
    ['S', 1000],
    ['M', 60_000],
  ] as const) {
    const n = Math.floor(v / size);
    if (n < 1e8) return `${n}${unit}`;
  }
  return `${Math.min(99_999_999, Math.floor(v / 3_600_000))}H`;
}

/** Incoming headers: Node's `req.headers` record, or anything with `get(name)` (fetch `Headers`). */
export type IncomingHeaders =
  Readonly<Record<string, string | string[] | undefined>> | { get(name: string): string | null };

/** One header's value(s) as text; duplicates (Node joins unknown ones with `, `) are split apart. */
export function headerValues(headers: IncomingHeaders, name: string): string[] {
  const raw =
    typeof (headers as { get?: unknown }).get === 'function'
      ? (headers as { get(name: string): string | null }).get(name)
      : (headers as Readonly<Record<string, string | string[] | undefined>>)[name];
  if (raw === null || raw === undefined) return [];
  const list = Array.isArray(raw) ? raw : [raw];
  return list.flatMap((v) => v.split(','));
}

/** Options of `readDeadline()`: which deadline headers to read. */
export interface ReadDeadlineOptions {
  /** Our header's name, lower case (default `x-bulwark-deadline-ms`); `false` to ignore it. */
  header?: string | false;
  /** Read `grpc-timeout` (default true). */
  grpcTimeout?: boolean;
  /** Read `x-envoy-expected-rq-timeout-ms` (default true). */
  envoyTimeout?: boolean;
}

/** What the deadline headers of a request say. */
export interface DeadlineReading {
  /** The tightest valid budget among them (ms), `undefined` if none is valid. */
  budget: number | undefined;
  /** The name of the first header whose value is malformed, if any. */
  invalid: string | undefined;
}

/**
 * Reads the deadline headers, telling a missing header from a malformed one (`-5`, `abc`, `1e3`,
 * 20 digits, `grpc-timeout: 100000000H`): the inbound wrappers give a malformed one `maxBudget`
 * (or answer 400), never "no deadline".
 *
 * @example
 * ```ts
 * import { readDeadlineHeaders } from 'bulwark/http';
 *
 * readDeadlineHeaders({ 'x-bulwark-deadline-ms': '1e3' }); // { budget: undefined, invalid: 'x-bulwark-deadline-ms' }
 * readDeadlineHeaders({ 'grpc-timeout': '2S' }); // { budget: 2000, invalid: undefined }
 * ```
 */
export function readDeadlineHeaders(
  headers: IncomingHeaders,
  options: ReadDeadlineOptions = {},
): DeadlineReading {
  const reading: DeadlineReading = { budget: undefined, invalid: undefined };
  const read = (name: string, parse: (value: string) => number | undefined): void => {
    for (const v of headerValues(headers, name)) {
      const ms = parse(v);
      if (ms === undefined) reading.invalid ??= name;
      else if (reading.budget === undefined || ms < reading.budget) reading.budget = ms;
    }
  };
  const header = options.header ?? DEADLINE_HEADER;
  if (header !== false) read(header.toLowerCase(), parseDeadlineMs);
  if (options.grpcTimeout !== false) read(GRPC_TIMEOUT_HEADER, parseGrpcTimeout);
  if (options.envoyTimeout !== false) read(ENVOY_TIMEOUT_HEADER, parseDeadlineMs);
  return reading;
}

/**
 * The budget (ms) the caller gave this request: the tightest of the deadline headers
 * present, `undefined` when there is none. Malformed values are skipped here (see
 * `readDeadlineHeaders` to learn of them); the inbound wrappers (`bulwarkHandler` and the
 * adapters) call that for you and never leave a malformed deadline unbounded.
 *
 * @example
 * ```ts
 * import { readDeadline } from 'bulwark/http';
 *
 * readDeadline({ 'x-bulwark-deadline-ms': '840', 'grpc-timeout': '2S' }); // 840: the tightest wins
 * readDeadline(new Headers({ 'x-envoy-expected-rq-timeout-ms': '1500' })); // 1500
 * readDeadline({}); // undefined: the caller set no deadline
 * ```
 */
export function readDeadline(
  headers: IncomingHeaders,
  options: ReadDeadlineOptions = {},
): number | undefined {
  return readDeadlineHeaders(headers, options).budget;
}
