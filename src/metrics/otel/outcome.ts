import { SpanStatusCode, type Exception, type Span } from '@opentelemetry/api';
import { isBulwarkError } from '../../core/errors.js';
import type { CallOutcome } from '../recorder.js';

/**
 * How an error ends a call, as the `bulwark.outcome` value, read from the error's stable
 * `code` (so it holds for errors from the other ESM/CJS copy too).
 */
export function outcomeOfError(error: unknown): CallOutcome {
  switch ((error as { code?: unknown } | null)?.code) {
    case 'ERR_TIMEOUT':
      return 'timeout';
    case 'ERR_CIRCUIT_OPEN':
      return 'short_circuited';
    case 'ERR_BULKHEAD_FULL':
      return 'rejected';
    case 'ERR_LOAD_SHED':
      return 'shed';
    default:
      return 'failure';
  }
}

/**
 * Writes the trace id on a rejection bulwark made itself, so a log line of the error can be
 * joined to its trace. A user's own error is left untouched; the innermost call's id stays.
 */
export function stampTraceId(error: unknown, traceId: string): void {
  if (!isBulwarkError(error)) return;
  const e = error as { traceId?: string };
  if (e.traceId === undefined) e.traceId = traceId;
}

/** A failure on a span: the exception as an event (message and stack belong on spans) and status ERROR. */
export function recordError(span: Span, error: unknown, time: number): void {
  if (error instanceof Error) {
    span.recordException(error as Exception, time);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  } else span.setStatus({ code: SpanStatusCode.ERROR });
}
