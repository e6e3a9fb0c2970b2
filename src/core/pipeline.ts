import { ambientSlot } from './ambient.js';
import { systemClock, type Clock } from './clock.js';
import {
  CallContext,
  PRIORITIES,
  type Context,
  type Operation,
  type Priority,
  type Step,
} from './context.js';
import { parseDuration } from './duration.js';
import { abortedBeforeStart, ConfigError } from './errors.js';

/** Per-call options of `execute()`, on any policy, pipeline or dependency. */
export interface ExecuteOptions {
  /** The caller's signal: aborting it ends the call at once with its reason. */
  signal?: AbortSignal;
  /**
   * Time from now for the whole call: ms, or a duration string like '1s' (measured on the
   * outermost policy's clock).
   */
  budget?: number | string;
  /** Absolute deadline, in ms on the policy clock (epoch ms on the system clock). */
  deadline?: number;
  /** How much this call matters under overload (default `'normal'`); read by admission policies. */
  priority?: Priority;
  /**
   * The logical request's key, shared by every attempt of the call (default: a
   * UUID generated on first read of `ctx.idempotencyKey`).
   */
  idempotencyKey?: string;
  /** Stands for the request payload; compared when a stored outcome is replayed. */
  fingerprint?: string;
  /** The context of an enclosing call: the nested call inherits its deadline and abort. */
  parent?: Context;
}

/**
 * What every policy, pipeline and dependency is: something that can `execute` a
 * function, and that `pipeline()` can compose with others. `F` is what `execute` may
 * resolve with instead of fn's own value (a substitute for a failure); `never` for most.
 */
export interface Policy<F = never> {
  /** Short name of the policy kind (`timeout`, `budget`, …), used in metrics and messages. */
  readonly kind: string;
  /**
   * Type only, never set at run time: what `execute` may resolve with besides fn's own
   * value, so that composing policies carries a substitute into the result type.
   */
  readonly substituteType?: () => F;
  /**
   * The clock this policy was given, if any. A policy without one runs each call on the
   * call's clock (`ctx.clock`: the clock of the pipeline or policy `execute` started on);
   * `pipeline()` never writes into its parts.
   */
  clock: Clock | undefined;
  /**
   * Runs `fn` through this policy (for a pipeline, through every part, outer to inner)
   * and settles with its value or the error that ended the call. Never throws
   * synchronously: bad options reject with a `ConfigError`.
   */
  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T | F>;
  /**
   * Runs one call through this policy and then `next`. Implementations return a promise
   * and never throw synchronously.
   * @internal
   */
  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T>;
  /**
   * Lets a policy choose its own step once, when a pipeline is composed, knowing the
   * policies inside it (`inner`, outer to inner) and whether it is the call's first step
   * (`entry`: it then receives the call's fresh root context). Undefined: a plain step.
   * @internal
   */
  composeStep?(inner: readonly AnyPolicy[], next: Step, entry: boolean): Step | undefined;
  /**
   * `run` for a caller that has just read the clock (`now`): a policy that reads the clock
   * first thing (a timeout) or passes straight on to one (retry's first attempt) takes the
   * reading instead of making its own. Optional.
   * @internal
   */
  runAt?<T>(ctx: CallContext, fn: Operation<T>, next: Step, now: number): Promise<T>;
  /**
   * True for a part that hands the call's context on as it found it (metrics): the part
   * after it may then take the entry step a call's first part takes (see composeStep).
   * @internal
   */
  readonly passesEntry?: boolean;
}

/** The innermost step: calls the user's function, turning a sync throw into a rejection. */
export const terminalStep: Step = {
  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      const result = fn(ctx);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  },
};

/** A policy bound to the step after it: the chain is resolved once, at construction. */
export class PolicyStep implements Step {
  constructor(
    readonly policy: AnyPolicy,
    readonly next: Step,
  ) {}

