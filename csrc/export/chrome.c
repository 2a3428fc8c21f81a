/*
 * chrome.c: Chrome trace events, which Perfetto, chrome://tracing and
 * speedscope open. A span is a begin ("B") event without args and an end
 * ("E") event that carries them (span id, parent, metadata): trace viewers
 * show the end event's args on the slice, and speedscope, which names a frame
 * after its begin event's name and args, merges identical calls into one
 * frame. Names are "kind name" (speedscope's frames do not see the category).
 * Marker spans are instant ("i") events. ts in microseconds from the earliest
 * span. One track (tid) per coroutine; a span that would not nest inside the
 * spans open on its track (it outlived its parent: out-of-order finishing)
 * goes to another lane of the same coroutine, so every track is properly
 * nested and each lane's events come in time order. Spans are visited in id
 * order, which is start order. (Name the file *.trace.json: speedscope reads
 * *.chrome.json as a DevTools recording.)
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"

typedef struct open_span {
  int64_t end;
  vt_id id;
} open_span;

typedef struct lane {
  open_span *open; /* the spans open on this lane, innermost last */
  size_t n, cap;
  uint32_t tid;
  struct lane *next;
} lane;

typedef struct chrome {
  const vt_collector *c;
  vt_buf *b;
  vt_trace_info info;
  int64_t base;
  lane **by_track; /* track -> its first lane */
  size_t ntracks;
  uint32_t next_tid;
} chrome;

static int is_marker(vt_kind k) {
  return k == VT_MODEL_ROUTE || k == VT_TOOL_MOUNT || k == VT_DEFERRED_TOOL_LOAD;
}

static void thread_name(vt_buf *b, uint32_t track, uint32_t tid, int nth) {
  vt_buf_puts(b, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":");
  vt_buf_put_u64(b, tid);
  vt_buf_puts(b, ",\"args\":{\"name\":\"");
  if (track) {
    vt_buf_puts(b, "coroutine ");
    vt_buf_put_u64(b, track);
  } else {
    vt_buf_puts(b, "main");
  }
  if (nth > 1) {
    vt_buf_puts(b, " (");
    vt_buf_put_u64(b, (uint64_t)nth);
    vt_buf_putc(b, ')');
  }
  vt_buf_puts(b, "\"}}");
}

static void put_us(vt_buf *b, int64_t ns) { /* microseconds, 3 decimals */
  vt_buf_put_milli(b, ns < 0 ? 0 : ns);
}

/* One event of span v: its name, phase, time and lane. */
static void event(chrome *x, const vt_span_view *v, const char *ph, int64_t at, uint32_t tid) {
  vt_buf *b = x->b;
  size_t n = strlen(vt_kind_name((int)v->kind));
  vt_buf_puts(b, ",\n{\"name\":");
  { /* "kind name" as one JSON string */
    vt_buf tmp;
    char *s;
    vt_buf_init(&tmp);
    vt_buf_put(&tmp, vt_kind_name((int)v->kind), n);
    vt_buf_putc(&tmp, ' ');
    vt_buf_put(&tmp, v->name, v->name_len);
    if (tmp.failed) b->failed = 1;
    s = tmp.p ? tmp.p : "";
    vt_json_write_str(b, s, tmp.n);
    vt_buf_free(&tmp);
  }
  vt_buf_puts(b, ",\"cat\":\"");
  vt_buf_puts(b, vt_kind_name((int)v->kind));
  vt_buf_puts(b, "\",\"ph\":\"");
  vt_buf_puts(b, ph);
  if (ph[0] == 'i') vt_buf_puts(b, "\",\"s\":\"t"); /* an instant on its thread */
  vt_buf_puts(b, "\",\"ts\":");
  put_us(b, at - x->base);
  vt_buf_puts(b, ",\"pid\":1,\"tid\":");
  vt_buf_put_u64(b, tid);
  if (ph[0] == 'B') {
    vt_buf_putc(b, '}');
    return;
  }
  vt_buf_puts(b, ",\"args\":{\"span_id\":");
  vt_buf_put_u64(b, v->id);
  if (v->parent) {
    vt_buf_puts(b, ",\"parent_id\":");
    vt_buf_put_u64(b, v->parent);
  } else if (x->info.remote_parent) {
    vt_buf_puts(b, ",\"remote_parent_span_id\":\"");
    vt_buf_put_hex64(b, x->info.remote_parent);
    vt_buf_putc(b, '"');
  }
  if (v->metadata) {
    vt_buf_puts(b, ",\"metadata\":");
    vt_json_write(b, v->metadata);
  }
  vt_buf_puts(b, "}}");
}

