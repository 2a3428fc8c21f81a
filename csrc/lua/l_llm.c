/*
 * l_llm.c: LLM usage and provider responses on llm_call spans, the running
 * totals, and the price catalog of this state (vmtrace.pricing is its Lua
 * face). What usage means is the core's rule (vt_usage_read, vt_price_cost,
 * vt_response_read); this file checks what a script hands in and refuses
 * what would be recorded wrong. (Part of the binding unit.)
 */

#define TOKENS_MAX ((lua_Integer)1 << 53)

static const char *const usage_keys[] = {"model", "provider", "input_tokens", "output_tokens",
                                         "cache_read_tokens", "cache_write_tokens", "cost_usd",
                                         NULL};

/* A token count at the top of the stack: an integer (or an integral float)
 * from 0 to 2^53; nil is 0. */
static int64_t check_tokens(lua_State *L, const char *fn, int arg, const char *k) {
  lua_Integer n = 0;
  int t = lua_type(L, -1);
  if (t == LUA_TNIL) return 0;
  if (t != LUA_TNUMBER)
    arg_error(L, fn, arg, "usage.%s must be an integer, got %s", k, lua_typename(L, t));
  if (lua_isinteger(L, -1)) n = lua_tointeger(L, -1);
  else {
    lua_Number d = lua_tonumber(L, -1);
    char shown[40]; /* every digit: 2^53 + 2 must not read as 2^53 */
    snprintf(shown, sizeof shown, "%.17g", (double)d);
    if (!(d == d) || d != floor(d))
      arg_error(L, fn, arg, "usage.%s must be an integer, got %s", k, shown);
    if (d > (lua_Number)TOKENS_MAX || d < 0)
      arg_error(L, fn, arg, "usage.%s must be from 0 to 2^53, got %s", k, shown);
    n = (lua_Integer)d;
  }
  if (n < 0 || n > TOKENS_MAX)
    arg_error(L, fn, arg, "usage.%s must be from 0 to 2^53, got %I", k, (LUAI_UACINT)n);
  return (int64_t)n;
}

/* Build the usage metadata (an object) into S->vb from the table at idx.
 * The cost is the given cost_usd, else priced from the catalog, else left
 * out (an unpriced call). */
static const vt_value *usage_value(lua_State *L, lvt *S, const char *fn, int arg, int idx) {
  vt_usage u;
  int k;
  const char *model = "", *provider = "";
  size_t mlen = 0, plen = 0;
  const vt_price *price;
  int have_cost = 0;
  double cost = 0;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TTABLE) type_error(L, fn, arg, "table");
  lua_pushnil(L);
  while (lua_next(L, idx)) { /* a key that is not the seed's is a mistake */
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    for (k = 0; key && usage_keys[k]; k++)
      if (strcmp(key, usage_keys[k]) == 0) break;
    if (!key || !usage_keys[k]) {
      const char *hint = "";
      if (key && (!strcmp(key, "prompt_tokens") || !strcmp(key, "completion_tokens") ||
                  !strcmp(key, "total_tokens") || !strcmp(key, "usage") ||
                  !strcmp(key, "promptTokenCount") || !strcmp(key, "cache_creation_input_tokens") ||
                  !strcmp(key, "cache_read_input_tokens")))
        hint = "; for a provider's response body use vmtrace.llm_response";
      arg_error(L, fn, arg, "unknown usage key '%s' (expected model, provider, input_tokens, "
                "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd%s)",
                key ? key : luaL_typename(L, -2), hint);
    }
    lua_pop(L, 1);
  }
  memset(&u, 0, sizeof u);
  if (lua_getfield(L, idx, "model") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, fn, arg, "usage.model: string expected, got %s", luaL_typename(L, -1));
    model = lua_tolstring(L, -1, &mlen);
  }
  if (lua_getfield(L, idx, "provider") != LUA_TNIL) {
    if (lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, fn, arg, "usage.provider: string expected, got %s", luaL_typename(L, -1));
    provider = lua_tolstring(L, -1, &plen);
  }
  lua_getfield(L, idx, "input_tokens");
  u.input = check_tokens(L, fn, arg, "input_tokens");
  lua_getfield(L, idx, "output_tokens");
  u.output = check_tokens(L, fn, arg, "output_tokens");
  lua_getfield(L, idx, "cache_read_tokens");
  u.cache_read = check_tokens(L, fn, arg, "cache_read_tokens");
  lua_getfield(L, idx, "cache_write_tokens");
  u.cache_write = check_tokens(L, fn, arg, "cache_write_tokens");
  lua_pop(L, 4);
  if (lua_getfield(L, idx, "cost_usd") != LUA_TNIL) {
    lua_Number d;
    if (lua_type(L, -1) != LUA_TNUMBER)
      arg_error(L, fn, arg, "usage.cost_usd must be a number, got %s", luaL_typename(L, -1));
    d = lua_tonumber(L, -1);
    if (!(d >= 0 && d < 1e300))
      arg_error(L, fn, arg, "usage.cost_usd must be a finite number >= 0, got %s", lua_tostring(L, -1));
    cost = (double)d;
    have_cost = 1;
  }
  lua_pop(L, 1);
  if (!have_cost && (price = vt_prices_find(S->prices, provider, plen, model, mlen, NULL)) != NULL) {
    cost = vt_price_cost(price, &u);
    have_cost = 1;
  }
  u.model = model;
  u.model_len = mlen;
  u.provider = provider;
  u.provider_len = plen;
  u.cost_usd = cost;
  u.priced = have_cost;
  vt_vb_reset(&S->vb);
  vt_vb_obj(&S->vb);
  vt_usage_write(&u, &S->vb);
  vt_vb_end(&S->vb);
  lua_pop(L, 2); /* model, provider */
  return vt_vb_value(&S->vb);
}

