-- KEYS: record, due index, the order's refunds.
-- ARGV: key prefix, now ms, ms until due (on Redis's clock, as every due
-- time), "1" when the provider refunds an order
-- once (else "0"), then field/value pairs.
-- Returns 1 when created, 0 when the refund id already exists (nothing changed).
-- Where the provider refunds an order once, a new refund is refused while another
-- refund on the order is anything but failed. The other refunds' records and the
-- state index are named from the prefix, not passed as KEYS: the store's scripts
-- span several keys and assume one Redis server (not Redis Cluster).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
if ARGV[4] == '1' then
  for _, other in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    local state = redis.call('HGET', ARGV[1] .. 'refund:' .. other, 'state')
    if state and state ~= 'failed' then
      return redis.error_reply('ORDERTAKEN ' .. state .. ' ' .. other)
    end
  end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
local id = redis.call('HGET', KEYS[1], 'refund_id')
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], string.format('%d', t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[3])), id)
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('ZADD', ARGV[1] .. 'state:queued', ARGV[2], id)
redis.call('XADD', ARGV[1] .. 'events', '*',
  'refund_id', id, 'provider', redis.call('HGET', KEYS[1], 'provider'), 'from', '', 'to', 'queued',
  'at', ARGV[2], 'provider_ref', '', 'reason', '')
return 1
