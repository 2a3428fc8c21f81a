/*
 * otlp.c: OTLP/JSON, an ExportTraceServiceRequest as an OpenTelemetry
 * Collector's otlphttp receiver takes it: hex trace and span ids, enums as
 * integers, 64-bit integers as decimal strings, typed attributes. llm_call and
 * tool_call spans also carry the GenAI semantic-convention attributes, a
 * failed span status ERROR and error.type (its exception events go out as
 * the events they are), every span vmtrace.kind and the joined traceState.
 * The OpenTelemetry span limits (attribute count, value length, events,
 * links) are applied here, with the dropped counts set as the protocol says.
 * The span writer needs no collector: the exporter thread calls it on the
 * records it owns.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "export/export.h"
#include "otel/otel.h"

/* OTel SpanKind: INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5. */
static int otel_kind(vt_kind k) {
  switch (k) {
    case VT_LLM_CALL: return 3;
    case VT_POOL_SUBMIT:
    case VT_CHANNEL_EMIT: return 4;
    case VT_POOL_DEQUEUE:
    case VT_CHANNEL_MATCH: return 5;
    default: return 1;
  }
}

/* The first `limit` characters (code points) of s: its byte length. */
static size_t cut(const char *s, size_t len, size_t limit) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, chars = 0, bad, n;
  if (!limit) return len;
  while (i < len && chars < limit) {
    n = vt_utf8_len(p + i, len - i, &bad);
    i += n ? n : bad;
    chars++;
  }
  return i;
}

static void str_value(vt_buf *b, const char *s, size_t len, size_t limit) {
  vt_buf_puts(b, "{\"stringValue\":");
  vt_json_write_str(b, s, cut(s, len, limit));
  vt_buf_putc(b, '}');
}

static void any_value(vt_buf *b, const vt_value *v, size_t limit);

static void key_value(vt_buf *b, const char *key, size_t klen, const vt_value *v, size_t limit) {
  vt_buf_puts(b, "{\"key\":");
  vt_json_write_str(b, key, klen);
  vt_buf_puts(b, ",\"value\":");
  any_value(b, v, limit);
  vt_buf_putc(b, '}');
}

static void any_value(vt_buf *b, const vt_value *v, size_t limit) {
  vt_iter it;
  const vt_value *item;
  const char *k, *s;
  size_t kl, n;
  int first = 1;
  switch (v ? vt_value_type(v) : VT_NULL) {
    case VT_FALSE: vt_buf_puts(b, "{\"boolValue\":false}"); break;
    case VT_TRUE: vt_buf_puts(b, "{\"boolValue\":true}"); break;
    case VT_NUM:
      vt_buf_puts(b, "{\"doubleValue\":");
      vt_json_write_num(b, vt_value_num(v));
      vt_buf_putc(b, '}');
      break;
    case VT_INT:
      vt_buf_puts(b, "{\"intValue\":\"");
      vt_buf_put_i64(b, vt_value_int(v));
      vt_buf_puts(b, "\"}");
      break;
    case VT_STR:
      s = vt_value_str(v, &n);
      str_value(b, s, n, limit);
      break;
    case VT_ARR:
    case VT_OBJ:
      vt_buf_puts(b, vt_value_type(v) == VT_ARR ? "{\"arrayValue\":{\"values\":["
                                                 : "{\"kvlistValue\":{\"values\":[");
      vt_value_iter(v, &it);
      while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
        if (!first) vt_buf_putc(b, ',');
        first = 0;
        if (it.object) key_value(b, k, kl, item, limit);
        else any_value(b, item, limit);
      }
      vt_buf_puts(b, "]}}");
      break;
    default: vt_buf_puts(b, "{}"); break; /* null: an empty value */
  }
}

/* A string literal, its length known at compile time. */
#define PUTL(b, lit) vt_buf_put(b, lit, sizeof lit - 1)

