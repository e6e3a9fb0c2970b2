/**
 * GCRA acquire for RedisRateLimitStore: KEYS[1] the limit's TAT (theoretical arrival time,
 * µs of Redis server time); ARGV interval µs, tolerance µs (burst × interval), longest wait µs.
 * Time is Redis's own (TIME), so hosts with skewed clocks still share one schedule. A slot
 * at most the longest wait away is taken (TAT moves on one interval) and the key expires
 * when its TAT passes, so an idle limit leaves nothing behind.
 * Replies {1, wait µs, new TAT, slot time µs} when granted, {0, wait µs} when refused.
 */
export const RATE_ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
local tat = v and tonumber(v) or now
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > tonumber(ARGV[3]) then return {0, wait} end
local next = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.floor((next - now) / 1000) + 2)
return {1, wait, next, now + wait}
`;

/**
 * Gives back a reservation whose caller left: KEYS[1] the TAT; ARGV the TAT the reservation
 * set, the interval µs. Only the newest reservation can be undone (a later one was placed
 * after it); otherwise nothing changes, so a slot another call holds is never freed.
 */
export const RATE_CANCEL = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', tonumber(ARGV[1]) - tonumber(ARGV[2])), 'KEEPTTL')
return 1
`;
