/*
 * l_span.c: spans by id (the fast path), their metadata and events, reading
 * them back as tables, scoped handles (to-be-closed Span userdata), `with`,
 * and the marker spans. (Part of the binding unit.)
 */

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

static void push_links(lua_State *L, const vt_span_view *v) {
  size_t i;
  lua_createtable(L, (int)v->nlinks, 0);
  for (i = 0; i < v->nlinks; i++) {
    const vt_link *l = &v->links[i];
    lua_createtable(L, 0, 3);
    lua_pushlstring(L, l->trace_id, l->trace_id_len);
    lua_setfield(L, -2, "trace_id");
    lua_pushlstring(L, l->span_id, l->span_id_len);
    lua_setfield(L, -2, "span_id");
    if (l->attributes) {
      push_value(L, l->attributes);
      lua_setfield(L, -2, "attributes");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
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
  if (v->metadata) {
    push_value(L, v->metadata);
    lua_setfield(L, -2, "metadata");
  }
  if (v->nlinks) {
    push_links(L, v);
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
      if (e->attributes) {
        push_value(L, e->attributes);
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

/* ---- starting ------------------------------------------------------------------- */

/* Links from opts.links (at idx), checked; the array lives in a userdata
 * left on the stack, its strings in the link tables (kept by opts), the
 * attributes in S->vb2 (offsets patched in once built). */
static vt_link *check_links(lua_State *L, lvt *S, const char *fn, int arg, int idx, size_t *n) {
  size_t count, i;
  vt_link *links;
  size_t *at;
  if (lua_type(L, idx) != LUA_TTABLE)
    arg_error(L, fn, arg, "opts.links must be an array of links, got %s", luaL_typename(L, idx));
  count = (size_t)lua_rawlen(L, idx);
  links = lua_newuserdatauv(L, (count ? count : 1) * (sizeof *links + sizeof *at), 0);
  at = (size_t *)(links + (count ? count : 1));
  vt_vb_reset(&S->vb2);
  for (i = 1; i <= count; i++) {
    int t = lua_rawgeti(L, idx, (lua_Integer)i), ts, tt, ta;
    vt_link *l = &links[i - 1];
    if (t != LUA_TTABLE)
      arg_error(L, fn, arg, "opts.links[%d] must be a table, got %s", (int)i, lua_typename(L, t));
    tt = lua_getfield(L, -1, "trace_id");
    ts = lua_getfield(L, -2, "span_id");
    ta = lua_getfield(L, -3, "attributes");
    if (tt != LUA_TSTRING)
      arg_error(L, fn, arg, "opts.links[%d].trace_id must be a string, got %s", (int)i,
                lua_typename(L, tt));
    if (ts != LUA_TSTRING && !(ts == LUA_TNUMBER && lua_isinteger(L, -2)))
      arg_error(L, fn, arg, "opts.links[%d].span_id must be a string or an integer, got %s", (int)i,
                lua_typename(L, ts));
    if (ta == LUA_TTABLE) {
      lua_pushnil(L);
      while (lua_next(L, -2)) {
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
          arg_error(L, fn, arg, "opts.links[%d].attributes must map strings to strings", (int)i);
        lua_pop(L, 1);
      }
    } else if (ta != LUA_TNIL) {
      arg_error(L, fn, arg, "opts.links[%d].attributes must be a table, got %s", (int)i,
                lua_typename(L, ta));
    }
    l->trace_id = lua_tolstring(L, -3, &l->trace_id_len);
    if (ts == LUA_TNUMBER) { /* an integer: its decimal text, kept in the link table */
      lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, -2));
      lua_setfield(L, -5, "span_id");
      lua_pop(L, 2);
      lua_getfield(L, -2, "span_id");
      lua_getfield(L, -3, "attributes");
    }
    l->span_id = lua_tolstring(L, -2, &l->span_id_len);
    at[i - 1] = SIZE_MAX;
    if (ta == LUA_TTABLE) { /* strings only: cannot fail but for memory */
      conv cv;
      memset(&cv, 0, sizeof cv);
      cv.L = L;
      cv.b = &S->vb2;
      at[i - 1] = S->vb2.n;
      to_value(&cv, lua_gettop(L));
    }
    lua_pop(L, 4);
  }
  if (S->vb2.failed) status_error(L, fn, VT_ENOMEM);
  for (i = 0; i < count; i++)
    links[i].attributes = at[i] == SIZE_MAX ? NULL : (const vt_value *)(S->vb2.p + at[i]);
  *n = count;
  return links;
}

/* Start with the options table at index o (0: none): links, detached,
 * parent, metadata. */
static vt_id start_with_opts(lua_State *L, lvt *S, const char *fn, vt_kind kind, const char *name,
                             size_t len, unsigned flags, vt_stack *st, int o) {
  static const char *const known[] = {"links", "detached", "metadata", "parent", NULL};
  vt_start_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  if (o && check_opts(L, fn, o, known)) {
    if (lua_getfield(L, o, "detached") != LUA_TNIL &&
        check_bool(L, fn, o, -1, "opts.detached") && !(flags & VT_START_PARENT))
      args.flags |= VT_START_DETACHED;
    lua_pop(L, 1);
    if (lua_getfield(L, o, "parent") != LUA_TNIL) {
      int ok;
      lua_Integer p = lua_tointegerx(L, -1, &ok);
      vt_span_view v;
      if (!ok || lua_type(L, -1) != LUA_TNUMBER || p <= 0)
        arg_error(L, fn, o, "opts.parent must be a span id, got %s",
                  lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
      if (S->c && vt_collector_get(S->c, (vt_id)p, &v) != VT_OK)
        arg_error(L, fn, o, "opts.parent: no span %I (open or completed)", (LUAI_UACINT)p);
      args.flags = (args.flags & ~VT_START_DETACHED) | VT_START_PARENT;
      args.parent = (vt_id)p;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, o, "links") != LUA_TNIL)
      args.links = check_links(L, S, fn, o, lua_gettop(L), &args.nlinks);
    if (lua_getfield(L, o, "metadata") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TTABLE)
        arg_error(L, fn, o, "opts.metadata must be a table, got %s", luaL_typename(L, -1));
      if (vt_collector_enabled(S->c) || (flags & VT_START_ALWAYS)) {
        args.metadata = check_value(L, &S->vb, fn, o, -1, 1, "opts.metadata: ");
        if (vt_value_count(args.metadata) > VT_MAX_KEYS)
          arg_error(L, fn, o, "opts.metadata has more than %d keys, the most one span takes",
                    VT_MAX_KEYS);
      }
    }
  }
  return vt_collector_start(S->c, st, kind, name, len, &args);
}

/* The cache entry of the string whose address is a. */
static inline name_entry *name_slot(lvt *S, const void *a) {
  uintptr_t u = (uintptr_t)a;
  return &S->names[((u >> 4) ^ (u >> 10)) & (NAME_CACHE - 1)];
}

/* The interned name of the string `name` (at index ni) through the cache,
 * under the address key (name itself, or the string's lua_topointer). */
static int64_t name_keyed(lua_State *L, lvt *S, int ni, const void *key, const char *name,
                          size_t len) {
  name_entry *e = name_slot(S, key);
  int64_t nm;
  if (VT_LIKELY(e->p == key)) return e->name;
  nm = vt_collector_intern(S->c, name, len); /* the entry's reference */
  if (nm < 0) return nm;
  if (e->p) vt_collector_name_release(S->c, e->name);
  lua_getiuservalue(L, lua_upvalueindex(1), 2); /* anchors */
  lua_pushvalue(L, ni);
  lua_rawseti(L, -2, (e - S->names) + 1);
  lua_pop(L, 1);
  e->p = key;
  e->name = (uint32_t)nm;
  return nm;
}

/* The interned name of the string `name` (at index ni), through the cache. */
static int64_t name_of(lua_State *L, lvt *S, int ni, const char *name, size_t len) {
  return name_keyed(L, S, ni, name, name, len);
}

/* Why arguments 1 and 2 of a span function were refused. */
static int start_arg_error(lua_State *L, const char *fn, int arg) {
  size_t klen;
  const char *kind;
  if (arg == 1 && lua_type(L, 1) != LUA_TSTRING) return type_error(L, fn, 1, "span kind string");
  if (arg == 1) {
    luaL_Buffer b; /* the kind as given, a NUL shown as \0 */
    size_t i;
    int k;
    kind = lua_tolstring(L, 1, &klen);
    luaL_buffinit(L, &b);
    for (i = 0; i < klen && i < 64; i++) {
      if (kind[i]) luaL_addchar(&b, kind[i]);
      else luaL_addstring(&b, "\\0");
    }
    luaL_addstring(&b, "'; expected one of ");
    for (k = 0; k < VT_KIND_COUNT; k++) {
      if (k) luaL_addstring(&b, ", ");
      luaL_addstring(&b, vt_kind_name(k));
    }
    luaL_pushresult(&b);
    return arg_error(L, fn, 1, "unknown span kind '%s", lua_tostring(L, -1));
  }
  return type_error(L, fn, 2, "string");
}

/* The kind at argument 1, by the address of its interned string: one API
 * call. Only the very kind string (anchored) has that address, so anything
 * else, a string or not, is refused by start_arg_error. */
static inline int kind_of(lua_State *L, lvt *S, const char *fn) {
  const void *kind = lua_topointer(L, 1);
  int k = 0;
  while (S->kind_ptr[k] != kind)
    if (++k == VT_KIND_COUNT) return start_arg_error(L, fn, 1);
  return k;
}

/* start(kind, name [, opts]) with `flags`, the name at index 2 and the
 * options at index 3; the id, 0 when not recorded. */
static vt_id start_span(lua_State *L, lvt *S, const char *fn, int k, unsigned flags) {
  size_t len;
  const char *name;
  const void *key = lua_topointer(L, 2);
  name_entry *e = name_slot(S, key);
  int64_t nm;
  vt_id id;
  if (VT_LIKELY(e->p == key && key) && VT_LIKELY(!flags && !S->auto_pending) &&
      VT_LIKELY(L == S->main_L || L == S->co_L) && lua_type(L, 3) <= LUA_TNIL) {
    /* the common case, one API call for the name: a cached name (so a
     * string, the very one cached), no options, the main thread or the
     * coroutine seen last */
    nm = e->name;
  } else {
    if (VT_UNLIKELY(lua_type(L, 2) != LUA_TSTRING)) return (vt_id)start_arg_error(L, fn, 2);
    name = lua_tolstring(L, 2, &len);
    if (VT_UNLIKELY(S->auto_pending)) auto_flush(L, S); /* calls waiting for min_ms */
    if (VT_UNLIKELY(lua_type(L, 3) > LUA_TNIL) || VT_UNLIKELY(flags) ||
        VT_UNLIKELY(L != S->main_L && L != S->co_L)) {
      id = start_with_opts(L, S, fn, (vt_kind)k, name, len, flags, stack_of(L, S),
                           lua_type(L, 3) > LUA_TNIL ? 3 : 0);
      DELIVER(L, S);
      return id;
    }
    nm = name_keyed(L, S, 2, key, name, len);
    if (nm < 0) return 0;
  }
  id = vt_collector_start_interned(S->c, L == S->main_L ? NULL : S->co_st, (vt_kind)k,
                                   (uint32_t)nm, NULL);
  DELIVER(L, S);
  return id;
}

/* start(kind, name [, opts]): the id, 0 while tracing is off (the kind is
 * checked even then; the rest only when recording). */
static int l_start(lua_State *L) {
  lvt *S = STATE(L);
  int k = kind_of(L, S, "start");
  lua_pushinteger(L, *S->on ? (lua_Integer)start_span(L, S, "start", k, 0) : 0);
  return 1;
}

/* _start_always(name, attrs, fn): a user_timing span that records even
 * while tracing is off (std/timing), attrs its metadata; errors as fn's
 * (vmtrace.timing.start, ...). Returns the id and the parent id. */
static int l_start_always(lua_State *L) {
  lvt *S = STATE(L);
  const char *fn = luaL_optstring(L, 3, "timing.start");
  size_t len;
  const char *name = check_str(L, fn, 1, &len);
  vt_start_args args;
  vt_span_view v;
  vt_id id;
  memset(&args, 0, sizeof args);
  if (!lua_isnoneornil(L, 2)) args.metadata = check_value(L, &S->vb, fn, 2, 2, 1, "");
  args.flags = VT_START_ALWAYS;
  id = vt_collector_start(S->c, stack_of(L, S), VT_USER_TIMING, name, len, &args);
  DELIVER(L, S);
  lua_pushinteger(L, (lua_Integer)id);
  if (!id || vt_collector_get(S->c, id, &v) != VT_OK || !v.parent) return 1;
  lua_pushinteger(L, (lua_Integer)v.parent);
  return 2;
}

/* ---- finishing -------------------------------------------------------------------- */

static int finish_id(lua_State *L, lvt *S, vt_id id) {
  int64_t dur;
  if (id == 0 || vt_collector_finish(S->c, id, &dur) != VT_OK) return 0;
  lua_pushinteger(L, (lua_Integer)(dur / 1000000));
  DELIVER(L, S);
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

/* ---- metadata and events ---------------------------------------------------------- */

/* A value that can never be JSON, refused before anything else. */
static void check_json_type(lua_State *L, const char *fn, int arg) {
  int t = lua_type(L, arg);
  if (t == LUA_TFUNCTION || t == LUA_TUSERDATA || t == LUA_TTHREAD ||
      (t == LUA_TLIGHTUSERDATA && lua_touserdata(L, arg) != NULL))
    arg_error(L, fn, arg, "%s is not JSON-able", luaL_typename(L, arg));
}

/* The value at idx, encoded in tmp when a scalar, else built in S->vb. */
static const vt_value *value_at(lua_State *L, lvt *S, const char *fn, int arg,
                                unsigned char tmp[9]) {
  switch (lua_type(L, arg)) {
    case LUA_TNUMBER:
      if (lua_isinteger(L, arg)) {
        int64_t i = (int64_t)lua_tointeger(L, arg);
        tmp[0] = VT_INT;
        memcpy(tmp + 1, &i, 8);
        return (const vt_value *)tmp;
      }
      break;
    case LUA_TBOOLEAN:
      tmp[0] = lua_toboolean(L, arg) ? VT_TRUE : VT_FALSE;
      return (const vt_value *)tmp;
    case LUA_TNIL:
    case LUA_TNONE: tmp[0] = VT_NULL; return (const vt_value *)tmp;
    default: break;
  }
  return check_value(L, &S->vb, fn, arg, arg, 0, "");
}

/* A string this short is encoded on the C stack (tag, length, bytes), not
 * through the value builder: the common case of set_metadata. */
#define SHORT_STR 240

/* Set the key at argument k to the value at k + 1 on span id. */
static int set_metadata_at(lua_State *L, lvt *S, const char *fn, vt_id id, int k, unsigned flags) {
  size_t klen, n;
  const char *key, *str;
  unsigned char tmp[5 + SHORT_STR];
  const vt_value *value;
  uint32_t n32;
  int rc, t = lua_type(L, k + 1);
  if (VT_UNLIKELY(lua_type(L, k) != LUA_TSTRING)) type_error(L, fn, k, "string");
  key = lua_tolstring(L, k, &klen);
  if (t == LUA_TSTRING && (str = lua_tolstring(L, k + 1, &n), n <= SHORT_STR)) {
    tmp[0] = VT_STR;
    n32 = (uint32_t)n;
    memcpy(tmp + 1, &n32, 4);
    memcpy(tmp + 5, str, n);
    value = (const vt_value *)tmp;
  } else {
    if (t == LUA_TTABLE) { /* checked deeply only for a span that takes it */
      vt_span_view v;
      if (vt_collector_get(S->c, id, &v) != VT_OK || (!v.open && !(flags & VT_META_IF_ABSENT)) ||
          ((flags & VT_META_IF_ABSENT) && vt_value_get(v.metadata, key, klen))) {
        lua_pushboolean(L, 0);
        return 1;
      }
    } else if (t != LUA_TSTRING) {
      check_json_type(L, fn, k + 1);
    }
    value = value_at(L, S, fn, k + 1, tmp);
  }
  rc = vt_collector_set_metadata(S->c, id, key, klen, value, flags);
  if (VT_UNLIKELY(rc == VT_ENOMEM)) return status_error(L, fn, rc);
  if (VT_UNLIKELY(rc == VT_ELIMIT))
    return arg_error(L, fn, k, "span %I already has %d metadata keys, the most one span takes",
                     (LUAI_UACINT)id, VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_set_metadata(lua_State *L) {
  return set_metadata_at(L, STATE(L), "set_metadata", check_id(L, "set_metadata", 1), 2, 0);
}

static int l_set_metadata_if_absent(lua_State *L) {
  return set_metadata_at(L, STATE(L), "set_metadata_if_absent",
                         check_id(L, "set_metadata_if_absent", 1), 2, VT_META_IF_ABSENT);
}

/* Record the event named at argument n (attributes at n + 1) on span id. */
static int record_event_at(lua_State *L, lvt *S, const char *fn, vt_id id, int n) {
  size_t len;
  const char *name = check_str(L, fn, n, &len);
  const vt_value *attrs = NULL;
  vt_span_view v;
  int rc;
  if (!lua_isnoneornil(L, n + 1) && lua_type(L, n + 1) != LUA_TTABLE)
    type_error(L, fn, n + 1, "table with string keys");
  if (vt_collector_get(S->c, id, &v) != VT_OK || !v.open) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!lua_isnoneornil(L, n + 1)) attrs = check_value(L, &S->vb, fn, n + 1, n + 1, 1, "");
  rc = vt_collector_record_event(S->c, id, name, len, attrs);
  if (rc == VT_ENOMEM) return status_error(L, fn, rc);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_record_event(lua_State *L) {
  return record_event_at(L, STATE(L), "record_event", check_id(L, "record_event", 1), 2);
}

/* _event(id, name, attrs, fn): record_event with errors as fn's. */
static int l_event(lua_State *L) {
  const char *fn = luaL_checkstring(L, 4);
  return record_event_at(L, STATE(L), fn, check_id(L, fn, 1), 2);
}

/* ---- errors ---------------------------------------------------------------------- */

/* The error object at idx as text, pushed: a string or number as it is, a
 * value with __tostring through it (a __tostring that fails or gives no
 * string is passed over), a table of plain data as compact JSON (its keys
 * sorted: {"code":42,"message":"no quota"}, after its metatable's __name if
 * it has one, at most 1000 bytes), else "(error object is a <type> value)". */
static const char *error_message(lua_State *L, lvt *S, int idx, size_t *len) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER) {
    lua_pushvalue(L, idx);
    return lua_tolstring(L, -1, len);
  }
  if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TSTRING)
      return lua_tolstring(L, -1, len);
    lua_pop(L, 1);
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    conv cv;
    vt_buf b;
    memset(&cv, 0, sizeof cv);
    cv.L = L;
    cv.b = &S->vb2;
    vt_vb_reset(&S->vb2);
    if (to_value(&cv, idx) && vt_vb_value(&S->vb2)) {
      vt_buf_init(&b);
      if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) { /* a class: its name first */
        if (lua_type(L, -1) == LUA_TSTRING) {
          size_t n;
          const char *name = lua_tolstring(L, -1, &n);
          vt_buf_put(&b, name, n);
          vt_buf_putc(&b, ' ');
        }
        lua_pop(L, 1);
      }
      vt_json_write(&b, vt_vb_value(&S->vb2));
      if (!b.failed) {
        if (b.n > 1000) { /* whole UTF-8 characters: the writer's output is valid */
          size_t n = 997;
          while (n && ((unsigned char)b.p[n] & 0xC0) == 0x80) n--;
          b.n = n;
          vt_buf_puts(&b, "...");
        }
        if (!b.failed) {
          lua_pushlstring(L, b.p, b.n);
          vt_buf_free(&b);
          return lua_tolstring(L, -1, len);
        }
      }
      vt_buf_free(&b);
    }
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
  return lua_tolstring(L, -1, len);
}

/* The error object's type for error.type and exception.type, pushed: the
 * __name of its metatable (luaL_newmetatable sets it), else for a table its
 * `code` field (a string or an integer: {code = "rate_limited"}), else its
 * Lua type ("string", "table", ...). */
static const char *error_type(lua_State *L, int idx, size_t *len) {
  idx = lua_absindex(L, idx);
  if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TSTRING) return lua_tolstring(L, -1, len);
    lua_pop(L, 1);
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, "code");
    lua_rawget(L, idx);
    if (lua_type(L, -1) == LUA_TSTRING || lua_isinteger(L, -1)) return lua_tolstring(L, -1, len);
    lua_pop(L, 1);
  }
  lua_pushstring(L, luaL_typename(L, idx));
  return lua_tolstring(L, -1, len);
}