/* The span writer makes room once for a run of pieces whose longest form it
 * knows, then writes them at a cursor o without a check each (a put checks
 * and updates b->n each time, and must load them again after every store:
 * for a span, that was most of its cost). room: where n more bytes go, or
 * NULL once b has failed (nothing more is written); set: the run written.
 * Strings over FAST_STR bytes, and values other than strings and integers,
 * go through the checked writers (a string takes six times its length at
 * most: room made for that would hold a window of a file much larger). */
static inline char *room(vt_buf *b, size_t n) {
  if (VT_LIKELY(n <= b->cap - b->n) || vt_buf_grow(b, n)) return b->p + b->n;
  return NULL;
}
static inline void set(vt_buf *b, char *o) { b->n = (size_t)(o - b->p); }
#define CPY(o, s, n) (memcpy(o, s, n), (o) += (n))
#define LIT(o, lit) CPY(o, lit, sizeof lit - 1)
#define FAST_STR 256

/* An attribute list being written: a comma when due, the count limit. */
typedef struct attrs {
  vt_buf *b;
  size_t n, max, dropped, limit;
} attrs;

/* May one more attribute be written (else it is counted as dropped)? */
static inline int attr_ok(attrs *a) {
  if (a->max && a->n >= a->max) {
    a->dropped++;
    return 0;
  }
  return 1;
}

/* Room for an attribute of at most n bytes, with the comma before it
 * written when due: the cursor, or NULL. */
static inline char *attr_open(attrs *a, size_t n) {
  char *o = room(a->b, n + 1);
  if (o && a->n++) *o++ = ',';
  return o;
}

/* The same for a writer that puts (the slow paths). */
static void attr_comma(attrs *a) {
  if (a->n++) vt_buf_putc(a->b, ',');
}

static void attr_int_n(attrs *a, const char *k, size_t kl, int64_t v) {
  char *o;
  if (!attr_ok(a) || !(o = attr_open(a, kl + 64))) return;
  LIT(o, "{\"key\":\"");
  CPY(o, k, kl);
  LIT(o, "\",\"value\":{\"intValue\":\"");
  o = vt_i64_to(o, v);
  LIT(o, "\"}}");
  set(a->b, o);
}

/* A string attribute, its key a literal (copied as it is). plain: v is known
 * to need no escaping (a kind's name, a conventions' word) and is copied as
 * it is, unless the length limit cuts it; else it is escaped (and cut).
 * Inlined where plain is 1 (a few bytes copied on every span, the lengths
 * known at compile time); attr_str_n is the one out-of-line copy for the
 * values that may need escaping. */
#define STRING_VALUE "\",\"value\":{\"stringValue\":"
static inline __attribute__((always_inline)) void attr_string(attrs *a, const char *k, size_t kl,
                                                              const char *v, size_t vlen, int plain) {
  char *o;
  if (!attr_ok(a)) return;
  if (plain && !(a->limit && vlen > a->limit)) {
    if (!(o = attr_open(a, kl + vlen + 48))) return;
    LIT(o, "{\"key\":\"");
    CPY(o, k, kl);
    LIT(o, STRING_VALUE "\"");
    CPY(o, v, vlen);
    LIT(o, "\"}}");
    set(a->b, o);
    return;
  }
  vlen = cut(v, vlen, a->limit);
  if (vlen <= FAST_STR) {
    if (!(o = attr_open(a, kl + VT_JSON_STR_MAX(vlen) + 48))) return;
    LIT(o, "{\"key\":\"");
    CPY(o, k, kl);
    LIT(o, STRING_VALUE);
    o = vt_json_put_str(o, v, vlen);
    LIT(o, "}}");
    set(a->b, o);
    return;
  }
  attr_comma(a);
  PUTL(a->b, "{\"key\":\"");
  vt_buf_put(a->b, k, kl);
  PUTL(a->b, STRING_VALUE);
  vt_json_write_str(a->b, v, vlen);
  PUTL(a->b, "}}");
}

