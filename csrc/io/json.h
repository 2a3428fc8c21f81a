/*
 * json.h: JSON text for vmtrace's values (csrc/io/json.c): the writer (the
 * text serde_json prints, so summaries match the seed byte for byte, and
 * always valid UTF-8), the parser (integers keep 64 bits, strings any byte),
 * and conversions from and to cJSON items for hosts.
 */
#ifndef VT_JSON_H
#define VT_JSON_H

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
 * pieces and writes them without a check each. */
char *vt_json_put_str(char *o, const char *s, size_t len);
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
