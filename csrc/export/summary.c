/*
 * summary.c: the seed's format_summary text in linear time. The seed scans
 * every span for the children of each span (quadratic); here one pass maps
 * ids to positions and links children in finish order, then an explicit
 * stack walks the tree (no recursion, so any depth is fine). The text is
 * valid, printable UTF-8: invalid bytes and NUL in names and keys are shown
 * as U+FFFD (the seed's names are Rust strings, always valid).
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"

static void put_line(vt_buf *b, const vt_span_view *v, size_t depth) {
  if (vt_buf_grow(b, depth * 2)) {
    memset(b->p + b->n, ' ', depth * 2);
    b->n += depth * 2;
  }
  vt_buf_puts(b, vt_kind_name((int)v->kind));
  vt_buf_putc(b, ' ');
  vt_buf_put_text(b, v->name, v->name_len, VT_TEXT_NUL);
  vt_buf_putc(b, ' ');
  vt_buf_put_i64(b, v->duration_ns / 1000000);
  vt_buf_put(b, "ms", 2);
  if (v->metadata) {
    vt_iter it;
    const vt_value *item;
    const char *k;
    size_t kl;
    int first = 1;
    vt_buf_put(b, " (", 2);
    vt_value_iter(v->metadata, &it);
    while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
      if (!first) vt_buf_put(b, ", ", 2);
      first = 0;
      vt_buf_put_text(b, k, kl, VT_TEXT_NUL);
      vt_buf_putc(b, '=');
      vt_json_write(b, item);
    }
    vt_buf_putc(b, ')');
  }
}

int vt_export_summary(const vt_collector *c, vt_buf *b) {
  size_t n = vt_collector_count(c), i;
  uint64_t dropped = vt_collector_dropped(c);
  vt_idmap m = {NULL, NULL, 0, 0};
  uint32_t *first = NULL, *last = NULL, *next = NULL, *stack = NULL;
  uint32_t root_first = VT_NONE, root_last = VT_NONE;
  int64_t total_ms = 0;
  int rc = VT_OK;

  if (n == 0) {
    vt_buf_puts(b, "No spans recorded.");
    if (dropped) {
      vt_buf_puts(b, " (");
      vt_buf_put_u64(b, dropped);
      vt_buf_puts(b, " dropped)");
    }
    return b->failed ? VT_ENOMEM : VT_OK;
  }
  if (n >= VT_NONE) return VT_ENOMEM;
  first = vt_malloc(n * sizeof *first);
  last = vt_malloc(n * sizeof *last);
  next = vt_malloc(n * sizeof *next);
  stack = vt_malloc((n + 1) * sizeof *stack);
  if (!vt_idmap_init(&m, n) || !first || !last || !next || !stack) {
    rc = VT_ENOMEM;
    goto done;
  }
  for (i = 0; i < n; i++) {
    if (!vt_idmap_put(&m, vt_collector_completed_id(c, i), (uint32_t)i)) {
      rc = VT_ENOMEM;
      goto done;
    }
    first[i] = last[i] = next[i] = VT_NONE;
  }
  for (i = 0; i < n; i++) { /* link children in finish order */
    vt_span_view v;
    uint32_t *head, *tail;
    vt_collector_get(c, vt_collector_completed_id(c, i), &v);
    if (v.parent == 0) {
      total_ms += v.duration_ns / 1000000;
      head = &root_first;
      tail = &root_last;
    } else {
      uint32_t p = vt_idmap_get(&m, v.parent);
      if (p == VT_NONE) continue; /* parent not completed: not printed */
      head = &first[p];
      tail = &last[p];
    }
    if (*tail == VT_NONE) *head = (uint32_t)i;
    else next[*tail] = (uint32_t)i;
    *tail = (uint32_t)i;
  }

  vt_buf_puts(b, "Trace: ");
  vt_buf_put_i64(b, (int64_t)n);
  vt_buf_puts(b, " spans, ");
  vt_buf_put_i64(b, total_ms);
  vt_buf_puts(b, "ms total");
  if (dropped) { /* only then: otherwise exactly the seed's header */
    vt_buf_puts(b, ", ");
    vt_buf_put_u64(b, dropped);
    vt_buf_puts(b, " dropped");
  }
  vt_buf_putc(b, '\n');
  {
    size_t depth = 0;
    stack[0] = root_first;
    while (!b->failed) {
      uint32_t p = stack[depth];
      vt_span_view v;
      if (p == VT_NONE) {
        if (depth == 0) break;
        depth--;
        continue;
      }
      vt_buf_putc(b, '\n');
      vt_collector_get(c, vt_collector_completed_id(c, p), &v);
      put_line(b, &v, depth);
      stack[depth] = next[p];
      if (first[p] != VT_NONE) stack[++depth] = first[p];
    }
  }
done:
  vt_idmap_free(&m);
  vt_free(first);
  vt_free(last);
  vt_free(next);
  vt_free(stack);
  return rc == VT_OK && b->failed ? VT_ENOMEM : rc;
}