static void attr_str_n(attrs *a, const char *k, size_t kl, const char *v, size_t vlen) {
  attr_string(a, k, kl, v, vlen, 0);
}

/* k is a string literal (its length known at compile time). */
#define attr_str(a, k, v, n) attr_str_n(a, k, sizeof k - 1, v, n)
#define attr_plain(a, k, v, n) attr_string(a, k, sizeof k - 1, v, n, 1)
#define attr_int(a, k, v) attr_int_n(a, k, sizeof k - 1, v)

/* An attribute of an object's item (its key escaped). Strings and integers,
 * what metadata mostly holds, at a cursor; other values through key_value. */
static void attr_item(attrs *a, const char *k, size_t kl, const vt_value *v) {
  char *o;
  const char *s;
  size_t n;
  if (!attr_ok(a)) return;
  if (kl <= FAST_STR) switch (vt_value_type(v)) {
      case VT_STR:
        s = vt_value_str(v, &n);
        n = cut(s, n, a->limit);
        if (n > FAST_STR) break;
        if (!(o = attr_open(a, VT_JSON_STR_MAX(kl) + VT_JSON_STR_MAX(n) + 48))) return;
        LIT(o, "{\"key\":");
        o = vt_json_put_str(o, k, kl);
        LIT(o, ",\"value\":{\"stringValue\":");
        o = vt_json_put_str(o, s, n);
        LIT(o, "}}");
        set(a->b, o);
        return;
      case VT_INT:
        if (!(o = attr_open(a, VT_JSON_STR_MAX(kl) + 64))) return;
        LIT(o, "{\"key\":");
        o = vt_json_put_str(o, k, kl);
        LIT(o, ",\"value\":{\"intValue\":\"");
        o = vt_i64_to(o, vt_value_int(v));
        LIT(o, "\"}}");
        set(a->b, o);
        return;
      default: break;
    }
  attr_comma(a);
  key_value(a->b, k, kl, v, a->limit);
}

/* Every key of an object as attributes. */
static void attr_object(attrs *a, const vt_value *obj) {
  vt_iter it;
  const vt_value *v;
  const char *k;
  size_t kl;
  if (!obj) return;
  vt_value_iter(obj, &it);
  while ((v = vt_iter_next(&it, &k, &kl)) != NULL) attr_item(a, k, kl, v);
}

/* The metadata keys the writer looks at, found in one pass over the span's
 * metadata (a lookup each would scan it a dozen times per span). The pass
 * also keeps the first KNOWN_ITEMS items and where it was after them: the
 * metadata's attributes are written from those, not from a second pass. */
#define KNOWN_ITEMS 16
typedef struct known {
  const vt_value *status, *error, *error_type, *tool_name, *response_id, *finish_reasons,
      *input, *output, *cache_read, *cache_write;
  int genai; /* some key starts with gen_ai. */
  size_t nitems;
  vt_iter rest; /* the items after those in item (left 0: none) */
  struct {
    const char *k;
    size_t kl;
    const vt_value *v;
  } item[KNOWN_ITEMS];
} known;

static int key_is(const char *k, size_t kl, const char *lit, size_t n) {
  return kl == n && memcmp(k, lit, n) == 0;
}

