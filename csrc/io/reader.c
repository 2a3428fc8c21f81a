/*
 * reader.c: spans read back from a file: the JSON span list that
 * vmtrace.export("json") writes, or the NDJSON stream of vmtrace.stream, also
 * one cut short by a crash (its open spans come back as unfinished, ending
 * at the last time the stream saw).
 *
 * The input is read in a bounded window (64 KiB, plus the longest line or
 * span element, at most MAX_ITEM bytes): a file larger than memory streams
 * through, and bytes that cannot begin a line or element (/dev/zero) are
 * refused at once. Each span is checked and kept in a staging area in the
 * compact value encoding, so a refused file leaves the collector as it was;
 * only then is the collector reset into the file's trace and the spans
 * imported. In a stream, a torn or corrupt line is skipped and counted, and
 * everything else is kept. Open spans of a stream are found in a hash map,
 * so reading is linear however many are open. Ids that are sparse (a file
 * whose ids would make the span store mostly empty) are renumbered 1..N in
 * id order, so memory follows the spans held, not the id range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "io/json.h"
#include "otel/otel.h"

#define WINDOW 65536
#define MAX_ITEM ((size_t)256 << 20) /* the longest line or element read */
#define MAX_DEPTH 256
#define MAX_TIME ((int64_t)1 << 62) /* times within [0, 2^62) ns: sums cannot overflow */

/* A staged span: its object encoding at `off` in staging block `blk`. */
typedef struct staged {
  vt_id id, parent;
  size_t blk, off;
  size_t line;
  int unfinished;
} staged;

/* Staging is a list of blocks, each freed as soon as the spans it holds are
 * in the collector: reading a file takes about the memory of its spans once,
 * not twice. */
#define STAGE_BLOCK ((size_t)1 << 20)
typedef struct block {
  unsigned char *p;
  size_t n, cap;
  size_t live; /* staged spans in it still to import */
} block;

/* id -> index map (open addressing) */
typedef struct imap {
  vt_id *keys;
  size_t *vals;
  size_t mask, n;
} imap;

typedef struct reader {
  vt_load_result *r;
  /* the input */
  FILE *f;
  const char *text;
  size_t textlen, textpos;
  char win[WINDOW];
  size_t wlen, wpos;
  int eof;
  size_t line; /* the line the next byte is on */
  /* staging */
  block *blocks;   /* the staged span objects, one after the other */
  size_t nblocks, capblocks;
  staged *spans;
  size_t nspans, capspans;
  imap done;       /* ended spans: id -> index in spans (duplicates refused) */
  imap open;       /* stream: started, not ended: id -> index in spans */
  vt_vb meta;      /* stream: late metadata, one object per meta line */
  size_t *meta_at; /* offsets into meta */
  vt_id *meta_id;
  size_t nmeta, capmeta, capmeta2;
  vt_vb item;      /* the element or line being parsed */
  vt_buf raw;      /* its bytes */
  /* the trace */
  vt_trace_info info;
  int have_trace, have_epoch;
  int64_t last_ns; /* the latest time seen */
  int stream;
  int any_valid;   /* a stream line that was understood */
  size_t skip_line; /* the first line skipped, and why (for the result) */
  char skip_error[200];
} reader;

/* ---- id map ----------------------------------------------------------------------- */

static size_t hash_id(vt_id id) {
  uint64_t h = id * 0x9E3779B97F4A7C15ull;
  return (size_t)(h ^ (h >> 29));
}

static void imap_free(imap *m) {
  vt_free(m->keys);
  vt_free(m->vals);
  memset(m, 0, sizeof *m);
}

