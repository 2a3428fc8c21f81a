/*
 * lvmtrace.c: the Lua binding, luaopen_vmtrace_core: the only code that
 * includes lua.h. It is one compilation unit made of the files beside it,
 * one area each (as luv builds luv.c from tcp.c, fs.c, ...):
 *
 *   l_check.c   argument checks and errors
 *   l_value.c   Lua values <-> vmtrace values
 *   l_thread.c  per-coroutine active stacks
 *   l_sink.c    Lua event sinks on the core's event bus
 *   l_span.c    spans by id, scoped handles, with, markers
 *   l_llm.c     LLM usage, provider responses, totals, the price catalog
 *   l_io.c      exports, the stream, the console exporter, reading files back
 *   l_trace.c   the switch, trace context, clock, settings, introspection
 *   l_auto.c    automatic spans (a call hook, require, coroutines), wrap, instrument
 *
 * Each lua_State gets its own collector, held in a userdata that is the
 * upvalue of every module function and sits in the registry under the
 * address of a C static (for hosts, through vt_lua_collector).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"

#include "core/util.h"
#include "io/console.h"
#include "io/file.h"
#include "io/json.h"
#include "otel/env.h"
#include "vmtrace.h"

#define EXPORT __attribute__((visibility("default")))

static const char state_key = 's'; /* registry[&state_key]: the state userdata */

#define NAME_CACHE 64
#define SINK_QUEUE_MAX 65536

/* Span names seen lately, by the address of their Lua string (lua_topointer's
 * or lua_tostring's: the two are distinct for distinct strings, and never
 * equal for two strings). Each cached string is anchored (uservalue 2 of the
 * state, at the entry's index), so an equal address means the very same
 * string; each entry holds a reference to its interned name. */
typedef struct name_entry {
  const void *p;
  uint32_t name;
} name_entry;

/* A span event waiting for the Lua sinks. An end carries its own copy of
 * what the sinks get (the span may be evicted, taken or reset before the
 * delivery); a start is read from the span, still open then. */
typedef struct sink_ev {
  vt_id id;
  int64_t dur_ns; /* -1: a start */
  char *name;     /* an end's copies (vt_free) */
  size_t name_len;
  vt_value *meta;
  int kind;
} sink_ev;

typedef struct lvt {
  vt_collector *c;
  const int *on;     /* the collector's enabled flag */
  const void *kind_ptr[VT_KIND_COUNT]; /* the kind strings (lua_topointer), anchored */
  name_entry names[NAME_CACHE];
  lua_State *main_L; /* spans of the main thread go on the main stack */
  lua_State *co_L;   /* the coroutine seen last, and its stack */
  vt_stack *co_st;
  int threads_ref;   /* registry ref: weak-keyed table, thread -> box */
  int inert_ref;     /* registry ref: the inert span handle */
  int span_mt_ref;   /* registry ref: metatable of open span handles */
  int closed_mt_ref; /* registry ref: metatable of closed span handles */
  const void *span_mt_p, *closed_mt_p; /* the same two, to recognise handles */
  int sinks_ref;     /* registry ref: the array of Lua sinks */
  int nsinks;
  sink_ev *queue;    /* events for the sinks, delivered after each call */
  size_t nq, capq;
  uint64_t sink_dropped;
  int delivering;
  vt_stream *stream; /* the NDJSON stream, or NULL */
  vt_console *console; /* the console exporter, or NULL */
  int stream_err;    /* the first error of a stream that was replaced */
  int warned_context; /* an invalid traceparent was reported */
  int trace_ref;     /* registry ref: trace id string */
  int errh_ref;      /* registry ref: the message handler of with (l_errh) */
  char trace_cached[48];
  vt_vb vb, vb2;     /* scratch builders for values */
  vt_prices *prices; /* the price catalog (vmtrace.pricing) */
  vt_limits limits;  /* span limits set by configure{} (OTLP output) */
  unsigned limits_set; /* which of them (VT_LIMIT_* bits) */
  int gc_held;       /* reading_begin stopped the garbage collector */
  struct lauto *au;  /* automatic spans (l_auto.c), or NULL */
  uint32_t auto_pending; /* calls whose span waits (min_ms) */
} lvt;

#define STATE(L) ((lvt *)lua_touserdata(L, lua_upvalueindex(1)))

