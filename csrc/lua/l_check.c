/*
 * l_check.c: argument checking and errors for the binding. Every error is
 * "vmtrace.<fn>: bad argument #n (<what>)" at the caller's line; core status
 * codes become messages through vt_strerror, and file failures return
 * nil, message, errno-name as io.open does. (Part of the binding unit; the
 * OTLP/HTTP module's binding includes it too, so not every one of these is
 * used by both: CHECKFN marks them.)
 */

#if defined(__GNUC__)
#define CHECKFN static __attribute__((unused))
#else
#define CHECKFN static
#endif

/* "vmtrace.<fn>: bad argument #<arg> (<message>)", with the caller's place. */
CHECKFN int arg_error(lua_State *L, const char *fn, int arg, const char *fmt, ...) {
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

/* Lua's name of the type of the value at idx (a missing argument is nil, as
 * Lua's type() says). */
CHECKFN const char *type_of(lua_State *L, int idx) {
  return lua_type(L, idx) == LUA_TNONE ? "nil" : luaL_typename(L, idx);
}

CHECKFN int type_error(lua_State *L, const char *fn, int arg, const char *expected) {
  return arg_error(L, fn, arg, "%s expected, got %s", expected, type_of(L, arg));
}

/* A core status as an error of fn ("vmtrace.fn: out of memory"). */
CHECKFN int status_error(lua_State *L, const char *fn, int status) {
  return luaL_error(L, "vmtrace.%s: %s", fn, vt_strerror(status));
}

CHECKFN const char *check_str(lua_State *L, const char *fn, int arg, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING) type_error(L, fn, arg, "string");
  return lua_tolstring(L, arg, len);
}

CHECKFN const char *opt_str(lua_State *L, const char *fn, int arg, size_t *len) {
  if (lua_isnoneornil(L, arg)) {
    if (len) *len = 0;
    return NULL;
  }
  return check_str(L, fn, arg, len);
}

/* A span id: an integer (0 or negative: none). */
CHECKFN vt_id check_id(lua_State *L, const char *fn, int arg) {
  int ok;
  lua_Integer id = lua_tointegerx(L, arg, &ok);
  if (VT_UNLIKELY(!ok) || lua_type(L, arg) != LUA_TNUMBER) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      arg_error(L, fn, arg, "integer expected, got non-integral number");
    type_error(L, fn, arg, "integer");
  }
  return id > 0 ? (vt_id)id : 0;
}

/* The boolean at idx, which is argument arg's `what`. */
CHECKFN int check_bool(lua_State *L, const char *fn, int arg, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TBOOLEAN)
    arg_error(L, fn, arg, "%s must be a boolean, got %s", what, type_of(L, idx));
  return lua_toboolean(L, idx);
}

/* Write msg where the script's io.stderr writes (a script may redirect it);
 * stderr itself when that fails. */
CHECKFN void report(lua_State *L, const char *msg) {
  int top = lua_gettop(L), ok = 0;
  if (lua_checkstack(L, 4) && lua_getglobal(L, "io") == LUA_TTABLE &&
      lua_getfield(L, -1, "stderr") != LUA_TNIL && lua_getfield(L, -1, "write") == LUA_TFUNCTION) {
    lua_insert(L, -2); /* io, write, stderr */
    lua_pushstring(L, msg);
    ok = lua_pcall(L, 2, 0, 0) == LUA_OK;
  }
  lua_settop(L, top);
  if (!ok) fputs(msg, stderr);
}

/* The table of options (or settings: `what`) at arg, or none: every key must
 * be one of `known` (NULL-terminated), else an error listing them. Returns
 * 1 when a table. */
CHECKFN int check_keys(lua_State *L, const char *fn, int arg, const char *const known[],
                       const char *what) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (lua_type(L, arg) != LUA_TTABLE) {
    if (strcmp(what, "option") == 0) lua_pushliteral(L, "options table");
    else lua_pushfstring(L, "table of %ss", what);
    type_error(L, fn, arg, lua_tostring(L, -1));
  }
  lua_pushnil(L);
  while (lua_next(L, arg)) { /* unknown options are mistakes worth hearing of */
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int i;
    for (i = 0; k && known[i]; i++)
      if (strcmp(k, known[i]) == 0) break;
    if (!k || !known[i]) {
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (i = 0; known[i]; i++) {
        if (i) luaL_addstring(&b, ", ");
        luaL_addstring(&b, known[i]);
      }
      luaL_pushresult(&b);
      arg_error(L, fn, arg, "unknown %s '%s' (expected %s)", what, k ? k : luaL_typename(L, -3),
                lua_tostring(L, -1));
    }
    lua_pop(L, 1);
  }
  return 1;
}

