/*
 * response.c: provider responses, the one rule by which a decoded response
 * body of an LLM API becomes vmtrace's usage record (model, response id,
 * finish reasons, tokens). Shapes: OpenAI Chat Completions and Responses
 * (provider "openai", told apart by `object` or their fields), Anthropic
 * Messages ("anthropic"), Gemini generateContent ("google" or "gemini").
 *
 * The convention (README, spec/fixtures/llm/README.md): input counts
 * uncached input only, cache reads and writes are counted apart, output
 * includes reasoning/thinking tokens. OpenAI and Gemini count cached tokens
 * inside their prompt count, so they are subtracted; Anthropic's
 * input_tokens already excludes both cache buckets. A body whose counts are
 * not token counts, or do not add up, is refused rather than recorded wrong.
 */
#include <stdio.h>
#include <string.h>

#include "vmtrace.h"

#define TOKENS_MAX ((int64_t)1 << 53)

const char *const vt_response_providers = "openai, anthropic, google, gemini";

static const vt_value *get(const vt_value *obj, const char *key) {
  if (!obj || vt_value_type(obj) != VT_OBJ) return NULL;
  return vt_value_get(obj, key, strlen(key));
}

static int fail(vt_response *r, const char *fmt, const char *a, const char *b) {
  snprintf(r->error, sizeof r->error, fmt, a ? a : "", b ? b : "");
  return VT_EINVAL;
}

static const char *type_name(const vt_value *v) {
  static const char *const names[] = {"null", "false", "true", "an integer", "a number",
                                      "a string", "an array", "an object"};
  return names[vt_value_type(v)];
}

/* The token count at obj[key] (path names it in errors) into *out: an
 * integer, or an integral number, from 0 to 2^53; absent or null is 0.
 * VT_OK, or VT_EINVAL with r->error set. */
static int count(vt_response *r, const vt_value *obj, const char *key, const char *path,
                 int64_t *out) {
  const vt_value *v = get(obj, key);
  char got[64];
  *out = 0;
  if (!v || vt_value_type(v) == VT_NULL) return VT_OK;
  if (vt_value_type(v) == VT_INT) {
    *out = vt_value_int(v);
    snprintf(got, sizeof got, ", got %lld", (long long)*out);
  } else if (vt_value_type(v) == VT_NUM) {
    double d = vt_value_num(v);
    snprintf(got, sizeof got, ", got %.17g", d);
    if (!(d >= 0 && d <= (double)TOKENS_MAX) || d != (double)(int64_t)d)
      return fail(r, "%s must be a token count (an integer from 0 to 2^53)%s", path, got);
    *out = (int64_t)d;
  } else {
    snprintf(got, sizeof got, ", got %s", type_name(v));
    return fail(r, "%s must be a token count%s", path, got);
  }
  if (*out < 0 || *out > TOKENS_MAX)
    return fail(r, "%s must be a token count (an integer from 0 to 2^53)%s", path, got);
  return VT_OK;
}

/* The string at obj[key] into *s, *len (absent or not a string: ""). */
static void string(const vt_value *obj, const char *key, const char **s, size_t *len) {
  const vt_value *v = get(obj, key);
  if (v && vt_value_type(v) == VT_STR) {
    *s = vt_value_str(v, len);
  } else {
    *s = "";
    *len = 0;
  }
}

/* total - part, refused when part is larger (the body does not add up). */
static int minus(vt_response *r, int64_t total, int64_t part, const char *tpath,
                 const char *ppath, int64_t *out) {
  if (part > total) return fail(r, "%s is larger than %s, which includes it", ppath, tpath);
  *out = total - part;
  return VT_OK;
}

/* Finish reasons: each item of `list` that has a string under `key`, or the
 * single string `one`. */
