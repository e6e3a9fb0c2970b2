import type { Clock } from './clock.js';
import { randomKey } from './random-key.js';
import { deadlineTimersOf, type DeadlineEntry, type DeadlineTimers } from './deadline-timers.js';
import { joinCallerSignal, leaveCallerSignal } from './caller-signal.js';
import { failedLater, reportApart, tellFailed, type AttemptHandler } from './attempt-handler.js';
import { TimeoutError, type TimeoutScope } from './errors.js';

/**
 * How much a call matters under overload (default `'normal'`). Admission policies let
 * `low` work fill the smallest share of their limit and admit `critical` work whenever a
 * slot is free, so the least important work is refused first.
 */
export type Priority = (typeof PRIORITIES)[number];

/** Every priority, most important first. */
export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;

/**
 * What a wrapped function receives: the call's deadline and signal, which attempt this
 * is, and the keys every attempt of the logical call shares. Pass it as `parent` to a
 * nested `execute` so the inner call inherits the deadline and abort.
 */
export interface Context {
  /** Aborted at the deadline, on caller abort, or when this attempt is abandoned. */
  readonly signal: AbortSignal;
  /** Absolute time (ms, on the policy clock) by which the call must finish. */
  readonly deadline: number;
  /** ms left before `deadline`, never negative. */
  remaining(): number;
  /** 1 for the first attempt, 2 for the second, … */
  readonly attempt: number;
  /** The priority given to `execute` (default `'normal'`). */
  readonly priority: Priority;
  /** The caller's key, or one generated once per logical call; the same for every attempt. */
  readonly idempotencyKey: string;
  /** Stands for the request payload; compared when a stored outcome is replayed. */
  readonly fingerprint: string | undefined;
}

/**
 * A typed key for a per-call property (in the spirit of Polly's ResilienceProperties):
 * a policy declares `const FELL_BACK = propertyKey<boolean>('fellBack')`, sets it with
 * `ctx.set(FELL_BACK, true)`, and whoever imports the key reads `ctx.get(FELL_BACK)`.
 * Keys compare by identity, so two features never clash on a name.
 */
export interface PropertyKey<T> {
  readonly name: string;
  /** Carries the value type only; never set. */
  readonly valueType?: T;
}

/** Creates a property key; create each one once, at module level. */
export function propertyKey<T>(name: string): PropertyKey<T> {
  return Object.freeze({ name });
}

/** Anything that must stop when a context aborts: child contexts, sleeps, waiters. */
export interface AbortSubscriber {
  abort(reason: unknown): void;
}

/**
 * Per-call data that every attempt of one logical call shares. A call that sets none of it
 * uses its clock's `defaults` object (no allocation per call); its generated key is then
 * kept on the context that started the call (see `idempotencyKey`).
 */
interface CallShared {
  clock: Clock;
  timers?: DeadlineTimers;
  priority: Priority;
  key: string | undefined;
  fingerprint: string | undefined;
  /** True for a clock's shared defaults, which never take a key. */
  readonly defaults: boolean;
}

// Module-local symbol (not Symbol.for): each copy of the library keeps its own defaults.
const kDefaults = Symbol('bulwark.callDefaults');
let lastClock: Clock | undefined;
let lastDefaults: CallShared | undefined;

/** The shared per-call data of every call on `clock` that sets none of its own. */
function defaultsOf(clock: Clock): CallShared {
  if (clock === lastClock) return lastDefaults!;
  const holder = clock as Clock & { [kDefaults]?: CallShared };
  const d = (holder[kDefaults] ??= {
    clock,
    timers: undefined,
    priority: 'normal',
    key: undefined,
    fingerprint: undefined,
    defaults: true,
  });
  lastClock = clock;
  lastDefaults = d;
  return d;
}

function sharedFor(
  clock: Clock,
  priority: Priority | undefined,
  key: string | undefined,
  fingerprint: string | undefined,
  timers?: DeadlineTimers,
): CallShared {
  if (
    (priority === undefined || priority === 'normal') &&
    key === undefined &&
    fingerprint === undefined
  )
    return defaultsOf(clock);
  return { clock, timers, priority: priority ?? 'normal', key, fingerprint, defaults: false };
}

/**
 * The rarely used part of a context, made on first use: most calls never read their
 * signal, abort, follow a caller signal, hold properties or get traced.
 */
