import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { deadlineTimersOf, type DeadlineEntry, type DeadlineTimers } from './deadline-timers.js';
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

/** Per-call data that every attempt of one logical call shares. */
interface CallShared {
  clock: Clock;
  timers?: DeadlineTimers;
  priority: Priority;
  key: string | undefined;
  fingerprint: string | undefined;
}

export interface Step {
  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T>;
}

/** The work a policy runs: a function of the call's context returning a value or a promise. */
export type Operation<T> = (ctx: Context) => T | PromiseLike<T>;

/**
 * The one per-call object. Its AbortController exists only once someone reads
 * `signal`; its deadline sits in the clock's shared deadline heap only while the call
 * runs and only when it is tighter than its parent's.
 */
export class CallContext implements Context, DeadlineEntry, AbortSubscriber {
  deadline: number;
  attempt: number;
  heapIndex = -1;

  /** @internal */ readonly shared: CallShared;
  /** @internal */ readonly parent: CallContext | undefined;
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;
  // One subscriber is the common case (the current attempt): keep it in a field, not an array.
  private subscriber: AbortSubscriber | undefined;
  private subscribers: AbortSubscriber[] | undefined;
  private scope: TimeoutScope;
  private limitMs = Infinity;
  private callerSignal: AbortSignal | undefined;
  private rejectGuard: ((reason: unknown) => void) | undefined;
  /**
   * True when the caller's own signal (not a bulwark deadline) ended the call. A kernel
   * fact, not a policy's: the context itself listens to the caller's signal, and every
   * policy that classifies outcomes must tell "the caller left" from "the work failed".
   */
  callerAborted = false;
  // Typed per-call properties; no Map until the first set().
  private properties: Map<PropertyKey<unknown>, unknown> | undefined;
  /** @internal A tracing backend's state for the call it follows (see CallTracing in metrics). */
  traced: unknown = undefined;

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
    priority: Priority = 'normal',
    key?: string,
    fingerprint?: string,
  ): CallContext {
    return new CallContext(
      { clock, timers: undefined, priority, key, fingerprint },
      undefined,
      deadline,
      1,
      'budget',
    );
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
    const shared: CallShared =
      inheritKey && priority === undefined && key === undefined && fingerprint === undefined
        ? p
        : {
            clock: p.clock,
            timers: p.timers,
            priority: priority ?? p.priority,
            key,
            fingerprint,
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
    return (this.shared.key ??= randomUUID());
  }

  get fingerprint(): string | undefined {
    return this.shared.fingerprint;
  }

  /** The value a policy stored under `key` for this call, or undefined. */
  get<T>(key: PropertyKey<T>): T | undefined {
    return this.properties?.get(key) as T | undefined;
  }

  /** Stores a typed per-call value (e.g. a flag one policy leaves for the metrics). */
  set<T>(key: PropertyKey<T>, value: T): void {
    (this.properties ??= new Map()).set(key, value);
  }

  remaining(): number {
    const left = this.deadline - this.shared.clock.now();
    return left > 0 ? left : 0;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
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
    const c = new CallContext(
      this.shared,
      this,
      own ? deadline : this.deadline,
      this.attempt,
      own ? scope : this.scope,
    );
    c.limitMs = own ? limitMs : this.limitMs;
    return c;
  }

  subscribe(s: AbortSubscriber): void {
    if (this.subscriber === undefined) this.subscriber = s;
    else (this.subscribers ??= []).push(s);
  }

  unsubscribe(s: AbortSubscriber): void {
    if (this.subscriber === s) {
      this.subscriber = undefined;
      return;
    }
    const subs = this.subscribers;
    if (subs === undefined) return;
    const i = subs.lastIndexOf(s);
    if (i < 0) return;
    const last = subs.pop()!;
    if (i < subs.length) subs[i] = last;
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.disarm();
    const reject = this.rejectGuard;
    this.rejectGuard = undefined;
    if (reject !== undefined) reject(reason);
    if (this.controller !== undefined) this.controller.abort(reason);
    const first = this.subscriber;
    const subs = this.subscribers;
    this.subscriber = undefined;
    this.subscribers = undefined;
    if (first !== undefined) first.abort(reason);
    if (subs !== undefined) for (const s of subs) s.abort(reason);
  }

  /** Deadline heap callback. */
  onDeadline(): void {
    this.abort(new TimeoutError(this.scope, this.limitMs));
  }

  /** EventTarget listener for the caller's signal (an object listener: no closure). */
  handleEvent(): void {
    this.callerAborted = true;
    this.abort(this.callerSignal!.reason);
  }

  /**
   * Runs `next` in this context and settles with its outcome, or rejects as soon as this
   * context aborts (deadline, caller abort, parent abort) even if the work ignores the
   * signal. Timer, listener and parent link are all removed when it settles.
   */
  guard<T>(fn: Operation<T>, next: Step, callerSignal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.parent !== undefined) {
        if (this.parent.aborted) {
          this.aborted = true;
          this.reason = this.parent.reason;
          reject(this.reason);
          return;
        }
        this.parent.subscribe(this);
      }
      if (callerSignal !== undefined) {
        if (callerSignal.aborted) {
          this.callerAborted = true;
          this.aborted = true;
          this.reason = callerSignal.reason;
          this.parent?.unsubscribe(this);
          reject(this.reason);
          return;
        }
        this.callerSignal = callerSignal;
        callerSignal.addEventListener('abort', this, { once: true });
      }
      const ownDeadline = this.parent === undefined || this.deadline < this.parent.deadline;
      if (ownDeadline && this.deadline !== Infinity) {
        if (this.deadline <= this.shared.clock.now()) {
          this.abort(new TimeoutError(this.scope, this.limitMs));
          reject(this.reason);
          return;
        }
        (this.shared.timers ??= deadlineTimersOf(this.shared.clock)).add(this);
      }
      this.rejectGuard = reject;
      next.invoke(this, fn).then(
        (value) => {
          this.settle();
          resolve(value);
        },
        (error: unknown) => {
          this.settle();
          reject(error);
        },
      );
    });
  }

  private settle(): void {
    this.rejectGuard = undefined;
    if (!this.aborted) this.disarm();
  }

  private disarm(): void {
    if (this.heapIndex >= 0) this.shared.timers!.remove(this);
    if (this.callerSignal !== undefined) {
      this.callerSignal.removeEventListener('abort', this);
      this.callerSignal = undefined;
    }
    if (this.parent !== undefined) this.parent.unsubscribe(this);
  }

  /** @internal used by root contexts to know the budget they enforce. */
  setLimit(ms: number): void {
    this.limitMs = ms;
  }
}
