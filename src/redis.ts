// Public API of 'bulwark/redis': the Redis idempotency store. It imports neither ioredis
// nor redis: it takes the client the application already has.
export {
  RedisStore,
  redisStore,
  type IoRedisClientLike,
  type NodeRedisClientLike,
  type RedisClientLike,
  type RedisStoreOptions,
} from './stores/redis.js';
export { RedisRateLimitStore, type RedisRateLimitStoreOptions } from './stores/redis-rate-limit.js';
export {
  RedisConcurrencyStore,
  type RedisConcurrencyStoreOptions,
} from './stores/redis-concurrency.js';
