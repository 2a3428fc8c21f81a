/*
 * lvmtrace.c: the Lua binding (luaopen_vmtrace_core), the only file that
 * includes lua.h. Each lua_State gets its own collector, held in a userdata
 * that is the upvalue of every module function and sits in the registry under
 * the address of a C static (for hosts, through vt_lua_collector). This file
 * checks arguments, converts Lua values to JSON and spans to Lua tables, and
 * turns core status codes into results or errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lauxlib.h"
#include "lua.h"

#include "internal.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_DEPTH 64

static const char collector_key = 'c'; /* registry[&collector_key] */

#define NAME_CACHE 64

/* Span names seen lately, by the address of their Lua string. Each cached
 * string is anchored (uservalue 2 of the state, at the entry's index), so an
 * equal address means the very same string and its interned name. */
typedef struct name_entry {
  const char *p;
  uint32_t name;
} name_entry;

typedef struct lvt {
  vt_collector *c;
  const char *kind_ptr[VT_KIND_COUNT]; /* interned kind strings, anchored */
  name_entry names[NAME_CACHE];
  lua_State *main_L; /* spans of the main thread go on the main stack */
  lua_State *co_L;   /* the coroutine seen last, and its stack */
  vt_stack *co_st;
  int threads_ref;  /* registry ref: weak-keyed table, thread -> box */
  int inert_ref;    /* registry ref: the inert span handle */
  int span_mt_ref;  /* registry ref: metatable of open span handles */
  int closed_mt_ref; /* registry ref: metatable of closed span handles */
  int dispatch_ref; /* registry ref: the Lua sink dispatcher, or LUA_NOREF */
  vt_stream *stream; /* the NDJSON stream, or NULL */
  vt_otlp *otlp;     /* the OTLP/HTTP exporter, or NULL */
  long otlp_close_ms; /* how long closing the state waits for it */
  int warned_context; /* an invalid traceparent was reported */
  int trace_ref;    /* registry ref: trace id string */
  char trace_cached[48];
} lvt;

#define STATE(L) ((lvt *)lua_touserdata(L, lua_upvalueindex(1)))

static vt_id current_of(lua_State *L, lvt *S);

/* ---- errors ------------------------------------------------------------------ */

/* "vmtrace.<fn>: bad argument #<arg> (<message>)", with the caller's place. */
static int arg_error(lua_State *L, const char *fn, int arg, const char *fmt,
                     ...) {
  va_list ap;
  luaL_where(L, 1);
  lua_pushfstring(L, "vmtrace.%s: bad argument #%d (", fn, arg);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_pushliteral(L, ")");
  lua_concat(L, 4);
  return lua_error(L);
}

static int type_error(lua_State *L, const char *fn, int arg,
                      const char *expected) {
  return arg_error(L, fn, arg, "%s expected, got %s", expected,
                   luaL_typename(L, arg));
}

static const char *check_str(lua_State *L, const char *fn, int arg,
                             size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) type_error(L, fn, arg, "string");
  return lua_tolstring(L, arg, len);
}

static vt_id check_id(lua_State *L, const char *fn, int arg) {
  int ok;
  lua_Integer id = lua_tointegerx(L, arg, &ok);
  if (VT_UNLIKELY(!ok)) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      arg_error(L, fn, arg, "integer expected, got non-integral number");
    type_error(L, fn, arg, "integer");
  }
  return id > 0 ? (vt_id)id : 0;
}

/* ---- Lua values to JSON ------------------------------------------------------ */

typedef struct conv {
  lua_State *L;
  const void *seen[MAX_DEPTH + 1];
  int depth;
  char path[200];
  size_t plen;
  char err[320];
  int oom;
} conv;

static cJSON *fail(conv *cv, const char *msg, const char *detail) {
  if (!cv->err[0]) {
    const char *at = cv->plen ? cv->path : "";
    snprintf(cv->err, sizeof cv->err, "%s%s%s%s", msg, detail ? detail : "",
             cv->plen ? " at " : "", at);
  }
  return NULL;
}

static cJSON *oom(conv *cv) {
  cv->oom = 1;
  return fail(cv, "out of memory", NULL);
}

/* Extend the path shown in errors by a key or an index; returns the old
 * length to restore. */
static size_t path_push(conv *cv, const char *key, size_t klen, lua_Integer i) {
  size_t old = cv->plen, room = sizeof cv->path - cv->plen;
  int n;
  if (room <= 4) return old;
  if (key)
    n = snprintf(cv->path + cv->plen, room, ".%.*s", (int)(klen < 40 ? klen : 40), key);
  else
    n = snprintf(cv->path + cv->plen, room, "[%lld]", (long long)i);
  cv->plen += (size_t)n < room ? (size_t)n : room - 1;
  return old;
}

static void path_pop(conv *cv, size_t old) {
  cv->plen = old;
  cv->path[old] = '\0';
}

static cJSON *to_json(conv *cv, int idx);

static int cmp_items(const void *a, const void *b) {
  return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

/* A table with string keys, sorted; the table is at idx. */
static cJSON *object_to_json(conv *cv, int idx, size_t count) {
  lua_State *L = cv->L;
  cJSON *obj = cJSON_CreateObject(), **items;
  size_t n = 0, i;
  if (!obj) return oom(cv);
  if (count == 0) return obj;
  items = vt_malloc(count * sizeof *items);
  if (!items) {
    cJSON_Delete(obj);
    return oom(cv);
  }
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* key value */
    size_t klen, old;
    const char *k = lua_tolstring(L, -2, &klen);
    cJSON *v;
    old = path_push(cv, k, klen, 0);
    v = to_json(cv, lua_gettop(L));
    path_pop(cv, old);
    if (v) {
      v->string = vt_str_encode(k, klen);
      if (!v->string) {
        cJSON_Delete(v);
        v = oom(cv);
      }
    }
    lua_pop(L, 1); /* key */
    if (!v) {
      lua_pop(L, 1);
      break;
    }
    items[n++] = v;
  }
  if (n == count) {
    qsort(items, n, sizeof *items, cmp_items);
    for (i = 0; i < n; i++) {
      items[i]->prev = i ? items[i - 1] : items[n - 1];
      items[i]->next = i + 1 < n ? items[i + 1] : NULL;
    }
    obj->child = items[0];
  } else {
    for (i = 0; i < n; i++) cJSON_Delete(items[i]);
    cJSON_Delete(obj);
    obj = NULL;
  }
  vt_free(items);
  return obj;
}

static cJSON *array_to_json(conv *cv, int idx, lua_Integer n) {
  lua_State *L = cv->L;
  cJSON *arr = cJSON_CreateArray();
  lua_Integer i;
  if (!arr) return oom(cv);
  for (i = 1; i <= n; i++) {
    size_t old = path_push(cv, NULL, 0, i);
    cJSON *v;
    lua_rawgeti(L, idx, i);
    v = to_json(cv, lua_gettop(L));
    lua_pop(L, 1);
    path_pop(cv, old);
    if (!v) {
      cJSON_Delete(arr);
      return NULL;
    }
    cJSON_AddItemToArray(arr, v);
  }
  return arr;
}

static cJSON *table_to_json(conv *cv, int idx) {
  lua_State *L = cv->L;
  const void *p = lua_topointer(L, idx);
  size_t count = 0, nstr = 0;
  lua_Integer maxi = 0;
  int i;
  cJSON *out;
  for (i = 0; i < cv->depth; i++)
    if (cv->seen[i] == p) return fail(cv, "cyclic table", NULL);
  if (cv->depth >= MAX_DEPTH)
    return fail(cv, "tables nested deeper than 64 levels", NULL);
  if (!lua_checkstack(L, 4)) return fail(cv, "Lua stack overflow", NULL);
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* classify the keys */
    count++;
    if (lua_type(L, -2) == LUA_TSTRING) {
      nstr++;
    } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) > 0) {
      if (lua_tointeger(L, -2) > maxi) maxi = lua_tointeger(L, -2);
    } else {
      const char *tn = luaL_typename(L, -2);
      lua_pop(L, 2);
      return fail(cv, "table key must be a string or an array index 1..n, got ",
                  tn);
    }
    lua_pop(L, 1);
  }
  if (nstr && nstr != count)
    return fail(cv, "table mixes string and integer keys", NULL);
  if (!nstr && count && (size_t)maxi != count)
    return fail(cv, "sparse array (keys must be 1..n)", NULL);
  cv->seen[cv->depth++] = p;
  out = (nstr || !count) ? object_to_json(cv, idx, count)
                         : array_to_json(cv, idx, maxi);
  cv->depth--;
  return out;
}