static void push_links(lua_State *L, const vt_span_view *v);
struct auto_thread;
static void auto_thread_gc(lvt *S, struct auto_thread *t);
static void auto_flush(lua_State *L, lvt *S);
static void auto_switched(lua_State *L, lvt *S, int on);
static void auto_close(lua_State *L, lvt *S);

#include "l_check.c"
#include "l_value.c"
#include "l_thread.c"
#include "l_sink.c"
#include "l_span.c"
#include "l_llm.c"
#include "l_io.c"
#include "l_trace.c"
#include "l_auto.c"

/* ---- module ------------------------------------------------------------------ */

static int l_state_gc(lua_State *L) {
  lvt *S = lua_touserdata(L, 1);
  int i;
  if (!S->c) return 0;
  auto_close(L, S);
  vt_stream_close(S->stream);
  S->stream = NULL;
  vt_console_close(S->console);
  S->console = NULL;
  for (i = 0; i < NAME_CACHE; i++)
    if (S->names[i].p) vt_collector_name_release(S->c, S->names[i].name);
  vt_collector_free(S->c); /* subscribers (the OTLP exporter) let go first */
  S->c = NULL;
  while (S->nq) { /* ends never delivered: their copies */
    S->nq--;
    vt_free(S->queue[S->nq].name);
    vt_free(S->queue[S->nq].meta);
  }
  vt_free(S->queue);
  vt_prices_free(S->prices);
  S->prices = NULL;
  vt_vb_free(&S->vb);
  vt_vb_free(&S->vb2);
  return 0;
}

vt_collector *vt_lua_collector(lua_State *L) {
  lvt *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return S ? S->c : NULL;
}

static const luaL_Reg funcs[] = {
    /* the switch and the trace */
    {"enable", l_enable},
    {"disable", l_disable},
    {"is_enabled", l_is_enabled},
    {"reset", l_reset},
    {"trace_id", l_trace_id},
    {"dropped", l_dropped},
    {"continue_trace", l_continue_trace},
    {"traceparent", l_traceparent},
    {"tracestate", l_tracestate},
    /* spans */
    {"start", l_start},
    {"finish", l_finish},
    {"set_metadata", l_set_metadata},
    {"set_metadata_if_absent", l_set_metadata_if_absent},
    {"record_event", l_record_event},
    {"get", l_get},
    {"current_span_id", l_current_span_id},
    {"span_link", l_span_link},
    {"current_span_link", l_current_span_link},
    {"spans", l_spans},
    {"take_spans", l_take_spans},
    {"summary", l_summary},
    {"span", l_span},
    {"with", l_with},
    {"marker", l_marker},
    {"model_route", l_model_route},
    {"tool_mount", l_tool_mount},
    {"deferred_tool_load", l_deferred_tool_load},
    /* LLM usage */
    {"llm_usage", l_llm_usage},
    {"llm_response", l_llm_response},
    {"llm_totals", l_llm_totals},
    /* sinks */
    {"add_sink", l_add_sink},
    {"remove_sink", l_remove_sink},
    /* clock */
    {"mock_time", l_mock_time},
    {"advance_time", l_advance_time},
    {"unmock_time", l_unmock_time},
    {"now_ms", l_now_ms},
    {"monotonic_ms", l_monotonic_ms},
    /* settings and introspection */
    {"stats", l_stats},
    {"generation", l_generation},
    {"configure", l_configure},
    {"json_decode", l_json_decode},
    /* files */
    {"export", l_export},
    {"profile", l_profile},
    {"stream", l_stream},
    {"stream_status", l_stream_status},
    {"load", l_load},
    /* automatic spans and instrumentation */
    {"wrap", l_wrap},
    {"instrument", l_instrument},
    /* for the Lua side (vmtrace.timing, vmtrace.coroutine, vmtrace.pricing, vmtrace.otlp) */
    {"_start_always", l_start_always},
    {"_event", l_event},
    {"_mark_error", l_mark_error},
    {"_errh", l_errh},
    {"_reraise", l_reraise},
    {"_limits", l_limits},
    {"_console", l_console},
    {"_merge", l_merge},
    {"_elapsed_ms", l_elapsed_ms},
    {"_adopt", l_adopt},
    {"_argerror", l_argerror},
    {"_price_set", l_price_set},
    {"_price_get", l_price_get},
    {"_price_clear", l_price_clear},
    {"_cost", l_cost},
    {"_auto", l_auto},
    {"_auto_hooked", l_auto_hooked},
    {"_realpath", l_realpath},
    {NULL, NULL}};