/* End the innermost open span of a lane: its E event. */
static void pop(chrome *x, lane *l) {
  vt_span_view v;
  open_span *o = &l->open[--l->n];
  if (vt_collector_get(x->c, o->id, &v) == VT_OK) event(x, &v, "E", o->end, l->tid);
}

/* The lane of `track` where [start, end] nests (ending what ended before
 * it began, on the lanes looked at); NULL when out of memory. */
static lane *place(chrome *x, uint32_t track, int64_t start, int64_t end, int marker) {
  lane **pl, *l;
  int nth = 0;
  if (track >= x->ntracks) {
    size_t n = x->ntracks ? x->ntracks : 16;
    lane **d;
    while (n <= track) n *= 2;
    d = vt_realloc(x->by_track, n * sizeof *d);
    if (!d) return NULL;
    memset(d + x->ntracks, 0, (n - x->ntracks) * sizeof *d);
    x->by_track = d;
    x->ntracks = n;
  }
  for (pl = &x->by_track[track]; (l = *pl) != NULL; pl = &l->next) {
    nth++;
    while (l->n && l->open[l->n - 1].end <= start && !(marker && l->open[l->n - 1].end == start))
      pop(x, l); /* spans that ended before this one began */
    if (marker || !l->n || l->open[l->n - 1].end >= end) break;
  }
  if (!l) { /* a new lane */
    l = vt_calloc(1, sizeof *l);
    if (!l) return NULL;
    l->tid = ++x->next_tid;
    *pl = l;
    thread_name(x->b, track, l->tid, nth + 1);
  }
  return l;
}

int vt_export_chrome(const vt_collector *c, vt_buf *b) {
  chrome x;
  vt_id id;
  size_t i;
  int rc = VT_OK;
  memset(&x, 0, sizeof x);
  x.c = c;
  x.b = b;
  x.base = INT64_MAX;
  vt_collector_trace_info(c, &x.info);
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    vt_collector_get(c, id, &v);
    if (v.start_unix_ns < x.base) x.base = v.start_unix_ns;
  }
  vt_buf_puts(b, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"trace_id\":");
  vt_json_write_str(b, x.info.trace_id, strlen(x.info.trace_id));
  vt_buf_puts(b, ",\"start_unix_ns\":");
  vt_buf_put_i64(b, x.base == INT64_MAX ? 0 : x.base);
  vt_buf_puts(b, ",\"dropped_spans\":");
  vt_buf_put_u64(b, x.info.dropped);
  /* the first event is metadata without "cat": no span name can make
   * speedscope take the file for a DevTools recording */
  vt_buf_puts(b, "},\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,"
                 "\"tid\":0,\"args\":{\"name\":\"vmtrace ");
  vt_buf_puts(b, x.info.trace_id);
  vt_buf_puts(b, "\"}}");
  for (id = vt_collector_next_completed(c, 0); id && !b->failed;
       id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    int marker;
    lane *l;
    vt_collector_get(c, id, &v);
    marker = is_marker(v.kind) && v.duration_ns == 0;
    l = place(&x, v.track, v.start_unix_ns, v.start_unix_ns + v.duration_ns, marker);
    if (!l) {
      rc = VT_ENOMEM;
      break;
    }
    if (marker) {
      event(&x, &v, "i", v.start_unix_ns, l->tid);
      continue;
    }
    if (!vt_grow((void **)&l->open, &l->cap, l->n + 1, sizeof *l->open)) {
      rc = VT_ENOMEM;
      break;
    }
    l->open[l->n].end = v.start_unix_ns + v.duration_ns;
    l->open[l->n++].id = id;
    event(&x, &v, "B", v.start_unix_ns, l->tid);
  }
  for (i = 0; i < x.ntracks; i++) { /* end what is still open, lane by lane */
    lane *l = x.by_track[i];
    while (l) {
      lane *next = l->next;
      while (rc == VT_OK && l->n) pop(&x, l);
      vt_free(l->open);
      vt_free(l);
      l = next;
    }
  }
  vt_buf_puts(b, "\n]}\n");
  vt_free(x.by_track);
  if (rc == VT_OK && b->failed) rc = VT_ENOMEM;
  return rc;
}
