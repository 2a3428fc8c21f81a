/*
 * test_states.c: two lua_States that load vmtrace share nothing, and a C host
 * reaches a state's collector through vt_lua_collector. Run from the repo
 * root (package.path is "lua/?.lua;lua/?/init.lua"). Every state is closed
 * with lua_close, spans still open or not: a leak checker (valgrind, ASan)
 * run on this binary checks that closing frees everything.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "vmtrace.h"
#include "tap.h"

int luaopen_vmtrace_core(lua_State *L);

/* ---- helpers ------------------------------------------------------------- */

/* A value for one call (the core copies what it is given): built into one
 * builder, valid until the next. */
static vt_vb one;

static const vt_value *one_int(int64_t x) {
  vt_vb_reset(&one);
  vt_vb_int(&one, x);
  return vt_vb_value(&one);
}

static const vt_value *one_num(double x) {
  vt_vb_reset(&one);
  vt_vb_num(&one, x);
  return vt_vb_value(&one);
}

static const vt_value *one_str(const char *s) {
  vt_vb_reset(&one);
  vt_vb_str(&one, s, strlen(s));
  return vt_vb_value(&one);
}

/* A state with the standard libraries, vmtrace.core preloaded, and
 * `require "vmtrace"` served from lua/. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  luaL_requiref(L, "vmtrace.core", luaopen_vmtrace_core, 0);
  lua_pop(L, 1);
  if (luaL_dostring(L, "package.path = 'lua/?.lua;lua/?/init.lua'\n"
                       "v = require 'vmtrace'") != LUA_OK) {
    printf("# cannot load vmtrace: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return NULL;
  }
  return L;
}

/* Run `code`; on an error print it and fail the running test. */
#define RUN(L, code) run_lua((L), (code), __FILE__, __LINE__)
static int run_lua(lua_State *L, const char *code, const char *file,
                   int line) {
  if (luaL_dostring(L, code) == LUA_OK) {
    lua_settop(L, 0);
    return 1;
  }
  tap_fail(file, line, "Lua code ran");
  printf("#   %s\n", lua_tostring(L, -1));
  lua_settop(L, 0);
  return 0;
}

/* The integer value of Lua expression `expr` (or -999 on error/non-integer). */
#define LUA_INT(L, expr) lua_int((L), (expr), __FILE__, __LINE__)
static long long lua_int(lua_State *L, const char *expr, const char *file,
                         int line) {
  long long r = -999;
  int isnum = 0;
  lua_pushfstring(L, "return %s", expr);
  if (luaL_dostring(L, lua_tostring(L, -1)) != LUA_OK) {
    tap_fail(file, line, expr);
    printf("#   %s\n", lua_tostring(L, -1));
  } else {
    r = (long long)lua_tointegerx(L, -1, &isnum);
    if (!isnum) {
      tap_fail(file, line, expr);
      printf("#   not an integer: %s\n", luaL_typename(L, -1));
      r = -999;
    }
  }
  lua_settop(L, 0);
  return r;
}

/* The truth of Lua expression `expr` (0 on error). */
#define LUA_TRUE(L, expr) lua_true((L), (expr), __FILE__, __LINE__)
static int lua_true(lua_State *L, const char *expr, const char *file,
                    int line) {
  int r = 0;
  lua_pushfstring(L, "return %s", expr);
  if (luaL_dostring(L, lua_tostring(L, -1)) != LUA_OK) {
    tap_fail(file, line, expr);
    printf("#   %s\n", lua_tostring(L, -1));
  } else {
    r = lua_toboolean(L, -1);
  }
  lua_settop(L, 0);
  return r;
}

/* Copy the string value of `expr` into buf (empty on error). */
static void lua_str(lua_State *L, const char *expr, char *buf, size_t size) {
  const char *s;
  buf[0] = '\0';
  lua_pushfstring(L, "return %s", expr);
  if (luaL_dostring(L, lua_tostring(L, -1)) == LUA_OK &&
      (s = lua_tostring(L, -1)) != NULL)
    snprintf(buf, size, "%s", s);
  lua_settop(L, 0);
}

/* ---- tests --------------------------------------------------------------- */

TEST(test_each_state_has_its_collector) {
  lua_State *L1 = new_state(), *L2 = new_state(), *L3 = luaL_newstate();
  vt_collector *c1, *c2;
  if (!CHECK(L1 != NULL && L2 != NULL && L3 != NULL)) goto out;
  c1 = vt_lua_collector(L1);
  c2 = vt_lua_collector(L2);
  CHECK(c1 != NULL);
  CHECK(c2 != NULL);
  CHECK(c1 != c2);
  CHECK(vt_lua_collector(L1) == c1); /* the same one every time */
  CHECK(vt_lua_collector(L3) == NULL); /* a state without vmtrace */
  /* requiring the core again keeps the collector */
  RUN(L1, "assert(require('vmtrace.core') == package.loaded['vmtrace.core'])");
  CHECK(vt_lua_collector(L1) == c1);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
  if (L3) lua_close(L3);
}

