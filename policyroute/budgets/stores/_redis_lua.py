"""The Lua scripts the Redis budget store runs server-side (each call is atomic in Redis).

Layout, every key under the hash tag ``{prefix}`` so a cluster keeps them in one slot:

- ``{prefix}:line:<key>``: hash ``limit``, ``reserved``, ``spent`` (calendar windows),
  ``width``/``span`` (rolling windows), ``thr`` (thresholds, ``fraction:spend reaching it``),
  ``fired`` (the spend reaching each fired threshold), each comma-separated, and ``until``
  (when the line may expire once no reservation holds it; its TTL covers every open
  reservation's lease too).
- ``{prefix}:spend:<key>``: hash bucket -> nano-dollars, for rolling windows.
- ``{prefix}:res``: sorted set of open reservations scored by lease expiry.
- ``{prefix}:resl:<id>``: JSON ``[[key, amount], ...]`` of one reservation.
- ``{prefix}:done:<id>``: JSON ``[call token, reply]`` of a settle, kept 10 s for a retry of
  the same call whose reply was lost.

Amounts are integer nano-dollars; Lua numbers are doubles, exact to 2^53 nano-dollars
(about nine million USD per line). Numbers leave the scripts as ``%.0f`` strings.
Times are the server's: each script reads ``TIME`` once, and lease deadlines (the scores of
``res``), rolling buckets and ``until`` are seconds since the epoch by the server's clock, so
hosts whose clocks disagree agree on which reservations are live and which spend still counts.
(Versions that timed these by the client's clock wrote the same seconds since the epoch, so a
store upgraded host by host reads their deadlines as what they were meant to be: hosts still
on such a version must keep their clocks in step with the server until the last is upgraded.)
Expiries the client sends (a window's TTL) are durations, never instants.

``TIME`` is not deterministic: a script that calls it must be replicated by its effects, as
Redis 7 always does and Redis 5 and 6 do unless ``lua-replicate-commands`` is turned off;
:data:`CLOCK` asks for it explicitly where ``redis.replicate_commands`` exists (Redis 3.2 to 6;
a no-op in 7).
"""

from __future__ import annotations

__all__ = ["CLOCK", "EXPIRED", "RECLAIM", "RENEW", "RESERVE", "SETTLE", "STATE"]

CLOCK = r"""
if redis.replicate_commands then redis.replicate_commands() end
-- The server's clock, in seconds since the epoch (microseconds kept).
local function server_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
"""

