/*
 * l_io.c: exports, the crash-safe stream, the console exporter and reading
 * files back: the Lua faces of csrc/export, csrc/io/stream.c,
 * csrc/io/console.c and csrc/io/reader.c. Files are opened and replaced by
 * csrc/io/file.c; failures return nil, message and the errno name, as
 * io.open does. (Part of the binding unit.)
 */

/* The FILE of the Lua file handle at idx (raising for a closed one), or NULL
 * when idx holds no file handle. */
static FILE *file_handle(lua_State *L, const char *fn, int idx) {
  luaL_Stream *p;
  if (lua_type(L, idx) != LUA_TUSERDATA) return NULL;
  p = luaL_testudata(L, idx, LUA_FILEHANDLE);
  if (!p) type_error(L, fn, idx, "path, file handle or nil");
  if (!p->closef) arg_error(L, fn, idx, "file handle is closed");
  return p->f;
}

/* export(format, dest [, opts]) --> true | string, or nil, message, code. */
static int l_export(lua_State *L) {
  lvt *S = STATE(L);
  static const char *const known[] = {"weight", "service_name", "resource", NULL};
  vt_export_opts o;
  FILE *f;
  int fmt, rc;
  char svc[256];
  memset(&o, 0, sizeof o);
  if (lua_type(L, 1) != LUA_TSTRING) type_error(L, "export", 1, "format name");
  fmt = check_name(L, "export", 1, 1, "format", vt_format_name, VT_FORMAT_COUNT);
  f = file_handle(L, "export", 2);
  if (!f && !lua_isnoneornil(L, 2)) check_str(L, "export", 2, NULL);
  if (check_opts(L, "export", 3, known)) {
    if (lua_getfield(L, 3, "weight") != LUA_TNIL)
      o.weight = (vt_weight)check_name(L, "export", lua_gettop(L), 3, "weight", vt_weight_name,
                                       VT_WEIGHT_COUNT);
    if (lua_getfield(L, 3, "service_name") != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TSTRING)
        arg_error(L, "export", 3, "opts.service_name must be a string, got %s", luaL_typename(L, -1));
      o.service_name = lua_tostring(L, -1);
    }
    if (lua_getfield(L, 3, "resource") != LUA_TNIL) /* last: it allocates */
      o.resource = check_value(L, &S->vb, "export", 3, -1, 1, "opts.resource: ");
  }
  if (fmt == VT_FORMAT_OTLP) { /* the environment's resource, under the options' */
    const char *bad = NULL;
    vt_vb_reset(&S->vb2);
    vt_env_resource(&S->vb2, o.resource);
    if (!(o.resource = vt_vb_value(&S->vb2))) return status_error(L, "export", VT_ENOMEM);
    o.service_name = vt_env_service_name(o.service_name, o.resource, svc, sizeof svc);
    vt_limits_resolve(&o.limits, &S->limits, S->limits_set, &bad); /* configure{} wins */
    if (bad) fprintf(stderr, "vmtrace: ignoring %s: not an integer >= 0\n", bad);
  }
  DELIVER(L, S);
  if (lua_isnoneornil(L, 2)) {
    size_t len;
    char *s = vt_collector_export_string(S->c, (vt_format)fmt, &o, &len);
    if (!s) return status_error(L, "export", VT_ENOMEM);
    lua_pushlstring(L, s, len);
    vt_free(s);
    return 1;
  }
  if (f) rc = vt_collector_export(S->c, (vt_format)fmt, &o, f);
  else rc = vt_collector_export_path(S->c, (vt_format)fmt, &o, lua_tostring(L, 2));
  if (rc == VT_OK) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == VT_EIO)
    return io_fail(L, "export", f ? "cannot write to the file" : lua_tostring(L, 2), errno);
  if (rc == VT_ENOMEM) return io_fail(L, "export", "out of memory", ENOMEM);
  lua_pushnil(L);
  lua_pushfstring(L, "vmtrace.export: %s", vt_strerror(rc));
  lua_pushstring(L, vt_status_name(rc));
  return 3;
}

static int l_profile(lua_State *L) {
  lvt *S = STATE(L);
  vt_value *p;
  DELIVER(L, S);
  if (!(p = vt_collector_profile(S->c))) return status_error(L, "profile", VT_ENOMEM);
  push_value(L, p);
  vt_free(p);
  return 1;
}

/* stream(dest [, opts]): write each span start and end as an NDJSON line as
 * it happens; stream(nil) stops. dest is a path or a file handle (its file
 * descriptor is duplicated, so closing the handle does not break the
 * stream). opts.flush = false buffers lines (written when 64 KiB are
 * pending, at stop and at exit); opts.append = true appends to a path.
 * Returns true (and the error of the stream it replaced, if that one
 * failed), or nil, message, code. */