TEST(test_enable_is_per_state) {
  lua_State *L1 = new_state(), *L2 = new_state();
  if (!CHECK(L1 != NULL && L2 != NULL)) goto out;
  CHECK(!LUA_TRUE(L1, "v.is_enabled()"));
  CHECK(!LUA_TRUE(L2, "v.is_enabled()"));
  RUN(L1, "v.enable()");
  CHECK(LUA_TRUE(L1, "v.is_enabled()"));
  CHECK(!LUA_TRUE(L2, "v.is_enabled()"));
  CHECK(vt_collector_enabled(vt_lua_collector(L1)));
  CHECK(!vt_collector_enabled(vt_lua_collector(L2)));
  CHECK_EQ_INT(LUA_INT(L1, "v.start('pipeline', 'one')"), 1);
  CHECK_EQ_INT(LUA_INT(L2, "v.start('pipeline', 'two')"), 0);
  RUN(L2, "v.enable()");
  RUN(L1, "v.disable()");
  CHECK(!LUA_TRUE(L1, "v.is_enabled()"));
  CHECK(LUA_TRUE(L2, "v.is_enabled()"));
  CHECK_EQ_INT(LUA_INT(L1, "v.start('pipeline', 'one')"), 0);
  CHECK_EQ_INT(LUA_INT(L2, "v.start('pipeline', 'two')"), 1);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
}

TEST(test_spans_and_ids_are_per_state) {
  lua_State *L1 = new_state(), *L2 = new_state();
  char t1[64], t2[64];
  if (!CHECK(L1 != NULL && L2 != NULL)) goto out;
  RUN(L1, "v.enable()");
  RUN(L2, "v.enable()");
  CHECK_EQ_INT(LUA_INT(L1, "v.start('pipeline', 'one.a')"), 1);
  CHECK_EQ_INT(LUA_INT(L1, "v.start('fn_call', 'one.b')"), 2);
  CHECK_EQ_INT(LUA_INT(L2, "v.start('llm_call', 'two.a')"), 1);
  CHECK_EQ_INT(LUA_INT(L1, "v.current_span_id()"), 2);
  CHECK_EQ_INT(LUA_INT(L2, "v.current_span_id()"), 1);
  RUN(L2, "assert(v.get(1).parent_id == nil)"); /* not under one.b */
  RUN(L1, "v.finish(2); v.finish(1)");
  CHECK_EQ_INT(LUA_INT(L1, "#v.spans()"), 2);
  CHECK_EQ_INT(LUA_INT(L2, "#v.spans()"), 0);
  CHECK_EQ_INT(LUA_INT(L2, "v.current_span_id()"), 1);
  RUN(L2, "v.finish(1)");
  CHECK_EQ_INT(LUA_INT(L2, "#v.spans()"), 1);
  CHECK(LUA_TRUE(L2, "v.spans()[1].name == 'two.a'"));
  CHECK(LUA_TRUE(L1, "v.spans()[1].name == 'one.b' and "
                     "v.spans()[2].name == 'one.a'"));
  CHECK_EQ_INT(vt_collector_count(vt_lua_collector(L1)), 2);
  CHECK_EQ_INT(vt_collector_count(vt_lua_collector(L2)), 1);
  /* trace ids differ, and Lua sees the collector's */
  lua_str(L1, "v.trace_id()", t1, sizeof t1);
  lua_str(L2, "v.trace_id()", t2, sizeof t2);
  CHECK(strncmp(t1, "trace_", 6) == 0);
  CHECK(strncmp(t2, "trace_", 6) == 0);
  CHECK(strcmp(t1, t2) != 0);
  CHECK_STR(t1, vt_collector_trace_id(vt_lua_collector(L1)));
  CHECK_STR(t2, vt_collector_trace_id(vt_lua_collector(L2)));
  CHECK(LUA_TRUE(L1, "v.spans()[1].trace_id == v.trace_id()"));
  /* resetting one leaves the other */
  RUN(L1, "v.reset()");
  CHECK_EQ_INT(LUA_INT(L1, "#v.spans()"), 0);
  CHECK_EQ_INT(LUA_INT(L2, "#v.spans()"), 1);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
}