_COMMON = (
    CLOCK
    + r"""
local P = ARGV[1]
local now = server_now()

local function fmt(x) return string.format('%.0f', x) end

local function split(csv)
  local out = {}
  if csv then for part in string.gmatch(csv, '[^,]+') do out[#out + 1] = tonumber(part) end end
  return out
end

local function extend(k, ttl_ms)
  local cur = redis.call('PTTL', k)
  if cur < 0 or cur < ttl_ms then redis.call('PEXPIRE', k, ttl_ms) end
end

-- Milliseconds a rolling line (and its buckets) must outlive spend recorded now: a span and a
-- bucket. 0 for a calendar line, whose expiry is its window's end.
local function keep_ms(width, span)
  if not width or width == '' then return 0 end
  return math.ceil((tonumber(span) + tonumber(width)) * 1000)
end

-- ``until``: when the line may go once no reservation holds it (server time, like ``now``).
local function live_until(lk, t)
  local cur = tonumber(redis.call('HGET', lk, 'until') or '0')
  if t > cur then redis.call('HSET', lk, 'until', string.format('%.17g', t)) end
end

local function spent_of(key, lk, width, span)
  if not width or width == '' then
    return tonumber(redis.call('HGET', lk, 'spent') or '0')
  end
  local w, s = tonumber(width), tonumber(span)
  local first = math.floor((now - s) / w)
  local sk = P .. 'spend:' .. key
  local flat = redis.call('HGETALL', sk)
  local total = 0
  for i = 1, #flat, 2 do
    local b = tonumber(flat[i])
    if b < first then redis.call('HDEL', sk, flat[i]) else total = total + tonumber(flat[i + 1]) end
  end
  return total
end

local function settle(rid, actual)
  if redis.call('ZREM', P .. 'res', rid) == 0 then return {} end
  local rk = P .. 'resl:' .. rid
  local raw = redis.call('GET', rk)
  redis.call('DEL', rk)
  if not raw then return {} end
  local out = {}
  for _, l in ipairs(cjson.decode(raw)) do
    local key, amount = l[1], l[2]
    local lk = P .. 'line:' .. key
    if redis.call('EXISTS', lk) == 1 then
      local reserved = tonumber(redis.call('HGET', lk, 'reserved') or '0')
      if amount ~= '0' then reserved = redis.call('HINCRBY', lk, 'reserved', '-' .. amount) end
      local charge = actual or amount
      local f = redis.call('HMGET', lk, 'limit', 'width', 'span', 'thr', 'fired')
      local limit, width, span, thr, fired = tonumber(f[1]), f[2], f[3], f[4], f[5]
      if charge ~= '0' then
        if width and width ~= '' then
          local sk = P .. 'spend:' .. key
          local bucket = fmt(math.floor(now / tonumber(width)))
          redis.call('HINCRBY', sk, bucket, charge)
          -- Spend settled (or reclaimed) late counts a whole span from now: the TTL set when
          -- the reservation was made would drop it early.
          local keep = keep_ms(width, span)
          extend(sk, keep)
          extend(lk, keep)
          live_until(lk, now + keep / 1000)
        else
          redis.call('HINCRBY', lk, 'spent', charge)
        end
      end
      local until_ = redis.call('HGET', lk, 'until')
      if reserved <= 0 and until_ then
        -- No reservation holds the line any more: it lives as long as its window (or its
        -- latest spend) needs, no longer the lease of the last reservation. (A line written
        -- before ``until`` was kept has none, and keeps its TTL.)
        local left = math.ceil((tonumber(until_) - now) * 1000)
        if redis.call('PTTL', lk) > left then redis.call('PEXPIRE', lk, math.max(left, 1)) end
      end
      local spent = spent_of(key, lk, width, span)
      local crossed = {}
      if thr and thr ~= '' then
        -- ``fired`` holds the spend (need) of each fired threshold, of whichever limit: one
        -- stays fired only if the spend before this charge still reached it (below it, it had
        -- re-armed: a rolling window's spend aged out, even if no settle saw the spend that
        -- low), and those of another limit or warn_at list (the other version of a policy
        -- during a deploy) are kept, or they would fire again at every alternation.
        local before = spent - (charge ~= '0' and tonumber(charge) or 0)
        local kept, keep, reached = {}, {}, {}
        for _, n in ipairs(split(fired)) do
          if n == math.floor(n) and before >= n and not kept[n] then
            kept[n] = true
            keep[#keep + 1] = n
            reached[n] = true
          end
        end
        for part in string.gmatch(thr, '[^,]+') do
          -- 'fraction:need': need is the spend that reaches it, an exact integer worked out
          -- by the client from the decimal the policy wrote (t * limit in doubles lands
          -- just above 0.07 of 0.01 USD); a bare fraction is from an older client.
          local t, need = string.match(part, '^([^:]+):(.+)$')
          if t then
            t, need = tonumber(t), tonumber(need)
          else
            t = tonumber(part)
            need = math.ceil(t * limit)
          end
          if limit > 0 and spent >= need then
            if not kept[need] then crossed[#crossed + 1] = t end
            if not reached[need] then
              reached[need] = true
              keep[#keep + 1] = need
            end
          end
        end
        table.sort(keep)
        local parts = {}
        for i, n in ipairs(keep) do parts[i] = fmt(n) end
        redis.call('HSET', lk, 'fired', table.concat(parts, ','))
      end
      local cparts = {}
      for i, t in ipairs(crossed) do cparts[i] = string.format('%.17g', t) end
      -- The limit as stored: a double formatted back is off above 2^53 nano-dollars.
      out[#out + 1] = {key, fmt(spent), fmt(reserved), f[1] or '0', table.concat(cparts, ',')}
    end
  end
  return out
end

-- Settled lines that crossed a threshold are appended to ``crossed_out`` (when given): the
-- reserve that reclaimed reports them, as nobody else will.
local function reclaim(max, crossed_out)
  local expired = redis.call('ZRANGEBYSCORE', P .. 'res', '-inf', now, 'LIMIT', 0, max)
  for _, rid in ipairs(expired) do
    -- Charged at its worst case: the dead process may have made the call.
    local states = settle(rid, nil)
    if crossed_out then
      for _, st in ipairs(states) do
        if st[5] ~= '' then crossed_out[#crossed_out + 1] = st end
      end
    end
  end
  return #expired
end
"""
)