class CallExtras {
  controller: AbortController | undefined = undefined;
  reason: unknown = undefined;
  subscribers: Set<AbortSubscriber> | undefined = undefined;
  /** Child contexts past the first subscriber, in order, linked through their sib fields. */
  kidsHead: CallContext | undefined = undefined;
  kidsTail: CallContext | undefined = undefined;
  callerSignal: AbortSignal | undefined = undefined;
  callerAborted = false;
  properties: Map<PropertyKey<unknown>, unknown> | undefined = undefined;
  traced: unknown = undefined;
  /** The key generated for a call on its clock's defaults (kept by the call's first context). */
  key: string | undefined = undefined;
}

export interface Step {
  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T>;
  /**
   * Present on a first step that guards the call's context itself (a timeout or budget):
   * `startCall` hands it the new context and the caller's signal instead of guarding the
   * context first, so one guard serves both.
   * @internal
   */
  enter?<T>(ctx: CallContext, fn: Operation<T>, callerSignal: AbortSignal | undefined): Promise<T>;
  /**
   * `invoke` for a caller that has just read the clock (`now`): a step that would read it
   * again first (a budget or timeout) uses `now` instead. A clock read is a fair part of a
   * step's cost.
   * @internal
   */
  invokeAt?<T>(ctx: CallContext, fn: Operation<T>, now: number): Promise<T>;
  /**
   * Present on a step that guards each attempt (a `timeout()`), and on a breaker or
   * bulkhead step in front of one: runs one attempt like `invoke` (or `invokeAt` when
   * `now` is given) and tells `handler` its outcome, handing it the failure instead of
   * rejecting with it (see AttemptHandler). The policies outside then attach no
   * reactions of their own: on success the guard's promise is the call's.
   * @internal
   */
  invokeHandled?<T>(
    ctx: CallContext,
    fn: Operation<T>,
    now: number | undefined,
    handler: AttemptHandler,
  ): Promise<T>;
}

/** The work a policy runs: a function of the call's context returning a value or a promise. */
export type Operation<T> = (ctx: Context) => T | PromiseLike<T>;

const NOT_LAZY = 0;
const UNARMED = 1;
const ARMED = 2;
type Lazy = typeof NOT_LAZY | typeof UNARMED | typeof ARMED;

/**
 * The one per-call object. Its AbortController exists only once someone reads
 * `signal`; its deadline sits in the clock's shared deadline heap only while the call
 * runs and only when it is tighter than its parent's.
 */
export class CallContext implements Context, DeadlineEntry, AbortSubscriber {
  // Every field here is read or written on the hot path; the rest waits in `extras`.
  // (At 10,000 calls in flight each field is 80 KB of heap, twice per guarded call.)
  deadline: number;
  attempt: number;
  heapIndex = -1;
  dlPrev: DeadlineEntry | undefined = undefined;
  dlNext: DeadlineEntry | undefined = undefined;

  /** @internal */ readonly shared: CallShared;
  /** @internal */ readonly parent: CallContext | undefined;
  private aborted = false;
  // One subscriber is the common case (the current attempt): keep it in a field; the
  // rest in a Set (in extras), so that any of 10,000 children leaves in O(1).
  private subscriber: AbortSubscriber | undefined = undefined;
  // Neighbours in the parent's list of child contexts (10,000 calls under one request
  // join and leave it with no hashing and no growing table).
  private sibPrev: CallContext | undefined = undefined;
  private sibNext: CallContext | undefined = undefined;
  private scope: TimeoutScope;
  /**
   * The limit a TimeoutError reports; undefined for none (Infinity). Not a plain number
   * field: V8 would then box every value, even the small integers limits are.
   */
  private limit: number | undefined = undefined;
  private rejectGuard: ((reason: unknown) => void) | undefined = undefined;
  /**
   * A lazily guarded budget (see `runLazy`): UNARMED while its deadline is not yet in the
   * timers, because every wait under it so far was bounded by a tighter attempt timeout;
   * ARMED once a wait needed it. Either way no promise wraps its work.
   */
  private lazy: Lazy = NOT_LAZY;
  /** A lazy budget's work, until something arms it (which then waits for it to settle). */
  private running: Promise<unknown> | undefined = undefined;
  private extras: CallExtras | undefined = undefined;