static int imap_grow(imap *m) {
  size_t cap = m->mask ? (m->mask + 1) * 2 : 64, i, j;
  vt_id *keys = vt_calloc(cap, sizeof *keys);
  size_t *vals = vt_malloc(cap * sizeof *vals);
  if (!keys || !vals) {
    vt_free(keys);
    vt_free(vals);
    return 0;
  }
  for (i = 0; m->mask && i <= m->mask; i++)
    if (m->keys[i]) {
      for (j = hash_id(m->keys[i]) & (cap - 1); keys[j]; j = (j + 1) & (cap - 1)) {
      }
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
  vt_free(m->keys);
  vt_free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->mask = cap - 1;
  return 1;
}

static size_t *imap_find(const imap *m, vt_id id) {
  size_t i;
  if (!m->mask) return NULL;
  for (i = hash_id(id) & m->mask; m->keys[i]; i = (i + 1) & m->mask)
    if (m->keys[i] == id) return &m->vals[i];
  return NULL;
}

static int imap_put(imap *m, vt_id id, size_t v) {
  size_t i, *at = imap_find(m, id);
  if (at) {
    *at = v;
    return 1;
  }
  if (2 * (m->n + 1) > (m->mask ? m->mask + 1 : 0) && !imap_grow(m)) return 0;
  for (i = hash_id(id) & m->mask; m->keys[i]; i = (i + 1) & m->mask) {
  }
  m->keys[i] = id;
  m->vals[i] = v;
  m->n++;
  return 1;
}

/* Remove with backward shift (linear probing). */
static void imap_del(imap *m, vt_id id) {
  size_t i, j, k;
  if (!m->mask) return;
  for (i = hash_id(id) & m->mask; m->keys[i] && m->keys[i] != id; i = (i + 1) & m->mask) {
  }
  if (!m->keys[i]) return;
  j = i;
  for (k = (j + 1) & m->mask; m->keys[k]; k = (k + 1) & m->mask) {
    size_t home = hash_id(m->keys[k]) & m->mask;
    if (((k - home) & m->mask) >= ((k - j) & m->mask)) {
      m->keys[j] = m->keys[k];
      m->vals[j] = m->vals[k];
      j = k;
    }
  }
  m->keys[j] = 0;
  m->n--;
}

static void imap_clear(imap *m) {
  if (m->mask) memset(m->keys, 0, (m->mask + 1) * sizeof *m->keys);
  m->n = 0;
}

static void free_blocks(reader *rd) {
  size_t i;
  for (i = 0; i < rd->nblocks; i++) vt_free(rd->blocks[i].p);
  rd->nblocks = 0;
}

/* ---- errors ------------------------------------------------------------------------ */

static int bad_at(reader *rd, size_t line, int status, const char *fmt, const char *what) {
  rd->r->line = line;
  snprintf(rd->r->error, sizeof rd->r->error, fmt, what);
  return status;
}

#define BAD(rd, line, msg) bad_at(rd, line, VT_EINVAL, "%s", msg)
#define OOM(rd, line) bad_at(rd, line, VT_ENOMEM, "%s", "out of memory")
/* A stream line to skip, and why (stream_line's 1). */
#define SKIP(rd, line, msg) (BAD(rd, line, msg), 1)

/* ---- input --------------------------------------------------------------------- */

/* The next byte, or -1 at the end (rd->eof) or on a read error (errno). */
static int next_byte(reader *rd) {
  if (rd->wpos == rd->wlen) {
    if (rd->eof) return -1;
    if (rd->f) {
      rd->wlen = fread(rd->win, 1, sizeof rd->win, rd->f);
      if (rd->wlen < sizeof rd->win) rd->eof = 1;
    } else {
      rd->wlen = rd->textlen - rd->textpos < sizeof rd->win ? rd->textlen - rd->textpos
                                                           : sizeof rd->win;
      memcpy(rd->win, rd->text + rd->textpos, rd->wlen);
      rd->textpos += rd->wlen;
      if (rd->textpos == rd->textlen) rd->eof = 1;
    }
    rd->wpos = 0;
    if (rd->wlen == 0) return -1;
  }
  return (unsigned char)rd->win[rd->wpos++];
}

static void unread(reader *rd) { rd->wpos--; }

/* ---- fields of a span object ---------------------------------------------------------- */

static const vt_value *field(const vt_value *o, const char *k) {
  return vt_value_get(o, k, strlen(k));
}

static int get_int(const vt_value *o, const char *k, int64_t *out) {
  const vt_value *v = field(o, k);
  if (vt_value_is_int(v, out)) return 1;
  if (v && vt_value_type(v) == VT_NUM) {
    double d = vt_value_num(v);
    if (d > -9.2e18 && d < 9.2e18) {
      *out = (int64_t)d;
      return 1;
    }
  }
  return 0;
}

/* An int field in ns, or its _ms twin times 1e6: 1, 0 when absent, -1 when
 * out of range. */
static int get_ns(const vt_value *o, const char *ns_key, const char *ms_key, int64_t *out) {
  int64_t v;
  if (get_int(o, ns_key, &v)) {
    if (v < 0 || v >= MAX_TIME) return -1;
    *out = v;
    return 1;
  }
  if (get_int(o, ms_key, &v)) {
    if (v < 0 || v >= MAX_TIME / 1000000) return -1;
    *out = v * 1000000;
    return 1;
  }
  return 0;
}

static const char *get_str(const vt_value *o, const char *k, size_t *len) {
  const vt_value *v = field(o, k);
  if (v && vt_value_type(v) == VT_STR) return vt_value_str(v, len);
  *len = 0;
  return NULL;
}

/* Take the trace id (and the salt behind the exported span ids) from the
 * input, once. An id that is no uuid keeps its text; its bytes stay zero and
 * vt_collector_reset_trace derives them from the text (and an input naming
 * no trace gets a fresh one there). An id that does not fit trace_id[48] is
 * refused: cut, it could end inside a UTF-8 sequence, and it would no longer
 * be the id its links name. So is one that is not UTF-8: the exports write
 * U+FFFD for each bad byte, so the id written would be another (and its three
 * bytes a byte could make it too long to load again). */
/* Is s valid UTF-8 throughout? */
static int utf8_ok(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k, bad;
  for (; i < n; i += k)
    if ((k = vt_utf8_len(p + i, n - i, &bad)) == 0) return 0;
  return 1;
}

static int take_trace(reader *rd, const vt_value *o, vt_id id, int header, size_t line) {
  size_t n, sl;
  const char *t = get_str(o, "trace_id", &n), *salt, *oid;
  uint64_t x;
  int64_t v;
  if (rd->have_trace || !t || !n) return VT_OK;
  if (n >= sizeof rd->info.trace_id) return BAD(rd, line, "trace id longer than 47 bytes");
  if (memchr(t, '\0', n)) return BAD(rd, line, "trace id holding a NUL byte");
  if (!utf8_ok(t, n)) return BAD(rd, line, "trace id that is not UTF-8");
  if (!vt_trace_id_parse(t, n, rd->info.trace_bytes)) memset(rd->info.trace_bytes, 0, 16);
  memcpy(rd->info.trace_id, t, n);
  rd->info.trace_id[n] = '\0';
  salt = get_str(o, header ? "otel_salt" : "otel_span_id", &sl);
  if (salt && sl == 16 && vt_unhex64(salt, 16, &x))
    rd->info.span_salt = header ? x : vt_otel_salt_of(id, x);
  oid = get_str(o, "remote_parent_span_id", &sl);
  if (oid && sl == 16 && vt_unhex64(oid, 16, &x)) rd->info.remote_parent = x;
  if (get_int(o, "remote_flags", &v)) rd->info.remote_flags = (unsigned)v;
  if (header && get_int(o, "dropped_spans", &v) && v > 0) rd->info.dropped = (uint64_t)v;
  rd->have_trace = 1;
  return VT_OK;
}

/* Check a span object; fills id and parent. */
static int check_span(reader *rd, const vt_value *o, size_t line, vt_id *id, vt_id *parent,
                      int unfinished) {
  int64_t x = 0, t;
  size_t n;
  const char *kind;
  if (!o || vt_value_type(o) != VT_OBJ) return BAD(rd, line, "a span must be a JSON object");
  if (!get_int(o, "span_id", &x) || x <= 0) return BAD(rd, line, "span without a positive span_id");
  *id = (vt_id)x;
  if (*id > ((vt_id)1 << 40)) return BAD(rd, line, "span id out of range (1 to 2^40)");
  kind = get_str(o, "kind", &n);
  if (!kind || vt_kind_parse(kind, n) < 0) {
    char k[48];
    size_t m = kind ? (n < sizeof k - 1 ? n : sizeof k - 1) : 6;
    memcpy(k, kind ? kind : "(none)", m);
    k[m] = '\0';
    return bad_at(rd, line, VT_EINVAL, "unknown span kind '%s'", k);
  }
  if (!get_str(o, "name", &n)) return BAD(rd, line, "span without a name");
  x = 0;
  get_int(o, "parent_id", &x);
  if (x >= (int64_t)*id) return BAD(rd, line, "parent_id must be smaller than span_id");
  *parent = x > 0 ? (vt_id)x : 0;
  switch (get_ns(o, "start_unix_ns", "start_unix_ms", &t)) {
    case 0: return BAD(rd, line, "span without start_unix_ns or start_unix_ms");
    case -1: return BAD(rd, line, "start_unix_ns out of range (0 to 2^62)");
  }
  if (get_ns(o, "start_ns", "start_ms", &x) < 0) return BAD(rd, line, "start_ns out of range");
  if (!unfinished) switch (get_ns(o, "duration_ns", "duration_ms", &x)) {
      case 0: return BAD(rd, line, "span without duration_ns or duration_ms");
      case -1: return BAD(rd, line, "duration_ns out of range (0 to 2^62)");
    }
  return VT_OK;
}

/* Keep the span object o (in rd->item) in the staging area. */
static int stage(reader *rd, const vt_value *o, size_t line, vt_id id, vt_id parent,
                 int unfinished, size_t *index) {
  staged *s;
  block *b;
  size_t size;
  if (!vt_grow((void **)&rd->spans, &rd->capspans, rd->nspans + 1, sizeof *rd->spans))
    return OOM(rd, line);
  size = vt_value_size(o);
  b = rd->nblocks ? &rd->blocks[rd->nblocks - 1] : NULL;
  if (!b || b->cap - b->n < size) { /* a new block */
    if (!vt_grow((void **)&rd->blocks, &rd->capblocks, rd->nblocks + 1, sizeof *rd->blocks))
      return OOM(rd, line);
    b = &rd->blocks[rd->nblocks];
    b->cap = size > STAGE_BLOCK ? size : STAGE_BLOCK;
    b->n = b->live = 0;
    if (!(b->p = vt_malloc(b->cap))) return OOM(rd, line);
    rd->nblocks++;
  }
  s = &rd->spans[rd->nspans];
  s->id = id;
  s->parent = parent;
  s->blk = rd->nblocks - 1;
  s->off = b->n;
  s->line = line;
  s->unfinished = unfinished;
  memcpy(b->p + b->n, o, size);
  b->n += size;
  if (index) *index = rd->nspans;
  rd->nspans++;
  return VT_OK;
}

static void see_time(reader *rd, const vt_value *o, int ended) {
  int64_t s = 0, d = 0, ns = 0;
  get_ns(o, "start_unix_ns", "start_unix_ms", &s);
  if (ended) get_ns(o, "duration_ns", "duration_ms", &d);
  if (s + d > rd->last_ns) rd->last_ns = s + d;
  if (!rd->have_epoch && get_ns(o, "start_ns", "start_ms", &ns) > 0) {
    rd->info.wall_epoch_ns = s - ns;
    rd->have_epoch = 1;
  }
}

/* A completed span (an element of a span list, or an end line). */
static int add_done(reader *rd, const vt_value *o, size_t line) {
  vt_id id, parent;
  size_t at;
  int rc = check_span(rd, o, line, &id, &parent, 0);
  if (rc != VT_OK) return rc;
  if (imap_find(&rd->done, id)) {
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)id);
    return bad_at(rd, line, VT_EEXIST, "span %s appears twice", num);
  }
  if ((rc = take_trace(rd, o, id, 0, line)) != VT_OK) return rc;
  see_time(rd, o, 1);
  if (!parent) { /* a root of a joined remote trace knows the remote span */
    size_t sl;
    uint64_t rp;
    const char *h = get_str(o, "remote_parent_span_id", &sl);
    if (h && sl == 16 && vt_unhex64(h, 16, &rp)) rd->info.remote_parent = rp;
  }
  if ((rc = stage(rd, o, line, id, parent, 0, &at)) != VT_OK) return rc;
  return imap_put(&rd->done, id, at) ? VT_OK : OOM(rd, line);
}

