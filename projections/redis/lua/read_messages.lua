-- Reads a page of a conversation's messages, with the reader's role from the
-- workspaces model.
--
-- KEYS: the messages' and the workspaces' meta hashes. ARGV: log id, the
-- cursors each model must have reached (tx and pos of the messages', then of
-- the workspaces'; '' when none), the messages' and workspaces' bases,
-- conversation id, user id, after (position), count.
--
-- Returns {'ok', workspace id, role, messages...} or a one-word refusal
-- (unavailable, behind, missing, window).

local mm = redis.call('HMGET', KEYS[1], 'state', 'gen', 'tx', 'pos', 'log')
if mm[1] ~= 'live' or mm[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[2] ~= '' and before(mm[3], mm[4], ARGV[2], ARGV[3]) then return {'behind'} end
local mw = redis.call('HMGET', KEYS[2], 'state', 'gen', 'tx', 'pos', 'log')
if mw[1] ~= 'live' or mw[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[4] ~= '' and before(mw[3], mw[4], ARGV[4], ARGV[5]) then return {'behind'} end
local c = ARGV[6] .. mm[2] .. ':c:' .. ARGV[8]
local h = redis.call('HMGET', c, 'ws', 't')
if not h[1] then return {'missing'} end
if tonumber(ARGV[10]) < tonumber(h[2] or '0') then return {'window'} end
local role = redis.call('HGET', ARGV[7] .. mw[2] .. ':w:' .. h[1] .. ':members', ARGV[9]) or ''
local items = redis.call('ZRANGEBYSCORE', c .. ':m', '(' .. ARGV[10], '+inf', 'LIMIT', 0, tonumber(ARGV[11]))
local out = {'ok', h[1], role}
for _, it in ipairs(items) do out[#out + 1] = it end
return out
