-- bench/auto_fib.lua: the call-heavy workload of bench/auto.lua, in a file of
-- its own so that it can be traced or excluded by its chunk name.
local M = {}

function M.fib(n)
  if n < 2 then return n end
  return M.fib(n - 1) + M.fib(n - 2)
end

return M