  constructor(
    shared: CallShared,
    parent: CallContext | undefined,
    deadline: number,
    attempt: number,
    scope: TimeoutScope,
  ) {
    this.shared = shared;
    this.parent = parent;
    this.deadline = deadline;
    this.attempt = attempt;
    this.scope = scope;
  }

  static root(
    clock: Clock,
    deadline: number,
    priority?: Priority,
    key?: string,
    fingerprint?: string,
  ): CallContext {
    return new CallContext(
      sharedFor(clock, priority, key, fingerprint),
      undefined,
      deadline,
      1,
      'budget',
    );
  }

  private get more(): CallExtras {
    return (this.extras ??= new CallExtras());
  }

  private get limitMs(): number {
    return this.limit ?? Infinity;
  }

  private set limitMs(ms: number) {
    this.limit = ms === Infinity ? undefined : ms;
  }

  private get reason(): unknown {
    return this.extras?.reason;
  }

  /**
   * True when the caller's own signal (not a bulwark deadline) ended the call. A kernel
   * fact, not a policy's: the context itself listens to the caller's signal, and every
   * policy that classifies outcomes must tell "the caller left" from "the work failed".
   */
  get callerAborted(): boolean {
    return this.extras?.callerAborted ?? false;
  }

  set callerAborted(value: boolean) {
    if (value || this.extras !== undefined) this.more.callerAborted = value;
  }

  /** @internal A tracing backend's state for the call it follows (see CallTracing in metrics). */
  get traced(): unknown {
    return this.extras?.traced;
  }

  set traced(value: unknown) {
    if (value !== undefined || this.extras !== undefined) this.more.traced = value;
  }

  /**
   * The one way a logical call's context is made. With no `parent`: a root with this
   * deadline. Under a `parent` of the same clock: a child linked by subscription that
   * keeps the tighter deadline (and, when the parent's is tighter, the parent's scope and
   * limit for a TimeoutError). `inheritKey` shares the parent's per-call data, key
   * included, when the call overrides none of it (an explicit `parent`); an ambient
   * parent never lends its key: each call inside a request is its own logical call.
   */
  static forCall(
    clock: Clock,
    deadline: number,
    limitMs: number,
    priority: Priority | undefined,
    key: string | undefined,
    fingerprint: string | undefined,
    parent?: CallContext,
    inheritKey = false,
  ): CallContext {
    if (parent === undefined) {
      const root = CallContext.root(clock, deadline, priority, key, fingerprint);
      root.limitMs = limitMs;
      return root;
    }
    const p = parent.shared;
    // An ambient parent's call is another logical call: its own object, even if empty, so
    // that the key it generates is not the parent's.
    const shared: CallShared =
      inheritKey && priority === undefined && key === undefined && fingerprint === undefined
        ? p
        : {
            clock: p.clock,
            timers: p.timers,
            priority: priority ?? p.priority,
            key,
            fingerprint,
            defaults: false,
          };
    const own = deadline < parent.deadline;
    const c = new CallContext(
      shared,
      parent,
      own ? deadline : parent.deadline,
      1,
      own ? 'budget' : parent.scope,
    );
    c.limitMs = own ? limitMs : parent.limitMs;
    return c;
  }

  get clock(): Clock {
    return this.shared.clock;
  }

  get priority(): Priority {
    return this.shared.priority;
  }

  get idempotencyKey(): string {
    const shared = this.shared;
    if (!shared.defaults) return (shared.key ??= randomKey());
    // On the clock's defaults: the key belongs to the context that started this logical
    // call, the first up the chain on the same defaults (attempts and explicit children
    // share it; an ambient child has an object of its own).
    return (this.callOwner().more.key ??= randomKey());
  }

  /** The context that started this logical call on its clock's defaults. */
  private callOwner(): CallContext {
    const parent = this.parent;
    return parent !== undefined && parent.shared === this.shared ? parent.callOwner() : this;
  }

  get fingerprint(): string | undefined {
    return this.shared.fingerprint;
  }

  /** The value a policy stored under `key` for this call, or undefined. */
  get<T>(key: PropertyKey<T>): T | undefined {
    return this.extras?.properties?.get(key) as T | undefined;
  }

  /** Stores a typed per-call value (e.g. a flag one policy leaves for the metrics). */
  set<T>(key: PropertyKey<T>, value: T): void {
    (this.more.properties ??= new Map()).set(key, value);
  }