RESERVE = (
    _COMMON
    + r"""
-- ARGV: P, rid, lease_ms, n, then n x (key, limit, amount, ttl_ms, width, span, thr)
local rid, lease_ms, n = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
-- Already held: this is a retry of a reserve whose reply was lost. Holding it again would
-- hold the amounts twice while settle releases them once.
if redis.call('ZSCORE', P .. 'res', rid) then return {1, {}} end
-- Reply: {1, reclaimed} or {0, refused line, spent, reserved, reclaimed}; ``reclaimed`` lists
-- the settle states (as SETTLE returns them) of lines whose thresholds reclaiming crossed.
local reclaimed = {}
reclaim(100, reclaimed)
for li = 0, n - 1 do
  local a = 5 + li * 7
  local key, limit, amount = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local lk = P .. 'line:' .. key
  local reserved = tonumber(redis.call('HGET', lk, 'reserved') or '0')
  local spent = spent_of(key, lk, ARGV[a + 4], ARGV[a + 5])
  if spent + reserved + amount > limit then
    return {0, li, fmt(spent), fmt(reserved), reclaimed}
  end
end
local lines = {}
for li = 0, n - 1 do
  local a = 5 + li * 7
  local key = ARGV[a]
  local lk = P .. 'line:' .. key
  redis.call('HSET', lk, 'limit', ARGV[a + 1], 'width', ARGV[a + 4], 'span', ARGV[a + 5],
             'thr', ARGV[a + 6])
  redis.call('HINCRBY', lk, 'reserved', ARGV[a + 2])
  local ttl = tonumber(ARGV[a + 3])
  -- The line outlives the reservation's lease (and, rolling, a span past it, for a worst case
  -- reclaimed then): a hold that expired with the line would let others spend it, and the
  -- settle that follows would leave ``reserved`` negative. The last settle brings the TTL
  -- back to ``until``.
  live_until(lk, now + ttl / 1000)
  extend(lk, lease_ms + keep_ms(ARGV[a + 4], ARGV[a + 5]))
  extend(lk, ttl)
  if ARGV[a + 4] ~= '' and redis.call('EXISTS', P .. 'spend:' .. key) == 1 then
    extend(P .. 'spend:' .. key, ttl)
  end
  lines[#lines + 1] = {key, ARGV[a + 2]}
end
redis.call('ZADD', P .. 'res', now + lease_ms / 1000, rid)
redis.call('SET', P .. 'resl:' .. rid, cjson.encode(lines))
return {1, reclaimed}
"""
)

SETTLE = (
    _COMMON
    + r"""
-- ARGV: P, rid, actual, call token
-- A settle's reply is kept a few seconds under its call's token: the same call run again (a
-- retry after its reply was lost) gets the same line states and threshold crossings back;
-- any other settle of a settled id gets nothing, as the store protocol says.
local done = P .. 'done:' .. ARGV[2]
local out = settle(ARGV[2], ARGV[3])
if #out > 0 then
  redis.call('SET', done, cjson.encode({ARGV[4], out}), 'PX', 10000)
  return out
end
local kept = redis.call('GET', done)
if kept then
  local prior = cjson.decode(kept)
  if prior[1] == ARGV[4] then return prior[2] end
end
return out
"""
)

RECLAIM = (
    _COMMON
    + r"""
-- ARGV: P
local total = 0
while true do
  local n = reclaim(1000)
  total = total + n
  if n < 1000 then return total end
end
"""
)

# Needs none of _COMMON: one sorted-set member's score, compared and raised in one step, and
# the TTLs of the reservation's lines raised to cover the new lease.
RENEW = (
    CLOCK
    + r"""
-- KEYS: res; ARGV: rid, lease_ms, P. Returns 1 if renewed, 0 if unknown or expired.
local now, lease_ms, P = server_now(), tonumber(ARGV[2]), ARGV[3]
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) <= now then return 0 end
local until_ = now + lease_ms / 1000
if until_ > tonumber(score) then redis.call('ZADD', KEYS[1], 'XX', until_, ARGV[1]) end
local raw = P and redis.call('GET', P .. 'resl:' .. ARGV[1])
if raw then
  for _, l in ipairs(cjson.decode(raw)) do
    local lk = P .. 'line:' .. l[1]
    -- As at reserve: a rolling line lives a span and a bucket past the lease, for the
    -- worst case charged should the lease run out.
    local want = lease_ms
    local f = redis.call('HMGET', lk, 'width', 'span')
    if f[1] and f[1] ~= '' then
      want = want + math.ceil((tonumber(f[2]) + tonumber(f[1])) * 1000)
    end
    local cur = redis.call('PTTL', lk)
    -- A line made without a TTL keeps none; a line already gone is not made again.
    if cur >= 0 and cur < want then redis.call('PEXPIRE', lk, want) end
  end
end
return 1
"""
)

# Read-only: what ``budget status`` and a refusal's report read, at the server's time.
STATE = (
    CLOCK
    + r"""
-- KEYS: line, spend. Returns the server's time (as %.17g), the line's limit, spent, reserved,
-- width and span, and its rolling buckets flattened (bucket, nano-dollars, ...).
local f = redis.call('HMGET', KEYS[1], 'limit', 'spent', 'reserved', 'width', 'span')
return {string.format('%.17g', server_now()), f, redis.call('HGETALL', KEYS[2])}
"""
)

EXPIRED = (
    CLOCK
    + r"""
-- KEYS: res; ARGV: P. Read-only: the lines (JSON, as ``resl:<id>``) of every reservation whose
-- lease ran out by the server's clock.
local out = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', server_now())) do
  local raw = redis.call('GET', ARGV[1] .. 'resl:' .. rid)
  if raw then out[#out + 1] = raw end
end
return out
"""
)
