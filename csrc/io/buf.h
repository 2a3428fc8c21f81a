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
/* v in decimal at o, which has room for 20 bytes: the end of what it wrote. */
char *vt_u64_to(char *o, uint64_t v);
char *vt_i64_to(char *o, int64_t v);
/* The eight decimal digits of v < 10^8, with leading zeros, at o (which has
 * room for them): for a writer that converts straight into its buffer. */
static inline void vt_put_digits8(char *o, uint32_t v) {
  uint32_t hi = v / 10000, lo = v % 10000; /* four digits each: no loop */
  memcpy(o, vt_digits2 + 2 * (hi / 100), 2);
  memcpy(o + 2, vt_digits2 + 2 * (hi % 100), 2);
  memcpy(o + 4, vt_digits2 + 2 * (lo / 100), 2);
  memcpy(o + 6, vt_digits2 + 2 * (lo % 100), 2);
}
void vt_buf_put_i64(vt_buf *b, int64_t v);
/* The eight hex digits of x as bytes 0 to 15, one a byte, the most
 * significant first in memory (a word's bytes spread apart, then each
 * turned into its digit with no table and no loop). */
static inline uint64_t vt_hex8_word(uint32_t x) {
  uint64_t y = x;
  y = (y | y << 16) & 0x0000FFFF0000FFFFULL;
  y = (y | y << 8) & 0x00FF00FF00FF00FFULL;
  y = (y | y << 4) & 0x0F0F0F0F0F0F0F0FULL; /* byte k: nibble k (the lowest first) */
  /* + '0', and + 'a' - '0' - 10 more on those >= 10 (no carry leaves a byte) */
  y += 0x3030303030303030ULL + (((y + 0x0606060606060606ULL) >> 4) & 0x0101010101010101ULL) * 39;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  y = __builtin_bswap64(y); /* the highest nibble first in memory */
#elif !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
#error "vt_hex8_word needs the byte order"
#endif
  return y;
}
/* The 16 lowercase hex digits of v at o (room for them): the end. */
static inline char *vt_hex64_to(char *o, uint64_t v) {
  uint64_t hi = vt_hex8_word((uint32_t)(v >> 32)), lo = vt_hex8_word((uint32_t)v);
  memcpy(o, &hi, 8);
  memcpy(o + 8, &lo, 8);
  return o + 16;
}
/* 16 lowercase hex digits. */
void vt_buf_put_hex64(vt_buf *b, uint64_t v);
/* A decimal with three decimals of ns / 1000 (microseconds from ns, or
 * milliseconds from us). */
void vt_buf_put_milli(vt_buf *b, int64_t v);
void vt_buf_free(vt_buf *b);
/* The bytes, NUL-terminated, handed over (vt_free them); NULL when failed. */
char *vt_buf_take(vt_buf *b, size_t *len);

#endif
