/*
 * profile.c: the run profile, computed in one pass over the completed spans
 * in id (start) order: wall time, time by kind, the residual of the root
 * spans not covered by any child span, the top LLM and tool calls and
 * per-step totals. Its LLM section is the collector's running totals (the
 * same numbers llm_totals gives). The profile is built as a value (what
 * vmtrace.profile returns) and its text (export "profile") is a rendering of
 * that value.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"

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
  int64_t start, end;            /* the root's interval */
  int64_t covered, cur_s, cur_e; /* union of its children's intervals */
} root;

static double ms(int64_t ns) { return (double)ns / 1e6; }

/* A string as valid UTF-8 (U+FFFD for invalid sequences). */
static void text_str(vt_vb *vb, const char *s, size_t len) {
  vt_buf b;
  vt_buf_init(&b);
  vt_buf_put_text(&b, s, len, 0);
  if (b.failed) vb->failed = 1;
  else vt_vb_str(vb, b.p ? b.p : "", b.n);
  vt_buf_free(&b);
}

static void key(vt_vb *b, const char *k) { vt_vb_key(b, k, strlen(k)); }

static void totals(vt_vb *b, const vt_llm_totals *t) {
  key(b, "calls");
  vt_vb_int(b, (int64_t)t->calls);
  key(b, "input_tokens");
  vt_vb_int(b, t->input);
  key(b, "output_tokens");
  vt_vb_int(b, t->output);
  key(b, "cache_read_tokens");
  vt_vb_int(b, t->cache_read);
  key(b, "cache_write_tokens");
  vt_vb_int(b, t->cache_write);
  key(b, "cost_usd");
  vt_vb_num(b, t->cost_usd);
  key(b, "unpriced");
  vt_vb_int(b, (int64_t)t->unpriced);
}

static void call_entry(vt_vb *b, const vt_collector *c, vt_id id) {
  vt_span_view v;
  vt_collector_get(c, id, &v);
  vt_vb_obj(b);
  key(b, "span_id");
  vt_vb_int(b, (int64_t)id);
  key(b, "name");
  text_str(b, v.name, v.name_len);
  key(b, "duration_ms");
  vt_vb_num(b, ms(v.duration_ns));
  if (v.kind == VT_LLM_CALL) {
    vt_usage u;
    vt_usage_read(v.metadata, &u);
    const vt_value *mv = vt_value_get(v.metadata, "model", 5);
    if (mv && vt_value_type(mv) == VT_STR) {
      key(b, "model");
      text_str(b, u.model, u.model_len);
    }
    key(b, "input_tokens");
    vt_vb_int(b, u.input);
    key(b, "output_tokens");
    vt_vb_int(b, u.output);
    if (u.priced) {
      key(b, "cost_usd");
      vt_vb_num(b, u.cost_usd);
    }
  } else {
    const vt_value *tool = vt_value_get(v.metadata, "tool_name", 9);
    if (tool && vt_value_type(tool) == VT_STR) {
      size_t n;
      const char *s = vt_value_str(tool, &n);
      key(b, "tool_name");
      text_str(b, s, n);
    }
  }
  vt_vb_end(b);
}

