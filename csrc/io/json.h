/*
 * json.h: JSON text for vmtrace's values (csrc/io/json.c): the writer (the
 * text serde_json prints, so summaries match the seed byte for byte, and
 * always valid UTF-8), the parser (integers keep 64 bits, strings any byte),
 * and conversions from and to cJSON items for hosts.
 */
#ifndef VT_JSON_H
#define VT_JSON_H

#include <stdint.h>
#include <string.h>

#include "io/buf.h"
#include "vmtrace.h"

/* JSON text of a value as serde_json prints it compactly: sorted object
 * keys, shortest round-trip floats with ".0" when integral, exact integers,
 * strings escaped with invalid UTF-8 as U+FFFD. */
void vt_json_write(vt_buf *b, const vt_value *v);
/* A JSON string literal of raw bytes (invalid UTF-8 becomes U+FFFD). */
void vt_json_write_str(vt_buf *b, const char *s, size_t len);
/* The most bytes vt_json_put_str writes for len bytes: \u00XX for each
 * (nothing takes more) and the quotes. */
#define VT_JSON_STR_MAX(len) (6 * (size_t)(len) + 2)
/* vt_json_write_str at o, which has room for VT_JSON_STR_MAX(len) bytes:
 * the end of what it wrote. For a writer that makes room once for many
 * pieces and writes them without a check each. vt_json_put_str is inline
 * for the strings of 1 to 7 plain bytes (most keys and values; a call would
 * cost more than the copy), the others go to vt_json_put_str_any. */
char *vt_json_put_str_any(char *o, const char *s, size_t len);

/* Does w hold the byte c? (The exact "has a zero byte" of w ^ c, from the
 * bit-twiddling folklore.) */
#define VT_ONES 0x0101010101010101ULL
#define VT_HIGH 0x8080808080808080ULL
static inline __attribute__((always_inline)) int vt_has_byte(uint64_t w, unsigned char c) {
  uint64_t x = w ^ (VT_ONES * c);
  return ((x - VT_ONES) & ~x & VT_HIGH) != 0;
}

/* Are all eight bytes of w written as they are in a JSON string (printable
 * ASCII but '"' and '\\')? */
static inline __attribute__((always_inline)) int vt_json_plain8(uint64_t w) {
  if (((w - VT_ONES * 0x20) | w) & VT_HIGH) return 0; /* a byte under 0x20 or over 0x7f */
  return !(vt_has_byte(w, '"') || vt_has_byte(w, '\\'));
}

/* The bytes of a string of 1 to 7 bytes in one word: the first four and the
 * last four (overlapping), or under four bytes the first, middle and last
 * with the rest filled with a plain byte. Every byte of p is in it. */
static inline __attribute__((always_inline)) uint64_t vt_short_word(const unsigned char *p,
                                                                    size_t len) {
  uint32_t lo, hi;
  if (len >= 4) {
    memcpy(&lo, p, 4);
    memcpy(&hi, p + len - 4, 4);
    return lo | (uint64_t)hi << 32;
  }
  return (VT_ONES * 'a' & ~(uint64_t)0xFFFFFF) | p[0] | (uint64_t)p[len >> 1] << 8 |
         (uint64_t)p[len - 1] << 16;
}

/* Copies a string of 1 to 7 bytes from p to o the way vt_short_word reads it. */
static inline __attribute__((always_inline)) void vt_short_copy(char *o, const unsigned char *p,
                                                                size_t len) {
  if (len >= 4) {
    memcpy(o, p, 4);
    memcpy(o + len - 4, p + len - 4, 4);
  } else {
    o[0] = (char)p[0];
    o[len >> 1] = (char)p[len >> 1];
    o[len - 1] = (char)p[len - 1];
  }
}

static inline char *vt_json_put_str(char *o, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  if (len - 1 < 7 && vt_json_plain8(vt_short_word(p, len))) { /* 1 to 7 bytes, all plain */
    *o = '"';
    vt_short_copy(o + 1, p, len);
    o[len + 1] = '"';
    return o + len + 2;
  }
  return vt_json_put_str_any(o, s, len);
}
/* The same with <, >, & and U+2028/U+2029 escaped as \u sequences, so the
 * text is inert inside an HTML <script> element (the HTML report). */
void vt_json_write_html(vt_buf *b, const vt_value *v);
void vt_json_write_str_html(vt_buf *b, const char *s, size_t len);
/* A number as serde_json prints a double. */
void vt_json_write_num(vt_buf *b, double d);
/* Raw bytes as valid UTF-8 text (invalid sequences become U+FFFD), nothing
 * escaped. Modes: VT_TEXT_NUL shows NUL as U+FFFD too (printable text);
 * VT_TEXT_FOLDED also makes ';' ':' and line breaks spaces (folded frames). */
#define VT_TEXT_NUL 1
#define VT_TEXT_FOLDED 3
void vt_buf_put_text(vt_buf *b, const char *s, size_t len, int mode);
/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 with *bad set
 * to the length of the maximal invalid subpart (one U+FFFD replaces it). */
size_t vt_utf8_len(const unsigned char *p, size_t n, size_t *bad);

/* Parse one JSON value into the builder b (appended); 1, or 0 with a message
 * in *err and the byte offset *at of the problem. Nesting deeper than
 * max_depth is refused. */
int vt_json_parse_into(vt_vb *b, const char *text, size_t len, int max_depth,
                       const char **err, size_t *at);

#endif
