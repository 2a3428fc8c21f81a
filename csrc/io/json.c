/*
 * json.c: JSON text for vmtrace's values: the writer, whose text matches
 * serde_json's compact form (the seed prints metadata with it): shortest
 * round-trip floats, ".0" on integral floats, lowercase \u escapes, U+FFFD
 * for invalid UTF-8 so every output is valid UTF-8; the parser, our own so
 * that integers keep all 64 bits and strings any byte; and the conversions
 * to and from cJSON for hosts.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/util.h"
#include "io/json.h"

static const char hexd[] = "0123456789abcdef";

/* ---- writing ------------------------------------------------------------------- */

size_t vt_utf8_len(const unsigned char *p, size_t n, size_t *bad) {
  unsigned char c = p[0];
  size_t need, i;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) need = 1;
  else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  for (i = 1; i <= need; i++) {
    unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
    if (i >= n || p[i] < lo_i || p[i] > hi_i) {
      *bad = i;
      return 0;
    }
  }
  return need + 1;
}

/* A JSON string literal; with html, also <, >, & and U+2028/9 escaped
 * (safe inside an HTML <script> element). */
/* Bytes written as they are: printable ASCII but '"' and '\\' (bit 1, JSON),
 * and not '<', '>' or '&' either (bit 2, JSON inside HTML). */
static const unsigned char plain_tab[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    3,3,0,3,3,3,1,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,1,3,1,3,
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,0,3,3,3,
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
};

/* Are all eight bytes of w plain (as plain_tab says)? vt_json_plain8 (json.h)
 * for JSON, and for HTML not '<', '>' or '&' either. */
static inline __attribute__((always_inline)) int plain8(uint64_t w, int html) {
  if (!vt_json_plain8(w)) return 0;
  return !html || !(vt_has_byte(w, '<') || vt_has_byte(w, '>') || vt_has_byte(w, '&'));
}

/* Escapes p[*at..stop) at o, which has room for 6 * (stop - *at) + 18 bytes:
 * no byte takes more than six (\u00XX), and a UTF-8 sequence begun before
 * stop is read whole (up to three bytes past it, never past len). Returns
 * the end of what it wrote, *at where it stopped. */
static char *escape_to(char *o, const unsigned char *p, size_t len, size_t *at, size_t stop,
                       int html) {
  unsigned char bit = html ? 2 : 1;
  size_t i = *at;
  while (i < stop) {
    unsigned char c;
    size_t n, bad, j = i;
    while (j < stop && (plain_tab[p[j]] & bit)) j++;
    memcpy(o, p + i, j - i);
    o += j - i;
    if ((i = j) == stop) break;
    c = p[i];
    if (c < 0x80) {
      *o++ = '\\';
      switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
          memcpy(o, "u00", 3);
          o[3] = hexd[c >> 4];
          o[4] = hexd[c & 15];
          o += 5;
      }
      i++;
      continue;
    }
    n = vt_utf8_len(p + i, len - i, &bad);
    if (n == 3 && html && p[i] == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
      memcpy(o, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
      o += 6;
      i += 3;
    } else if (n) {
      memcpy(o, p + i, n);
      o += n;
      i += n;
    } else {
      memcpy(o, "\xEF\xBF\xBD", 3);
      o += 3;
      i += bad;
    }
  }
  *at = i;
  return o;
}

/* The rest of the string from byte i on, its opening quote written, in
 * pieces of at most 4096 bytes (a long string takes a bounded window of the
 * buffer, however long). */
static VT_NOINLINE void write_str_rest(vt_buf *b, const unsigned char *p, size_t len, size_t i,
                                       int html) {
  while (i < len) {
    size_t stop = len - i > 4096 ? i + 4096 : len;
    char *o;
    if (!vt_buf_grow(b, 6 * (stop - i) + 18)) return;
    o = escape_to(b->p + b->n, p, len, &i, stop, html);
    b->n = (size_t)(o - b->p);
  }
  vt_buf_putc(b, '"');
}

