/*
 * json.c: JSON values for metadata (cJSON items with exact 64-bit integers and
 * byte strings), objects with sorted keys, output buffers, and the JSON writer
 * whose text matches serde_json's compact form (the seed prints metadata with
 * it): shortest round-trip floats, ".0" on integral floats, lowercase \u
 * escapes, and U+FFFD for invalid UTF-8 so every output is valid UTF-8.
 *
 * cJSON strings end at NUL, so stored keys and strings escape two bytes:
 * 0x00 -> C0 80 and 0xC0 -> C0 81 (0xC0 never occurs in valid UTF-8).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- buffers ---------------------------------------------------------------- */

int vt_buf_flush(vt_buf *b) {
  if (b->failed) return 0;
  if (b->f && b->n) {
    if (fwrite(b->p, 1, b->n, b->f) != b->n) {
      b->err = errno ? errno : EIO;
      b->failed = 1;
      return 0;
    }
    b->n = 0;
  }
  return 1;
}

int vt_buf_grow(vt_buf *b, size_t extra) {
  size_t cap;
  char *p;
  if (b->failed) return 0;
  if (b->n + extra <= b->cap) return 1;
  if (b->f && b->n) { /* a file window: write it out first */
    if (!vt_buf_flush(b)) return 0;
    if (extra <= b->cap) return 1;
  }
  cap = b->cap ? b->cap : (b->f ? 65536 : 256);
  while (cap < b->n + extra) {
    if (cap > SIZE_MAX / 2) {
      b->failed = 1;
      return 0;
    }
    cap *= 2;
  }
  p = vt_realloc(b->p, cap);
  if (!p) {
    b->failed = 1;
    return 0;
  }
  b->p = p;
  b->cap = cap;
  return 1;
}

void vt_buf_put(vt_buf *b, const void *s, size_t len) {
  if (!vt_buf_grow(b, len)) return;
  memcpy(b->p + b->n, s, len);
  b->n += len;
}

void vt_buf_putc(vt_buf *b, char ch) {
  if (b->n < b->cap || vt_buf_grow(b, 1)) b->p[b->n++] = ch;
}

void vt_buf_puts(vt_buf *b, const char *s) { vt_buf_put(b, s, strlen(s)); }

void vt_buf_put_u64(vt_buf *b, uint64_t v) {
  char tmp[24], *e = tmp + sizeof tmp, *p = e;
  do {
    *--p = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  vt_buf_put(b, p, (size_t)(e - p));
}

void vt_buf_put_i64(vt_buf *b, int64_t v) {
  if (v < 0) {
    vt_buf_putc(b, '-');
    vt_buf_put_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    vt_buf_put_u64(b, (uint64_t)v);
  }
}

void vt_buf_free(vt_buf *b) {
  vt_free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

/* ---- stored strings ----------------------------------------------------------- */

char *vt_str_encode(const char *s, size_t len) {
  size_t i, extra = 0, j = 0;
  char *out;
  for (i = 0; i < len; i++)
    if (s[i] == '\0' || (unsigned char)s[i] == 0xC0) extra++;
  if (len > SIZE_MAX - extra - 1) return NULL;
  out = cJSON_malloc(len + extra + 1);
  if (!out) return NULL;
  if (!extra) {
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
  }
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == 0 || ch == 0xC0) {
      out[j++] = (char)0xC0;
      out[j++] = (char)(ch ? 0x81 : 0x80);
    } else {
      out[j++] = (char)ch;
    }
  }
  out[j] = '\0';
  return out;
}

size_t vt_str_decode(const char *s, char *buf) {
  size_t j = 0;
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    if (*p == 0xC0 && (p[1] == 0x80 || p[1] == 0x81)) {
      buf[j++] = (char)(p[1] == 0x80 ? 0 : 0xC0);
      p += 2;
    } else {
      buf[j++] = (char)*p++;
    }
  }
  return j;
}

void vt_buf_put_decoded(vt_buf *b, const char *s) {
  size_t len = strlen(s);
  if (!strchr(s, (char)0xC0)) {
    vt_buf_put(b, s, len);
    return;
  }
  if (!vt_buf_grow(b, len)) return;
  b->n += vt_str_decode(s, b->p + b->n);
}

