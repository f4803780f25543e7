-- Drops a lock its owner holds. KEYS[1] is the lock; ARGV: the owner's
-- token.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
