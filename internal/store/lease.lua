-- KEYS: record, lease. ARGV: ttl ms, owner id.
-- Takes the refund for one worker: refused while another holds the lease;
-- otherwise bumps the record's fence, names the owner, and returns the token
-- with the record as it is now (one round trip for both).
-- Returns {token, {field, value, ...}, Redis TIME} or {0, pttl of the current
-- lease}. Redis's clock is the one clock every worker shares: the lease
-- stamps what it writes with it, so one worker's sent_at is read right on
-- another whose clock is off.
-- Every refund pays for these commands: the record is read once, and the
-- fence and owner are computed from it rather than read back.
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then
  return redis.error_reply('NOTFOUND no such refund')
end
local fence = 0
for i = 1, #rec, 2 do
  if rec[i] == 'fence' then
    fence = tonumber(rec[i + 1]) or 0
    break
  end
end
local token = fence + 1
if not redis.call('SET', KEYS[2], token .. ':' .. ARGV[2], 'NX', 'PX', ARGV[1]) then
  return {0, redis.call('PTTL', KEYS[2])}
end
redis.call('HSET', KEYS[1], 'fence', token, 'owner', ARGV[2])
return {token, rec, redis.call('TIME')}