  invoke<T>(ctx: CallContext, fn: Operation<T>): Promise<T> {
    try {
      return this.policy.run(ctx, fn, this.next);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  invokeAt<T>(ctx: CallContext, fn: Operation<T>, now: number): Promise<T> {
    try {
      const policy = this.policy;
      return policy.runAt !== undefined
        ? policy.runAt(ctx, fn, this.next, now)
        : policy.run(ctx, fn, this.next);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

const PRIORITY_SET: ReadonlySet<string> = new Set(PRIORITIES);

/**
 * The root context of a call that needs nothing more (a function, no options, no ambient
 * context), or undefined: startCall's common case, which a policy may take directly.
 * @internal
 */
export function plainRoot(
  clock: Clock,
  fn: unknown,
  options: ExecuteOptions | undefined,
): CallContext | undefined {
  return options === undefined && typeof fn === 'function' && ambientSlot.provider === undefined
    ? CallContext.root(clock, Infinity)
    : undefined;
}

/** Starts one logical call: builds the root context and walks the chain from `first`. */
export function startCall<T>(
  clock: Clock,
  first: Step,
  fn: Operation<T>,
  options: ExecuteOptions | undefined,
  label?: string,
): Promise<T> {
  const root = plainRoot(clock, fn, options);
  if (root !== undefined)
    return first.enter !== undefined ? first.enter(root, fn, undefined) : first.invoke(root, fn);
  if (typeof fn !== 'function') {
    return Promise.reject(
      new ConfigError([{ path: 'execute(fn)', expected: 'a function', got: fn }]),
    );
  }
  options ??= NO_OPTIONS;

  for (const key in options) {
    // Plain JS can pass anything: a misspelt or foreign option must not be silently ignored.
    if (!EXECUTE_KEYS.has(key)) return Promise.reject(unknownOption(key));
  }
  let deadline = Infinity;
  let limit = Infinity;
  const { deadline: absolute, signal, priority, parent } = options;
  let budget = options.budget;
  if (absolute !== undefined) {
    if (typeof absolute !== 'number' || Number.isNaN(absolute)) {
      return Promise.reject(
        new ConfigError([{ path: 'deadline', expected: 'a number (ms)', got: absolute }]),
      );
    }
    deadline = absolute;
    limit = absolute - clock.now();
  }
  if (budget !== undefined) {
    if (typeof budget === 'string') budget = parseDuration(budget) ?? NaN;
    if (typeof budget !== 'number' || !(budget >= 0)) {
      return Promise.reject(
        new ConfigError([
          {
            path: 'budget',
            expected: "a duration ≥ 0 (ms, or '250ms', '2s', '1m')",
            got: options.budget,
          },
        ]),
      );
    }
    const d = clock.now() + budget;
    if (d < deadline) {
      deadline = d;
      limit = budget;
    }
  }
  if (priority !== undefined && !PRIORITY_SET.has(priority)) {
    return Promise.reject(
      new ConfigError([
        { path: 'priority', expected: "'critical' | 'high' | 'normal' | 'low'", got: priority },
      ]),
    );
  }
  if (signal !== undefined && signal.aborted)
    return Promise.reject(abortedBeforeStart(signal.reason, label ?? kindOf(first)));
  let parentCtx: CallContext | undefined;
  if (parent !== undefined) {
    if (!(parent instanceof CallContext)) {
      return Promise.reject(
        new ConfigError([{ path: 'parent', expected: 'a bulwark Context', got: parent }]),
      );
    }
    parentCtx = parent;
  } else if (ambientSlot.provider !== undefined) {
    const ambient = ambientSlot.provider();
    if (ambient !== undefined)
      return startUnder(ambient, clock, first, fn, options, deadline, limit);
  }

  const ctx = CallContext.forCall(
    clock,
    deadline,
    limit,
    priority,
    options.idempotencyKey,
    options.fingerprint,
    parentCtx,
    true,
  );
  if (deadline === Infinity && signal === undefined && parentCtx === undefined) {
    return first.invoke(ctx, fn);
  }
  return guardCall(ctx, first, fn, signal);
}

/**
 * Guards a new call's context, or lets a first step that guards it anyway do so.
 * @internal Also for a first step that measures the whole call, guard included (metrics).
 */
export function guardCall<T>(
  ctx: CallContext,
  first: Step,
  fn: Operation<T>,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (first.enter !== undefined) {
    try {
      return first.enter(ctx, fn, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }
  return ctx.guard(fn, first, signal);
}

const NO_OPTIONS: ExecuteOptions = {};

const EXECUTE_OPTIONS = [
  'signal',
  'budget',
  'deadline',
  'priority',
  'idempotencyKey',
  'fingerprint',
  'parent',
] as const satisfies readonly (keyof ExecuteOptions)[];
const EXECUTE_KEYS: ReadonlySet<string> = new Set(EXECUTE_OPTIONS);

function unknownOption(key: string): ConfigError {
  return new ConfigError([
    {
      path: key,
      expected: `one of ${EXECUTE_OPTIONS.join(', ')}`,
      got: key,
      message: `unknown option (known: ${EXECUTE_OPTIONS.join(', ')})`,
    },
  ]);
}

/** The kind of policy a chain starts with, to name it in a message. */
function kindOf(first: Step): string {
  const policy = first instanceof PolicyStep ? first.policy : (first as Partial<AnyPolicy>);
  return typeof policy.kind === 'string' ? policy.kind : 'call';
}

/**
 * A call with no explicit `parent`, made while an ambient context is current (e.g. inside
 * an HTTP request handler): it inherits that context's deadline, abort and priority, but
 * not its idempotency key — each call inside a request is its own logical call.
 */
function startUnder<T>(
  ambient: Context,
  clock: Clock,
  first: Step,
  fn: Operation<T>,
  options: ExecuteOptions,
  deadline: number,
  limit: number,
): Promise<T> {
  const { signal } = options;
  if (ambient instanceof CallContext && ambient.clock === clock) {
    // Same copy of bulwark, same clock: a child linked by subscription (no signal read).
    const ctx = CallContext.forCall(
      clock,
      deadline,
      limit,
      options.priority,
      options.idempotencyKey,
      options.fingerprint,
      ambient,
    );
    return guardCall(ctx, first, fn, signal);
  }
  // Another clock, or a context from the other (ESM/CJS) copy: carry over what is left of
  // its budget, measured on this call's clock, and its abort through its signal.
  const left = ambient.remaining();
  if (left < Infinity && clock.now() + left < deadline) {
    deadline = clock.now() + left;
    limit = left;
  }
  const ctx = CallContext.forCall(
    clock,
    deadline,
    limit,
    options.priority ?? ambient.priority,
    options.idempotencyKey,
    options.fingerprint,
  );
  return guardCall(ctx, first, fn, signal ?? ambient.signal);
}

/**
 * What a policy (or any of a union of policies) may resolve with besides fn's own value:
 * the substitute one of them may put in place of a failure, else `never`.
 */
export type SubstituteOf<P> = P extends { readonly substituteType?: () => infer F } ? F : never;

/** Any policy, whatever substitute it may resolve with: what `pipeline()` composes. */
export type AnyPolicy = Policy<unknown>;

/** Base of every policy: `execute()` runs the policy alone, as a one-step pipeline. */
export abstract class BasePolicy<F = never> implements Policy<F> {
  /** Short name of the policy kind (`timeout`, `budget`, …), used in metrics and messages. */
  abstract readonly kind: string;
  /** Type only (see Policy): never set. */
  declare readonly substituteType?: () => F;
  /** The clock this policy was given; without one, each call runs on the call's clock. */
  clock: Clock | undefined;
  private step: Step | undefined;

  constructor(clock: Clock | undefined) {
    this.clock = clock;
  }

  /**
   * Runs `fn` through this policy alone and settles with its value or the error that
   * ended the call. To combine policies, compose them with `pipeline()` rather than
   * nesting `execute` calls: the chain is then resolved once, not per call.
   */
  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T | F> {
    return startCall(
      this.clock ?? systemClock,
      (this.step ??=
        (this as AnyPolicy).composeStep?.([], terminalStep, true) ??
        new PolicyStep(this, terminalStep)),
      fn,
      options,
    );
  }

  /**
   * Runs one call through this policy and then `next`; pipelines call it. Application
   * code calls `execute()` instead.
   */
  abstract run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T>;
}

/**
 * Policies composed by `pipeline()`, itself a policy (so pipelines nest). `F`: the
 * substitute one of the parts may resolve with.
 */
export interface Pipeline<F = never> extends Policy<F> {
  /** The parts, outer to inner; nested pipelines are flattened into this list. */
  readonly policies: readonly AnyPolicy[];
}

class PipelinePolicy implements Pipeline<unknown> {
  readonly kind = 'pipeline';
  declare readonly substituteType?: () => unknown;
  readonly policies: readonly AnyPolicy[];
  clock: Clock | undefined;
  private readonly first: Step;
  /** The first step of a call started by `execute` (it may differ: see composeStep). */
  private readonly entry: Step;

  constructor(policies: readonly AnyPolicy[]) {
    this.policies = policies;
    // Resolved here, once, and carried to every part by the call's context: the parts
    // are not written to, so a policy shared by two pipelines serves each on its clock.
    this.clock = policies.find((p) => p.clock !== undefined)?.clock;
    // Two chains: `step` for a part reached in the middle of a call, `entry` for a part
    // that starts it (the first one, or one behind parts that pass the entry on).
    let step: Step = terminalStep;
    let entry: Step = terminalStep;
    for (let i = policies.length - 1; i >= 0; i--) {
      const p = policies[i]!;
      const inner = policies.slice(i + 1);
      const next = step;
      step = p.composeStep?.(inner, next, false) ?? new PolicyStep(p, next);
      entry =
        p.passesEntry === true
          ? (p.composeStep?.(inner, entry, true) ?? new PolicyStep(p, entry))
          : (p.composeStep?.(inner, next, true) ?? step);
    }
    this.first = step;
    this.entry = entry;
  }

  execute<T>(fn: Operation<T>, options?: ExecuteOptions): Promise<T> {
    return startCall(this.clock ?? systemClock, this.entry, fn, options, this.kind);
  }

  run<T>(ctx: CallContext, fn: Operation<T>, next: Step): Promise<T> {
    if (next === terminalStep) return this.first.invoke(ctx, fn);
    // A pipeline nested inside another one: splice it in front of the outer rest.
    return runChain(this.policies, 0, ctx, fn, next);
  }
}

function runChain<T>(
  policies: readonly AnyPolicy[],
  i: number,
  ctx: CallContext,
  fn: Operation<T>,
  next: Step,
): Promise<T> {
  if (i === policies.length) return next.invoke(ctx, fn);
  return policies[i]!.run(ctx, fn, {
    invoke: (c, f) => runChain(policies, i + 1, c, f, next),
  });
}

/**
 * Composes policies outer to inner: `pipeline(budget(2000), retry(), timeout(300))`.
 * The chain is resolved here, once; a call walks it with no per-call closures. The first
 * explicit `clock` among the parts is the clock of every call, which parts without a clock
 * of their own read from the context.
 *
 * Order matters: a budget outside `retry()` bounds every attempt and backoff sleep
 * together, a timeout inside it bounds each attempt.
 *
 * @example
 * ```ts
 * import { budget, circuitBreaker, pipeline, retry, timeout } from 'bulwark';
 *
 * // 2 s for the whole call; up to 3 attempts (the default) of at most 300 ms each.
 * const users = pipeline(budget('2s'), retry(), circuitBreaker(), timeout('300ms'));
 *
 * const user = await users.execute(async (ctx) => {
 *   const res = await fetch('https://users.internal/users/42', { signal: ctx.signal });
 *   // An error with a retryable `status` (429, 503, …) is retried by default.
 *   if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
 *   return res.json();
 * });
 * ```
 */
export function pipeline<P extends AnyPolicy[]>(...policies: P): Pipeline<SubstituteOf<P[number]>> {
  policies.forEach((p, i) => {
    if (p === null || typeof p !== 'object' || typeof p.run !== 'function') {
      throw new ConfigError([{ path: `pipeline[${i}]`, expected: 'a bulwark policy', got: p }]);
    }
  });
  // Nested pipelines are flattened so the chain stays one resolved list of steps.
  const flat = policies.flatMap((p) => (p instanceof PipelinePolicy ? p.policies : [p]));
  return new PipelinePolicy(flat) as Pipeline<SubstituteOf<P[number]>>;
}
