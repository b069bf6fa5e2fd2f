-- KEYS: record, history, due index, the order's reference owners ("": no
-- claims), the order's in-flight slot, the lease, the re-check index.
-- ARGV: key prefix, fencing token, owner id, history entry, send flag ("0": no
-- send; "1": a new attempt goes out; "2": the same, holding the order's slot),
-- now ms, due ms ("" keeps it), "1" to release the lease after the write (the
-- run is over: one round trip for both; "0" not), followed by "f" to fold the
-- entry into an identical last one, then field/value pairs.
--
-- A write is refused when a newer owner took the refund (its fence or owner is
-- not ours: the owner id keeps two owners apart even if a lost write let them
-- draw the same token), when the refund is succeeded or failed (those never
-- change), when the provider_ref it writes already belongs to another refund on
-- the order, and when a send needs the order's slot and another refund holds it.
-- Returns the attempt number for a send, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND no such refund')
end
local cur = redis.call('HMGET', KEYS[1], 'fence', 'owner', 'state', 'refund_id', 'provider_ref', 'provider')
local fence, owner, state, id = cur[1] or '0', cur[2] or '', cur[3], cur[4]
if ARGV[2] ~= fence or ARGV[3] ~= owner then
  return redis.error_reply('FENCED token ' .. ARGV[2] .. ' but fence is ' .. fence)
end
if state == 'succeeded' or state == 'failed' then
  return redis.error_reply('CLOSED ' .. state)
end
-- One provider refund belongs to one of our refunds. Two refunds of the same
-- amount on one order, with no key to tell them apart, could otherwise both
-- claim the one that was applied, and the other would never be paid.
for i = 9, #ARGV, 2 do
  if KEYS[4] ~= '' and ARGV[i] == 'provider_ref' and ARGV[i + 1] ~= '' then
    local holder = redis.call('HGET', KEYS[4], ARGV[i + 1])
    if holder and holder ~= id then
      return redis.error_reply('REFTAKEN ' .. holder)
    end
    redis.call('HSET', KEYS[4], ARGV[i + 1], id)
  end
end
-- A person holding only the provider's reference finds our refund by it.
for i = 9, #ARGV, 2 do
  if ARGV[i] == 'provider_ref' and ARGV[i + 1] ~= '' and ARGV[i + 1] ~= cur[5] then
    local byref = ARGV[1] .. 'byref:' .. cur[6]
    if cur[5] and cur[5] ~= '' and redis.call('HGET', byref, cur[5]) == id then
      redis.call('HDEL', byref, cur[5])
    end
    redis.call('HSET', byref, ARGV[i + 1], id)
  end
end
local attempt = 0
local entry = ARGV[4]
if ARGV[5] ~= '0' then
  if ARGV[5] == '2' then
    -- One refund of ours in flight per order, where only the order as a
    -- whole can show what a lost answer did.
    -- A slot whose holder is closed or gone (deleted by hand) is free.
    local holder = redis.call('GET', KEYS[5])
    if holder and holder ~= id then
      local hs = redis.call('HGET', ARGV[1] .. 'refund:' .. holder, 'state')
      if hs and hs ~= 'succeeded' and hs ~= 'failed' then
        return redis.error_reply('ORDERBUSY ' .. hs .. ' ' .. holder)
      end
    end
    redis.call('SET', KEYS[5], id)
  end
  attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'in_flight', attempt)
  redis.call('HDEL', KEYS[1], 'nf_at', 'unsure_at', 'refused')
  entry = string.sub(entry, 1, -2) .. ',"attempt":' .. attempt .. '}'
