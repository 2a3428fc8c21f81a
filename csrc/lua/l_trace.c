/*
 * l_trace.c: the switch (enable, disable, reset), the trace and its W3C
 * context, the clock, settings (configure) and introspection (stats).
 * (Part of the binding unit.)
 */

/* An invalid traceparent is ignored, as the W3C specification says; the
 * first one a state sees is reported on stderr. */
static int join(lvt *S, const char *header, size_t len, const char *ts, size_t tslen,
                const char *from) {
  if (vt_collector_continue_trace(S->c, header, len, ts, tslen) == VT_OK) return 1;
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
  if (!on) auto_switched(L, S, 0); /* the hook follows the switch (l_auto.c) */
  vt_collector_set_enabled(S->c, on);
  if (on && (tp = vt_env("TRACEPARENT")) != NULL) { /* started by a traced process */
    const char *ts = vt_env("TRACESTATE");
    join(S, tp, strlen(tp), ts, ts ? strlen(ts) : 0, "the TRACEPARENT environment variable");
  }
  if (on) auto_switched(L, S, 1);
  return 0;
}

/* continue_trace(traceparent [, tracestate]): join the remote trace of a
 * W3C traceparent header; true, or false (with one warning) for an invalid
 * header. */
static int l_continue_trace(lua_State *L) {
  size_t len, tslen = 0;
  const char *h = check_str(L, "continue_trace", 1, &len);
  const char *ts = opt_str(L, "continue_trace", 2, &tslen);
  lua_pushboolean(L, join(STATE(L), h, len, ts, tslen, "vmtrace.continue_trace"));
  return 1;
}

/* traceparent([id]): the W3C header naming span id (by default the current
 * span, else the remote parent joined), or nil; then the tracestate to pass
 * on with it (when the trace joined had one). */
static int l_traceparent(lua_State *L) {
  lvt *S = STATE(L);
  char out[56];
  vt_trace_info t;
  vt_id id = lua_isnoneornil(L, 1) ? current_of(L, S) : check_id(L, "traceparent", 1);
  vt_span_view v;
  if (lua_isnoneornil(L, 1) && id && vt_collector_get(S->c, id, &v) != VT_OK) id = 0;
  if (vt_collector_traceparent(S->c, id, out) != VT_OK) return 0;
  lua_pushstring(L, out);
  vt_collector_trace_info(S->c, &t);
  if (!t.tracestate[0]) return 1;
  lua_pushstring(L, t.tracestate);
  return 2;
}

/* tracestate(): the W3C tracestate of the trace joined, or nil. */
static int l_tracestate(lua_State *L) {
  vt_trace_info t;
  vt_collector_trace_info(STATE(L)->c, &t);
  if (t.tracestate[0]) lua_pushstring(L, t.tracestate);
  else lua_pushnil(L);
  return 1;
}

static int l_disable(lua_State *L) {
  auto_switched(L, STATE(L), 0);
  vt_collector_set_enabled(STATE(L)->c, 0);
  return 0;
}

static int l_is_enabled(lua_State *L) {
  lua_pushboolean(L, vt_collector_enabled(STATE(L)->c));
  return 1;
}