  remaining(): number {
    const left = this.deadline - this.shared.clock.now();
    return left > 0 ? left : 0;
  }

  get signal(): AbortSignal {
    const more = this.more;
    if (more.controller === undefined) {
      // Whoever reads the signal may wait on it (a backoff sleep): the deadline must be armed.
      if (this.lazy === UNARMED) this.arm();
      more.controller = new AbortController();
      if (this.aborted) more.controller.abort(more.reason);
    }
    return more.controller.signal;
  }

  get isAborted(): boolean {
    return this.aborted;
  }

  get abortReason(): unknown {
    return this.reason;
  }

  /** True when this call or an ancestor was aborted by the caller's signal. */
  get abortedByCaller(): boolean {
    return this.callerAborted || (this.parent?.abortedByCaller ?? false);
  }

  /**
   * A context for one attempt (or one parallel try) inside this one: its own signal, the
   * tighter of the two deadlines, and aborted whenever this one is.
   */
  child(deadline: number, scope: TimeoutScope, limitMs: number): CallContext {
    // When this context's deadline comes first, the child inherits it — and with it the
    // scope and limit a TimeoutError will report.
    const own = deadline < this.deadline;
    // A child that inherits this deadline relies on it firing: arm it.
    if (!own && this.lazy === UNARMED) this.arm();
    const c = new CallContext(
      this.shared,
      this,
      own ? deadline : this.deadline,
      this.attempt,
      own ? scope : this.scope,
    );
    c.limit = own ? (limitMs === Infinity ? undefined : limitMs) : this.limit;
    return c;
  }

  /** Something waits on this context (a queue waiter, a duplicate wait): tell it of aborts. */
  subscribe(s: AbortSubscriber): void {
    if (this.lazy === UNARMED) this.arm();
    this.link(s);
  }

  private link(s: AbortSubscriber): void {
    if (this.subscriber === undefined) this.subscriber = s;
    else if (s instanceof CallContext) {
      const more = this.more;
      const tail = more.kidsTail;
      s.sibPrev = tail;
      if (tail === undefined) more.kidsHead = s;
      else tail.sibNext = s;
      more.kidsTail = s;
    } else (this.more.subscribers ??= new Set()).add(s);
  }

  /** @internal How many subscribers an abort would reach now (for tests). */
  get subscriberCount(): number {
    let n = (this.subscriber === undefined ? 0 : 1) + (this.extras?.subscribers?.size ?? 0);
    for (let k = this.extras?.kidsHead; k !== undefined; k = k.sibNext) n++;
    return n;
  }

  /** O(1), whatever the number of subscribers. */
  unsubscribe(s: AbortSubscriber): void {
    if (this.subscriber === s) this.subscriber = undefined;
    else if (s instanceof CallContext) {
      const more = this.extras;
      if (more === undefined || (s.sibPrev === undefined && more.kidsHead !== s)) return;
      const prev = s.sibPrev;
      const next = s.sibNext;
      if (prev === undefined) more.kidsHead = next;
      else prev.sibNext = next;
      if (next === undefined) more.kidsTail = prev;
      else next.sibPrev = prev;
      s.sibPrev = s.sibNext = undefined;
    } else this.extras?.subscribers?.delete(s);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    const more = this.more;
    more.reason = reason;
    this.disarm();
    // The guard's rejecter clears the field itself when it is a handed-over failure (see
    // guard): it must find it set.
    const reject = this.rejectGuard;
    if (reject !== undefined) reject(reason);
    this.rejectGuard = undefined;
    if (more.controller !== undefined) more.controller.abort(reason);
    const first = this.subscriber;
    const subs = more.subscribers;
    let kid = more.kidsHead;
    this.subscriber = undefined;
    more.subscribers = undefined;
    more.kidsHead = more.kidsTail = undefined;
    if (first !== undefined) first.abort(reason);
    while (kid !== undefined) {
      const next = kid.sibNext;
      kid.sibPrev = kid.sibNext = undefined; // out of the list before it hears of the abort
      kid.abort(reason);
      kid = next;
    }
    if (subs !== undefined) for (const s of subs) s.abort(reason);
  }

  /** Deadline heap callback. */
  onDeadline(): void {
    this.abort(new TimeoutError(this.scope, this.limitMs));
  }