/* The message handler of `with` and timing.timed (vmtrace.core._errh):
 * returns the error unchanged, having kept it and the traceback of where it
 * was raised (uservalues 3 and 4 of the state). When `with` or _reraise
 * raises it again on its way out (level 1 is one of them), the traceback
 * from where it began is kept. */
static int l_with(lua_State *L);
static int l_reraise(lua_State *L);
static int l_errh(lua_State *L) {
  lua_Debug ar;
  int again = 0;
  lua_settop(L, 1);
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "f", &ar)) {
    lua_CFunction f = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (f == l_with || f == l_reraise) {
      lua_getiuservalue(L, lua_upvalueindex(1), 3);
      again = lua_rawequal(L, -1, 1);
      lua_pop(L, 1);
    }
  }
  if (!again) {
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, lua_upvalueindex(1), 3);
    luaL_traceback(L, L, NULL, 1);
    lua_setiuservalue(L, lua_upvalueindex(1), 4);
  }
  return 1;
}

/* _reraise(err): raise err as it is (timing.timed, after marking its span). */
static int l_reraise(lua_State *L) {
  lua_settop(L, 1);
  return lua_error(L);
}

/* The stack trace of the error at idx, pushed: the one the message handler
 * kept for this very error object (with `pending`), else the traceback
 * here (what a <close> span's __close sees: the stack that is closing). */