static int l_reset(lua_State *L) {
  lvt *S = STATE(L);
  DELIVER(L, S);
  vt_collector_reset(S->c);
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

/* ---- clock ------------------------------------------------------------------- */

static int64_t check_ms(lua_State *L, const char *fn, int arg) {
  int ok;
  lua_Number n;
  lua_Integer i = lua_tointegerx(L, arg, &ok);
  if (ok && lua_type(L, arg) == LUA_TNUMBER) return (int64_t)i;
  n = lua_tonumberx(L, arg, &ok);
  if (!ok || lua_type(L, arg) != LUA_TNUMBER) type_error(L, fn, arg, "number of milliseconds");
  if (!(n >= -9.2e18 && n <= 9.2e18)) arg_error(L, fn, arg, "milliseconds out of range");
  return (int64_t)n;
}

static int l_mock_time(lua_State *L) {
  int64_t ms = check_ms(L, "mock_time", 1);
  int rc;
  if (ms < 0 || ms >= VT_MAX_TIME_MS)
    arg_error(L, "mock_time", 1, "milliseconds since 1970 must be from 0 to %I, got %I",
              (LUAI_UACINT)(VT_MAX_TIME_MS - 1), (LUAI_UACINT)ms);
  rc = vt_collector_mock_push(STATE(L)->c, ms);
  if (rc != VT_OK) return status_error(L, "mock_time", rc);
  return 0;
}

static int l_advance_time(lua_State *L) {
  int64_t ms = check_ms(L, "advance_time", 1), wall;
  int rc;
  if (ms < 0) arg_error(L, "advance_time", 1, "milliseconds must be >= 0");
  if (vt_collector_mocked(STATE(L)->c) && ms >= VT_MAX_TIME_MS - vt_collector_now_ms(STATE(L)->c))
    arg_error(L, "advance_time", 1, "the mock clock would pass %I ms since 1970",
              (LUAI_UACINT)(VT_MAX_TIME_MS - 1));
  rc = vt_collector_mock_advance(STATE(L)->c, ms, &wall);
  if (rc != VT_OK) return status_error(L, "advance_time", rc);
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

/* ---- settings and introspection --------------------------------------------- */

/* configure{max_spans = N, attribute_count_limit = N, ...}: settings of
 * this state; returns them as they now are. max_spans bounds the completed
 * spans kept in memory (the oldest go and are counted as dropped); 0 or
 * false: no bound. The span limits (attribute_count_limit,
 * attribute_value_length_limit, event_count_limit, link_count_limit; 0 or
 * false: no limit) apply to OTLP output, export("otlp") and otlp.start, and
 * win over the OTEL_* variables; what is returned is what applies. */
static int l_configure(lua_State *L) {
  lvt *S = STATE(L);
  vt_collector *c = S->c;
  vt_limits l;
  static const char *const known[] = {"max_spans", "attribute_count_limit",
                                      "attribute_value_length_limit", "event_count_limit",
                                      "link_count_limit", NULL};
  if (check_keys(L, "configure", 1, known, "setting")) {
    vt_limits given = S->limits;
    unsigned mask;
    lua_Integer n = -1;
    if (lua_getfield(L, 1, "max_spans") != LUA_TNIL) {
      int ok = lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1);
      n = 0;
      if (!ok && lua_type(L, -1) == LUA_TNUMBER) n = lua_tointegerx(L, -1, &ok);
      if (!ok || n < 0)
        arg_error(L, "configure", 1, "max_spans must be an integer >= 0 (0: no bound)");
    }
    lua_pop(L, 1);
    mask = opt_limits(L, "configure", 1, &given); /* all checked, then set */
    if (n >= 0) vt_collector_set_max_spans(c, (size_t)n);
    S->limits = given;
    S->limits_set |= mask;
  }
  vt_limits_resolve(&l, &S->limits, S->limits_set, NULL);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)vt_collector_max_spans(c));
  lua_setfield(L, -2, "max_spans");
  set_int(L, "attribute_count_limit", (int64_t)l.attribute_count);
  set_int(L, "attribute_value_length_limit", (int64_t)l.attribute_value_length);
  set_int(L, "event_count_limit", (int64_t)l.event_count);
  set_int(L, "link_count_limit", (int64_t)l.link_count);
  return 1;
}

/* _limits(): the span limits configure{} set (for otlp.start), by name. */
static int l_limits(lua_State *L) {
  lvt *S = STATE(L);
  lua_createtable(L, 0, 4);
  if (S->limits_set & VT_LIMIT_ATTRIBUTE_COUNT)
    set_int(L, "attribute_count_limit", (int64_t)S->limits.attribute_count);
  if (S->limits_set & VT_LIMIT_ATTRIBUTE_VALUE_LENGTH)
    set_int(L, "attribute_value_length_limit", (int64_t)S->limits.attribute_value_length);
  if (S->limits_set & VT_LIMIT_EVENT_COUNT)
    set_int(L, "event_count_limit", (int64_t)S->limits.event_count);
  if (S->limits_set & VT_LIMIT_LINK_COUNT)
    set_int(L, "link_count_limit", (int64_t)S->limits.link_count);
  return 1;
}

static int l_generation(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)vt_collector_generation(STATE(L)->c));
  return 1;
}

static int l_stats(lua_State *L) {
  lvt *S = STATE(L);
  vt_stats st;
  vt_collector_stats(S->c, &st);
  lua_createtable(L, 0, 10);
  set_int(L, "open", (int64_t)st.open);
  set_int(L, "completed", (int64_t)st.completed);
  set_int(L, "stacks", (int64_t)st.stacks);
  set_int(L, "names", (int64_t)st.names);
  set_int(L, "name_bytes", (int64_t)st.name_bytes);
  set_int(L, "dropped", (int64_t)st.dropped);
  set_int(L, "generation", (int64_t)st.generation);
  set_int(L, "sink_dropped", (int64_t)S->sink_dropped);
  lua_pushstring(L, vt_clock_source());
  lua_setfield(L, -2, "clock");
  if (S->stream) {
    vt_stream_status ss;
    vt_stream_status_get(S->stream, &ss);
    set_int(L, "stream_lost_lines", (int64_t)ss.lost_lines);
    if (ss.error) {
      lua_pushstring(L, strerror(ss.error));
      lua_setfield(L, -2, "stream_error");
    }
  }
  return 1;
}