static void scan(const vt_value *m, known *kn) {
  vt_iter it;
  const vt_value *v;
  const char *k;
  size_t kl;
  memset(kn, 0, offsetof(known, item));
  if (!m || vt_value_type(m) != VT_OBJ) return;
  vt_value_iter(m, &it);
  while ((v = vt_iter_next(&it, &k, &kl)) != NULL) {
    if (kn->nitems < KNOWN_ITEMS) {
      kn->item[kn->nitems].k = k;
      kn->item[kn->nitems].kl = kl;
      kn->item[kn->nitems].v = v;
      if (++kn->nitems == KNOWN_ITEMS) kn->rest = it;
    }
    switch (kl) {
      case 5: if (key_is(k, kl, "error", 5)) kn->error = v; break;
      case 6: if (key_is(k, kl, "status", 6)) kn->status = v; break;
      case 9: if (key_is(k, kl, "tool_name", 9)) kn->tool_name = v; break;
      case 10: if (key_is(k, kl, "error.type", 10)) kn->error_type = v; break;
      case 11: if (key_is(k, kl, "response_id", 11)) kn->response_id = v; break;
      case 12: if (key_is(k, kl, "input_tokens", 12)) kn->input = v; break;
      case 13: if (key_is(k, kl, "output_tokens", 13)) kn->output = v; break;
      case 14: if (key_is(k, kl, "finish_reasons", 14)) kn->finish_reasons = v; break;
      case 17: if (key_is(k, kl, "cache_read_tokens", 17)) kn->cache_read = v; break;
      case 18: if (key_is(k, kl, "cache_write_tokens", 18)) kn->cache_write = v; break;
      default: break;
    }
    if (kl > 7 && memcmp(k, "gen_ai.", 7) == 0) kn->genai = 1;
  }
}

/* The span's metadata as attributes: the items scan kept, then the rest. A
 * metadata that is not an object (scan kept nothing) is iterated as it is. */
static void attr_metadata(attrs *a, const vt_value *m, known *kn) {
  const vt_value *v;
  const char *k;
  size_t i, kl;
  if (m && vt_value_type(m) != VT_OBJ) {
    attr_object(a, m);
    return;
  }
  for (i = 0; i < kn->nitems; i++) attr_item(a, kn->item[i].k, kn->item[i].kl, kn->item[i].v);
  while ((v = vt_iter_next(&kn->rest, &k, &kl)) != NULL) attr_item(a, k, kl, v);
}

static const vt_value *meta(const vt_span_view *v, const char *k) {
  return vt_value_get(v->metadata, k, strlen(k));
}

/* A GenAI attribute, unless the span's metadata has that key itself (the
 * script's value wins; attr_object writes it). */
#define gen_str(a, kn, v, k, s, n) \
  do { if (!(kn)->genai || !meta(v, k)) attr_str(a, k, s, n); } while (0)
#define gen_int(a, kn, v, k, n) \
  do { if (!(kn)->genai || !meta(v, k)) attr_int(a, k, n); } while (0)

