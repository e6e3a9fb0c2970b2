import type { Context } from './context.js';

/**
 * Returns the context of the work running now (e.g. the incoming request), if any.
 * Usually backed by an AsyncLocalStorage; see `setAmbientContextProvider`.
 */
export type AmbientContextProvider = () => Context | undefined;

interface AmbientSlot {
  provider: AmbientContextProvider | undefined;
}

// The slot lives on globalThis under a registry symbol: when the ESM and the CJS copies of
// bulwark are both loaded, a provider installed by one copy's HTTP server is still seen
// by the other copy's `execute`.
const SLOT_KEY = Symbol.for('bulwark.ambientContext');
const holder = globalThis as unknown as Record<symbol, AmbientSlot | undefined>;

/** @internal read by `startCall` on every call: one property load while no provider is set. */
export const ambientSlot: AmbientSlot = (holder[SLOT_KEY] ??= { provider: undefined });

/**
 * Installs the function `execute` consults, when a call has no explicit `parent`, for the
 * context it should inherit its deadline, abort and priority from (the HTTP server wrapper
 * installs an AsyncLocalStorage reader). Returns the provider it replaced. Pass `undefined`
 * to remove it.
 *
 * Install one for work that does not arrive over bulwark's HTTP wrappers (a queue
 * consumer, a job runner), so that calls deep inside it need no `{ parent: ctx }`.
 *
 * @example
 * ```ts
 * import { AsyncLocalStorage } from 'node:async_hooks';
 * import { dependency, setAmbientContextProvider, type Context } from 'bulwark';
 *
 * const current = new AsyncLocalStorage<Context>();
 * setAmbientContextProvider(() => current.getStore());
 *
 * const job = dependency('nightly-report', { budget: '5m' });
 * const warehouse = dependency('warehouse', { retry: {} });
 * await job.execute((ctx) =>
 *   // Inherits the job's remaining budget and abort, with no `parent` option.
 *   current.run(ctx, () => warehouse.execute(() => fetch('https://warehouse.internal/report'))),
 * );
 * ```
 */
export function setAmbientContextProvider(
  provider: AmbientContextProvider | undefined,
): AmbientContextProvider | undefined {
  const previous = ambientSlot.provider;
  ambientSlot.provider = provider;
  return previous;
}
