/*
 * export_summary.c: the seed's format_summary text in linear time. The seed
 * scans every span for the children of each span (quadratic); here one pass
 * maps ids to positions and links children in finish order, then an explicit
 * stack walks the tree (no recursion, so any depth is fine).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void put_line(vt_buf *b, const vt_collector *c, vt_id id, size_t depth) {
  vt_span_view v;
  size_t i;
  vt_collector_get(c, id, &v);
  if (vt_buf_grow(b, depth * 2)) {
    memset(b->p + b->n, ' ', depth * 2);
    b->n += depth * 2;
  }
  vt_buf_puts(b, vt_kind_name((int)v.kind));
  vt_buf_putc(b, ' ');
  vt_buf_put(b, v.name, v.name_len);
  vt_buf_putc(b, ' ');
  vt_buf_put_i64(b, v.duration_ns / 1000000);
  vt_buf_put(b, "ms", 2);
  if (v.metadata && v.metadata->child) {
    const cJSON *it;
    vt_buf_put(b, " (", 2);
    for (it = v.metadata->child, i = 0; it; it = it->next, i++) {
      if (i) vt_buf_put(b, ", ", 2);
      vt_buf_put_decoded(b, it->string);
      vt_buf_putc(b, '=');
      vt_json_write(b, it);
    }
    vt_buf_putc(b, ')');
  }
}

char *vt_collector_summary(const vt_collector *c, size_t *len) {
  vt_buf b = {0};
  size_t n = c->ndone, i;
  vt_idmap m = {NULL, NULL, 0, 0};
  uint32_t *first = NULL, *last = NULL, *next = NULL, *stack = NULL;
  uint32_t root_first = VT_NONE, root_last = VT_NONE;
  int64_t total_ms = 0;

  if (n == 0) {
    vt_buf_puts(&b, "No spans recorded.");
    if (c->dropped) {
      vt_buf_puts(&b, " (");
      vt_buf_put_u64(&b, c->dropped);
      vt_buf_puts(&b, " dropped)");
    }
    goto done;
  }
  if (n >= VT_NONE) goto oom;
  first = vt_malloc(n * sizeof *first);
  last = vt_malloc(n * sizeof *last);
  next = vt_malloc(n * sizeof *next);
  stack = vt_malloc((n + 1) * sizeof *stack);
  if (!vt_idmap_init(&m, n) || !first || !last || !next || !stack) goto oom;
  for (i = 0; i < n; i++) {
    vt_idmap_put(&m, c->done[i], (uint32_t)i);
    first[i] = last[i] = next[i] = VT_NONE;
  }
  for (i = 0; i < n; i++) { /* link children in finish order */
    const vt_slot *s = vt_slot_of(c, c->done[i]);
    uint32_t *head, *tail;
    if (s->parent == 0) {
      total_ms += s->u.dur_ns / 1000000;
      head = &root_first;
      tail = &root_last;
    } else {
      uint32_t p = vt_idmap_get(&m, s->parent);
      if (p == VT_NONE) continue; /* parent not completed: not printed */
      head = &first[p];
      tail = &last[p];
    }
    if (*tail == VT_NONE) *head = (uint32_t)i;
    else next[*tail] = (uint32_t)i;
    *tail = (uint32_t)i;
  }

  vt_buf_puts(&b, "Trace: ");
  vt_buf_put_i64(&b, (int64_t)n);
  vt_buf_puts(&b, " spans, ");
  vt_buf_put_i64(&b, total_ms);
  vt_buf_puts(&b, "ms total");
  if (c->dropped) { /* only then: otherwise exactly the seed's header */
    vt_buf_puts(&b, ", ");
    vt_buf_put_u64(&b, c->dropped);
    vt_buf_puts(&b, " dropped");
  }
  vt_buf_putc(&b, '\n');
  {
    size_t depth = 0;
    stack[0] = root_first;
    for (;;) {
      uint32_t p = stack[depth];
      if (p == VT_NONE) {
        if (depth == 0) break;
        depth--;
        continue;
      }
      vt_buf_putc(&b, '\n');
      put_line(&b, c, c->done[p], depth);
      stack[depth] = next[p];
      if (first[p] != VT_NONE) stack[++depth] = first[p];
    }
  }
  goto done;
oom:
  b.failed = 1;
done:
  vt_idmap_free(&m);
  vt_free(first);
  vt_free(last);
  vt_free(next);
  vt_free(stack);
  vt_buf_putc(&b, '\0');
  if (b.failed) {
    vt_buf_free(&b);
    return NULL;
  }
  if (len) *len = b.n - 1;
  return b.p;
}