static const char *error_trace(lua_State *L, int idx, int pending, size_t *len) {
  idx = lua_absindex(L, idx);
  if (pending) {
    lua_getiuservalue(L, lua_upvalueindex(1), 3);
    pending = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    if (pending && lua_getiuservalue(L, lua_upvalueindex(1), 4) == LUA_TSTRING)
      return lua_tolstring(L, -1, len);
    if (pending) lua_pop(L, 1);
  }
  luaL_traceback(L, L, NULL, 1);
  return lua_tolstring(L, -1, len);
}

/* Mark span id as failed with the error object at idx, as OpenTelemetry
 * records errors: status = "error", error = its message, and an
 * `exception` event with exception.type, exception.message and
 * exception.stacktrace (the OTLP writer derives error.type from it). */
static void mark_error(lua_State *L, lvt *S, vt_id id, int idx, int pending) {
  size_t len, tlen, slen;
  const char *msg, *type, *trace;
  vt_vb *b = &S->vb2;
  int top = lua_gettop(L);
  idx = lua_absindex(L, idx);
  msg = error_message(L, S, idx, &len);
  type = error_type(L, idx, &tlen);
  trace = error_trace(L, idx, pending, &slen);
  vt_vb_reset(b);
  vt_vb_obj(b);
  vt_vb_key(b, "error", 5);
  vt_vb_str(b, msg, len);
  vt_vb_key(b, "status", 6);
  vt_vb_str(b, "error", 5);
  vt_vb_end(b);
  if (vt_vb_value(b)) vt_collector_merge_metadata(S->c, id, vt_vb_value(b));
  vt_vb_reset(b);
  vt_vb_obj(b);
  vt_vb_key(b, "exception.message", 17);
  vt_vb_str(b, msg, len);
  vt_vb_key(b, "exception.stacktrace", 20);
  vt_vb_str(b, trace, slen);
  vt_vb_key(b, "exception.type", 14);
  vt_vb_str(b, type, tlen);
  vt_vb_end(b);
  if (vt_vb_value(b)) vt_collector_record_event(S->c, id, "exception", 9, vt_vb_value(b));
  lua_settop(L, top);
}

