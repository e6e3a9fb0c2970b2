type RandomUUID = () => string;

let uuid: RandomUUID | undefined;

/**
 * A random UUID for a call that reads `ctx.idempotencyKey` without giving one. node:crypto
 * costs milliseconds to load: `import 'bulwark'` must not pay that for a key most calls
 * never read, so it is loaded on the first key.
 */
export function randomKey(): string {
  return (uuid ??= loadRandomUUID())();
}

function loadRandomUUID(): RandomUUID {
  // Node ≥ 20.16 loads a builtin synchronously from ESM and CJS alike; older 20.x has
  // the same function on the Web Crypto global.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof get === 'function')
    return (get('node:crypto') as { randomUUID: RandomUUID }).randomUUID;
  const web = (globalThis as unknown as { crypto: { randomUUID(): string } }).crypto;
  return () => web.randomUUID();
}
