/**
 * A tiny typed event hub. Publishing checks one array per event, so a policy with no
 * subscribers pays a property read; policies guard payload construction with `has()`.
 */
import { ConfigError } from './errors.js';

/** Returned by every `on(event, listener)` (and a store's `watch`): `dispose()` undoes it. */
export interface Disposable {
  /** Removes the listener (or stops watching); calling it again does nothing. */
  dispose(): void;
}

/**
 * What `policy.on(event, listener)` returns: a Disposable that also works with `using`
 * (`using sub = policy.on('retry', log)` unsubscribes at the end of the block).
 */
export interface Subscription extends Disposable {
  /** Same as `dispose()`, for `using` declarations. */
  [Symbol.dispose](): void;
}

/**
 * A policy event listener. Listeners run synchronously; one that throws has its error
 * rethrown in a microtask, so a faulty hook never changes the call it observes.
 */
export type Listener<T> = (event: T) => void;

/**
 * Every event name of `Events`, known at run time (plain JS can pass any string): `true`
 * for an event of its own, or the name it is a deprecated alias of.
 */
export type EventNames<Events extends object> = {
  readonly [K in keyof Events]-?: true | Exclude<keyof Events, K>;
};

export class EventHub<Events extends object> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  constructor(private readonly names: EventNames<Events>) {}

  has<K extends keyof Events>(name: K): boolean {
    return this.listeners[name] !== undefined;
  }

  /**
   * Subscribes `listener` to `name` (an alias subscribes to the event it stands for).
   * `owner` names the policy in the error an unknown name gets.
   */
  on<K extends keyof Events>(
    name: K,
    listener: Listener<Events[K]>,
    owner = 'events',
  ): Subscription {
    const target = Object.prototype.hasOwnProperty.call(this.names, name)
      ? this.names[name]
      : undefined;
    if (target === undefined) {
      // An event that does not exist never fires: say so instead of waiting forever.
      const known = Object.keys(this.names).join(', ');
      throw new ConfigError([
        {
          path: `${owner}.on(event)`,
          expected: `one of ${known}`,
          got: name,
          message: `unknown event ${JSON.stringify(String(name))} (known: ${known})`,
        },
      ]);
    }
    if (typeof listener !== 'function')
      throw new TypeError(`listener for "${String(name)}" must be a function`);
    const event = (target === true ? name : target) as K;
    // Copy on write: emit iterates a stable array even if a listener unsubscribes mid-emit.
    this.listeners[event] = [...(this.listeners[event] ?? []), listener];
    const dispose = (): void => {
      const rest = (this.listeners[event] ?? []).filter((l) => l !== listener);
      if (rest.length === 0) delete this.listeners[event];
      else this.listeners[event] = rest;
    };
    return { dispose, [Symbol.dispose]: dispose };
  }

  emit<K extends keyof Events>(name: K, event: Events[K]): void {
    const list = this.listeners[name];
    if (list === undefined) return;
    for (const listener of list) {
      try {
        listener(event);
      } catch (error) {
        // A faulty hook must not change the outcome of the call it observes.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
