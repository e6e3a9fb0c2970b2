import type { Validator } from '../core/validate.js';
import { LimitStoreError, type StoreErrorMode } from './limit-store.js';
import { evaluatorFor, type Evaluator, type ScriptCallError } from './redis-scripts.js';

/**
 * The options both Redis limit stores share (client, prefix, timeout, onStoreError,
 * fleetSize), validated one way, and the error both raise under `onStoreError: 'fail'`.
 */

/** Validates `client` and `prefix`; the evaluator is undefined only when a problem was noted. */
export function readClientAndPrefix(
  v: Validator,
  o: Record<string, unknown>,
  defaultPrefix: string,
): { evaluator: Evaluator | undefined; prefix: string } {
  const evaluator = evaluatorFor(o.client);
  if (evaluator === undefined)
    v.problem('client', 'an ioredis client or a node-redis (v4+) client', o.client);
  let prefix = defaultPrefix;
  if (o.prefix !== undefined) {
    if (typeof o.prefix !== 'string' || o.prefix === '')
      v.problem('prefix', 'a non-empty string', o.prefix);
    else prefix = o.prefix;
  }
  return { evaluator, prefix };
}

/** Validates what applies when Redis fails: `timeout`, `onStoreError` and `fleetSize`. */
export function readStoreErrorOptions(
  v: Validator,
  o: Record<string, unknown>,
): { timeout: number; onStoreError: StoreErrorMode; fleetSize: number } {
  const timeout = v.duration('timeout', o.timeout, 1000, { min: 1, allowInfinity: true });
  const onStoreError = v.oneOf('onStoreError', o.onStoreError, ['fail', 'allow', 'local'], 'local');
  const fleetSize = v.int('fleetSize', o.fleetSize, 1, 1);
  return { timeout, onStoreError, fleetSize };
}

/** The refusal under `onStoreError: 'fail'`, naming the store and what Redis did. */
export function storeFailure(store: string, error: ScriptCallError): LimitStoreError {
  return new LimitStoreError(store, error.message, { cause: error.cause ?? error });
}