/* Copies the plain bytes at the start of p to o (room for len bytes): how
 * many. Eight bytes at a time, the last eight overlapping those before; a
 * string under eight bytes is looked at in one word too (vt_short_word): most
 * keys and values are that short. Byte by byte only from the word that is
 * not all plain. */
static inline __attribute__((always_inline)) size_t copy_plain(char *o, const unsigned char *p,
                                                               size_t len, int html) {
  size_t i = 0;
  uint64_t w;
  if (len >= 8) {
    for (; i + 8 <= len; i += 8) {
      memcpy(&w, p + i, 8);
      if (!plain8(w, html)) goto bytes;
      memcpy(o + i, &w, 8);
    }
    if (i == len) return len;
    memcpy(&w, p + len - 8, 8);
    if (!plain8(w, html)) goto bytes;
    memcpy(o + len - 8, &w, 8);
    return len;
  }
  if (!len) return 0;
  if (!plain8(vt_short_word(p, len), html)) goto bytes;
  vt_short_copy(o, p, len);
  return len;
bytes:
  while (i < len && (plain_tab[p[i]] & (html ? 2 : 1))) o[i] = (char)p[i], i++;
  return i;
}

/* A JSON string. The common case (room in the buffer, nothing to escape) is
 * a copy while scanning; the first byte that needs more hands over to
 * write_str_rest. */
static inline __attribute__((always_inline)) void write_str(vt_buf *b, const char *s, size_t len,
                                                           int html) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i;
  char *o;
  if (VT_UNLIKELY(len + 2 >= b->cap - b->n)) {
    vt_buf_putc(b, '"');
    write_str_rest(b, p, len, 0, html);
    return;
  }
  o = b->p + b->n;
  *o = '"';
  i = copy_plain(o + 1, p, len, html);
  b->n += 1 + i;
  if (VT_LIKELY(i == len)) {
    b->p[b->n++] = '"';
    return;
  }
  write_str_rest(b, p, len, i, html);
}

/* vt_json_put_str after the opening quote: the string at o, then the
 * closing quote. */
static inline __attribute__((always_inline)) char *put_str_body(char *o, const unsigned char *p,
                                                                size_t len) {
  size_t i = copy_plain(o, p, len, 0);
  if (VT_UNLIKELY(i < len)) {
    o = escape_to(o + i, p, len, &i, len, 0);
    *o++ = '"';
    return o;
  }
  o[len] = '"';
  return o + len + 1;
}

/* Strings of eight bytes or more, and those that need escaping: the
 * inline vt_json_put_str (json.h) does the short plain ones. */
char *vt_json_put_str_any(char *o, const char *s, size_t len) {
  *o++ = '"';
  return put_str_body(o, (const unsigned char *)s, len);
}

void vt_json_write_str(vt_buf *b, const char *s, size_t len) { write_str(b, s, len, 0); }
void vt_json_write_str_html(vt_buf *b, const char *s, size_t len) { write_str(b, s, len, 1); }

/* write_str is inlined for a constant html only (in the two above). */
static void str_any(vt_buf *b, const char *s, size_t len, int html) {
  if (html) vt_json_write_str_html(b, s, len);
  else vt_json_write_str(b, s, len);
}