/* A C host emits a span into a state's collector; Lua code sees it. */
TEST(test_c_span_seen_by_lua) {
  lua_State *L1 = new_state(), *L2 = new_state();
  vt_collector *c;
  vt_id root_c, under;
  long long outer;
  if (!CHECK(L1 != NULL && L2 != NULL)) goto out;
  RUN(L1, "v.enable()");
  RUN(L2, "v.enable()");
  c = vt_lua_collector(L1);
  if (!CHECK(c != NULL)) goto out;
  /* with no Lua span open: a root */
  root_c = vt_collector_start(c, NULL, VT_IMPORT, "c_root", 6, NULL);
  CHECK_EQ_INT(root_c, 1);
  CHECK_EQ_INT(vt_collector_finish(c, root_c, &(int64_t){0}), VT_OK);
  /* under an open Lua span */
  outer = LUA_INT(L1, "(function() outer = v.start('pipeline', 'lua_outer');"
                      " return outer end)()");
  CHECK_EQ_INT(outer, 2);
  under = vt_collector_start(c, NULL, VT_TOOL_CALL, "c_tool", 6, NULL);
  CHECK_EQ_INT(under, 3);
  CHECK_EQ_INT(LUA_INT(L1, "v.current_span_id()"), 3);
  CHECK_EQ_INT(vt_collector_set_metadata(c, under, "source", 6, one_str("c-host"), 0),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, under, "n", 1, one_int(42), 0), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, under, "big", 3, one_int(INT64_MAX), 0),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, under, "ratio", 5, one_num(0.5), 0),
               VT_OK);
  /* an open C span is visible to Lua's get */
  RUN(L1, "local s = v.get(3)\n"
          "assert(s, 'get(3) is nil')\n"
          "assert(s.name == 'c_tool', tostring(s.name))\n"
          "assert(s.parent_id == outer, tostring(s.parent_id))\n"
          "assert(s.metadata and s.metadata.n == 42)");
  CHECK_EQ_INT(vt_collector_finish(c, under, &(int64_t){0}), VT_OK);
  RUN(L1, "v.finish(outer)");
  RUN(L1, "local found\n"
          "for _, s in ipairs(v.spans()) do\n"
          "  if s.name == 'c_tool' then found = s end\n"
          "end\n"
          "assert(found, 'c_tool not in spans()')\n"
          "assert(found.span_id == 3, tostring(found.span_id))\n"
          "assert(found.kind == 'tool_call', tostring(found.kind))\n"
          "assert(found.parent_id == outer, tostring(found.parent_id))\n"
          "assert(found.trace_id == v.trace_id())\n"
          "local m = found.metadata\n"
          "assert(type(m) == 'table', 'no metadata')\n"
          "assert(m.source == 'c-host', tostring(m.source))\n"
          "assert(m.n == 42 and math.type(m.n) == 'integer', tostring(m.n))\n"
          "assert(m.big == math.maxinteger, tostring(m.big))\n"
          "assert(m.ratio == 0.5, tostring(m.ratio))\n"
          "local root = v.get(1)\n"
          "assert(root.kind == 'import' and root.name == 'c_root')\n"
          "assert(root.parent_id == nil, tostring(root.parent_id))\n"
          "assert(#v.spans() == 3, #v.spans())");
  /* the other state saw none of it */
  CHECK_EQ_INT(LUA_INT(L2, "#v.spans()"), 0);
  CHECK(LUA_TRUE(L2, "v.get(3) == nil"));
  CHECK_EQ_INT(vt_collector_count(vt_lua_collector(L2)), 0);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
}

/* Spans a C host records reach the state's Lua sinks (one event bus): they
 * are delivered at the next vmtrace call from Lua. */
TEST(test_c_span_reaches_lua_sinks) {
  lua_State *L = new_state();
  vt_collector *c;
  vt_id id;
  if (!CHECK(L != NULL)) return;
  RUN(L, "v.enable()\n"
         "seen = {}\n"
         "sink = v.add_sink{\n"
         "  on_start = function(e) seen[#seen + 1] = 'start ' .. e.name end,\n"
         "  on_end = function(e) seen[#seen + 1] = 'end ' .. e.name ..\n"
         "    ' ' .. tostring(e.metadata.n) end}");
  c = vt_lua_collector(L);
  if (!CHECK(c != NULL)) goto out;
  id = vt_collector_start(c, NULL, VT_TOOL_CALL, "from_c", 6, NULL);
  CHECK(id != 0);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "n", 1, one_int(7), 0), VT_OK);
  CHECK_EQ_INT(vt_collector_finish(c, id, &(int64_t){0}), VT_OK);
  RUN(L, "local s = v.spans()\n"
         "assert(#s == 1 and s[1].name == 'from_c')\n"
         "assert(table.concat(seen, ',') == 'start from_c,end from_c 7',\n"
         "       table.concat(seen, ','))");
  /* and the host's span under a Lua span, with a Lua span after it */
  RUN(L, "outer = v.start('pipeline', 'lua_outer')");
  id = vt_collector_start(c, NULL, VT_STEP, "c_step", 6, NULL);
  CHECK_EQ_INT(vt_collector_finish(c, id, &(int64_t){0}), VT_OK);
  RUN(L, "v.finish(outer)\n"
         "assert(table.concat(seen, ',') == 'start from_c,end from_c 7,start lua_outer,'\n"
         "  .. 'start c_step,end c_step nil,end lua_outer nil', table.concat(seen, ','))\n"
         "assert(v.remove_sink(sink))");
