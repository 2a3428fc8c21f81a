/*
 * export_folded.c: folded stacks, one line per span, "root;child;leaf weight",
 * for flamegraph.pl, inferno and speedscope (which sum equal stacks). Frames
 * are "kind name". The weight is the span's self time in microseconds (its
 * duration less its children's), its tokens (input + output + cache read +
 * cache write: a token flame graph shows where the tokens went) or its cost in
 * micro-USD. Lines of weight 0 are left out.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int64_t meta_int(const cJSON *m, const char *k) {
  int64_t v = 0;
  const cJSON *it = vt_json_obj_get(m, k, strlen(k));
  if (vt_json_is_int(it, &v)) return v > 0 ? v : 0;
  if (cJSON_IsNumber(it) && it->valuedouble > 0) return (int64_t)it->valuedouble;
  return 0;
}

static int64_t weight_of(const vt_span_view *v, vt_weight w, int64_t child_ns) {
  const cJSON *m = v->metadata, *cost;
  int64_t self;
  switch (w) {
    case VT_WEIGHT_TOKENS:
      return meta_int(m, "input_tokens") + meta_int(m, "output_tokens") +
             meta_int(m, "cache_read_tokens") + meta_int(m, "cache_write_tokens");
    case VT_WEIGHT_COST:
      cost = vt_json_obj_get(m, "cost_usd", 8);
      if (cJSON_IsNumber(cost) && cost->valuedouble > 0)
        return (int64_t)llround(cost->valuedouble * 1e6);
      return meta_int(m, "cost_usd") * 1000000;
    default:
      self = v->duration_ns - child_ns;
      return self > 0 ? self / 1000 : 0;
  }
}

static void frame(vt_buf *b, const vt_span_view *v) {
  vt_buf_puts(b, vt_kind_name((int)v->kind));
  vt_buf_putc(b, ' ');
  vt_buf_put_text(b, v->name, v->name_len, 1);
}

int vt_export_folded(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  vt_idmap pos;
  int64_t *child_ns = NULL;
  vt_id *path = NULL;
  size_t cap = 0, i;
  int rc = VT_OK;
  memset(&pos, 0, sizeof pos);
  if (o->weight == VT_WEIGHT_TIME) { /* children's time, per parent */
    if (!vt_idmap_init(&pos, c->ndone) ||
        !(child_ns = vt_calloc(c->ndone ? c->ndone : 1, sizeof *child_ns))) {
      rc = VT_ENOMEM;
      goto out;
    }
    for (i = 0; i < c->ndone; i++) vt_idmap_put(&pos, c->done[i], (uint32_t)i);
    for (i = 0; i < c->ndone; i++) {
      const vt_slot *s = vt_slot_of(c, c->done[i]);
      uint32_t p = s->parent ? vt_idmap_get(&pos, s->parent) : VT_NONE;
      if (p != VT_NONE) child_ns[p] += s->u.dur_ns;
    }
  }
  for (i = 0; i < c->ndone && !b->failed; i++) {
    vt_span_view v;
    vt_id id;
    size_t depth = 0, d;
    int64_t w;
    vt_collector_get(c, c->done[i], &v);
    w = weight_of(&v, o->weight, child_ns ? child_ns[i] : 0);
    if (w <= 0) continue;
    for (id = v.parent; id && vt_slot_of(c, id); id = vt_slot_of(c, id)->parent) {
      if (depth == cap) {
        size_t ncap = cap ? cap * 2 : 64;
        vt_id *np = vt_realloc(path, ncap * sizeof *np);
        if (!np) {
          rc = VT_ENOMEM;
          goto out;
        }
        path = np;
        cap = ncap;
      }
      path[depth++] = id;
    }
    for (d = depth; d > 0; d--) { /* root first */
      vt_span_view a;
      vt_collector_get(c, path[d - 1], &a);
      frame(b, &a);
      vt_buf_putc(b, ';');
    }
    frame(b, &v);
    vt_buf_putc(b, ' ');
    vt_buf_put_i64(b, w);
    vt_buf_putc(b, '\n');
  }
  if (c->dropped && rc == VT_OK) { /* said, with weight 0: drawn nowhere */
    vt_buf_puts(b, "vmtrace ");
    vt_buf_put_u64(b, c->dropped);
    vt_buf_puts(b, " spans dropped 0\n");
  }
out:
  vt_idmap_free(&pos);
  vt_free(child_ns);
  vt_free(path);
  if (rc == VT_OK && b->failed) rc = VT_ENOMEM;
  return rc;
}