void vt_buf_put_text(vt_buf *b, const char *s, size_t len, int mode) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, n, bad;
  while (i < len) {
    unsigned char c = p[i];
    if (c < 0x80) {
      if ((mode & 2) && c == ';') c = ':';
      else if ((mode & 2) && (c == '\n' || c == '\r')) c = ' ';
      if (c == 0 && (mode & VT_TEXT_NUL)) vt_buf_put(b, "\xEF\xBF\xBD", 3);
      else vt_buf_putc(b, (char)c);
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

/* serde_json (ryu) layout of a finite double. */
void vt_json_write_num(vt_buf *b, double d) {
  char tmp[40], digits[24];
  int prec, nd = 0, e, kk, i;
  char *p, *q;
  if (isnan(d) || isinf(d)) {
    vt_buf_put(b, "null", 4);
    return;
  }
  /* 15 significant digits round-trip only when they are the shortest form
   * padded with zeros (normal numbers); subnormals search from 1 digit. */
  for (prec = fpclassify(d) == FP_SUBNORMAL ? 0 : 14; prec <= 16; prec++) {
    snprintf(tmp, sizeof tmp, "%.*e", prec, d);
    if (strtod(tmp, NULL) == d) break;
  }
  p = tmp;
  if (*p == '-') {
    vt_buf_putc(b, '-');
    p++;
  }
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  e = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  q = digits;
  kk = e + 1; /* 10^(kk-1) <= |d| < 10^kk */
  if (nd - kk <= 0 && kk <= 16) { /* 1234e7 -> 12340000000.0 */
    vt_buf_put(b, q, (size_t)nd);
    for (i = nd; i < kk; i++) vt_buf_putc(b, '0');
    vt_buf_put(b, ".0", 2);
  } else if (kk > 0 && kk <= 16) { /* 1234e-2 -> 12.34 */
    vt_buf_put(b, q, (size_t)kk);
    vt_buf_putc(b, '.');
    vt_buf_put(b, q + kk, (size_t)(nd - kk));
  } else if (kk > -5 && kk <= 0) { /* 1234e-6 -> 0.001234 */
    vt_buf_put(b, "0.", 2);
    for (i = kk; i < 0; i++) vt_buf_putc(b, '0');
    vt_buf_put(b, q, (size_t)nd);
  } else {
    vt_buf_putc(b, q[0]);
    if (nd > 1) {
      vt_buf_putc(b, '.');
      vt_buf_put(b, q + 1, (size_t)(nd - 1));
    }
    vt_buf_putc(b, 'e');
    vt_buf_put_i64(b, kk - 1);
  }
}

static void write_value(vt_buf *b, const vt_value *v, int html) {
  vt_iter it;
  const vt_value *item;
  const char *k, *s;
  size_t kl, n;
  int first = 1;
  if (!v) {
    vt_buf_put(b, "null", 4);
    return;
  }
  switch (vt_value_type(v)) {
    case VT_FALSE: vt_buf_put(b, "false", 5); break;
    case VT_TRUE: vt_buf_put(b, "true", 4); break;
    case VT_INT: vt_buf_put_i64(b, vt_value_int(v)); break;
    case VT_NUM: vt_json_write_num(b, vt_value_num(v)); break;
    case VT_STR:
      s = vt_value_str(v, &n);
      str_any(b, s, n, html);
      break;
    case VT_ARR:
    case VT_OBJ:
      vt_buf_putc(b, vt_value_type(v) == VT_ARR ? '[' : '{');
      vt_value_iter(v, &it);
      while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
        if (!first) vt_buf_putc(b, ',');
        first = 0;
        if (it.object) {
          str_any(b, k, kl, html);
          vt_buf_putc(b, ':');
        }
        write_value(b, item, html);
      }
      vt_buf_putc(b, vt_value_type(v) == VT_ARR ? ']' : '}');
      break;
    default: vt_buf_put(b, "null", 4); break;
  }
}

void vt_json_write(vt_buf *b, const vt_value *v) { write_value(b, v, 0); }
void vt_json_write_html(vt_buf *b, const vt_value *v) { write_value(b, v, 1); }

/* ---- parsing ------------------------------------------------------------------- */

typedef struct parser {
  const char *p, *end;
  const char *err; /* what went wrong, at p */
  int depth, max_depth;
  vt_vb *b;
  vt_buf s; /* the bytes of the string being read */
} parser;

static void ws(parser *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int fail(parser *j, const char *msg) {
  if (!j->err) j->err = msg;
  return 0;
}

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

/* The bytes of the string at j->p (after its opening quote) into j->s. */
static int string_bytes(parser *j) {
  vt_buf *b = &j->s;
  b->n = 0;
  while (j->p < j->end) {
    const char *run = j->p;
    unsigned cp, lo;
    while (j->p < j->end && *j->p != '"' && *j->p != '\\' && (unsigned char)*j->p >= 0x20)
      j->p++;
    vt_buf_put(b, run, (size_t)(j->p - run));
    if (j->p >= j->end) break;
    if (*j->p == '"') {
      j->p++;
      return !b->failed || fail(j, "out of memory");
    }
    if ((unsigned char)*j->p < 0x20) return fail(j, "control character in a string");
    j->p++; /* the backslash */
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
        if (j->end - j->p < 4 || !hex4(j->p, &cp)) return fail(j, "bad \\u escape");
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
      default: j->p--; return fail(j, "bad escape in a string");
    }
  }
  return fail(j, "unterminated string");
}

static int number(parser *j) {
  const char *s = j->p;
  int integer = 1;
  char tmp[400];
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
  if (n >= sizeof tmp) return fail(j, "number too long");
  memcpy(tmp, s, n);
  tmp[n] = '\0';
  if (integer) {
    long long v;
    errno = 0;
    v = strtoll(tmp, NULL, 10);
    if (errno != ERANGE) {
      vt_vb_int(j->b, (int64_t)v);
      return 1;
    }
  }
  vt_vb_num(j->b, strtod(tmp, NULL));
  return 1;
}

static int word(parser *j, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) return fail(j, "unexpected character");
  j->p += n;
  return 1;
}

