// Capturing what a handler writes, so that an idempotent request's response can be stored
// and replayed to its duplicates.
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';

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
export class NotStored extends Error {}

/** Tees what the handler writes to `res`, so the response can be stored once it finished. */
export class ResponseRecorder {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  overflow = false;
  /** The handler called `res.end()`: its answer is complete, whether or not it reached the client. */
  ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly limit: number,
    /** Called once the handler ends the response. */
    public onEnd?: () => void,
  ) {
    const ended = (): void => {
      if (this.ended) return;
      this.ended = true;
      this.onEnd?.();
    };
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
      const r = (end as (...args: unknown[]) => ServerResponse).call(this, chunk, encoding, cb);
      ended();
      return r;
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

  /**
   * What a duplicate gets for a response over the limit: its status and replay headers, a
   * problem body saying the original was processed but too large to replay, and a header.
   */
  omitted(replayHeaders: readonly string[]): StoredResponse {
    const { status, headers } = this.result(replayHeaders.filter((h) => h !== 'content-type'));
    headers['content-type'] = 'application/problem+json';
    headers[BODY_OMITTED_HEADER] = 'max-response-bytes';
    const title =
      'The request was processed; its response was larger than maxResponseBytes and is not replayed';
    return {
      status,
      headers,
      body: Buffer.from(JSON.stringify({ type: 'about:blank', title, status })).toString('base64'),
    };
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

/** Marks a replay whose original body was over `maxResponseBytes` and so not stored. */
export const BODY_OMITTED_HEADER = 'idempotent-body-omitted';

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
