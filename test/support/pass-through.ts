import type { AnyPolicy } from '../../src/core/pipeline.js';

/**
 * A part that only passes the call on, with no step of its own: put between two parts, it
 * ends whatever they would compose together (a lazy budget, a hand-over chain), so a test
 * can compare a pipeline with the same pipeline taking the ordinary path.
 */
export const passThrough: AnyPolicy = {
  kind: 'plain',
  clock: undefined,
  execute: () => Promise.reject(new Error('not used')),
  run: (ctx, fn, next) => next.invoke(ctx, fn),
};
