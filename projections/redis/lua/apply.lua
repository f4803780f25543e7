-- Applies one event to a read model and moves its checkpoint.
--
-- KEYS[1] is the meta hash. ARGV: mode (live: from the consumer group;
-- build: from a rebuild), build token, log id, tx, pos, the group's previous
-- tx and pos, the base of the generations' keys, the message window, then
-- the operations (name, number of arguments, arguments).
--
-- The meta hash holds: log (the log's id), state (live, stale or none),
-- gen, tx and pos (the live generation and its checkpoint), gens (the last
-- generation number given out) and, while a rebuild runs, btoken, bgen, btx
-- and bpos.
--
-- Returns applied, duplicate (at or before the checkpoint), gap (the model
-- missed an event and is now stale), skipped (no live model), foreign (the
-- model is another log's) or aborted (the rebuild lost its token).

local meta = KEYS[1]
local tx, pos = ARGV[4], ARGV[5]
local gen
if ARGV[1] == 'live' then
  local m = redis.call('HMGET', meta, 'state', 'gen', 'tx', 'pos', 'log')
  if m[5] and m[5] ~= ARGV[3] then return 'foreign' end
  local ctx, cpos = m[3] or '0', m[4] or '0'
  if m[1] ~= 'live' then
    -- No model to apply to: remember how far the group went, for the
    -- rebuild to know when it has caught up.
    if before(ctx, cpos, tx, pos) then redis.call('HSET', meta, 'tx', tx, 'pos', pos) end
    if not m[1] then redis.call('HSET', meta, 'state', 'none', 'log', ARGV[3]) end
    return 'skipped'
  end
  if not before(ctx, cpos, tx, pos) then return 'duplicate' end
  if before(ctx, cpos, ARGV[6], ARGV[7]) then
    redis.call('HSET', meta, 'state', 'stale', 'tx', tx, 'pos', pos)
    return 'gap'
  end
  gen = m[2]
  redis.call('HSET', meta, 'tx', tx, 'pos', pos)
else
  local m = redis.call('HMGET', meta, 'btoken', 'bgen', 'btx', 'bpos')
  if m[1] ~= ARGV[2] then return 'aborted' end
  if not before(m[3], m[4], tx, pos) then return 'duplicate' end
  gen = m[2]
  redis.call('HSET', meta, 'btx', tx, 'bpos', pos)
end
local base = ARGV[8] .. gen .. ':'
local window = tonumber(ARGV[9])
local i = 10
while i <= #ARGV do
  local name, n = ARGV[i], tonumber(ARGV[i + 1])
  local a = i + 2
  if name == 'conv' then
    redis.call('HSETNX', base .. 'c:' .. ARGV[a], 'ws', ARGV[a + 1])
  elseif name == 'msg' then
    local c = base .. 'c:' .. ARGV[a]
    if redis.call('EXISTS', c) == 1 then
      local trimmed = tonumber(redis.call('HGET', c, 't') or '0')
      local p = tonumber(ARGV[a + 1])
      if p > trimmed then
        local ms = c .. ':m'
        redis.call('ZADD', ms, ARGV[a + 1], ARGV[a + 2])
        local over = redis.call('ZCARD', ms) - window
        if over > 0 then
          local popped = redis.call('ZPOPMIN', ms, over)
          redis.call('HSET', c, 't', popped[#popped])
        end
      end
    end
  elseif name == 'wscreate' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 0 then
      local owner, score = ARGV[a + 1], ARGV[a + 2]
      local fields = {'score', score}
      for j = a + 3, a + n - 1 do fields[#fields + 1] = ARGV[j] end
      redis.call('HSET', w, unpack(fields))
      redis.call('HSET', w .. ':members', owner, 'owner')
      redis.call('ZADD', base .. 'u:' .. owner .. ':w', score, ARGV[a])
    end
  elseif name == 'wsset' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      local fields = {}
      for j = a + 1, a + n - 1 do fields[#fields + 1] = ARGV[j] end
      redis.call('HSET', w, unpack(fields))
    end
  elseif name == 'wsmember' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      redis.call('HSET', w .. ':members', ARGV[a + 1], ARGV[a + 2])
      redis.call('ZADD', base .. 'u:' .. ARGV[a + 1] .. ':w', redis.call('HGET', w, 'score'), ARGV[a])
    end
  elseif name == 'wsremove' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      redis.call('HDEL', w .. ':members', ARGV[a + 1])
      redis.call('ZREM', base .. 'u:' .. ARGV[a + 1] .. ':w', ARGV[a])
    end
  end
  i = a + n
end
return 'applied'