static cJSON *to_json(conv *cv, int idx) {
  lua_State *L = cv->L;
  cJSON *v;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: v = cJSON_CreateNull(); break;
    case LUA_TBOOLEAN: v = cJSON_CreateBool(lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      v = lua_isinteger(L, idx) ? vt_json_int(lua_tointeger(L, idx))
                                : vt_json_num(lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      v = vt_json_str(s, len);
      break;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        v = cJSON_CreateNull();
        break;
      }
      return fail(cv, "light userdata is not JSON-able", NULL);
    case LUA_TTABLE: return table_to_json(cv, lua_absindex(L, idx));
    default: return fail(cv, luaL_typename(L, idx), " is not JSON-able");
  }
  return v ? v : oom(cv);
}

/* Convert the value at arg (raising a clear error). `object` requires a table
 * with string keys (or an empty table). */
static cJSON *check_json(lua_State *L, const char *fn, int arg, int object) {
  conv cv;
  cJSON *v;
  cv.L = L;
  cv.depth = 0;
  cv.plen = 0;
  cv.path[0] = cv.err[0] = '\0';
  cv.oom = 0;
  if (object && lua_type(L, arg) != LUA_TTABLE)
    type_error(L, fn, arg, "table with string keys");
  v = to_json(&cv, arg);
  if (v && object && !cJSON_IsObject(v)) {
    cJSON_Delete(v);
    arg_error(L, fn, arg, "table with string keys expected, got an array");
  }
  if (!v) {
    if (cv.oom) luaL_error(L, "vmtrace.%s: out of memory", fn);
    arg_error(L, fn, arg, "%s", cv.err);
  }
  return v;
}

/* ---- JSON to Lua ----------------------------------------------------------------- */

static void push_stored_str(lua_State *L, const char *s) {
  if (!strchr(s, (char)0xC0)) {
    lua_pushstring(L, s);
  } else {
    luaL_Buffer b;
    size_t len = strlen(s);
    char *p = luaL_buffinitsize(L, &b, len);
    luaL_pushresultsize(&b, vt_str_decode(s, p));
  }
}

static void push_json(lua_State *L, const cJSON *v) {
  const cJSON *it;
  int64_t i;
  luaL_checkstack(L, 4, "JSON value nested too deep");
  switch (v->type & 0xFF) {
    case cJSON_False: lua_pushboolean(L, 0); break;
    case cJSON_True: lua_pushboolean(L, 1); break;
    case cJSON_Number: lua_pushnumber(L, v->valuedouble); break;
    case cJSON_Raw:
      if (vt_json_is_int(v, &i)) lua_pushinteger(L, (lua_Integer)i);
      else lua_pushstring(L, v->valuestring ? v->valuestring : "");
      break;
    case cJSON_String: push_stored_str(L, v->valuestring ? v->valuestring : ""); break;
    case cJSON_Array: {
      lua_Integer n = 0;
      lua_newtable(L);
      for (it = v->child; it; it = it->next) {
        push_json(L, it);
        lua_rawseti(L, -2, ++n);
      }
      break;
    }
    case cJSON_Object:
      lua_newtable(L);
      for (it = v->child; it; it = it->next) {
        push_stored_str(L, it->string ? it->string : "");
        push_json(L, it);
        lua_rawset(L, -3);
      }
      break;
    default: lua_pushlightuserdata(L, NULL); break; /* null */
  }
}

/* ---- span tables -------------------------------------------------------------- */

static void push_trace_id(lua_State *L, lvt *S) {
  const char *t = vt_collector_trace_id(S->c);
  if (S->trace_ref == LUA_NOREF || strcmp(t, S->trace_cached) != 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, S->trace_ref);
    lua_pushstring(L, t);
    S->trace_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    strcpy(S->trace_cached, t);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->trace_ref);
}

static void set_int(lua_State *L, const char *k, int64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static void push_span(lua_State *L, lvt *S, const vt_span_view *v) {
  size_t i;
  lua_createtable(L, 0, 9);
  push_trace_id(L, S);
  lua_setfield(L, -2, "trace_id");
  set_int(L, "span_id", (int64_t)v->id);
  if (v->parent) set_int(L, "parent_id", (int64_t)v->parent);
  lua_pushstring(L, vt_kind_name((int)v->kind));
  lua_setfield(L, -2, "kind");
  lua_pushlstring(L, v->name, v->name_len);
  lua_setfield(L, -2, "name");
  set_int(L, "start_ms", v->start_ns / 1000000);
  set_int(L, "start_unix_ms", v->start_unix_ns / 1000000);
  if (v->open) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "open");
  } else {
    set_int(L, "duration_ms", v->duration_ns / 1000000);
  }
  if (v->metadata && v->metadata->child) {
    push_json(L, v->metadata);
    lua_setfield(L, -2, "metadata");
  }
  if (v->nlinks) {
    lua_createtable(L, (int)v->nlinks, 0);
    for (i = 0; i < v->nlinks; i++) {
      const vt_link *l = &v->links[i];
      lua_createtable(L, 0, 3);
      lua_pushlstring(L, l->trace_id, l->trace_id_len);
      lua_setfield(L, -2, "trace_id");
      lua_pushlstring(L, l->span_id, l->span_id_len);
      lua_setfield(L, -2, "span_id");
      if (l->attributes && l->attributes->child) {
        push_json(L, l->attributes);
        lua_setfield(L, -2, "attributes");
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "links");
  }
  if (v->nevents) {
    lua_createtable(L, (int)v->nevents, 0);
    for (i = 0; i < v->nevents; i++) {
      const vt_event *e = &v->events[i];
      lua_createtable(L, 0, 4);
      lua_pushlstring(L, e->name, e->name_len);
      lua_setfield(L, -2, "name");
      set_int(L, "time_unix_ms", e->time_unix_ns / 1000000);
      set_int(L, "offset_ms", e->offset_ns / 1000000);
      if (e->attributes && e->attributes->child) {
        push_json(L, e->attributes);
        lua_setfield(L, -2, "attributes");
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "events");
  }
}

static void push_link(lua_State *L, lvt *S, vt_id id) {
  lua_createtable(L, 0, 2);
  push_trace_id(L, S);
  lua_setfield(L, -2, "trace_id");
  lua_pushfstring(L, "%I", (LUAI_UACINT)id);
  lua_setfield(L, -2, "span_id");
}

/* ---- the switch ------------------------------------------------------------------ */

/* An invalid traceparent is ignored, as the W3C specification says; the
 * first one a state sees is reported on stderr. */
static int join(lvt *S, const char *header, size_t len, const char *from) {
  if (vt_collector_continue_trace(S->c, header, len) == VT_OK) return 1;
  if (!S->warned_context) {
    S->warned_context = 1;
    fprintf(stderr, "vmtrace: ignoring an invalid traceparent (%s); "
                    "tracing goes on in a trace of its own\n", from);
  }
  return 0;
}

static int l_enable(lua_State *L) {
  lvt *S = STATE(L);
  const char *tp;
  int on = 1;
  if (!lua_isnoneornil(L, 1)) {
    if (lua_type(L, 1) != LUA_TBOOLEAN) type_error(L, "enable", 1, "boolean");
    on = lua_toboolean(L, 1);
  }
  vt_collector_set_enabled(S->c, on);
  if (on && (tp = getenv("TRACEPARENT")) != NULL && *tp) /* started by a traced process */
    join(S, tp, strlen(tp), "the TRACEPARENT environment variable");
  return 0;
}

/* continue_trace(header): join the remote trace of a W3C traceparent
 * header; true, or false (with one warning) for an invalid header. */
static int l_continue_trace(lua_State *L) {
  size_t len;
  const char *h = check_str(L, "continue_trace", 1, &len);
  lua_pushboolean(L, join(STATE(L), h, len, "vmtrace.continue_trace"));
  return 1;
}

/* traceparent([id]): the W3C header naming span id (by default the current
 * span, else the remote parent joined), or nil. */
static int l_traceparent(lua_State *L) {
  lvt *S = STATE(L);
  char out[56];
  vt_id id = lua_isnoneornil(L, 1) ? current_of(L, S) : check_id(L, "traceparent", 1);
  if (lua_isnoneornil(L, 1) && id && !vt_slot_of(S->c, id)) id = 0;
  if (vt_collector_traceparent(S->c, id, out) != VT_OK) return 0;
  lua_pushstring(L, out);
  return 1;
}

static int l_disable(lua_State *L) {
  vt_collector_set_enabled(STATE(L)->c, 0);
  return 0;
}

static int l_is_enabled(lua_State *L) {
  lua_pushboolean(L, vt_collector_enabled(STATE(L)->c));
  return 1;
}

static int l_reset(lua_State *L) {
  vt_collector_reset(STATE(L)->c);
  return 0;
}

static int l_trace_id(lua_State *L) {
  push_trace_id(L, STATE(L));
  return 1;
}

static int l_dropped(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vt_collector_dropped(STATE(L)->c));
  return 1;
}

