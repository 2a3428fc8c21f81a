/*
 * usage.c: LLM usage, the one rule by which tokens, cost and model are read
 * from a span's metadata (the seed's LlmCallUsage keys), and the running
 * totals the collector keeps as llm_call spans finish (and as the metadata
 * of a finished one changes: its old usage out, the new in). Every reader of usage
 * (llm_totals, the profile, folded weights, OTLP's GenAI attributes, the
 * HTML report) calls vt_usage_read; the totals survive take_spans and
 * max_spans, and reset clears them.
 */
#include <string.h>

#include "core.h"

/* Distinct models kept in the totals; calls of further models are counted
 * under OTHER_MODELS. */
#define MAX_MODELS 1024
#define OTHER_MODELS "(other models)"

static int64_t tokens(const vt_value *m, const char *k) {
  int64_t v = 0;
  return vt_value_is_int(vt_value_get(m, k, strlen(k)), &v) && v > 0 ? v : 0;
}

static const char *str(const vt_value *m, const char *k, size_t *len) {
  const vt_value *v = vt_value_get(m, k, strlen(k));
  if (v && vt_value_type(v) == VT_STR) return vt_value_str(v, len);
  *len = 0;
  return "";
}

void vt_usage_read(const vt_value *m, vt_usage *u) {
  const vt_value *cost = vt_value_get(m, "cost_usd", 8);
  u->input = tokens(m, "input_tokens");
  u->output = tokens(m, "output_tokens");
  u->cache_read = tokens(m, "cache_read_tokens");
  u->cache_write = tokens(m, "cache_write_tokens");
  u->priced = cost && (vt_value_type(cost) == VT_NUM || vt_value_type(cost) == VT_INT);
  u->cost_usd = u->priced ? vt_value_num(cost) : 0.0;
  u->model = str(m, "model", &u->model_len);
  u->provider = str(m, "provider", &u->provider_len);
}

int64_t vt_usage_tokens(const vt_usage *u) {
  return vt_sat_add(vt_sat_add(vt_sat_add(u->input, u->output), u->cache_read), u->cache_write);
}

void vt_usage_write(const vt_usage *u, vt_vb *b) {
  vt_vb_key(b, "model", 5);
  vt_vb_str(b, u->model, u->model_len);
  vt_vb_key(b, "provider", 8);
  vt_vb_str(b, u->provider, u->provider_len);
  vt_vb_key(b, "input_tokens", 12);
  vt_vb_int(b, u->input);
  vt_vb_key(b, "output_tokens", 13);
  vt_vb_int(b, u->output);
  vt_vb_key(b, "cache_read_tokens", 17);
  vt_vb_int(b, u->cache_read);
  vt_vb_key(b, "cache_write_tokens", 18);
  vt_vb_int(b, u->cache_write);
  if (u->priced) {
    vt_vb_key(b, "cost_usd", 8);
    vt_vb_num(b, u->cost_usd);
  }
}

/* The token totals stop at INT64_MAX ("at least that many"); one that got
 * there stays there, as a count taken off it would no longer be exact. */
static void add(vt_llm_totals *t, const vt_usage *u) {
  t->calls++;
  t->input = vt_sat_add(t->input, u->input);
  t->output = vt_sat_add(t->output, u->output);
  t->cache_read = vt_sat_add(t->cache_read, u->cache_read);
  t->cache_write = vt_sat_add(t->cache_write, u->cache_write);
  if (u->priced) t->cost_usd += u->cost_usd;
  else t->unpriced++;
}

static void sub(vt_llm_totals *t, const vt_usage *u) {
  t->calls--;
  if (t->input != INT64_MAX) t->input -= u->input;
  if (t->output != INT64_MAX) t->output -= u->output;
  if (t->cache_read != INT64_MAX) t->cache_read -= u->cache_read;
  if (t->cache_write != INT64_MAX) t->cache_write -= u->cache_write;
  if (u->priced) t->cost_usd -= u->cost_usd;
  else t->unpriced--;
}

static uint32_t hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  while (n--) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

static long model_scan(const vt_collector *c, const char *name, size_t len) {
  uint32_t h = hash(name, len);
  size_t i;
  for (i = 0; i < c->nmodels; i++) { /* few models: a scan by hash */
    const vt_model_totals *m = &c->models[i];
    if (m->hash == h && m->len == len && memcmp(m->model, name, len) == 0) return (long)i;
  }
  return -1;
}

/* Where a model's calls are counted: its own totals, else (once the table
 * is full) OTHER_MODELS'; -1 when none is there yet. */
static long model_find(const vt_collector *c, const char *name, size_t len) {
  long i = model_scan(c, name, len);
  if (i < 0 && c->nmodels >= MAX_MODELS) i = model_scan(c, OTHER_MODELS, strlen(OTHER_MODELS));
  return i;
}

/* The totals of a model, added when new; NULL when out of memory. */
static vt_llm_totals *model_totals(vt_collector *c, const char *name, size_t len) {
  long i = model_find(c, name, len);
  vt_model_totals *m;
  if (i >= 0) return &c->models[i].t;
  if (c->nmodels >= MAX_MODELS) {
    name = OTHER_MODELS;
    len = strlen(OTHER_MODELS);
  }
  if (!vt_grow((void **)&c->models, &c->capmodels, c->nmodels + 1, sizeof *c->models))
    return NULL;
  m = &c->models[c->nmodels];
  if (!(m->model = vt_memdup(name, len))) return NULL;
  m->len = len;
  m->hash = hash(name, len);
  memset(&m->t, 0, sizeof m->t);
  c->nmodels++;
  return &m->t;
}

void vt_llm_count(vt_collector *c, const vt_value *metadata) {
  vt_usage u;
  vt_llm_totals *t;
  vt_usage_read(metadata, &u);
  add(&c->llm, &u);
  t = model_totals(c, u.model, u.model_len);
  if (t) add(t, &u);
}

void vt_llm_before(const vt_collector *c, const vt_value *metadata, vt_llm_was *w) {
  vt_usage_read(metadata, &w->u);
  w->model = model_find(c, w->u.model, w->u.model_len);
}

void vt_llm_after(vt_collector *c, const vt_llm_was *w, const vt_value *metadata) {
  vt_usage now;
  const vt_usage *was = &w->u; /* its numbers only: its strings may have moved */
  vt_usage_read(metadata, &now);
  if (now.input == was->input && now.output == was->output && now.cache_read == was->cache_read &&
      now.cache_write == was->cache_write && now.priced == was->priced &&
      now.cost_usd == was->cost_usd && model_find(c, now.model, now.model_len) == w->model)
    return; /* the usage did not change: no arithmetic on the cost */
  sub(&c->llm, was);
  if (w->model >= 0) sub(&c->models[w->model].t, was);
  vt_llm_count(c, metadata);
}

void vt_llm_clear(vt_collector *c) {
  size_t i;
  for (i = 0; i < c->nmodels; i++) vt_free(c->models[i].model);
  c->nmodels = 0;
  memset(&c->llm, 0, sizeof c->llm);
}

void vt_collector_llm_totals(const vt_collector *c, vt_llm_totals *out) { *out = c->llm; }

size_t vt_collector_llm_models(const vt_collector *c) { return c->nmodels; }

int vt_collector_llm_model(const vt_collector *c, size_t i, const char **model, size_t *len,
                           vt_llm_totals *out) {
  if (i >= c->nmodels) return VT_ENOTFOUND;
  *model = c->models[i].model;
  *len = c->models[i].len;
  *out = c->models[i].t;
  return VT_OK;
}