  /** Called by the caller's signal (through its shared listener) when it aborts. */
  onCallerAbort(reason: unknown): void {
    this.callerAborted = true;
    this.abort(reason);
  }

  /**
   * Runs `next` in this context and settles with its outcome, or rejects as soon as this
   * context aborts (deadline, caller abort, parent abort) even if the work ignores the
   * signal. Timer, listener and parent link are all removed when it settles.
   * `fixedMs`: the deadline is "now + fixedMs", already known to be in the future (the
   * caller just read the clock), so it is not read again.
   */
  guard<T>(
    fn: Operation<T>,
    next: Step,
    callerSignal?: AbortSignal,
    fixedMs?: number,
    handler?: AttemptHandler,
  ): Promise<T> {
    // An executor closure per call, not one shared executor that leaves the resolvers in
    // module variables: V8 inlines this one, and the guard measured 0.3-0.4x bare cheaper.
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const parent = this.parent;
    if (parent !== undefined) {
      if (parent.aborted) {
        this.aborted = true;
        this.endEarly(resolve, reject, handler, fn, (this.more.reason = parent.reason));
        return promise;
      }
      parent.link(this);
    }
    if (callerSignal !== undefined) {
      if (callerSignal.aborted) {
        this.aborted = true;
        const more = this.more;
        more.callerAborted = true;
        more.reason = callerSignal.reason;
        parent?.unsubscribe(this);
        this.endEarly(resolve, reject, handler, fn, more.reason);
        return promise;
      }
      this.more.callerSignal = callerSignal;
      joinCallerSignal(callerSignal, this);
    }
    if ((parent === undefined || this.deadline < parent.deadline) && this.deadline !== Infinity) {
      if (fixedMs === undefined && this.deadline <= this.shared.clock.now()) {
        this.abort(new TimeoutError(this.scope, this.limitMs));
        this.endEarly(resolve, reject, handler, fn, this.reason);
        return promise;
      }
      (this.shared.timers ??= deadlineTimersOf(this.shared.clock)).add(this, fixedMs);
    }
    let running: Promise<T>;
    try {
      running = next.invoke(this, fn);
    } catch (error) {
      running = Promise.reject(error);
    }
    if (handler !== undefined) {
      this.handOver(running, fn, resolve, handler);
      return promise;
    }
    this.rejectGuard = reject;
    running.then(
      (value) => {
        this.settle();
        resolve(value);
      },
      (error: unknown) => {
        this.settle();
        reject(error);
      },
    );
    return promise;
  }

  /** A guarded call that ends before it starts: the handler, if any, is told as of any failure. */
  private endEarly<T>(
    resolve: (value: T | PromiseLike<T>) => void,
    reject: (reason: unknown) => void,
    handler: AttemptHandler | undefined,
    fn: Operation<T>,
    reason: unknown,
  ): void {
    if (handler === undefined) reject(reason);
    else resolve(failedLater(handler, this.parent!, fn, reason));
  }

  /**
   * The guard's reactions when the attempt's outcome goes to `handler` (the policies
   * outside, see AttemptHandler): the guard's promise resolves with the value, or with
   * what the handler makes of the failure. The failure closure serves the work's
   * rejection and this context's abort; whichever outcome is told first clears
   * `rejectGuard`, and anything after it is dropped (a late outcome of abandoned work
   * must not free a slot or count twice).
   */
  private handOver<T>(
    running: Promise<T>,
    fn: Operation<T>,
    resolve: (value: T | PromiseLike<T>) => void,
    handler: AttemptHandler,
  ): void {
    const parent = this.parent!;
    // (Assigned, not declared: a named closure per call would cost more under some
    // transpilers' keep-names helpers.)
    this.rejectGuard = (error: unknown): void => {
      if (this.rejectGuard === undefined) return;
      this.rejectGuard = undefined;
      // From abort(): the handler runs a reaction later, as it would behind a rejection,
      // not inside the deadline timer or the abort of a parent.
      if (this.aborted) resolve(failedLater(handler, parent, fn, error));
      else {
        this.disarm();
        resolve(tellFailed(handler, parent, fn, error));
      }
    };
    running.then((value) => {
      if (this.rejectGuard === undefined) return;
      this.rejectGuard = undefined;
      this.disarm();
      // A throw here would leave the call unsettled: report it apart instead.
      if (handler.succeeded !== undefined) {
        try {
          handler.succeeded(parent, value);
        } catch (error) {
          reportApart(error);
        }
      }
      resolve(value);
    }, this.rejectGuard);
  }

