/*
 * chrome.c: Chrome trace events, which Perfetto, chrome://tracing and
 * speedscope open. Spans become complete ("X") events, marker spans instant
 * ("i") events, with ts/dur in microseconds from the earliest span. One track
 * (tid) per coroutine; a span that would not nest inside the spans open on
 * its track (it outlived its parent: out-of-order finishing) goes to another
 * lane of the same coroutine, so every track is properly nested. Spans are
 * visited in id order, which is start order.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"

typedef struct lane {
  int64_t *ends; /* ends of the spans open on this lane, innermost last */
  size_t n, cap;
  uint32_t tid;
  struct lane *next;
} lane;

typedef struct tracks {
  lane **by_track; /* track -> its first lane */
  size_t ntracks;
  uint32_t next_tid;
} tracks;

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

/* The tid of the lane where [start, end] nests; 0 when out of memory. */
static uint32_t place(tracks *t, vt_buf *b, uint32_t track, int64_t start,
                      int64_t end, int marker) {
  lane **pl, *l;
  int nth = 0;
  if (track >= t->ntracks) {
    size_t n = t->ntracks ? t->ntracks : 16;
    lane **d;
    while (n <= track) n *= 2;
    d = vt_realloc(t->by_track, n * sizeof *d);
    if (!d) return 0;
    memset(d + t->ntracks, 0, (n - t->ntracks) * sizeof *d);
    t->by_track = d;
    t->ntracks = n;
  }
  for (pl = &t->by_track[track]; (l = *pl) != NULL; pl = &l->next) {
    nth++;
    while (l->n && l->ends[l->n - 1] <= start && !(marker && l->ends[l->n - 1] == start))
      l->n--; /* spans that ended before this one began */
    if (marker || !l->n || l->ends[l->n - 1] >= end) break;
  }
  if (!l) { /* a new lane */
    l = vt_calloc(1, sizeof *l);
    if (!l) return 0;
    l->tid = ++t->next_tid;
    *pl = l;
    thread_name(b, track, l->tid, nth + 1);
  }
  if (!marker) {
    if (l->n == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 16;
      int64_t *e = vt_realloc(l->ends, cap * sizeof *e);
      if (!e) return 0;
      l->ends = e;
      l->cap = cap;
    }
    l->ends[l->n++] = end;
  }
  return l->tid;
}

static void put_us(vt_buf *b, int64_t ns) { /* microseconds, 3 decimals */
  vt_buf_put_milli(b, ns < 0 ? 0 : ns);
}

int vt_export_chrome(const vt_collector *c, vt_buf *b) {
  tracks t;
  vt_id id;
  int64_t base = INT64_MAX;
  size_t i;
  int rc = VT_OK;
  memset(&t, 0, sizeof t);
  vt_trace_info info;
  vt_collector_trace_info(c, &info);
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    vt_collector_get(c, id, &v);
    if (v.start_unix_ns < base) base = v.start_unix_ns;
  }
  vt_buf_puts(b, "{\"displayTimeUnit\":\"ms\",\"otherData\":{\"trace_id\":\"");
  vt_buf_puts(b, info.trace_id);
  vt_buf_puts(b, "\",\"start_unix_ns\":");
  vt_buf_put_i64(b, base == INT64_MAX ? 0 : base);
  vt_buf_puts(b, ",\"dropped_spans\":");
  vt_buf_put_u64(b, info.dropped);
  vt_buf_puts(b, "},\"traceEvents\":[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,"
                 "\"tid\":0,\"args\":{\"name\":\"vmtrace ");
  vt_buf_puts(b, info.trace_id);
  vt_buf_puts(b, "\"}}");
  for (id = vt_collector_next_completed(c, 0); id && !b->failed;
       id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    int marker;
    uint32_t tid;
    vt_collector_get(c, id, &v);
    marker = is_marker(v.kind) && v.duration_ns == 0;
    tid = place(&t, b, v.track, v.start_unix_ns, v.start_unix_ns + v.duration_ns,
                marker);
    if (!tid) {
      rc = VT_ENOMEM;
      break;
    }
    vt_buf_puts(b, ",\n{\"name\":");
    vt_json_write_str(b, v.name, v.name_len);
    vt_buf_puts(b, ",\"cat\":\"");
    vt_buf_puts(b, vt_kind_name((int)v.kind));
    vt_buf_puts(b, marker ? "\",\"ph\":\"i\",\"s\":\"t\",\"ts\":" : "\",\"ph\":\"X\",\"ts\":");
    put_us(b, v.start_unix_ns - base);
    if (!marker) {
      vt_buf_puts(b, ",\"dur\":");
      put_us(b, v.duration_ns);
    }
    vt_buf_puts(b, ",\"pid\":1,\"tid\":");
    vt_buf_put_u64(b, tid);
    vt_buf_puts(b, ",\"args\":{\"span_id\":");
    vt_buf_put_u64(b, v.id);
    if (v.parent) {
      vt_buf_puts(b, ",\"parent_id\":");
      vt_buf_put_u64(b, v.parent);
    } else if (info.remote_parent) {
      vt_buf_puts(b, ",\"remote_parent_span_id\":\"");
      vt_buf_put_hex64(b, info.remote_parent);
      vt_buf_putc(b, '"');
    }
    if (v.metadata) {
      vt_buf_puts(b, ",\"metadata\":");
      vt_json_write(b, v.metadata);
    }
    vt_buf_puts(b, "}}");
  }
  vt_buf_puts(b, "\n]}\n");
  for (i = 0; i < t.ntracks; i++) {
    lane *l = t.by_track[i];
    while (l) {
      lane *next = l->next;
      vt_free(l->ends);
      vt_free(l);
      l = next;
    }
  }
  vt_free(t.by_track);
  if (rc == VT_OK && b->failed) rc = VT_ENOMEM;
  return rc;
}