/* Build the profile into b; 0 when out of memory. */
static int build(const vt_collector *c, vt_vb *b) {
  int64_t kind_ns[VT_KIND_COUNT] = {0}, kind_n[VT_KIND_COUNT] = {0};
  int64_t first = INT64_MAX, last = INT64_MIN, residual = 0, wall;
  top llm = {{0}, {0}, 0}, tool = {{0}, {0}, 0};
  step *steps = NULL;
  root *roots = NULL;
  size_t nsteps = 0, capsteps = 0, nroots = 0, caproots = 0, i, n = vt_collector_count(c);
  vt_idmap step_at, root_at;
  vt_llm_totals t;
  vt_trace_info info;
  vt_id id;
  int k, ok = 1;

  vt_collector_trace_info(c, &info);
  memset(&step_at, 0, sizeof step_at);
  memset(&root_at, 0, sizeof root_at);
  if (!vt_idmap_init(&step_at, 16) || !vt_idmap_init(&root_at, 16)) ok = 0;
  for (id = vt_collector_next_completed(c, 0); id && ok; id = vt_collector_next_completed(c, id)) {
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
      if (!vt_grow((void **)&roots, &caproots, nroots + 1, sizeof *roots)) ok = 0;
      else {
        roots[nroots].start = s;
        roots[nroots].end = e;
        roots[nroots].covered = 0;
        roots[nroots].cur_s = roots[nroots].cur_e = s;
        ok = vt_idmap_put(&root_at, id, (uint32_t)nroots++);
      }
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
      if (!vt_grow((void **)&steps, &capsteps, nsteps + 1, sizeof *steps)) ok = 0;
      else {
        memset(&steps[nsteps], 0, sizeof *steps);
        steps[nsteps].id = id;
        ok = vt_idmap_put(&step_at, id, (uint32_t)nsteps++);
      }
    } else if (v.kind == VT_LLM_CALL || v.kind == VT_TOOL_CALL) {
      vt_span_view p;
      vt_id a;
      top_add(v.kind == VT_LLM_CALL ? &llm : &tool, id, v.duration_ns);
      for (a = v.parent; a && vt_collector_get(c, a, &p) == VT_OK; a = p.parent) {
        uint32_t si;
        if (p.kind != VT_STEP) continue;
        si = vt_idmap_get(&step_at, a);
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
    }
  }
  for (i = 0; i < nroots; i++) {
    root *R = &roots[i];
    residual += (R->end - R->start) - (R->covered + (R->cur_e - R->cur_s));
  }
  /* no span seen (none, or out of memory before the first): first and last
   * are still their sentinels, and last - first would overflow */
  wall = first <= last ? last - first : 0;

  vt_vb_obj(b);
  key(b, "trace_id");
  vt_vb_str(b, info.trace_id, strlen(info.trace_id));
  key(b, "spans");
  vt_vb_int(b, (int64_t)n);
  key(b, "dropped");
  vt_vb_int(b, (int64_t)info.dropped);
  key(b, "wall_ms");
  vt_vb_num(b, ms(wall));
  key(b, "by_kind");
  vt_vb_arr(b);
  for (;;) { /* kinds by total time, longest first */
    int best = -1;
    for (k = 0; k < VT_KIND_COUNT; k++)
      if (kind_n[k] && (best < 0 || kind_ns[k] > kind_ns[best])) best = k;
    if (best < 0) break;
    vt_vb_obj(b);
    key(b, "kind");
    vt_vb_str(b, vt_kind_name(best), strlen(vt_kind_name(best)));
    key(b, "total_ms");
    vt_vb_num(b, ms(kind_ns[best]));
    key(b, "count");
    vt_vb_int(b, kind_n[best]);
    key(b, "percent");
    vt_vb_num(b, wall ? 100.0 * (double)kind_ns[best] / (double)wall : 0);
    vt_vb_end(b);
    kind_n[best] = 0;
  }
  vt_vb_end(b);
  key(b, "residual_ms");
  vt_vb_num(b, ms(residual));
  key(b, "residual_percent");
  vt_vb_num(b, wall ? 100.0 * (double)residual / (double)wall : 0);
  key(b, "top_llm_calls");
  vt_vb_arr(b);
  for (k = 0; k < llm.n; k++) call_entry(b, c, llm.id[k]);
  vt_vb_end(b);
  key(b, "top_tool_calls");
  vt_vb_arr(b);
  for (k = 0; k < tool.n; k++) call_entry(b, c, tool.id[k]);
  vt_vb_end(b);
  key(b, "steps");
  vt_vb_arr(b);
  for (i = 0; i < nsteps; i++) {
    vt_span_view v;
    int64_t other;
    vt_collector_get(c, steps[i].id, &v);
    other = v.duration_ns - steps[i].llm_ns - steps[i].tool_ns;
    vt_vb_obj(b);
    key(b, "span_id");
    vt_vb_int(b, (int64_t)steps[i].id);
    key(b, "name");
    text_str(b, v.name, v.name_len);
    key(b, "duration_ms");
    vt_vb_num(b, ms(v.duration_ns));
    key(b, "llm_ms");
    vt_vb_num(b, ms(steps[i].llm_ns));
    key(b, "llm_calls");
    vt_vb_int(b, steps[i].llm_calls);
    key(b, "tool_ms");
    vt_vb_num(b, ms(steps[i].tool_ns));
    key(b, "tool_calls");
    vt_vb_int(b, steps[i].tool_calls);
    key(b, "other_ms");
    vt_vb_num(b, ms(other > 0 ? other : 0));
    vt_vb_end(b);
  }
  vt_vb_end(b);
  key(b, "llm"); /* the running totals: they survive take_spans and max_spans */
  vt_collector_llm_totals(c, &t);
  vt_vb_obj(b);
  totals(b, &t);
  key(b, "by_model");
  vt_vb_obj(b);
  for (i = 0; i < vt_collector_llm_models(c); i++) {
    const char *m;
    size_t ml;
    vt_buf kb;
    vt_collector_llm_model(c, i, &m, &ml, &t);
    vt_buf_init(&kb);
    vt_buf_put_text(&kb, m, ml, 0);
    vt_vb_key(b, kb.p ? kb.p : "", kb.n);
    if (kb.failed) b->failed = 1;
    vt_buf_free(&kb);
    vt_vb_obj(b);
    totals(b, &t);
    vt_vb_end(b);
  }
  vt_vb_end(b);
  vt_vb_end(b);
  vt_vb_end(b);
  vt_idmap_free(&step_at);
  vt_idmap_free(&root_at);
  vt_free(steps);
  vt_free(roots);
  return ok && vt_vb_value(b) != NULL;
}

