/*
 * ids.c: trace ids. `trace_<uuid v7>`: 48 bits of unix milliseconds, version
 * 7, variant 10, the rest random (libuuid's generator). libuuid 2.38 has no v7
 * generator of its own, so the layout is written here and libuuid supplies the
 * random bytes and the text form.
 *
 * Also the W3C Trace Context traceparent header, parsed strictly as the
 * specification says (version ff, all-zero ids, wrong lengths and uppercase
 * hex are invalid), and the sampling decision made from a trace id.
 */
#include <string.h>
#include <uuid/uuid.h>

#include "internal.h"

void vt_trace_id_new(unsigned char bytes[16], char text[48], uint64_t *salt) {
  uuid_t u, r;
  char s[37];
  uint64_t ms = (uint64_t)(vt_clock_wall_ns() / 1000000);
  int i;

  uuid_generate_random(u);
  for (i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
  u[6] = (unsigned char)(0x70 | (u[6] & 0x0f));
  u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
  memcpy(bytes, u, 16);
  uuid_unparse_lower(u, s);
  memcpy(text, "trace_", 6);
  memcpy(text + 6, s, 37);

  uuid_generate_random(r);
  memcpy(salt, r, sizeof *salt);
}

/* The text "trace_<uuid>" of 16 bytes. */
void vt_trace_id_text(const unsigned char bytes[16], char text[48]) {
  char s[37];
  uuid_unparse_lower(bytes, s);
  memcpy(text, "trace_", 6);
  memcpy(text + 6, s, 37);
}

static int hexval(char ch) { /* lowercase only, as the header must be */
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return -1;
}

/* n hex digits at s into out (n / 2 bytes); 0 when not lowercase hex or all
 * zero (when nonzero is set). */
static int hex_bytes(const char *s, size_t n, unsigned char *out, int nonzero) {
  size_t i;
  int any = 0;
  for (i = 0; i < n; i += 2) {
    int hi = hexval(s[i]), lo = hexval(s[i + 1]);
    if (hi < 0 || lo < 0) return 0;
    out[i / 2] = (unsigned char)(hi << 4 | lo);
    any |= out[i / 2];
  }
  return !nonzero || any;
}

int vt_traceparent_parse(const char *s, size_t len, unsigned char trace[16],
                         uint64_t *parent, unsigned *flags) {
  unsigned char v[1], p[8], f[1];
  int i;
  if (len < 55 || !hex_bytes(s, 2, v, 0) || v[0] == 0xff) return 0;
  if (v[0] == 0 && len != 55) return 0;      /* version 00 is exactly 55 */
  if (len > 55 && s[55] != '-') return 0;    /* later versions may add fields */
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
  if (!hex_bytes(s + 3, 32, trace, 1) || !hex_bytes(s + 36, 16, p, 1) ||
      !hex_bytes(s + 53, 2, f, 0))
    return 0;
  *parent = 0;
  for (i = 0; i < 8; i++) *parent = *parent << 8 | p[i];
  *flags = f[0];
  return 1;
}

int vt_trace_sampled(const unsigned char trace[16], double ratio) {
  /* bytes 9..15 are random in a uuid v7 (and in any W3C trace id): 56 bits */
  uint64_t r = 0;
  int i;
  if (ratio >= 1) return 1;
  if (!(ratio > 0)) return 0;
  for (i = 9; i < 16; i++) r = r << 8 | trace[i];
  return (double)r < ratio * 72057594037927936.0; /* 2^56 */
}
