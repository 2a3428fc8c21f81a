/*
 * html.c: the self-contained HTML report. The page (report/report.html with
 * its CSS and JS inlined, embedded at build time in report_template.h) is
 * written around the trace's data in the compact encoding of
 * report/FORMAT.md: spans as parallel integer arrays (ids and starts as
 * deltas), names, keys, event names and link trace ids deduplicated into one
 * string table, metadata, events and links as sparse tables. Every string is
 * valid UTF-8 with <, >, & and U+2028/9 escaped, so names and metadata are
 * shown, never run. The writer streams: one pass over the spans per array,
 * memory for the string table only.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"
#include "export/report_template.h"

/* ---- the string table: bytes -> index, in order of first use --------------------- */

typedef struct strtab {
  char **s;
  size_t *len;
  size_t n, cap, caplen;
  uint32_t *slots; /* index + 1 */
  size_t mask;
  int failed;
} strtab;

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  while (n--) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
  return h;
}

static int tab_grow(strtab *t) {
  size_t cap = t->mask ? (t->mask + 1) * 2 : 256, i;
  uint32_t *slots = vt_calloc(cap, sizeof *slots);
  if (!slots) return 0;
  for (i = 0; i < t->n; i++) {
    size_t j = (size_t)hash(t->s[i], t->len[i]) & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = (uint32_t)i + 1;
  }
  vt_free(t->slots);
  t->slots = slots;
  t->mask = cap - 1;
  return 1;
}

/* The index of s in the table (added when new); 0 when out of memory. */
static size_t tab_id(strtab *t, const char *s, size_t n) {
  size_t j;
  char *copy;
  if (t->failed) return 0;
  if (2 * (t->n + 1) > (t->mask ? t->mask + 1 : 0) && !tab_grow(t)) goto oom;
  for (j = (size_t)hash(s, n) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
    size_t i = t->slots[j] - 1;
    if (t->len[i] == n && memcmp(t->s[i], s, n) == 0) return i;
  }
  if (!vt_grow((void **)&t->s, &t->cap, t->n + 1, sizeof *t->s) ||
      !vt_grow((void **)&t->len, &t->caplen, t->n + 1, sizeof *t->len) || !(copy = vt_memdup(s, n)))
    goto oom;
  t->s[t->n] = copy;
  t->len[t->n] = n;
  t->slots[j] = (uint32_t)++t->n;
  return t->n - 1;
oom:
  t->failed = 1;
  return 0;
}

static void tab_free(strtab *t) {
  size_t i;
  for (i = 0; i < t->n; i++) vt_free(t->s[i]);
  vt_free(t->s);
  vt_free(t->len);
  vt_free(t->slots);
}

/* ---- the data -------------------------------------------------------------------- */

static void chunks(vt_buf *b, const char *const *c) {
  for (; *c; c++) vt_buf_puts(b, *c);
}

static void comma(vt_buf *b, size_t i) {
  if (i) vt_buf_putc(b, ',');
}

enum { COL_ID, COL_PARENT, COL_KIND, COL_NAME, COL_TRACK, COL_START, COL_DURATION, NCOLS };
static const char *const col_names[NCOLS] = {"id", "parent", "kind", "name", "track", "start",
                                             "duration"};

static void column(const vt_collector *c, vt_buf *b, int col, int64_t origin, strtab *t) {
  vt_id id, prev_id = 0;
  int64_t prev_start = 0;
  size_t i = 0;
  vt_buf_puts(b, col ? ",\n\"" : "\n\"");
  vt_buf_puts(b, col_names[col]);
  vt_buf_puts(b, "\":[");
  for (id = vt_collector_next_completed(c, 0); id && !b->failed; id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    int64_t start;
    vt_collector_get(c, id, &v);
    comma(b, i++);
    switch (col) {
      case COL_ID: vt_buf_put_i64(b, (int64_t)(id - prev_id)); break;
      case COL_PARENT: vt_buf_put_i64(b, v.parent ? (int64_t)(id - v.parent) : 0); break;
      case COL_KIND: vt_buf_put_i64(b, (int64_t)v.kind); break;
      case COL_NAME: vt_buf_put_u64(b, (uint64_t)tab_id(t, v.name, v.name_len)); break;
      case COL_TRACK: vt_buf_put_u64(b, v.track); break;
      case COL_START:
        start = v.start_unix_ns - origin;
        vt_buf_put_i64(b, start - prev_start);
        prev_start = start;
        break;
      default: vt_buf_put_i64(b, v.duration_ns); break;
    }
    prev_id = id;
  }
  vt_buf_putc(b, ']');
}

