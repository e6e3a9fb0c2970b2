// Type-level tests: `tsc --noEmit` (npm run typecheck) checks them; vitest runs the shells.
import { describe, expectTypeOf, it } from 'vitest';
import { dependencies, dependency, fallback, pipeline, retry, timeout } from '../../src/index.js';

describe('fallback result types', () => {
  it('a fallback value widens the result to T | F', () => {
    expectTypeOf(fallback('dflt').execute(async () => 42)).toEqualTypeOf<
      Promise<number | string>
    >();
    // @ts-expect-error the fallback may resolve a string: Promise<number> must not compile
    const narrow: Promise<number> = fallback('dflt').execute(async () => 42);
    void narrow.catch(() => {});
  });

  it('a fallback function widens the result by what it returns', () => {
    const policy = fallback((error: unknown) => ({ error: String(error) }));
    expectTypeOf(policy.execute(() => 1)).toEqualTypeOf<Promise<number | { error: string }>>();
  });

  it('a fallback of the same type keeps T', () => {
    expectTypeOf(fallback(0).execute(() => 42)).toEqualTypeOf<Promise<number>>();
  });

  it('policies without a fallback keep T', () => {
    expectTypeOf(retry().execute(() => 42)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(pipeline(retry(), timeout(10)).execute(() => 42)).toEqualTypeOf<Promise<number>>();
  });

  it('a pipeline carries its fallback into its result type', () => {
    const guarded = pipeline(fallback({ degraded: true as const }), retry(), timeout(10));
    expectTypeOf(guarded.execute(() => 42)).toEqualTypeOf<Promise<number | { degraded: true }>>();
    const nested = pipeline(timeout(50), guarded);
    expectTypeOf(nested.execute(() => 'x')).toEqualTypeOf<Promise<string | { degraded: true }>>();
  });

  it('dependency() and dependencies() carry a configured fallback value', () => {
    expectTypeOf(dependency('p', { fallback: { value: 'none' } }).execute(() => 1)).toEqualTypeOf<
      Promise<number | string>
    >();
    expectTypeOf(dependency('p', { budget: '1s' }).execute(() => 1)).toEqualTypeOf<
      Promise<number>
    >();
    expectTypeOf(dependency('p').execute(() => 1)).toEqualTypeOf<Promise<number>>();

    const deps = dependencies({
      search: { fallback: { value: null } },
      payments: { budget: '1s' },
    });
    expectTypeOf(deps.search.execute(() => 1)).toEqualTypeOf<Promise<number | null>>();
    expectTypeOf(deps.payments.execute(() => 1)).toEqualTypeOf<Promise<number>>();

    const withDefault = dependencies({ defaults: { fallback: { value: -1 } }, a: {} });
    expectTypeOf(withDefault.a.execute(() => 'x')).toEqualTypeOf<Promise<string | number>>();
  });

  it('configs with a fallback still refuse unknown keys at compile time', () => {
    // Never run: only compiled (each would throw a ConfigError at run time too).
    const compileOnly = (): void => {
      // @ts-expect-error a misspelt section key
      dependencies({ a: { budgt: '1s', fallback: { value: 1 } } });
      // @ts-expect-error a misspelt key next to a fallback
      dependency('p', { fallback: { value: 1 }, budgt: '1s' });
    };
    void compileOnly;
  });
});
