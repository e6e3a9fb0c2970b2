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

const RESOLVED = Promise.resolve();

/**
 * A promise rejected with `error` one reaction later, after the caller has attached its
 * handler: unlike Promise.reject(), no unhandled-rejection bookkeeping runs.
 */
export function rejectAfterAttach<T>(error: unknown): Promise<T> {
  return RESOLVED.then(() => {
    throw error;
  });
}
