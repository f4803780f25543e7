-- Increments KEYS[1] and, when it created the key, sets its expiry to
-- ARGV[1] milliseconds (if positive), atomically: a crash cannot leave a
-- throttling counter without expiry. Returns the new value.

local created = redis.call('EXISTS', KEYS[1]) == 0
local n = redis.call('INCR', KEYS[1])
local ttl = tonumber(ARGV[1])
if created and ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return n