/* ---- spans by id ------------------------------------------------------------------ */

/* Links from opts.links (at idx), checked before anything is allocated. The
 * array lives in a userdata left on the stack; its strings point into the
 * link tables, which stay referenced by opts. */
static vt_link *check_links(lua_State *L, const char *fn, int idx,
                            size_t *n) {
  size_t count = 0, i;
  vt_link *links;
  if (lua_type(L, idx) != LUA_TTABLE)
    arg_error(L, fn, 3, "opts.links must be an array of links, got %s",
              luaL_typename(L, idx));
  count = (size_t)lua_rawlen(L, idx);
  for (i = 1; i <= count; i++) {
    int t = lua_rawgeti(L, idx, (lua_Integer)i), ts, tt, ta;
    if (t != LUA_TTABLE)
      arg_error(L, fn, 3, "opts.links[%d] must be a table, got %s", (int)i,
                lua_typename(L, t));
    tt = lua_getfield(L, -1, "trace_id");
    ts = lua_getfield(L, -2, "span_id");
    ta = lua_getfield(L, -3, "attributes");
    if (tt != LUA_TSTRING)
      arg_error(L, fn, 3, "opts.links[%d].trace_id must be a string, got %s",
                (int)i, lua_typename(L, tt));
    if (ts != LUA_TSTRING && !(ts == LUA_TNUMBER && lua_isinteger(L, -2)))
      arg_error(L, fn, 3,
                "opts.links[%d].span_id must be a string or an integer, got %s",
                (int)i, lua_typename(L, ts));
    if (ta == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
          arg_error(L, fn, 3,
                    "opts.links[%d].attributes must map strings to strings",
                    (int)i);
        lua_pop(L, 1);
      }
    } else if (ta != LUA_TNIL) {
      arg_error(L, fn, 3, "opts.links[%d].attributes must be a table, got %s",
                (int)i, lua_typename(L, ta));
    }
    lua_pop(L, 4);
  }
  links = lua_newuserdatauv(L, (count ? count : 1) * sizeof *links, 0);
  for (i = 0; i < count; i++) {
    vt_link *l = &links[i];
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    lua_getfield(L, -1, "trace_id");
    l->trace_id = lua_tolstring(L, -1, &l->trace_id_len);
    lua_getfield(L, -2, "span_id");
    if (lua_type(L, -1) == LUA_TNUMBER) { /* integer: its decimal text */
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -1));
      lua_replace(L, -2);
      lua_pushvalue(L, -1); /* keep the text alive in the link table */
      lua_setfield(L, -4, "span_id");
    }
    l->span_id = lua_tolstring(L, -1, &l->span_id_len);
    l->attributes = NULL;
    lua_pop(L, 3);
  }
  for (i = 0; i < count; i++) { /* attributes last: allocation only now */
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    if (lua_getfield(L, -1, "attributes") == LUA_TTABLE) {
      conv cv;
      memset(&cv, 0, sizeof cv);
      cv.L = L;
      links[i].attributes = to_json(&cv, lua_gettop(L));
      if (!links[i].attributes) {
        size_t j;
        for (j = 0; j < i; j++) cJSON_Delete(links[j].attributes);
        luaL_error(L, "vmtrace.%s: out of memory", fn);
      }
    }
    lua_pop(L, 2);
  }
  *n = count;
  return links;
}

/* ---- coroutines ------------------------------------------------------------- */

/* A coroutine's active stack lives in a box: a userdata whose uservalue is the
 * thread and which is the value of the thread in a weak-keyed table. When the
 * thread is garbage, the box is finalized; the box keeps the thread from being
 * freed (and its address reused) until the box's finalizer has run, so the
 * one-entry cache (co_L, co_st) can never name a different thread. */
#define THREAD_MT "vmtrace.Thread"

typedef struct thread_box {
  vt_stack *st;
  lua_State *co;
} thread_box;

static int l_thread_gc(lua_State *L) {
  lvt *S = STATE(L);
  thread_box *b = lua_touserdata(L, 1);
  if (b->st && S->c) vt_stack_free(S->c, b->st);
  if (S->co_L == b->co) S->co_L = NULL, S->co_st = NULL;
  b->st = NULL;
  return 0;
}

/* The box of thread `co` (at index idx), made with `base` as inherited parent
 * when missing. */
static thread_box *box_of(lua_State *L, lvt *S, int idx, lua_State *co,
                          vt_id base, int create) {
  thread_box *b;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->threads_ref);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA || !create) {
    b = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 1);
  b = lua_newuserdatauv(L, sizeof *b, 1); /* threads, box */
  b->st = NULL;
  b->co = co;
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);
  b->st = vt_stack_new(S->c, base);
  if (!b->st) luaL_error(L, "vmtrace: out of memory");
  luaL_setmetatable(L, THREAD_MT);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_pop(L, 2);
  return b;
}

/* The active stack of the running thread (NULL: the main stack). A coroutine
 * not made by vmtrace.coroutine inherits the main thread's current span. */
static vt_stack *stack_of(lua_State *L, lvt *S) {
  thread_box *b;
  if (VT_LIKELY(L == S->main_L)) return NULL;
  if (L == S->co_L) return S->co_st;
  lua_pushthread(L);
  b = box_of(L, S, -1, L, vt_stack_current(S->c, NULL), 1);
  lua_pop(L, 1);
  S->co_L = L;
  S->co_st = b->st;
  return b->st;
}

/* The current span of the running thread, without making it a stack. */
static vt_id current_of(lua_State *L, lvt *S) {
  thread_box *b;
  if (L == S->main_L) return vt_stack_current(S->c, NULL);
  if (L == S->co_L) return vt_stack_current(S->c, S->co_st);
  lua_pushthread(L);
  b = box_of(L, S, -1, L, 0, 0);
  lua_pop(L, 1);
  return vt_stack_current(S->c, b ? b->st : NULL);
}

/* ---- sinks ------------------------------------------------------------------- */

/* Tell the Lua dispatcher (vmtrace.add_sink) of a start (dur < 0) or an end.
 * The dispatcher protects each sink; nothing here may raise into the caller. */
static void dispatch(lua_State *L, lvt *S, vt_id id, int64_t dur_ns) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->dispatch_ref);
  lua_pushinteger(L, (lua_Integer)id);
  if (dur_ns < 0) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)(dur_ns / 1000000));
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
}

#define SINKS(S) VT_UNLIKELY((S)->dispatch_ref != LUA_NOREF)

/* ---- spans by id ------------------------------------------------------------------ */

/* Start with an options table at index 3: links, detached, metadata. */
static vt_id start_with_opts(lua_State *L, lvt *S, const char *fn,
                             vt_kind kind, const char *name, size_t len,
                             unsigned flags) {
  vt_link *links = NULL;
  size_t nlinks = 0;
  cJSON *meta = NULL;
  vt_start_args args;
  vt_id id;
  if (lua_isnoneornil(L, 3)) goto start;
  if (lua_type(L, 3) != LUA_TTABLE) type_error(L, fn, 3, "options table");
  lua_pushnil(L);
  while (lua_next(L, 3)) { /* unknown options are mistakes worth hearing of */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || (strcmp(k, "links") && strcmp(k, "detached") && strcmp(k, "metadata")))
      arg_error(L, fn, 3,
                "unknown option '%s' (expected links, detached, metadata)",
                k ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  if (lua_getfield(L, 3, "detached") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TBOOLEAN)
      arg_error(L, fn, 3, "opts.detached must be a boolean, got %s",
                luaL_typename(L, -1));
    if (lua_toboolean(L, -1)) flags |= VT_START_DETACHED;
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 3, "links") != LUA_TNIL)
    links = check_links(L, fn, lua_gettop(L), &nlinks);
  if (lua_getfield(L, 3, "metadata") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TTABLE)
      arg_error(L, fn, 3, "opts.metadata must be a table, got %s",
                luaL_typename(L, -1));
    if (S->c->enabled || (flags & VT_START_ALWAYS)) { /* converted last */
      conv cv;
      memset(&cv, 0, sizeof cv);
      cv.L = L;
      meta = to_json(&cv, lua_gettop(L));
      if (meta && !cJSON_IsObject(meta)) {
        cJSON_Delete(meta);
        meta = NULL;
        snprintf(cv.err, sizeof cv.err, "opts.metadata must have string keys");
      } else if (meta && cJSON_GetArraySize(meta) > VT_MAX_KEYS) {
        cJSON_Delete(meta);
        meta = NULL;
        snprintf(cv.err, sizeof cv.err, "opts.metadata has more than %d keys, the most one span takes",
                 VT_MAX_KEYS);
      }
      if (!meta) {
        size_t i;
        for (i = 0; i < nlinks; i++) cJSON_Delete(links[i].attributes);
        if (cv.oom) luaL_error(L, "vmtrace.%s: out of memory", fn);
        arg_error(L, fn, 3, "%s%s", cv.err[0] == 'o' ? "" : "opts.metadata: ",
                  cv.err);
      }
    }
  }
