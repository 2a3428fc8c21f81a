/*
 * l_otlp_http.c: luaopen_vmtrace_otlp_http, the Lua face of the OTLP/HTTP
 * exporter (csrc/otlp_http). A module of its own, loaded by vmtrace.otlp on
 * the first start, so that vmtrace.core links no HTTP library. It finds the
 * state's collector and the core's function table in the registry (put there
 * by vmtrace.core), reads the OpenTelemetry environment variables and the
 * options (an option wins over the environment, which wins over the defaults
 * of vt_otlp_defaults), and keeps one exporter per state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "lua.h"

#include "core/util.h"
#include "io/file.h"
#include "otel/env.h"
#include "otlp_http/exporter.h"

#define EXPORT __attribute__((visibility("default")))
#define MT "vmtrace.OtlpExporter"

#include "l_check.c"

typedef struct box {
  vt_otlp *x;
} box;

#define BOX(L) ((box *)lua_touserdata(L, lua_upvalueindex(1)))

static int l_box_gc(lua_State *L) {
  box *b = luaL_checkudata(L, 1, MT);
  vt_otlp_shutdown(b->x, vt_otlp_defaults.close_ms); /* what is queued goes out */
  b->x = NULL;
  return 0;
}

/* An integer of the environment, or def; an error naming the variable. */
static long env_int(lua_State *L, const char *name, long def) {
  const char *v = vt_env(name);
  char *end;
  long long n;
  if (!v) return def;
  n = strtoll(v, &end, 10);
  while (*end == ' ') end++;
  if (end == v || *end || n < 0 || n > 2147483647)
    luaL_error(L, "vmtrace.otlp.start: the environment variable %s must be an integer >= 0, got \"%s\"",
               name, v);
  return (long)n;
}

/* Option k of the table at 1 (an integer from lo), else the first of the
 * environment variables set, else def. */
static long setting(lua_State *L, const char *k, const char *env1, const char *env2, long lo,
                    long def) {
  long v = def;
  if (env2) v = env_int(L, env2, v);
  if (env1) v = env_int(L, env1, v);
  return (long)opt_int(L, "otlp.start", 1, k, v, lo, 2147483647);
}

/* merged[lower(name)] = {name, value at vidx} */
static void add_header(lua_State *L, int merged, const char *k, size_t kl, int vidx) {
  luaL_Buffer lb;
  size_t i;
  vidx = lua_absindex(L, vidx);
  luaL_buffinit(L, &lb);
  for (i = 0; i < kl; i++)
    luaL_addchar(&lb, (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]));
  luaL_pushresult(&lb);
  lua_createtable(L, 2, 0);
  lua_pushlstring(L, k, kl);
  lua_rawseti(L, -2, 1);
  lua_pushvalue(L, vidx);
  lua_rawseti(L, -2, 2);
  lua_rawset(L, merged);
}

static int token_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch && strchr("!#$%&'*+.^_`|~-", ch));
}

/* The headers: OTEL_EXPORTER_OTLP_HEADERS, then ..._TRACES_HEADERS, then
 * opts.headers; names merge case-insensitively (the later wins). A header's
 * value is a secret: errors name the header, never the value. Leaves an
 * array of "Name: value" strings on the stack. */
static void push_headers(lua_State *L) {
  static const char *const vars[2] = {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"};
  int merged, i, t;
  lua_Integer n = 0;
  lua_newtable(L);
  merged = lua_gettop(L);
  for (i = 0; i < 2; i++) {
    vt_vb b;
    const vt_value *obj, *v;
    vt_iter it;
    const char *k, *s;
    size_t kl, sl;
    vt_vb_init(&b);
    vt_vb_obj(&b);
    vt_env_pairs(&b, vt_env(vars[i]));
    vt_vb_end(&b);
    if ((obj = vt_vb_value(&b)) != NULL) {
      vt_value_iter(obj, &it);
      while ((v = vt_iter_next(&it, &k, &kl)) != NULL) {
        s = vt_value_str(v, &sl);
        lua_pushlstring(L, s, sl);
        add_header(L, merged, k, kl, -1);
        lua_pop(L, 1);
      }
    }
    vt_vb_free(&b);
  }
  t = lua_getfield(L, 1, "headers");
  if (t == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) != LUA_TSTRING)
        arg_error(L, "otlp.start", 1, "header name %s is not a string", luaL_typename(L, -2));
      {
        size_t kl;
        const char *k = lua_tolstring(L, -2, &kl);
        add_header(L, merged, k, kl, -1);
      }
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    arg_error(L, "otlp.start", 1, "opts.headers must be a table, got %s", lua_typename(L, t));
  }
  lua_pop(L, 1);
  lua_newtable(L); /* merged, list */
  lua_pushnil(L);
  while (lua_next(L, merged)) { /* lower, {name, value} */
    size_t kl, vl, j;
    const char *k, *v;
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    k = lua_tolstring(L, -2, &kl);
    for (j = 0; j < kl && token_char(k[j]); j++) {
    }
    if (!kl || j < kl)
      arg_error(L, "otlp.start", 1, "header name \"%s\" is not a valid HTTP field name", k);
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, "otlp.start", 1, "header %s must have a one-line string value", k);
    v = lua_tolstring(L, -1, &vl);
    for (j = 0; j < vl; j++)
      if (v[j] == '\r' || v[j] == '\n' || v[j] == '\0')
        arg_error(L, "otlp.start", 1, "header %s must have a one-line string value", k);
    lua_pushfstring(L, "%s: %s", k, v);
    lua_rawseti(L, merged + 1, ++n);
    lua_pop(L, 3);
  }
  lua_remove(L, merged);
}

