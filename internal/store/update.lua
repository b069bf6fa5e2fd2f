-- KEYS: record, history, due index, the order's reference owners ("": no
-- claims), the order's in-flight slot, the lease, the re-check index, the
-- hash of the asynq task whose result this write also records ("": none).
-- ARGV: key prefix, fencing token, owner id, history entry, send flag ("0": no
-- send; "1": a new attempt goes out; "2": the same, holding the order's slot),
-- now ms, due ms ("" keeps it), "1" to release the lease after the write (the
-- run is over: one round trip for both; "0" not), followed by "f" to fold the
-- entry into an identical last one, the task's result, then field/value pairs.
--
-- A write is refused when a newer owner took the refund (its fence or owner is
-- not ours: the owner id keeps two owners apart even if a lost write let them
-- draw the same token), when the refund is succeeded or failed (those never
-- change), when the provider_ref it writes already belongs to another refund on
-- the order, and when a send needs the order's slot and another refund holds it.
-- Returns the attempt number for a send, else 0.
--
-- Every refund runs this twice (the send, the outcome), so it reads the record
-- once, works out what changes, and writes it in one HSET: an index is
-- touched only where the change moves the refund in or out of it.
local names = {'fence', 'owner', 'state', 'refund_id', 'provider_ref', 'provider', 'attempts', 'in_flight',
  'pending_since', 'blocked', 'blocked_at', 'last_error', 'recheck_at', 'settled_by', 'slot',
  'nf_at', 'unsure_at', 'refused', 'before'}
local vals = redis.call('HMGET', KEYS[1], unpack(names))
local cur = {}
for i, name in ipairs(names) do
  cur[name] = vals[i] or ''
end
local id, state = cur.refund_id, cur.state
if id == '' then
  return redis.error_reply('NOTFOUND no such refund')
end
if ARGV[2] ~= (vals[1] or '0') or ARGV[3] ~= cur.owner then
  return redis.error_reply('FENCED token ' .. ARGV[2] .. ' but fence is ' .. (vals[1] or '0'))
end
if state == 'succeeded' or state == 'failed' then
  return redis.error_reply('CLOSED ' .. state)
end
-- What the record holds after this write: new[f] is the value written ('' for
-- a field removed); a field the write leaves alone keeps cur[f].
local new = {}
local function val(f)
  if new[f] ~= nil then
    return new[f]
  end
  return cur[f] or ''
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
    if holder ~= id then
      redis.call('SET', KEYS[5], id)
    end
    new.slot = '1'
  end
  attempt = (tonumber(cur.attempts) or 0) + 1
  new.attempts, new.in_flight = tostring(attempt), tostring(attempt)
  new.nf_at, new.unsure_at, new.refused = '', '', ''
  entry = string.sub(entry, 1, -2) .. ',"attempt":' .. attempt .. '}'
end
for i = 10, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  if f == 'pending_since_if_unset' then
    if cur.pending_since == '' then
      new.pending_since = v
    end
  else
    new[f] = v
  end
end
-- One provider refund belongs to one of our refunds. Two refunds of the same
-- amount on one order, with no key to tell them apart, could otherwise both
-- claim the one that was applied, and the other would never be paid.
local ref = new.provider_ref
if ref and ref ~= '' and KEYS[4] ~= '' then
  local holder = redis.call('HGET', KEYS[4], ref)
  if holder and holder ~= id then
    return redis.error_reply('REFTAKEN ' .. holder)
  end
  if not holder then
    redis.call('HSET', KEYS[4], ref, id)
  end
end
-- A person holding only the provider's reference finds our refund by it.
if ref and ref ~= '' and ref ~= cur.provider_ref then
  local byref = ARGV[1] .. 'byref:' .. cur.provider
  if cur.provider_ref ~= '' and redis.call('HGET', byref, cur.provider_ref) == id then
    redis.call('HDEL', byref, cur.provider_ref)
  end
  redis.call('HSET', byref, ref, id)
end
local now = val('state')
local final = now == 'succeeded' or now == 'failed' or now == 'needs_review'
-- Blocked refunds are indexed, and blocked since when, for the growing wait
-- between two tries; the index is touched only while a refund is or was
-- blocked.
if val('blocked') ~= '' and not final then
  if cur.blocked_at == '' then
    new.blocked_at = ARGV[6]
  end
  redis.call('ZADD', ARGV[1] .. 'blocked', 'NX', ARGV[6], id)
else
  new.blocked_at = ''
  if cur.blocked ~= '' then
    redis.call('ZREM', ARGV[1] .. 'blocked', id)
  end
end
-- Nothing in flight (never sent: no field at all) frees the order's slot.
-- The slot is looked at where the refund may hold it: its record says it
-- took it, or the write is a keyless provider's run (KEYS[4] set), or the
-- refund enters or leaves needs_review (a person's or a review's hand, with
-- no claims). The last two also free a slot taken before records said so.
local inflight = val('in_flight')
local reviewed = state == 'needs_review' or now == 'needs_review'
if (inflight == '' or inflight == '0') and (val('slot') ~= '' or KEYS[4] ~= '' or reviewed) then
  if redis.call('GET', KEYS[5]) == id then
    redis.call('DEL', KEYS[5])
  end
  new.slot = ''
end
-- An empty value removes the field (a record is read with missing fields as
-- empty, and millions of records carry no empty ones); a field that is not
-- there is not removed again.
local set, gone = {}, {}
for f, v in pairs(new) do
  if v ~= '' then
    set[#set + 1] = f
    set[#set + 1] = v
  elseif cur[f] ~= '' then
    gone[#gone + 1] = f
  end
end
redis.call('HSET', KEYS[1], unpack(set))
if #gone > 0 then
  redis.call('HDEL', KEYS[1], unpack(gone))
end
if state == 'needs_review' and (now == 'succeeded' or now == 'failed') then
  -- What the review list comes to: who settled it, and how long it waited.
  local by = val('settled_by')
  if by == '' then
    by = 'person'
  end
  redis.call('HINCRBY', ARGV[1] .. 'review:settled', by .. '|' .. cur.provider .. '|' .. now, 1)
  local entered = redis.call('ZSCORE', ARGV[1] .. 'state:needs_review', id)
  if entered then
    redis.call('LPUSH', ARGV[1] .. 'review:durations', tonumber(ARGV[6]) - tonumber(entered))
    redis.call('LTRIM', ARGV[1] .. 'review:durations', 0, 999)
  end
end
if now == 'needs_review' then
  local at = val('recheck_at')
  if at ~= '' then
    redis.call('ZADD', KEYS[7], at, id)
  elseif state == 'needs_review' or cur.recheck_at ~= '' then
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
    'refund_id', id, 'provider', cur.provider, 'from', state, 'to', now,
    'at', ARGV[6], 'provider_ref', val('provider_ref'), 'reason', val('last_error'))
end
if final then
  if not (state == 'needs_review' or state == 'succeeded' or state == 'failed') then
    redis.call('ZREM', KEYS[3], id)
  end
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
if KEYS[8] ~= '' and redis.call('EXISTS', KEYS[8]) == 1 then
  -- What asynqmon shows of the task (asynq's ResultWriter writes the same
  -- field), in this round trip rather than one more. Never into a task asynq
  -- has deleted meanwhile: a hash with only a result is no task to asynq,
  -- and its id could not be enqueued again.
  redis.call('HSET', KEYS[8], 'result', ARGV[9])
end
if string.sub(ARGV[8], 1, 1) == '1' then
  -- The fence and owner above are ours, so the lease is ours or has lapsed
  -- with no one taking it since (taking it moves the fence).
  redis.call('DEL', KEYS[6])
end
return attempt