start:
  args.links = links;
  args.nlinks = nlinks;
  args.metadata = meta;
  args.flags = flags;
  id = vt_collector_start(S->c, stack_of(L, S), kind, name, len, &args);
  if (id && SINKS(S)) {
    dispatch(L, S, id, -1);
    if (flags & VT_START_INSTANT) dispatch(L, S, id, 0);
  }
  return id;
}

/* The interned name of the string at arg 2, through the cache. */
static int64_t name_of(lua_State *L, lvt *S, const char *name, size_t len) {
  uintptr_t a = (uintptr_t)name;
  name_entry *e = &S->names[((a >> 4) ^ (a >> 10)) & (NAME_CACHE - 1)];
  int64_t nm;
  if (VT_LIKELY(e->p == name)) return e->name;
  nm = vt_collector_intern(S->c, name, len);
  if (nm < 0) return nm;
  lua_getiuservalue(L, lua_upvalueindex(1), 2); /* anchors */
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, (e - S->names) + 1);
  lua_pop(L, 1);
  e->p = name;
  e->name = (uint32_t)nm;
  return nm;
}

/* Why arguments 1 and 2 of start/span were refused. */
static int start_arg_error(lua_State *L, const char *fn, const char *kind,
                           size_t klen, int arg) {
  if (!kind || (arg == 1 && lua_type(L, 1) != LUA_TSTRING))
    type_error(L, fn, 1, "span kind string");
  if (arg == 1 && vt_kind_parse(kind, klen) < 0) {
    luaL_Buffer b; /* the kind as given, a NUL shown as \0 */
    size_t i;
    luaL_buffinit(L, &b);
    for (i = 0; i < klen && i < 64; i++) {
      if (kind[i]) luaL_addchar(&b, kind[i]);
      else luaL_addstring(&b, "\\0");
    }
    luaL_pushresult(&b);
    arg_error(L, fn, 1, "unknown span kind '%s'; expected one of %s", lua_tostring(L, -1),
              vt_kind_list());
  }
  return type_error(L, fn, 2, "string");
}

/* The kind at argument 1 (checked), by the address of its interned string. */
#define KIND_OF(L, S, fn, k, kind, klen)                                   \
  do {                                                                     \
    kind = lua_tolstring(L, 1, &klen);                                     \
    if (VT_UNLIKELY(!kind)) return start_arg_error(L, fn, kind, klen, 1);  \
    while (S->kind_ptr[k] != kind)                                         \
      if (++k == VT_KIND_COUNT) return start_arg_error(L, fn, kind, klen, 1); \
  } while (0)

/* start(kind, name [, opts]) with `flags`; the id, 0 when not recorded. */
static vt_id start_span(lua_State *L, lvt *S, const char *fn, int k,
                        const char *kind, size_t klen, unsigned flags) {
  size_t len;
  const char *name;
  int64_t nm;
  vt_id id;
  if (VT_UNLIKELY(lua_type(L, 2) != LUA_TSTRING))
    return (vt_id)start_arg_error(L, fn, kind, klen, 2);
  name = lua_tolstring(L, 2, &len);
  if (VT_UNLIKELY(lua_gettop(L) > 2 && !lua_isnil(L, 3)) ||
      VT_UNLIKELY(L != S->main_L && L != S->co_L) || flags)
    return start_with_opts(L, S, fn, (vt_kind)k, name, len, flags);
  nm = name_of(L, S, name, len);
  if (nm < 0) return 0;
  id = vt_collector_start_interned(S->c, L == S->main_L ? NULL : S->co_st,
                                   (vt_kind)k, (uint32_t)nm, NULL);
  if (id && SINKS(S)) dispatch(L, S, id, -1);
  return id;
}

/* start and _instant: the id of a span started with flags, 0 while tracing
 * is off (the kind is checked even then; the rest only when recording). */
static inline int start_if_on(lua_State *L, const char *fn, unsigned flags) {
  lvt *S = STATE(L);
  size_t klen;
  const char *kind;
  int k = 0;
  KIND_OF(L, S, fn, k, kind, klen);
  if (!S->c->enabled) {
    lua_pushinteger(L, 0);
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)start_span(L, S, fn, k, kind, klen, flags));
  return 1;
}

static int l_start(lua_State *L) { return start_if_on(L, "start", 0); }

/* _start_always(kind, name [, opts]): records even while tracing is off
 * (std/timing); returns the id and the parent id. */
static int l_start_always(lua_State *L) {
  lvt *S = STATE(L);
  size_t klen;
  const char *kind;
  int k = 0;
  vt_id id;
  vt_span_view v;
  KIND_OF(L, S, "_start_always", k, kind, klen);
  id = start_span(L, S, "_start_always", k, kind, klen, VT_START_ALWAYS);
  lua_pushinteger(L, (lua_Integer)id);
  if (!id || vt_collector_get(S->c, id, &v) != VT_OK || !v.parent) return 1;
  lua_pushinteger(L, (lua_Integer)v.parent);
  return 2;
}

/* _instant(kind, name [, opts]): a marker span, completed at once with
 * duration 0; no-op while tracing is off. */
static int l_instant(lua_State *L) { return start_if_on(L, "_instant", VT_START_INSTANT); }

static int finish_id(lua_State *L, lvt *S, vt_id id) {
  int64_t dur;
  if (id == 0 || vt_collector_finish(S->c, id, &dur) != VT_OK) return 0;
  lua_pushinteger(L, (lua_Integer)(dur / 1000000));
  if (SINKS(S)) dispatch(L, S, id, dur);
  return 1;
}

static int l_finish(lua_State *L) {
  int ok;
  lua_Integer id = lua_tointegerx(L, 1, &ok);
  if (VT_UNLIKELY(!ok)) check_id(L, "finish", 1);
  if (id <= 0) return 0; /* not recorded (tracing off): nil */
  if (!finish_id(L, STATE(L), (vt_id)id)) lua_pushnil(L);
  return 1;
}

/* Metadata values are checked in depth only for a span that can take them. */
static void check_json_type(lua_State *L, const char *fn, int arg) {
  int t = lua_type(L, arg);
  if (t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD ||
      (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, arg) != NULL))
    arg_error(L, fn, arg, "%s is not JSON-able", luaL_typename(L, arg));
}

