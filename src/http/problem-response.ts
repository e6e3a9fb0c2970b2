// Responses the inbound wrapper writes itself: RFC 9457 problem+json bodies, and the
// status each of bulwark's errors maps to (exported for users' own error handlers).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TimeoutError } from '../core/errors.js';
import { BulkheadRejectedError } from '../policies/bulkhead-error.js';
import { CircuitOpenError } from '../policies/circuit-breaker/errors.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyReuseError,
  IdempotencyStoreError,
} from '../policies/idempotency/errors.js';
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

const PROBLEM_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/problem+json',
  'cache-control': 'no-store',
};

function problemBody(status: number, title: string): string {
  return JSON.stringify({ type: 'about:blank', title, status });
}

export function problem(
  respond: Responder,
  status: number,
  title: string,
  extra: Record<string, string> = {},
): void {
  respond(status, { ...PROBLEM_HEADERS, ...extra }, problemBody(status, title));
}

export function retryAfterHeader(ms: number | undefined): Record<string, string> {
  return ms === undefined || !Number.isFinite(ms) ? {} : { 'retry-after': formatRetryAfter(ms) };
}

/** The HTTP answer for an error: its status, a title for the problem body, and headers (Retry-After). */
interface ErrorAnswer {
  status: number;
  title: string;
  headers: Record<string, string>;
}

/** Retry-After for an overload answer: the error's hint, else one second. */
function retryAfterOr1s(ms: number | undefined): Record<string, string> {
  const header = retryAfterHeader(ms);
  return header['retry-after'] === undefined ? { 'retry-after': '1' } : header;
}

/** The answer for an error bulwark made; `undefined` for any other error. */
function answerFor(error: unknown): ErrorAnswer | undefined {
  if (error instanceof TimeoutError)
    return { status: 504, title: 'Deadline exceeded', headers: {} };
  if (error instanceof LoadShedError) {
    return { status: 503, title: 'Overloaded', headers: retryAfterOr1s(error.retryAfterMs) };
  }
  if (error instanceof CircuitOpenError) {
    return {
      status: 503,
      title: 'A dependency is unavailable',
      headers: retryAfterOr1s(error.retryAfterMs),
    };
  }
  if (error instanceof BulkheadRejectedError)
    return { status: 503, title: 'Overloaded', headers: retryAfterOr1s(undefined) };
  if (error instanceof IdempotencyInProgressError) {
    return {
      status: 409,
      title: 'A request with this idempotency key is still being processed',
      headers: { 'retry-after': '1' },
    };
  }
  if (error instanceof IdempotencyKeyReuseError)
    return {
      status: 422,
      title: 'This idempotency key was used with a different request',
      headers: {},
    };
  if (error instanceof IdempotencyStoreError) {
    return { status: 503, title: 'Idempotency store unavailable', headers: { 'retry-after': '1' } };
  }
  return undefined;
}

/**
 * The HTTP status for an error bulwark made, as the inbound adapters answer it: 504 for a
 * `TimeoutError`, 503 for an open circuit, a full bulkhead, shed load or a failing
 * idempotency store, 409 for a key still in progress, 422 for a key reused with another
 * payload; `undefined` for any other error (yours to map). For your own error handlers.
 *
 * @example
 * ```ts
 * import type { ErrorRequestHandler } from 'express';
 * import { errorToStatus } from 'bulwark/http';
 *
 * const onError: ErrorRequestHandler = (err, _req, res, _next) => {
 *   const status = errorToStatus(err) ?? 500;
 *   res.status(status).json({ error: status === 500 ? 'internal error' : 'try again later' });
 * };
 * ```
 */
export function errorToStatus(error: unknown): number | undefined {
  return answerFor(error)?.status;
}

/** A ready RFC 9457 problem response: write it with any framework. */
export interface ProblemResponse {
  /** The HTTP status. */
  status: number;
  /** `content-type: application/problem+json`, `cache-control: no-store`, and `retry-after` when there is one. */
  headers: Record<string, string>;
  /** The JSON text `{ type, title, status }`: never the error's message or stack. */
  body: string;
}

/**
 * The problem+json response for an error: the mapping of `errorToStatus` with Retry-After
 * for bulwark's errors, a bare 500 for any other error. Nothing of the error's message or
 * stack is sent (they may name internal hosts, tables or keys).
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { problemResponse } from 'bulwark/http';
 *
 * const app = Fastify();
 * app.setErrorHandler((error, request, reply) => {
 *   request.log.error(error);
 *   const p = problemResponse(error);
 *   return reply.code(p.status).headers(p.headers).send(p.body);
 * });
 * ```
 */
export function problemResponse(error: unknown): ProblemResponse {
  const { status, title, headers } = answerFor(error) ?? {
    status: 500,
    title: 'Internal Server Error',
    headers: {},
  };
  return {
    status,
    headers: { ...PROBLEM_HEADERS, ...headers },
    body: problemBody(status, title),
  };
}

/** Answers a mapped bulwark error through `respond`; false (nothing written) for any other error. */
export function answerBulwarkError(respond: Responder, error: unknown): boolean {
  const answer = answerFor(error);
  if (answer === undefined) return false;
  problem(respond, answer.status, answer.title, answer.headers);
  return true;
}

export function defaultOnError(error: unknown, _req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent) {
    // Part of a response is out: cutting the connection is the only honest signal left.
    res.destroy();
    return;
  }
  if (answerBulwarkError(rawResponder(res), error)) return;
  console.error(error);
  problem(rawResponder(res), 500, 'Internal Server Error');
}
