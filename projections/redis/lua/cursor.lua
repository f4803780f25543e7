-- Cursors are (transaction id, position) pairs of decimal strings, compared
-- without converting them to Lua's floating-point numbers. This file is
-- prepended to the scripts that compare cursors.

local function lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function before(tx1, p1, tx2, p2)
  if tx1 ~= tx2 then return lt(tx1, tx2) end
  return lt(p1, p2)
end