/* Set the key at argument k to the value at k + 1 on span id. */
static int set_metadata_at(lua_State *L, lvt *S, const char *fn, vt_id id,
                           int k, int if_absent) {
  size_t klen;
  const char *key = check_str(L, fn, k, &klen);
  vt_span_view v;
  int rc;
  check_json_type(L, fn, k + 1);
  if (vt_collector_get(S->c, id, &v) != VT_OK || (!v.open && !if_absent) ||
      (if_absent && vt_json_obj_get(v.metadata, key, klen))) {
    lua_pushboolean(L, 0);
    return 1;
  }
  rc = if_absent ? vt_collector_set_metadata_if_absent(
                       S->c, id, key, klen, check_json(L, fn, k + 1, 0))
                 : vt_collector_set_metadata(S->c, id, key, klen,
                                             check_json(L, fn, k + 1, 0));
  if (rc == VT_ENOMEM) return luaL_error(L, "vmtrace.%s: out of memory", fn);
  if (rc == VT_ELIMIT)
    return arg_error(L, fn, k, "span %I already has %d metadata keys, the most one span takes",
                     (LUAI_UACINT)id, VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_set_metadata(lua_State *L) {
  return set_metadata_at(L, STATE(L), "set_metadata",
                         check_id(L, "set_metadata", 1), 2, 0);
}

static int l_set_metadata_if_absent(lua_State *L) {
  return set_metadata_at(L, STATE(L), "set_metadata_if_absent",
                         check_id(L, "set_metadata_if_absent", 1), 2, 1);
}

/* Record the event named at argument n (attributes at n + 1) on span id. */
static int record_event_at(lua_State *L, lvt *S, const char *fn, vt_id id,
                           int n) {
  size_t len;
  const char *name = check_str(L, fn, n, &len);
  vt_span_view v;
  cJSON *attrs = NULL;
  int rc;
  if (!lua_isnoneornil(L, n + 1) && lua_type(L, n + 1) != LUA_TTABLE)
    type_error(L, fn, n + 1, "table with string keys");
  if (vt_collector_get(S->c, id, &v) != VT_OK || !v.open) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!lua_isnoneornil(L, n + 1)) attrs = check_json(L, fn, n + 1, 1);
  rc = vt_collector_record_event(S->c, id, name, len, attrs);
  if (rc == VT_ENOMEM) return luaL_error(L, "vmtrace.%s: out of memory", fn);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_record_event(lua_State *L) {
  return record_event_at(L, STATE(L), "record_event",
                         check_id(L, "record_event", 1), 2);
}

/* Mark span id as failed with the error object at idx: status = "error",
 * error = its message. */
static void mark_error(lua_State *L, lvt *S, vt_id id, int idx) {
  size_t len;
  const char *msg;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
  } else if (!luaL_callmeta(L, idx, "__tostring") || !lua_isstring(L, -1)) {
    lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  }
  msg = lua_tolstring(L, -1, &len);
  vt_collector_set_metadata(S->c, id, "status", 6, vt_json_str("error", 5));
  vt_collector_set_metadata(S->c, id, "error", 5, vt_json_str(msg, len));
  lua_pop(L, 1);
}

static int l_get(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "get", 1);
  vt_span_view v;
  if (vt_collector_get(S->c, id, &v) != VT_OK) return 0;
  push_span(L, S, &v);
  return 1;
}

static int l_current_span_id(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id;
  if (!vt_collector_enabled(S->c)) return 0;
  id = current_of(L, S);
  if (!id) return 0;
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

static int link_of(lua_State *L, lvt *S, vt_id id) {
  vt_span_view v;
  if (!vt_collector_enabled(S->c) || vt_collector_get(S->c, id, &v) != VT_OK ||
      !v.open)
    return 0;
  push_link(L, S, id);
  return 1;
}

static int l_span_link(lua_State *L) {
  return link_of(L, STATE(L), check_id(L, "span_link", 1));
}

static int l_current_span_link(lua_State *L) {
  lvt *S = STATE(L);
  return link_of(L, S, current_of(L, S));
}

static int push_spans(lua_State *L, lvt *S) {
  size_t n = vt_collector_count(S->c), i;
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
  for (i = 0; i < n; i++) {
    vt_span_view v;
    vt_collector_get(S->c, vt_collector_completed_id(S->c, i), &v);
    push_span(L, S, &v);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

static int l_spans(lua_State *L) { return push_spans(L, STATE(L)); }

static int l_take_spans(lua_State *L) {
  lvt *S = STATE(L);
  push_spans(L, S);
  vt_collector_take(S->c);
  return 1;
}

static int l_summary(lua_State *L) {
  size_t len;
  char *s = vt_collector_summary(STATE(L)->c, &len);
  if (!s) return luaL_error(L, "vmtrace.summary: out of memory");
  lua_pushlstring(L, s, len);
  vt_free(s);
  return 1;
}

/* ---- exports ----------------------------------------------------------------- */

/* Where an export goes: a path, a Lua file handle, or nil for a string. A path
 * is written to a temporary file beside it and renamed into place once whole,
 * so a failed export never leaves a file that looks complete; a path that is
 * not a regular file (/dev/full, a fifo) is written directly. */
typedef struct dest {
  FILE *f;
  char *tmp;        /* the temporary file, renamed to path at the end */
  const char *path; /* NULL for a file handle */
} dest;

/* Check the destination at idx (raises for a wrong one; allocates nothing). */
static void dest_check(lua_State *L, int idx) {
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    luaL_Stream *p = luaL_testudata(L, idx, LUA_FILEHANDLE);
    if (!p) type_error(L, "export", idx, "path, file handle or nil");
    if (!p->closef) arg_error(L, "export", idx, "file handle is closed");
  } else if (!lua_isnoneornil(L, idx)) {
    check_str(L, "export", idx, NULL);
  }
}

/* Open the checked destination at idx without raising; 0, or the number of
 * results (nil, message). */
static int dest_open(lua_State *L, int idx, dest *d) {
  struct stat st;
  const char *path;
  memset(d, 0, sizeof *d);
  if (lua_type(L, idx) == LUA_TUSERDATA) {
    d->f = ((luaL_Stream *)lua_touserdata(L, idx))->f;
    return 0;
  }
  path = lua_tostring(L, idx);
  d->path = path;
  errno = ENOMEM;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    d->f = fopen(path, "wb");
  } else if ((d->tmp = vt_malloc(strlen(path) + 32)) != NULL) {
    sprintf(d->tmp, "%s.tmp.%ld.%u", path, (long)getpid(), (unsigned)rand());
    d->f = fopen(d->tmp, "wb");
  }
  if (!d->f) {
    int e = errno;
    vt_free(d->tmp);
    d->tmp = NULL;
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.export: cannot open %s: %s", path, strerror(e));
    return 2;
  }
  return 0;
}

/* Finish writing (rc is the writer's status); true, or nil and a message. */
static int dest_close(lua_State *L, dest *d, int rc) {
  int e = rc == VT_EIO ? errno : 0;
  if (d->path) {
    if (fclose(d->f) != 0 && rc == VT_OK) {
      rc = VT_EIO;
      e = errno;
    }
    if (d->tmp) {
      if (rc == VT_OK && rename(d->tmp, d->path) != 0) {
        rc = VT_EIO;
        e = errno;
      }
      if (rc != VT_OK) remove(d->tmp);
      vt_free(d->tmp);
    }
  }
  if (rc == VT_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  if (rc == VT_EIO)
    lua_pushfstring(L, "vmtrace.export: cannot write %s: %s",
                    d->path ? d->path : "to the file", strerror(e));
  else
    lua_pushliteral(L, "vmtrace.export: out of memory");
  return 2;
}

static const char *const format_names[] = {"json", "otlp", "chrome", "folded", NULL};
static const char *const weight_names[] = {"time", "tokens", "cost", NULL};

/* The index of the name at idx in names; else an error on argument arg. */
static int check_option(lua_State *L, int idx, int arg, const char *what,
                        const char *const names[]) {
  const char *s = lua_tostring(L, idx);
  int i;
  for (i = 0; s && names[i]; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return arg_error(L, "export", arg, "unknown %s '%s'", what,
                   s ? s : luaL_typename(L, idx));
}

/* export(format, dest [, opts]) --> true | string, or nil and a message. */
static int l_export(lua_State *L) {
  lvt *S = STATE(L);
  vt_export_opts o;
  cJSON *resource = NULL;
  dest d;
  int fmt, rc, n;
  memset(&o, 0, sizeof o);
  if (lua_type(L, 1) != LUA_TSTRING) type_error(L, "export", 1, "format name");
  fmt = check_option(L, 1, 1, "format (expected json, otlp, chrome, folded, profile)",
                     format_names);
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TTABLE) type_error(L, "export", 3, "options table");
    lua_pushnil(L);
    while (lua_next(L, 3)) { /* unknown options are mistakes worth hearing of */
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (!k || (strcmp(k, "weight") && strcmp(k, "service_name") && strcmp(k, "resource")))
        arg_error(L, "export", 3, "unknown option '%s' (expected weight, service_name, resource)",
                  k ? k : luaL_typename(L, -2));
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 3, "weight") != LUA_TNIL)
      o.weight = (vt_weight)check_option(L, lua_gettop(L), 3, "weight (expected time, tokens, cost)",
                                         weight_names);
    if (lua_getfield(L, 3, "service_name") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING)
        arg_error(L, "export", 3, "opts.service_name must be a string");
      o.service_name = lua_tostring(L, -1);
    }
    dest_check(L, 2);
    if (lua_getfield(L, 3, "resource") != LUA_TNIL) { /* last: it allocates */
      conv cv;
      if (lua_type(L, -1) != LUA_TTABLE)
        arg_error(L, "export", 3, "opts.resource must be a table, got %s", luaL_typename(L, -1));
      memset(&cv, 0, sizeof cv);
      cv.L = L;
      resource = to_json(&cv, lua_gettop(L));
      if (resource && !cJSON_IsObject(resource)) {
        cJSON_Delete(resource);
        resource = NULL;
        snprintf(cv.err, sizeof cv.err, "must have string keys");
      }
      if (!resource) {
        if (cv.oom) return luaL_error(L, "vmtrace.export: out of memory");
        arg_error(L, "export", 3, "opts.resource: %s", cv.err);
      }
    }
    o.resource = resource;
  }
  dest_check(L, 2);
  if (lua_isnoneornil(L, 2)) {
    size_t len;
    char *s = vt_collector_export_string(S->c, (vt_format)fmt, &o, &len);
    cJSON_Delete(resource);
    if (!s) return luaL_error(L, "vmtrace.export: out of memory");
    lua_pushlstring(L, s, len);
    vt_free(s);
    return 1;
  }
  if ((n = dest_open(L, 2, &d)) != 0) {
    cJSON_Delete(resource);
    return n;
  }
  rc = vt_collector_export(S->c, (vt_format)fmt, &o, d.f);
  cJSON_Delete(resource);
  return dest_close(L, &d, rc);
}

