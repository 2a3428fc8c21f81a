rockspec_format = "3.0"
package = "vmtrace"
version = "scm-1"
source = { url = "git+file://." }
description = {
  summary = "Tracing spans for Lua 5.4 agents, in C",
  detailed = [[
    A tree of spans (pipeline, fn_call, llm_call, tool_call, ...) with metadata,
    links and events, recorded by a C core and exported to the tools people
    already use.
  ]],
  license = "MIT",
}
dependencies = { "lua >= 5.4, < 5.5" }
external_dependencies = {
  CJSON = { header = "cjson/cJSON.h", library = "cjson" },
  UUID = { header = "uuid/uuid.h", library = "uuid" },
  CURL = { header = "curl/curl.h", library = "curl" },
  ZLIB = { header = "zlib.h", library = "z" },
}
build = {
  type = "builtin",
  modules = {
    ["vmtrace.core"] = {
      sources = {
        "csrc/alloc.c", "csrc/clock.c", "csrc/ids.c", "csrc/json.c", "csrc/names.c",
        "csrc/collector.c", "csrc/export_summary.c", "csrc/export.c",
        "csrc/export_otlp.c", "csrc/export_chrome.c", "csrc/export_folded.c",
        "csrc/export_profile.c", "csrc/stream.c", "csrc/reader.c", "csrc/otlp_http.c",
        "csrc/lvmtrace.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "csrc", "$(CJSON_INCDIR)", "$(UUID_INCDIR)", "$(CURL_INCDIR)", "$(ZLIB_INCDIR)" },
      libdirs = { "$(CJSON_LIBDIR)", "$(UUID_LIBDIR)", "$(CURL_LIBDIR)", "$(ZLIB_LIBDIR)" },
      libraries = { "cjson", "uuid", "curl", "z", "m", "pthread" },
    },
    ["vmtrace"] = "lua/vmtrace/init.lua",
    ["vmtrace.timing"] = "lua/vmtrace/timing.lua",
    ["vmtrace.check"] = "lua/vmtrace/check.lua",
    ["vmtrace.profile"] = "lua/vmtrace/profile.lua",
    ["vmtrace.cli"] = "lua/vmtrace/cli.lua",
    ["vmtrace.otlp"] = "lua/vmtrace/otlp.lua",
    ["vmtrace.pricing"] = "lua/vmtrace/pricing.lua",
    ["vmtrace.prices"] = "lua/vmtrace/prices.lua",
  },
  install = { bin = { vmtrace = "bin/vmtrace" } },
}
test = { type = "busted" }