/* ---- reading ------------------------------------------------------------------ */

static int l_get(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "get", 1);
  vt_span_view v;
  reading_begin(L, S);
  if (vt_collector_get(S->c, id, &v) != VT_OK) {
    reading_end(L, S);
    return 0;
  }
  push_span(L, S, &v);
  reading_end(L, S);
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
  if (!vt_collector_enabled(S->c) || vt_collector_get(S->c, id, &v) != VT_OK || !v.open) return 0;
  push_link(L, S, id);
  return 1;
}

static int l_span_link(lua_State *L) { return link_of(L, STATE(L), check_id(L, "span_link", 1)); }

static int l_current_span_link(lua_State *L) {
  lvt *S = STATE(L);
  return link_of(L, S, current_of(L, S));
}

/* Every completed span, as a list (between reading_begin and reading_end:
 * nothing changes the spans meanwhile). */
static int push_spans(lua_State *L, lvt *S) {
  size_t n = vt_collector_count(S->c), i;
  lua_Integer k = 0;
  luaL_checkstack(L, 8, NULL);
  lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
  for (i = 0; i < n; i++) {
    vt_span_view v;
    if (vt_collector_get(S->c, vt_collector_completed_id(S->c, i), &v) != VT_OK) continue;
    push_span(L, S, &v);
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

static int l_spans(lua_State *L) {
  lvt *S = STATE(L);
  DELIVER(L, S);
  reading_begin(L, S);
  push_spans(L, S);
  reading_end(L, S);
  return 1;
}

static int l_take_spans(lua_State *L) {
  lvt *S = STATE(L);
  DELIVER(L, S);
  reading_begin(L, S);
  push_spans(L, S);
  vt_collector_take(S->c); /* exactly those copied: no finalizer finished one since */
  reading_end(L, S);
  return 1;
}

static int l_summary(lua_State *L) {
  size_t len;
  char *s = vt_collector_summary(STATE(L)->c, &len);
  if (!s) return status_error(L, "summary", VT_ENOMEM);
  lua_pushlstring(L, s, len);
  vt_free(s);
  return 1;
}

/* ---- scoped spans ------------------------------------------------------------ */

#define SPAN_MT "vmtrace.Span"

typedef struct lspan {
  vt_id id;
  uint64_t gen; /* the collector's generation at start */
  int closed;
} lspan;

/* The span handle at idx, or NULL. A handle has one of two metatables, alike
 * but for __gc: an open handle's has it (a handle dropped unclosed finishes
 * its span as abandoned), a closed one's not, so closing spares a finalizer
 * call. */
static lspan *test_span(lua_State *L, lvt *S, int idx) {
  const void *mt;
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
  mt = lua_topointer(L, -1); /* the metatables are anchored in the registry */
  lua_pop(L, 1);
  return mt == S->span_mt_p || mt == S->closed_mt_p ? lua_touserdata(L, idx) : NULL;
}

/* Every method and metamethod gets its handle through this checker. */
static lspan *check_span(lua_State *L, lvt *S, const char *fn) {
  lspan *h = test_span(L, S, 1);
  if (!h) type_error(L, fn, 1, "span handle");
  return h;
}

/* Open, and not from before a reset. */
static int span_live(lvt *S, const lspan *h) {
  return !h->closed && h->id && S->c && h->gen == vt_collector_generation(S->c);
}

/* Mark the handle at index 1 closed. Its metatable becomes one without
 * __gc: the collector still queues it for finalization (it was marked when
 * it got __gc), but calls nothing, which is cheaper than a call that finds
 * the handle closed. */
static void span_closed(lua_State *L, lvt *S, lspan *h) {
  h->closed = 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->closed_mt_ref);
  lua_setmetatable(L, 1);
}

static int l_span(lua_State *L) {
  lvt *S = STATE(L);
  int k = kind_of(L, S, "span");
  lspan *h;
  if (!*S->on) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->inert_ref);
    return 1;
  }
  if (lua_gettop(L) < 3) lua_pushnil(L); /* the options at 3 (the common case: none) */
  else lua_settop(L, 3);
  h = lua_newuserdatauv(L, sizeof *h, 0); /* no metatable (no finalizer) until whole */
  h->gen = vt_collector_generation(S->c);
  h->id = start_span(L, S, "span", k, 0);
  h->closed = h->id == 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h->id ? S->span_mt_ref : S->closed_mt_ref);
  lua_setmetatable(L, 4);
  if (VT_UNLIKELY(lua_gettop(L) != 4)) lua_settop(L, 4); /* (sinks called meanwhile) */
  return 1; /* the handle */
}