/* _write(dest, text): text to a destination as export writes it. */
static int l_write(lua_State *L) {
  size_t len;
  const char *text = check_str(L, "export", 3, &len);
  dest d;
  int n, rc = VT_OK;
  if (lua_isnoneornil(L, 2)) {
    lua_pushvalue(L, 3);
    return 1;
  }
  dest_check(L, 2);
  if ((n = dest_open(L, 2, &d)) != 0) return n;
  if (fwrite(text, 1, len, d.f) != len || fflush(d.f) != 0) rc = VT_EIO;
  return dest_close(L, &d, rc);
}

/* stream(dest [, opts]): write each span start and end as an NDJSON line as
 * it happens; stream(nil) stops. dest is a path or a file handle (its file
 * descriptor is duplicated, so closing the handle does not break the stream).
 * opts.flush = false leaves flushing to the C library; opts.append = true
 * appends to a path. Returns true, or nil and a message. */
static int l_stream(lua_State *L) {
  lvt *S = STATE(L);
  int flush = 1, append = 0, err = 0;
  FILE *f = NULL;
  const char *name = "the file";
  if (!lua_isnoneornil(L, 2)) {
    if (lua_type(L, 2) != LUA_TTABLE) type_error(L, "stream", 2, "options table");
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (!k || (strcmp(k, "flush") && strcmp(k, "append")))
        arg_error(L, "stream", 2, "unknown option '%s' (expected flush, append)",
                  k ? k : luaL_typename(L, -2));
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 2, "flush") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TBOOLEAN)
        arg_error(L, "stream", 2, "opts.flush must be a boolean");
      flush = lua_toboolean(L, -1);
    }
    if (lua_getfield(L, 2, "append") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TBOOLEAN)
        arg_error(L, "stream", 2, "opts.append must be a boolean");
      append = lua_toboolean(L, -1);
    }
  }
  if (lua_type(L, 1) == LUA_TUSERDATA) {
    luaL_Stream *p = luaL_testudata(L, 1, LUA_FILEHANDLE);
    int fd;
    if (!p) type_error(L, "stream", 1, "path, file handle or nil");
    if (!p->closef) arg_error(L, "stream", 1, "file handle is closed");
    fflush(p->f);
    fd = dup(fileno(p->f));
    if (fd < 0 || !(f = fdopen(fd, "a"))) {
      err = errno;
      if (fd >= 0) close(fd);
    }
  } else if (!lua_isnoneornil(L, 1)) {
    name = check_str(L, "stream", 1, NULL);
    if (!(f = fopen(name, append ? "ab" : "wb"))) err = errno;
  }
  if (err) {
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.stream: cannot open %s: %s", name, strerror(err));
    return 2;
  }
  if (S->stream) { /* one stream at a time: stop the old one */
    err = vt_stream_close(S->stream);
    S->stream = NULL;
  }
  if (f) {
    S->stream = vt_stream_open(S->c, f, 1, flush);
    if (!S->stream) {
      fclose(f);
      return luaL_error(L, "vmtrace.stream: out of memory");
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  if (err) {
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.stream: writing failed: %s", strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* load(path): replace the spans with those of a JSON span list or an NDJSON
 * stream (also one cut off by a crash); the number of spans, or nil and a
 * message naming the file and line. */
static int l_load(lua_State *L) {
  lvt *S = STATE(L);
  const char *path = check_str(L, "load", 1, NULL);
  FILE *f = fopen(path, "rb");
  luaL_Buffer b;
  char err[256], chunk[65536];
  size_t n;
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  luaL_buffinit(L, &b);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) luaL_addlstring(&b, chunk, n);
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    return 2;
  }
  fclose(f);
  luaL_pushresult(&b);
  {
    size_t len;
    const char *text = lua_tolstring(L, -1, &len);
    if (vt_collector_load(S->c, text, len, err, sizeof err) != VT_OK) {
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, err);
      return 2;
    }
    memset(S->names, 0, sizeof S->names); /* the names table was replaced */
  }
  lua_pushinteger(L, (lua_Integer)vt_collector_count(S->c));
  return 1;
}

/* ---- the OTLP/HTTP exporter ---------------------------------------------------------- */

static long opt_int(lua_State *L, int t, const char *k, long def, long lo, long hi) {
  long v = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    int ok;
    lua_Integer n = lua_tointegerx(L, -1, &ok);
    if (!ok || n < lo || n > hi)
      arg_error(L, "otlp.start", 1, "%s must be an integer from %d to %d", k, (int)lo, (int)hi);
    v = (long)n;
  }
  lua_pop(L, 1);
  return v;
}

/* _otlp_start(cfg): cfg as vmtrace.otlp.start builds it (lua/vmtrace/otlp.lua). */
static int l_otlp_start(lua_State *L) {
  lvt *S = STATE(L);
  vt_otlp_config cfg;
  const char **headers;
  cJSON *resource = NULL;
  char err[256];
  size_t nh, i;
  static const char *const samplers[] = {"always_on", "always_off", "traceidratio",
                                         "parentbased_always_on", "parentbased_always_off",
                                         "parentbased_traceidratio", NULL};
  int sampler = 3;
  double ratio = 1.0;
  memset(&cfg, 0, sizeof cfg);
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_getfield(L, 1, "endpoint") != LUA_TSTRING)
    arg_error(L, "otlp.start", 1, "endpoint must be a URL string");
  cfg.endpoint = lua_tostring(L, -1);
  if (lua_getfield(L, 1, "service_name") == LUA_TSTRING) cfg.service_name = lua_tostring(L, -1);
  cfg.timeout_ms = opt_int(L, 1, "timeout_ms", 10000, 1, 3600000);
  cfg.max_retry_ms = opt_int(L, 1, "max_retry_ms", 30000, 0, 3600000);
  cfg.delay_ms = opt_int(L, 1, "delay_ms", 5000, 1, 3600000);
  cfg.backoff_ms = opt_int(L, 1, "backoff_ms", 1000, 1, 3600000);
  cfg.batch_size = (size_t)opt_int(L, 1, "batch_size", 512, 1, 1 << 20);
  cfg.max_queue = (size_t)opt_int(L, 1, "max_queue", 2048, 1, 1 << 24);
  lua_getfield(L, 1, "gzip");
  cfg.gzip = lua_toboolean(L, -1);
  if (lua_getfield(L, 1, "sampler") != LUA_TNIL) {
    const char *sm = lua_tostring(L, -1);
    for (sampler = 0; sm && samplers[sampler] && strcmp(sm, samplers[sampler]); sampler++) {
    }
    if (!sm || !samplers[sampler])
      arg_error(L, "otlp.start", 1, "unknown sampler '%s' (expected always_on, always_off, "
                "traceidratio, parentbased_always_on, parentbased_always_off, "
                "parentbased_traceidratio)", sm ? sm : luaL_typename(L, -1));
  }
  if (lua_getfield(L, 1, "ratio") != LUA_TNIL) {
    int ok;
    ratio = lua_tonumberx(L, -1, &ok);
    if (!ok || !(ratio >= 0 && ratio <= 1))
      arg_error(L, "otlp.start", 1, "the sampler ratio must be a number from 0 to 1");
  }
  lua_getfield(L, 1, "headers"); /* an array of "Name: value" strings */
  nh = lua_istable(L, -1) ? (size_t)lua_rawlen(L, -1) : 0;
  headers = lua_newuserdatauv(L, (nh + 1) * sizeof *headers, 0);
  for (i = 0; i < nh; i++) {
    lua_rawgeti(L, -2, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, "otlp.start", 1, "header %d is not a string", (int)i + 1);
    headers[i] = lua_tostring(L, -1); /* anchored in cfg.headers */
    lua_pop(L, 1);
  }
  headers[nh] = NULL;
  cfg.headers = headers;
  if (lua_getfield(L, 1, "resource") == LUA_TTABLE)
    resource = check_json(L, "otlp.start", lua_gettop(L), 1); /* last: allocates */
  cfg.resource = resource;
  if (S->otlp) { /* one exporter at a time: the old one finishes first */
    vt_otlp_shutdown(S->otlp, S->otlp_close_ms);
    S->otlp = NULL;
  }
  vt_collector_set_sampler(S->c, (vt_sampler)sampler, ratio);
  S->otlp = vt_otlp_start(S->c, &cfg, err, sizeof err);
  S->otlp_close_ms = cfg.timeout_ms < 5000 ? cfg.timeout_ms : 5000;
  cJSON_Delete(resource);
  if (!S->otlp) {
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.otlp.start: %s", err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static long check_timeout(lua_State *L, const char *fn, long def) {
  int ok;
  lua_Integer n;
  if (lua_isnoneornil(L, 1)) return def;
  n = lua_tointegerx(L, 1, &ok);
  if (!ok || n < 0) type_error(L, fn, 1, "timeout in milliseconds (integer >= 0)");
  return n > 3600000 ? 3600000 : (long)n;
}

