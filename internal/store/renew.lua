-- KEYS: lease. ARGV: token:owner, ttl ms. Extends our lease, or says it is lost (0).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