static int l_span_index(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = check_span(L, S, "Span.__index");
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
  lspan *h = check_span(L, S, "Span.__close");
  if (!span_live(S, h)) return 0;
  span_closed(L, S, h);
  if (!lua_isnoneornil(L, 2)) mark_error(L, S, h->id, 2, 0);
  finish_id(L, S, h->id);
  return 0;
}

/* __gc: a handle dropped without being closed finishes as abandoned. */
static int l_span_gc(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = test_span(L, S, 1);
  static const unsigned char yes[1] = {VT_TRUE};
  if (!h || !span_live(S, h)) return 0;
  h->closed = 1;
  vt_collector_set_metadata(S->c, h->id, "abandoned", 9, (const vt_value *)yes, 0);
  vt_collector_finish(S->c, h->id, NULL); /* sinks hear of it at the next call */
  return 0;
}

static int l_span_tostring(lua_State *L) {
  lvt *S = STATE(L);
  lspan *h = check_span(L, S, "Span.__tostring");
  lua_pushfstring(L, "vmtrace.Span(%I%s)", (LUAI_UACINT)h->id, h->closed ? ", closed" : "");
  return 1;
}

/* ---- with ------------------------------------------------------------------------ */

/* After fn: finish the span (index 1 holds its id, 2 the message handler);
 * on error mark it first and raise the error again. */
