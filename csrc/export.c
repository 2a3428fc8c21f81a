/*
 * export.c: what the streaming writers share (text and number output, span
 * ids as exported, an id map, iteration in id order), the JSON span list, and
 * the entry points that send a format to a file or a string. Every writer
 * goes through a vt_buf, which with a file is a bounded window: exports never
 * build the whole trace in memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- text ---------------------------------------------------------------------- */

static const char hexd[] = "0123456789abcdef";

void vt_buf_put_hex(vt_buf *b, const unsigned char *p, size_t n) {
  size_t i;
  if (!vt_buf_grow(b, 2 * n)) return;
  for (i = 0; i < n; i++) {
    b->p[b->n++] = hexd[p[i] >> 4];
    b->p[b->n++] = hexd[p[i] & 15];
  }
}

void vt_hex64(uint64_t v, char out[17]) {
  int i;
  for (i = 15; i >= 0; i--, v >>= 4) out[i] = hexd[v & 15];
  out[16] = '\0';
}

void vt_buf_put_hex64(vt_buf *b, uint64_t v) {
  char h[17];
  vt_hex64(v, h);
  vt_buf_put(b, h, 16);
}

void vt_buf_put_ms(vt_buf *b, int64_t ns) {
  char frac[4];
  uint64_t u;
  if (ns < 0) {
    vt_buf_putc(b, '-');
    u = (uint64_t)0 - (uint64_t)ns;
  } else {
    u = (uint64_t)ns;
  }
  vt_buf_put_u64(b, u / 1000000);
  u = (u % 1000000) / 1000;
  frac[0] = '.';
  frac[1] = (char)('0' + u / 100);
  frac[2] = (char)('0' + u / 10 % 10);
  frac[3] = (char)('0' + u % 10);
  vt_buf_put(b, frac, 4);
}

void vt_buf_put_text(vt_buf *b, const char *s, size_t len, int folded) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, n, bad;
  while (i < len) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if (folded && c == ';') c = ':';
      else if (folded && (c == '\n' || c == '\r')) c = ' ';
      vt_buf_putc(b, (char)c);
      i++;
    } else if ((n = vt_utf8_len(p + i, len - i, &bad)) != 0) {
      vt_buf_put(b, p + i, n);
      i += n;
    } else {
      vt_buf_put(b, "\xEF\xBF\xBD", 3);
      i += bad;
    }
  }
}

/* ---- ids ---------------------------------------------------------------------- */

uint64_t vt_collector_otel_span_id(const vt_collector *c, vt_id id) {
  return vt_otel_id(c->span_salt, id);
}

uint64_t vt_otel_id(uint64_t salt, vt_id id) {
  /* splitmix64's finalizer is a bijection: distinct ids of one collector
   * never collide, and the random salt keeps processes apart */
  uint64_t z = salt + id;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return z ? z : 1;
}

vt_id vt_next_completed(const vt_collector *c, vt_id after) {
  vt_id id = after + 1;
  while (id < c->next_id) {
    size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS);
    const vt_chunk *ch = k < c->nchunks ? c->chunks[k] : NULL;
    if (!ch) { /* a freed chunk: skip it whole */
      id = (vt_id)(k + 1) * VT_CHUNK_SIZE + 1;
      continue;
    }
    if (ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)].state == VT_DONE) return id;
    id++;
  }
  return 0;
}

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

void vt_json_write_span(vt_buf *b, const vt_collector *c, const vt_span_view *v) {
  size_t i;
  vt_buf_puts(b, "{\"trace_id\":\"");
  vt_buf_puts(b, c->trace_id);
  vt_buf_putc(b, '"');
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
  vt_buf_put_hex64(b, vt_collector_otel_span_id(c, v->id));
  vt_buf_putc(b, '"');
  if (!v->parent && c->remote_parent) { /* a root of a joined remote trace */
    put_key(b, "remote_parent_span_id");
    vt_buf_putc(b, '"');
    vt_buf_put_hex64(b, c->remote_parent);
    vt_buf_putc(b, '"');
  }
  if (v->metadata && v->metadata->child) {
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
      if (l->attributes && l->attributes->child) {
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
      if (e->attributes && e->attributes->child) {
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
  size_t i;
  vt_buf_putc(b, '[');
  for (i = 0; i < c->ndone && !b->failed; i++) {
    vt_span_view v;
    vt_collector_get(c, c->done[i], &v);
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    vt_json_write_span(b, c, &v);
  }
  if (c->dropped) { /* the spans not kept: the last element says how many */
    vt_buf_puts(b, c->ndone ? ",\n{\"dropped_spans\":" : "\n{\"dropped_spans\":");
    vt_buf_put_u64(b, c->dropped);
    vt_buf_putc(b, '}');
  }
  vt_buf_put(b, "\n]\n", 3);
  return b->failed ? VT_ENOMEM : VT_OK;
}

/* ---- entry points ----------------------------------------------------------------- */

static int export_to(const vt_collector *c, vt_format fmt,
                     const vt_export_opts *o, vt_buf *b) {
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
  }
  return VT_EINVAL;
}

int vt_collector_export(const vt_collector *c, vt_format fmt,
                        const vt_export_opts *o, FILE *f) {
  vt_buf b;
  int rc;
  memset(&b, 0, sizeof b);
  b.f = f;
  rc = export_to(c, fmt, o, &b);
  if (!b.failed) vt_buf_flush(&b);
  if (!b.failed && fflush(f) != 0) {
    b.err = errno ? errno : EIO;
    b.failed = 1;
  }
  if (b.failed && b.err) {
    errno = b.err;
    rc = VT_EIO;
  } else if (b.failed && rc == VT_OK) {
    rc = VT_ENOMEM;
  }
  vt_buf_free(&b);
  return rc;
}

char *vt_collector_export_string(const vt_collector *c, vt_format fmt,
                                 const vt_export_opts *o, size_t *len) {
  vt_buf b;
  memset(&b, 0, sizeof b);
  if (export_to(c, fmt, o, &b) != VT_OK || (vt_buf_putc(&b, '\0'), b.failed)) {
    vt_buf_free(&b);
    return NULL;
  }
  if (len) *len = b.n - 1;
  return b.p;
}