static int l_otlp_flush(lua_State *L) {
  lvt *S = STATE(L);
  long t = check_timeout(L, "otlp.flush", 30000);
  lua_pushboolean(L, S->otlp ? vt_otlp_flush(S->otlp, t) : 1);
  return 1;
}

static int l_otlp_shutdown(lua_State *L) {
  lvt *S = STATE(L);
  long t = check_timeout(L, "otlp.shutdown", 30000);
  int done = vt_otlp_shutdown(S->otlp, t);
  S->otlp = NULL;
  lua_pushboolean(L, done);
  return 1;
}

static int l_otlp_stats(lua_State *L) {
  lvt *S = STATE(L);
  vt_otlp_stats st;
  if (!S->otlp) return 0;
  vt_otlp_stats_get(S->otlp, &st);
  lua_createtable(L, 0, 8);
  set_int(L, "queued", (int64_t)st.queued);
  set_int(L, "exported", (int64_t)st.exported);
  set_int(L, "dropped", (int64_t)st.dropped);
  set_int(L, "failed_batches", (int64_t)st.failed_batches);
  set_int(L, "failed_spans", (int64_t)st.failed_spans);
  set_int(L, "retries", (int64_t)st.retries);
  set_int(L, "batches", (int64_t)st.batches);
  if (st.last_error[0]) {
    lua_pushstring(L, st.last_error);
    lua_setfield(L, -2, "last_error");
  }
  return 1;
}

static int l_profile(lua_State *L) {
  cJSON *p = vt_collector_profile(STATE(L)->c);
  if (!p) return luaL_error(L, "vmtrace.profile: out of memory");
  push_json(L, p);
  cJSON_Delete(p);
  return 1;
}

/* ---- scoped spans ------------------------------------------------------------ */

#define SPAN_MT "vmtrace.Span"

typedef struct lspan {
  vt_id id;
  uint64_t gen; /* the collector's generation at start */
  int closed;
} lspan;

/* A handle has one of two metatables, alike but for __gc: an open handle's
 * has it (a handle dropped unclosed finishes its span as abandoned), a closed
 * one's not, so closing spares the collector a finalizer call. */
static lspan *check_span(lua_State *L, lvt *S, const char *fn) {
  lspan *h = lua_touserdata(L, 1);
  int ok = h && lua_getmetatable(L, 1);
  if (ok) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->span_mt_ref);
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->closed_mt_ref);
    ok = lua_rawequal(L, -3, -2) || lua_rawequal(L, -3, -1);
    lua_pop(L, 3);
  }
  if (!ok) type_error(L, fn, 1, "span handle");
  return h;
}

/* Open, and not from before a reset. */
static int span_live(lvt *S, const lspan *h) {
  return !h->closed && h->id && h->gen == S->c->generation;
}

/* Mark the handle at index 1 closed. */
static void span_closed(lua_State *L, lvt *S, lspan *h) {
  h->closed = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->closed_mt_ref);
  lua_setmetatable(L, 1);
}

static int l_span(lua_State *L) {
  lvt *S = STATE(L);
  size_t klen;
  const char *kind;
  int k = 0;
  lspan *h;
  KIND_OF(L, S, "span", k, kind, klen);
  if (!S->c->enabled) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->inert_ref);
    return 1;
  }
  lua_settop(L, 3);
  h = lua_newuserdatauv(L, sizeof *h, 0); /* whole before it can be closed */
  h->id = 0;
  h->gen = S->c->generation;
  h->closed = 1; /* no metatable, so no finalizer, until the span exists */
  h->id = start_span(L, S, "span", k, kind, klen, 0);
  h->closed = h->id == 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->id ? S->span_mt_ref : S->closed_mt_ref);
  lua_setmetatable(L, 4);
  lua_pushvalue(L, 4);
  return 1;
}

static int l_span_index(lua_State *L) {
  lspan *h = lua_touserdata(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && strcmp(k, "id") == 0) {
    lua_pushinteger(L, (lua_Integer)h->id);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(2)); /* methods */
  return 1;
}

static int l_span_set(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = check_span(L, S, "Span:set");
  if (!span_live(S, h)) {
    check_str(L, "Span:set", 2, NULL);
    lua_pushboolean(L, 0);
    return 1;
  }
  return set_metadata_at(L, S, "Span:set", h->id, 2, 0);
}

static int l_span_event(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = check_span(L, S, "Span:event");
  return record_event_at(L, S, "Span:event", span_live(S, h) ? h->id : 0, 2);
}

static int l_span_finish(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = check_span(L, S, "Span:finish");
  if (!span_live(S, h)) return 0;
  span_closed(L, S, h);
  return finish_id(L, S, h->id);
}

/* __close(s, err): finish; an error on the way out marks the span. */
static int l_span_close(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = lua_touserdata(L, 1);
  if (!span_live(S, h)) return 0;
  span_closed(L, S, h);
  if (!lua_isnoneornil(L, 2)) mark_error(L, S, h->id, 2);
  finish_id(L, S, h->id);
  return 0;
}

/* __gc: a handle dropped without being closed finishes as abandoned. */
static int l_span_gc(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = lua_touserdata(L, 1);
  if (!S->c || !span_live(S, h)) return 0;
  h->closed = 1;
  vt_collector_set_metadata(S->c, h->id, "abandoned", 9, cJSON_CreateTrue());
  finish_id(L, S, h->id);
  return 0;
}

static int l_span_tostring(lua_State *L) {
  lspan *h = lua_touserdata(L, 1);
  lua_pushfstring(L, "vmtrace.Span(%I%s)", (LUAI_UACINT)h->id,
                  h->closed ? ", closed" : "");
  return 1;
}

/* ---- clock ------------------------------------------------------------------- */

static int64_t check_ms(lua_State *L, const char *fn, int arg) {
  int ok;
  lua_Number n;
  lua_Integer i = lua_tointegerx(L, arg, &ok);
  if (ok) return (int64_t)i;
  n = lua_tonumberx(L, arg, &ok);
  if (!ok) type_error(L, fn, arg, "number of milliseconds");
  if (!(n >= -9.2e18 && n <= 9.2e18))
    arg_error(L, fn, arg, "milliseconds out of range");
  return (int64_t)n;
}

static int l_mock_time(lua_State *L) {
  if (vt_collector_mock_push(STATE(L)->c, check_ms(L, "mock_time", 1)) != VT_OK)
    return luaL_error(L, "vmtrace.mock_time: out of memory");
  return 0;
}

static int l_advance_time(lua_State *L) {
  int64_t ms = check_ms(L, "advance_time", 1), wall;
  int rc;
  if (ms < 0) arg_error(L, "advance_time", 1, "milliseconds must be >= 0");
  rc = vt_collector_mock_advance(STATE(L)->c, ms, &wall);
  if (rc == VT_ENOTFOUND)
    return luaL_error(L, "vmtrace.advance_time: no mock clock is active "
                         "(call vmtrace.mock_time first)");
  lua_pushinteger(L, (lua_Integer)wall);
  return 1;
}

