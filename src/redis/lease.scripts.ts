/*
 * The Lua scripts behind a Redis gauge. Each gauge is one sorted set: member = lease id
 * (`instanceId:nonce:counter`, the nonce random per store, so no two stores ever use the same id),
 * score = the lease's expiry in Redis milliseconds (from `TIME`, never a client clock). A script
 * runs atomically, so "count the live leases, then add one" cannot race. The gauge's cap (the
 * limit every instance applies, changed at run time by `setLimit`) is a hash beside the set.
 * Per-key fairness adds a few sorted sets beside them (lease-partition.scripts.ts).
 */

import { ACQUIRE_KEYED, RELEASE_KEYED, RENEW_KEYED, TOKEN_OF } from './lease-partition.scripts';
import { PRIORITY_ROOM, RESERVE_OF } from './lease-priority.scripts';

/** Redis's clock in milliseconds; every script reads time here so clients' clocks never matter. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Keeps key `k` alive as long as the longest lease, and no longer: a gauge nobody uses leaves no
 * key behind. Only ever lengthens the key's life, so instances with different TTLs cannot cut
 * each other's leases short.
 */
const KEEP_ALIVE = `
local function keep_alive(k, ttl)
  if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
end
`;

/**
 * The gauge's cap: a hash `{ cap, configured }` beside the lease set (same hash tag), or the
 * caller's configured limit when none is stored.
 */
const CAP = `
local function cap_of(k, fallback)
  return tonumber(redis.call('HGET', k, 'cap')) or tonumber(fallback)
end
`;

/**
 * Takes a slot if one is free: drops expired leases (a dead instance's slots come back here),
 * counts the rest against the stored cap, adds the new lease. One round trip per attempt. A cap
 * lowered below the count refuses until enough leases are given back: none is ever revoked.
 *
 * An id already in the set is never granted (`NX`): re-scoring an existing member would admit a
 * caller without counting it, and extend someone else's lease. Ids are fresh per attempt and
 * random per store, so this only guards against a collision; the caller sees "full" and retries
 * with a new id.
 *
 * A call with more to say (more than 3 ARGV) may be refused for its level, failing fast
 * (lease-priority.scripts.ts), and a partitioned one is counted in its key's partition too, and
 * may be refused for its key (`ACQUIRE_KEYED`).
 *
 * KEYS[1] lease set, KEYS[2] cap; ARGV[1] lease id, ARGV[2] configured limit, ARGV[3] TTL in ms;
 * then ARGV[4] the caller's rank (0 critical … 3 low) or '' (priorities not counted), ARGV[5]
 * '1' if it named its level, ARGV[6] the instance's mean hold time (ms), ARGV[7..12] the
 * partition (see `ACQUIRE_KEYED`) or ''. Returns { 1 or 0, the cap applied }, and for a longer
 * call { …, reason (0 full, 1 key-over-share, 2 shed-priority), 1 if counted in an overflow
 * partition }.
 */
export const ACQUIRE_LEASE = `${NOW}${KEEP_ALIVE}${CAP}${TOKEN_OF}${RESERVE_OF}${PRIORITY_ROOM}
local ttl = tonumber(ARGV[3])
local cap = cap_of(KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local count = redis.call('ZCARD', KEYS[1])
if #ARGV <= 3 then
  if count >= cap then return { 0, cap } end
  if redis.call('ZADD', KEYS[1], 'NX', now + ttl, ARGV[1]) == 0 then return { 0, cap } end
  keep_alive(KEYS[1], ttl)
  return { 1, cap }
end
local hold = tonumber(ARGV[6])
local priority_ok = true
if ARGV[4] ~= '' then
  priority_ok = priority_room(tonumber(ARGV[4]), ARGV[5] == '1', hold, cap - count, cap, ttl)
end
if ARGV[7] == '' then
  if count >= cap then return { 0, cap, 0, 0 } end
  if not priority_ok then return { 0, cap, 2, 0 } end
  if redis.call('ZADD', KEYS[1], 'NX', now + ttl, ARGV[1]) == 0 then return { 0, cap, 0, 0 } end
  keep_alive(KEYS[1], ttl)
  return { 1, cap, 0, 0 }
end
${ACQUIRE_KEYED}`;