static int value(parser *j);

static int container(parser *j, int object) {
  char close = object ? '}' : ']';
  if (++j->depth > j->max_depth) return fail(j, "nesting too deep");
  if (object) vt_vb_obj(j->b);
  else vt_vb_arr(j->b);
  j->p++;
  ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    j->depth--;
    vt_vb_end(j->b);
    return 1;
  }
  for (;;) {
    ws(j);
    if (object) {
      if (j->p >= j->end || *j->p != '"') return fail(j, "expected a string key");
      j->p++;
      if (!string_bytes(j)) return 0;
      vt_vb_key(j->b, j->s.p, j->s.n);
      ws(j);
      if (j->p >= j->end || *j->p != ':') return fail(j, "expected ':'");
      j->p++;
    }
    if (!value(j)) return 0;
    ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      j->depth--;
      vt_vb_end(j->b);
      return 1;
    }
    return fail(j, j->p >= j->end ? "unexpected end of input"
                   : object       ? "expected ',' or '}'"
                                  : "expected ',' or ']'");
  }
}

static int value(parser *j) {
  ws(j);
  if (j->p >= j->end) return fail(j, "unexpected end of input");
  if (j->b->failed) return fail(j, "out of memory");
  switch (*j->p) {
    case '{': return container(j, 1);
    case '[': return container(j, 0);
    case '"':
      j->p++;
      if (!string_bytes(j)) return 0;
      vt_vb_str(j->b, j->s.p, j->s.n);
      return 1;
    case 't': return word(j, "true") && (vt_vb_bool(j->b, 1), 1);
    case 'f': return word(j, "false") && (vt_vb_bool(j->b, 0), 1);
    case 'n': return word(j, "null") && (vt_vb_null(j->b), 1);
    default:
      if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return number(j);
      return fail(j, "unexpected character");
  }
}

int vt_json_parse_into(vt_vb *b, const char *text, size_t len, int max_depth,
                       const char **err, size_t *at) {
  parser j;
  int ok;
  memset(&j, 0, sizeof j);
  j.p = text;
  j.end = text + len;
  j.max_depth = max_depth;
  j.b = b;
  ok = value(&j);
  if (ok) {
    ws(&j);
    if (j.p != j.end) ok = fail(&j, "unexpected text after the value");
  }
  if (ok && b->failed) ok = fail(&j, "out of memory");
  vt_buf_free(&j.s);
  if (!ok) {
    if (err) *err = j.err;
    if (at) *at = (size_t)(j.p - text);
  }
  return ok;
}

vt_value *vt_json_parse(const char *text, size_t len, const char **err, size_t *at) {
  vt_vb b;
  vt_value *v = NULL;
  vt_vb_init(&b);
  if (vt_json_parse_into(&b, text, len, 256, err, at)) {
    v = vt_value_dup(vt_vb_value(&b));
    if (!v && err) *err = "out of memory";
  }
  vt_vb_free(&b);
  return v;
}