static int l_stream(lua_State *L) {
  lvt *S = STATE(L);
  static const char *const known[] = {"flush", "append", NULL};
  int flush = 1, append = 0, fd = -1, old_err = 0;
  uint64_t old_lost = 0;
  FILE *f = file_handle(L, "stream", 1);
  const char *name = NULL;
  if (!f && !lua_isnoneornil(L, 1)) name = check_str(L, "stream", 1, NULL);
  if (check_opts(L, "stream", 2, known)) {
    if (lua_getfield(L, 2, "flush") != LUA_TNIL) flush = check_bool(L, "stream", 2, -1, "opts.flush");
    if (lua_getfield(L, 2, "append") != LUA_TNIL) append = check_bool(L, "stream", 2, -1, "opts.append");
  }
  if (f) {
    fflush(f);
    fd = fcntl(fileno(f), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return io_fail(L, "stream", "cannot use the file handle", errno);
  } else if (name) {
    fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
    if (fd < 0) return io_fail(L, "stream", name, errno);
  }
  if (S->stream) { /* one stream at a time: stop the old one */
    vt_stream_status st;
    vt_stream_status_get(S->stream, &st);
    old_lost = st.lost_lines;
    old_err = vt_stream_close(S->stream);
    S->stream = NULL;
  }
  if (fd >= 0) {
    S->stream = vt_stream_open(S->c, fd, flush);
    if (!S->stream) {
      close(fd);
      return status_error(L, "stream", VT_ENOMEM);
    }
    lua_pushboolean(L, 1);
    if (!old_err) return 1;
    lua_pushfstring(L, "vmtrace.stream: the stream it replaced failed: %s (%I lines lost)",
                    strerror(old_err), (LUAI_UACINT)old_lost);
    return 2;
  }
  if (old_err) {
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.stream: writing failed: %s (%I lines lost)", strerror(old_err),
                    (LUAI_UACINT)old_lost);
    lua_pushstring(L, vt_errno_name(old_err));
    return 3;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* stream_status(): {active, lines, lost_lines, error?, failing} of the stream. */
static int l_stream_status(lua_State *L) {
  lvt *S = STATE(L);
  vt_stream_status st;
  lua_createtable(L, 0, 5);
  lua_pushboolean(L, S->stream != NULL);
  lua_setfield(L, -2, "active");
  if (!S->stream) return 1;
  vt_stream_status_get(S->stream, &st);
  set_int(L, "lines", (int64_t)st.lines);
  set_int(L, "lost_lines", (int64_t)st.lost_lines);
  lua_pushboolean(L, st.failing);
  lua_setfield(L, -2, "failing");
  if (st.error) {
    lua_pushstring(L, strerror(st.error));
    lua_setfield(L, -2, "error");
  }
  return 1;
}

/* load(path): replace the spans with those of a JSON span list or an NDJSON
 * stream (also one cut off by a crash); the number of spans and {unfinished,
 * skipped_lines, renumbered}, or nil, "path: line N: ...", code. */
static int l_load(lua_State *L) {
  lvt *S = STATE(L);
  const char *path = check_str(L, "load", 1, NULL);
  vt_load_result r;
  FILE *f = fopen(path, "rb");
  int rc;
  if (!f) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, vt_errno_name(e));
    return 3;
  }
  DELIVER(L, S);
  rc = vt_collector_load(S->c, f, &r);
  fclose(f);
  if (rc != VT_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: line %I: %s", path, (LUAI_UACINT)r.line, r.error);
    lua_pushstring(L, vt_status_name(rc));
    return 3;
  }
  lua_pushinteger(L, (lua_Integer)r.spans);
  lua_createtable(L, 0, 4);
  set_int(L, "unfinished", (int64_t)r.unfinished);
  if (r.torn_tail) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "torn_tail");
  }
  set_int(L, "skipped_lines", (int64_t)r.skipped_lines);
  lua_pushboolean(L, r.renumbered != 0);
  lua_setfield(L, -2, "renumbered");
  return 2;
}

/* _console(on): the console exporter (vmtrace.otlp.start{exporter =
 * "console"}) on or off: each finished span of a sampled trace as one line
 * on stderr. Turning it on again keeps the one running. */
static int l_console(lua_State *L) {
  lvt *S = STATE(L);
  int on = lua_toboolean(L, 1);
  if (on && !S->console) {
    if (!(S->console = vt_console_open(S->c, 2))) return status_error(L, "otlp.start", VT_ENOMEM);
  } else if (!on && S->console) {
    vt_console_close(S->console);
    S->console = NULL;
  }
  return 0;
}
