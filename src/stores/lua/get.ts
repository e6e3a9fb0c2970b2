/** get: KEYS[1] the entry. Replies the stored string (lock or record) or nil. */
export const GET = `
return redis.call('GET', KEYS[1])
`;