/* ---- the JSON span list ------------------------------------------------------------- */

/* Read the bytes of one element (a value) into rd->raw, string-aware. */
static int read_element(reader *rd, size_t *start_line) {
  int ch, depth = 0, in_str = 0, esc = 0;
  rd->raw.n = 0;
  *start_line = rd->line;
  for (;;) {
    ch = next_byte(rd);
    if (ch < 0) return depth || in_str ? -1 : 1;
    if (ch == '\n') rd->line++;
    if (in_str) {
      if (esc) esc = 0;
      else if (ch == '\\') esc = 1;
      else if (ch == '"') in_str = 0;
    } else if (ch == '"') {
      in_str = 1;
    } else if (ch == '{' || ch == '[') {
      depth++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0) { /* the end of the array */
        unread(rd);
        return 1;
      }
      depth--;
    } else if (ch == ',' && depth == 0) {
      unread(rd);
      return 1;
    } else if (ch == 0) {
      return 0; /* no JSON text holds a NUL byte */
    }
    if (rd->raw.n >= MAX_ITEM) return 0;
    vt_buf_putc(&rd->raw, (char)ch);
    if (rd->raw.failed) return -2;
    if (depth == 0 && !in_str && (ch == '}' || ch == ']')) return 1;
  }
}

static int skip_ws(reader *rd) {
  int ch;
  for (;;) {
    ch = next_byte(rd);
    if (ch == '\n') rd->line++;
    if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') return ch;
  }
}