/* start([opts]): export every finished span from now on. opts (all
 * optional): endpoint, headers = {name = value}, service_name, resource =
 * {k = v}, timeout_ms, compression = "gzip" | "none", sampler, sampler_arg,
 * batch_size, max_queue, max_queue_bytes, delay_ms, max_retry_ms,
 * backoff_ms, close_ms. Returns true, or nil and a message. An exporter
 * already running stops taking spans and delivers what it has in the
 * background. */
static int l_start(lua_State *L) {
  static const char *const known[] = {
      "endpoint", "headers",   "service_name", "resource",        "timeout_ms",
      "compression", "sampler", "sampler_arg", "batch_size",      "max_queue",
      "max_queue_bytes", "delay_ms", "max_retry_ms", "backoff_ms", "close_ms",
      "attribute_count_limit", "attribute_value_length_limit", "event_count_limit",
      "link_count_limit", NULL};
  box *b = BOX(L);
  vt_otlp_config cfg = vt_otlp_defaults;
  const vt_api *api;
  vt_collector *c;
  const char *endpoint, *compression, *sampler_s, *bad = NULL;
  char url[2048], err[256], svc[256];
  const char **headers;
  size_t nh, i;
  vt_limits limits;
  unsigned limits_mask;
  int sampler;
  double ratio = 1.0;
  vt_vb rb;
  vt_otlp *x;
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  check_opts(L, "otlp.start", 1, known);
  lua_settop(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "vmtrace.api");
  lua_getfield(L, LUA_REGISTRYINDEX, "vmtrace.collector");
  api = lua_touserdata(L, -2);
  c = lua_touserdata(L, -1);
  lua_pop(L, 2);
  if (!api || !c || api->version != VT_API_VERSION)
    return luaL_error(L, "vmtrace.otlp.start: require \"vmtrace\" first (no collector in this state)");
  /* the endpoint */
  if (lua_getfield(L, 1, "endpoint") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, "otlp.start", 1, "opts.endpoint must be a URL string, got %s", luaL_typename(L, -1));
    endpoint = lua_tostring(L, -1);
  } else if ((endpoint = vt_env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) == NULL) {
    const char *base = vt_env("OTEL_EXPORTER_OTLP_ENDPOINT");
    size_t n;
    if (!base) base = "http://localhost:4318";
    n = strlen(base);
    while (n && base[n - 1] == '/') n--;
    snprintf(url, sizeof url, "%.*s/v1/traces", (int)n, base);
    endpoint = url;
  }
  lua_pop(L, 1);
  cfg.endpoint = endpoint;
  /* numbers */
  cfg.timeout_ms = setting(L, "timeout_ms", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                           "OTEL_EXPORTER_OTLP_TIMEOUT", 1, vt_otlp_defaults.timeout_ms);
  cfg.max_retry_ms = setting(L, "max_retry_ms", "OTEL_BSP_EXPORT_TIMEOUT", NULL, 0,
                             vt_otlp_defaults.max_retry_ms);
  cfg.delay_ms = setting(L, "delay_ms", "OTEL_BSP_SCHEDULE_DELAY", NULL, 1, vt_otlp_defaults.delay_ms);
  cfg.backoff_ms = setting(L, "backoff_ms", NULL, NULL, 1, vt_otlp_defaults.backoff_ms);
  cfg.batch_size = setting(L, "batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", NULL, 1,
                           vt_otlp_defaults.batch_size);
  cfg.max_queue = setting(L, "max_queue", "OTEL_BSP_MAX_QUEUE_SIZE", NULL, 1, vt_otlp_defaults.max_queue);
  cfg.close_ms = setting(L, "close_ms", NULL, NULL, 0, vt_otlp_defaults.close_ms);
  cfg.max_queue_bytes = (long long)opt_int(L, "otlp.start", 1, "max_queue_bytes",
                                           (lua_Integer)vt_otlp_defaults.max_queue_bytes, 1024,
                                           (lua_Integer)1 << 40);
  memset(&limits, 0, sizeof limits);
  limits_mask = opt_limits(L, "otlp.start", 1, &limits);
  /* compression */
  if (lua_getfield(L, 1, "compression") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, "otlp.start", 1, "compression must be \"gzip\" or \"none\", got %s", luaL_typename(L, -1));
    compression = lua_tostring(L, -1);
  } else if (!(compression = vt_env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")) &&
             !(compression = vt_env("OTEL_EXPORTER_OTLP_COMPRESSION"))) {
    compression = "none";
  }
  if (strcmp(compression, "gzip") && strcmp(compression, "none"))
    arg_error(L, "otlp.start", 1, "compression must be \"gzip\" or \"none\", got \"%s\"", compression);
  cfg.gzip = strcmp(compression, "gzip") == 0;
  lua_pop(L, 1);
  /* the sampler */
  if (lua_getfield(L, 1, "sampler") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING) arg_error(L, "otlp.start", 1, "the sampler must be a string");
    sampler_s = lua_tostring(L, -1);
  } else if (!(sampler_s = vt_env("OTEL_TRACES_SAMPLER"))) {
    sampler_s = "parentbased_always_on";
  }
  sampler = vt_sampler_parse(sampler_s, strlen(sampler_s));
  if (sampler < 0)
    arg_error(L, "otlp.start", 1, "unknown sampler '%s' (expected always_on, always_off, traceidratio, "
              "parentbased_always_on, parentbased_always_off, parentbased_traceidratio)", sampler_s);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "sampler_arg") != LUA_TNIL || vt_env("OTEL_TRACES_SAMPLER_ARG")) {
    int ok;
    if (lua_isnil(L, -1)) lua_pushstring(L, vt_env("OTEL_TRACES_SAMPLER_ARG"));
    ratio = (double)lua_tonumberx(L, -1, &ok);
    if (!ok || !(ratio >= 0 && ratio <= 1))
      arg_error(L, "otlp.start", 1, "the sampler argument must be a number from 0 to 1");
  }
  lua_settop(L, 1);
  /* the service and resource */
  vt_vb_init(&rb);
  if (lua_getfield(L, 1, "resource") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TTABLE)
      arg_error(L, "otlp.start", 1, "opts.resource must be a table, got %s", luaL_typename(L, -1));
  }
  if (lua_getfield(L, 1, "service_name") != LUA_TNIL && lua_type(L, -1) != LUA_TSTRING)
    arg_error(L, "otlp.start", 1, "opts.service_name must be a string, got %s", luaL_typename(L, -1));
  push_headers(L); /* 1 opts, 2 resource, 3 service_name, 4 headers */
  nh = (size_t)lua_rawlen(L, 4);
  headers = lua_newuserdatauv(L, (nh + 1) * sizeof *headers, 0);
  for (i = 0; i < nh; i++) {
    lua_rawgeti(L, 4, (lua_Integer)i + 1);
    headers[i] = lua_tostring(L, -1); /* anchored in the list */
    lua_pop(L, 1);
  }
  headers[nh] = NULL;
  cfg.headers = headers;
  { /* the resource: the environment's, then the option's (strings to JSON) */
    vt_vb ob;
    const vt_value *opt = NULL;
    vt_vb_init(&ob);
    if (lua_type(L, 2) == LUA_TTABLE) {
      lua_pushnil(L);
      vt_vb_obj(&ob);
      while (lua_next(L, 2)) {
        size_t kl, vl;
        const char *k, *v;
        if (lua_type(L, -2) != LUA_TSTRING) {
          vt_vb_free(&ob);
          arg_error(L, "otlp.start", 1, "opts.resource keys must be strings");
        }
        k = lua_tolstring(L, -2, &kl);
        vt_vb_key(&ob, k, kl);
        if (lua_type(L, -1) == LUA_TBOOLEAN) vt_vb_bool(&ob, lua_toboolean(L, -1));
        else if (lua_isinteger(L, -1)) vt_vb_int(&ob, (int64_t)lua_tointeger(L, -1));
        else if (lua_type(L, -1) == LUA_TNUMBER) vt_vb_num(&ob, (double)lua_tonumber(L, -1));
        else if (lua_type(L, -1) == LUA_TSTRING) {
          v = lua_tolstring(L, -1, &vl);
          vt_vb_str(&ob, v, vl);
        } else {
          vt_vb_free(&ob);
          arg_error(L, "otlp.start", 1, "opts.resource values must be strings, numbers or booleans");
        }
        lua_pop(L, 1);
      }
      vt_vb_end(&ob);
      opt = vt_vb_value(&ob);
    }
    vt_env_resource(&rb, opt);
    vt_vb_free(&ob);
  }
  if (!(cfg.resource = vt_vb_value(&rb))) {
    vt_vb_free(&rb);
    return status_error(L, "otlp.start", VT_ENOMEM);
  }
  cfg.service_name = vt_env_service_name(lua_tostring(L, 3), cfg.resource, svc, sizeof svc);
  /* the limits: the options (vmtrace.otlp passes configure{}'s) over the environment */
  vt_limits_resolve(&cfg.limits, &limits, limits_mask, &bad);
  if (bad) {
    vt_vb_free(&rb);
    return luaL_error(L, "vmtrace.otlp.start: the environment variable %s must be an integer >= 0", bad);
  }
  api->set_sampler(c, (vt_sampler)sampler, ratio);
  x = vt_otlp_start(api, c, &cfg, err, sizeof err);
  vt_vb_free(&rb);
  if (!x) {
    lua_pushnil(L);
    lua_pushfstring(L, "vmtrace.otlp.start: %s", err);
    return 2;
  }
  if (b->x) vt_otlp_detach(b->x); /* the old one finishes in the background */
  b->x = x;
  lua_pushboolean(L, 1);
  return 1;
}

