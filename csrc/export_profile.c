/*
 * export_profile.c: the run profile, computed in one pass over the completed
 * spans in id (start) order: wall time, time by kind, the residual of the root
 * spans not covered by any child span, the top LLM and tool calls, per-step
 * totals and LLM token and cost totals. The result is a small JSON object
 * (its size grows with steps and models, not with spans).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TOP 5

typedef struct top {
  vt_id id[TOP];
  int64_t dur[TOP];
  int n;
} top;

static void top_add(top *t, vt_id id, int64_t dur) {
  int i;
  if (t->n == TOP && dur <= t->dur[TOP - 1]) return;
  i = t->n < TOP ? t->n++ : TOP - 1;
  while (i > 0 && t->dur[i - 1] < dur) { /* keep longest first */
    t->id[i] = t->id[i - 1];
    t->dur[i] = t->dur[i - 1];
    i--;
  }
  t->id[i] = id;
  t->dur[i] = dur;
}

typedef struct step {
  vt_id id;
  int64_t llm_ns, tool_ns;
  int64_t llm_calls, tool_calls;
} step;

typedef struct root {
  int64_t start, end;         /* the root's interval */
  int64_t covered, cur_s, cur_e; /* union of its children's intervals */
} root;

static double ms(int64_t ns) { return (double)ns / 1e6; }

static int64_t meta_int(const cJSON *m, const char *k) {
  int64_t v = 0;
  return vt_json_is_int(vt_json_obj_get(m, k, strlen(k)), &v) ? v : 0;
}

static const char *const token_keys[] = {"input_tokens", "output_tokens",
                                         "cache_read_tokens", "cache_write_tokens"};

/* LLM usage totals, overall or of one model. */
typedef struct usage {
  char *model; /* NULL for the overall totals */
  int64_t calls, tokens[4];
  double cost;
} usage;

static void usage_add(usage *u, const cJSON *m) {
  const cJSON *cost = vt_json_obj_get(m, "cost_usd", 8);
  size_t i;
  u->calls++;
  for (i = 0; i < 4; i++) u->tokens[i] += meta_int(m, token_keys[i]);
  if (cJSON_IsNumber(cost)) u->cost += cost->valuedouble;
}

/* Set key k of o to v (consumed either way); 0 when out of memory. */
static int put(cJSON *o, const char *k, cJSON *v) {
  if (!o || !v) {
    cJSON_Delete(v);
    return 0;
  }
  return vt_json_obj_set(o, k, strlen(k), v) == VT_OK;
}

/* Append v (consumed either way) to the array a; 0 when out of memory. */
static int push(cJSON *a, cJSON *v) {
  if (!a || !v) {
    cJSON_Delete(v);
    return 0;
  }
  cJSON_AddItemToArray(a, v);
  return 1;
}

static cJSON *usage_json(const usage *u) {
  cJSON *o = cJSON_CreateObject();
  size_t i;
  int ok = o != NULL;
  ok = ok && put(o, "calls", vt_json_int(u->calls));
  for (i = 0; i < 4 && ok; i++) ok = put(o, token_keys[i], vt_json_int(u->tokens[i]));
  ok = ok && put(o, "cost_usd", cJSON_CreateNumber(u->cost));
  if (ok) return o;
  cJSON_Delete(o);
  return NULL;
}

/* A string of raw bytes as valid UTF-8 (U+FFFD for invalid sequences). */
static cJSON *text(const char *s, size_t len) {
  vt_buf b;
  cJSON *v;
  memset(&b, 0, sizeof b);
  vt_buf_put_text(&b, s, len, 0);
  v = b.failed ? NULL : vt_json_str(b.p ? b.p : "", b.n);
  vt_buf_free(&b);
  return v;
}

/* A stored string item as valid UTF-8. */
static cJSON *stored_text(const cJSON *item) {
  char *raw = vt_malloc(strlen(item->valuestring) + 1);
  cJSON *v;
  if (!raw) return NULL;
  v = text(raw, vt_str_decode(item->valuestring, raw));
  vt_free(raw);
  return v;
}

static cJSON *call_entry(const vt_collector *c, vt_id id) {
  vt_span_view v;
  cJSON *e = cJSON_CreateObject();
  size_t i;
  int ok = e != NULL;
  vt_collector_get(c, id, &v);
  ok = ok && put(e, "span_id", vt_json_int((int64_t)id));
  ok = ok && put(e, "name", text(v.name, v.name_len));
  ok = ok && put(e, "duration_ms", cJSON_CreateNumber(ms(v.duration_ns)));
  if (v.kind == VT_LLM_CALL) {
    const cJSON *model = vt_json_obj_get(v.metadata, "model", 5);
    const cJSON *cost = vt_json_obj_get(v.metadata, "cost_usd", 8);
    if (cJSON_IsString(model)) ok = ok && put(e, "model", stored_text(model));
    for (i = 0; i < 2; i++)
      ok = ok && put(e, token_keys[i], vt_json_int(meta_int(v.metadata, token_keys[i])));
    if (cJSON_IsNumber(cost)) ok = ok && put(e, "cost_usd", cJSON_CreateNumber(cost->valuedouble));
  } else {
    const cJSON *tool = vt_json_obj_get(v.metadata, "tool_name", 9);
    if (cJSON_IsString(tool)) ok = ok && put(e, "tool_name", stored_text(tool));
  }
  if (ok) return e;
  cJSON_Delete(e);
  return NULL;
}

