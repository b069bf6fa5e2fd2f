-- Creates refunds in state queued, each refund as one step, in the order given.
-- KEYS: the due index, then for each refund its record and its order's refunds.
-- ARGV: key prefix, now ms, ms until due (on Redis's clock, as every due
-- time), then for each refund: its mode, n, and n field/value strings, the
-- first two fields refund_id and provider. Modes:
--   "c" create it;
--   "s" create it unless another refund on its order is anything but failed
--       (its provider refunds an order once);
--   "k" create nothing, only answer with the record if the refund id is known.
-- Returns one reply per refund, in order:
--   {1}                   created
--   {0, field, value, …}  the refund id exists (nothing changed): its record
--   {2, state, owner}     refused: refund owner, in that state, has the order
--   {3}                   mode "k", and the refund id is unknown
--   {4, message}          a Redis error on this refund alone; the rest go on
-- Because the refunds are taken in order, the first one on an order that is
-- refunded once gets it. The other refunds' records, the state index and the
-- events stream are named from the prefix, not passed as KEYS: the store's
-- scripts span several keys and assume one Redis server (not Redis Cluster).
local prefix, now = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local due = string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3]))
local made = {} -- the refunds whose record was written

local function create(record, order, mode, first, last)
  local known = redis.call('HGETALL', record)
  if #known > 0 then
    table.insert(known, 1, 0)
    return known
  end
  if mode == 'k' then
    return {3}
  end
  if mode == 's' then
    for _, other in ipairs(redis.call('ZRANGE', order, 0, -1)) do
      local state = redis.call('HGET', prefix .. 'refund:' .. other, 'state')
      if state and state ~= 'failed' then
        return {2, state, other}
      end
    end
  end
  local id, provider = ARGV[first + 1], ARGV[first + 3]
  redis.call('HSET', record, unpack(ARGV, first, last))
  made[#made + 1] = id
  redis.call('ZADD', order, now, id)
  redis.call('XADD', prefix .. 'events', '*', 'refund_id', id, 'provider', provider, 'from', '', 'to', 'queued',
    'at', now, 'provider_ref', '', 'reason', '')
  return {1}
end

-- pcall: an error on one refund (a key of the wrong type) must not leave the
-- refunds after it unanswered.
local out, arg = {}, 4
for i = 1, (#KEYS - 1) / 2 do
  local n = tonumber(ARGV[arg + 1])
  local ok, res = pcall(create, KEYS[2 * i], KEYS[2 * i + 1], ARGV[arg], arg + 2, arg + 1 + n)
  if not ok then
    res = {4, type(res) == 'table' and res.err or tostring(res)}
  end
  out[i] = res
  arg = arg + 2 + n
end

-- The due and state indexes take every record written, one call each (a
-- call costs more than a member). A record written by a refund that failed
-- after it is in them too: the recoverer then sees it.
-- In chunks: unpack fails past Lua's stack limit (about 8,000 values), and
-- a record no index holds would never get a task.
for first = 1, #made, 1000 do
  local dues, states = {}, {}
  for i = first, math.min(first + 999, #made) do
    local n = #dues
    dues[n + 1], dues[n + 2] = due, made[i]
    states[n + 1], states[n + 2] = now, made[i]
  end
  redis.call('ZADD', KEYS[1], unpack(dues))
  redis.call('ZADD', prefix .. 'state:queued', unpack(states))
end
return out
