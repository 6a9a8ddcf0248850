/*
 * The Lua scripts behind a Redis gauge. Each gauge is one sorted set: member = lease id
 * (`instanceId:nonce:counter`, the nonce random per store, so no two stores ever use the same id),
 * score = the lease's expiry in Redis milliseconds (from `TIME`, never a client clock). A script
 * runs atomically, so "count the live leases, then add one" cannot race.
 */

/** Redis's clock in milliseconds; every script reads time here so clients' clocks never matter. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Keeps the set alive as long as its longest lease, and no longer: a gauge nobody uses leaves no
 * key behind. Only ever lengthens the key's life, so instances with different TTLs cannot cut
 * each other's leases short.
 */
const KEEP_ALIVE = `
local pttl = redis.call('PTTL', KEYS[1])
if pttl < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
`;

/**
 * Takes a slot if one is free: drops expired leases (a dead instance's slots come back here),
 * counts the rest, adds the new lease. One round trip per attempt.
 *
 * An id already in the set is never granted (`NX`): re-scoring an existing member would admit a
 * caller without counting it, and extend someone else's lease. Ids are fresh per attempt and
 * random per store, so this only guards against a collision; the caller sees "full" and retries
 * with a new id.
 *
 * KEYS[1] lease set; ARGV[1] lease id, ARGV[2] limit, ARGV[3] TTL in ms. Returns 1 or 0.
 */
export const ACQUIRE_LEASE = `${NOW}
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
if redis.call('ZADD', KEYS[1], 'NX', now + ttl, ARGV[1]) == 0 then return 0 end
${KEEP_ALIVE}
return 1
`;

/**
 * Gives leases back and, when the gauge was full before (so someone may be waiting somewhere) and
 * waiting is in use, publishes one message so waiting instances re-try at once instead of polling.
 * Release and notification are one command.
 *
 * KEYS[1] lease set; ARGV[1] channel, ARGV[2] limit, ARGV[3] '1' to notify, ARGV[4..] lease ids.
 * Returns how many leases were removed (0 for ids already expired or never added: harmless).
 */
export const RELEASE_LEASES = `
local before = redis.call('ZCARD', KEYS[1])
local removed = 0
for i = 4, #ARGV, 1000 do
  removed = removed + redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if removed > 0 and ARGV[3] == '1' and before >= tonumber(ARGV[2]) then
  redis.call('PUBLISH', ARGV[1], removed)
end
return removed
`;

/**
 * Pushes the expiry of every lease this instance holds on one gauge, in one call. Plain ZADD (not
 * XX) re-adds a lease Redis lost (restarted without persistence, or expired during a long pause):
 * the slot is really in use, so counting it again errs on the safe side.
 *
 * KEYS[1] lease set; ARGV[1] TTL in ms, ARGV[2..] lease ids. Returns how many had to be re-added.
 */
export const RENEW_LEASES = `${NOW}
local ttl = tonumber(ARGV[1])
local expiry = now + ttl
local added = 0
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = expiry
  args[#args + 1] = ARGV[i]
  if #args >= 1000 then
    added = added + redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
if #args > 0 then added = added + redis.call('ZADD', KEYS[1], unpack(args)) end
${KEEP_ALIVE}
return added
`;
