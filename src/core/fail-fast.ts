/**
 * Cheap fail-fast rejections. A policy that refuses work at once (it is open, full or
 * shedding) does so at high rates exactly when a system is in trouble; `new Error()` costs about 1 µs even
 * without a stack, and `Promise.reject()` before anyone listens costs Node's
 * unhandled-rejection bookkeeping on top. These build the error without the Error
 * constructor and reject only once the caller's handler is attached.
 */

type ErrorClass<E extends Error> = abstract new (...args: never[]) => E;

/**
 * A constructor of instances of `base` (same prototype chain: `instanceof`, `name`, brand
 * and `code` checks hold) made without running Error's constructor: no stack is captured,
 * and `stack` reads as `name: message`. The caller sets the class's own fields.
 */
export function stacklessErrorOf<E extends Error>(base: ErrorClass<E>): new (message: string) => E {
  class Stackless {
    #message: string;
    constructor(message: string) {
      this.#message = message;
    }
    get message(): string {
      return this.#message;
    }
    set message(value: string) {
      this.#message = value;
    }
    get stack(): string {
      return `${(this as unknown as Error).name}: ${this.#message}`;
    }
    set stack(value: string) {
      Object.defineProperty(this, 'stack', { value, writable: true, configurable: true });
    }
  }
  Object.setPrototypeOf(Stackless.prototype, base.prototype);
  return Stackless as unknown as new (message: string) => E;
}

/**
 * A thenable that rejects with its error when adopted. Promise.resolve() adopts it one
 * microtask later, after the caller has attached its handler, and the rejection is a call
 * to `reject`, not a `throw`: unwinding a throw inside a reaction costs about 250–400 ns.
 */
class RejectingThenable {
  constructor(private readonly error: unknown) {}
  then(_resolve: unknown, reject: (reason: unknown) => void): void {
    reject(this.error);
  }
}

/**
 * A promise rejected with `error` one microtask later, after the caller has attached its
 * handler: unlike Promise.reject(), no unhandled-rejection bookkeeping runs (about 500 ns),
 * and unlike a reaction that throws, nothing unwinds. A rejection nobody handles is still
 * reported as unhandled.
 */
export function rejectAfterAttach<T>(error: unknown): Promise<T> {
  return Promise.resolve(new RejectingThenable(error) as unknown as T);
}