/**
 * Gives leases back and, when the gauge was full before (so someone may be waiting somewhere) and
 * waiting is in use, publishes one message so waiting instances re-try at once instead of polling.
 * Release and notification are one command.
 *
 * Partitioned leases also leave their key's partition (`RELEASE_KEYED`).
 *
 * KEYS[1] lease set, KEYS[2] cap; ARGV[1] channel, ARGV[2] configured limit, ARGV[3] '1' to
 * notify, ARGV[4..] lease ids. Returns how many leases were removed (0 for ids already expired or
 * never added: harmless).
 */
export const RELEASE_LEASES = `${CAP}${TOKEN_OF}${RELEASE_KEYED}
local before = redis.call('ZCARD', KEYS[1])
local removed = 0
for i = 4, #ARGV, 1000 do
  removed = removed + redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
for i = 4, #ARGV do release_keyed(ARGV[i]) end
if removed > 0 and ARGV[3] == '1' and before >= cap_of(KEYS[2], ARGV[2]) then
  redis.call('PUBLISH', ARGV[1], removed)
end
return removed
`;

/**
 * Pushes the expiry of every lease this instance holds on one gauge, in one call, and keeps the
 * gauge's cap alive as long (storing this instance's configured limit if the cap was lost). Plain
 * ZADD (not XX) re-adds a lease Redis lost (restarted without persistence, or expired during a
 * long pause): the slot is really in use, so counting it again errs on the safe side. Partitioned
 * leases are renewed (or re-added) in their key's partition as well (`RENEW_KEYED`).
 *
 * KEYS[1] lease set, KEYS[2] cap; ARGV[1] TTL in ms, ARGV[2] configured limit, ARGV[3..] lease
 * ids (maybe none). Returns { how many had to be re-added, the cap }.
 */
export const RENEW_LEASES = `${NOW}${KEEP_ALIVE}${TOKEN_OF}${RENEW_KEYED}
local ttl = tonumber(ARGV[1])
local expiry = now + ttl
local added = 0
local args = {}
for i = 3, #ARGV do
  renew_keyed(ARGV[i], expiry, ttl)
  args[#args + 1] = expiry
  args[#args + 1] = ARGV[i]
  if #args >= 1000 then
    added = added + redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
if #args > 0 then added = added + redis.call('ZADD', KEYS[1], unpack(args)) end
if #ARGV > 2 then keep_alive(KEYS[1], ttl) end
local cap = tonumber(redis.call('HGET', KEYS[2], 'cap'))
if cap == nil then
  cap = tonumber(ARGV[2])
  redis.call('HSET', KEYS[2], 'cap', cap, 'configured', cap)
end
keep_alive(KEYS[2], ttl)
return { added, cap }
`;

/**
 * At bootstrap: the newest configuration wins, and a cap set at run time survives restarts of
 * instances configured alike. When no cap is stored, or it came from another configured limit,
 * this instance's configured limit becomes the cap; otherwise the stored cap stays.
 *
 * KEYS[1] cap; ARGV[1] configured limit, ARGV[2] TTL in ms. Returns { the cap in effect, the cap
 * stored before or 0, the configured limit stored before or 0 }.
 */
export const SYNC_LIMIT = `${KEEP_ALIVE}
local stored = redis.call('HMGET', KEYS[1], 'cap', 'configured')
local cap = tonumber(stored[1]) or 0
local configured = tonumber(stored[2]) or 0
local mine = tonumber(ARGV[1])
local effective = cap
if cap == 0 or configured ~= mine then
  effective = mine
  redis.call('HSET', KEYS[1], 'cap', mine, 'configured', mine)
end
keep_alive(KEYS[1], tonumber(ARGV[2]))
return { effective, cap, configured }
`;

/**
 * Stores a cap for every instance and, when it is a raise, publishes on the gauge's channel so
 * instances with waiting callers re-try at once.
 *
 * KEYS[1] cap; ARGV[1] channel, ARGV[2] new cap, ARGV[3] configured limit (recorded if nothing
 * was stored), ARGV[4] TTL in ms. Returns the cap stored before, or 0.
 */
export const SET_LIMIT = `${KEEP_ALIVE}
local before = tonumber(redis.call('HGET', KEYS[1], 'cap')) or 0
local cap = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'cap', cap)
redis.call('HSETNX', KEYS[1], 'configured', ARGV[3])
keep_alive(KEYS[1], tonumber(ARGV[4]))
if cap > (before > 0 and before or tonumber(ARGV[3])) then redis.call('PUBLISH', ARGV[1], 0) end
return before
`;