static int parse_item(reader *rd, size_t line, const char *what) {
  const char *err = NULL;
  size_t at = 0, i;
  rd->item.n = 0;
  rd->item.nopen = 0;
  rd->item.failed = 0;
  if (!vt_json_parse_into(&rd->item, rd->raw.p ? rd->raw.p : "", rd->raw.n, MAX_DEPTH, &err, &at)) {
    if (err && !strcmp(err, "out of memory")) return OOM(rd, line);
    for (i = 0; i < at && i < rd->raw.n; i++) /* the line of the problem */
      if (rd->raw.p[i] == '\n') line++;
    (void)what;
    return BAD(rd, line, err ? err : "invalid JSON");
  }
  return VT_OK;
}

static int load_array(reader *rd) {
  int ch = skip_ws(rd), rc;
  size_t line;
  if (ch != '[') return BAD(rd, rd->line, "expected '['");
  ch = skip_ws(rd);
  if (ch == ']') goto end;
  unread(rd);
  for (;;) {
    int64_t dropped;
    ch = skip_ws(rd);
    if (ch < 0) return BAD(rd, rd->line, "unexpected end of input");
    unread(rd);
    rc = read_element(rd, &line);
    if (rc == -2) return OOM(rd, line);
    if (rc == 0) return BAD(rd, rd->line, rd->raw.n >= MAX_ITEM ? "a span longer than 256 MiB"
                                                               : "unexpected character");
    if (rc < 0) { /* the input ended inside it: the parser says where it went wrong */
      rc = parse_item(rd, line, "span");
      return rc != VT_OK ? rc : BAD(rd, rd->line, "unexpected end of input");
    }
    if ((rc = parse_item(rd, line, "span")) != VT_OK) return rc;
    {
      const vt_value *o = vt_vb_value(&rd->item);
      if (vt_value_type(o) == VT_OBJ && !field(o, "span_id") && get_int(o, "dropped_spans", &dropped) &&
          dropped >= 0) /* how many spans the exporting collector dropped */
        rd->info.dropped += (uint64_t)dropped;
      else if ((rc = add_done(rd, o, line)) != VT_OK)
        return rc;
    }
    ch = skip_ws(rd);
    if (ch == ',') continue;
    if (ch == ']') break;
    return BAD(rd, rd->line, ch < 0 ? "unexpected end of input" : "expected ',' or ']'");
  }
end:
  ch = skip_ws(rd);
  if (ch >= 0) return BAD(rd, rd->line, "unexpected text after the array");
  return VT_OK;
}

