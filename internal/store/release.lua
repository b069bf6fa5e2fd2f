-- KEYS: lease. ARGV: token:owner. Drops our lease, never someone else's.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
