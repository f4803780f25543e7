-- Makes a rebuilt generation live once it has reached the consumer group's
-- cursor (or, with force, in any case).
--
-- KEYS[1] is the meta hash; ARGV: token, force ('1' or '0'). Returns
-- {'live', the replaced generation}, {'behind'} or {'aborted'}.

local meta = KEYS[1]
local m = redis.call('HMGET', meta, 'btoken', 'bgen', 'btx', 'bpos', 'tx', 'pos', 'gen')
if m[1] ~= ARGV[1] then return {'aborted'} end
if before(m[3], m[4], m[5] or '0', m[6] or '0') and ARGV[2] ~= '1' then return {'behind'} end
redis.call('HSET', meta, 'state', 'live', 'gen', m[2], 'tx', m[3], 'pos', m[4])
redis.call('HDEL', meta, 'btoken', 'bgen', 'btx', 'bpos')
return {'live', m[7] or ''}