/* ---- the NDJSON stream --------------------------------------------------------------- */

/* Read one line into rd->raw: 1, 2 for a last line without its newline, 0
 * at the end, -1 for a line too long, -2 out of memory, -3 a byte no line
 * may hold (NUL). */
static int read_line(reader *rd) {
  int ch, any = 0;
  rd->raw.n = 0;
  for (;;) {
    ch = next_byte(rd);
    if (ch < 0) return any ? 2 : 0;
    any = 1;
    if (ch == '\n') return 1;
    if (ch == 0) return -3;
    if (rd->raw.n >= MAX_ITEM) return -1;
    vt_buf_putc(&rd->raw, (char)ch);
    if (rd->raw.failed) return -2;
  }
}

/* A new trace in the stream (the first, or a reset): what the live collector
 * held after it is this trace's spans alone. */
static int new_trace(reader *rd, const vt_value *o, size_t line) {
  rd->nspans = 0;
  free_blocks(rd);
  rd->nmeta = 0;
  rd->meta.n = 0;
  imap_clear(&rd->done);
  imap_clear(&rd->open);
  memset(&rd->info, 0, sizeof rd->info);
  rd->have_trace = rd->have_epoch = 0;
  rd->last_ns = 0;
  {
    int64_t ns;
    if (get_int(o, "start_unix_ns", &ns) && ns >= 0) {
      rd->info.wall_epoch_ns = ns;
      rd->have_epoch = 1;
    }
  }
  return take_trace(rd, o, 0, 1, line);
}

/* One line of a stream: VT_OK, 1 for a line to skip (corrupt), or an error. */
static int stream_line(reader *rd, size_t line) {
  const vt_value *o, *span;
  size_t n;
  const char *type;
  int rc;
  if (rd->raw.n == 0 || (rd->raw.n == 1 && rd->raw.p[0] == '\r')) return VT_OK;
  rc = parse_item(rd, line, "line");
  if (rc == VT_ENOMEM) return rc;
  if (rc != VT_OK) return 1;
  o = vt_vb_value(&rd->item);
  type = vt_value_type(o) == VT_OBJ ? get_str(o, "type", &n) : NULL;
  if (!type) return SKIP(rd, line, "a line that is no object with a \"type\"");
  if (n == 5 && !memcmp(type, "trace", 5)) {
    if ((rc = new_trace(rd, o, line)) != VT_OK) return rc;
  } else if ((n == 5 && !memcmp(type, "start", 5)) || (n == 3 && !memcmp(type, "end", 3))) {
    vt_id id, parent;
    size_t at;
    int ended = n == 3;
    span = field(o, "span");
    if (check_span(rd, span, line, &id, &parent, !ended) != VT_OK) return 1;
    if (imap_find(&rd->done, id)) { /* ended twice */
      char num[24];
      snprintf(num, sizeof num, "%llu", (unsigned long long)id);
      bad_at(rd, line, VT_EEXIST, "span %s ends twice", num);
      return 1;
    }
    if ((rc = take_trace(rd, span, id, 0, line)) != VT_OK) return rc;
    see_time(rd, span, ended);
    if (ended) {
      imap_del(&rd->open, id);
      if ((rc = stage(rd, span, line, id, parent, 0, &at)) != VT_OK) return rc;
      if (!imap_put(&rd->done, id, at)) return OOM(rd, line);
    } else {
      if ((rc = stage(rd, span, line, id, parent, 1, &at)) != VT_OK) return rc;
      if (!imap_put(&rd->open, id, at)) return OOM(rd, line);
    }
  } else if (n == 7 && !memcmp(type, "context", 7)) { /* joined a remote trace */
    rd->have_trace = 0;
    if ((rc = take_trace(rd, o, 0, 0, line)) != VT_OK) return rc;
  } else if (n == 4 && !memcmp(type, "meta", 4)) {
    int64_t id;
    const vt_value *m = field(o, "metadata");
    if (!get_int(o, "span_id", &id) || id <= 0 || !m || vt_value_type(m) != VT_OBJ)
      return SKIP(rd, line, "a meta line without a positive span_id and a metadata object");
    if (!vt_grow((void **)&rd->meta_at, &rd->capmeta, rd->nmeta + 1, sizeof *rd->meta_at) ||
        !vt_grow((void **)&rd->meta_id, &rd->capmeta2, rd->nmeta + 1, sizeof *rd->meta_id))
      return OOM(rd, line);
    rd->meta_at[rd->nmeta] = rd->meta.n;
    rd->meta_id[rd->nmeta++] = (vt_id)id;
    vt_vb_copy(&rd->meta, m);
    if (rd->meta.failed) return OOM(rd, line);
  } else {
    return SKIP(rd, line, "unknown line type");
  }
  rd->any_valid = 1;
  return VT_OK;
}