out:
  lua_close(L);
}

/* Closing a state with spans still open (from Lua and from C) frees them;
 * the other state goes on as before. */
TEST(test_close_with_open_spans) {
  lua_State *L1 = new_state(), *L2 = new_state();
  vt_collector *c1;
  if (!CHECK(L1 != NULL && L2 != NULL)) goto out;
  RUN(L1, "v.enable()\n"
          "local a = v.start('pipeline', 'left open')\n"
          "v.set_metadata(a, 'k', {list = {1, 2, 'x'}, n = 1.5})\n"
          "v.record_event(a, 'ev', {at = 1})\n"
          "local b = v.start('fn_call', 'done')\n"
          "v.finish(b)");
  RUN(L2, "v.enable(); v.start('pipeline', 'two')");
  c1 = vt_lua_collector(L1);
  if (!CHECK(c1 != NULL)) goto out;
  CHECK(vt_collector_start(c1, NULL, VT_STEP, "c open", 6, NULL) == 3);
  CHECK(vt_collector_mock_push(c1, 1000) == VT_OK); /* left pushed */
  lua_close(L1);
  L1 = NULL;
  CHECK_EQ_INT(LUA_INT(L2, "v.start('fn_call', 'after close')"), 2);
  RUN(L2, "v.finish(2); v.finish(1)");
  CHECK_EQ_INT(LUA_INT(L2, "#v.spans()"), 2);
  CHECK(LUA_TRUE(L2, "v.spans()[1].parent_id == 1"));
  CHECK(vt_collector_dropped(vt_lua_collector(L2)) == 0);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
}

/* vmtrace.auto in two states at once: each state's hook records into its
 * own collector; tracing turned off by the host (vt_collector_set_enabled)
 * removes the hook at the next traced call; closing a state with auto on
 * leaves the other's hook working. */
TEST(test_auto_per_state_and_off_from_c) {
  lua_State *L1 = new_state(), *L2 = new_state();
  if (!CHECK(L1 != NULL && L2 != NULL)) goto out;
  /* every chunk run here is traced too (include '.'): count by name */
  RUN(L1, "v.enable(); v.auto{calls = {include = {'.'}}}\n"
          "function f() return 1 end; f(); f()");
  RUN(L2, "v.enable(); v.auto{calls = {include = {'.'}}}\n"
          "function g() return 1 end; g()");
  RUN(L1, "count = " "(function(name) local n = 0 for _, s in ipairs(v.spans()) do "
          "if s.name == name then n = n + 1 end end return n end)");
  RUN(L2, "count = " "(function(name) local n = 0 for _, s in ipairs(v.spans()) do "
          "if s.name == name then n = n + 1 end end return n end)");
  CHECK_EQ_INT(LUA_INT(L1, "count('f') + count('g')"), 2);
  CHECK_EQ_INT(LUA_INT(L2, "count('g') + count('f')"), 1);
  CHECK(LUA_TRUE(L1, "require('vmtrace.core')._auto_hooked()"));
  vt_collector_set_enabled(vt_lua_collector(L1), 0); /* off, from C */
  RUN(L1, "f()");
  CHECK(LUA_TRUE(L1, "not require('vmtrace.core')._auto_hooked()"));
  CHECK_EQ_INT(LUA_INT(L1, "count('f')"), 2);
  lua_close(L1);
  L1 = NULL;
  RUN(L2, "g()");
  CHECK_EQ_INT(LUA_INT(L2, "count('g')"), 2);
out:
  if (L1) lua_close(L1);
  if (L2) lua_close(L2);
}

static const tap_test tests[] = {
    TAP_ENTRY(test_each_state_has_its_collector),
    TAP_ENTRY(test_enable_is_per_state),
    TAP_ENTRY(test_spans_and_ids_are_per_state),
    TAP_ENTRY(test_c_span_seen_by_lua),
    TAP_ENTRY(test_c_span_reaches_lua_sinks),
    TAP_ENTRY(test_close_with_open_spans),
    TAP_ENTRY(test_auto_per_state_and_off_from_c),
};

int main(void) {
  int rc;
  vt_vb_init(&one);
  rc = tap_run(tests, sizeof tests / sizeof tests[0]);
  vt_vb_free(&one);
  return rc;
}
