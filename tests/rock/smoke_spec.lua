-- tests/rock/smoke_spec.lua: the rock as luarocks installed it (run by
-- tests/rock/run.sh with only the installed tree on the module paths).
local TREE = assert(os.getenv("VT_ROCK_TREE"), "run me through tests/rock/run.sh")
local LOG = os.getenv("VT_ROCK_LOG")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

describe("the installed rock", function()
  local vmtrace = require "vmtrace"
  local core_path = package.searchpath("vmtrace.core", package.cpath)
  local otlp_path = package.searchpath("vmtrace.otlp_http", package.cpath)

  it("is what require finds: the tree's modules, not a checkout's", function()
    assert.truthy(core_path and core_path:find(TREE, 1, true) == 1, tostring(core_path))
    assert.truthy(otlp_path and otlp_path:find(TREE, 1, true) == 1, tostring(otlp_path))
    assert.truthy(package.searchpath("vmtrace", package.path):find(TREE, 1, true) == 1)
  end)

  it("records, summarises, exports and reads back", function()
    vmtrace.enable()
    local run = vmtrace.start("pipeline", "smoke")
    local call = vmtrace.start("llm_call", "plan")
    vmtrace.llm_usage(call, { model = "claude-sonnet-4", provider = "anthropic",
      input_tokens = 100, output_tokens = 10 })
    vmtrace.finish(call)
    vmtrace.finish(run)
    assert.matches("^Trace: 2 spans", vmtrace.summary())
    assert.is_true(vmtrace.llm_totals().cost_usd > 0, "priced from the installed catalog")
    local path = os.tmpname()
    assert.is_true(vmtrace.export("json", path))
    assert.equal(2, (vmtrace.load(path)))
    local out, code = sh(TREE .. "/bin/vmtrace summary " .. path)
    assert.equal(0, code, out)
    assert.matches("pipeline smoke", out, 1, true)
    os.remove(path)
  end)

  it("loads the OTLP/HTTP exporter module on start", function()
    vmtrace.enable()
    -- a closed port: nothing is delivered, but the module loads and runs
    assert.is_true(vmtrace.otlp.start { endpoint = "http://127.0.0.1:9/v1/traces",
      max_retry_ms = 0, timeout_ms = 200 })
    vmtrace.finish(vmtrace.start("tool_call", "t"))
    assert.is_false(vmtrace.otlp.shutdown(2000))
  end)

  it("core.so links no HTTP, compression or TLS library and exports one symbol", function()
    local ldd = sh("ldd " .. core_path)
    for _, lib in ipairs { "curl", "libz", "ssl", "crypto", "gnutls", "pthread" } do
      assert.is_nil(ldd:find(lib, 1, true), lib .. " in:\n" .. ldd)
    end
    assert.truthy(sh("ldd " .. otlp_path):find("libcurl", 1, true))
    local syms = sh("nm -D --defined-only " .. core_path .. " | awk '$2 ~ /[TDB]/ {print $3}'")
    assert.equal("luaopen_vmtrace_core\n", syms)
  end)

  it("was built with the Makefile's optimisation and visibility flags", function()
    local log = read(LOG)
    local compiled, linked = 0, 0
    for line in log:gmatch("[^\n]+") do
      local compile, link = line:find(" -c csrc/", 1, true), line:find(" -shared ", 1, true)
      if compile then -- the flags that make the code: optimisation and visibility
        compiled = compiled + 1
        assert.truthy(line:find("-O2", 1, true), line)
        assert.truthy(line:find("-fvisibility=hidden", 1, true), line)
      elseif link then -- CFLAGS only (luarocks' own, or the checkout's when given)
        linked = linked + 1
        assert.truthy(line:find("-O2", 1, true), line)
      end
    end
    assert.equal(2, linked, "the two modules' link lines in the luarocks log")
    if os.getenv("VT_ROCK_REUSED") == "1" then
      -- the checkout's objects were given: the same flags, so none compiled
      assert.equal(0, compiled, "objects compiled again: the rock's flags differ from the checkout's")
    else
      assert.is_true(compiled > 10, "no compile lines in the luarocks log")
    end
  end)

end)