static const luaL_Reg span_methods[] = {
    {"set", l_span_set}, {"event", l_span_event}, {"finish", l_span_finish}, {NULL, NULL}};

static const luaL_Reg span_meta[] = {
    {"__close", l_span_close}, {"__gc", l_span_gc}, {"__tostring", l_span_tostring}, {NULL, NULL}};

/* The state's userdata, made on first load. */
static lvt *push_state(lua_State *L) {
  lvt *S;
  int k;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key) == LUA_TUSERDATA) return lua_touserdata(L, -1);
  lua_pop(L, 1);
  /* uservalues: 1 kind strings, 2 cached names, 3 and 4 the last error a
   * message handler saw and its traceback */
  S = lua_newuserdatauv(L, sizeof *S, 4);
  memset(S, 0, sizeof *S);
  S->trace_ref = S->threads_ref = S->inert_ref = S->span_mt_ref = S->closed_mt_ref = LUA_NOREF;
  S->errh_ref = LUA_NOREF;
  S->sinks_ref = LUA_NOREF;
  vt_vb_init(&S->vb);
  vt_vb_init(&S->vb2);
  lua_createtable(L, VT_KIND_COUNT, 0); /* anchors the kind strings */
  for (k = 0; k < VT_KIND_COUNT; k++) {
    lua_pushstring(L, vt_kind_name(k));
    S->kind_ptr[k] = lua_topointer(L, -1);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, NAME_CACHE, 0); /* anchors of the cached names */
  lua_setiuservalue(L, -2, 2);
  S->c = vt_collector_new();
  S->prices = vt_prices_new();
  if (S->c) S->on = vt_collector_enabled_flag(S->c);
  if (!S->c || !S->prices) {
    vt_collector_free(S->c);
    vt_prices_free(S->prices);
    S->c = NULL;
    luaL_error(L, "vmtrace: out of memory");
  }
  luaL_newmetatable(L, "vmtrace.State"); /* only once the object is whole */
  lua_pushcfunction(L, l_state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &state_key);
  lua_pushlightuserdata(L, S->c); /* for the OTLP/HTTP module of this state */
  lua_setfield(L, LUA_REGISTRYINDEX, "vmtrace.collector");
  lua_pushlightuserdata(L, (void *)vt_core_api());
  lua_setfield(L, LUA_REGISTRYINDEX, "vmtrace.api");
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  lua_newtable(L);
  S->sinks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, l_errh, 1);
  S->errh_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L); /* thread -> box, weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  S->threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  luaL_newmetatable(L, THREAD_MT); /* the finalizer needs the state */
  lua_pushvalue(L, -2);
  lua_pushcclosure(L, l_thread_gc, 1);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* the span handles' metatables: methods and metamethods share the state */
  lua_newtable(L); /* state, methods */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, span_methods, 1);
  for (k = 0; k < 2; k++) { /* k = 0: open handles (with __gc), 1: closed */
    lua_createtable(L, 0, 5); /* state, methods, mt */
    lua_pushvalue(L, -3);
    luaL_setfuncs(L, span_meta, 1);
    if (k) {
      lua_pushnil(L);
      lua_setfield(L, -2, "__gc");
    }
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    lua_pushcclosure(L, l_span_index, 2);
    lua_setfield(L, -2, "__index");
    lua_pushliteral(L, SPAN_MT);
    lua_setfield(L, -2, "__name");
    if (k) S->closed_mt_p = lua_topointer(L, -1), S->closed_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else S->span_mt_p = lua_topointer(L, -1), S->span_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pop(L, 1);
  {
    lspan *h = lua_newuserdatauv(L, sizeof *h, 0); /* the inert handle */
    h->id = 0;
    h->gen = 0;
    h->closed = 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->closed_mt_ref);
    lua_setmetatable(L, -2);
    S->inert_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return S;
}

EXPORT int luaopen_vmtrace_core(lua_State *L);
EXPORT int luaopen_vmtrace_core(lua_State *L) {
  int k;
  luaL_checkversion(L);
  lua_newtable(L);
  push_state(L); /* module, state */
  luaL_setfuncs(L, funcs, 1);
  lua_createtable(L, VT_KIND_COUNT, 0);
  for (k = 0; k < VT_KIND_COUNT; k++) {
    lua_pushstring(L, vt_kind_name(k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setfield(L, -2, "kinds");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushliteral(L, VMTRACE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
