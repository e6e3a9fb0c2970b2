import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { PRIORITIES } from '../src/core/context.js';
import { ConfigError, type ConfigProblem } from '../src/core/errors.js';
import { dependencyConfigSchema } from '../src/config-schema.js';
import { dependencies } from '../src/dependency.js';
import { dependencyConfigArb } from '../src/testing/arbitraries.js';
import { VirtualClock } from '../src/testing/index.js';

// The JSON Schema is what editors and CI check a config file against; dependencies() is
// what runs. For every JSON-expressible config, both must say the same thing.

const validateSchema = new Ajv2020({ strict: false }).compile(dependencyConfigSchema);

function schemaAccepts(config: unknown): boolean {
  return validateSchema(config);
}

/** JSON Schema cannot compare two fields: such checks (timeout ≤ budget, min ≤ max…) are the validator's alone. */
const CROSS_FIELD = [
  'an attempt timeout ≤',
  'a duration ≥ backoff.initial',
  'a duration ≥ halfOpenAfter.initial',
  'integer ≤ window.calls',
  'an integer ≥ min',
  'an integer in [min, max]',
  'a number > alpha',
];
const crossField = (p: ConfigProblem): boolean =>
  CROSS_FIELD.some((prefix) => p.expected?.startsWith(prefix) === true);

function validatorAccepts(config: unknown): boolean {
  try {
    dependencies(config as never, { clock: new VirtualClock() });
    return true;
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.every(crossField);
    throw error;
  }
}

/** The verdicts of both sides, with ajv's errors when they differ (to read the counterexample). */
function verdicts(config: unknown): { schema: boolean; validator: boolean } {
  return { schema: schemaAccepts(config), validator: validatorAccepts(config) };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value inside `value` (objects and arrays included), root excluded. */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [string | number, Json][] = Array.isArray(value)
    ? value.map((v, i) => [i, v])
    : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
}

function setAt(root: Json, path: (string | number)[], replace: (old: Json) => Json): Json {
  if (path.length === 0) return replace(root);
  const [head, ...rest] = path;
  if (Array.isArray(root)) {
    const copy = [...root];
    copy[head as number] = setAt(copy[head as number] as Json, rest, replace);
    return copy;
  }
  const obj = root as Record<string, Json>;
  return { ...obj, [head as string]: setAt(obj[head as string] as Json, rest, replace) };
}

/** Ways a hand-written config goes wrong. */
const breakage = fc.constantFrom<(old: Json) => Json>(
  () => 'three',
  () => true,
  () => [],
  () => ({}),
  () => null,
  () => -1,
  () => -0.5,
  () => 1.5,
  () => 0,
  () => 2.5,
  () => '10 parsecs',
  () => '5 days',
  () => '',
  () => '-1s',
  () => 'Infinity',
  (old) =>
    old !== null && typeof old === 'object' && !Array.isArray(old) ? { ...old, oops: 1 } : old,
);

const dependencyConfig = dependencyConfigArb({ maxBudget: 60_000 });
const asJson = (config: unknown): Json => JSON.parse(JSON.stringify(config)) as Json;

/** A valid config from the shared arbitrary, as it reads back from a JSON file. */
const validConfig = fc
  .record({
    svc: dependencyConfig,
    defaults: fc.option(dependencyConfig, { nil: undefined }),
  })
  .map(asJson);

/**
 * One section (a dependency's, or the defaults) with one value somewhere replaced by a
 * likely mistake. Alone: a dependency's section may be partial where the defaults fill
 * it in, which the schema cannot follow (it checks each section by itself).
 */
const brokenConfig = fc
  .tuple(fc.constantFrom('svc', 'defaults'), dependencyConfig, fc.nat(), breakage)
  .map(([name, section, index, broken]) => {
    const config = asJson({ [name]: section });
    const paths = pathsOf(config);
    return setAt(config, paths[index % paths.length]!, broken);
  });

