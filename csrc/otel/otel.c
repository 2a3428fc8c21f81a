/*
 * otel.c: OpenTelemetry and W3C Trace Context ids, in one place with one hex
 * table. Trace ids are `trace_<uuid v7>`: 48 bits of unix milliseconds,
 * version 7, variant 10, the rest random (libuuid's generator; libuuid 2.38
 * has no v7 of its own, so the layout is written here); a trace id read
 * from a file that names no uuid gets bytes hashed from its text (a uuid
 * v8), since an all-zero trace id is invalid everywhere. Exported span ids
 * are a bijection (splitmix64's finalizer) of the local id plus a random
 * salt, so processes sharing a trace never collide, and the local id can be
 * recovered. traceparent is parsed strictly as the specification says
 * (version ff, all-zero ids, wrong lengths and uppercase hex are invalid).
 */
#include <string.h>
#include <uuid/uuid.h>

#include "otel.h"

static const char hexd[] = "0123456789abcdef";

void vt_hex(const unsigned char *p, size_t n, char *out) {
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = hexd[p[i] >> 4];
    out[2 * i + 1] = hexd[p[i] & 15];
  }
}

void vt_hex64(uint64_t v, char out[17]) {
  int i;
  for (i = 15; i >= 0; i--, v >>= 4) out[i] = hexd[v & 15];
  out[16] = '\0';
}

