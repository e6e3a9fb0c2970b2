// Responses the inbound wrapper writes itself: RFC 9457 problem+json bodies, and the
// status a handler's failure maps to.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TimeoutError } from '../core/errors.js';
import { BulkheadRejectedError } from '../policies/bulkhead-error.js';
import { CircuitOpenError } from '../policies/circuit-breaker/errors.js';
import { LoadShedError } from '../policies/load-shedder/errors.js';
import { formatRetryAfter } from './retry-after.js';

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

export function problem(
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

export function retryAfterHeader(ms: number | undefined): Record<string, string> {
  return ms === undefined || !Number.isFinite(ms) ? {} : { 'retry-after': formatRetryAfter(ms) };
}

/** What the default onError answers for a failure of the handler. */
export function statusFor(error: unknown): {
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

export function defaultOnError(error: unknown, _req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent) {
    // Part of a response is out: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  const { status, title, headers } = statusFor(error);
  if (status === 500) console.error(error);
  problem(rawResponder(res), status, title, headers);
}