static void finish_list(vt_response *r, const vt_value *list, const char *key) {
  vt_iter it;
  const vt_value *item;
  r->finish_list = NULL;
  r->finish_key = key;
  r->finish_one = NULL;
  r->nfinish = 0;
  if (!list || (vt_value_type(list) != VT_ARR && vt_value_type(list) != VT_OBJ)) return;
  if (vt_value_type(list) == VT_OBJ && vt_value_count(list)) return; /* {} is an empty list */
  r->finish_list = list;
  vt_value_iter(list, &it);
  while ((item = vt_iter_next(&it, NULL, NULL)) != NULL) {
    const vt_value *s = get(item, key);
    if (s && vt_value_type(s) == VT_STR) r->nfinish++;
  }
}

static void finish_one(vt_response *r, const vt_value *s) {
  r->finish_list = NULL;
  r->finish_one = s && vt_value_type(s) == VT_STR ? s : NULL;
  r->nfinish = r->finish_one ? 1 : 0;
}

const char *vt_response_finish(const vt_response *r, size_t i, size_t *len) {
  vt_iter it;
  const vt_value *item;
  if (i >= r->nfinish) return NULL;
  if (r->finish_one) return vt_value_str(r->finish_one, len);
  vt_value_iter(r->finish_list, &it);
  while ((item = vt_iter_next(&it, NULL, NULL)) != NULL) {
    const vt_value *s = get(item, r->finish_key);
    if (s && vt_value_type(s) == VT_STR && i-- == 0) return vt_value_str(s, len);
  }
  return NULL;
}

/* The usage block, which every shape must have: a body without it would be
 * recorded as a free call. */
static const vt_value *usage_block(vt_response *r, const vt_value *body, const char *key,
                                   const char *api) {
  const vt_value *u = get(body, key);
  if (!u || vt_value_type(u) != VT_OBJ) {
    fail(r, "the %s body has no %s object (a streamed chunk without usage?)", api, key);
    return NULL;
  }
  return u;
}

/* A usage block must name at least one of the counts of its shape: a body
 * of another API (prompt_tokens given to the Anthropic reader) would
 * otherwise be recorded as a call of 0 tokens. */
static int names_counts(vt_response *r, const vt_value *u, const char *k1, const char *k2,
                        const char *api) {
  if (get(u, k1) || get(u, k2)) return VT_OK;
  snprintf(r->error, sizeof r->error, "the usage has neither %s nor %s: not an %s body", k1, k2,
           api);
  return VT_EINVAL;
}

