/*
 * l_sink.c: Lua event sinks (the seed's events module) on the core's event
 * bus, so they see every span started and finished, whoever records it (the
 * script or a host through vmtrace.h). The bus listener only queues the
 * event (an end with a copy of what the sinks get: under max_spans the span
 * may be gone by then); the binding delivers the queue to the sinks when the call that
 * caused it returns to Lua, outside the core, so a sink may itself record
 * spans. Events from a host's C code wait for the next vmtrace call from
 * Lua. A sink that raises is reported once on stderr and stops nothing.
 * The listener is on the bus only while there are sinks: a span costs no
 * call into it otherwise.
 * (Part of the binding unit.)
 */

/* The bus listener of the state, subscribed while there are sinks: queue
 * starts and ends for them. */
static void on_bus(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  lvt *S = ud;
  int64_t dur = -1;
  sink_ev *e;
  vt_span_view v;
  if (ev == VT_EV_CLOSE) return;
  if (!S->nsinks || (ev != VT_EV_START && ev != VT_EV_END)) return;
  if (ev == VT_EV_END && (vt_collector_elapsed(c, id, &dur) != VT_OK ||
                          vt_collector_get(c, id, &v) != VT_OK))
    return;
  if (S->nq >= SINK_QUEUE_MAX ||
      !vt_grow((void **)&S->queue, &S->capq, S->nq + 1, sizeof *S->queue)) {
    S->sink_dropped++;
    return;
  }
  e = &S->queue[S->nq];
  memset(e, 0, sizeof *e);
  e->id = id;
  e->dur_ns = dur;
  if (ev == VT_EV_END) { /* copied now: under max_spans it may be gone by the delivery */
    e->name = vt_malloc(v.name_len + 1);
    e->meta = v.metadata ? vt_value_dup(v.metadata) : NULL;
    if (!e->name || (v.metadata && !e->meta)) {
      vt_free(e->name);
      vt_free(e->meta);
      S->sink_dropped++;
      return;
    }
    if (v.name_len) memcpy(e->name, v.name, v.name_len);
    e->name_len = v.name_len;
    e->kind = (int)v.kind;
  }
  S->nq++;
}

/* Copy the metadata of span v into a new table (with links, or duration). */
static void push_event(lua_State *L, lvt *S, const vt_span_view *v, int64_t dur_ns) {
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)v->id);
  lua_setfield(L, -2, "span_id");
  if (dur_ns < 0 && v->parent) {
    lua_pushinteger(L, (lua_Integer)v->parent);
    lua_setfield(L, -2, "parent_id");
  }
  lua_pushlstring(L, v->name, v->name_len);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, vt_kind_name((int)v->kind));
  lua_setfield(L, -2, "kind");
  if (v->metadata) push_value(L, v->metadata);
  else lua_newtable(L);
  if (dur_ns >= 0) {
    lua_pushinteger(L, (lua_Integer)(dur_ns / 1000000));
    lua_setfield(L, -2, "duration_ms");
  } else if (v->nlinks) {
    push_links(L, v);
    lua_setfield(L, -2, "links");
  }
  lua_setfield(L, -2, "metadata");
  (void)S;
}

/* Call field `f` of every sink (a copy of the list: sinks may remove
 * themselves) with the event at the top. A sink that raised is marked in
 * the hash part of the sinks table (sinks[sink] = true): reported once. */
static void call_sinks(lua_State *L, lvt *S, const char *f) {
  int i, n, ev = lua_gettop(L), sinks, copy;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->sinks_ref); /* ev, sinks */
  sinks = lua_gettop(L);
  n = (int)lua_rawlen(L, sinks);
  lua_createtable(L, n, 0); /* ev, sinks, copy */
  copy = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, sinks, i);
    lua_rawseti(L, copy, i);
  }
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, copy, i); /* sink */
    if (lua_getfield(L, -1, f) == LUA_TFUNCTION) { /* sink, fn */
      lua_pushvalue(L, ev);
      if (lua_pcall(L, 1, 0, 0) != LUA_OK) { /* sink, err */
        lua_pushvalue(L, -2);
        if (lua_rawget(L, sinks) == LUA_TNIL) { /* not reported yet */
          lua_pushfstring(L, "vmtrace: a sink's %s raised (reported once per sink): %s\n", f,
                          lua_tostring(L, -2) ? lua_tostring(L, -2) : luaL_typename(L, -2));
          report(L, lua_tostring(L, -1));
          lua_pop(L, 1);
          lua_pushvalue(L, -3);
          lua_pushboolean(L, 1);
          lua_rawset(L, sinks);
        }
        lua_pop(L, 2);
      }
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1); /* the sink */
  }
  lua_settop(L, ev - 1);
}

