/*
 * value.c: vmtrace's compact encoding of JSON values, the form metadata,
 * event and link attributes are stored in (and copied across threads in:
 * an encoding holds no pointers). Reading and building.
 *
 *   null  00                false 01            true 02
 *   int   03 <i64>          number 04 <double>
 *   str   05 <u32 len> <bytes>
 *   array 06 <u32 count> <u32 payload bytes> <values...>
 *   object 07 <u32 count> <u32 payload bytes> (<u32 klen> <key bytes> <value>)...
 *
 * Fixed-width fields are in host byte order, read with memcpy (no alignment).
 * Object keys are unique and sorted by their bytes (a prefix first), as
 * serde_json's maps print them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define P(v) ((const unsigned char *)(v))

static uint32_t rd32(const unsigned char *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  return x;
}

vt_type vt_value_type(const vt_value *v) { return (vt_type)P(v)[0]; }

int64_t vt_value_int(const vt_value *v) {
  int64_t x;
  memcpy(&x, P(v) + 1, 8);
  return x;
}

double vt_value_num(const vt_value *v) {
  double d;
  if (P(v)[0] == VT_INT) return (double)vt_value_int(v);
  memcpy(&d, P(v) + 1, 8);
  return d;
}

const char *vt_value_str(const vt_value *v, size_t *len) {
  *len = rd32(P(v) + 1);
  return (const char *)P(v) + 5;
}

size_t vt_value_count(const vt_value *v) {
  return P(v)[0] == VT_ARR || P(v)[0] == VT_OBJ ? rd32(P(v) + 1) : 0;
}

size_t vt_value_size(const vt_value *v) {
  switch (P(v)[0]) {
    case VT_INT:
    case VT_NUM: return 9;
    case VT_STR: return 5 + (size_t)rd32(P(v) + 1);
    case VT_ARR:
    case VT_OBJ: return 9 + (size_t)rd32(P(v) + 5);
    default: return 1;
  }
}

int vt_value_is_int(const vt_value *v, int64_t *out) {
  if (!v || P(v)[0] != VT_INT) return 0;
  if (out) *out = vt_value_int(v);
  return 1;
}

void vt_value_iter(const vt_value *v, vt_iter *it) {
  it->object = P(v)[0] == VT_OBJ;
  if (P(v)[0] == VT_ARR || it->object) {
    it->left = rd32(P(v) + 1);
    it->p = P(v) + 9;
  } else {
    it->left = 0;
    it->p = NULL;
  }
}

const vt_value *vt_iter_next(vt_iter *it, const char **key, size_t *klen) {
  const unsigned char *v;
  if (!it->left) return NULL;
  it->left--;
  if (it->object) {
    uint32_t n = rd32(it->p);
    if (key) *key = (const char *)it->p + 4;
    if (klen) *klen = n;
    it->p += 4 + n;
  } else {
    if (key) *key = NULL;
    if (klen) *klen = 0;
  }
  v = it->p;
  it->p += vt_value_size((const vt_value *)v);
  return (const vt_value *)v;
}

/* Byte order of keys, a prefix first. */
static int key_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int c = memcmp(a, b, an < bn ? an : bn);
  if (c) return c;
  return an < bn ? -1 : an > bn;
}

const vt_value *vt_value_get(const vt_value *obj, const char *key, size_t klen) {
  vt_iter it;
  const vt_value *v;
  const char *k;
  size_t n;
  if (!obj || P(obj)[0] != VT_OBJ) return NULL;
  vt_value_iter(obj, &it);
  while ((v = vt_iter_next(&it, &k, &n)) != NULL) {
    int c = key_cmp(k, n, key, klen);
    if (c == 0) return v;
    if (c > 0) break;
  }
  return NULL;
}

vt_value *vt_value_dup(const vt_value *v) {
  size_t n;
  void *p;
  if (!v) return NULL; /* a failed builder's value: nothing to copy */
  n = vt_value_size(v);
  p = vt_malloc(n);
  if (p) memcpy(p, v, n);
  return p;
}

/* ---- building ------------------------------------------------------------------- */

void vt_vb_init(vt_vb *b) { memset(b, 0, sizeof *b); }

void vt_vb_free(vt_vb *b) {
  vt_free(b->p);
  vt_free(b->open);
  vt_vb_init(b);
}

void vt_vb_reset(vt_vb *b) {
  b->n = 0;
  b->nopen = 0;
  b->failed = 0;
}

static unsigned char *room(vt_vb *b, size_t n) {
  if (b->failed) return NULL;
  if (n > SIZE_MAX - b->n || !vt_grow((void **)&b->p, &b->cap, b->n + n, 1)) {
    b->failed = 1;
    return NULL;
  }
  b->n += n;
  return b->p + b->n - n;
}

static void tag_u64(vt_vb *b, int tag, const void *x) {
  unsigned char *p = room(b, 9);
  if (!p) return;
  p[0] = (unsigned char)tag;
  memcpy(p + 1, x, 8);
}