/* OpenAI, both shapes: prompt (cached and written tokens inside), output. */
static int openai(vt_response *r, const vt_value *body) {
  const vt_value *obj = get(body, "object"), *u, *details;
  const char *in_key, *in_path, *cached_path, *written_path, *out_key, *out_path, *detail_key;
  int64_t prompt, cached, written, rest;
  int rc;
  size_t n = 0;
  const char *o = obj && vt_value_type(obj) == VT_STR ? vt_value_str(obj, &n) : "";
  if ((n >= 15 && memcmp(o, "chat.completion", 15) == 0) ||
      (!n && get(body, "choices") && !get(body, "output")))
    r->shape = VT_SHAPE_OPENAI_CHAT;
  else if ((n == 8 && memcmp(o, "response", 8) == 0) || (!n && get(body, "output")))
    r->shape = VT_SHAPE_OPENAI_RESPONSES;
  else if (n)
    return fail(r, "not an OpenAI Chat Completions or Responses body (object is '%.40s')%s", o,
                NULL);
  else
    return fail(r, "not an OpenAI Chat Completions or Responses body (no object, choices or "
                "output)%s%s", NULL, NULL);
  if (r->shape == VT_SHAPE_OPENAI_CHAT) {
    in_key = "prompt_tokens";
    in_path = "usage.prompt_tokens";
    detail_key = "prompt_tokens_details";
    cached_path = "usage.prompt_tokens_details.cached_tokens";
    written_path = "usage.prompt_tokens_details.cache_write_tokens";
    out_key = "completion_tokens";
    out_path = "usage.completion_tokens";
    finish_list(r, get(body, "choices"), "finish_reason");
  } else {
    const vt_value *inc = get(body, "incomplete_details"), *reason = get(inc, "reason");
    in_key = "input_tokens";
    in_path = "usage.input_tokens";
    detail_key = "input_tokens_details";
    cached_path = "usage.input_tokens_details.cached_tokens";
    written_path = "usage.input_tokens_details.cache_write_tokens";
    out_key = "output_tokens";
    out_path = "usage.output_tokens";
    /* no finish reason per output: the incomplete reason, else the status */
    finish_one(r, reason && vt_value_type(reason) == VT_STR ? reason : get(body, "status"));
  }
  if (!(u = usage_block(r, body, "usage", r->shape == VT_SHAPE_OPENAI_CHAT
                                              ? "OpenAI Chat Completions"
                                              : "OpenAI Responses")))
    return VT_EINVAL;
  if ((rc = names_counts(r, u, in_key, out_key, r->shape == VT_SHAPE_OPENAI_CHAT
                                                     ? "OpenAI Chat Completions"
                                                     : "OpenAI Responses")) != VT_OK)
    return rc;
  details = get(u, detail_key);
  if ((rc = count(r, u, in_key, in_path, &prompt)) != VT_OK ||
      (rc = count(r, details, "cached_tokens", cached_path, &cached)) != VT_OK ||
      (rc = count(r, details, "cache_write_tokens", written_path, &written)) != VT_OK ||
      (rc = count(r, u, out_key, out_path, &r->usage.output)) != VT_OK)
    return rc;
  /* the prompt count holds the cache reads and (GPT-5.6 and later) writes */
  if ((rc = minus(r, prompt, cached, in_path, cached_path, &rest)) != VT_OK ||
      (rc = minus(r, rest, written, in_path, written_path, &r->usage.input)) != VT_OK)
    return rc;
  r->usage.cache_read = cached;
  r->usage.cache_write = written;
  string(body, "model", &r->usage.model, &r->usage.model_len);
  string(body, "id", &r->response_id, &r->response_id_len);
  return VT_OK;
}

/* Anthropic Messages: input_tokens already excludes both cache buckets. */
static int anthropic(vt_response *r, const vt_value *body) {
  const vt_value *u;
  int rc;
  const vt_value *type = get(body, "type");
  size_t n = 0;
  const char *t = type && vt_value_type(type) == VT_STR ? vt_value_str(type, &n) : "";
  r->shape = VT_SHAPE_ANTHROPIC_MESSAGES;
  if ((type && !(n == 7 && memcmp(t, "message", 7) == 0)) || get(body, "object"))
    return fail(r, "not an Anthropic Messages body (its type is not 'message'%s)%s",
                get(body, "object") ? "; an OpenAI body has an object key" : "", NULL);
  if (!(u = usage_block(r, body, "usage", "Anthropic Messages"))) return VT_EINVAL;
  if ((rc = names_counts(r, u, "input_tokens", "output_tokens", "Anthropic Messages")) != VT_OK)
    return rc;
  if ((rc = count(r, u, "input_tokens", "usage.input_tokens", &r->usage.input)) != VT_OK ||
      (rc = count(r, u, "cache_read_input_tokens", "usage.cache_read_input_tokens",
                  &r->usage.cache_read)) != VT_OK ||
      (rc = count(r, u, "cache_creation_input_tokens", "usage.cache_creation_input_tokens",
                  &r->usage.cache_write)) != VT_OK ||
      (rc = count(r, u, "output_tokens", "usage.output_tokens", &r->usage.output)) != VT_OK)
    return rc;
  finish_one(r, get(body, "stop_reason"));
  string(body, "model", &r->usage.model, &r->usage.model_len);
  string(body, "id", &r->response_id, &r->response_id_len);
  return VT_OK;
}

