import type { Span } from '@opentelemetry/api';
import type { AbortSubscriber, CallContext } from '../../core/context.js';
import type { CallOutcome } from '../recorder.js';
import * as A from './attributes.js';
import { outcomeOfError, recordError } from './outcome.js';
import type { CallSpan } from './traced-call.js';

/** How an attempt ended besides the call outcomes: the caller aborted, or another hedge won. */
export type AttemptOutcome = CallOutcome | 'aborted' | 'abandoned';

/** One attempt's span; ends exactly once, when fn settles or when the attempt is abandoned. */
export class AttemptSpan implements AbortSubscriber {
  private ended = false;

  constructor(
    private readonly call: CallSpan,
    private readonly span: Span,
    private readonly ctx: CallContext,
    private readonly n: number,
    private readonly hedge: number,
  ) {}

  readonly succeed = <T>(value: T): T => {
    this.finish('success', undefined);
    return value;
  };

  readonly fail = (error: unknown): never => {
    this.finish(outcomeOfError(error), error);
    throw error;
  };

  abort(reason: unknown): void {
    let outcome: AttemptOutcome = 'abandoned';
    if (outcomeOfError(reason) === 'timeout') outcome = 'timeout';
    else if (this.ctx.abortedByCaller) outcome = 'aborted';
    this.finish(outcome, reason);
  }

  private finish(outcome: AttemptOutcome, error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.unsubscribe(this);
    const now = this.call.clock.now();
    const span = this.span;
    span.setAttribute(A.OUTCOME, outcome);
    // A hedge that lost the race did nothing wrong: its span keeps an unset status.
    if (outcome !== 'success' && outcome !== 'abandoned') recordError(span, error, now);
    this.call.attemptEnded(this.n, this.hedge, outcome, now);
    span.end(now);
  }
}
