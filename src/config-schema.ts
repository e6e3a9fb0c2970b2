/**
 * JSON Schema (draft 2020-12) for a `dependencies()` config file, so that editors can
 * complete and check it. It covers the JSON-expressible options; functions (retryOn,
 * isFailure, stores…) are passed in code. `dependencies()` itself validates everything
 * again with messages that name the path.
 */
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

const int = (minimum: number) => ({ type: 'integer', minimum }) as const;
const ratio = { type: 'number', minimum: 0, maximum: 1 } as const;

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
      properties: { ratio, minPerSecond: { type: 'number', minimum: 0 }, window: duration },
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
          properties: { ms: duration, buckets: int(1) },
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
    halfOpenTimeout: durationOrInfinity,
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

const priorities = { enum: ['critical', 'high', 'normal', 'low'] } as const;

const loadShedder = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: {
      oneOf: [
        int(1),
        {
          type: 'object',
          required: ['algorithm'],
          properties: {
            algorithm: { enum: ['gradient', 'aimd', 'vegas'] },
            min: int(1),
            max: int(1),
            initial: int(1),
          },
        },
      ],
    },
    priorityShares: {
      type: 'object',
      additionalProperties: false,
      properties: { critical: ratio, high: ratio, normal: ratio, low: ratio },
    },
    minRemainingBudget: duration,
    maxEventLoopDelay: duration,
    retryAfter: duration,
    queue: {
      type: 'object',
      additionalProperties: false,
      required: ['maxSize'],
      properties: {
        maxSize: int(0),
        timeout: duration,
        overloadTimeout: duration,
        interval: duration,
        lifo: { type: 'boolean' },
      },
    },
  },
} as const;

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
  $defs: {
    duration,
    dependency: {
      type: 'object',
      additionalProperties: false,
      properties: {
        budget: durationOrInfinity,
        timeout: durationOrInfinity,
        retry: { oneOf: [retry, { const: false }] },
        circuitBreaker: { oneOf: [circuitBreaker, { const: false }] },
        bulkhead,
        loadShedder: { oneOf: [loadShedder, { const: false }] },
        hedge: {
          type: 'object',
          additionalProperties: false,
          required: ['delay'],
          properties: { delay: durationOrInfinity, maxHedges: int(1) },
        },
        fallback: {
          type: 'object',
          additionalProperties: false,
          required: ['value'],
          properties: { value: {} },
        },
        idempotency: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ttl: duration,
            lockTtl: duration,
            onInProgress: { enum: ['reject', 'wait'] },
            onStoreError: { enum: ['fail', 'bypass'] },
            storeFailures: { type: 'boolean' },
            scope: { type: 'string' },
          },
        },
      },
    },
    priority: priorities,
  },
  type: 'object',
  properties: { defaults: { $ref: '#/$defs/dependency' } },
  additionalProperties: { $ref: '#/$defs/dependency' },
} as const;
