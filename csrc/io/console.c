/*
 * console.c: the console exporter (OTEL_TRACES_EXPORTER=console,
 * vmtrace.otlp.start{exporter = "console"}). A subscriber of the event bus
 * that writes each finished span of a sampled trace as one line to a file
 * descriptor (stderr) at once: what a developer reads while a script runs.
 * It needs no HTTP library, so it lives in the core module.
 *
 *   vmtrace: llm_call "plan" trace_id=<32 hex> span_id=<16 hex>
 *     parent_span_id=<16 hex> duration_ms=25.000 status=error events=1
 *     attributes={"model":"..."}                          (one line)
 *
 * The ids are the exported (OTLP, W3C) ones; the name and the attributes
 * (the span's metadata) are JSON, so a line never breaks. As the
 * OpenTelemetry specification says of its console exporter, the format is
 * for people, not a stable or standard one.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "io/console.h"
#include "io/json.h"
#include "otel/otel.h"

struct vt_console {
  vt_collector *c; /* NULL once the collector is gone */
  int fd;
  vt_trace_info info;
  vt_buf line;
};

static void write_line(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* a console that cannot be written to: nothing to do */
    p += w;
    n -= (size_t)w;
  }
}

static void on_event(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  vt_console *k = ud;
  vt_buf *b = &k->line;
  vt_span_view v;
  const vt_value *status;
  char hex[33];
  if (ev == VT_EV_CLOSE) {
    vt_collector_unsubscribe(c, on_event, k);
    k->c = NULL;
    return;
  }
  if (ev == VT_EV_RESET || ev == VT_EV_CONTEXT) {
    vt_collector_trace_info(c, &k->info);
    return;
  }
  if (ev != VT_EV_END || !k->info.sampled || vt_collector_get(c, id, &v) != VT_OK) return;
  b->n = 0;
  b->failed = 0;
  vt_buf_puts(b, "vmtrace: ");
  vt_buf_puts(b, vt_kind_name((int)v.kind));
  vt_buf_putc(b, ' ');
  vt_json_write_str(b, v.name, v.name_len);
  vt_hex(k->info.trace_bytes, 16, hex);
  vt_buf_puts(b, " trace_id=");
  vt_buf_put(b, hex, 32);
  vt_buf_puts(b, " span_id=");
  vt_buf_put_hex64(b, vt_otel_span_id(k->info.span_salt, v.id));
  if (v.parent || k->info.remote_parent) {
    vt_buf_puts(b, " parent_span_id=");
    vt_buf_put_hex64(b, v.parent ? vt_otel_span_id(k->info.span_salt, v.parent)
                                 : k->info.remote_parent);
  }
  vt_buf_puts(b, " duration_ms=");
  vt_buf_put_milli(b, v.duration_ns / 1000);
  status = vt_value_get(v.metadata, "status", 6);
  if (status && vt_value_type(status) == VT_STR) {
    size_t n;
    const char *s = vt_value_str(status, &n);
    if (n == 5 && memcmp(s, "error", 5) == 0) vt_buf_puts(b, " status=error");
  }
  if (v.nevents) {
    vt_buf_puts(b, " events=");
    vt_buf_put_u64(b, v.nevents);
  }
  if (v.nlinks) {
    vt_buf_puts(b, " links=");
    vt_buf_put_u64(b, v.nlinks);
  }
  if (v.metadata && vt_value_count(v.metadata)) {
    vt_buf_puts(b, " attributes=");
    vt_json_write(b, v.metadata);
  }
  vt_buf_putc(b, '\n');
  if (!b->failed) write_line(k->fd, b->p, b->n);
}

vt_console *vt_console_open(vt_collector *c, int fd) {
  vt_console *k = vt_calloc(1, sizeof *k);
  if (!k) return NULL;
  k->c = c;
  k->fd = fd;
  vt_buf_init(&k->line);
  vt_collector_trace_info(c, &k->info);
  if (vt_collector_subscribe(c, on_event, k) != VT_OK) {
    vt_free(k);
    return NULL;
  }
  return k;
}

void vt_console_close(vt_console *k) {
  if (!k) return;
  if (k->c) vt_collector_unsubscribe(k->c, on_event, k);
  vt_buf_free(&k->line);
  vt_free(k);
}