  /**
   * Runs `next` under this budget context without arming its deadline or wrapping the
   * call: for a budget whose every attempt runs under a tighter inner timeout (decided when
   * the pipeline was composed). The deadline is armed only when something could wait
   * past it uncovered: a read of `signal` (a backoff sleep), a `subscribe` (a queue
   * waiter), or a child that inherits this deadline. Every such wait rejects when this
   * context aborts, so no wrapping promise is needed; the attempts' own guards reject
   * work that ignores its signal.
   * @internal
   */
  runLazy<T>(fn: Operation<T>, next: Step, now: number): Promise<T> {
    const parent = this.parent;
    if (parent !== undefined) {
      if (parent.aborted) {
        this.aborted = true;
        return Promise.reject((this.more.reason = parent.reason));
      }
      parent.link(this);
    }
    this.lazy = UNARMED;
    let promise: Promise<T>;
    try {
      // The budget just read the clock: the steps inside take its reading (see invokeAt).
      promise = next.invokeAt !== undefined ? next.invokeAt(this, fn, now) : next.invoke(this, fn);
    } catch (error) {
      promise = Promise.reject(error);
    }
    // Most calls never arm and have no parent: nothing to undo, so no reaction. A call
    // armed before now, or linked to a parent, is undone when it settles; one armed
    // later gets its reaction from arm().
    // (`lazy` as Lazy: invoke may have armed it.)
    if (parent !== undefined || (this.lazy as Lazy) === ARMED) this.endWhenSettled(promise);
    else this.running = promise;
    return promise;
  }

  private endWhenSettled(promise: Promise<unknown>): void {
    this.running = undefined;
    promise.then(
      () => this.endLazy(),
      () => this.endLazy(),
    );
  }

  private endLazy(): void {
    this.lazy = NOT_LAZY;
    if (!this.aborted) this.disarm();
  }

  /**
   * True while this context runs as a lazy budget: no promise wraps its work, so work run
   * directly in it needs a guarded child. @internal
   */
  get isLazy(): boolean {
    return this.lazy !== NOT_LAZY;
  }

  /**
   * True for a root made by `execute` that nothing has guarded or subscribed to: the
   * first step of the chain may tighten its deadline in place rather than make a child.
   * @internal
   */
  get isFreshRoot(): boolean {
    return (
      this.parent === undefined &&
      this.deadline === Infinity &&
      this.extras?.callerSignal === undefined &&
      this.rejectGuard === undefined &&
      this.subscriber === undefined &&
      this.lazy === NOT_LAZY &&
      !this.aborted
    );
  }

  /** @internal Gives a fresh root the deadline its first policy sets (see isFreshRoot). */
  tighten(deadline: number, scope: TimeoutScope, limitMs: number): void {
    this.deadline = deadline;
    this.scope = scope;
    this.limit = limitMs === Infinity ? undefined : limitMs;
  }

  private arm(): void {
    this.lazy = ARMED;
    // Armed while running with no reaction yet: the deadline must leave when it settles.
    if (this.running !== undefined) this.endWhenSettled(this.running);
    if (this.aborted) return;
    // A deadline already past fires on the timers' next turn (not synchronously, inside
    // whatever subscribe or signal read asked for it). A lazy budget's deadline is "start
    // + its limit": the limit's list keeps it, if in order.
    (this.shared.timers ??= deadlineTimersOf(this.shared.clock)).add(this, this.limit);
  }

  private settle(): void {
    this.rejectGuard = undefined;
    if (!this.aborted) this.disarm();
  }

  private disarm(): void {
    if (this.heapIndex !== -1) this.shared.timers!.remove(this);
    const more = this.extras;
    if (more?.callerSignal !== undefined) {
      leaveCallerSignal(more.callerSignal, this);
      more.callerSignal = undefined;
    }
    if (this.parent !== undefined) this.parent.unsubscribe(this);
  }

  /** @internal used by root contexts to know the budget they enforce. */
  setLimit(ms: number): void {
    this.limitMs = ms;
  }
}
