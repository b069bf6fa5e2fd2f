-- KEYS: record, lease. ARGV: ttl ms, owner id.
-- Takes the refund for one worker: refused while another holds the lease;
-- otherwise bumps the record's fence, names the owner, and returns the token
-- with the record as it is now (one round trip for both).
-- Returns {token, {field, value, ...}, Redis TIME} or {0, pttl of the current
-- lease}. Redis's clock is the one clock every worker shares: the lease
-- stamps what it writes with it, so one worker's sent_at is read right on
-- another whose clock is off.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('NOTFOUND no such refund')
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, redis.call('PTTL', KEYS[2])}
end
local token = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[2])
redis.call('SET', KEYS[2], token .. ':' .. ARGV[2], 'PX', ARGV[1])
return {token, redis.call('HGETALL', KEYS[1]), redis.call('TIME')}
