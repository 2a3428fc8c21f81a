/*
 * export.c: the entry points that send a format to a file, a path or a
 * string; the id map the writers share; and the JSON span list (whose span
 * objects the NDJSON stream writes too).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"
#include "io/file.h"
#include "otel/otel.h"

/* ---- id map --------------------------------------------------------------------- */

static size_t id_hash(vt_id id) {
  uint64_t h = id * 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 29));
}

int vt_idmap_init(vt_idmap *m, size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  m->keys = vt_calloc(cap, sizeof *m->keys);
  m->vals = vt_malloc(cap * sizeof *m->vals);
  m->mask = cap - 1;
  m->n = 0;
  if (!m->keys || !m->vals) {
    vt_idmap_free(m);
    return 0;
  }
  return 1;
}

void vt_idmap_free(vt_idmap *m) {
  vt_free(m->keys);
  vt_free(m->vals);
  m->keys = NULL;
  m->vals = NULL;
}

uint32_t vt_idmap_get(const vt_idmap *m, vt_id id) {
  size_t i;
  for (i = id_hash(id) & m->mask; m->keys[i]; i = (i + 1) & m->mask)
    if (m->keys[i] == id) return m->vals[i];
  return VT_NONE;
}

int vt_idmap_put(vt_idmap *m, vt_id id, uint32_t v) {
  size_t i;
  if (2 * (m->n + 1) > m->mask + 1) { /* grow */
    vt_idmap g;
    size_t j;
    if (!vt_idmap_init(&g, m->n + 1)) return 0;
    for (j = 0; j <= m->mask; j++)
      if (m->keys[j]) {
        for (i = id_hash(m->keys[j]) & g.mask; g.keys[i]; i = (i + 1) & g.mask) {
        }
        g.keys[i] = m->keys[j];
        g.vals[i] = m->vals[j];
      }
    g.n = m->n;
    vt_idmap_free(m);
    *m = g;
  }
  for (i = id_hash(id) & m->mask; m->keys[i]; i = (i + 1) & m->mask)
    if (m->keys[i] == id) {
      m->vals[i] = v;
      return 1;
    }
  m->keys[i] = id;
  m->vals[i] = v;
  m->n++;
  return 1;
}

/* ---- JSON span list --------------------------------------------------------------- */

static void put_key(vt_buf *b, const char *k) { /* ,"k": */
  vt_buf_putc(b, ',');
  vt_buf_putc(b, '"');
  vt_buf_puts(b, k);
  vt_buf_put(b, "\":", 2);
}

static void put_int_field(vt_buf *b, const char *k, int64_t v) {
  put_key(b, k);
  vt_buf_put_i64(b, v);
}

