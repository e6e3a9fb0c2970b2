/**
 * claim, for Redis before 7.0 (newer servers get the same effect from the native
 * `SET key lock PX lockTtl NX GET`): KEYS[1] the entry; ARGV the lock value ('p' + token),
 * lockTtl ms.
 * An entry is one string: a lock `p<token>` (the token carries the fingerprint) or a
 * record `c<outcome><fingerprint length>:<fingerprint><body>`, written and parsed by the
 * client, so the script does only what must be atomic. Expiry is the key's own PX: a
 * crashed holder's lock and an old record disappear on Redis time, not a client's clock.
 * Replies nil when claimed, {lock, pttl} while in progress, {record} when completed.
 */
export const CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return false
end
if string.byte(v, 1) == 112 then return {v, redis.call('PTTL', KEYS[1])} end
return {v}
`;
