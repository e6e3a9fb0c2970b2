/** release: KEYS[1] the entry; ARGV the lock value. Deletes the lock only if it still holds the key; replies 1 or 0. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`;
