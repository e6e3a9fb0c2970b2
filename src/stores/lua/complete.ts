/**
 * complete: KEYS[1] the entry; ARGV the lock value ('p' + token), the record, ttl ms.
 * Writes the record only while that exact lock holds the key (fencing: an expired holder
 * finds the key gone or re-claimed under another token). Replies 1 when stored, else 0.
 */
export const COMPLETE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
`;