static int is(const char *s, size_t n, const char *lit) {
  return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

/* gen_ai.provider.name for vmtrace's provider names: Google's Gemini API
 * (AI Studio, what "google" and "gemini" name in llm_response) is
 * gcp.gemini, Vertex AI gcp.vertex_ai; other names go as they are. */
static const char *otel_provider(const char *p, size_t *n) {
  if (is(p, *n, "google") || is(p, *n, "gemini")) p = "gcp.gemini";
  else if (is(p, *n, "vertex_ai") || is(p, *n, "vertex")) p = "gcp.vertex_ai";
  else return p;
  *n = strlen(p);
  return p;
}

/* The GenAI semantic-convention attributes of an llm_call / tool_call span
 * (semantic-conventions-genai; spec/fixtures/llm/semconv.md). Tokens: the
 * conventions' input_tokens includes the cached input, vmtrace's does not,
 * so it is input + cache_read + cache_write. Cache writes go under the
 * current name (cache_write) and the one before semantic-conventions-genai
 * #440 (cache_creation), which consumers of older conventions read. */
static void genai(attrs *a, const vt_span_view *v, const known *kn) {
  size_t n;
  const char *s;
  if (v->kind == VT_LLM_CALL) {
    vt_usage u;
    const char *provider;
    size_t plen;
    vt_usage_read(v->metadata, &u);
    plen = u.provider_len;
    provider = otel_provider(u.provider, &plen);
    /* Gemini's generateContent is an operation of its own in the conventions */
    if (!kn->genai || !meta(v, "gen_ai.operation.name")) {
      if (is(provider, plen, "gcp.gemini") || is(provider, plen, "gcp.vertex_ai"))
        attr_plain(a, "gen_ai.operation.name", "generate_content", 16);
      else
        attr_plain(a, "gen_ai.operation.name", "chat", 4);
    }
    if (plen) gen_str(a, kn, v, "gen_ai.provider.name", provider, plen);
    if (u.model_len) {
      gen_str(a, kn, v, "gen_ai.request.model", u.model, u.model_len);
      gen_str(a, kn, v, "gen_ai.response.model", u.model, u.model_len);
    }
    if (kn->response_id && vt_value_type(kn->response_id) == VT_STR) {
      s = vt_value_str(kn->response_id, &n);
      gen_str(a, kn, v, "gen_ai.response.id", s, n);
    }
    if (kn->finish_reasons && vt_value_type(kn->finish_reasons) == VT_ARR &&
        !(kn->genai && meta(v, "gen_ai.response.finish_reasons")))
      attr_item(a, "gen_ai.response.finish_reasons", 30, kn->finish_reasons);
    if (vt_value_is_int(kn->input, NULL) || vt_value_is_int(kn->cache_read, NULL) ||
        vt_value_is_int(kn->cache_write, NULL))
      gen_int(a, kn, v, "gen_ai.usage.input_tokens",
              vt_sat_add(vt_sat_add(u.input, u.cache_read), u.cache_write));
    if (vt_value_is_int(kn->output, NULL))
      gen_int(a, kn, v, "gen_ai.usage.output_tokens", u.output);
    if (vt_value_is_int(kn->cache_read, NULL))
      gen_int(a, kn, v, "gen_ai.usage.cache_read.input_tokens", u.cache_read);
    if (vt_value_is_int(kn->cache_write, NULL)) {
      gen_int(a, kn, v, "gen_ai.usage.cache_write.input_tokens", u.cache_write);
      gen_int(a, kn, v, "gen_ai.usage.cache_creation.input_tokens", u.cache_write);
    }
  } else if (v->kind == VT_TOOL_CALL) {
    if (!kn->genai || !meta(v, "gen_ai.operation.name"))
      attr_plain(a, "gen_ai.operation.name", "execute_tool", 12);
    if (kn->tool_name && vt_value_type(kn->tool_name) == VT_STR) {
      s = vt_value_str(kn->tool_name, &n);
      gen_str(a, kn, v, "gen_ai.tool.name", s, n);
    } else {
      gen_str(a, kn, v, "gen_ai.tool.name", v->name, v->name_len);
    }
  }
}

/* Is the span's status the error one (status = "error" in its metadata)? */
static int failed(const known *kn) {
  size_t n;
  const char *s;
  if (!kn->status || vt_value_type(kn->status) != VT_STR) return 0;
  s = vt_value_str(kn->status, &n);
  return n == 5 && memcmp(s, "error", 5) == 0;
}

/* error.type on a span that ended in error (the conventions' recording of
 * errors): the metadata's own error.type, else the type of its last
 * exception event, else the conventions' fallback _OTHER. */
static void error_type(attrs *a, const vt_span_view *v, const known *kn) {
  size_t i, n;
  const char *s;
  if (!failed(kn) || kn->error_type) return;
  for (i = v->nevents; i-- > 0;) {
    const vt_event *e = &v->events[i];
    const vt_value *t;
    if (e->name_len != 9 || memcmp(e->name, "exception", 9) != 0) continue;
    t = vt_value_get(e->attributes, "exception.type", 14);
    if (t && vt_value_type(t) == VT_STR) {
      s = vt_value_str(t, &n);
      attr_str(a, "error.type", s, n);
      return;
    }
  }
  attr_str(a, "error.type", "_OTHER", 6);
}

/* The 16 hex digits a link's span id stands for, or 0 when none. */
static int link_span(const vt_otlp_ctx *x, const vt_link *l, const unsigned char trace[16],
                     char out[17]) {
  size_t j;
  int dec = l->span_id_len > 0 && l->span_id_len <= 19, hex = l->span_id_len == 16;
  uint64_t v;
  for (j = 0; j < l->span_id_len; j++) {
    char ch = l->span_id[j];
    if (ch < '0' || ch > '9') dec = 0;
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) hex = 0;
  }
  if (dec && memcmp(trace, x->trace, 16) == 0) { /* a local span: its exported id */
    vt_hex64(vt_otel_span_id(x->salt, (vt_id)strtoull(l->span_id, NULL, 10)), out);
    return 1;
  }
  if (hex && vt_unhex64(l->span_id, 16, &v) && v) {
    memcpy(out, l->span_id, 16);
    out[16] = '\0';
    return 1;
  }
  return 0; /* not an id a collector could use */
}

