// brakes ships no types; the benchmark uses only its constructor and exec().
declare module 'brakes' {
  export default class Brakes<T> {
    constructor(fn: () => Promise<T>, options?: { timeout?: number });
    exec(): Promise<T>;
  }
}