/* ---- values ------------------------------------------------------------------- */

cJSON *vt_json_int(int64_t v) {
  char tmp[24];
  snprintf(tmp, sizeof tmp, "%" PRId64, v);
  return cJSON_CreateRaw(tmp);
}

int vt_json_is_int(const cJSON *item, int64_t *out) {
  const char *s;
  char *end;
  long long v;
  if (!item || !(item->type & cJSON_Raw) || !item->valuestring) return 0;
  s = item->valuestring;
  if (!((*s >= '0' && *s <= '9') || *s == '-')) return 0;
  v = strtoll(s, &end, 10);
  if (*end) return 0;
  if (out) *out = (int64_t)v;
  return 1;
}

cJSON *vt_json_str(const char *s, size_t len) {
  cJSON *item = cJSON_CreateNull();
  char *enc;
  if (!item) return NULL;
  enc = vt_str_encode(s, len);
  if (!enc) {
    cJSON_Delete(item);
    return NULL;
  }
  item->type = cJSON_String;
  item->valuestring = enc;
  return item;
}

cJSON *vt_json_num(double d) {
  if (isnan(d) || isinf(d)) return cJSON_CreateNull();
  return cJSON_CreateNumber(d);
}

/* The child under the stored (encoded) key `k`, and where it would go. */
static cJSON *obj_find(const cJSON *obj, const char *k, cJSON **before) {
  cJSON *it;
  for (it = obj->child; it; it = it->next) {
    int cmp = strcmp(it->string, k);
    if (cmp == 0) return it;
    if (cmp > 0) break;
  }
  if (before) *before = it;
  return NULL;
}

static void obj_link_before(cJSON *obj, cJSON *item, cJSON *before) {
  cJSON *head = obj->child;
  if (!head) { /* empty */
    obj->child = item;
    item->prev = item;
    item->next = NULL;
  } else if (!before) { /* append: head->prev is the tail */
    cJSON *tail = head->prev;
    tail->next = item;
    item->prev = tail;
    item->next = NULL;
    head->prev = item;
  } else if (before == head) {
    item->prev = head->prev;
    item->next = head;
    head->prev = item;
    obj->child = item;
  } else {
    item->prev = before->prev;
    item->next = before;
    before->prev->next = item;
    before->prev = item;
  }
}

static cJSON *obj_get_encoded(const cJSON *obj, const char *key, size_t len,
                              char *small, size_t smallcap, char **heap) {
  const char *k;
  *heap = NULL;
  if (len < smallcap && !memchr(key, 0, len) && !memchr(key, 0xC0, len)) {
    memcpy(small, key, len);
    small[len] = '\0';
    k = small;
  } else {
    *heap = vt_str_encode(key, len);
    if (!*heap) return NULL;
    k = *heap;
  }
  return obj_find(obj, k, NULL);
}

cJSON *vt_json_obj_get(const cJSON *obj, const char *key, size_t len) {
  char small[128], *heap;
  cJSON *it;
  if (!obj || !cJSON_IsObject(obj)) return NULL;
  it = obj_get_encoded(obj, key, len, small, sizeof small, &heap);
  cJSON_free(heap);
  return it;
}

int vt_json_obj_set(cJSON *obj, const char *key, size_t len, cJSON *value) {
  return vt_json_obj_put(obj, key, len, value, 1, NULL);
}

int vt_json_obj_put(cJSON *obj, const char *key, size_t len, cJSON *value,
                    int may_add, int *added) {
  char *k;
  cJSON *it, *before = NULL;
  if (added) *added = 0;
  if (!value) return VT_ENOMEM;
  if (!obj || !cJSON_IsObject(obj)) {
    cJSON_Delete(value);
    return VT_EINVAL;
  }
  k = vt_str_encode(key, len);
  if (!k) {
    cJSON_Delete(value);
    return VT_ENOMEM;
  }
  if (value->string && !(value->type & cJSON_StringIsConst))
    cJSON_free(value->string);
  value->type &= ~cJSON_StringIsConst;
  value->string = k;
  it = obj_find(obj, k, &before);
  if (it) { /* replace in place */
    value->next = it->next;
    value->prev = it->prev;
    if (obj->child == it) {
      obj->child = value;
      if (!it->next) value->prev = value;
    } else {
      it->prev->next = value;
    }
    if (it->next) it->next->prev = value;
    else obj->child->prev = value;
    it->next = it->prev = NULL;
    cJSON_Delete(it);
    return VT_OK;
  }
  if (!may_add) {
    cJSON_Delete(value);
    return VT_ELIMIT;
  }
  obj_link_before(obj, value, before);
  if (added) *added = 1;
  return VT_OK;
}