static void sparse(const vt_collector *c, vt_buf *b, const char *what, strtab *t) {
  vt_id id;
  size_t idx = 0, n = 0, i;
  vt_buf_puts(b, ",\n\"");
  vt_buf_puts(b, what);
  vt_buf_puts(b, "\":[");
  for (id = vt_collector_next_completed(c, 0); id && !b->failed;
       id = vt_collector_next_completed(c, id), idx++) {
    vt_span_view v;
    vt_collector_get(c, id, &v);
    if (what[0] == 'm' && v.metadata) { /* [idx, key, value, ...] */
      vt_iter it;
      const vt_value *item;
      const char *k;
      size_t kl;
      comma(b, n++);
      vt_buf_putc(b, '[');
      vt_buf_put_u64(b, idx);
      vt_value_iter(v.metadata, &it);
      while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
        vt_buf_putc(b, ',');
        vt_buf_put_u64(b, (uint64_t)tab_id(t, k, kl));
        vt_buf_putc(b, ',');
        vt_json_write_html(b, item);
      }
      vt_buf_putc(b, ']');
    } else if (what[0] == 'e') { /* [idx, name, offset (, attributes)] */
      for (i = 0; i < v.nevents; i++) {
        const vt_event *e = &v.events[i];
        comma(b, n++);
        vt_buf_putc(b, '[');
        vt_buf_put_u64(b, idx);
        vt_buf_putc(b, ',');
        vt_buf_put_u64(b, (uint64_t)tab_id(t, e->name, e->name_len));
        vt_buf_putc(b, ',');
        vt_buf_put_i64(b, e->offset_ns);
        if (e->attributes) {
          vt_buf_putc(b, ',');
          vt_json_write_html(b, e->attributes);
        }
        vt_buf_putc(b, ']');
      }
    } else if (what[0] == 'l') { /* [idx, trace_id, span_id (, attributes)] */
      for (i = 0; i < v.nlinks; i++) {
        const vt_link *l = &v.links[i];
        comma(b, n++);
        vt_buf_putc(b, '[');
        vt_buf_put_u64(b, idx);
        vt_buf_putc(b, ',');
        vt_buf_put_u64(b, (uint64_t)tab_id(t, l->trace_id, l->trace_id_len));
        vt_buf_putc(b, ',');
        vt_json_write_str_html(b, l->span_id, l->span_id_len);
        if (l->attributes) {
          vt_buf_putc(b, ',');
          vt_json_write_html(b, l->attributes);
        }
        vt_buf_putc(b, ']');
      }
    }
  }
  vt_buf_putc(b, ']');
}

int vt_export_html(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  vt_trace_info info;
  vt_llm_totals tot;
  strtab t;
  vt_id id;
  int64_t origin = INT64_MAX, generated;
  int k, rc = VT_OK;
  size_t i;
  memset(&t, 0, sizeof t);
  vt_collector_trace_info(c, &info);
  vt_collector_llm_totals(c, &tot);
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    vt_span_view v;
    vt_collector_get(c, id, &v);
    if (v.start_unix_ns < origin) origin = v.start_unix_ns;
  }
  if (origin == INT64_MAX) origin = 0;
  generated = o->generated_unix_ms ? o->generated_unix_ms : vt_clock_wall_ns() / 1000000;
  chunks(b, report_head);
  vt_buf_puts(b, "{\"format\":\"vmtrace-report\",\"version\":1,\"trace_id\":");
  vt_json_write_str_html(b, info.trace_id, strlen(info.trace_id));
  vt_buf_puts(b, ",\"generated_at_unix_ms\":");
  vt_buf_put_i64(b, generated);
  vt_buf_puts(b, ",\"origin_unix_ns\":\"");
  vt_buf_put_i64(b, origin);
  vt_buf_puts(b, "\",\"time_unit_ns\":1,\"dropped\":");
  vt_buf_put_u64(b, info.dropped);
  vt_buf_puts(b, ",\"count\":");
  vt_buf_put_u64(b, vt_collector_count(c));
  vt_buf_puts(b, ",\"kinds\":[");
  for (k = 0; k < VT_KIND_COUNT; k++) {
    comma(b, (size_t)k);
    vt_buf_putc(b, '"');
    vt_buf_puts(b, vt_kind_name(k));
    vt_buf_putc(b, '"');
  }
  vt_buf_puts(b, "],\"totals\":{\"llm_calls\":");
  vt_buf_put_u64(b, tot.calls);
  vt_buf_puts(b, ",\"input_tokens\":");
  vt_buf_put_i64(b, tot.input);
  vt_buf_puts(b, ",\"output_tokens\":");
  vt_buf_put_i64(b, tot.output);
  vt_buf_puts(b, ",\"cache_read_tokens\":");
  vt_buf_put_i64(b, tot.cache_read);
  vt_buf_puts(b, ",\"cache_write_tokens\":");
  vt_buf_put_i64(b, tot.cache_write);
  vt_buf_puts(b, ",\"cost_usd\":");
  vt_json_write_num(b, tot.cost_usd);
  vt_buf_puts(b, ",\"unpriced_calls\":");
  vt_buf_put_u64(b, tot.unpriced);
  vt_buf_puts(b, "},\n\"spans\":{");
  for (k = 0; k < NCOLS; k++) column(c, b, k, origin, &t);
  vt_buf_putc(b, '}');
  sparse(c, b, "meta", &t);
  sparse(c, b, "events", &t);
  sparse(c, b, "links", &t);
  vt_buf_puts(b, ",\n\"strings\":[");
  for (i = 0; i < t.n; i++) {
    comma(b, i);
    vt_json_write_str_html(b, t.s[i], t.len[i]);
  }
  vt_buf_puts(b, "]}");
  chunks(b, report_tail);
  if (t.failed) rc = VT_ENOMEM;
  tab_free(&t);
  if (rc == VT_OK && b->failed) rc = VT_ENOMEM;
  return rc;
}
