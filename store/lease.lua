-- KEYS: record, lease. ARGV: ttl ms.
-- Takes the refund for one worker: refused while another holds the lease;
-- otherwise bumps the record's fence and returns it as the new owner's token.
-- Returns {token} or {0, pttl of the current lease}.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND')
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, redis.call('PTTL', KEYS[2])}
end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('SET', KEYS[2], token, 'PX', ARGV[1])
return {token}
