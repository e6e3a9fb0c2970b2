// The link from calls to their caller's AbortSignal: one shared abort listener per
// signal, which a guarded call joins and leaves again when it settles.

/** A call that ends when its caller's signal aborts (a CallContext). */
export interface CallerSignalMember {
  onCallerAbort(reason: unknown): void;
}

/**
 * One abort listener per caller signal, shared by every call under it: eleven calls on
 * one signal must not trip Node's MaxListenersExceededWarning (nor pay a listener each).
 */
class CallerSignalFanout {
  first: CallerSignalMember | undefined;
  rest: Set<CallerSignalMember> | undefined;

  constructor(readonly signal: AbortSignal) {}

  /** EventTarget listener (an object listener: no closure). */
  handleEvent(): void {
    fanouts.delete(this.signal);
    const reason = this.signal.reason;
    const first = this.first;
    const rest = this.rest;
    this.first = this.rest = undefined;
    first?.onCallerAbort(reason);
    if (rest !== undefined) for (const ctx of rest) ctx.onCallerAbort(reason);
  }
}

const fanouts = new WeakMap<AbortSignal, CallerSignalFanout>();

/** Makes `ctx` abort with `signal`; `signal` must not be aborted yet. */
export function joinCallerSignal(signal: AbortSignal, ctx: CallerSignalMember): void {
  let fanout = fanouts.get(signal);
  if (fanout === undefined) {
    fanout = new CallerSignalFanout(signal);
    fanouts.set(signal, fanout);
    signal.addEventListener('abort', fanout, { once: true });
  }
  if (fanout.first === undefined) fanout.first = ctx;
  else (fanout.rest ??= new Set()).add(ctx);
}

/** Undoes `joinCallerSignal`; the last call to leave removes the shared listener. */
export function leaveCallerSignal(signal: AbortSignal, ctx: CallerSignalMember): void {
  const fanout = fanouts.get(signal);
  if (fanout === undefined) return;
  if (fanout.first === ctx) fanout.first = undefined;
  else fanout.rest?.delete(ctx);
  if (fanout.first === undefined && (fanout.rest === undefined || fanout.rest.size === 0)) {
    fanouts.delete(signal);
    signal.removeEventListener('abort', fanout);
  }
}