/* A line skipped: the first one's place and reason (in r->error, from
 * stream_line) are kept for the result. */
static void skipped(reader *rd, size_t line) {
  if (rd->r->skipped_lines++ == 0) {
    rd->skip_line = line;
    memcpy(rd->skip_error, rd->r->error, sizeof rd->skip_error);
  }
}

static int load_stream(reader *rd) {
  for (;;) {
    size_t line = rd->line;
    int rc = read_line(rd);
    if (rc == 0) break;
    if (rc == -1) return BAD(rd, line, "a line longer than 256 MiB");
    if (rc == -2) return OOM(rd, line);
    if (rc == -3) {
      if (!rd->any_valid) return BAD(rd, line, "not a JSON span list nor an NDJSON stream");
      BAD(rd, line, "a NUL byte"); /* skip the rest of the line */
      skipped(rd, line);
      while ((rc = next_byte(rd)) >= 0 && rc != '\n') {
      }
      rd->line++;
      continue;
    }
    rd->line++;
    if (rc == 2) { /* the last line, without its newline: maybe cut by a crash */
      rc = stream_line(rd, line);
      if (rc == 1) rd->r->torn_tail = 1; /* cut short: expected after a crash */
      else if (rc != VT_OK) return rc;
      break;
    }
    rc = stream_line(rd, line);
    if (rc == 1) skipped(rd, line);
    else if (rc != VT_OK) return rc;
  }
  if (!rd->any_valid) return BAD(rd, 1, "not a JSON span list nor an NDJSON stream");
  /* open when the stream ended: unfinished, staged after the ended ones */
  {
    size_t i, j = 0, nopen = 0;
    staged *keep = vt_malloc((rd->nspans + 1) * sizeof *keep);
    if (!keep) return OOM(rd, rd->line);
    for (i = 0; i < rd->nspans; i++) /* the ended spans, in finish order */
      if (!rd->spans[i].unfinished) keep[j++] = rd->spans[i];
    for (i = 0; i < rd->nspans; i++) { /* then the latest start of each open one */
      size_t *at = rd->spans[i].unfinished ? imap_find(&rd->open, rd->spans[i].id) : NULL;
      if (at && *at == i) {
        keep[j++] = rd->spans[i];
        nopen++;
      }
    }
    vt_free(rd->spans);
    rd->spans = keep;
    rd->nspans = j;
    rd->capspans = rd->nspans + 1;
    rd->r->unfinished = nopen;
  }
  return VT_OK;
}

/* ---- into the collector ----------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b) {
  vt_id x = *(const vt_id *)a, y = *(const vt_id *)b;
  return x < y ? -1 : x > y;
}

/* The new id of old id x under renumbering (ids sorted): present ids get
 * 2 * (rank + 1); an id not present gets the odd number below its place,
 * which keeps every parent before its child. */
static vt_id renumber(const vt_id *ids, size_t n, vt_id x) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (ids[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n && ids[lo] == x) return 2 * (vt_id)(lo + 1);
  return 2 * (vt_id)lo + 1;
}

/* Are the ids so sparse that the store would be mostly empty, or spread
 * wider than vt_collector_import takes in whatever order they come? */
static int sparse(const vt_id *ids, size_t n) {
  size_t chunks = 0, i;
  if (!n) return 0;
  if (ids[n - 1] - ids[0] >= VT_IMPORT_RANGE) return 1;
  if ((ids[n - 1] >> 12) * sizeof(void *) > 65536 + n * sizeof(void *)) return 1;
  for (i = 0; i < n; i++)
    if (i == 0 || (ids[i] >> 12) != (ids[i - 1] >> 12)) chunks++;
  return chunks * 4096 > 8 * n + 65536;
}

typedef struct scratch {
  vt_link *links;
  size_t caplinks;
  vt_event *events;
  size_t capevents;
  vt_vb meta;
  char (*linkids)[24];
  size_t capids;
} scratch;