vt_value *vt_collector_profile(const vt_collector *c) {
  vt_vb b;
  vt_value *v = NULL;
  vt_vb_init(&b);
  if (build(c, &b)) v = vt_value_dup(vt_vb_value(&b));
  vt_vb_free(&b);
  return v;
}

/* ---- the text ------------------------------------------------------------------ */

static const vt_value *get(const vt_value *o, const char *k) { return vt_value_get(o, k, strlen(k)); }
static double num(const vt_value *o, const char *k) {
  const vt_value *v = get(o, k);
  return v && (vt_value_type(v) == VT_NUM || vt_value_type(v) == VT_INT) ? vt_value_num(v) : 0;
}
static long long integer(const vt_value *o, const char *k) {
  int64_t x = 0;
  vt_value_is_int(get(o, k), &x);
  return (long long)x;
}

static void line(vt_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) vt_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* The string under k, padded with spaces to w bytes (printable UTF-8). */
static void padded(vt_buf *b, const vt_value *o, const char *k, size_t w, const char *none) {
  const vt_value *v = get(o, k);
  size_t n = 0, at = b->n;
  const char *s = none;
  if (v && vt_value_type(v) == VT_STR) s = vt_value_str(v, &n);
  else n = strlen(none);
  vt_buf_put_text(b, s, n, VT_TEXT_NUL);
  for (n = b->failed ? w : b->n - at; n < w; n++) vt_buf_putc(b, ' ');
}

static void money(vt_buf *b, double x) { line(b, "$%.4f", x); }