/* ---- writer ------------------------------------------------------------------- */

static const char hexd[] = "0123456789abcdef";

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

void vt_json_write_str(vt_buf *b, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, run = 0;
  vt_buf_putc(b, '"');
  while (i < len) {
    unsigned char c = p[i];
    size_t n, bad;
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      i++;
      run++;
      continue;
    }
    if (run) vt_buf_put(b, p + i - run, run);
    run = 0;
    if (c < 0x80) {
      char esc[6] = {'\\', 'u', '0', '0', 0, 0};
      switch (c) {
        case '"': vt_buf_put(b, "\\\"", 2); break;
        case '\\': vt_buf_put(b, "\\\\", 2); break;
        case '\b': vt_buf_put(b, "\\b", 2); break;
        case '\f': vt_buf_put(b, "\\f", 2); break;
        case '\n': vt_buf_put(b, "\\n", 2); break;
        case '\r': vt_buf_put(b, "\\r", 2); break;
        case '\t': vt_buf_put(b, "\\t", 2); break;
        default:
          esc[4] = hexd[c >> 4];
          esc[5] = hexd[c & 15];
          vt_buf_put(b, esc, 6);
      }
      i++;
      continue;
    }
    n = vt_utf8_len(p + i, len - i, &bad);
    if (n) {
      vt_buf_put(b, p + i, n);
      i += n;
    } else {
      vt_buf_put(b, "\xEF\xBF\xBD", 3);
      i += bad;
    }
  }
  if (run) vt_buf_put(b, p + i - run, run);
  vt_buf_putc(b, '"');
}

static void write_stored_str(vt_buf *b, const char *s) {
  size_t len = strlen(s);
  char *tmp;
  if (!strchr(s, (char)0xC0)) {
    vt_json_write_str(b, s, len);
    return;
  }
  tmp = vt_malloc(len ? len : 1);
  if (!tmp) {
    b->failed = 1;
    return;
  }
  vt_json_write_str(b, tmp, vt_str_decode(s, tmp));
  vt_free(tmp);
}

/* serde_json (ryu) layout of a finite double. */
static void write_double(vt_buf *b, double d) {
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

void vt_json_write(vt_buf *b, const cJSON *v) {
  const cJSON *it;
  if (!v) {
    vt_buf_put(b, "null", 4);
    return;
  }
  switch (v->type & 0xFF) {
    case cJSON_False: vt_buf_put(b, "false", 5); break;
    case cJSON_True: vt_buf_put(b, "true", 4); break;
    case cJSON_Number: write_double(b, v->valuedouble); break;
    case cJSON_Raw: vt_buf_puts(b, v->valuestring ? v->valuestring : "null"); break;
    case cJSON_String: write_stored_str(b, v->valuestring ? v->valuestring : ""); break;
    case cJSON_Array:
      vt_buf_putc(b, '[');
      for (it = v->child; it; it = it->next) {
        if (it != v->child) vt_buf_putc(b, ',');
        vt_json_write(b, it);
      }
      vt_buf_putc(b, ']');
      break;
    case cJSON_Object:
      vt_buf_putc(b, '{');
      for (it = v->child; it; it = it->next) {
        if (it != v->child) vt_buf_putc(b, ',');
        write_stored_str(b, it->string ? it->string : "");
        vt_buf_putc(b, ':');
        vt_json_write(b, it);
      }
      vt_buf_putc(b, '}');
      break;
    default: vt_buf_put(b, "null", 4); break;
  }
}
