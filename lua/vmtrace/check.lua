--- vmtrace.check: argument errors for the Lua side, worded like the C side's:
-- "vmtrace.<function>: bad argument #<n> (<what>)" at the caller's line.
-- @module vmtrace.check
local M = {}

--- Raise a bad-argument error for the caller of the function that calls this
-- (`level` counts from that function: 1 means its caller).
function M.argerror(fn, n, msg, level)
  error(("vmtrace.%s: bad argument #%d (%s)"):format(fn, n, msg), (level or 1) + 2)
end

--- Check that v has type `want` (or is nil when optional).
function M.type(fn, n, v, want, optional)
  if (optional and v == nil) or type(v) == want then return end
  M.argerror(fn, n, ("%s expected, got %s"):format(want, type(v)), 2)
end

--- Results of `pcall(f, ...)` made on behalf of the public function `fn`: on
-- an argument error of f, raise it as fn's, its argument number mapped
-- through `args` (f's argument -> fn's), at the caller of fn's caller.
function M.as(fn, args, ok, ...)
  if ok then return ... end
  local err = ...
  if type(err) == "string" then
    local n, msg = err:match("vmtrace%.[%w_.:]+: bad argument #(%d+) %((.*)%)$")
    if n then
      msg = msg:gsub("^opts%.metadata: ", ""):gsub("^opts%.metadata must", "must")
      M.argerror(fn, args[tonumber(n)] or tonumber(n), msg, 2)
    end
  end
  error(err, 0)
end

return M
