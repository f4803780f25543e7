-- Starts a rebuild: a new generation, owned by a token.
--
-- KEYS[1] is the meta hash; ARGV: token, log id. A meta hash of another log
-- is dropped (its keys are deleted by the rebuild). Returns the new
-- generation and the live one ('' for none).

local meta = KEYS[1]
local log = redis.call('HGET', meta, 'log')
if log and log ~= ARGV[2] then
  local gens = redis.call('HGET', meta, 'gens') or '0'
  redis.call('DEL', meta)
  redis.call('HSET', meta, 'gens', gens)
end
local g = redis.call('HINCRBY', meta, 'gens', 1)
redis.call('HSET', meta, 'btoken', ARGV[1], 'bgen', g, 'btx', '0', 'bpos', '0', 'log', ARGV[2])
if not redis.call('HGET', meta, 'state') then redis.call('HSET', meta, 'state', 'none') end
return {g, redis.call('HGET', meta, 'gen') or ''}
