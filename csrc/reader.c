/*
 * reader.c: spans read back from a file into a collector: the JSON span list
 * that vmtrace.export("json") writes, or the NDJSON stream of vmtrace.stream,
 * also one cut short by a crash (its open spans come back as unfinished,
 * ending at the last time the stream saw). The JSON parser is our own so that
 * integers keep all 64 bits and strings any byte; errors say the line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_NESTING 256

typedef struct parser {
  const char *p, *end;
  const char *err; /* what went wrong, at p */
  int depth;
} parser;

static void ws(parser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static cJSON *fail(parser *j, const char *msg) {
  if (!j->err) j->err = msg;
  return NULL;
}

static cJSON *value(parser *j);

static int hex4(const char *p, unsigned *out) {
  unsigned v = 0;
  int i;
  for (i = 0; i < 4; i++) {
    char ch = p[i];
    v <<= 4;
    if (ch >= '0' && ch <= '9') v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f') v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F') v |= (unsigned)(ch - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static void put_utf8(vt_buf *b, unsigned cp) {
  char u[4];
  size_t n;
  if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | (cp >> 6));
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | (cp >> 12));
    u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | (cp >> 18));
    u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  vt_buf_put(b, u, n);
}

/* The bytes of the string at j->p (after its opening quote) into b. */
static int string_bytes(parser *j, vt_buf *b) {
  while (j->p < j->end) {
    unsigned char ch = (unsigned char)*j->p++;
    unsigned cp, lo;
    if (ch == '"') return !b->failed || (fail(j, "out of memory"), 0);
    if (ch < 0x20) {
      j->p--; /* the error is at the character, not after it */
      return fail(j, "control character in a string"), 0;
    }
    if (ch != '\\') {
      vt_buf_putc(b, (char)ch);
      continue;
    }
    if (j->p >= j->end) break;
    switch (*j->p++) {
      case '"': vt_buf_putc(b, '"'); break;
      case '\\': vt_buf_putc(b, '\\'); break;
      case '/': vt_buf_putc(b, '/'); break;
      case 'b': vt_buf_putc(b, '\b'); break;
      case 'f': vt_buf_putc(b, '\f'); break;
      case 'n': vt_buf_putc(b, '\n'); break;
      case 'r': vt_buf_putc(b, '\r'); break;
      case 't': vt_buf_putc(b, '\t'); break;
      case 'u':
        if (j->end - j->p < 4 || !hex4(j->p, &cp)) return fail(j, "bad \\u escape"), 0;
        j->p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && j->end - j->p >= 6 && j->p[0] == '\\' &&
            j->p[1] == 'u' && hex4(j->p + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          j->p += 6;
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
          cp = 0xFFFD; /* a lone surrogate */
        }
        put_utf8(b, cp);
        break;
      default: return fail(j, "bad escape in a string"), 0;
    }
  }
  return fail(j, "unterminated string"), 0;
}

static cJSON *string(parser *j) {
  vt_buf b;
  cJSON *v = NULL;
  memset(&b, 0, sizeof b);
  j->p++;
  if (string_bytes(j, &b)) {
    v = vt_json_str(b.p ? b.p : "", b.n);
    if (!v) fail(j, "out of memory");
  }
  vt_buf_free(&b);
  return v;
}

static cJSON *number(parser *j) {
  const char *s = j->p;
  int integer = 1;
  char tmp[64];
  size_t n;
  if (j->p < j->end && *j->p == '-') j->p++;
  if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return fail(j, "bad number");
  if (*j->p == '0') j->p++;
  else while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  if (j->p < j->end && *j->p == '.') {
    integer = 0;
    j->p++;
    if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return fail(j, "bad number");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    integer = 0;
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return fail(j, "bad number");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  n = (size_t)(j->p - s);
  if (n >= sizeof tmp) integer = 0;
  memcpy(tmp, s, n < sizeof tmp ? n : sizeof tmp - 1);
  tmp[n < sizeof tmp ? n : sizeof tmp - 1] = '\0';
  if (integer) {
    long long v;
    errno = 0;
    v = strtoll(tmp, NULL, 10);
    if (errno != ERANGE) return vt_json_int((int64_t)v);
  }
  return cJSON_CreateNumber(strtod(n < sizeof tmp ? tmp : s, NULL));
}

static cJSON *word(parser *j, const char *w, cJSON *v) {
  size_t n = strlen(w);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) {
    cJSON_Delete(v);
    return fail(j, "unexpected character");
  }
  j->p += n;
  return v;
}