static size_t links(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v) {
  size_t i, n = 0, dropped = 0;
  for (i = 0; i < v->nlinks; i++) {
    const vt_link *l = &v->links[i];
    unsigned char trace[16];
    char th[33], sh[17];
    attrs a;
    if (!vt_trace_id_parse(l->trace_id, l->trace_id_len, trace) || !link_span(x, l, trace, sh))
      continue;
    if (x->limits.link_count && n >= x->limits.link_count) {
      dropped++;
      continue;
    }
    vt_hex(trace, 16, th);
    th[32] = '\0';
    vt_buf_puts(b, n++ ? ",{\"traceId\":\"" : "{\"traceId\":\"");
    vt_buf_put(b, th, 32);
    vt_buf_puts(b, "\",\"spanId\":\"");
    vt_buf_put(b, sh, 16);
    vt_buf_puts(b, "\",\"attributes\":[");
    memset(&a, 0, sizeof a);
    a.b = b;
    a.max = x->limits.attribute_count;
    a.limit = x->limits.attribute_value_length;
    attr_object(&a, l->attributes);
    vt_buf_putc(b, ']');
    if (a.dropped) {
      vt_buf_puts(b, ",\"droppedAttributesCount\":");
      vt_buf_put_u64(b, a.dropped);
    }
    vt_buf_putc(b, '}');
  }
  return dropped;
}

/* A timestamp (ns since 1970: 19 digits) as a decimal string at o, which
 * has room for NS_MAX bytes. With a memo, the digits above the last eight
 * are those of the span before (spans come close in time) and only the last
 * eight are converted. */
#define NS_MAX 24
/* The memo's digits, then the last eight of u (hi = u / 10^8), and the quote. */
static inline char *ns_memo_to(char *o, const vt_otlp_memo *m, uint64_t u, uint64_t hi) {
  memcpy(o, m->hi_s, 16); /* a fixed size: the bytes past hi_n are written over */
  o += m->hi_n;
  vt_put_digits8(o, (uint32_t)(u - hi * 100000000));
  o[8] = '"';
  return o + 9;
}

/* A new memo, or none: out of line. */
static VT_NOINLINE char *ns_slow(char *o, vt_otlp_memo *m, uint64_t u) {
  uint64_t hi = u / 100000000;
  if (!m || !hi) {
    o = vt_u64_to(o, u);
    *o = '"';
    return o + 1;
  }
  m->hi_n = (size_t)(vt_u64_to(m->hi_s, hi) - m->hi_s); /* at most 12 digits */
  m->hi = hi;
  return ns_memo_to(o, m, u, hi);
}

/* The memo's case inline, with no call (it would cost the registers saved
 * around it), the rest in ns_slow. */
static inline char *ns_to(char *o, vt_otlp_memo *m, int64_t ns) {
  uint64_t u = ns < 0 ? 0 : (uint64_t)ns, hi = u / 100000000;
  *o++ = '"';
  if (VT_UNLIKELY(!m || !hi || hi != m->hi)) return ns_slow(o, m, u);
  return ns_memo_to(o, m, u, hi);
}

