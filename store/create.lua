-- KEYS: record, history, index, queued set, the order's refunds. ARGV: history entry, created-at ms,
-- the record-key prefix when the provider refunds an order once ("" otherwise), then field/value pairs.
-- Returns 1 when created, 0 when the refund id already exists (nothing changed). Where the
-- provider refunds an order once, a new refund is refused while another refund on the order
-- is anything but failed. The other refunds' records are read by name, not passed as KEYS: the
-- store's scripts span several keys and assume one Redis server (not Redis Cluster).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[3] ~= '' then
  for _, other in ipairs(redis.call('SMEMBERS', KEYS[5])) do
    local state = redis.call('HGET', ARGV[3] .. other, 'state')
    if state and state ~= 'failed' then
      return redis.error_reply('ORDERTAKEN ' .. state .. ' ' .. other)
    end
  end
end
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('RPUSH', KEYS[2], ARGV[1])
local id = redis.call('HGET', KEYS[1], 'refund_id')
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('ZADD', KEYS[4], ARGV[2], id)
redis.call('SADD', KEYS[5], id)
return 1
