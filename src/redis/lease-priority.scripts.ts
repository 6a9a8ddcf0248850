/*
 * Priority headroom in the acquire script (lease.scripts.ts), for fail-fast shared gauges: the
 * room `PriorityHeadroom` keeps in one process, kept across every instance. Arrivals per level
 * are decayed counts (half-life 1 s, Redis time) in the gauge's cap hash, fields `p0`…`p3` (0 is
 * `critical`) and `pat` (when they were last decayed), counted while some call named its level
 * in the last `PRIORITY_IDLE_MS` (field `pseen`): before that, and after, the hash holds none of
 * them and calls cost one `HMGET` more. The mean hold time is the asking instance's own.
 */

/**
 * No call named a level for this long: the counts are dropped (the levels above `normal` have
 * decayed below `MIN_DEMAND`, 2⁻¹⁰ of a count, long before), and so is the cost of counting.
 */
export const PRIORITY_IDLE_MS = 10_000;

/**
 * Lua: the slots a fail-fast gauge of `capacity` keeps free, as `PriorityHeadroom.reserveFor`
 * sizes them with no brief wait (a shared gauge has none): `demand` is a decayed count (half-life
 * 1 s) of the arrivals the room is for, `hold` a mean hold time in ms (0: unknown, one slot).
 */
export const RESERVE_OF = `
local function reserve_of(demand, capacity, hold)
  if demand < 0.125 then return 0 end
  if hold <= 0 then return math.min(1, capacity) end
  local rho = demand * 0.000693147180559945 * hold / capacity
  if rho >= 1 then return capacity end
  return math.max(0, math.min(capacity, math.ceil(math.log(0.01) / math.log(rho))))
end
`;

/**
 * Lua: counts an arrival at `rank` (`named`: it gave its level; the counts live `ttl` ms past it)
 * and says whether it may take one of `free` slots as far as priorities go: `critical` always, another level only while more are
 * free than kept for the levels above it. Only while levels are in use (see above).
 */
export const PRIORITY_ROOM = `
local function priority_room(rank, named, hold, free, capacity, ttl)
  local f = redis.call('HMGET', KEYS[2], 'p0', 'p1', 'p2', 'p3', 'pat', 'pseen')
  local seen = tonumber(f[6])
  if named then
    seen = now
  elseif seen == nil then
    return true
  elseif now - seen > ${PRIORITY_IDLE_MS} then
    redis.call('HDEL', KEYS[2], 'p0', 'p1', 'p2', 'p3', 'pat', 'pseen')
    return true
  end
  local at = tonumber(f[5]) or now
  local factor = 1
  if now > at then factor = math.pow(2, (at - now) / 1000) end
  local p = {}
  for i = 1, 4 do p[i] = (tonumber(f[i]) or 0) * factor end
  p[rank + 1] = p[rank + 1] + 1
  redis.call('HSET', KEYS[2], 'p0', tostring(p[1]), 'p1', tostring(p[2]), 'p2', tostring(p[3]),
    'p3', tostring(p[4]), 'pat', now, 'pseen', seen)
  keep_alive(KEYS[2], ttl)
  if rank == 0 then return true end
  local above = 0
  for i = 1, rank do above = above + p[i] end
  return free > reserve_of(above, capacity, hold)
end
`;