CHECKFN int check_opts(lua_State *L, const char *fn, int arg, const char *const known[]) {
  return check_keys(L, fn, arg, known, "option");
}

/* An integer option of the table at t: def when absent; an error naming the
 * option outside [lo, hi]. */
CHECKFN lua_Integer opt_int(lua_State *L, const char *fn, int t, const char *k, lua_Integer def,
                           lua_Integer lo, lua_Integer hi) {
  lua_Integer v = def;
  if (lua_getfield(L, t, k) != LUA_TNIL) {
    int ok;
    lua_Integer n = lua_tointegerx(L, -1, &ok);
    if (!ok || lua_type(L, -1) != LUA_TNUMBER || n < lo || n > hi)
      arg_error(L, fn, t, "opts.%s must be an integer from %I to %I, got %s", k, (LUAI_UACINT)lo,
                (LUAI_UACINT)hi, lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : type_of(L, -1));
    v = n;
  }
  lua_pop(L, 1);
  return v;
}

/* The span limit options of the table at t (configure{}, otlp.start{}):
 * attribute_count_limit, attribute_value_length_limit, event_count_limit,
 * link_count_limit, each an integer >= 0 or false (0 and false: no limit),
 * into l; the VT_LIMIT_* bits of those given. */
CHECKFN unsigned opt_limits(lua_State *L, const char *fn, int t, vt_limits *l) {
  static const char *const keys[4] = {"attribute_count_limit", "attribute_value_length_limit",
                                      "event_count_limit", "link_count_limit"};
  size_t *fields[4];
  unsigned mask = 0;
  int i;
  fields[0] = &l->attribute_count;
  fields[1] = &l->attribute_value_length;
  fields[2] = &l->event_count;
  fields[3] = &l->link_count;
  for (i = 0; i < 4; i++) {
    if (lua_getfield(L, t, keys[i]) != LUA_TNIL) {
      int ok = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
      lua_Integer n = 0;
      if (!ok && lua_type(L, -1) == LUA_TNUMBER) n = lua_tointegerx(L, -1, &ok);
      if (!ok || n < 0)
        arg_error(L, fn, t, "%s must be an integer >= 0, or false (0 and false: no limit), got %s",
                  keys[i], lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : type_of(L, -1));
      *fields[i] = (size_t)n;
      mask |= 1u << i;
    }
    lua_pop(L, 1);
  }
  return mask;
}

/* The index of the string at idx in names (NULL-terminated, as a list in
 * errors); else an error on argument arg. */
CHECKFN int check_name(lua_State *L, const char *fn, int idx, int arg, const char *what,
                      const char *(*name_of)(int), int count) {
  size_t len;
  const char *s = lua_type(L, idx) == LUA_TSTRING ? lua_tolstring(L, idx, &len) : NULL;
  int i;
  luaL_Buffer b;
  for (i = 0; s && i < count; i++)
    if (strlen(name_of(i)) == len && memcmp(name_of(i), s, len) == 0) return i;
  luaL_buffinit(L, &b);
  for (i = 0; i < count; i++) {
    if (i) luaL_addstring(&b, ", ");
    luaL_addstring(&b, name_of(i));
  }
  luaL_pushresult(&b);
  if (!s && lua_type(L, idx) == LUA_TNUMBER) s = lua_tostring(L, idx);
  if (!s) return arg_error(L, fn, arg, "%s name expected, got %s", what, type_of(L, idx));
  return arg_error(L, fn, arg, "unknown %s '%s' (expected %s)", what, s, lua_tostring(L, -1));
}

/* nil, "<what>: <strerror>", "<ENAME>" (io.open's way). */
CHECKFN int io_fail(lua_State *L, const char *fn, const char *what, int e) {
  lua_pushnil(L);
  lua_pushfstring(L, "vmtrace.%s: %s: %s", fn, what, strerror(e));
  lua_pushstring(L, vt_errno_name(e));
  return 3;
}