static void put_nanos(vt_buf *b, vt_otlp_memo *m, const char *key, size_t kl, int64_t ns) {
  char *o = room(b, kl + NS_MAX);
  if (!o) return;
  CPY(o, key, kl);
  set(b, ns_to(o, m, ns));
}

/* What a span takes before its attributes, but its name and traceState:
 * {"traceId":"<32>","spanId":"<16>" 73, ,"parentSpanId":"<16>" 34,
 * ,"name": 8, ,"kind":<1> 9, the two timestamps 21 and 19 and NS_MAX each,
 * ,"attributes":[ 15. */
#define HEAD_MAX 256

void vt_otlp_write_span(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v) {
  attrs a;
  known kn;
  size_t i, nev, dropped_links = 0;
  size_t name_room = v->name_len <= FAST_STR ? VT_JSON_STR_MAX(v->name_len) : 0;
  const char *kind = vt_kind_name((int)v->kind);
  char *o = room(b, HEAD_MAX + name_room);
  if (!o) return;
  LIT(o, "{\"traceId\":\"");
  CPY(o, x->trace_hex, 32);
  LIT(o, "\",\"spanId\":\"");
  o = vt_hex64_to(o, vt_otel_span_id(x->salt, v->id));
  *o++ = '"';
  if (x->tracestate && x->tracestate[0]) { /* every span of a joined trace carries its tracestate */
    set(b, o);
    vt_buf_puts(b, ",\"traceState\":");
    vt_json_write_str(b, x->tracestate, strlen(x->tracestate));
    if (!(o = room(b, HEAD_MAX + name_room))) return;
  }
  if (v->parent || x->remote_parent) { /* a root's parent: the remote span */
    LIT(o, ",\"parentSpanId\":\"");
    o = vt_hex64_to(o, v->parent ? vt_otel_span_id(x->salt, v->parent) : x->remote_parent);
    *o++ = '"';
  }
  LIT(o, ",\"name\":");
  if (name_room) {
    o = vt_json_put_str(o, v->name, v->name_len);
  } else { /* a long name: checked puts */
    set(b, o);
    vt_json_write_str(b, v->name, v->name_len);
    if (!(o = room(b, HEAD_MAX))) return;
  }
  LIT(o, ",\"kind\":");
  *o++ = (char)('0' + otel_kind(v->kind)); /* one digit, 1 to 5 */
  LIT(o, ",\"startTimeUnixNano\":");
  o = ns_to(o, x->memo, v->start_unix_ns);
  LIT(o, ",\"endTimeUnixNano\":");
  o = ns_to(o, x->memo, v->start_unix_ns + v->duration_ns);
  LIT(o, ",\"attributes\":[");
  set(b, o);
  memset(&a, 0, sizeof a);
  a.b = b;
  a.max = x->limits.attribute_count;
  a.limit = x->limits.attribute_value_length;
  scan(v->metadata, &kn);
  attr_plain(&a, "vmtrace.kind", kind, strlen(kind));
  genai(&a, v, &kn);
  error_type(&a, v, &kn);
  attr_metadata(&a, v->metadata, &kn);
  vt_buf_putc(b, ']');
  if (a.dropped) {
    vt_buf_puts(b, ",\"droppedAttributesCount\":");
    vt_buf_put_u64(b, a.dropped);
  }
  nev = x->limits.event_count && v->nevents > x->limits.event_count ? x->limits.event_count
                                                                     : v->nevents;
  if (nev) {
    vt_buf_puts(b, ",\"events\":[");
    for (i = 0; i < nev; i++) {
      const vt_event *e = &v->events[i];
      attrs ea;
      if (i) vt_buf_putc(b, ',');
      put_nanos(b, x->memo, "{\"timeUnixNano\":", 16, e->time_unix_ns);
      vt_buf_puts(b, ",\"name\":");
      vt_json_write_str(b, e->name, e->name_len);
      vt_buf_puts(b, ",\"attributes\":[");
      memset(&ea, 0, sizeof ea);
      ea.b = b;
      ea.max = x->limits.attribute_count;
      ea.limit = x->limits.attribute_value_length;
      attr_object(&ea, e->attributes);
      vt_buf_putc(b, ']');
      if (ea.dropped) {
        vt_buf_puts(b, ",\"droppedAttributesCount\":");
        vt_buf_put_u64(b, ea.dropped);
      }
      vt_buf_putc(b, '}');
    }
    vt_buf_putc(b, ']');
  }
  if (nev < v->nevents) {
    vt_buf_puts(b, ",\"droppedEventsCount\":");
    vt_buf_put_u64(b, v->nevents - nev);
  }
  if (v->nlinks) {
    vt_buf_puts(b, ",\"links\":[");
    dropped_links = links(b, x, v);
    vt_buf_putc(b, ']');
  }
  if (dropped_links) {
    vt_buf_puts(b, ",\"droppedLinksCount\":");
    vt_buf_put_u64(b, dropped_links);
  }
  if (failed(&kn)) { /* status ERROR with the message */
    const vt_value *msg = kn.error;
    vt_buf_puts(b, ",\"status\":{\"code\":2");
    if (msg && vt_value_type(msg) == VT_STR) {
      size_t n;
      const char *s = vt_value_str(msg, &n);
      vt_buf_puts(b, ",\"message\":");
      vt_json_write_str(b, s, cut(s, n, x->limits.attribute_value_length));
    }
    vt_buf_putc(b, '}');
  }
  vt_buf_putc(b, '}');
}