void vt_write_span_json(vt_buf *b, const vt_trace_info *t, const vt_span_view *v) {
  size_t i;
  vt_buf_puts(b, "{\"trace_id\":");
  vt_json_write_str(b, t->trace_id, strlen(t->trace_id));
  put_int_field(b, "span_id", (int64_t)v->id);
  if (v->parent) put_int_field(b, "parent_id", (int64_t)v->parent);
  put_key(b, "kind");
  vt_buf_putc(b, '"');
  vt_buf_puts(b, vt_kind_name((int)v->kind));
  vt_buf_putc(b, '"');
  put_key(b, "name");
  vt_json_write_str(b, v->name, v->name_len);
  put_int_field(b, "start_ms", v->start_ns / 1000000);
  put_int_field(b, "start_unix_ms", v->start_unix_ns / 1000000);
  if (!v->open) put_int_field(b, "duration_ms", v->duration_ns / 1000000);
  put_int_field(b, "start_ns", v->start_ns);
  put_int_field(b, "start_unix_ns", v->start_unix_ns);
  if (!v->open) put_int_field(b, "duration_ns", v->duration_ns);
  put_int_field(b, "track", v->track);
  put_key(b, "otel_span_id");
  vt_buf_putc(b, '"');
  vt_buf_put_hex64(b, vt_otel_span_id(t->span_salt, v->id));
  vt_buf_putc(b, '"');
  if (!v->parent && t->remote_parent) { /* a root of a joined remote trace */
    put_key(b, "remote_parent_span_id");
    vt_buf_putc(b, '"');
    vt_buf_put_hex64(b, t->remote_parent);
    vt_buf_putc(b, '"');
  }
  if (v->metadata) {
    put_key(b, "metadata");
    vt_json_write(b, v->metadata);
  }
  if (v->nlinks) {
    put_key(b, "links");
    vt_buf_putc(b, '[');
    for (i = 0; i < v->nlinks; i++) {
      const vt_link *l = &v->links[i];
      if (i) vt_buf_putc(b, ',');
      vt_buf_puts(b, "{\"trace_id\":");
      vt_json_write_str(b, l->trace_id, l->trace_id_len);
      put_key(b, "span_id");
      vt_json_write_str(b, l->span_id, l->span_id_len);
      if (l->attributes) {
        put_key(b, "attributes");
        vt_json_write(b, l->attributes);
      }
      vt_buf_putc(b, '}');
    }
    vt_buf_putc(b, ']');
  }
  if (v->nevents) {
    put_key(b, "events");
    vt_buf_putc(b, '[');
    for (i = 0; i < v->nevents; i++) {
      const vt_event *e = &v->events[i];
      if (i) vt_buf_putc(b, ',');
      vt_buf_puts(b, "{\"name\":");
      vt_json_write_str(b, e->name, e->name_len);
      put_int_field(b, "time_unix_ms", e->time_unix_ns / 1000000);
      put_int_field(b, "offset_ms", e->offset_ns / 1000000);
      put_int_field(b, "time_unix_ns", e->time_unix_ns);
      put_int_field(b, "offset_ns", e->offset_ns);
      if (e->attributes) {
        put_key(b, "attributes");
        vt_json_write(b, e->attributes);
      }
      vt_buf_putc(b, '}');
    }
    vt_buf_putc(b, ']');
  }
  vt_buf_putc(b, '}');
}

int vt_export_json(const vt_collector *c, vt_buf *b) {
  size_t i, n = vt_collector_count(c);
  vt_trace_info t;
  vt_collector_trace_info(c, &t);
  vt_buf_putc(b, '[');
  for (i = 0; i < n && !b->failed; i++) {
    vt_span_view v;
    vt_collector_get(c, vt_collector_completed_id(c, i), &v);
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    vt_write_span_json(b, &t, &v);
  }
  if (t.dropped) { /* the spans not kept: the last element says how many */
    vt_buf_puts(b, n ? ",\n{\"dropped_spans\":" : "\n{\"dropped_spans\":");
    vt_buf_put_u64(b, t.dropped);
    vt_buf_putc(b, '}');
  }
  vt_buf_put(b, "\n]\n", 3);
  return b->failed ? VT_ENOMEM : VT_OK;
}

/* ---- OTLP/JSON (the span writer, in otlp.c, needs no collector) ---------------- */

int vt_export_otlp(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  vt_otlp_ctx x;
  vt_trace_info t;
  size_t i, n = vt_collector_count(c);
  vt_collector_trace_info(c, &t);
  vt_otlp_memo memo;
  vt_otlp_ctx_of(&t, &o->limits, &x);
  memset(&memo, 0, sizeof memo);
  x.memo = &memo;
  vt_otlp_write_head(b, o, t.dropped);
  for (i = 0; i < n && !b->failed; i++) {
    vt_span_view v;
    vt_collector_get(c, vt_collector_completed_id(c, i), &v);
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    vt_otlp_write_span(b, &x, &v);
  }
  vt_otlp_write_tail(b);
  return b->failed ? VT_ENOMEM : VT_OK;
}