static int with_done(lua_State *L, int status, lua_KContext ctx) {
  lvt *S = STATE(L);
  vt_id id = (vt_id)lua_tointeger(L, 1);
  (void)ctx;
  if (status != LUA_OK && status != LUA_YIELD) { /* id, handler, err */
    if (id) mark_error(L, S, id, -1, 1);
    if (finish_id(L, S, id)) lua_pop(L, 1);
    return lua_error(L);
  }
  if (finish_id(L, S, id)) lua_pop(L, 1);
  return lua_gettop(L) - 2;
}

/* with(kind, name, fn, ...): fn's results, inside a span. fn may yield. */
static int l_with(lua_State *L) {
  lvt *S = STATE(L);
  int k = kind_of(L, S, "with");
  vt_id id = 0;
  if (lua_type(L, 2) != LUA_TSTRING) start_arg_error(L, "with", 2);
  if (lua_type(L, 3) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 3, "__call") == LUA_TNIL) type_error(L, "with", 3, "function");
    lua_pop(L, 1);
  }
  if (vt_collector_enabled(S->c)) {
    size_t len;
    const char *name = lua_tolstring(L, 2, &len);
    int64_t nm = name_of(L, S, 2, name, len);
    if (nm >= 0) id = vt_collector_start_interned(S->c, stack_of(L, S), (vt_kind)k, (uint32_t)nm, NULL);
    DELIVER(L, S);
  }
  lua_pushinteger(L, (lua_Integer)id);
  lua_replace(L, 1); /* id, name, fn, ... */
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->errh_ref);
  lua_replace(L, 2); /* id, handler, fn, ... */
  return with_done(L, lua_pcallk(L, lua_gettop(L) - 3, LUA_MULTRET, 2, 0, with_done), 0);
}

