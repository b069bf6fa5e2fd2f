-- KEYS: record, history. ARGV: key prefix, refund id, state the
-- caller saw it in, that state's cut-off (ms).
-- Deletes a final refund whose retention is over, with its history and its
-- entries in the order, reference and state indexes; returns 1 if it did.
-- A refund that changed since the caller looked (settled from needs_review,
-- say) is left alone (0).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('ZREM', ARGV[1] .. 'state:' .. ARGV[3], ARGV[2])
  return 0
end
if state ~= ARGV[3] or (state ~= 'succeeded' and state ~= 'failed') then
  return 0
end
local since = redis.call('ZSCORE', ARGV[1] .. 'state:' .. state, ARGV[2])
if not since or tonumber(since) > tonumber(ARGV[4]) then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'provider', 'order_id', 'provider_ref')
local order = ARGV[1] .. 'order:' .. f[1] .. ':' .. f[2]
redis.call('ZREM', order, ARGV[2])
if f[3] and f[3] ~= '' then
  local refs = ARGV[1] .. 'refs:' .. f[1] .. ':' .. f[2]
  if redis.call('HGET', refs, f[3]) == ARGV[2] then
    redis.call('HDEL', refs, f[3])
  end
  local byref = ARGV[1] .. 'byref:' .. f[1]
  if redis.call('HGET', byref, f[3]) == ARGV[2] then
    redis.call('HDEL', byref, f[3])
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', ARGV[1] .. 'state:' .. state, ARGV[2])
return 1
