/**
 * Wraps a Redis client so that every method call whose name matches `only` is recorded,
 * in order: tests assert how many round trips a store operation costs.
 */
export function counted<C extends object>(
  client: C,
  only: RegExp = /.*/,
): { client: C; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (only.test(String(prop))) calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { client: proxy, calls };
}
