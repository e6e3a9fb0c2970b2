/**
 * A tiny typed event hub. Publishing checks one array per event, so a policy with no
 * subscribers pays a property read; policies guard payload construction with `has()`.
 */

/** Returned by every `on(event, listener)` (and a store's `watch`): `dispose()` undoes it. */
export interface Disposable {
  /** Removes the listener (or stops watching); calling it again does nothing. */
  dispose(): void;
}

/**
 * A policy event listener. Listeners run synchronously; one that throws has its error
 * rethrown in a microtask, so a faulty hook never changes the call it observes.
 */
export type Listener<T> = (event: T) => void;

export class EventHub<Events extends object> {
  private readonly listeners: { [K in keyof Events]?: Listener<Events[K]>[] } = {};

  has<K extends keyof Events>(name: K): boolean {
    return this.listeners[name] !== undefined;
  }

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): Disposable {
    if (typeof listener !== 'function')
      throw new TypeError(`listener for "${String(name)}" must be a function`);
    // Copy on write: emit iterates a stable array even if a listener unsubscribes mid-emit.
    this.listeners[name] = [...(this.listeners[name] ?? []), listener];
    return {
      dispose: () => {
        const rest = (this.listeners[name] ?? []).filter((l) => l !== listener);
        if (rest.length === 0) delete this.listeners[name];
        else this.listeners[name] = rest;
      },
    };
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