static cJSON *container(parser *j, int object) {
  cJSON *c = object ? cJSON_CreateObject() : cJSON_CreateArray();
  char close = object ? '}' : ']';
  if (!c) return fail(j, "out of memory");
  if (++j->depth > MAX_NESTING) {
    cJSON_Delete(c);
    return fail(j, "nesting too deep");
  }
  j->p++;
  ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    return c;
  }
  for (;;) {
    vt_buf key;
    cJSON *v;
    memset(&key, 0, sizeof key);
    ws(j);
    if (object) {
      if (j->p >= j->end || *j->p != '"') {
        cJSON_Delete(c);
        return fail(j, "expected a string key");
      }
      j->p++;
      if (!string_bytes(j, &key)) {
        vt_buf_free(&key);
        cJSON_Delete(c);
        return NULL;
      }
      ws(j);
      if (j->p >= j->end || *j->p != ':') {
        vt_buf_free(&key);
        cJSON_Delete(c);
        return fail(j, "expected ':'");
      }
      j->p++;
    }
    v = value(j);
    if (!v) {
      vt_buf_free(&key);
      cJSON_Delete(c);
      return NULL;
    }
    if (object) {
      int rc = vt_json_obj_set(c, key.p ? key.p : "", key.n, v);
      vt_buf_free(&key);
      if (rc != VT_OK) {
        cJSON_Delete(c);
        return fail(j, "out of memory");
      }
    } else {
      cJSON_AddItemToArray(c, v);
    }
    ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      j->depth--;
      return c;
    }
    cJSON_Delete(c);
    return fail(j, object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static cJSON *value(parser *j) {
  ws(j);
  if (j->p >= j->end) return fail(j, "unexpected end of input");
  switch (*j->p) {
    case '{': return container(j, 1);
    case '[': return container(j, 0);
    case '"': return string(j);
    case 't': return word(j, "true", cJSON_CreateTrue());
    case 'f': return word(j, "false", cJSON_CreateFalse());
    case 'n': return word(j, "null", cJSON_CreateNull());
    default:
      if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return number(j);
      return fail(j, "unexpected character");
  }
}

cJSON *vt_json_parse(const char *text, size_t len, const char **err, size_t *at) {
  parser j;
  cJSON *v;
  j.p = text;
  j.end = text + len;
  j.err = NULL;
  j.depth = 0;
  v = value(&j);
  if (v) {
    ws(&j);
    if (j.p != j.end) {
      cJSON_Delete(v);
      v = fail(&j, "unexpected text after the value");
    }
  }
  if (!v) {
    if (err) *err = j.err;
    if (at) *at = (size_t)(j.p - text);
  }
  return v;
}

/* ---- loading spans ----------------------------------------------------------- */

typedef struct loader {
  vt_collector *c;
  int have_trace; /* trace id and salt taken from the input */
  int64_t last_ns; /* the latest time seen */
  cJSON *pending;  /* stream: started, not ended (array of span objects) */
  char *err;
  size_t errlen;
  size_t line;
} loader;

static int bad(loader *ld, const char *fmt, const char *what) {
  snprintf(ld->err, ld->errlen, "line %lu: ", (unsigned long)ld->line);
  snprintf(ld->err + strlen(ld->err), ld->errlen - strlen(ld->err), fmt, what);
  return VT_EINVAL;
}

static int get_int(const cJSON *o, const char *k, int64_t *out) {
  const cJSON *it = vt_json_obj_get(o, k, strlen(k));
  if (vt_json_is_int(it, out)) return 1;
  if (cJSON_IsNumber(it) && it->valuedouble > -9.2e18 && it->valuedouble < 9.2e18) {
    *out = (int64_t)it->valuedouble;
    return 1;
  }
  return 0;
}

/* Times are kept within [0, 2^62) ns (146 years) so sums cannot overflow. */
#define MAX_TIME ((int64_t)1 << 62)

/* An int field in ns, or its _ms twin times 1e6: 1, 0 when absent, -1 when
 * out of range. */
static int get_ns(const cJSON *o, const char *ns_key, const char *ms_key, int64_t *out) {
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

/* Inverse of the exported span id mixing: the salt from one (id, otel id). */
static uint64_t unmix(uint64_t z) {
  uint64_t inv1 = 0xBF58476D1CE4E5B9ull, inv2 = 0x94D049BB133111EBull, x;
  int i;
  for (i = 0, x = inv1; i < 5; i++) x *= 2 - inv1 * x; /* Newton: x = 1/inv1 */
  inv1 = x;
  for (i = 0, x = inv2; i < 5; i++) x *= 2 - inv2 * x;
  inv2 = x;
  z ^= (z >> 31) ^ (z >> 62);
  z *= inv2;
  z ^= (z >> 27) ^ (z >> 54);
  z *= inv1;
  z ^= (z >> 30) ^ (z >> 60);
  return z;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Take the trace id (and the salt behind the exported span ids) from the
 * input, once. */
static void take_trace(loader *ld, const char *trace_id, const char *salt_hex,
                       vt_id id, const char *otel_hex) {
  vt_collector *c = ld->c;
  const char *h = trace_id;
  unsigned char bytes[16];
  size_t n = 0;
  if (ld->have_trace || !trace_id) return;
  if (!strncmp(h, "trace_", 6)) h += 6;
  for (; *h && n < 32; h++) {
    int v = hexval(*h);
    if (*h == '-') continue;
    if (v < 0) break;
    if (n % 2 == 0) bytes[n / 2] = (unsigned char)(v << 4);
    else bytes[n / 2] |= (unsigned char)v;
    n++;
  }
  if (n == 32 && !*h) memcpy(c->trace_bytes, bytes, 16);
  snprintf(c->trace_id, sizeof c->trace_id, "%s", trace_id);
  if (salt_hex && strlen(salt_hex) == 16) {
    c->span_salt = strtoull(salt_hex, NULL, 16);
  } else if (otel_hex && strlen(otel_hex) == 16 && id) {
    c->span_salt = unmix(strtoull(otel_hex, NULL, 16)) - id;
  }
  ld->have_trace = 1;
}

static const char *str_field(const cJSON *o, const char *k) {
  const cJSON *it = vt_json_obj_get(o, k, strlen(k));
  return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Import one span object; `unfinished` spans end at the latest time seen. */
static int import(loader *ld, const cJSON *o, int unfinished) {
  vt_span_view v;
  int64_t id = 0, parent = 0, track = 0;
  const char *kind = str_field(o, "kind");
  const cJSON *nm = vt_json_obj_get(o, "name", 4), *it;
  cJSON *meta = NULL;
  vt_link *links = NULL;
  vt_event *events = NULL;
  size_t nlinks = 0, nevents = 0, i, namelen;
  char *namebuf;
  int rc, oom = 0;
  memset(&v, 0, sizeof v);
  if (!cJSON_IsObject(o)) return bad(ld, "%s", "a span must be a JSON object");
  if (!get_int(o, "span_id", &id) || id <= 0) return bad(ld, "%s", "span without a positive span_id");
  if (!kind || vt_kind_parse(kind, strlen(kind)) < 0) return bad(ld, "unknown span kind '%s'", kind ? kind : "(none)");
  if (!cJSON_IsString(nm)) return bad(ld, "%s", "span without a name");
  get_int(o, "parent_id", &parent);
  if (parent >= id) /* a parent starts before its children: no cycles */
    return bad(ld, "%s", "parent_id must be smaller than span_id");
  get_int(o, "track", &track);
  switch (get_ns(o, "start_unix_ns", "start_unix_ms", &v.start_unix_ns)) {
    case 0: return bad(ld, "%s", "span without start_unix_ns or start_unix_ms");
    case -1: return bad(ld, "%s", "start_unix_ns out of range (0 to 2^62)");
  }
  if (get_ns(o, "start_ns", "start_ms", &v.start_ns) < 0)
    return bad(ld, "%s", "start_ns out of range");
  if (unfinished) {
    v.duration_ns = ld->last_ns > v.start_unix_ns ? ld->last_ns - v.start_unix_ns : 0;
  } else {
    switch (get_ns(o, "duration_ns", "duration_ms", &v.duration_ns)) {
      case 0: return bad(ld, "%s", "span without duration_ns or duration_ms");
      case -1: return bad(ld, "%s", "duration_ns out of range (0 to 2^62)");
    }
  }
  if (v.start_unix_ns + v.duration_ns > ld->last_ns) ld->last_ns = v.start_unix_ns + v.duration_ns;
  take_trace(ld, str_field(o, "trace_id"), NULL, (vt_id)id, str_field(o, "otel_span_id"));
  if (parent <= 0) { /* a root of a joined remote trace knows the remote span */
    const char *rp = str_field(o, "remote_parent_span_id");
    if (rp && strlen(rp) == 16) ld->c->remote_parent = strtoull(rp, NULL, 16);
  }
  v.id = (vt_id)id;
  v.parent = parent > 0 ? (vt_id)parent : 0;
  v.kind = (vt_kind)vt_kind_parse(kind, strlen(kind));
  v.track = (uint32_t)track;
  namebuf = vt_malloc(strlen(nm->valuestring) + 1);
  if (!namebuf) return bad(ld, "%s", "out of memory");
  namelen = vt_str_decode(nm->valuestring, namebuf);
  v.name = namebuf;
  v.name_len = namelen;
  it = vt_json_obj_get(o, "metadata", 8);
  if (cJSON_IsObject(it) && !(meta = cJSON_Duplicate(it, 1))) oom = 1;
  if (unfinished && !oom) {
    if (!meta) meta = cJSON_CreateObject();
    if (!meta || vt_json_obj_set(meta, "unfinished", 10, cJSON_CreateTrue()) != VT_OK) oom = 1;
  }
  it = vt_json_obj_get(o, "links", 5);
  if (cJSON_IsArray(it) && (nlinks = (size_t)cJSON_GetArraySize(it)) > 0) {
    const cJSON *l;
    links = vt_calloc(nlinks, sizeof *links);
    i = 0;
    for (l = it->child; l && links; l = l->next, i++) {
      const char *t = str_field(l, "trace_id"), *s = str_field(l, "span_id");
      const cJSON *a = vt_json_obj_get(l, "attributes", 10);
      links[i].trace_id = t ? t : "";
      links[i].trace_id_len = strlen(links[i].trace_id);
      links[i].span_id = s ? s : "";
      links[i].span_id_len = strlen(links[i].span_id);
      links[i].attributes = cJSON_IsObject(a) ? cJSON_Duplicate(a, 1) : NULL;
      if (cJSON_IsObject(a) && !links[i].attributes) oom = 1;
    }
  }
  it = vt_json_obj_get(o, "events", 6);
  if (cJSON_IsArray(it) && (nevents = (size_t)cJSON_GetArraySize(it)) > 0) {
    const cJSON *e;
    events = vt_calloc(nevents, sizeof *events);
    i = 0;
    for (e = it->child; e && events; e = e->next, i++) {
      const char *en = str_field(e, "name");
      const cJSON *a = vt_json_obj_get(e, "attributes", 10);
      events[i].name = en ? en : "";
      events[i].name_len = strlen(events[i].name);
      if (get_ns(e, "time_unix_ns", "time_unix_ms", &events[i].time_unix_ns) < 0)
        events[i].time_unix_ns = 0;
      if (get_ns(e, "offset_ns", "offset_ms", &events[i].offset_ns) < 0)
        events[i].offset_ns = 0;
      events[i].attributes = cJSON_IsObject(a) ? cJSON_Duplicate(a, 1) : NULL;
      if (cJSON_IsObject(a) && !events[i].attributes) oom = 1;
    }
  }
  if (oom || (nlinks && !links) || (nevents && !events)) {
    rc = VT_ENOMEM;
    cJSON_Delete(meta);
    for (i = 0; links && i < nlinks; i++) cJSON_Delete(links[i].attributes);
    for (i = 0; events && i < nevents; i++) cJSON_Delete(events[i].attributes);
  } else {
    rc = vt_collector_import(ld->c, &v, meta, links, nlinks, events, nevents);
  }
  vt_free(namebuf);
  vt_free(links);
  vt_free(events);
  if (rc == VT_EEXIST) {
    char num[24];
    snprintf(num, sizeof num, "%lld", (long long)id);
    return bad(ld, "span %s appears twice", num);
  }
  if (rc != VT_OK) return bad(ld, "%s", rc == VT_EINVAL ? "span id out of range" : "out of memory");
  return VT_OK;
}

/* Line numbers, counted on from where the last count stopped. */
typedef struct lines {
  const char *text;
  size_t pos, line;
} lines;

static size_t line_at(lines *l, size_t at) {
  if (at < l->pos) l->pos = 0, l->line = 1;
  for (; l->pos < at; l->pos++)
    if (l->text[l->pos] == '\n') l->line++;
  return l->line;
}

/* A JSON array of spans, one element at a time (each imported, then freed);
 * errors name the line where the element or the problem is. */
static int load_array(loader *ld, const char *text, size_t len) {
  parser j;
  lines at = {NULL, 0, 1};
  int rc = VT_OK;
  at.text = text;
  j.p = text;
  j.end = text + len;
  j.err = NULL;
  j.depth = 1;
  ws(&j);
  j.p++; /* '[' */
  ws(&j);
  if (j.p < j.end && *j.p == ']') {
    j.p++;
  } else {
    for (;;) {
      cJSON *span;
      int64_t dropped;
      ws(&j);
      ld->line = line_at(&at, (size_t)(j.p - text));
      span = value(&j);
      if (!span) break;
      if (!vt_json_obj_get(span, "span_id", 7) && get_int(span, "dropped_spans", &dropped) &&
          dropped >= 0) { /* how many spans the exporting collector dropped */
        ld->c->dropped += (uint64_t)dropped;
        rc = VT_OK;
      } else {
        rc = import(ld, span, 0);
      }
      cJSON_Delete(span);
      if (rc != VT_OK) return rc;
      ws(&j);
      if (j.p < j.end && *j.p == ',') {
        j.p++;
        continue;
      }
      if (j.p < j.end && *j.p == ']') {
        j.p++;
        break;
      }
      fail(&j, j.p < j.end ? "expected ',' or ']'" : "unexpected end of input");
      break;
    }
  }
  if (!j.err) {
    ws(&j);
    if (j.p != j.end) fail(&j, "unexpected text after the array");
  }
  if (j.err) {
    ld->line = line_at(&at, (size_t)(j.p - text));
    return bad(ld, "%s", j.err);
  }
  return VT_OK;
}

static int load_stream(loader *ld, const char *text, size_t len) {
  const char *p = text, *end = text + len;
  int rc = VT_OK;
  ld->pending = cJSON_CreateArray();
  if (!ld->pending) return bad(ld, "%s", "out of memory");
  ld->line = 0;
  while (p < end && rc == VT_OK) {
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl ? nl : end;
    const char *err = NULL, *type;
    cJSON *o;
    ld->line++;
    if (eol == p || (eol - p == 1 && *p == '\r')) {
      p = eol + 1;
      continue;
    }
    o = vt_json_parse(p, (size_t)(eol - p), &err, NULL);
    if (!o) {
      if (!nl) break; /* the last line, cut short by a crash */
      return bad(ld, "%s", err ? err : "invalid JSON");
    }
    type = str_field(o, "type");
    if (type && !strcmp(type, "trace")) {
      /* a new trace (the first, or a reset): what the live collector held
       * after it is this trace's spans alone */
      vt_collector_reset(ld->c);
      while (ld->pending->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(ld->pending, ld->pending->child));
      ld->have_trace = 0;
      ld->last_ns = INT64_MIN;
      take_trace(ld, str_field(o, "trace_id"), str_field(o, "otel_salt"), 0, NULL);
    } else if (type && (!strcmp(type, "start") || !strcmp(type, "end"))) {
      cJSON *span = cJSON_DetachItemFromObjectCaseSensitive(o, "span");
      int64_t id = 0, t = 0;
      cJSON *it, *next;
      if (!cJSON_IsObject(span) || !get_int(span, "span_id", &id)) {
        cJSON_Delete(span);
        cJSON_Delete(o);
        return bad(ld, "%s", "a start or end line without a span");
      }
      if (get_ns(span, "start_unix_ns", "start_unix_ms", &t) > 0 && t > ld->last_ns) ld->last_ns = t;
      for (it = ld->pending->child; it; it = next) { /* drop the start */
        int64_t pid = 0;
        next = it->next;
        if (get_int(it, "span_id", &pid) && pid == id)
          cJSON_Delete(cJSON_DetachItemViaPointer(ld->pending, it));
      }
      if (!strcmp(type, "start")) {
        cJSON_AddItemToArray(ld->pending, span);
        span = NULL;
      } else {
        rc = import(ld, span, 0);
      }
      cJSON_Delete(span);
    } else if (type && !strcmp(type, "context")) { /* joined a remote trace */
      const char *t = str_field(o, "trace_id"), *rp = str_field(o, "remote_parent_span_id");
      int64_t flags = 0;
      ld->have_trace = 0;
      take_trace(ld, t, NULL, 0, NULL);
      ld->have_trace = 1;
      if (rp && strlen(rp) == 16) ld->c->remote_parent = strtoull(rp, NULL, 16);
      if (get_int(o, "remote_flags", &flags)) ld->c->remote_flags = (unsigned)flags;
    } else if (type && !strcmp(type, "meta")) {
      int64_t id = 0;
      cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(o, "metadata");
      if (get_int(o, "span_id", &id) && cJSON_IsObject(m)) {
        vt_slot *s = vt_slot_of(ld->c, (vt_id)id);
        if (s && s->x) {
          cJSON_Delete(s->x->meta);
          s->x->meta = m;
          s->x->nkeys = -1;
          m = NULL;
        }
      }
      cJSON_Delete(m);
    } else {
      rc = bad(ld, "unknown line type '%s'", type ? type : "(none)");
      cJSON_Delete(o);
      return rc;
    }
    cJSON_Delete(o);
    p = nl ? nl + 1 : end;
  }
  if (rc == VT_OK) { /* open when the stream ended: unfinished */
    cJSON *it;
    for (it = ld->pending->child; it && rc == VT_OK; it = it->next) rc = import(ld, it, 1);
  }
  return rc;
}

int vt_collector_load(vt_collector *c, const char *text, size_t len, char *err,
                      size_t errlen) {
  loader ld;
  size_t i = 0;
  int rc;
  vt_collector *tmp;
  while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
    i++;
  if (i == len) {
    snprintf(err, errlen, "line 1: empty input (expected a JSON span list or an NDJSON stream)");
    return VT_EINVAL;
  }
  /* read into a collector of its own: a refused file leaves c as it was */
  if (!(tmp = vt_collector_new())) {
    snprintf(err, errlen, "line 1: out of memory");
    return VT_ENOMEM;
  }
  tmp->max_spans = c->max_spans;
  memset(&ld, 0, sizeof ld);
  ld.c = tmp;
  ld.err = err;
  ld.errlen = errlen;
  ld.last_ns = INT64_MIN;
  rc = text[i] == '[' ? load_array(&ld, text, len) : load_stream(&ld, text, len);
  cJSON_Delete(ld.pending);
  if (rc == VT_OK && !ld.have_trace && tmp->ndone == 0 && text[i] != '[') {
    snprintf(err, errlen, "line 1: not a JSON span list nor an NDJSON stream");
    rc = VT_EINVAL;
  }
  if (rc == VT_OK) {
    if (tmp->ndone) { /* the wall epoch of the first span */
      vt_span_view v;
      vt_collector_get(tmp, tmp->done[0], &v);
      tmp->wall_epoch_ns = v.start_unix_ns - v.start_ns;
    }
    vt_collector_adopt(c, tmp); /* c takes the spans read */
  }
  vt_collector_free(tmp);
  return rc;
}
