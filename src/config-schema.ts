import { PRIORITIES } from './core/context.js';
import { rateLimitSchema } from './policies/rate-limit/config.js';

/**
 * The schema's definitions. Built on the first read of `$defs`, not at import: few apps
 * read the schema at run time, and every app pays for what its import runs.
 */
function definitions() {
  const duration = {
    description: "ms as a number, or a string such as '250ms', '2s', '1m', '1h'",
    oneOf: [
      { type: 'number', minimum: 0 },
      { type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$' },
    ],
  } as const;

  const durationOrInfinity = {
    description: "a duration, or 'Infinity' (no limit, written out explicitly)",
    oneOf: [...duration.oneOf, { const: 'Infinity' }],
  } as const;

  /** A duration of at least 1 ms. */
  const positiveDuration = {
    description: duration.description,
    oneOf: [{ type: 'number', minimum: 1 }, duration.oneOf[1]],
  } as const;

  /** A duration of at least 1 ms, or 'Infinity'. */
  const positiveDurationOrInfinity = {
    description: durationOrInfinity.description,
    oneOf: [...positiveDuration.oneOf, { const: 'Infinity' }],
  } as const;

  const int = (minimum: number) => ({ type: 'integer', minimum }) as const;
  const ratio = { type: 'number', minimum: 0, maximum: 1 } as const;
  /** A load shedder's priority share: a fraction above 0. */
  const share = { type: 'number', exclusiveMinimum: 0, maximum: 1 } as const;

  /** Exponential growth: retry backoff and the breaker's halfOpenAfter share it. */
  const growth = {
    initial: duration,
    multiplier: { type: 'number', minimum: 1 },
    max: duration,
  } as const;

  const backoff = {
    oneOf: [
      duration,
      {
        type: 'object',
        additionalProperties: false,
        properties: { ...growth, jitter: { enum: ['full', 'equal', 'decorrelated', 'none'] } },
      },
    ],
  } as const;

  const retry = {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxAttempts: int(1),
      backoff,
      minAttemptTime: duration,
      retryBudget: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ratio,
          minPerSecond: { type: 'number', minimum: 0 },
          window: positiveDuration,
        },
      },
    },
  } as const;

  const circuitBreaker = {
    type: 'object',
    additionalProperties: false,
    properties: {
      consecutiveFailures: int(1),
      failureRate: ratio,
      window: {
        oneOf: [
          {
            type: 'object',
            additionalProperties: false,
            required: ['calls'],
            properties: { calls: int(1) },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['ms'],
            properties: { ms: positiveDuration, buckets: int(1) },
          },
        ],
      },
      minimumCalls: int(1),
      slowCall: {
        type: 'object',
        additionalProperties: false,
        required: ['ms', 'rate'],
        properties: { ms: duration, rate: ratio },
      },
      halfOpenAfter: {
        oneOf: [duration, { type: 'object', additionalProperties: false, properties: growth }],
      },
      halfOpenMaxCalls: int(1),
      halfOpenSuccesses: int(1),
      halfOpenTimeout: positiveDurationOrInfinity,
      whileOpen: {
        type: 'object',
        additionalProperties: false,
        properties: { wait: { type: 'boolean' }, maxWait: durationOrInfinity, maxQueue: int(0) },
      },
      slowStart: {
        oneOf: [
          { type: 'object', additionalProperties: false, properties: { window: duration } },
          { const: false },
        ],
      },
      name: { type: 'string' },
    },
  } as const;

  const bulkhead = {
    type: 'object',
    additionalProperties: false,
    required: ['maxConcurrent'],
    properties: {
      maxConcurrent: int(1),
      maxQueue: int(0),
      queueTimeout: durationOrInfinity,
      name: { type: 'string' },
    },
  } as const;

  /** A part's options, or `false`: off (e.g. to turn off a part the `defaults` turn on). */
  const orOff = <T extends object>(section: T) => ({ oneOf: [section, { const: false }] }) as const;

  const priorities = { enum: PRIORITIES } as const;

  /** min/max/initial of an adaptive limit (max ≥ min and initial within them: checked in code). */
  const bounds = { min: int(1), max: int(1), initial: int(1) } as const;
  const smoothing = { type: 'number', exclusiveMinimum: 0, maximum: 1 } as const;

  const gradientLimit = {
    type: 'object',
    additionalProperties: false,
    properties: {
      algorithm: { const: 'gradient' },
      ...bounds,
      smoothing,
      tolerance: { type: 'number', minimum: 1 },
      longWindow: positiveDuration,
      queueSize: { type: 'number', minimum: 0 },
    },
  } as const;

  const aimdLimit = {
    type: 'object',
    additionalProperties: false,
    required: ['algorithm'],
    properties: {
      algorithm: { const: 'aimd' },
      ...bounds,
      increase: { type: 'number', exclusiveMinimum: 0 },
      backoffRatio: { type: 'number', minimum: 0.1, exclusiveMaximum: 1 },
      latencyThreshold: durationOrInfinity,
    },
  } as const;

  /** beta > alpha is checked in code. */
  const vegasLimit = {
    type: 'object',
    additionalProperties: false,
    required: ['algorithm'],
    properties: {
      algorithm: { const: 'vegas' },
      ...bounds,
      alpha: { type: 'number', minimum: 0 },
      beta: { type: 'number', minimum: 0 },
      smoothing,
      probeMultiplier: int(1),
    },
  } as const;

  const loadShedder = {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: { oneOf: [int(1), gradientLimit, aimdLimit, vegasLimit] },
      priorityShares: {
        type: 'object',
        additionalProperties: false,
        properties: { critical: share, high: share, normal: share, low: share },
      },
      minRemainingBudget: duration,
      maxEventLoopDelay: durationOrInfinity,
      retryAfter: duration,
      queue: {
        type: 'object',
        additionalProperties: false,
        required: ['maxSize'],
        properties: {
          maxSize: int(0),
          timeout: durationOrInfinity,
          overloadTimeout: duration,
          interval: duration,
          lifo: { type: 'boolean' },
        },
      },
    },
  } as const;

  return {
    duration,
    dependency: {
      type: 'object',
      additionalProperties: false,
      properties: {
        budget: positiveDurationOrInfinity,
        timeout: positiveDurationOrInfinity,
        retry: orOff(retry),
        circuitBreaker: orOff(circuitBreaker),
        bulkhead: orOff(bulkhead),
        rateLimit: orOff(rateLimitSchema(duration, durationOrInfinity)),
        loadShedder: orOff(loadShedder),
        hedge: orOff({
          type: 'object',
          additionalProperties: false,
          required: ['delay'],
          properties: { delay: durationOrInfinity, maxHedges: int(0) },
        }),
        fallback: orOff({
          type: 'object',
          additionalProperties: false,
          required: ['value'],
          properties: { value: {} },
        }),
        idempotency: orOff({
          type: 'object',
          additionalProperties: false,
          properties: {
            ttl: positiveDuration,
            lockTtl: positiveDuration,
            onInProgress: { enum: ['reject', 'wait'] },
            onStoreError: { enum: ['fail', 'bypass'] },
            storeFailures: { type: 'boolean' },
            scope: { type: 'string' },
          },
        }),
      },
    },
    priority: priorities,
  } as const;
}

