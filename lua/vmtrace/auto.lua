--- vmtrace.auto: automatic spans (issue 11). This file checks the options
-- and builds the policy that says which chunks are traced (asked once per
-- chunk); the call hook, the require and coroutine wrappers are C
-- (csrc/lua/l_auto.c).
-- @module vmtrace.auto
local core = require "vmtrace.core"

local M = {}

local function fail(msg, level) core._argerror("auto", 1, msg, (level or 1) + 1) end

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end

local function real(p)
  local r = core._realpath(p)
  if r and #r > 1 then r = r:gsub("/+$", "") end
  return r
end

-- Is the canonical path `path` inside directory `dir`?
local function under(path, dir)
  return dir == "/" or path == dir or path:sub(1, #dir + 1) == dir .. "/"
end

--- The directories of installed rocks: the roots of package.path and
-- package.cpath that are Lua trees (`.../share/lua/5.x/`, `.../lib/lua/5.x/`,
-- luarocks trees), not `./?.lua` or a project's own directories.
function M.rock_roots(path, cpath)
  local roots, seen = {}, {}
  for tmpl in ((path or package.path) .. ";" .. (cpath or package.cpath)):gmatch("[^;]+") do
    local dir = tmpl:match("^(.-)[^/]*%?")
    if dir and dir ~= "" and (dir:find("/share/lua/", 1, true) or dir:find("/lib/lua/", 1, true)
        or dir:find("luarocks", 1, true) or dir:find("lua_modules", 1, true)) then
      local r = real(dir)
      if r and not seen[r] then
        seen[r] = true
        roots[#roots + 1] = r
      end
    end
  end
  return roots
end

-- vmtrace's own Lua files: never traced.
local OWN = real(dirname((debug.getinfo(1, "S").source:gsub("^@", ""))))

--- The policy: `traced(chunkname)` for the options `o` (checked).
-- Order: an exclude pattern that matches says no; vmtrace's own files are
-- never traced; with include patterns, one must match; by default, chunks
-- loaded from strings are traced, and files under `root` that are not under
-- an installed rocks' directory.
function M.policy(o)
  local include, exclude, root = o.include, o.exclude or {}, o.root
  local roots = M.rock_roots()
  return function(src)
    for i = 1, #exclude do
      if src:find(exclude[i]) then return false end
    end
    local path = src:sub(1, 1) == "@" and src:sub(2) or nil
    local abs = path and (real(path) or path)
    if abs and OWN and under(abs, OWN) then return false end
    if include then
      for i = 1, #include do
        if src:find(include[i]) then return true end
      end
      return false
    end
    if not path then return true end
    for i = 1, #roots do
      if under(abs, roots[i]) then return false end
    end
    return root == nil or under(abs, root)
  end
end

local function patterns(v, what)
  if v == nil then return nil end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" then
    fail(("calls.%s must be a pattern or a list of patterns, got %s"):format(what, type(v)), 3)
  end
  local out = {}
  for i, p in ipairs(v) do
    if type(p) ~= "string" then
      fail(("calls.%s[%d] must be a string (a Lua pattern), got %s"):format(what, i, type(p)), 3)
    end
    local ok, err = pcall(string.find, "", p)
    if not ok then
      fail(("calls.%s[%d] is not a valid Lua pattern (%s): %s"):format(what, i, p,
        tostring(err):gsub("^.-:%d+: ", "")), 3)
    end
    out[i] = p
  end
  if #out == 0 and next(v) ~= nil then fail(("calls.%s must be a list (keys 1..n)"):format(what), 3) end
  return out
end

local KNOWN = { calls = true, requires = true, coroutines = true }
local CALLS = { include = true, exclude = true, min_ms = true, max_depth = true, c = true, root = true }

--- vmtrace.auto(opts) | vmtrace.auto(false) | vmtrace.auto().
-- opts: calls = true | {include =, exclude =, min_ms =, max_depth =, c =,
-- root =}, requires = true, coroutines = true (missing: off). No argument:
-- all three on. `level`: where the default root is taken from (the caller's
-- chunk's directory); `root` (for `vmtrace run`): the default root itself.
function M.auto(opts, level, default_root)
  if opts == false then
    core._auto(false)
    return
  end
  if opts == nil or opts == true then opts = { calls = true, requires = true, coroutines = true } end
  if type(opts) ~= "table" then fail("options table, true or false expected, got " .. type(opts), 2) end
  for k in pairs(opts) do
    if not KNOWN[k] then
      fail(("unknown option '%s' (expected calls, requires, coroutines)"):format(tostring(k)), 2)
    end
  end
  for _, k in ipairs { "requires", "coroutines" } do
    if opts[k] ~= nil and type(opts[k]) ~= "boolean" then
      fail(("opts.%s must be a boolean, got %s"):format(k, type(opts[k])), 2)
    end
  end
  local calls = opts.calls
  local settings = { requires = opts.requires == true, coroutines = opts.coroutines == true }
  if calls ~= nil and type(calls) ~= "boolean" and type(calls) ~= "table" then
    fail("opts.calls must be true, false or a table, got " .. type(calls), 2)
  end
  local c = type(calls) == "table" and calls or {}
  for k in pairs(c) do
    if not CALLS[k] then
      fail(("unknown option calls.%s (expected include, exclude, min_ms, max_depth, c, root)")
        :format(tostring(k)), 2)
    end
  end
  if c.min_ms ~= nil and (type(c.min_ms) ~= "number" or not (c.min_ms >= 0) or c.min_ms == math.huge) then
    fail("calls.min_ms must be a number of milliseconds >= 0, got " .. tostring(c.min_ms), 2)
  end
  if c.max_depth ~= nil and (math.type(c.max_depth) ~= "integer" or c.max_depth < 0) then
    fail("calls.max_depth must be an integer >= 0, got " .. tostring(c.max_depth), 2)
  end
  if c.c ~= nil and type(c.c) ~= "boolean" then
    fail("calls.c must be a boolean, got " .. type(c.c), 2)
  end
  if c.root ~= nil and type(c.root) ~= "string" then
    fail("calls.root must be a directory name, got " .. type(c.root), 2)
  end
  local root = c.root or default_root
  if root == nil then -- the directory of the chunk that turned auto on
    local info = debug.getinfo((level or 1) + 1, "S")
    local src = info and info.source or ""
    root = src:sub(1, 1) == "@" and dirname(src:sub(2)) or "."
  end
  settings.calls = calls ~= nil and calls ~= false
  settings.min_ns = math.floor((c.min_ms or 0) * 1e6)
  settings.max_depth = c.max_depth
  settings.c = c.c == true
  settings.policy = M.policy {
    include = patterns(c.include, "include"),
    exclude = patterns(c.exclude, "exclude"),
    root = real(root) or root,
  }
  core._auto(settings)
end

return M