describe('dependencyConfigSchema and dependencies() agree', () => {
  it('both accept every config the shared arbitrary makes', () => {
    fc.assert(
      fc.property(validConfig, (config) => {
        expect(verdicts(config)).toEqual({ schema: true, validator: true });
      }),
      { numRuns: 300 },
    );
  });

  it('accept and reject the same broken configs', () => {
    fc.assert(
      fc.property(brokenConfig, (config) => {
        const { schema, validator } = verdicts(config);
        expect({ config, schema, errors: validateSchema.errors }).toEqual({
          config,
          schema: validator,
          errors: validateSchema.errors,
        });
      }),
      { numRuns: 2_000 },
    );
  });

  it.each<[string, unknown]>([
    ['unknown top-level key', { p: { retries: 3 } }],
    ['a negative budget', { p: { budget: -5 } }],
    ['a bad duration string', { p: { budget: '10 parsecs' } }],
    ['a failure rate above 1', { p: { circuitBreaker: { failureRate: 1.5 } } }],
    ['a bulkhead without maxConcurrent', { p: { bulkhead: {} } }],
    ['a fallback without value', { p: { fallback: {} } }],
    ['a priority share below 0', { p: { loadShedder: { priorityShares: { low: -0.1 } } } }],
    ['a string for maxAttempts', { p: { retry: { maxAttempts: 'three' } } }],
    ['a dependency that is not an object', { p: 3 }],
  ])('both reject %s', (_name, config) => {
    expect(verdicts(config)).toEqual({ schema: false, validator: false });
  });

  it.each<[string, unknown]>([
    ['an empty config', {}],
    ['defaults only', { defaults: { budget: '2s' } }],
    ['Infinity written out', { p: { budget: 'Infinity', timeout: '1s' } }],
    ['retry turned off', { defaults: { retry: { maxAttempts: 3 } }, p: { retry: false } }],
  ])('both accept %s', (_name, config) => {
    expect(verdicts(config)).toEqual({ schema: true, validator: true });
  });

  it('names the priorities of core/context.ts, in its order', () => {
    expect(dependencyConfigSchema.$defs.priority.enum).toEqual(PRIORITIES);
  });
});

describe('dependencyConfigSchema at import', () => {
  /** A copy of the module no one has read yet. */
  async function freshSchema(): Promise<typeof dependencyConfigSchema> {
    vi.resetModules();
    const mod = await import('../src/config-schema.js');
    return mod.dependencyConfigSchema;
  }

  it('builds its definitions on the first read of $defs, then keeps them as plain data', async () => {
    const schema = await freshSchema();
    expect(Object.getOwnPropertyDescriptor(schema, '$defs')?.get).toBeTypeOf('function');
    const defs = schema.$defs;
    expect(defs.priority.enum).toEqual(PRIORITIES);
    expect(Object.getOwnPropertyDescriptor(schema, '$defs')).toEqual({
      value: defs,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    expect(schema.$defs).toBe(defs);
  });

  it('serializes, spreads and clones the same before and after the first read', async () => {
    const unread = [await freshSchema(), await freshSchema(), await freshSchema()];
    const text = JSON.stringify(unread[0]);
    expect(text).toBe(JSON.stringify(dependencyConfigSchema));
    expect(JSON.parse(text)).toEqual(dependencyConfigSchema);
    expect(Object.keys(unread[0]!)).toEqual([
      '$schema',
      '$id',
      'title',
      'description',
      '$defs',
      'type',
      'properties',
      'additionalProperties',
    ]);
    expect({ ...unread[1] }).toEqual(dependencyConfigSchema);
    expect(structuredClone(unread[2])).toEqual(dependencyConfigSchema);
  });

  it('validates configs the same through ajv when ajv reads it first', async () => {
    const validate = new Ajv2020({ strict: false }).compile(await freshSchema());
    fc.assert(
      fc.property(fc.oneof(validConfig, brokenConfig), (config) => {
        expect(validate(config)).toBe(validateSchema(config));
      }),
      { numRuns: 200 },
    );
  });
});