/* The llm_call span id at arg (raising for a span of another kind); 0 when
 * it is not open. */
static vt_id check_llm_span(lua_State *L, lvt *S, const char *fn, int arg) {
  vt_id id = check_id(L, fn, arg);
  vt_span_view v;
  if (vt_collector_get(S->c, id, &v) != VT_OK || !v.open) return 0;
  if (v.kind != VT_LLM_CALL)
    arg_error(L, fn, arg, "span %I is a %s span; usage goes on llm_call spans", (LUAI_UACINT)id,
              vt_kind_name((int)v.kind));
  return id;
}

/* llm_usage(id, usage): token and cost attribution on an open llm_call span;
 * true when the span took it (false when it is not open). */
static int l_llm_usage(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "llm_usage", 1);
  const vt_value *u = usage_value(L, S, "llm_usage", 2, 2);
  int rc;
  id = check_llm_span(L, S, "llm_usage", 1); /* the usage first: its errors are the likelier */
  if (!id) {
    lua_pushboolean(L, 0);
    return 1;
  }
  if (!u) return status_error(L, "llm_usage", VT_ENOMEM);
  rc = vt_collector_merge_metadata(S->c, id, u);
  if (rc == VT_ENOMEM) return status_error(L, "llm_usage", rc);
  if (rc == VT_ELIMIT)
    return arg_error(L, "llm_usage", 1, "span %I would have more than %d metadata keys",
                     (LUAI_UACINT)id, VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

/* llm_response(id, provider, response): the decoded response body of a
 * provider's API, normalized by the core (vt_response_read) and recorded on
 * an open llm_call span: model, provider, response_id, finish_reasons, the
 * four token counts and cost_usd (from the catalog; absent when unpriced).
 * The body is checked whether or not the span is open; true when the span
 * took it, false when it is not open. */
static int l_llm_response(lua_State *L) {
  lvt *S = STATE(L);
  vt_id id = check_id(L, "llm_response", 1);
  size_t plen;
  const char *provider = check_str(L, "llm_response", 2, &plen);
  const vt_value *body;
  vt_response r;
  int rc;
  if (vt_response_read(NULL, provider, plen, &r) != VT_OK && !r.usage.provider)
    arg_error(L, "llm_response", 2, "%s", r.error); /* an unknown provider */
  if (lua_type(L, 3) != LUA_TTABLE)
    arg_error(L, "llm_response", 3, "the decoded response body (a table) expected, got %s",
              luaL_typename(L, 3));
  body = check_value(L, &S->vb2, "llm_response", 3, 3, 1, "response: ");
  if (vt_response_read(body, provider, plen, &r) != VT_OK)
    arg_error(L, "llm_response", 3, "%s", r.error);
  vt_response_price(&r, S->prices);
  vt_vb_reset(&S->vb);
  vt_response_metadata(&r, &S->vb);
  if (!vt_vb_value(&S->vb)) return status_error(L, "llm_response", VT_ENOMEM);
  if (!(id = check_llm_span(L, S, "llm_response", 1))) {
    lua_pushboolean(L, 0);
    return 1;
  }
  rc = vt_collector_merge_metadata(S->c, id, vt_vb_value(&S->vb));
  if (rc == VT_ENOMEM) return status_error(L, "llm_response", rc);
  if (rc == VT_ELIMIT)
    return arg_error(L, "llm_response", 1, "span %I would have more than %d metadata keys",
                     (LUAI_UACINT)id, VT_MAX_KEYS);
  lua_pushboolean(L, rc == VT_OK);
  return 1;
}

static void push_totals(lua_State *L, const vt_llm_totals *t) {
  lua_createtable(L, 0, 8);
  set_int(L, "calls", (int64_t)t->calls);
  set_int(L, "input_tokens", t->input);
  set_int(L, "output_tokens", t->output);
  set_int(L, "cache_read_tokens", t->cache_read);
  set_int(L, "cache_write_tokens", t->cache_write);
  lua_pushnumber(L, (lua_Number)t->cost_usd);
  lua_setfield(L, -2, "cost_usd");
  set_int(L, "unpriced", (int64_t)t->unpriced);
}

/* llm_totals(): the core's running totals of the finished llm_call spans. */
static int l_llm_totals(lua_State *L) {
  lvt *S = STATE(L);
  vt_llm_totals t;
  size_t i, n = vt_collector_llm_models(S->c);
  DELIVER(L, S);
  reading_begin(L, S); /* the model names are the core's */
  n = vt_collector_llm_models(S->c);
  vt_collector_llm_totals(S->c, &t);
  push_totals(L, &t);
  lua_createtable(L, 0, (int)n);
  for (i = 0; i < n; i++) {
    const char *m;
    size_t ml;
    vt_collector_llm_model(S->c, i, &m, &ml, &t);
    lua_pushlstring(L, m, ml);
    push_totals(L, &t);
    lua_rawset(L, -3);
  }
  lua_setfield(L, -2, "by_model");
  reading_end(L, S);
  return 1;
}

/* ---- the price catalog (vmtrace.pricing) ----------------------------------------- */

/* _price_set(provider, model, {input=, output=, cache_read=, cache_write=},
 * fn [, check_only]): errors as fn's; with check_only nothing is set. */
static int l_price_set(lua_State *L) {
  lvt *S = STATE(L);
  const char *fn = luaL_optstring(L, 4, "pricing.set");
  size_t plen, mlen;
  const char *provider = check_str(L, fn, 1, &plen), *model = check_str(L, fn, 2, &mlen);
  static const char *const fields[] = {"input", "output", "cache_read", "cache_write"};
  double v[4];
  vt_price p;
  int i;
  if (lua_type(L, 3) != LUA_TTABLE)
    arg_error(L, fn, 3, "prices must be a table, got %s", type_of(L, 3));
  for (i = 0; i < 4; i++) {
    lua_getfield(L, 3, fields[i]);
    if (lua_isnil(L, -1)) v[i] = 0;
    else if (lua_type(L, -1) != LUA_TNUMBER || !(lua_tonumber(L, -1) >= 0) ||
             !(lua_tonumber(L, -1) < 1e300))
      arg_error(L, fn, 3, "%s must be a non-negative number, got %s", fields[i],
                lua_type(L, -1) == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
    else v[i] = (double)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  p.input = v[0];
  p.output = v[1];
  p.cache_read = v[2];
  p.cache_write = v[3];
  if (lua_toboolean(L, 5)) return 0;
  if (vt_prices_set(S->prices, provider, plen, model, mlen, &p) != VT_OK)
    return status_error(L, fn, VT_ENOMEM);
  return 0;
}

static void push_price(lua_State *L, const vt_price *p) {
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, p->input);
  lua_setfield(L, -2, "input");
  lua_pushnumber(L, p->output);
  lua_setfield(L, -2, "output");
  lua_pushnumber(L, p->cache_read);
  lua_setfield(L, -2, "cache_read");
  lua_pushnumber(L, p->cache_write);
  lua_setfield(L, -2, "cache_write");
}

/* _price_get(provider, model): the prices and the catalog model matched. */
static int l_price_get(lua_State *L) {
  lvt *S = STATE(L);
  size_t plen = 0, mlen;
  const char *provider = opt_str(L, "pricing.get", 1, &plen);
  const char *model = check_str(L, "pricing.get", 2, &mlen), *matched;
  const vt_price *p = vt_prices_find(S->prices, provider ? provider : "", plen, model, mlen, &matched);
  if (!p) return 0;
  push_price(L, p);
  lua_pushstring(L, matched);
  return 2;
}

static int l_price_clear(lua_State *L) {
  vt_prices_clear(STATE(L)->prices);
  return 0;
}

/* _cost(usage): the cost of a usage table under the catalog, or nil. */
static int l_cost(lua_State *L) {
  lvt *S = STATE(L);
  const vt_value *v = usage_value(L, S, "pricing.cost", 1, 1);
  const vt_value *c = vt_value_get(v, "cost_usd", 8);
  if (!c) return 0;
  lua_pushnumber(L, (lua_Number)vt_value_num(c));
  return 1;
}