static int hexval(char ch, int any_case) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (any_case && ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

int vt_unhex64(const char *s, size_t n, uint64_t *out) {
  size_t i;
  uint64_t v = 0;
  if (n == 0 || n > 16) return 0;
  for (i = 0; i < n; i++) {
    int d = hexval(s[i], 1);
    if (d < 0) return 0;
    v = v << 4 | (uint64_t)d;
  }
  *out = v;
  return 1;
}

void vt_trace_id_text(const unsigned char bytes[16], char text[48]) {
  char s[37];
  uuid_unparse_lower(bytes, s);
  memcpy(text, "trace_", 6);
  memcpy(text + 6, s, 37);
}

void vt_trace_id_new(unsigned char bytes[16], char text[48], uint64_t *salt) {
  uuid_t u, r;
  uint64_t ms = (uint64_t)(vt_clock_wall_ns() / 1000000);
  int i;
  uuid_generate_random(u);
  for (i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
  u[6] = (unsigned char)(0x70 | (u[6] & 0x0f));
  u[8] = (unsigned char)(0x80 | (u[8] & 0x3f));
  memcpy(bytes, u, 16);
  vt_trace_id_text(bytes, text);
  uuid_generate_random(r);
  memcpy(salt, r, sizeof *salt);
}

int vt_trace_id_parse(const char *s, size_t len, unsigned char bytes[16]) {
  size_t i, n = 0;
  int any = 0;
  if (len >= 6 && memcmp(s, "trace_", 6) == 0) s += 6, len -= 6;
  for (i = 0; i < len; i++) {
    int d;
    if (s[i] == '-') continue;
    if (n == 32 || (d = hexval(s[i], 1)) < 0) return 0;
    if (n % 2 == 0) bytes[n / 2] = (unsigned char)(d << 4);
    else bytes[n / 2] |= (unsigned char)d;
    any |= d;
    n++;
  }
  return n == 32 && any;
}

/* splitmix64's finalizer: a bijection of 64 bits (exported span ids, derived
 * trace ids). */
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void vt_trace_id_derive(const char *s, size_t len, unsigned char bytes[16]) {
  uint64_t h[2] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}; /* FNV-1a, two bases */
  size_t i;
  int k;
  for (i = 0; i < len; i++)
    for (k = 0; k < 2; k++) h[k] = (h[k] ^ (unsigned char)s[i]) * 0x100000001b3ull;
  for (k = 0; k < 2; k++) {
    uint64_t x = mix(h[k] + (uint64_t)len);
    for (i = 0; i < 8; i++) bytes[8 * k + i] = (unsigned char)(x >> (56 - 8 * i));
  }
  /* a uuid v8 (custom): the version nibble makes it never all zero */
  bytes[6] = (unsigned char)(0x80 | (bytes[6] & 0x0f));
  bytes[8] = (unsigned char)(0x80 | (bytes[8] & 0x3f));
}

/* n hex digits at s (lowercase, as headers must be) into out (n / 2 bytes);
 * 0 when not lowercase hex, or all zero when nonzero is asked. */
static int hex_bytes(const char *s, size_t n, unsigned char *out, int nonzero) {
  size_t i;
  int any = 0;
  for (i = 0; i < n; i += 2) {
    int hi = hexval(s[i], 0), lo = hexval(s[i + 1], 0);
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
  if (v[0] == 0 && len != 55) return 0;   /* version 00 is exactly 55 */
  if (len > 55 && s[55] != '-') return 0; /* later versions may add fields */
  if (s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
  if (!hex_bytes(s + 3, 32, trace, 1) || !hex_bytes(s + 36, 16, p, 1) ||
      !hex_bytes(s + 53, 2, f, 0))
    return 0;
  *parent = 0;
  for (i = 0; i < 8; i++) *parent = *parent << 8 | p[i];
  *flags = f[0];
  return 1;
}

void vt_traceparent_format(const unsigned char trace[16], uint64_t span,
                           unsigned flags, char out[56]) {
  memcpy(out, "00-", 3);
  vt_hex(trace, 16, out + 3);
  out[35] = '-';
  vt_hex64(span, out + 36);
  out[52] = '-';
  out[53] = hexd[(flags >> 4) & 15];
  out[54] = hexd[flags & 15];
  out[55] = '\0';
}

/* W3C tracestate: list-member = key "=" value; key = simple-key /
 * tenant@system; value: 0-255 printable ASCII but ',' and '=', not ending in
 * a space. Empty members (and spaces around them) are allowed. */
static int ts_key(const char *s, size_t n) {
  size_t i, at = n;
  if (n == 0 || n > 256) return 0;
  for (i = 0; i < n; i++)
    if (s[i] == '@') {
      if (at != n) return 0;
      at = i;
    }
  for (i = 0; i < n; i++) {
    char ch = s[i];
    int first = i == 0 || i == at + 1;
    if (i == at) continue;
    /* a simple key and a system id begin with a letter, a tenant id may
     * begin with a digit (Trace Context Level 1) */
    if (first && !((ch >= 'a' && ch <= 'z') || (i == 0 && at != n && ch >= '0' && ch <= '9')))
      return 0;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' ||
          ch == '-' || ch == '*' || ch == '/'))
      return 0;
  }
  if (at != n && (at == 0 || at + 1 == n || at > 241 || n - at - 1 > 14)) return 0;
  return 1;
}

/* The non-empty list-members of a tracestate (spaces around them trimmed):
 * their count, or -1 when one is malformed, a key comes twice or there are
 * more than 32. */
typedef struct ts_member {
  size_t at, len, keylen;
} ts_member;

static int ts_split(const char *s, size_t len, ts_member m[32]) {
  size_t i = 0;
  int n = 0, j;
  while (i <= len) {
    size_t e = i, eq, end;
    while (e < len && s[e] != ',') e++;
    while (i < e && (s[i] == ' ' || s[i] == '\t')) i++; /* OWS */
    end = e;
    while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t')) end--;
    if (end > i) {
      for (eq = i; eq < end && s[eq] != '='; eq++) {
      }
      if (eq == end || !ts_key(s + i, eq - i) || end - eq - 1 > 256 || end == eq + 1) return -1;
      for (j = 0; j < n; j++) /* only one entry per key */
        if (m[j].keylen == eq - i && memcmp(s + m[j].at, s + i, eq - i) == 0) return -1;
      if (n == 32) return -1;
      m[n].at = i;
      m[n].len = end - i;
      m[n].keylen = eq - i;
      for (i = eq + 1; i < end; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == ',' || s[i] == '=') return -1;
      n++;
    }
    i = e + 1;
  }
  return n;
}

int vt_tracestate_valid(const char *s, size_t len) {
  ts_member m[32];
  return ts_split(s, len, m) >= 0;
}

int vt_tracestate_keep(const char *s, size_t len, char out[VT_TRACESTATE_MAX + 1]) {
  ts_member m[32];
  int n = ts_split(s, len, m), keep[32], i, pass;
  size_t total = 0, o = 0;
  out[0] = '\0';
  if (n < 0) return 0;
  if (len <= VT_TRACESTATE_MAX) { /* as received */
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
  }
  for (i = 0; i < n; i++) {
    keep[i] = 1;
    total += m[i].len + (i ? 1 : 0);
  }
  /* too long: whole entries go, those over 128 characters first, then from
   * the end (W3C trace context, "tracestate Limits") */
  for (pass = 0; pass < 2; pass++)
    for (i = n - 1; i >= 0 && total > VT_TRACESTATE_MAX; i--)
      if (keep[i] && (pass || m[i].len > 128)) {
        keep[i] = 0;
        total = total > m[i].len + 1 ? total - m[i].len - 1 : 0; /* its comma too */
      }
  for (i = 0; i < n; i++)
    if (keep[i]) {
      if (o) out[o++] = ',';
      memcpy(out + o, s + m[i].at, m[i].len);
      o += m[i].len;
    }
  out[o] = '\0';
  return 1;
}

/* ---- exported span ids -------------------------------------------------------------- */

uint64_t vt_otel_span_id(uint64_t salt, vt_id id) {
  uint64_t z = mix(salt + id);
  return z ? z : 1; /* 0 is not a valid span id (one in 2^64 ids maps to 1) */
}

/* The inverse of the mixing above (for z != the rare remapped 0). */
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

vt_id vt_otel_local_id(uint64_t salt, uint64_t span_id) { return unmix(span_id) - salt; }
uint64_t vt_otel_salt_of(vt_id id, uint64_t span_id) { return unmix(span_id) - id; }

int vt_trace_sampled(const unsigned char trace[16], double ratio) {
  /* bytes 9..15 are random in a uuid v7 (and in any W3C trace id): 56 bits */
  uint64_t r = 0;
  int i;
  if (ratio >= 1) return 1;
  if (!(ratio > 0)) return 0;
  for (i = 9; i < 16; i++) r = r << 8 | trace[i];
  return (double)r < ratio * 72057594037927936.0; /* 2^56 */
}

/* ---- samplers ------------------------------------------------------------------------ */

static const char *const sampler_names[VT_SAMPLER_COUNT] = {
    "always_on", "always_off", "traceidratio", "parentbased_always_on",
    "parentbased_always_off", "parentbased_traceidratio"};

const char *vt_sampler_name(vt_sampler s) {
  return (unsigned)s < VT_SAMPLER_COUNT ? sampler_names[s] : NULL;
}

int vt_sampler_parse(const char *s, size_t len) {
  int i;
  for (i = 0; i < VT_SAMPLER_COUNT; i++)
    if (strlen(sampler_names[i]) == len && memcmp(sampler_names[i], s, len) == 0) return i;
  return -1;
}