void vt_vb_null(vt_vb *b) {
  unsigned char *p = room(b, 1);
  if (p) *p = VT_NULL;
}

void vt_vb_bool(vt_vb *b, int v) {
  unsigned char *p = room(b, 1);
  if (p) *p = v ? VT_TRUE : VT_FALSE;
}

void vt_vb_int(vt_vb *b, int64_t v) { tag_u64(b, VT_INT, &v); }

void vt_vb_num(vt_vb *b, double v) {
  if (isnan(v) || isinf(v)) vt_vb_null(b);
  else tag_u64(b, VT_NUM, &v);
}

static void put_bytes(vt_vb *b, int tag, const char *s, size_t len) {
  unsigned char *p;
  uint32_t n = (uint32_t)len;
  if (len > UINT32_MAX - 16) {
    b->failed = 1;
    return;
  }
  p = room(b, (tag ? 5 : 4) + len);
  if (!p) return;
  if (tag) *p++ = (unsigned char)tag;
  memcpy(p, &n, 4);
  if (len) memcpy(p + 4, s, len);
}

void vt_vb_str(vt_vb *b, const char *s, size_t len) { put_bytes(b, VT_STR, s, len); }
void vt_vb_key(vt_vb *b, const char *s, size_t len) { put_bytes(b, 0, s, len); }

static void open_container(vt_vb *b, int tag) {
  unsigned char *p;
  if (b->failed) return;
  if (!vt_grow((void **)&b->open, &b->capopen, b->nopen + 1, sizeof *b->open)) {
    b->failed = 1;
    return;
  }
  b->open[b->nopen++] = b->n;
  p = room(b, 9);
  if (p) memset(p, 0, 9), p[0] = (unsigned char)tag;
}

void vt_vb_arr(vt_vb *b) { open_container(b, VT_ARR); }
void vt_vb_obj(vt_vb *b) { open_container(b, VT_OBJ); }

typedef struct entry {
  size_t off, len;    /* the whole entry */
  const char *key;
  size_t klen;
} entry;

static int entry_cmp(const void *a, const void *b) {
  const entry *x = a, *y = b;
  int c = key_cmp(x->key, x->klen, y->key, y->klen);
  if (c) return c;
  return x->off < y->off ? -1 : x->off > y->off; /* stable: later last */
}

/* Sort the entries of the object whose payload is b->p[at, b->n), dropping
 * earlier duplicates; returns the count (or -1 when out of memory). */
static long sort_entries(vt_vb *b, size_t at) {
  size_t n = 0, cap = 0, i, k, off = at;
  entry *e = NULL;
  unsigned char *tmp;
  while (off < b->n) {
    uint32_t kl = rd32(b->p + off);
    size_t vlen = vt_value_size((const vt_value *)(b->p + off + 4 + kl));
    if (!vt_grow((void **)&e, &cap, n + 1, sizeof *e)) goto oom;
    e[n].off = off;
    e[n].key = (const char *)b->p + off + 4;
    e[n].klen = kl;
    e[n].len = 4 + kl + vlen;
    off += e[n].len;
    n++;
  }
  if (n < 2) {
    vt_free(e);
    return (long)n;
  }
  qsort(e, n, sizeof *e, entry_cmp);
  if (!(tmp = vt_malloc(b->n - at))) goto oom;
  for (i = 0, k = 0, off = 0; i < n; i++) {
    if (i + 1 < n && key_cmp(e[i].key, e[i].klen, e[i + 1].key, e[i + 1].klen) == 0)
      continue; /* a later duplicate wins */
    memcpy(tmp + off, b->p + e[i].off, e[i].len);
    off += e[i].len;
    k++;
  }
  memcpy(b->p + at, tmp, off);
  b->n = at + off;
  vt_free(tmp);
  vt_free(e);
  return (long)k;
oom:
  vt_free(e);
  return -1;
}

void vt_vb_end(vt_vb *b) {
  size_t at, off;
  uint32_t count = 0, size;
  if (b->failed) return;
  if (!b->nopen) {
    b->failed = 1;
    return;
  }
  at = b->open[--b->nopen];
  if (b->p[at] == VT_OBJ) {
    long k = sort_entries(b, at + 9);
    if (k < 0) {
      b->failed = 1;
      return;
    }
    count = (uint32_t)k;
  } else {
    for (off = at + 9; off < b->n; count++)
      off += vt_value_size((const vt_value *)(b->p + off));
  }
  if (b->n - at - 9 > UINT32_MAX) {
    b->failed = 1;
    return;
  }
  size = (uint32_t)(b->n - at - 9);
  memcpy(b->p + at + 1, &count, 4);
  memcpy(b->p + at + 5, &size, 4);
}

void vt_vb_copy(vt_vb *b, const vt_value *v) {
  size_t n = vt_value_size(v);
  unsigned char *p = room(b, n);
  if (p) memcpy(p, v, n);
}

const vt_value *vt_vb_value(const vt_vb *b) {
  return b->failed || b->nopen || !b->n ? NULL : (const vt_value *)b->p;
}
