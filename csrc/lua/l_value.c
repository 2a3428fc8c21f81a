/*
 * l_value.c: Lua values to vmtrace values and back. Tables with string keys
 * are objects, tables with keys 1..n arrays, {} an empty object; integers
 * keep all 64 bits, strings any byte; NaN and infinities become null;
 * vmtrace.null (a NULL light userdata) is null. Cycles, mixed or sparse
 * tables, functions, userdata, threads and nesting deeper than 64 levels are
 * refused with the path where. (Part of the binding unit.)
 */

#define MAX_DEPTH 64

typedef struct conv {
  lua_State *L;
  vt_vb *b;
  const void *seen[MAX_DEPTH + 1];
  int depth;
  char path[200];
  size_t plen;
  char err[320];
} conv;

static int conv_fail(conv *cv, const char *msg, const char *detail) {
  if (!cv->err[0]) {
    const char *at = cv->plen ? cv->path : "";
    snprintf(cv->err, sizeof cv->err, "%s%s%s%s", msg, detail ? detail : "", cv->plen ? " at " : "",
             at);
  }
  return 0;
}

/* Extend the path shown in errors by a key or an index; the old length. */
static size_t path_push(conv *cv, const char *key, size_t klen, lua_Integer i) {
  size_t old = cv->plen, room = sizeof cv->path - cv->plen;
  int n;
  if (room <= 4) return old;
  if (key) n = snprintf(cv->path + cv->plen, room, ".%.*s", (int)(klen < 40 ? klen : 40), key);
  else n = snprintf(cv->path + cv->plen, room, "[%lld]", (long long)i);
  cv->plen += (size_t)n < room ? (size_t)n : room - 1;
  return old;
}

static void path_pop(conv *cv, size_t old) {
  cv->plen = old;
  cv->path[old] = '\0';
}

static int to_value(conv *cv, int idx);

static int table_to_value(conv *cv, int idx) {
  lua_State *L = cv->L;
  const void *p = lua_topointer(L, idx);
  size_t count = 0, nstr = 0;
  lua_Integer maxi = 0, i;
  int d;
  for (d = 0; d < cv->depth; d++)
    if (cv->seen[d] == p) return conv_fail(cv, "cyclic table", NULL);
  if (cv->depth >= MAX_DEPTH) return conv_fail(cv, "tables nested deeper than 64 levels", NULL);
  if (!lua_checkstack(L, 4)) return conv_fail(cv, "Lua stack overflow", NULL);
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
      return conv_fail(cv, "table key must be a string or an array index 1..n, got ", tn);
    }
    lua_pop(L, 1);
  }
  if (nstr && nstr != count) return conv_fail(cv, "table mixes string and integer keys", NULL);
  if (!nstr && count && (size_t)maxi != count)
    return conv_fail(cv, "sparse array (keys must be 1..n)", NULL);
  cv->seen[cv->depth++] = p;
  if (nstr || !count) {
    vt_vb_obj(cv->b);
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key value */
      size_t klen, old;
      const char *k = lua_tolstring(L, -2, &klen);
      vt_vb_key(cv->b, k, klen);
      old = path_push(cv, k, klen, 0);
      if (!to_value(cv, lua_gettop(L))) {
        lua_pop(L, 2);
        cv->depth--;
        return 0;
      }
      path_pop(cv, old);
      lua_pop(L, 1);
    }
  } else {
    vt_vb_arr(cv->b);
    for (i = 1; i <= maxi; i++) {
      size_t old = path_push(cv, NULL, 0, i);
      lua_rawgeti(L, idx, i);
      if (!to_value(cv, lua_gettop(L))) {
        lua_pop(L, 1);
        cv->depth--;
        return 0;
      }
      lua_pop(L, 1);
      path_pop(cv, old);
    }
  }
  vt_vb_end(cv->b);
  cv->depth--;
  return 1;
}

static int to_value(conv *cv, int idx) {
  lua_State *L = cv->L;
  switch (lua_type(L, idx)) {
    case LUA_TNONE:
    case LUA_TNIL: vt_vb_null(cv->b); break;
    case LUA_TBOOLEAN: vt_vb_bool(cv->b, lua_toboolean(L, idx)); break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) vt_vb_int(cv->b, (int64_t)lua_tointeger(L, idx));
      else vt_vb_num(cv->b, (double)lua_tonumber(L, idx));
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      vt_vb_str(cv->b, s, len);
      break;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) {
        vt_vb_null(cv->b);
        break;
      }
      return conv_fail(cv, "light userdata is not JSON-able", NULL);
    case LUA_TTABLE: return table_to_value(cv, lua_absindex(L, idx));
    default: return conv_fail(cv, luaL_typename(L, idx), " is not JSON-able");
  }
  return 1;
}