cJSON *vt_collector_profile(const vt_collector *c) {
  int64_t kind_ns[VT_KIND_COUNT] = {0}, kind_n[VT_KIND_COUNT] = {0};
  int64_t first = INT64_MAX, last = INT64_MIN, residual = 0, wall;
  top llm = {{0}, {0}, 0}, tool = {{0}, {0}, 0};
  usage total = {NULL, 0, {0, 0, 0, 0}, 0}, *models = NULL;
  size_t nmodels = 0;
  step *steps = NULL;
  root *roots = NULL;
  size_t nsteps = 0, capsteps = 0, nroots = 0, caproots = 0, i;
  vt_idmap step_at, root_at;
  cJSON *out = NULL, *arr, *totals = NULL, *by_model = NULL;
  vt_id id;
  int k, ok = 1;

  memset(&step_at, 0, sizeof step_at);
  memset(&root_at, 0, sizeof root_at);
  if (!vt_idmap_init(&step_at, 16) || !vt_idmap_init(&root_at, 16)) goto fail;

  for (id = vt_next_completed(c, 0); id && ok; id = vt_next_completed(c, id)) {
    vt_span_view v;
    int64_t s, e;
    vt_collector_get(c, id, &v);
    s = v.start_unix_ns;
    e = s + v.duration_ns;
    if (s < first) first = s;
    if (e > last) last = e;
    kind_ns[v.kind] += v.duration_ns;
    kind_n[v.kind]++;
    if (v.parent == 0) { /* a root: track its children's coverage */
      if (!vt_grow((void **)&roots, &caproots, nroots + 1, sizeof *roots)) goto fail;
      roots[nroots].start = s;
      roots[nroots].end = e;
      roots[nroots].covered = 0;
      roots[nroots].cur_s = roots[nroots].cur_e = s;
      ok = vt_idmap_put(&root_at, id, (uint32_t)nroots++);
    } else {
      uint32_t r = vt_idmap_get(&root_at, v.parent);
      if (r != VT_NONE) { /* children come in start order: merge intervals */
        root *R = &roots[r];
        int64_t cs = s < R->start ? R->start : s, ce = e > R->end ? R->end : e;
        if (ce > cs) {
          if (cs > R->cur_e) {
            R->covered += R->cur_e - R->cur_s;
            R->cur_s = cs;
            R->cur_e = ce;
          } else if (ce > R->cur_e) {
            R->cur_e = ce;
          }
        }
      }
    }
    if (v.kind == VT_STEP) {
      if (!vt_grow((void **)&steps, &capsteps, nsteps + 1, sizeof *steps)) goto fail;
      memset(&steps[nsteps], 0, sizeof *steps);
      steps[nsteps].id = id;
      ok = vt_idmap_put(&step_at, id, (uint32_t)nsteps++);
    } else if (v.kind == VT_LLM_CALL || v.kind == VT_TOOL_CALL) {
      vt_id a;
      const vt_slot *p;
      top_add(v.kind == VT_LLM_CALL ? &llm : &tool, id, v.duration_ns);
      for (a = v.parent; a && (p = vt_slot_of(c, a)) != NULL; a = p->parent) {
        uint32_t si = p->kind == VT_STEP ? vt_idmap_get(&step_at, a) : VT_NONE;
        if (p->kind != VT_STEP) continue;
        if (si != VT_NONE) { /* the nearest enclosing step */
          if (v.kind == VT_LLM_CALL) {
            steps[si].llm_ns += v.duration_ns;
            steps[si].llm_calls++;
          } else {
            steps[si].tool_ns += v.duration_ns;
            steps[si].tool_calls++;
          }
        }
        break;
      }
      if (v.kind == VT_LLM_CALL) {
        const cJSON *model = vt_json_obj_get(v.metadata, "model", 5);
        cJSON *name = cJSON_IsString(model) ? stored_text(model) : vt_json_str("", 0);
        const char *mn = name ? name->valuestring : NULL; /* valid UTF-8 */
        size_t m;
        for (m = 0; mn && m < nmodels && strcmp(models[m].model, mn); m++) {
        }
        if (mn && m == nmodels) { /* a model not seen yet */
          usage *nu = vt_realloc(models, (nmodels + 1) * sizeof *nu);
          if (nu) {
            models = nu;
            memset(&models[m], 0, sizeof *models);
            if ((models[m].model = vt_malloc(strlen(mn) + 1)) != NULL) {
              strcpy(models[m].model, mn);
              nmodels++;
            }
          }
        }
        cJSON_Delete(name);
        if (m == nmodels) goto fail;
        usage_add(&total, v.metadata);
        usage_add(&models[m], v.metadata);
      }
    }
  }
  if (!ok) goto fail;
  for (i = 0; i < nroots; i++) {
    root *R = &roots[i];
    int64_t covered = R->covered + (R->cur_e - R->cur_s);
    residual += (R->end - R->start) - covered;
  }
  wall = c->ndone ? last - first : 0;

  out = cJSON_CreateObject();
  ok = out != NULL;
  ok = ok && put(out, "trace_id", cJSON_CreateString(c->trace_id));
  ok = ok && put(out, "spans", vt_json_int((int64_t)c->ndone));
  ok = ok && put(out, "dropped", vt_json_int((int64_t)c->dropped));
  ok = ok && put(out, "wall_ms", cJSON_CreateNumber(ms(wall)));
  ok = ok && put(out, "by_kind", arr = cJSON_CreateArray());
  while (ok) { /* kinds by total time, longest first */
    int best = -1;
    cJSON *e;
    for (k = 0; k < VT_KIND_COUNT; k++)
      if (kind_n[k] && (best < 0 || kind_ns[k] > kind_ns[best])) best = k;
    if (best < 0) break;
    ok = push(arr, e = cJSON_CreateObject());
    ok = ok && put(e, "kind", cJSON_CreateString(vt_kind_name(best)));
    ok = ok && put(e, "total_ms", cJSON_CreateNumber(ms(kind_ns[best])));
    ok = ok && put(e, "count", vt_json_int(kind_n[best]));
    ok = ok && put(e, "percent", cJSON_CreateNumber(
                                     wall ? 100.0 * (double)kind_ns[best] / (double)wall : 0));
    kind_n[best] = 0;
  }
  ok = ok && put(out, "residual_ms", cJSON_CreateNumber(ms(residual)));
  ok = ok && put(out, "residual_percent",
                 cJSON_CreateNumber(wall ? 100.0 * (double)residual / (double)wall : 0));
  ok = ok && put(out, "top_llm_calls", arr = cJSON_CreateArray());
  for (k = 0; k < llm.n && ok; k++) ok = push(arr, call_entry(c, llm.id[k]));
  ok = ok && put(out, "top_tool_calls", arr = cJSON_CreateArray());
  for (k = 0; k < tool.n && ok; k++) ok = push(arr, call_entry(c, tool.id[k]));
  ok = ok && put(out, "steps", arr = cJSON_CreateArray());
  for (i = 0; i < nsteps && ok; i++) {
    vt_span_view v;
    cJSON *e;
    int64_t other;
    vt_collector_get(c, steps[i].id, &v);
    other = v.duration_ns - steps[i].llm_ns - steps[i].tool_ns;
    ok = push(arr, e = cJSON_CreateObject());
    ok = ok && put(e, "span_id", vt_json_int((int64_t)steps[i].id));
    ok = ok && put(e, "name", text(v.name, v.name_len));
    ok = ok && put(e, "duration_ms", cJSON_CreateNumber(ms(v.duration_ns)));
    ok = ok && put(e, "llm_ms", cJSON_CreateNumber(ms(steps[i].llm_ns)));
    ok = ok && put(e, "llm_calls", vt_json_int(steps[i].llm_calls));
    ok = ok && put(e, "tool_ms", cJSON_CreateNumber(ms(steps[i].tool_ns)));
    ok = ok && put(e, "tool_calls", vt_json_int(steps[i].tool_calls));
    ok = ok && put(e, "other_ms", cJSON_CreateNumber(ms(other > 0 ? other : 0)));
  }
  ok = ok && put(out, "llm", totals = usage_json(&total));
  ok = ok && put(totals, "by_model", by_model = cJSON_CreateObject());
  for (i = 0; i < nmodels && ok; i++) {
    char *raw = vt_malloc(strlen(models[i].model) + 1); /* the key, unescaped */
    cJSON *u = raw ? usage_json(&models[i]) : NULL;
    ok = u && vt_json_obj_set(by_model, raw, vt_str_decode(models[i].model, raw), u) == VT_OK;
    vt_free(raw);
  }
  totals = by_model = NULL; /* owned by out now */
  if (ok) goto done;
fail:
  cJSON_Delete(out);
  out = NULL;
done:
  cJSON_Delete(totals);
  cJSON_Delete(by_model);
  vt_idmap_free(&step_at);
  vt_idmap_free(&root_at);
  vt_free(steps);
  vt_free(roots);
  for (i = 0; i < nmodels; i++) vt_free(models[i].model);
  vt_free(models);
  return out;
}