int vt_export_profile_text(const vt_collector *c, vt_buf *b) {
  vt_value *p = vt_collector_profile(c);
  const vt_value *arr, *e, *l, *bm;
  vt_iter it;
  const char *k;
  size_t kl;
  if (!p) return VT_ENOMEM;
  vt_buf_puts(b, "Run profile: ");
  {
    size_t n;
    const char *s = vt_value_str(get(p, "trace_id"), &n);
    vt_buf_put(b, s, n);
  }
  line(b, "\nwall time %.3f ms, %lld spans, %lld dropped\n\n", num(p, "wall_ms"),
       integer(p, "spans"), integer(p, "dropped"));
  line(b, "%-20s %12s %8s %8s\n", "time by kind", "total ms", "count", "% wall");
  vt_value_iter(get(p, "by_kind"), &it);
  while ((e = vt_iter_next(&it, NULL, NULL)) != NULL) {
    vt_buf_puts(b, "  ");
    padded(b, e, "kind", 18, "");
    line(b, " %12.3f %8lld %8.1f\n", num(e, "total_ms"), integer(e, "count"), num(e, "percent"));
  }
  line(b, "residual (root time in no child span): %.3f ms, %.1f%% of wall\n\n",
       num(p, "residual_ms"), num(p, "residual_percent"));
  vt_buf_puts(b, "top llm calls\n");
  arr = get(p, "top_llm_calls");
  if (!vt_value_count(arr)) vt_buf_puts(b, "  (none)\n");
  vt_value_iter(arr, &it);
  while ((e = vt_iter_next(&it, NULL, NULL)) != NULL) {
    vt_buf_puts(b, "  ");
    padded(b, e, "name", 24, "");
    line(b, " %10.3f ms  ", num(e, "duration_ms"));
    padded(b, e, "model", 18, "-");
    line(b, " %7lld in %7lld out", integer(e, "input_tokens"), integer(e, "output_tokens"));
    if (get(e, "cost_usd")) {
      vt_buf_puts(b, "  ");
      money(b, num(e, "cost_usd"));
    }
    vt_buf_putc(b, '\n');
  }
  vt_buf_puts(b, "top tool calls\n");
  arr = get(p, "top_tool_calls");
  if (!vt_value_count(arr)) vt_buf_puts(b, "  (none)\n");
  vt_value_iter(arr, &it);
  while ((e = vt_iter_next(&it, NULL, NULL)) != NULL) {
    vt_buf_puts(b, "  ");
    padded(b, e, "name", 24, "");
    line(b, " %10.3f ms\n", num(e, "duration_ms"));
  }
  line(b, "\n%-20s %12s %16s %16s %12s\n", "steps", "total ms", "llm ms (calls)",
       "tool ms (calls)", "other ms");
  arr = get(p, "steps");
  if (!vt_value_count(arr)) vt_buf_puts(b, "  (none)\n");
  vt_value_iter(arr, &it);
  while ((e = vt_iter_next(&it, NULL, NULL)) != NULL) {
    char a[64], t[64];
    vt_buf_puts(b, "  ");
    padded(b, e, "name", 18, "");
    snprintf(a, sizeof a, "%.3f (%lld)", num(e, "llm_ms"), integer(e, "llm_calls"));
    snprintf(t, sizeof t, "%.3f (%lld)", num(e, "tool_ms"), integer(e, "tool_calls"));
    line(b, " %12.3f %16s %16s %12.3f\n", num(e, "duration_ms"), a, t, num(e, "other_ms"));
  }
  l = get(p, "llm");
  line(b, "\nllm: %lld calls, %lld input, %lld output, %lld cache read, %lld cache write tokens, ",
       integer(l, "calls"), integer(l, "input_tokens"), integer(l, "output_tokens"),
       integer(l, "cache_read_tokens"), integer(l, "cache_write_tokens"));
  money(b, num(l, "cost_usd"));
  vt_buf_putc(b, '\n');
  bm = get(l, "by_model");
  vt_value_iter(bm, &it);
  while ((e = vt_iter_next(&it, &k, &kl)) != NULL) {
    size_t at = b->n, w;
    vt_buf_puts(b, "  ");
    if (kl) vt_buf_put_text(b, k, kl, VT_TEXT_NUL);
    else vt_buf_puts(b, "(no model)");
    for (w = b->failed ? 26 : b->n - at; w < 26; w++) vt_buf_putc(b, ' ');
    line(b, " %4lld calls %9lld in %9lld out  ", integer(e, "calls"), integer(e, "input_tokens"),
         integer(e, "output_tokens"));
    money(b, num(e, "cost_usd"));
    if (integer(e, "unpriced")) line(b, "  (%lld unpriced)", integer(e, "unpriced"));
    vt_buf_putc(b, '\n');
  }
  if (integer(l, "unpriced")) {
    int first = 1;
    line(b, "unpriced: %lld calls without a price (", integer(l, "unpriced"));
    vt_value_iter(bm, &it);
    while ((e = vt_iter_next(&it, &k, &kl)) != NULL) {
      if (!integer(e, "unpriced")) continue;
      if (!first) vt_buf_puts(b, ", ");
      first = 0;
      if (kl) vt_buf_put_text(b, k, kl, VT_TEXT_NUL);
      else vt_buf_puts(b, "(no model)");
    }
    vt_buf_puts(b, "): their cost is not in the totals\n");
  }
  vt_free(p);
  return b->failed ? VT_ENOMEM : VT_OK;
}