/* The view of staged span s (pointers into the staging area and scratch). */
static int view_of(reader *rd, const staged *s, vt_span_view *v, scratch *x, const vt_id *ids,
                   int renum) {
  const vt_value *o = (const vt_value *)(rd->blocks[s->blk].p + s->off), *a, *e;
  int64_t t = 0;
  size_t n, i;
  vt_iter it;
  memset(v, 0, sizeof *v);
  v->id = renum ? renumber(ids, rd->nspans, s->id) : s->id;
  v->parent = s->parent ? (renum ? renumber(ids, rd->nspans, s->parent) : s->parent) : 0;
  {
    const char *k = get_str(o, "kind", &n);
    v->kind = (vt_kind)vt_kind_parse(k, n);
  }
  v->name = get_str(o, "name", &v->name_len);
  if (get_int(o, "track", &t) && t >= 0 && t <= UINT32_MAX) v->track = (uint32_t)t;
  get_ns(o, "start_unix_ns", "start_unix_ms", &v->start_unix_ns);
  get_ns(o, "start_ns", "start_ms", &v->start_ns);
  if (s->unfinished) {
    v->duration_ns = rd->last_ns > v->start_unix_ns ? rd->last_ns - v->start_unix_ns : 0;
  } else {
    get_ns(o, "duration_ns", "duration_ms", &v->duration_ns);
  }
  if (v->start_unix_ns + v->duration_ns >= MAX_TIME) v->duration_ns = 0;
  a = field(o, "metadata");
  v->metadata = a && vt_value_type(a) == VT_OBJ ? a : NULL;
  if (s->unfinished) { /* metadata + unfinished = true */
    vt_vb_reset(&x->meta);
    vt_vb_obj(&x->meta);
    if (v->metadata) {
      const char *k;
      size_t kl;
      const vt_value *item;
      vt_value_iter(v->metadata, &it);
      while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
        vt_vb_key(&x->meta, k, kl);
        vt_vb_copy(&x->meta, item);
      }
    }
    vt_vb_key(&x->meta, "unfinished", 10);
    vt_vb_bool(&x->meta, 1);
    vt_vb_end(&x->meta);
    if (!(v->metadata = vt_vb_value(&x->meta))) return 0;
  }
  a = field(o, "links");
  if (a && vt_value_type(a) == VT_ARR && (n = vt_value_count(a)) > 0) {
    if (!vt_grow((void **)&x->links, &x->caplinks, n, sizeof *x->links) ||
        !vt_grow((void **)&x->linkids, &x->capids, n, sizeof *x->linkids))
      return 0;
    vt_value_iter(a, &it);
    for (i = 0; (e = vt_iter_next(&it, NULL, NULL)) != NULL; i++) {
      vt_link *l = &x->links[i];
      const vt_value *attr = field(e, "attributes");
      l->trace_id = get_str(e, "trace_id", &l->trace_id_len);
      l->span_id = get_str(e, "span_id", &l->span_id_len);
      if (!l->trace_id) l->trace_id = "";
      if (!l->span_id) l->span_id = "";
      l->attributes = attr && vt_value_type(attr) == VT_OBJ ? attr : NULL;
      if (renum && l->span_id_len && l->span_id_len < 20 &&
          strspn(l->span_id, "0123456789") >= l->span_id_len && l->trace_id_len == strlen(rd->info.trace_id) &&
          !memcmp(l->trace_id, rd->info.trace_id, l->trace_id_len)) { /* a local span */
        char tmp[24];
        memcpy(tmp, l->span_id, l->span_id_len);
        tmp[l->span_id_len] = '\0';
        snprintf(x->linkids[i], sizeof x->linkids[i], "%llu",
                 (unsigned long long)renumber(ids, rd->nspans, (vt_id)strtoull(tmp, NULL, 10)));
        l->span_id = x->linkids[i];
        l->span_id_len = strlen(x->linkids[i]);
      }
    }
    v->links = x->links;
    v->nlinks = n;
  }
  a = field(o, "events");
  if (a && vt_value_type(a) == VT_ARR && (n = vt_value_count(a)) > 0) {
    if (!vt_grow((void **)&x->events, &x->capevents, n, sizeof *x->events)) return 0;
    vt_value_iter(a, &it);
    for (i = 0; (e = vt_iter_next(&it, NULL, NULL)) != NULL; i++) {
      vt_event *ev = &x->events[i];
      const vt_value *attr = field(e, "attributes");
      ev->name = get_str(e, "name", &ev->name_len);
      if (!ev->name) ev->name = "";
      ev->time_unix_ns = ev->offset_ns = 0;
      if (get_ns(e, "time_unix_ns", "time_unix_ms", &ev->time_unix_ns) < 0) ev->time_unix_ns = 0;
      if (get_ns(e, "offset_ns", "offset_ms", &ev->offset_ns) < 0) ev->offset_ns = 0;
      ev->attributes = attr && vt_value_type(attr) == VT_OBJ ? attr : NULL;
    }
    v->events = x->events;
    v->nevents = n;
  }
  return 1;
}

