import type { Clock } from './clock.js';
import { EventHub, type EventNames, type Listener, type Subscription } from './events.js';
import { BasePolicy } from './pipeline.js';

/**
 * Base of every policy that publishes events: one `on()` for all of them, checking the
 * event name at run time (an unknown one is an error, not a listener that never fires).
 * `F`: what `execute` may resolve with besides fn's value (see Policy).
 */
export abstract class ObservablePolicy<Events extends object, F = never> extends BasePolicy<F> {
  /** The policy's listeners; subclasses `emit` into it, guarded by `has()` where costly. */
  protected readonly events: EventHub<Events>;

  constructor(clock: Clock | undefined, eventNames: EventNames<Events>) {
    super(clock);
    this.events = new EventHub(eventNames);
  }

  /**
   * Subscribes `listener` to the event `event` (see the policy's `…Events` interface for
   * names and payloads). Dispose the result, or hold it with `using`, to unsubscribe.
   */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): Subscription {
    return this.events.on(event, listener, this.kind);
  }
}