type Definitions = ReturnType<typeof definitions>;

/**
 * JSON Schema (draft 2020-12) for a `dependencies()` config file: point an editor at it
 * to get completion and checks while writing the file, or validate configs in CI. It
 * covers the JSON-expressible options only; `dependencies()` still validates everything.
 *
 * @example
 * ```ts
 * import { writeFileSync } from 'node:fs';
 * import { Ajv2020 } from 'ajv/dist/2020.js';
 * import { dependencyConfigSchema } from 'bulwark';
 *
 * // For editors: map resilience.json to this file (in VS Code, the `json.schemas` setting).
 * writeFileSync('resilience.schema.json', JSON.stringify(dependencyConfigSchema, null, 2));
 *
 * const validate = new Ajv2020({ strict: false }).compile(dependencyConfigSchema);
 * validate({ payments: { retry: { maxAttempts: 'three' } } }); // false
 * ```
 */
export const dependencyConfigSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:bulwark:dependencies-config',
  title: 'bulwark dependencies',
  description: 'Per-dependency resilience policies for bulwark dependencies().',
  get $defs(): Definitions {
    const defs = definitions();
    // From now on a plain data property, as if the schema had been built whole at import.
    Object.defineProperty(this, '$defs', {
      value: defs,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    return defs;
  },
  type: 'object',
  properties: { defaults: { $ref: '#/$defs/dependency' } },
  additionalProperties: { $ref: '#/$defs/dependency' },
} as const;