/* Convert the value at idx into the (reset) builder b; raises a clear error
 * of fn/arg (prefixing `what`, e.g. "opts.metadata: "). With object set, the
 * value must be a table with string keys (or empty). */
static const vt_value *check_value(lua_State *L, vt_vb *b, const char *fn, int arg, int idx,
                                   int object, const char *what) {
  conv cv;
  const vt_value *v;
  idx = lua_absindex(L, idx);
  if (object && lua_type(L, idx) != LUA_TTABLE)
    arg_error(L, fn, arg, "%stable with string keys expected, got %s", what, type_of(L, idx));
  memset(&cv, 0, sizeof cv);
  cv.L = L;
  cv.b = b;
  vt_vb_reset(b);
  if (!to_value(&cv, idx)) arg_error(L, fn, arg, "%s%s", what, cv.err);
  if (!(v = vt_vb_value(b))) status_error(L, fn, VT_ENOMEM);
  if (object && vt_value_type(v) != VT_OBJ)
    arg_error(L, fn, arg, "%stable with string keys expected, got an array", what);
  return v;
}

/* While spans are copied into Lua values, no finalizer may run: one could
 * finish, evict, take or reset spans (a dropped span handle's __gc, or a
 * script's own finalizer calling vmtrace) and free what the copy is reading.
 * The garbage collector stops for the time of the copy (an emergency
 * collection still runs, without finalizers). A copy that a memory error
 * leaves unfinished has its collector restarted by the next one. */
static void reading_begin(lua_State *L, lvt *S) {
  if (S->gc_held) {
    S->gc_held = 0;
    lua_gc(L, LUA_GCRESTART);
  }
  if (lua_gc(L, LUA_GCISRUNNING) == 1) { /* (-1 inside a finalizer: none runs then) */
    lua_gc(L, LUA_GCSTOP);
    S->gc_held = 1;
  }
}

static void reading_end(lua_State *L, lvt *S) {
  if (S->gc_held) {
    S->gc_held = 0;
    lua_gc(L, LUA_GCRESTART);
  }
}

/* Push a value as Lua: objects and arrays as tables, null as vmtrace.null. */
static void push_value(lua_State *L, const vt_value *v) {
  vt_iter it;
  const vt_value *item;
  const char *k, *s;
  size_t kl, n;
  lua_Integer i = 0;
  luaL_checkstack(L, 4, "JSON value nested too deep");
  switch (vt_value_type(v)) {
    case VT_FALSE: lua_pushboolean(L, 0); break;
    case VT_TRUE: lua_pushboolean(L, 1); break;
    case VT_INT: lua_pushinteger(L, (lua_Integer)vt_value_int(v)); break;
    case VT_NUM: lua_pushnumber(L, (lua_Number)vt_value_num(v)); break;
    case VT_STR:
      s = vt_value_str(v, &n);
      lua_pushlstring(L, s, n);
      break;
    case VT_ARR:
    case VT_OBJ:
      if (vt_value_type(v) == VT_ARR) lua_createtable(L, (int)vt_value_count(v), 0);
      else lua_createtable(L, 0, (int)vt_value_count(v));
      vt_value_iter(v, &it);
      while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
        if (it.object) {
          lua_pushlstring(L, k, kl);
          push_value(L, item);
          lua_rawset(L, -3);
        } else {
          push_value(L, item);
          lua_rawseti(L, -2, ++i);
        }
      }
      break;
    default: lua_pushlightuserdata(L, NULL); break; /* null */
  }
}

/* json_decode(text) --> value, or nil and a message (integers keep 64 bits). */
static int l_json_decode(lua_State *L) {
  size_t len, at = 0;
  const char *text = check_str(L, "json_decode", 1, &len), *err = NULL;
  vt_value *v = vt_json_parse(text, len, &err, &at);
  if (!v) {
    lua_pushnil(L);
    lua_pushfstring(L, "invalid JSON at byte %I: %s", (LUAI_UACINT)(at + 1), err ? err : "?");
    return 2;
  }
  push_value(L, v);
  vt_free(v);
  return 1;
}
