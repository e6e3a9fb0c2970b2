// The inbound wrappers' policies report to the same metrics backend as dependency():
// shed requests and idempotent replays under the wrapper's `name` as the dependency label.
import type { DependencyMetrics } from '../metrics/recorder.js';
import type { IdempotencyPolicy } from '../policies/idempotency/idempotency.js';
import type { LoadShedderPolicy } from '../policies/load-shedder/load-shedder.js';

/** The `dependency` label of an inbound wrapper's series when it is given no `name`. */
export const DEFAULT_SERVER_METRICS_NAME = 'inbound';

/** Subscribes `recorder` to the wrapper's load shedder and idempotency policy, as dependency() does. */
export function wireServerMetrics(
  recorder: DependencyMetrics,
  shedder: LoadShedderPolicy | undefined,
  idempotency: IdempotencyPolicy | undefined,
): void {
  if (shedder !== undefined) {
    recorder.observeConcurrencyLimit(() => shedder.limit);
    shedder.on('shed', (e) => recorder.recordLoadShed(e.priority, e.reason));
  }
  if (idempotency !== undefined) {
    idempotency.on('executed', (e) => recorder.recordIdempotency(e.store, 'executed'));
    idempotency.on('replayed', (e) => recorder.recordIdempotency(e.store, 'replayed'));
    idempotency.on('in_progress', (e) => recorder.recordIdempotency(e.store, 'in_progress'));
    idempotency.on('key_reused', (e) => recorder.recordIdempotency(e.store, 'key_reused'));
  }
}
