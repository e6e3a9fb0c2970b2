import type { CallContext, Operation, Step } from '../../core/context.js';
import { BasePolicy } from '../../core/pipeline.js';
import { CallSpan } from './traced-call.js';

/**
 * The innermost step of a traced dependency: each run of fn (every retry, every hedge)
 * becomes a child span of its call's span. It finds the call on the context chain (the
 * attempt's context descends from the call's), not in the OpenTelemetry context, because a
 * call let out of the bulkhead queue runs on in the releasing call's async context.
 */
export class AttemptSpanStep extends BasePolicy {
  readonly kind = 'otel-attempt';

  constructor(private readonly owner: object) {
    super(undefined);
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    for (let c: CallContext | undefined = ctx; c !== undefined; c = c.parent) {
      const traced = c.traced;
      if (traced === undefined) continue;
      if (traced instanceof CallSpan && traced.source === this.owner)
        return traced.runAttempt(ctx, fn, next);
      break;
    }
    return next.invoke(ctx, fn);
  }
}
