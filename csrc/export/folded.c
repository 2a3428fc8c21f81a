/*
 * folded.c: folded stacks, one line per span, "root;child;leaf weight", for
 * flamegraph.pl, inferno and speedscope (which sum equal stacks). Frames are
 * "kind name". The weight is the span's self time in microseconds (its
 * duration less its children's: concurrent children are summed, so a span
 * whose children overlap can have no self time), its tokens (input + output
 * + cache read + cache write: a token flame graph shows where the tokens
 * went) or its cost in micro-USD, read by the one usage rule (vt_usage_read).
 * Lines of weight 0 are left out. Frames survive flamegraph.pl: ';' inside a
 * name becomes ':', line breaks spaces, and a frame that would end in blanks
 * and a number ("step iteration 1", read as a second count) has its last
 * blanks joined by '_' ("step iteration_1").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"

static int64_t weight_of(const vt_span_view *v, vt_weight w, int64_t child_ns) {
  vt_usage u;
  int64_t self;
  switch (w) {
    case VT_WEIGHT_TOKENS:
      vt_usage_read(v->metadata, &u);
      return vt_usage_tokens(&u);
    case VT_WEIGHT_COST:
      vt_usage_read(v->metadata, &u);
      if (!u.priced || !(u.cost_usd > 0)) return 0;
      /* micro-dollars; a cost past what int64 holds stays at its maximum */
      return u.cost_usd * 1e6 < 9.2e18 ? (int64_t)llround(u.cost_usd * 1e6) : INT64_MAX;
    default:
      self = v->duration_ns - child_ns;
      return self > 0 ? self / 1000 : 0;
  }
}

static void frame(vt_buf *b, const vt_span_view *v) {
  size_t at = b->n, end, i;
  vt_buf_puts(b, vt_kind_name((int)v->kind));
  vt_buf_putc(b, ' ');
  vt_buf_put_text(b, v->name, v->name_len, VT_TEXT_FOLDED);
  if (b->failed || b->n < at) return; /* (a window written out meanwhile) */
  /* blanks then digits (and a fraction) at the end: join them with '_' */
  end = b->n;
  i = end;
  while (i > at && b->p[i - 1] >= '0' && b->p[i - 1] <= '9') i--;
  if (i < end && i > at && b->p[i - 1] == '.') { /* 1.5 */
    size_t j = i - 1;
    while (j > at && b->p[j - 1] >= '0' && b->p[j - 1] <= '9') j--;
    if (j < i - 1) i = j;
  }
  if (i == end) return;
  while (i > at && (b->p[i - 1] == ' ' || b->p[i - 1] == '\t')) b->p[--i] = '_';
}

int vt_export_folded(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  vt_idmap pos;
  int64_t *child_ns = NULL;
  vt_id *path = NULL;
  size_t cap = 0, i, n = vt_collector_count(c);
  int rc = VT_OK;
  uint64_t dropped = vt_collector_dropped(c);
  memset(&pos, 0, sizeof pos);
  if (o->weight == VT_WEIGHT_TIME) { /* children's time, per parent */
    if (!vt_idmap_init(&pos, n) || !(child_ns = vt_calloc(n ? n : 1, sizeof *child_ns))) {
      rc = VT_ENOMEM;
      goto out;
    }
    for (i = 0; i < n; i++)
      if (!vt_idmap_put(&pos, vt_collector_completed_id(c, i), (uint32_t)i)) {
        rc = VT_ENOMEM;
        goto out;
      }
    for (i = 0; i < n; i++) {
      vt_span_view v;
      uint32_t p;
      vt_collector_get(c, vt_collector_completed_id(c, i), &v);
      p = v.parent ? vt_idmap_get(&pos, v.parent) : VT_NONE;
      if (p != VT_NONE) child_ns[p] += v.duration_ns;
    }
  }
  for (i = 0; i < n && !b->failed; i++) {
    vt_span_view v, a;
    vt_id id;
    size_t depth = 0, d;
    int64_t w;
    vt_collector_get(c, vt_collector_completed_id(c, i), &v);
    w = weight_of(&v, o->weight, child_ns ? child_ns[i] : 0);
    if (w <= 0) continue;
    for (id = v.parent; id && vt_collector_get(c, id, &a) == VT_OK; id = a.parent) {
      if (!vt_grow((void **)&path, &cap, depth + 1, sizeof *path)) {
        rc = VT_ENOMEM;
        goto out;
      }
      path[depth++] = id;
    }
    for (d = depth; d > 0; d--) { /* root first */
      vt_collector_get(c, path[d - 1], &a);
      frame(b, &a);
      vt_buf_putc(b, ';');
    }
    frame(b, &v);
    vt_buf_putc(b, ' ');
    vt_buf_put_i64(b, w);
    vt_buf_putc(b, '\n');
  }
  if (dropped && rc == VT_OK) { /* said, with weight 0: drawn nowhere */
    vt_buf_puts(b, "vmtrace ");
    vt_buf_put_u64(b, dropped);
    vt_buf_puts(b, " spans dropped 0\n");
  }
out:
  vt_idmap_free(&pos);
  vt_free(child_ns);
  vt_free(path);
  if (rc == VT_OK && b->failed) rc = VT_ENOMEM;
  return rc;
}
