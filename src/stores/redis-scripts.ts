import { createHash } from 'node:crypto';
import { systemClock, type TimerHandle } from '../core/clock.js';
import { formatMs } from '../core/errors.js';
import type { IoRedisClientLike, NodeRedisClientLike } from './redis.js';

/** A Lua script and its SHA1, sent by EVALSHA (and by text once Redis answers NOSCRIPT). */
export interface LuaScript {
  readonly name: string;
  readonly text: string;
  readonly sha: string;
}

export function luaScript(name: string, text: string): LuaScript {
  return { name, text, sha: createHash('sha1').update(text).digest('hex') };
}

/** The two commands sent, in one shape for ioredis (Redis or Cluster) and node-redis. */
export interface Evaluator {
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  eval(text: string, keys: string[], args: string[]): Promise<unknown>;
}

class IoRedisEvaluator implements Evaluator {
  constructor(private readonly client: IoRedisClientLike) {}
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown> {
    return this.client.evalsha(sha, keys.length, ...keys, ...args);
  }
  eval(text: string, keys: string[], args: string[]): Promise<unknown> {
    return this.client.eval(text, keys.length, ...keys, ...args);
  }
}

class NodeRedisEvaluator implements Evaluator {
  constructor(private readonly client: NodeRedisClientLike) {}
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown> {
    return this.client.evalSha(sha, { keys, arguments: args });
  }
  eval(text: string, keys: string[], args: string[]): Promise<unknown> {
    return this.client.eval(text, { keys, arguments: args });
  }
}

/** Tells an ioredis client from a node-redis one by shape; undefined for anything else. */
export function evaluatorFor(client: unknown): Evaluator | undefined {
  if (client === null || typeof client !== 'object') return undefined;
  const c = client as Record<string, unknown>;
  // node-redis spells it evalSha, ioredis evalsha.
  if (typeof c.evalSha === 'function') return new NodeRedisEvaluator(client as NodeRedisClientLike);
  if (typeof c.evalsha === 'function') return new IoRedisEvaluator(client as IoRedisClientLike);
  return undefined;
}

/** Why a script call failed: Redis's own error, or no answer within the timeout. */
export class ScriptCallError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Turns a call's outcome into the store's answer, without a promise layer per step: the
 * store itself is the handler, and `context` carries what the call needs (no closure).
 */
export interface ScriptHandler {
  /** The reply: what the call resolves with (a throw rejects it). */
  decode(reply: unknown, context: unknown): unknown;
  /** Redis failed or timed out: a value to resolve with, or a throw to reject with. */
  fail?(error: ScriptCallError, context: unknown): unknown;
  /** A reply that came after the call had timed out (e.g. to free what it took). */
  late?(reply: unknown, context: unknown): void;
}

/** One script call in flight: settles once, by reply, error or the watchdog. */
class PendingCall {
  prev: PendingCall | undefined = undefined;
  next: PendingCall | undefined = undefined;
  deadline = Infinity;
  done = false;
  viaSha = true;

  constructor(
    readonly owner: ScriptRunner,
    readonly script: LuaScript,
    readonly keys: string[],
    readonly args: string[],
    readonly resolve: (value: unknown) => void,
    readonly reject: (error: unknown) => void,
    readonly handler: ScriptHandler | undefined,
    readonly context: unknown,
  ) {}

  send(): void {
    const e = this.owner.evaluator;
    const sent = this.viaSha
      ? e.evalsha(this.script.sha, this.keys, this.args)
      : e.eval(this.script.text, this.keys, this.args);
    sent.then(
      (value) => {
        if (this.done) this.handler?.late?.(value, this.context);
        else this.owner.settle(this, value, undefined);
      },
      (error: unknown) => {
        if (this.viaSha && /^NOSCRIPT/.test(messageOf(error))) {
          // Redis restarted or flushed its script cache: the text loads it again.
          this.viaSha = false;
          this.send();
          return;
        }
        this.owner.settle(
          this,
          undefined,
          new ScriptCallError(`${this.script.name} failed: ${messageOf(error)}`, false, {
            cause: error,
          }),
        );
      },
    );
  }
}

function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

/**
 * Runs a store's Lua scripts: one round trip each (EVALSHA; EVAL once after NOSCRIPT), every
 * call bounded by `timeout`. Clients queue commands while disconnected, so without the bound
 * a call could wait for Redis forever. All calls share one watchdog timer: with one fixed
 * timeout, start order is deadline order.
 */
export class ScriptRunner {
  private head: PendingCall | undefined;
  private tail: PendingCall | undefined;
  private watchdog: TimerHandle | undefined;

  constructor(
    readonly evaluator: Evaluator,
    readonly timeout: number,
  ) {}

  run(
    script: LuaScript,
    keys: string[],
    args: string[],
    handler?: ScriptHandler,
    context?: unknown,
  ): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const call = new PendingCall(this, script, keys, args, resolve, reject, handler, context);
      if (this.timeout !== Infinity) {
        call.deadline = systemClock.now() + this.timeout;
        call.prev = this.tail;
        if (this.tail === undefined) this.head = call;
        else this.tail.next = call;
        this.tail = call;
        if (this.watchdog === undefined) this.arm(this.timeout);
      }
      call.send();
    });
  }

  /** @internal */
  settle(call: PendingCall, value: unknown, error: ScriptCallError | undefined): void {
    if (call.done) return;
    call.done = true;
    if (call.deadline !== Infinity) {
      if (call.prev === undefined) this.head = call.next;
      else call.prev.next = call.next;
      if (call.next === undefined) this.tail = call.prev;
      else call.next.prev = call.prev;
      call.prev = call.next = undefined;
    }
    const handler = call.handler;
    try {
      if (error === undefined) call.resolve(handler ? handler.decode(value, call.context) : value);
      else if (handler?.fail) call.resolve(handler.fail(error, call.context));
      else call.reject(error);
    } catch (thrown) {
      call.reject(thrown);
    }
  }

  private arm(ms: number): void {
    this.watchdog = systemClock.setTimeout(this.expire, ms);
  }

  private readonly expire = (): void => {
    this.watchdog = undefined;
    const now = systemClock.now();
    for (let call = this.head; call !== undefined; call = this.head) {
      if (call.deadline > now) {
        this.arm(call.deadline - now);
        return;
      }
      this.settle(
        call,
        undefined,
        new ScriptCallError(
          `${call.script.name} got no answer from Redis within ${formatMs(this.timeout)} (is Redis reachable?)`,
          true,
        ),
      );
    }
  };
}
