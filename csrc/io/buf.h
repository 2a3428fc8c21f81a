/*
 * buf.h: the output buffer every writer goes through (csrc/io/buf.c). A
 * growable byte buffer; with a sink it is a bounded window onto a file or a
 * socket: full windows are handed to the sink, so output of any size takes
 * bounded memory. `failed` sticks once an allocation or a write failed.
 */
#ifndef VT_BUF_H
#define VT_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Write n bytes; 0 on success, else an errno value. */
typedef int (*vt_sink)(void *ud, const char *p, size_t n);

typedef struct vt_buf {
  char *p;
  size_t n, cap;
  int failed;
  int err;       /* errno of a failed write (0: out of memory) */
  vt_sink sink;  /* NULL: a string in memory */
  void *sink_ud;
} vt_buf;

#define VT_BUF_WINDOW 65536

void vt_buf_init(vt_buf *b);
/* A window onto a FILE (fwrite). */
void vt_buf_init_file(vt_buf *b, FILE *f);
/* Hand what is pending to the sink (no-op without one); 1 when fine. */
int vt_buf_flush(vt_buf *b);
/* Room for extra more bytes (the slow path of the puts below); 0 when the
 * buffer has failed. */
int vt_buf_grow(vt_buf *b, size_t extra);

/* The puts are inline: every writer calls them for each few bytes, and a
 * literal's strlen folds away. */
static inline void vt_buf_put(vt_buf *b, const void *s, size_t len) {
  if (__builtin_expect(len < b->cap - b->n, 1) || (len && vt_buf_grow(b, len))) {
    memcpy(b->p + b->n, s, len);
    b->n += len;
  }
}

static inline void vt_buf_putc(vt_buf *b, char ch) {
  if (__builtin_expect(b->n < b->cap, 1) || vt_buf_grow(b, 1)) b->p[b->n++] = ch;
}

static inline void vt_buf_puts(vt_buf *b, const char *s) { vt_buf_put(b, s, strlen(s)); }
void vt_buf_put_u64(vt_buf *b, uint64_t v);
/* "00" to "99": the two digits of n at 2n (buf.c). */
extern const char vt_digits2[201];
/* The eight decimal digits of v < 10^8, with leading zeros, at o (which has
 * room for them): for a writer that converts straight into its buffer. */
static inline void vt_put_digits8(char *o, uint32_t v) {
  int i;
  for (i = 6; i >= 0; i -= 2, v /= 100) {
    o[i] = vt_digits2[2 * (v % 100)];
    o[i + 1] = vt_digits2[2 * (v % 100) + 1];
  }
}
void vt_buf_put_i64(vt_buf *b, int64_t v);
/* 16 lowercase hex digits. */
void vt_buf_put_hex64(vt_buf *b, uint64_t v);
/* A decimal with three decimals of ns / 1000 (microseconds from ns, or
 * milliseconds from us). */
void vt_buf_put_milli(vt_buf *b, int64_t v);
void vt_buf_free(vt_buf *b);
/* The bytes, NUL-terminated, handed over (vt_free them); NULL when failed. */
char *vt_buf_take(vt_buf *b, size_t *len);

#endif