static long check_timeout(lua_State *L, const char *fn) {
  int ok;
  lua_Integer n;
  if (lua_isnoneornil(L, 1)) return 30000;
  n = lua_tointegerx(L, 1, &ok);
  if (!ok || lua_type(L, 1) != LUA_TNUMBER || n < 0)
    type_error(L, fn, 1, "timeout in milliseconds (integer >= 0)");
  return n > 3600000 ? 3600000 : (long)n;
}

/* flush([timeout_ms]): true when what was queued went out in time (false when
 * a batch failed or time ran out). */
static int l_flush(lua_State *L) {
  box *b = BOX(L);
  long t = check_timeout(L, "otlp.flush");
  lua_pushboolean(L, b->x ? vt_otlp_flush(b->x, t) : 1);
  return 1;
}

static int l_shutdown(lua_State *L) {
  box *b = BOX(L);
  long t = check_timeout(L, "otlp.shutdown");
  int done = vt_otlp_shutdown(b->x, t);
  b->x = NULL;
  lua_pushboolean(L, done);
  return 1;
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

static int l_stats(lua_State *L) {
  box *b = BOX(L);
  vt_otlp_stats st;
  if (!b->x) return 0;
  vt_otlp_stats_get(b->x, &st);
  lua_createtable(L, 0, 9);
  set_int(L, "queued", st.queued);
  set_int(L, "queued_bytes", st.queued_bytes);
  set_int(L, "exported", st.exported);
  set_int(L, "dropped", st.dropped);
  set_int(L, "failed_batches", st.failed_batches);
  set_int(L, "failed_spans", st.failed_spans);
  set_int(L, "retries", st.retries);
  set_int(L, "batches", st.batches);
  if (st.last_error[0]) {
    lua_pushstring(L, st.last_error);
    lua_setfield(L, -2, "last_error");
  }
  return 1;
}

static const luaL_Reg funcs[] = {{"start", l_start},
                                 {"flush", l_flush},
                                 {"shutdown", l_shutdown},
                                 {"stats", l_stats},
                                 {NULL, NULL}};

EXPORT int luaopen_vmtrace_otlp_http(lua_State *L);
EXPORT int luaopen_vmtrace_otlp_http(lua_State *L) {
  box *b;
  luaL_checkversion(L);
  lua_newtable(L);
  if (lua_getfield(L, LUA_REGISTRYINDEX, MT ".state") != LUA_TUSERDATA) { /* one per state */
    lua_pop(L, 1);
    b = lua_newuserdatauv(L, sizeof *b, 0);
    b->x = NULL;
    luaL_newmetatable(L, MT);
    lua_pushcfunction(L, l_box_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, MT ".state");
  }
  luaL_setfuncs(L, funcs, 1);
  lua_pushliteral(L, VMTRACE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
