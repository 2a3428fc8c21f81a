/*
 * buf.c: the output buffer (see buf.h). Knows nothing of spans or JSON.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core/util.h"

void vt_buf_init(vt_buf *b) { memset(b, 0, sizeof *b); }

static int file_sink(void *ud, const char *p, size_t n) {
  if (fwrite(p, 1, n, (FILE *)ud) != n) return errno ? errno : EIO;
  return 0;
}

void vt_buf_init_file(vt_buf *b, FILE *f) {
  vt_buf_init(b);
  b->sink = file_sink;
  b->sink_ud = f;
}

int vt_buf_flush(vt_buf *b) {
  if (b->failed) return 0;
  if (b->sink && b->n) {
    int e = b->sink(b->sink_ud, b->p, b->n);
    if (e) {
      b->err = e;
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
  if (extra <= b->cap - b->n) return 1;
  if (b->sink && b->n) { /* a window: hand it over first */
    if (!vt_buf_flush(b)) return 0;
    if (extra <= b->cap) return 1;
  }
  cap = b->cap ? b->cap : (b->sink ? VT_BUF_WINDOW : 256);
  while (cap - b->n < extra) {
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

const char vt_digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

char *vt_u64_to(char *o, uint64_t v) {
  char tmp[24], *e = tmp + sizeof tmp, *p = e;
  while (v >= 100) { /* two digits at a time */
    unsigned d = (unsigned)(v % 100) * 2;
    v /= 100;
    *--p = vt_digits2[d + 1];
    *--p = vt_digits2[d];
  }
  if (v >= 10) {
    *--p = vt_digits2[v * 2 + 1];
    *--p = vt_digits2[v * 2];
  } else {
    *--p = (char)('0' + v);
  }
  memcpy(o, p, (size_t)(e - p));
  return o + (e - p);
}

void vt_buf_put_u64(vt_buf *b, uint64_t v) {
  char tmp[20];
  vt_buf_put(b, tmp, (size_t)(vt_u64_to(tmp, v) - tmp));
}

char *vt_i64_to(char *o, int64_t v) {
  if (v >= 0) return vt_u64_to(o, (uint64_t)v);
  *o++ = '-';
  return vt_u64_to(o, (uint64_t)0 - (uint64_t)v);
}

void vt_buf_put_i64(vt_buf *b, int64_t v) {
  char tmp[20];
  vt_buf_put(b, tmp, (size_t)(vt_i64_to(tmp, v) - tmp));
}

void vt_buf_put_hex64(vt_buf *b, uint64_t v) {
  char h[16];
  vt_hex64_to(h, v);
  vt_buf_put(b, h, 16);
}

void vt_buf_put_milli(vt_buf *b, int64_t v) {
  char frac[4];
  uint64_t u;
  if (v < 0) {
    vt_buf_putc(b, '-');
    u = (uint64_t)0 - (uint64_t)v;
  } else {
    u = (uint64_t)v;
  }
  vt_buf_put_u64(b, u / 1000);
  u %= 1000;
  frac[0] = '.';
  frac[1] = (char)('0' + u / 100);
  frac[2] = (char)('0' + u / 10 % 10);
  frac[3] = (char)('0' + u % 10);
  vt_buf_put(b, frac, 4);
}

void vt_buf_free(vt_buf *b) {
  vt_free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

char *vt_buf_take(vt_buf *b, size_t *len) {
  char *p;
  vt_buf_putc(b, '\0');
  if (b->failed) {
    vt_buf_free(b);
    return NULL;
  }
  p = b->p;
  if (len) *len = b->n - 1;
  b->p = NULL;
  b->n = b->cap = 0;
  return p;
}