void vt_otlp_ctx_of(const vt_trace_info *t, const vt_limits *limits, vt_otlp_ctx *x) {
  memcpy(x->trace, t->trace_bytes, 16);
  vt_hex(x->trace, 16, x->trace_hex);
  x->memo = NULL;
  x->salt = t->span_salt;
  x->remote_parent = t->remote_parent;
  x->tracestate = t->tracestate;
  if (limits) x->limits = *limits;
  else memset(&x->limits, 0, sizeof x->limits);
}

void vt_otlp_write_head(vt_buf *b, const vt_export_opts *o, uint64_t dropped) {
  const char *service = o->service_name ? o->service_name : "unknown_service";
  attrs a;
  memset(&a, 0, sizeof a);
  a.b = b;
  vt_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  attr_str(&a, "service.name", service, strlen(service));
  attr_str(&a, "telemetry.sdk.name", "vmtrace", 7);
  attr_str(&a, "telemetry.sdk.language", "lua", 3);
  attr_str(&a, "telemetry.sdk.version", VMTRACE_VERSION, strlen(VMTRACE_VERSION));
  attr_int(&a, "vmtrace.dropped_spans", (int64_t)dropped); /* spans the collector could not keep */
  if (o->resource && vt_value_type(o->resource) == VT_OBJ) {
    vt_iter it;
    const vt_value *v;
    const char *k;
    size_t kl;
    vt_value_iter(o->resource, &it);
    while ((v = vt_iter_next(&it, &k, &kl)) != NULL) {
      if ((kl == 12 && !memcmp(k, "service.name", 12)) || (kl >= 14 && !memcmp(k, "telemetry.sdk.", 14)) ||
          (kl == 21 && !memcmp(k, "vmtrace.dropped_spans", 21)))
        continue;
      attr_item(&a, k, kl, v);
    }
  }
  vt_buf_puts(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"vmtrace\",\"version\":\"" VMTRACE_VERSION
                 "\"},\"spans\":[");
}

void vt_otlp_write_tail(vt_buf *b) { vt_buf_puts(b, "\n]}]}]}\n"); }