/* ---- markers ------------------------------------------------------------------------ */

/* A marker span of kind k named `name` with metadata `meta` (an object):
 * completed at once under the current span; pushes its id (0 while off). */
static int marker(lua_State *L, lvt *S, const char *fn, int k, const char *name, size_t len,
                  const vt_value *meta) {
  vt_start_args args;
  vt_id id;
  memset(&args, 0, sizeof args);
  if (!meta) return status_error(L, fn, VT_ENOMEM);
  args.metadata = meta;
  args.flags = VT_START_INSTANT;
  id = vt_collector_start(S->c, stack_of(L, S), (vt_kind)k, name, len, &args);
  DELIVER(L, S);
  lua_pushinteger(L, (lua_Integer)id);
  return 1;
}

/* A marker of one of the marker kinds, named after its kind. */
static int kind_marker(lua_State *L, lvt *S, const char *fn, int k) {
  vt_vb_end(&S->vb);
  return marker(L, S, fn, k, vt_kind_name(k), strlen(vt_kind_name(k)), vt_vb_value(&S->vb));
}

static void meta_str(lvt *S, const char *k, lua_State *L, int idx) {
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  vt_vb_key(&S->vb, k, strlen(k));
  vt_vb_str(&S->vb, s, n);
}

static int off(lua_State *L) {
  lua_pushinteger(L, 0);
  return 1;
}

/* marker(kind, name, metadata): a zero-duration span under the current one. */
static int l_marker(lua_State *L) {
  lvt *S = STATE(L);
  int k = kind_of(L, S, "marker");
  size_t len;
  const char *name;
  if (lua_type(L, 2) != LUA_TSTRING) start_arg_error(L, "marker", 2);
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TTABLE) type_error(L, "marker", 3, "table");
  if (!vt_collector_enabled(S->c)) return off(L);
  name = lua_tolstring(L, 2, &len);
  if (lua_isnoneornil(L, 3)) {
    static const unsigned char empty[9] = {VT_OBJ, 0, 0, 0, 0, 0, 0, 0, 0};
    return marker(L, S, "marker", k, name, len, (const vt_value *)empty);
  }
  return marker(L, S, "marker", k, name, len, check_value(L, &S->vb, "marker", 3, 3, 1, ""));
}

