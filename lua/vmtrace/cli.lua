--- vmtrace.cli: the `vmtrace` command.
--   vmtrace run [options] script.lua [args...]   (vmtrace.run)
--   vmtrace convert IN --to json|otlp|chrome|folded|html [--weight time|tokens|cost] [-o OUT]
--   vmtrace summary IN
--   vmtrace profile IN
--   vmtrace report IN [-o OUT.html]
-- IN is a JSON span file (vmtrace.export "json") or an NDJSON stream
-- (vmtrace.stream), also one cut off by a crash.
-- @module vmtrace.cli
local vmtrace = require "vmtrace"

local M = {}

local USAGE = [[
usage: vmtrace convert IN --to json|otlp|chrome|folded|html [--weight time|tokens|cost] [-o OUT]
       vmtrace summary IN
       vmtrace profile IN
       vmtrace report IN [-o OUT.html]   (OUT defaults to IN with .html)
       vmtrace run [options] script.lua [args...]   (vmtrace run --help: its options)
IN is a JSON span file (vmtrace.export "json") or an NDJSON stream
(vmtrace.stream), also one cut off by a crash. OUT defaults to stdout.]]

local FORMATS = { json = true, otlp = true, chrome = true, folded = true, profile = true, html = true }
local WEIGHTS = { time = true, tokens = true, cost = true }

-- A failure the user caused: printed without a traceback.
local Usage = {}
local function fail(fmt, ...) error(setmetatable({ msg = fmt:format(...) }, Usage), 0) end

local function parse(args)
  local o = { cmd = args[1] }
  local i = 2
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then fail("%s needs a value", a) end
      return args[i]
    end
    if a == "--to" then o.to = value()
    elseif a == "--weight" then o.weight = value()
    elseif a == "-o" or a == "--output" then o.out = value()
    elseif a:sub(1, 1) == "-" and a ~= "-" then fail("unknown option %s", a)
    elseif o.input then fail("more than one input file (%s and %s)", o.input, a)
    else o.input = a end
    i = i + 1
  end
  return o
end

local function load(input)
  if not input then fail("no input file") end
  local n, info = vmtrace.load(input)
  if not n then fail("%s", info) end
  if info.skipped_lines > 0 then
    io.stderr:write(("vmtrace: %s: skipped %d torn or corrupt line%s\n"):format(input,
      info.skipped_lines, info.skipped_lines == 1 and "" or "s"))
  end
  return n
end

local function write(text, out)
  if out then
    local ok, err
    local f, ferr = io.open(out, "wb")
    if not f then fail("%s", ferr) end
    ok, err = f:write(text)
    f:close()
    if not ok then fail("cannot write %s: %s", out, err) end
  else
    io.stdout:write(text)
  end
end

local commands = {}

function commands.convert(o)
  if not o.to then fail("convert needs --to json|otlp|chrome|folded") end
  if not FORMATS[o.to] then fail("unknown format '%s' (expected json, otlp, chrome, folded, html)", o.to) end
  if o.weight and not WEIGHTS[o.weight] then
    fail("unknown weight '%s' (expected time, tokens, cost)", o.weight)
  end
  if o.weight and o.to ~= "folded" then fail("--weight is for --to folded") end
  load(o.input)
  local opts = { weight = o.weight }
  if o.out then
    local ok, err = vmtrace.export(o.to, o.out, opts)
    if not ok then fail("%s", err) end
  else
    local ok, err = vmtrace.export(o.to, io.stdout, opts)
    if not ok then fail("%s", err) end
  end
end

function commands.summary(o)
  load(o.input)
  write(vmtrace.summary() .. "\n", o.out)
end

function commands.report(o)
  load(o.input)
  local out = o.out or (o.input:gsub("%.n?d?json$", "") .. ".html")
  if out == o.input then out = o.input .. ".html" end
  local ok, err = vmtrace.export("html", out)
  if not ok then fail("%s", err) end
  io.stderr:write("vmtrace: wrote ", out, "\n")
end

function commands.profile(o)
  load(o.input)
  write(vmtrace.export("profile"), o.out)
end

--- Run the command with `args`; returns the exit status.
function M.main(args)
  if args[1] == "run" then
    if args[2] == "-h" or args[2] == "--help" then
      io.stdout:write(require("vmtrace.run").USAGE, "\n")
      return 0
    end
    return require("vmtrace.run").main(args, 2)
  end
  if #args == 0 or args[1] == "-h" or args[1] == "--help" or args[1] == "help" then
    io.stdout:write(USAGE, "\n")
    return #args == 0 and 1 or 0
  end
  local ok, err = pcall(function()
    local o = parse(args)
    local cmd = commands[o.cmd]
    if not cmd then fail("unknown command '%s'", tostring(o.cmd)) end
    cmd(o)
  end)
  if ok then return 0 end
  if getmetatable(err) == Usage then
    io.stderr:write("vmtrace: ", err.msg, "\n")
    if err.msg:match("^unknown command") or err.msg:match("^no input") then
      io.stderr:write(USAGE, "\n")
    end
    return 1
  end
  io.stderr:write("vmtrace: internal error: ", tostring(err), "\n")
  return 2
end

return M
