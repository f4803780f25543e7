-- Reads the first page of a user's workspaces, newest first.
--
-- KEYS[1] is the meta hash. ARGV: log id, required tx and pos, base, user
-- id, count. Returns {'ok', then per workspace: id, owner_id, name,
-- description, config, archived, created_at, updated_at, version, role} or a
-- one-word refusal (unavailable, behind).

local mw = redis.call('HMGET', KEYS[1], 'state', 'gen', 'tx', 'pos', 'log')
if mw[1] ~= 'live' or mw[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[2] ~= '' and before(mw[3], mw[4], ARGV[2], ARGV[3]) then return {'behind'} end
local b = ARGV[4] .. mw[2] .. ':'
local ids = redis.call('ZREVRANGE', b .. 'u:' .. ARGV[5] .. ':w', 0, tonumber(ARGV[6]) - 1)
local out = {'ok'}
for _, id in ipairs(ids) do
  local w = b .. 'w:' .. id
  local f = redis.call('HMGET', w, 'owner_id', 'name', 'description', 'config', 'archived', 'created_at', 'updated_at', 'version')
  out[#out + 1] = id
  for k = 1, 8 do out[#out + 1] = f[k] or '' end
  out[#out + 1] = redis.call('HGET', w .. ':members', ARGV[5]) or ''
end
return out