static int import_all(reader *rd, vt_collector *c) {
  vt_id *ids = NULL;
  size_t i;
  int renum = 0, rc = VT_OK;
  scratch x;
  memset(&x, 0, sizeof x);
  vt_vb_init(&x.meta);
  if (rd->nspans) {
    if (!(ids = vt_malloc(rd->nspans * sizeof *ids))) return OOM(rd, rd->line);
    for (i = 0; i < rd->nspans; i++) ids[i] = rd->spans[i].id;
    qsort(ids, rd->nspans, sizeof *ids, cmp_id);
    renum = sparse(ids, rd->nspans);
  }
  rd->r->renumbered = (size_t)renum;
  for (i = 0; i < rd->nblocks; i++) rd->blocks[i].live = 0;
  for (i = 0; i < rd->nspans; i++) rd->blocks[rd->spans[i].blk].live++;
  for (i = 0; i < rd->nblocks; i++) /* only superseded starts in it */
    if (!rd->blocks[i].live) {
      vt_free(rd->blocks[i].p);
      rd->blocks[i].p = NULL;
    }
  vt_collector_reset_trace(c, &rd->info);
  for (i = 0; i < rd->nspans && rc == VT_OK; i++) {
    vt_span_view v;
    block *b = &rd->blocks[rd->spans[i].blk];
    if (!view_of(rd, &rd->spans[i], &v, &x, ids, renum)) rc = VT_ENOMEM;
    else rc = vt_collector_import(c, &v);
    if (--b->live == 0) { /* its spans are in the collector: give it back */
      vt_free(b->p);
      b->p = NULL;
    }
    if (rc != VT_OK) {
      bad_at(rd, rd->spans[i].line, rc == VT_ENOMEM ? VT_ENOMEM : VT_EINVAL, "%s",
             rc == VT_ENOMEM ? "out of memory (the trace read so far was dropped)"
                             : "span cannot be added");
      vt_collector_reset(c);
    }
  }
  for (i = 0; i < rd->nmeta && rc == VT_OK; i++) { /* late metadata */
    vt_id id = renum ? renumber(ids, rd->nspans, rd->meta_id[i]) : rd->meta_id[i];
    vt_collector_merge_metadata(c, id, (const vt_value *)(rd->meta.p + rd->meta_at[i]));
  }
  if (rc == VT_OK) rd->r->spans = vt_collector_count(c);
  vt_free(ids);
  vt_free(x.links);
  vt_free(x.events);
  vt_free(x.linkids);
  vt_vb_free(&x.meta);
  return rc;
}

static int load(vt_collector *c, reader *rd) {
  int ch, rc;
  vt_vb_init(&rd->meta);
  vt_vb_init(&rd->item);
  vt_buf_init(&rd->raw);
  rd->line = 1;
  memset(rd->r, 0, sizeof *rd->r);
  ch = skip_ws(rd);
  if (ch < 0) {
    rc = rd->f && ferror(rd->f) ? VT_EIO
                                : BAD(rd, 1, "empty input (expected a JSON span list or an NDJSON stream)");
    if (rc == VT_EIO) bad_at(rd, rd->line, VT_EIO, "%s", strerror(errno));
  } else {
    unread(rd);
    rd->stream = ch != '[';
    rc = rd->stream ? load_stream(rd) : load_array(rd);
    if (rc == VT_OK && rd->f && ferror(rd->f)) {
      int e = errno;
      rc = bad_at(rd, rd->line, VT_EIO, "%s", strerror(e));
      errno = e;
    }
    if (rc == VT_OK) rc = import_all(rd, c);
    if (rc == VT_OK) { /* what was skipped, not the message a later line left */
      rd->r->line = rd->r->skipped_lines ? rd->skip_line : 0;
      memcpy(rd->r->error, rd->skip_error, sizeof rd->r->error);
    }
  }
  free_blocks(rd);
  vt_free(rd->blocks);
  vt_vb_free(&rd->meta);
  vt_vb_free(&rd->item);
  vt_buf_free(&rd->raw);
  imap_free(&rd->done);
  imap_free(&rd->open);
  vt_free(rd->spans);
  vt_free(rd->meta_at);
  vt_free(rd->meta_id);
  return rc;
}

int vt_collector_load(vt_collector *c, FILE *f, vt_load_result *r) {
  reader *rd = vt_calloc(1, sizeof *rd);
  int rc;
  if (!rd) {
    memset(r, 0, sizeof *r);
    snprintf(r->error, sizeof r->error, "out of memory");
    r->line = 1;
    return VT_ENOMEM;
  }
  rd->r = r;
  rd->f = f;
  rc = load(c, rd);
  vt_free(rd);
  return rc;
}

int vt_collector_load_text(vt_collector *c, const char *text, size_t len, vt_load_result *r) {
  reader *rd = vt_calloc(1, sizeof *rd);
  int rc;
  if (!rd) {
    memset(r, 0, sizeof *r);
    snprintf(r->error, sizeof r->error, "out of memory");
    r->line = 1;
    return VT_ENOMEM;
  }
  rd->r = r;
  rd->text = text;
  rd->textlen = len;
  rd->eof = len == 0;
  rc = load(c, rd);
  vt_free(rd);
  return rc;
}
