/**
 * `Retry-After` (RFC 9110 §10.2.3): either delta-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). The result is a delay in ms from now; it is not
 * capped here — the caller clamps it to its own budget (the retry policy gives up rather
 * than sleep past the deadline).
 */

const DELTA_SECONDS = /^\d+$/;

/**
 * Parses a `Retry-After` value into ms from `now` (epoch ms). `undefined` for an absent
 * or malformed value; a date in the past gives 0. A date is compared with `now`, which
 * should be the server's own `Date` header when there is one (see `retryAfterFromHeaders`)
 * so that a skew between the two hosts' clocks does not stretch or cancel the wait.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from 'bulwark/http';
 *
 * parseRetryAfter('120'); // 120000
 * const serverNow = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'); // the response's Date header
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', serverNow); // 30000
 * parseRetryAfter('in a bit'); // undefined
 * ```
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (DELTA_SECONDS.test(text)) {
    const seconds = Number(text);
    return Number.isFinite(seconds) ? seconds * 1000 : undefined;
  }
  // Only the date forms HTTP allows start with a letter (a day name); this keeps numbers
  // with signs, fractions or units ("1.5", "-1", "10s") out of Date.parse's lenient hands.
  if (!/^[A-Za-z]/.test(text)) return undefined;
  // asctime dates carry no zone but are GMT by definition; Date.parse would read local time.
  const at = Date.parse(/GMT|UTC|[+-]\d{4}$/.test(text) ? text : `${text} GMT`);
  if (Number.isNaN(at)) return undefined;
  const ms = at - now;
  return ms > 0 ? ms : 0;
}

/** Reads a header from a fetch `Headers` object or a Node header record. */
export interface HeaderSource {
  get(name: string): string | null;
}

/**
 * The delay a response asks for, in ms: its `Retry-After`, with an HTTP-date measured
 * against the response's own `Date` header when present (else against `now`).
 *
 * @example
 * ```ts
 * import { retryAfterFromHeaders } from 'bulwark/http';
 *
 * const res = await fetch('https://quotes.partner.example/v1/quote');
 * if (res.status === 429) {
 *   const waitMs = retryAfterFromHeaders(res.headers) ?? 1000; // the server's wish, else 1 s
 *   console.log(`throttled: next request in ${waitMs} ms`);
 * }
 * ```
 */
export function retryAfterFromHeaders(
  headers: HeaderSource,
  now: number = Date.now(),
): number | undefined {
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  const date = headers.get('date');
  const serverNow = date === null ? NaN : Date.parse(date);
  return parseRetryAfter(value, Number.isNaN(serverNow) ? now : serverNow);
}

/**
 * The `Retry-After` value (whole seconds, at least 1) for a delay in ms. Rounded up, so
 * that a client that waits as told does not come back early.
 *
 * @example
 * ```ts
 * import { formatRetryAfter } from 'bulwark/http';
 *
 * formatRetryAfter(1500); // '2'
 * formatRetryAfter(0); // '1'
 * ```
 */
export function formatRetryAfter(ms: number): string {
  if (!(ms > 0) || !Number.isFinite(ms)) return '1';
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