/* ---- entry points ----------------------------------------------------------------- */

static const char *const format_names[VT_FORMAT_COUNT] = {
    "json", "otlp", "chrome", "folded", "profile", "summary", "html"};
static const char *const weight_names[VT_WEIGHT_COUNT] = {"time", "tokens", "cost"};

static int parse_name(const char *const *names, int n, const char *s, size_t len) {
  int i;
  for (i = 0; i < n; i++)
    if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0) return i;
  return -1;
}

const char *vt_format_name(int fmt) {
  return fmt >= 0 && fmt < VT_FORMAT_COUNT ? format_names[fmt] : NULL;
}
int vt_format_parse(const char *s, size_t len) {
  return parse_name(format_names, VT_FORMAT_COUNT, s, len);
}
const char *vt_weight_name(int w) {
  return w >= 0 && w < VT_WEIGHT_COUNT ? weight_names[w] : NULL;
}
int vt_weight_parse(const char *s, size_t len) {
  return parse_name(weight_names, VT_WEIGHT_COUNT, s, len);
}

static int export_to(const vt_collector *c, vt_format fmt, const vt_export_opts *o, vt_buf *b) {
  vt_export_opts none;
  if (!o) {
    memset(&none, 0, sizeof none);
    o = &none;
  }
  switch (fmt) {
    case VT_FORMAT_JSON: return vt_export_json(c, b);
    case VT_FORMAT_OTLP: return vt_export_otlp(c, o, b);
    case VT_FORMAT_CHROME: return vt_export_chrome(c, b);
    case VT_FORMAT_FOLDED: return vt_export_folded(c, o, b);
    case VT_FORMAT_PROFILE: return vt_export_profile_text(c, b);
    case VT_FORMAT_SUMMARY: return vt_export_summary(c, b);
    case VT_FORMAT_HTML: return vt_export_html(c, o, b);
    default: return VT_EINVAL;
  }
}

/* The status of a finished write into b: VT_EIO with errno, or VT_ENOMEM. */
static int buf_status(vt_buf *b, int rc) {
  if (b->failed && b->err) {
    errno = b->err;
    return VT_EIO;
  }
  if (b->failed && rc == VT_OK) return VT_ENOMEM;
  return rc;
}

int vt_collector_export(const vt_collector *c, vt_format fmt, const vt_export_opts *o, FILE *f) {
  vt_buf b;
  int rc;
  vt_buf_init_file(&b, f);
  rc = export_to(c, fmt, o, &b);
  if (!b.failed) vt_buf_flush(&b);
  if (!b.failed && fflush(f) != 0) {
    b.err = errno ? errno : EIO;
    b.failed = 1;
  }
  rc = buf_status(&b, rc);
  vt_buf_free(&b);
  return rc;
}

char *vt_collector_export_string(const vt_collector *c, vt_format fmt, const vt_export_opts *o,
                                 size_t *len) {
  vt_buf b;
  vt_buf_init(&b);
  if (export_to(c, fmt, o, &b) != VT_OK) {
    vt_buf_free(&b);
    return NULL;
  }
  return vt_buf_take(&b, len);
}

int vt_collector_export_path(const vt_collector *c, vt_format fmt, const vt_export_opts *o,
                             const char *path) {
  vt_replace r;
  int e = vt_replace_open(&r, path), rc, e2;
  if (e) {
    errno = e;
    return e == ENOMEM ? VT_ENOMEM : VT_EIO;
  }
  rc = vt_collector_export(c, fmt, o, r.f);
  e = errno;
  e2 = vt_replace_close(&r, rc == VT_OK);
  if (rc == VT_OK && e2) {
    errno = e2;
    return VT_EIO;
  }
  errno = e;
  return rc;
}

char *vt_collector_summary(const vt_collector *c, size_t *len) {
  return vt_collector_export_string(c, VT_FORMAT_SUMMARY, NULL, len);
}
