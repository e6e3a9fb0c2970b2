// The request context, made ambient through AsyncLocalStorage: every execute inside a
// request's handler inherits what is left of its deadline without passing ctx down.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ambientSlot,
  setAmbientContextProvider,
  type AmbientContextProvider,
} from '../core/ambient.js';
import type { Context } from '../core/context.js';

// One AsyncLocalStorage for every copy of bulwark in the process (ESM and CJS), found
// under a registry symbol: a request started by one copy is seen by the other's execute.
const ALS_KEY = Symbol.for('bulwark.http.requestContext');
const PROVIDER_MARK = Symbol.for('bulwark.http.provider');
const registry = globalThis as unknown as Record<symbol, unknown>;
const als = (registry[ALS_KEY] ??= new AsyncLocalStorage<Context>()) as AsyncLocalStorage<Context>;

/** Makes the request context ambient for `execute` (once per process, whichever copy comes first). */
export function installProvider(): void {
  const current = ambientSlot.provider as
    (AmbientContextProvider & { [PROVIDER_MARK]?: true }) | undefined;
  if (current?.[PROVIDER_MARK]) return;
  // A provider someone else installed still answers outside our requests.
  const provider: AmbientContextProvider & { [PROVIDER_MARK]?: true } =
    current === undefined ? () => als.getStore() : () => als.getStore() ?? current();
  provider[PROVIDER_MARK] = true;
  setAmbientContextProvider(provider);
}

/**
 * The context of the request being served (inside a bulwark handler or middleware), if any.
 *
 * @example
 * ```ts
 * import { requestContext } from 'bulwark/http';
 *
 * // Deep in a request's call tree, without passing ctx down:
 * const ctx = requestContext();
 * console.log(ctx ? `${ctx.remaining()} ms left for this request` : 'not inside a request');
 * ```
 */
export function requestContext(): Context | undefined {
  return als.getStore();
}

/** @internal Runs `fn` with `ctx` as the request context (adapters whose hooks lose it). */
export function runInRequestContext<T>(ctx: Context, fn: () => T): T {
  return als.run(ctx, fn);
}

/**
 * Runs `fn` outside the current request's context: calls made there do not inherit the
 * request's deadline and are not cancelled when the request ends (background work).
 *
 * @example
 * ```ts
 * import { dependency } from 'bulwark';
 * import { bulwarkHandler, outsideRequest } from 'bulwark/http';
 *
 * const audit = dependency('audit-log', { budget: '30s', retry: { maxAttempts: 5 } });
 * const handler = bulwarkHandler(async (_req, res) => {
 *   res.end('ok');
 *   // Must outlive the response: not cancelled when it ends, not bound by its deadline.
 *   outsideRequest(() =>
 *     audit.execute(() => fetch('https://audit.internal/events', { method: 'POST' })),
 *   ).catch((error: unknown) => console.error('audit event lost', error));
 * });
 * ```
 */
export function outsideRequest<T>(fn: () => T): T {
  return als.exit(fn);
}

/** Scopes of requests being served, read by the idempotency policy's scope option. */
const scopes = new WeakMap<Context, string>();

/** @internal Sets the idempotency scope of the request whose context is `ctx`. */
export function setRequestScope(ctx: Context, scope: string): void {
  scopes.set(ctx, scope);
}

/** @internal The idempotency scope of the request being served, if any. */
export function currentRequestScope(): string | undefined {
  const ctx = als.getStore();
  return ctx === undefined ? undefined : scopes.get(ctx);
}
