/**
 * Leases of RedisConcurrencyStore, all on one sorted set per limit (KEYS[1]): member = lease
 * id (random per process + a counter, so ids never repeat and a late release can only ever
 * remove its own lease), score = expiry in ms of Redis server time. Expired leases are
 * dropped before counting, so a holder that died frees its slot when its lease runs out.
 */

/** ARGV max, lease ttl ms, lease id. Replies {1, holders} when taken, {0, holders, ms until the first lease expires}. */
export const LEASE_ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, held, tonumber(first[2]) - now}
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, held + 1}
`;

/**
 * ARGV lease ttl ms, then the ids this process holds. Extends each lease still alive; an
 * expired one is not revived (its slot may already be counted as free). Replies the ids lost.
 */
export const LEASE_RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if expiry and tonumber(expiry) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    lost[#lost + 1] = ARGV[i]
  end
end
if redis.call('ZCARD', KEYS[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return lost
`;

/** ARGV lease id. Removes that lease only: 1 if it was still held, 0 if it had expired. */
export const LEASE_RELEASE = `
return redis.call('ZREM', KEYS[1], ARGV[1])
`;