end
-- An empty value deletes the field: a record is read with missing fields as
-- empty, and millions of records carry no empty ones.
local fields, gone = {}, {}
for i = 9, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  if f == 'pending_since_if_unset' then
    local since = redis.call('HGET', KEYS[1], 'pending_since')
    if not since or since == '' then
      fields[#fields + 1] = 'pending_since'
      fields[#fields + 1] = v
    end
  elseif v == '' then
    gone[#gone + 1] = f
  else
    fields[#fields + 1] = f
    fields[#fields + 1] = v
  end
end
if #fields > 0 then
  redis.call('HSET', KEYS[1], unpack(fields))
end
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
end
-- Nothing in flight (never sent: no field at all) frees the order's slot.
local inflight = redis.call('HGET', KEYS[1], 'in_flight')
if (not inflight or inflight == '0') and redis.call('GET', KEYS[5]) == id then
  redis.call('DEL', KEYS[5])
end
local now = redis.call('HGET', KEYS[1], 'state')
local final = now == 'succeeded' or now == 'failed' or now == 'needs_review'
if state == 'needs_review' and (now == 'succeeded' or now == 'failed') then
  -- What the review list comes to: who settled it, and how long it waited.
  local by = redis.call('HGET', KEYS[1], 'settled_by') or 'person'
  redis.call('HINCRBY', ARGV[1] .. 'review:settled', by .. '|' .. cur[6] .. '|' .. now, 1)
  local entered = redis.call('ZSCORE', ARGV[1] .. 'state:needs_review', id)
  if entered then
    redis.call('LPUSH', ARGV[1] .. 'review:durations', tonumber(ARGV[6]) - tonumber(entered))
    redis.call('LTRIM', ARGV[1] .. 'review:durations', 0, 999)
  end
end
if now == 'needs_review' then
  local at = redis.call('HGET', KEYS[1], 'recheck_at')
  if at and at ~= '' then
    redis.call('ZADD', KEYS[7], at, id)
  else
    redis.call('ZREM', KEYS[7], id)
  end
elseif state == 'needs_review' then
  redis.call('ZREM', KEYS[7], id)
end
if now ~= state then
  redis.call('ZREM', ARGV[1] .. 'state:' .. state, id)
  redis.call('ZADD', ARGV[1] .. 'state:' .. now, ARGV[6], id)
  -- Every state change is an event, in the same step as the change itself,
  -- so a consumer (webhooks, an order system) never misses one.
  redis.call('XADD', ARGV[1] .. 'events', '*',
    'refund_id', id, 'provider', redis.call('HGET', KEYS[1], 'provider'), 'from', state, 'to', now,
    'at', ARGV[6], 'provider_ref', redis.call('HGET', KEYS[1], 'provider_ref') or '',
    'reason', redis.call('HGET', KEYS[1], 'last_error') or '')
end
local blocked = redis.call('HGET', KEYS[1], 'blocked')
if blocked and blocked ~= '' and not final then
  redis.call('ZADD', ARGV[1] .. 'blocked', 'NX', ARGV[6], id)
  -- Since when, for the growing wait between two tries.
  redis.call('HSETNX', KEYS[1], 'blocked_at', ARGV[6])
else
  redis.call('ZREM', ARGV[1] .. 'blocked', id)
  redis.call('HDEL', KEYS[1], 'blocked_at')
end
if final then
  redis.call('ZREM', KEYS[3], id)
elseif ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[3], ARGV[7], id)
end
local folded = false
if string.sub(ARGV[8], 2, 2) == 'f' then
  -- A refund polled for weeks must not grow with every poll: the same
  -- answer again is counted into the last entry.
  local last = redis.call('LINDEX', KEYS[2], -1)
  if last then
    local a, b = cjson.decode(last), cjson.decode(entry)
    if a.event == b.event and a.outcome == b.outcome and a.status == b.status and a.state == b.state then
      a.count = (a.count or 1) + 1
      a.last = b.at
      a.detail = b.detail
      redis.call('LSET', KEYS[2], -1, cjson.encode(a))
      folded = true
    end
  end
end
if not folded then
  redis.call('RPUSH', KEYS[2], entry)
end
if string.sub(ARGV[8], 1, 1) == '1' and redis.call('GET', KEYS[6]) == ARGV[2] .. ':' .. ARGV[3] then
  redis.call('DEL', KEYS[6])
end
return attempt
