-- KEYS: record, history, queued set, and (when a provider_ref is written) the
-- order's reference owners. ARGV: fencing token, history entry, send flag
-- ("1" = a new attempt goes out), then field/value pairs.
-- A write is refused when a newer owner took the refund (its fence is higher
-- than our token), when the refund is succeeded or failed (those never
-- change), and when the provider_ref it writes already belongs to another
-- refund on the order. Returns the attempt number for a send, else 0.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND')
end
local fence = redis.call('HGET', KEYS[1], 'fence') or '0'
if ARGV[1] ~= fence then
  return redis.error_reply('FENCED token ' .. ARGV[1] .. ' but fence is ' .. fence)
end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'succeeded' or state == 'failed' then
  return redis.error_reply('CLOSED ' .. state)
end
-- One provider refund belongs to one of our refunds. Two refunds of the same
-- amount on one order, with no key to tell them apart (Ecart Pay), could
-- otherwise both claim the one that was applied, and the other would never
-- be paid.
if KEYS[4] then
  local id = redis.call('HGET', KEYS[1], 'refund_id')
  for i = 4, #ARGV, 2 do
    if ARGV[i] == 'provider_ref' then
      local owner = redis.call('HGET', KEYS[4], ARGV[i + 1])
      if owner and owner ~= id then
        return redis.error_reply('REFTAKEN ' .. owner)
      end
      redis.call('HSET', KEYS[4], ARGV[i + 1], id)
    end
  end
end
local attempt = 0
local entry = ARGV[2]
if ARGV[3] == '1' then
  attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
  redis.call('HSET', KEYS[1], 'in_flight', attempt)
  entry = string.sub(entry, 1, -2) .. ',"attempt":' .. attempt .. '}'
end
for i = 4, #ARGV, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  if f == 'pending_since_if_unset' then
    local cur = redis.call('HGET', KEYS[1], 'pending_since')
    if not cur or cur == '' then
      redis.call('HSET', KEYS[1], 'pending_since', v)
    end
  else
    redis.call('HSET', KEYS[1], f, v)
  end
end
redis.call('RPUSH', KEYS[2], entry)
if redis.call('HGET', KEYS[1], 'state') ~= 'queued' then
  redis.call('ZREM', KEYS[3], redis.call('HGET', KEYS[1], 'refund_id'))
end
return attempt