static int l_unmock_time(lua_State *L) {
  lua_pushboolean(L, vt_collector_mock_pop(STATE(L)->c) == VT_OK);
  return 1;
}

static int l_now_ms(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vt_collector_now_ms(STATE(L)->c));
  return 1;
}

static int l_monotonic_ms(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vt_collector_monotonic_ms(STATE(L)->c));
  return 1;
}

/* ---- internals for the Lua side and introspection --------------------------- */

static int l_mark_error(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "_mark_error", 1);
  vt_span_view v;
  if (vt_collector_get(S->c, id, &v) == VT_OK && v.open) mark_error(L, S, id, 2);
  return 0;
}

static int l_merge(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "_merge", 1);
  vt_span_view v;
  int rc;
  if (vt_collector_get(S->c, id, &v) != VT_OK || !v.open) {
    lua_pushboolean(L, 0);
    return 1;
  }
  rc = vt_collector_merge_metadata(S->c, id, check_json(L, "_merge", 2, 1));
  if (rc == VT_ENOMEM) return luaL_error(L, "vmtrace._merge: out of memory");
  if (rc == VT_ELIMIT)
    return arg_error(L, "_merge", 2, "span %I would have more than %d metadata keys",
                     (LUAI_UACINT)id, VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_elapsed_ms(lua_State *L) {
  int64_t ns;
  if (vt_collector_elapsed(STATE(L)->c, check_id(L, "_elapsed_ms", 1), &ns) !=
      VT_OK)
    return 0;
  lua_pushinteger(L, (lua_Integer)(ns / 1000000));
  return 1;
}

/* configure{max_spans = N}: settings of this state's collector; returns them
 * as they now are. max_spans bounds the completed spans kept in memory (the
 * oldest go and are counted as dropped); 0 or false: no bound. */
static int l_configure(lua_State *L) {
  vt_collector *c = STATE(L)->c;
  if (!lua_isnoneornil(L, 1)) {
    if (lua_type(L, 1) != LUA_TTABLE) type_error(L, "configure", 1, "table of settings");
    lua_pushnil(L);
    while (lua_next(L, 1)) { /* unknown settings are mistakes worth hearing of */
      const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
      if (!k || strcmp(k, "max_spans"))
        arg_error(L, "configure", 1, "unknown setting '%s' (expected max_spans)",
                  k ? k : luaL_typename(L, -2));
      lua_pop(L, 1);
    }
    if (lua_getfield(L, 1, "max_spans") != LUA_TNIL) {
      lua_Integer n = 0;
      int ok = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
      if (!ok && lua_type(L, -1) == LUA_TNUMBER) n = lua_tointegerx(L, -1, &ok);
      if (!ok || n < 0)
        arg_error(L, "configure", 1, "max_spans must be an integer >= 0 (0: no bound)");
      vt_collector_set_max_spans(c, (size_t)n);
    }
  }
  lua_createtable(L, 0, 1);
  lua_pushinteger(L, (lua_Integer)vt_collector_max_spans(c));
  lua_setfield(L, -2, "max_spans");
  return 1;
}

static int l_generation(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vt_collector_generation(STATE(L)->c));
  return 1;
}

static int l_stats(lua_State *L) {
  vt_stats st;
  vt_collector_stats(STATE(L)->c, &st);
  lua_createtable(L, 0, 6);
  set_int(L, "open", (int64_t)st.open);
  set_int(L, "completed", (int64_t)st.completed);
  set_int(L, "stacks", (int64_t)st.stacks);
  set_int(L, "names", (int64_t)st.names);
  set_int(L, "dropped", (int64_t)st.dropped);
  set_int(L, "generation", (int64_t)st.generation);
  return 1;
}

/* _adopt(co): co's first span gets the caller's current span as parent. */
static int l_adopt(lua_State *L) {
  lvt *S = STATE(L);
  lua_State *co = lua_tothread(L, 1);
  thread_box *b;
  vt_id base;
  if (!co) type_error(L, "_adopt", 1, "coroutine");
  base = current_of(L, S);
  b = box_of(L, S, 1, co, base, 1);
  b->st->base = base;
  return 0;
}

static int l_set_dispatch(lua_State *L) {
  lvt *S = STATE(L);
  if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, S->dispatch_ref);
  S->dispatch_ref = LUA_NOREF;
  if (!lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, 1);
    S->dispatch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

/* json_decode(text) --> value, or nil and a message (integers keep 64 bits). */
static int l_json_decode(lua_State *L) {
  size_t len, at = 0;
  const char *text = check_str(L, "json_decode", 1, &len), *err = NULL;
  cJSON *v = vt_json_parse(text, len, &err, &at);
  if (!v) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %I: %s", (LUAI_UACINT)(at + 1),
                    err ? err : "?");
    return 2;
  }
  push_json(L, v);
  cJSON_Delete(v);
  return 1;
}

/* ---- module ------------------------------------------------------------------ */

static int l_collector_gc(lua_State *L) {
  lvt *S = lua_touserdata(L, 1);
  vt_otlp_shutdown(S->otlp, S->otlp_close_ms); /* what is queued goes out */
  S->otlp = NULL;
  vt_stream_close(S->stream);
  S->stream = NULL;
  vt_collector_free(S->c);
  S->c = NULL;
  return 0;
}

vt_collector *vt_lua_collector(lua_State *L) {
  lvt *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &collector_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return S ? S->c : NULL;
}

static const luaL_Reg funcs[] = {
    {"enable", l_enable},
    {"disable", l_disable},
    {"is_enabled", l_is_enabled},
    {"reset", l_reset},
    {"trace_id", l_trace_id},
    {"dropped", l_dropped},
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
    {"mock_time", l_mock_time},
    {"advance_time", l_advance_time},
    {"unmock_time", l_unmock_time},
    {"now_ms", l_now_ms},
    {"monotonic_ms", l_monotonic_ms},
    {"stats", l_stats},
    {"generation", l_generation},
    {"configure", l_configure},
    {"json_decode", l_json_decode},
    {"export", l_export},
    {"profile", l_profile},
    {"_write", l_write},
    {"stream", l_stream},
    {"_otlp_start", l_otlp_start},
    {"_otlp_flush", l_otlp_flush},
    {"_otlp_shutdown", l_otlp_shutdown},
    {"_otlp_stats", l_otlp_stats},
    {"continue_trace", l_continue_trace},
    {"traceparent", l_traceparent},
    {"load", l_load},
    {"_start_always", l_start_always},
    {"_instant", l_instant},
    {"_mark_error", l_mark_error},
    {"_merge", l_merge},
    {"_elapsed_ms", l_elapsed_ms},
    {"_adopt", l_adopt},
    {"_set_dispatch", l_set_dispatch},
    {NULL, NULL}};

static const luaL_Reg span_methods[] = {
    {"set", l_span_set},
    {"event", l_span_event},
    {"finish", l_span_finish},
    {NULL, NULL}};

static const luaL_Reg span_meta[] = {
    {"__close", l_span_close},
    {"__gc", l_span_gc},
    {"__tostring", l_span_tostring},
    {NULL, NULL}};

/* The state's collector userdata, made on first load. */
static lvt *push_state(lua_State *L) {
  lvt *S;
  int k;
  /* kinds, anchors, threads, the span metatables and handles below */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &collector_key) == LUA_TUSERDATA)
    return lua_touserdata(L, -1);
  lua_pop(L, 1);
  S = lua_newuserdatauv(L, sizeof *S, 2);
  memset(S, 0, sizeof *S);
  S->trace_ref = LUA_NOREF;
  lua_createtable(L, VT_KIND_COUNT, 0); /* anchors the kind strings */
  for (k = 0; k < VT_KIND_COUNT; k++) {
    S->kind_ptr[k] = lua_pushstring(L, vt_kind_name(k));
    lua_rawseti(L, -2, k + 1);
  }
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, NAME_CACHE, 0); /* anchors of the cached names */
  lua_setiuservalue(L, -2, 2);
  S->c = vt_collector_new();
  if (!S->c) luaL_error(L, "vmtrace: out of memory");
  luaL_newmetatable(L, "vmtrace.Collector"); /* only once the object is whole */
  lua_pushcfunction(L, l_collector_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &collector_key);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  S->dispatch_ref = LUA_NOREF;
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
    if (k) S->closed_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    else S->span_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
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