/* Deliver the queued events to the sinks. */
static void sinks_deliver(lua_State *L, lvt *S) {
  size_t i;
  if (S->delivering) return; /* a sink's own spans: the outer loop goes on */
  S->delivering = 1;
  for (i = 0; i < S->nq; i++) {
    sink_ev e = S->queue[i]; /* (the queue may grow while sinks run) */
    vt_span_view v;
    luaL_checkstack(L, 8, NULL);
    if (e.dur_ns >= 0) { /* an end: its copy */
      memset(&v, 0, sizeof v);
      v.id = e.id;
      v.name = e.name;
      v.name_len = e.name_len;
      v.kind = (vt_kind)e.kind;
      v.metadata = e.meta;
      push_event(L, S, &v, e.dur_ns);
      S->queue[i].name = NULL; /* copied into Lua: the copies go */
      S->queue[i].meta = NULL;
      vt_free(e.name);
      vt_free(e.meta);
    } else {
      reading_begin(L, S);
      if (vt_collector_get(S->c, e.id, &v) != VT_OK) { /* gone (a reset) before its start */
        reading_end(L, S);
        S->sink_dropped++;
        continue;
      }
      push_event(L, S, &v, e.dur_ns);
      reading_end(L, S);
    }
    call_sinks(L, S, e.dur_ns < 0 ? "on_start" : "on_end");
  }
  S->nq = 0;
  S->delivering = 0;
}

#define DELIVER(L, S)                                    \
  do {                                                   \
    if (VT_UNLIKELY((S)->nq)) sinks_deliver(L, S);       \
  } while (0)

/* add_sink{on_start = fn, on_end = fn}: each gets every span start and end
 * event; returns the sink (the handle for remove_sink). */
static int l_add_sink(lua_State *L) {
  lvt *S = STATE(L);
  int i;
  static const char *const fields[] = {"on_start", "on_end"};
  if (lua_type(L, 1) != LUA_TTABLE) type_error(L, "add_sink", 1, "table");
  lua_getfield(L, 1, "on_start");
  lua_getfield(L, 1, "on_end");
  if (lua_isnil(L, -1) && lua_isnil(L, -2)) arg_error(L, "add_sink", 1, "sink needs on_start or on_end");
  for (i = 0; i < 2; i++) {
    int t = lua_type(L, -2 + i);
    if (t != LUA_TNIL && t != LUA_TFUNCTION)
      arg_error(L, "add_sink", 1, "sink.%s must be a function, got %s", fields[i], lua_typename(L, t));
  }
  lua_pop(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->sinks_ref);
  if (!S->nsinks && vt_collector_subscribe(S->c, on_bus, S) != VT_OK) /* the first sink */
    status_error(L, "add_sink", VT_ENOMEM);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
  S->nsinks = (int)lua_rawlen(L, -1);
  lua_pop(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* remove_sink(sink): true when it was registered. */
static int l_remove_sink(lua_State *L) {
  lvt *S = STATE(L);
  int i, n, found = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->sinks_ref);
  n = (int)lua_rawlen(L, -1);
  for (i = n; i >= 1 && !found; i--) {
    lua_rawgeti(L, -1, i);
    found = lua_rawequal(L, -1, 1);
    lua_pop(L, 1);
    if (found) {
      for (; i < n; i++) {
        lua_rawgeti(L, -1, i + 1);
        lua_rawseti(L, -2, i);
      }
      lua_pushnil(L);
      lua_rawseti(L, -2, n);
    }
  }
  S->nsinks = (int)lua_rawlen(L, -1);
  if (found && !S->nsinks) vt_collector_unsubscribe(S->c, on_bus, S); /* the bus stays quiet */
  lua_pushboolean(L, found);
  return 1;
}
