/*
 * stream.c: the crash-safe NDJSON stream. A collector hook writes one JSON
 * line per span start and end as it happens (flushed to the kernel line by
 * line unless told otherwise), so a process killed at any moment leaves every
 * finished span readable, and the open ones recoverable as unfinished.
 *
 *   {"type":"trace","trace_id":...,"otel_salt":"<16 hex>","version":...}
 *   {"type":"start","span":{...the span as the JSON export writes it...}}
 *   {"type":"end","span":{...}}
 *   {"type":"meta","span_id":N,"metadata":{...}}   (late metadata)
 *   {"type":"context","trace_id":...,"remote_parent_span_id":...}  (joined)
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct vt_stream {
  vt_collector *c;
  FILE *f;
  int owns;       /* fclose f at the end */
  int flush_each; /* fflush after every line */
  int err;        /* errno of the first failed write (0: none) */
  vt_buf line;
};

static void emit(vt_stream *s) {
  vt_buf *b = &s->line;
  vt_buf_putc(b, '\n');
  if (s->err || b->failed) {
    if (!s->err) s->err = ENOMEM;
  } else if (fwrite(b->p, 1, b->n, s->f) != b->n ||
             (s->flush_each && fflush(s->f) != 0)) {
    s->err = errno ? errno : EIO;
  }
  b->n = 0;
  b->failed = 0;
}

static void header(vt_stream *s, const vt_collector *c) {
  vt_buf *b = &s->line;
  vt_buf_puts(b, "{\"type\":\"trace\",\"trace_id\":\"");
  vt_buf_puts(b, c->trace_id);
  vt_buf_puts(b, "\",\"otel_salt\":\"");
  vt_buf_put_hex64(b, c->span_salt);
  vt_buf_puts(b, "\",\"version\":\"" VMTRACE_VERSION "\",\"start_unix_ns\":");
  vt_buf_put_i64(b, c->wall_epoch_ns);
  vt_buf_putc(b, '}');
  emit(s);
}

static void on_event(void *ud, const vt_collector *c, vt_hook_event ev, vt_id id) {
  vt_stream *s = ud;
  vt_buf *b = &s->line;
  vt_span_view v;
  if (ev == VT_HOOK_RESET) {
    header(s, c);
    return;
  }
  if (ev == VT_HOOK_CONTEXT) { /* joined a remote trace */
    vt_buf_puts(b, "{\"type\":\"context\",\"trace_id\":\"");
    vt_buf_puts(b, c->trace_id);
    vt_buf_puts(b, "\",\"remote_parent_span_id\":\"");
    vt_buf_put_hex64(b, c->remote_parent);
    vt_buf_puts(b, "\",\"remote_flags\":");
    vt_buf_put_u64(b, c->remote_flags);
    vt_buf_putc(b, '}');
    emit(s);
    return;
  }
  if (vt_collector_get(c, id, &v) != VT_OK) return;
  if (ev == VT_HOOK_META) {
    vt_buf_puts(b, "{\"type\":\"meta\",\"span_id\":");
    vt_buf_put_u64(b, id);
    vt_buf_puts(b, ",\"metadata\":");
    if (v.metadata) vt_json_write(b, v.metadata);
    else vt_buf_puts(b, "{}");
    vt_buf_putc(b, '}');
  } else {
    vt_buf_puts(b, ev == VT_HOOK_START ? "{\"type\":\"start\",\"span\":"
                                       : "{\"type\":\"end\",\"span\":");
    vt_json_write_span(b, c, &v);
    vt_buf_putc(b, '}');
  }
  emit(s);
}

vt_stream *vt_stream_open(vt_collector *c, FILE *f, int owns, int flush_each) {
  vt_stream *s = vt_calloc(1, sizeof *s);
  if (!s) return NULL;
  s->c = c;
  s->f = f;
  s->owns = owns;
  s->flush_each = flush_each;
  if (vt_collector_add_hook(c, on_event, s) != VT_OK) {
    vt_free(s);
    return NULL;
  }
  header(s, c);
  return s;
}

int vt_stream_error(const vt_stream *s) { return s->err; }

int vt_stream_close(vt_stream *s) {
  int err;
  if (!s) return 0;
  vt_collector_remove_hook(s->c, on_event, s);
  if (fflush(s->f) != 0 && !s->err) s->err = errno ? errno : EIO;
  if (s->owns && fclose(s->f) != 0 && !s->err) s->err = errno ? errno : EIO;
  err = s->err;
  vt_buf_free(&s->line);
  vt_free(s);
  return err;
}