static int l_model_route(lua_State *L) {
  lvt *S = STATE(L);
  check_str(L, "model_route", 1, NULL);
  check_str(L, "model_route", 2, NULL);
  check_str(L, "model_route", 3, NULL);
  if (!vt_collector_enabled(S->c)) return off(L);
  vt_vb_reset(&S->vb);
  vt_vb_obj(&S->vb);
  meta_str(S, "from_model", L, 1);
  meta_str(S, "to_model", L, 2);
  meta_str(S, "reason", L, 3);
  return kind_marker(L, S, "model_route", VT_MODEL_ROUTE);
}

static int l_tool_mount(lua_State *L) {
  lvt *S = STATE(L);
  lua_Integer n, i;
  if (lua_type(L, 1) != LUA_TTABLE) type_error(L, "tool_mount", 1, "table");
  check_str(L, "tool_mount", 2, NULL);
  opt_str(L, "tool_mount", 3, NULL);
  n = (lua_Integer)lua_rawlen(L, 1);
  for (i = 1; i <= n; i++) {
    int t = lua_rawgeti(L, 1, i);
    if (t != LUA_TSTRING)
      arg_error(L, "tool_mount", 1, "tool_names[%d] must be a string, got %s", (int)i,
                lua_typename(L, t));
    lua_pop(L, 1);
  }
  if (n == 0 || !vt_collector_enabled(S->c)) return off(L);
  vt_vb_reset(&S->vb);
  vt_vb_obj(&S->vb);
  vt_vb_key(&S->vb, "tool_names", 10);
  vt_vb_arr(&S->vb);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, 1, i);
    s = lua_tolstring(L, -1, &len);
    vt_vb_str(&S->vb, s, len);
    lua_pop(L, 1);
  }
  vt_vb_end(&S->vb);
  vt_vb_key(&S->vb, "tool_count", 10);
  vt_vb_int(&S->vb, n);
  meta_str(S, "source", L, 2);
  if (!lua_isnoneornil(L, 3)) meta_str(S, "detail", L, 3);
  return kind_marker(L, S, "tool_mount", VT_TOOL_MOUNT);
}

static int l_deferred_tool_load(lua_State *L) {
  lvt *S = STATE(L);
  check_str(L, "deferred_tool_load", 1, NULL);
  check_str(L, "deferred_tool_load", 2, NULL);
  if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TNUMBER)
    type_error(L, "deferred_tool_load", 3, "number");
  if (!vt_collector_enabled(S->c)) return off(L);
  vt_vb_reset(&S->vb);
  vt_vb_obj(&S->vb);
  meta_str(S, "tool_name", L, 1);
  meta_str(S, "query", L, 2);
  if (!lua_isnoneornil(L, 3)) {
    vt_vb_key(&S->vb, "score", 5);
    if (lua_isinteger(L, 3)) vt_vb_int(&S->vb, (int64_t)lua_tointeger(L, 3));
    else vt_vb_num(&S->vb, (double)lua_tonumber(L, 3));
  }
  return kind_marker(L, S, "deferred_tool_load", VT_DEFERRED_TOOL_LOAD);
}

/* ---- for the Lua side ------------------------------------------------------------ */

static int l_mark_error(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "_mark_error", 1);
  vt_span_view v;
  lua_settop(L, 2);
  if (vt_collector_get(S->c, id, &v) == VT_OK && v.open) mark_error(L, S, id, 2, 1);
  return 0;
}

/* _merge(id, table, fn, arg): merge into an open span's metadata (errors as
 * fn's argument arg). */
static int l_merge(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "_merge", 1);
  const char *fn = luaL_optstring(L, 3, "_merge");
  int arg = (int)luaL_optinteger(L, 4, 2), rc;
  vt_span_view v;
  if (vt_collector_get(S->c, id, &v) != VT_OK || !v.open) {
    lua_pushboolean(L, 0);
    return 1;
  }
  rc = vt_collector_merge_metadata(S->c, id, check_value(L, &S->vb, fn, arg, 2, 1, ""));
  if (rc == VT_ENOMEM) return status_error(L, fn, rc);
  if (rc == VT_ELIMIT)
    return arg_error(L, fn, arg, "span %I would have more than %d metadata keys", (LUAI_UACINT)id,
                     VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static int l_elapsed_ms(lua_State *L) {
  int64_t ns;
  if (vt_collector_elapsed(STATE(L)->c, check_id(L, "_elapsed_ms", 1), &ns) != VT_OK) return 0;
  lua_pushinteger(L, (lua_Integer)(ns / 1000000));
  return 1;
}

/* _argerror(fn, n, msg [, level]): raise "vmtrace.fn: bad argument #n (msg)"
 * at the caller of the Lua function that calls this (level 1). */
static int l_argerror(lua_State *L) {
  const char *fn = luaL_checkstring(L, 1), *msg = luaL_checkstring(L, 3);
  int n = (int)luaL_checkinteger(L, 2), level = (int)luaL_optinteger(L, 4, 1);
  luaL_where(L, level + 1);
  lua_pushfstring(L, "vmtrace.%s: bad argument #%d (%s)", fn, n, msg);
  lua_concat(L, 2);
  return lua_error(L);
}
