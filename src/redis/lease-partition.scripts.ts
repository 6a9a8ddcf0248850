/*
 * Per-key fairness in the lease scripts (lease.scripts.ts). A partitioned lease's id ends in
 * `#<partition>#<its length in bytes>` (see `keyedLeaseId`), so every script finds its partition
 * from the id alone. Beside the gauge's lease set `L` (all under the gauge's hash tag, so a Cluster
 * keeps them on one slot; what follows the tag never changes the slot):
 *
 * - `L:k:<partition>`: that partition's leases, a sorted set scored like `L` (expiry, Redis time);
 * - `L:keys`: the live keys (member = partition, score = its latest lease expiry), at most
 *   `maxKeys` of them; `L:fixed`: likewise the live overflow partitions (`o:<n>`) and the
 *   partition of calls without a key (`u`).
 *
 * Every one carries a TTL as long as its longest lease (renewals lengthen it), expired members are
 * dropped before any count, and a partition whose last lease goes leaves both sets: an idle key,
 * or the keys of a dead instance, leave nothing behind within one TTL. No timer runs in Redis.
 */

/**
 * Lua: the partition named in lease id `id` (nil for an unpartitioned lease); the live set a
 * partition is in; `raise`: a member's score, only ever lengthened (`ZADD GT` needs Redis 6.2).
 */
export const TOKEN_OF = `
local function token_of(id)
  local len = string.match(id, '#(%d+)$')
  if not len then return nil end
  local stop = #id - #len - 1
  return string.sub(id, stop - tonumber(len) + 1, stop)
end
local function raise(set, score, member)
  local was = redis.call('ZSCORE', set, member)
  if not was or tonumber(was) < score then redis.call('ZADD', set, score, member) end
end
local function set_of(token, keys, fixed)
  local head = string.sub(token, 1, 1)
  if head == 'o' or head == 'u' then return fixed end
  return keys
end
`;

/**
 * Lua, the partitioned part of `ACQUIRE_LEASE` (after the expired leases of `L` are dropped and
 * `count`, `cap`, `ttl`, `now`, `hold` and `priority_ok` are known). Picks the partition (a live key keeps its own; a new
 * one goes to its overflow partition once `maxKeys` keys are live or while any overflow
 * partition is), then refuses with reason 1 (`key-over-share`) a key at its cap, or, failing
 * fast, at or over its share `⌈cap / max(2, live partitions)⌉` while no more slots are free than
 * kept for keys under theirs; reason 0 (`full`) for a key under its share at a full gauge,
 * then reason 2 (`shed-priority`) if the free slots are kept for higher levels. Arrivals under
 * their share are counted (decayed) in the cap hash, fields `under` and `at`.
 *
 * ARGV[7] partition, ARGV[8] overflow lease id, ARGV[9] overflow partition, ARGV[10] per-key
 * limit (>= 1 slots, < 1 a fraction of the cap, 0 none), ARGV[11] maxKeys, ARGV[12] '1' fail
 * fast. Returns { granted, cap, reason, 1 if overflow }.
 */
export const ACQUIRE_KEYED = `
local token = ARGV[7]
local id = ARGV[1]
local live_keys, fixed = KEYS[1] .. ':keys', KEYS[1] .. ':fixed'
redis.call('ZREMRANGEBYSCORE', live_keys, '-inf', now)
redis.call('ZREMRANGEBYSCORE', fixed, '-inf', now)
local bucketed = 0
if token ~= 'u' and not redis.call('ZSCORE', live_keys, token) then
  local spilled = redis.call('ZCARD', fixed) - (redis.call('ZSCORE', fixed, 'u') and 1 or 0)
  if spilled > 0 or redis.call('ZCARD', live_keys) >= tonumber(ARGV[11]) then
    token, id, bucketed = ARGV[9], ARGV[8], 1
  end
end
local set = set_of(token, live_keys, fixed)
local own = KEYS[1] .. ':k:' .. token
redis.call('ZREMRANGEBYSCORE', own, '-inf', now)
local held = redis.call('ZCARD', own)
if held == 0 then redis.call('ZREM', set, token) end
local live = redis.call('ZCARD', live_keys) + redis.call('ZCARD', fixed)
if held == 0 then live = live + 1 end
local limit = tonumber(ARGV[10])
local key_cap = math.huge
if limit >= 1 then key_cap = limit elseif limit > 0 then key_cap = math.max(1, math.ceil(cap * limit)) end
if held >= key_cap then return { 0, cap, 1, bucketed } end
local over = held >= math.max(1, math.ceil(cap / math.max(2, live)))
local fail_fast = ARGV[12] == '1'
if fail_fast then
  local stored = redis.call('HMGET', KEYS[2], 'under', 'at')
  local under, at = tonumber(stored[1]) or 0, tonumber(stored[2]) or now
  if now > at then under = under * math.pow(2, (at - now) / 1000) end
  if not over then under = under + 1 end
  redis.call('HSET', KEYS[2], 'under', tostring(under), 'at', now)
  keep_alive(KEYS[2], ttl)
  if over and cap - count <= reserve_of(under, cap, hold) then
    return { 0, cap, 1, bucketed }
  end
end
if count >= cap then return { 0, cap, 0, bucketed } end
if not priority_ok then return { 0, cap, 2, bucketed } end
if redis.call('ZADD', KEYS[1], 'NX', now + ttl, id) == 0 then return { 0, cap, 0, bucketed } end
redis.call('ZADD', own, now + ttl, id)
raise(set, now + ttl, token)
keep_alive(KEYS[1], ttl)
keep_alive(own, ttl)
keep_alive(set, ttl)
return { 1, cap, 0, bucketed }
`;

/**
 * Lua, for `RELEASE_LEASES`: lease `id` (removed from `L` already) leaves its partition, and the
 * partition leaves its live set when it was the last, else is scored by its latest lease left.
 */
export const RELEASE_KEYED = `
local function release_keyed(id)
  local token = token_of(id)
  if not token then return end
  local own = KEYS[1] .. ':k:' .. token
  if redis.call('ZREM', own, id) == 0 then return end
  local set = set_of(token, KEYS[1] .. ':keys', KEYS[1] .. ':fixed')
  local last = redis.call('ZRANGE', own, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('ZADD', set, 'XX', last[2], token) else redis.call('ZREM', set, token) end
end
`;

/**
 * Lua, for `RENEW_LEASES`: lease `id` (re-scored in `L` to `expiry`) is re-scored, or re-added, in
 * its partition, which stays live at least as long.
 */
export const RENEW_KEYED = `
local function renew_keyed(id, expiry, ttl)
  local token = token_of(id)
  if not token then return end
  local own = KEYS[1] .. ':k:' .. token
  local set = set_of(token, KEYS[1] .. ':keys', KEYS[1] .. ':fixed')
  redis.call('ZADD', own, expiry, id)
  raise(set, expiry, token)
  keep_alive(own, ttl)
  keep_alive(set, ttl)
end
`;
