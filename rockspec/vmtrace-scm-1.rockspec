-- The one rock of vmtrace: the core module (vmtrace.core: Lua 5.4, cJSON,
-- libuuid, libc/libm) and the OTLP/HTTP exporter module (vmtrace.otlp_http:
-- libcurl, zlib), built by the same Makefile as `make`, with the same
-- optimisation and visibility flags. The exporter is a module of its own,
-- loaded on the first vmtrace.otlp.start, so the core runs where libcurl is
-- not installed. One rock, so that a plain `luarocks make` finds it.
rockspec_format = "3.0"
package = "vmtrace"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "Tracing spans for Lua 5.4 agents, in C",
  detailed = [[
    A tree of spans (pipeline, fn_call, llm_call, tool_call, ...) with metadata,
    links and events, recorded by a C core and exported to the tools people
    already use: OpenTelemetry collectors, Perfetto, speedscope, flame graphs
    and a self-contained HTML report.
  ]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
-- curl and zlib headers are found by the compiler (Debian keeps curl/curl.h
-- in the multiarch include directory, which luarocks' own header check does
-- not search), so only cJSON and libuuid are checked here.
external_dependencies = {
  CJSON = { header = "cjson/cJSON.h", library = "cjson" },
  UUID = { header = "uuid/uuid.h", library = "uuid" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
  },
  install_target = "install-rock",
  -- the install pass gets the same CFLAGS: the Makefile records the flags its
  -- objects were built with (build/obj/cflags.txt) and would build them again
  install_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
  },
  install = { bin = { vmtrace = "bin/vmtrace" } },
}
test = { type = "busted" }