/* Gemini generateContent: the prompt count holds the cached content; the
 * thoughts are output, apart from the candidates' tokens. */
static int gemini(vt_response *r, const vt_value *body) {
  const vt_value *u;
  int64_t prompt, cached, cand, thoughts;
  int rc;
  r->shape = VT_SHAPE_GEMINI;
  if (!(u = usage_block(r, body, "usageMetadata", "Gemini generateContent"))) return VT_EINVAL;
  if ((rc = names_counts(r, u, "promptTokenCount", "candidatesTokenCount",
                         "Gemini generateContent")) != VT_OK)
    return rc;
  if ((rc = count(r, u, "promptTokenCount", "usageMetadata.promptTokenCount", &prompt)) != VT_OK ||
      (rc = count(r, u, "cachedContentTokenCount", "usageMetadata.cachedContentTokenCount",
                  &cached)) != VT_OK ||
      (rc = count(r, u, "candidatesTokenCount", "usageMetadata.candidatesTokenCount", &cand)) !=
          VT_OK ||
      (rc = count(r, u, "thoughtsTokenCount", "usageMetadata.thoughtsTokenCount", &thoughts)) !=
          VT_OK)
    return rc;
  if ((rc = minus(r, prompt, cached, "usageMetadata.promptTokenCount",
                  "usageMetadata.cachedContentTokenCount", &r->usage.input)) != VT_OK)
    return rc;
  r->usage.cache_read = cached;
  r->usage.output = cand + thoughts;
  finish_list(r, get(body, "candidates"), "finishReason");
  string(body, "modelVersion", &r->usage.model, &r->usage.model_len);
  string(body, "responseId", &r->response_id, &r->response_id_len);
  return VT_OK;
}

static int is(const char *s, size_t n, const char *name) {
  return n == strlen(name) && memcmp(s, name, n) == 0;
}

int vt_response_read(const vt_value *body, const char *provider, size_t plen, vt_response *r) {
  memset(r, 0, sizeof *r);
  r->usage.model = r->response_id = "";
  if (is(provider, plen, "openai")) r->usage.provider = "openai";
  else if (is(provider, plen, "anthropic")) r->usage.provider = "anthropic";
  else if (is(provider, plen, "google") || is(provider, plen, "gemini")) r->usage.provider = "google";
  else {
    snprintf(r->error, sizeof r->error, "unknown provider '%.*s' (expected one of %s)",
             (int)(plen > 40 ? 40 : plen), provider, vt_response_providers);
    return VT_EINVAL;
  }
  r->usage.provider_len = strlen(r->usage.provider);
  if (!body || vt_value_type(body) != VT_OBJ)
    return fail(r, "the response must be an object (the decoded body), got %s%s",
                body ? type_name(body) : "nothing", NULL);
  if (r->usage.provider[0] == 'o') return openai(r, body);
  if (r->usage.provider[0] == 'a') return anthropic(r, body);
  return gemini(r, body);
}

void vt_response_price(vt_response *r, const vt_prices *prices) {
  const vt_price *p = prices ? vt_prices_find(prices, r->usage.provider, r->usage.provider_len,
                                              r->usage.model, r->usage.model_len, NULL)
                             : NULL;
  r->usage.priced = p != NULL;
  r->usage.cost_usd = p ? vt_price_cost(p, &r->usage) : 0.0;
}

void vt_response_metadata(const vt_response *r, vt_vb *b) {
  size_t i, n;
  const char *s;
  vt_vb_obj(b);
  vt_usage_write(&r->usage, b);
  vt_vb_key(b, "response_id", 11);
  vt_vb_str(b, r->response_id, r->response_id_len);
  vt_vb_key(b, "finish_reasons", 14);
  vt_vb_arr(b);
  for (i = 0; i < r->nfinish; i++)
    if ((s = vt_response_finish(r, i, &n)) != NULL) vt_vb_str(b, s, n);
  vt_vb_end(b);
  vt_vb_end(b);
}