/* ---- cJSON ----------------------------------------------------------------------- */

static int is_int_text(const char *s) {
  if (*s == '-') s++;
  if (!*s) return 0;
  while (*s >= '0' && *s <= '9') s++;
  return !*s;
}

static void from_cjson(vt_vb *b, const cJSON *v, int depth) {
  const cJSON *it;
  if (depth > 256) {
    b->failed = 1;
    return;
  }
  switch (v ? v->type & 0xFF : cJSON_NULL) {
    case cJSON_False: vt_vb_bool(b, 0); break;
    case cJSON_True: vt_vb_bool(b, 1); break;
    case cJSON_Number: vt_vb_num(b, v->valuedouble); break;
    case cJSON_Raw: /* vmtrace's exact integers: decimal text */
      if (v->valuestring && is_int_text(v->valuestring)) {
        long long x;
        errno = 0;
        x = strtoll(v->valuestring, NULL, 10);
        /* past int64 strtoll saturates: a different integer. Such a literal
         * is a number, as vt_json_parse reads the same text. */
        if (errno != ERANGE) vt_vb_int(b, (int64_t)x);
        else vt_vb_num(b, strtod(v->valuestring, NULL));
      } else {
        vt_vb_null(b);
      }
      break;
    case cJSON_String: vt_vb_str(b, v->valuestring, strlen(v->valuestring)); break;
    case cJSON_Array:
      vt_vb_arr(b);
      for (it = v->child; it; it = it->next) from_cjson(b, it, depth + 1);
      vt_vb_end(b);
      break;
    case cJSON_Object:
      vt_vb_obj(b);
      for (it = v->child; it; it = it->next) {
        vt_vb_key(b, it->string ? it->string : "", it->string ? strlen(it->string) : 0);
        from_cjson(b, it, depth + 1);
      }
      vt_vb_end(b);
      break;
    default: vt_vb_null(b); break;
  }
}

vt_value *vt_value_from_cjson(const struct cJSON *item) {
  vt_vb b;
  vt_value *v = NULL;
  vt_vb_init(&b);
  from_cjson(&b, item, 0);
  if (vt_vb_value(&b)) v = vt_value_dup(vt_vb_value(&b));
  vt_vb_free(&b);
  return v;
}

struct cJSON *vt_value_to_cjson(const vt_value *v) {
  cJSON *out = NULL, *item;
  vt_iter it;
  const vt_value *x;
  const char *k, *s;
  size_t kl, n;
  char tmp[24];
  switch (vt_value_type(v)) {
    case VT_NULL: return cJSON_CreateNull();
    case VT_FALSE: return cJSON_CreateFalse();
    case VT_TRUE: return cJSON_CreateTrue();
    case VT_INT:
      snprintf(tmp, sizeof tmp, "%lld", (long long)vt_value_int(v));
      return cJSON_CreateRaw(tmp);
    case VT_NUM: return cJSON_CreateNumber(vt_value_num(v));
    case VT_STR: { /* cJSON strings end at NUL: a string with one is cut there */
      char *z;
      s = vt_value_str(v, &n);
      if (!(z = vt_memdup(s, n))) return NULL;
      out = cJSON_CreateString(z);
      vt_free(z);
      return out;
    }
    default: break;
  }
  out = vt_value_type(v) == VT_ARR ? cJSON_CreateArray() : cJSON_CreateObject();
  if (!out) return NULL;
  vt_value_iter(v, &it);
  while ((x = vt_iter_next(&it, &k, &kl)) != NULL) {
    if (!(item = vt_value_to_cjson(x))) {
      cJSON_Delete(out);
      return NULL;
    }
    if (it.object) {
      char *z = vt_memdup(k, kl);
      if (!z) {
        cJSON_Delete(item);
        cJSON_Delete(out);
        return NULL;
      }
      cJSON_AddItemToObject(out, z, item);
      vt_free(z);
    } else {
      cJSON_AddItemToArray(out, item);
    }
  }
  return out;
}
