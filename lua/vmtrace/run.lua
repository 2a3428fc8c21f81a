--- vmtrace.run: `vmtrace run [options] script.lua [args...]`: run a script
-- under tracing, unchanged, as lua5.4 would run it (arg, ..., exit status,
-- uncaught errors, os.exit), inside one `pipeline` span named after the
-- script, with automatic spans (vmtrace.auto); what was recorded is written
-- at the end, also when the script fails or calls os.exit.
-- @module vmtrace.run
local vmtrace = require "vmtrace"
local core = require "vmtrace.core"

local M = {}

M.USAGE = [[
usage: vmtrace run [options] script.lua [args...]
  --calls          an fn_call span per Lua function call (a call hook)
  --include PAT    trace the functions of chunks matching the Lua pattern PAT
                   (repeatable; default: files under the script's directory)
  --exclude PAT    never trace chunks matching PAT (repeatable)
  --min-ms N       drop calls shorter than N milliseconds
  --no-requires    no import span per require
  --no-coroutines  no spawn span per coroutine
  -o FILE          write the trace to FILE, in the format its name ends with:
                   .json (span list), .ndjson (stream, written live, crash-safe),
                   .otlp.json (OTLP/JSON), .trace.json or .chrome.json (Chrome
                   trace: Perfetto, speedscope), .folded (flame graphs), .html
  --to FORMAT      the format of -o: json, ndjson, otlp, chrome, folded, html
  --summary        print the summary tree on stderr at the end
  --profile        print the run profile on stderr at the end
  --otlp           send the spans over OTLP/HTTP (settings from OTEL_*)]]

-- A failure the user caused: printed as "vmtrace run: ..." with no traceback.
local Usage = {}
local function fail(fmt, ...) error(setmetatable({ msg = fmt:format(...) }, Usage), 0) end
M.Usage = Usage

local FORMATS = { json = true, ndjson = true, otlp = true, chrome = true, folded = true, html = true }

--- The format a file name asks for, or nil.
function M.format_of(path)
  local lower = path:lower()
  if lower:match("%.otlp%.json$") then return "otlp" end
  if lower:match("%.trace%.json$") or lower:match("%.chrome%.json$") then return "chrome" end
  if lower:match("%.ndjson$") then return "ndjson" end
  if lower:match("%.json$") then return "json" end
  if lower:match("%.folded$") then return "folded" end
  if lower:match("%.html?$") then return "html" end
  return nil
end

--- Options from args[first..]: the options, then the script and its
-- arguments (everything from the script on belongs to the script).
function M.parse(args, first)
  local o = { include = {}, exclude = {}, script_args = {} }
  local i = first or 1
  while i <= #args do
    local a = args[i]
    local function value(what)
      i = i + 1
      local v = args[i]
      if v == nil then fail("%s needs %s", a, what) end
      return v
    end
    if a == "--" then
      i = i + 1
      break
    elseif a == "--calls" then o.calls = true
    elseif a == "--include" then o.include[#o.include + 1] = value("a Lua pattern")
    elseif a == "--exclude" then o.exclude[#o.exclude + 1] = value("a Lua pattern")
    elseif a == "--min-ms" then
      local v = value("a number of milliseconds")
      local n = tonumber(v)
      if not n or n < 0 or n ~= n or n == math.huge then
        fail("--min-ms needs a number of milliseconds >= 0, got '%s'", v)
      end
      o.min_ms = n
    elseif a == "--no-requires" then o.no_requires = true
    elseif a == "--no-coroutines" then o.no_coroutines = true
    elseif a == "-o" or a == "--output" then o.out = value("a file name")
    elseif a == "--to" then
      o.to = value("a format (json, ndjson, otlp, chrome, folded, html)")
      if not FORMATS[o.to] then
        fail("--to: unknown format '%s' (expected json, ndjson, otlp, chrome, folded, html)", o.to)
      end
    elseif a == "--summary" then o.summary = true
    elseif a == "--profile" then o.profile = true
    elseif a == "--otlp" then o.otlp = true
    elseif a:sub(1, 1) == "-" and a ~= "-" then fail("unknown option %s", a)
    else break end
    i = i + 1
  end
  o.script = args[i]
  for j = i + 1, #args do o.script_args[#o.script_args + 1] = args[j] end
  for _, p in ipairs(o.include) do
    local ok, err = pcall(string.find, "", p)
    if not ok then fail("--include '%s' is not a Lua pattern: %s", p, (tostring(err):gsub("^.-:%d+: ", ""))) end
  end
  for _, p in ipairs(o.exclude) do
    local ok, err = pcall(string.find, "", p)
    if not ok then fail("--exclude '%s' is not a Lua pattern: %s", p, (tostring(err):gsub("^.-:%d+: ", ""))) end
  end
  if o.to and not o.out then fail("--to needs -o FILE") end
  if o.out then
    o.format = o.to or M.format_of(o.out)
    if not o.format then
      fail("-o %s: cannot tell the format from the file name (.json, .ndjson, .otlp.json, "
        .. ".trace.json, .folded, .html); use --to FORMAT", o.out)
    end
  end
  if (#o.include > 0 or #o.exclude > 0 or o.min_ms) and not o.calls then
    fail("%s is for calls: add --calls", #o.include > 0 and "--include" or #o.exclude > 0
      and "--exclude" or "--min-ms")
  end
  return o
end

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end
local function basename(p) return p:match("([^/]*)$") end

-- lua.c's message handler: the message and a traceback (the error object's
-- __tostring, without one, for other values that have it). The report goes
-- to `out`; the error object itself goes on, so that the spans it unwinds
-- get its message.
local function handler(out)
  return function(e)
    local msg = e
    if type(msg) ~= "string" and type(msg) ~= "number" then
      local mt = getmetatable(e)
      if mt and mt.__tostring and type(tostring(e)) == "string" then
        out.report = tostring(e)
        return e
      end
      msg = ("(error object is a %s value)"):format(type(e))
    end
    out.report = debug.traceback(tostring(msg), 2)
    return e
  end
end

-- The traceback as lua5.4 prints it: vmtrace's frames under the script's
-- main chunk left out.
local function trim(tb)
  local cut
  local from = 1
  while true do
    local s = tb:find("\n\t%[C%]: in function 'xpcall'", from)
    if not s then break end
    cut, from = s, s + 1
  end
  if cut then return tb:sub(1, cut - 1) .. "\n\t[C]: in ?" end
  return tb
end

local function write_trace(o)
  local ok, err
  if o.format == "ndjson" then
    ok, err = vmtrace.stream(nil)
  else
    ok, err = vmtrace.export(o.format, o.out)
  end
  if not ok then
    if o.format == "html" then
      return ("cannot write %s: the HTML report is not available in this build (%s)"):format(o.out, err)
    end
    return ("cannot write %s: %s"):format(o.out, err)
  end
end

--- Run `vmtrace run` with the command's args (args[first] is the first
-- argument after "run"); returns the exit status.
function M.main(args, first)
  local o
  local ok, err = pcall(function() o = M.parse(args, first) end)
  if not ok then
    if getmetatable(err) ~= Usage then error(err, 0) end
    io.stderr:write("vmtrace run: ", err.msg, "\n")
    return 1
  end
  if not o.script then
    io.stderr:write(M.USAGE, "\n")
    return 1
  end
  local progname = args[-1] or "lua5.4"
  local chunk, lerr = loadfile(o.script)
  if not chunk then
    io.stderr:write(progname, ": ", lerr, "\n")
    return 1
  end
  if o.format == "html" then -- before running anything: can this build write it?
    local tmp = os.tmpname()
    local hok, s, herr = pcall(vmtrace.export, "html", tmp)
    os.remove(tmp)
    if not (hok and s) then
      io.stderr:write(("vmtrace run: -o %s: the HTML report is not available in this build "
        .. "(vmtrace.export(\"html\") failed: %s)\n"):format(o.out, tostring(hok and herr or s)))
      return 1
    end
  end

  vmtrace.enable()
  if o.format == "ndjson" then
    local sok, serr = vmtrace.stream(o.out)
    if not sok then
      io.stderr:write("vmtrace run: cannot write ", o.out, ": ", tostring(serr), "\n")
      return 1
    end
  end
  if o.otlp then
    local eok, eerr = pcall(vmtrace.otlp.start)
    if not eok then
      io.stderr:write("vmtrace run: --otlp: ", tostring(eerr), "\n")
      return 1
    end
  end
  local root = vmtrace.start("pipeline", basename(o.script))

  local real_exit = os.exit
  local done = false
  -- The end of the run, however it ends: automatic spans off (calls still
  -- running end here), the root finished, the trace written.
  local function finish(failure)
    if done then return end
    done = true
    vmtrace.auto(false)
    if failure then core._mark_error(root, failure) end
    vmtrace.finish(root)
    local problem = o.out and write_trace(o)
    io.stdout:flush() -- the script's output first
    if o.summary then io.stderr:write(vmtrace.summary(), "\n") end
    if o.profile then io.stderr:write(vmtrace.export("profile")) end
    if o.otlp then vmtrace.otlp.shutdown() end
    if problem then io.stderr:write("vmtrace run: ", problem, "\n") end
    return problem
  end
  os.exit = function(code, close)
    local status = code
    if status == nil or status == true then status = 0 elseif status == false then status = 1 end
    finish(status ~= 0 and ("os.exit(" .. tostring(code) .. ")") or nil)
    os.exit = real_exit
    return real_exit(code, close)
  end

  local script_arg = { [0] = o.script, [-1] = progname }
  for i, a in ipairs(o.script_args) do script_arg[i] = a end
  _G.arg = script_arg

  local calls = false
  if o.calls then
    calls = {
      include = #o.include > 0 and o.include or nil,
      exclude = o.exclude,
      min_ms = o.min_ms,
    }
  end
  require("vmtrace.auto").auto({ calls = calls, requires = not o.no_requires,
    coroutines = not o.no_coroutines }, 1, dirname(o.script))
  local report = {}
  local rok, rerr = xpcall(chunk, handler(report), table.unpack(o.script_args))
  local problem = finish(not rok and rerr or nil)
  os.exit = real_exit
  if not rok then
    io.stderr:write(progname, ": ", trim(report.report or tostring(rerr)), "\n")
    return 1
  end
  return problem and 1 or 0
end

return M
