-- Extends a lock its owner holds. KEYS[1] is the lock; ARGV: the owner's
-- token, the new time to live in milliseconds.

if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
