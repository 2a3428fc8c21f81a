/*
 * ids.c: trace ids. `trace_<uuid v7>`: 48 bits of unix milliseconds, version
 * 7, variant 10, the rest random (libuuid's generator). libuuid 2.38 has no v7
 * generator of its own, so the layout is written here and libuuid supplies the
 * random bytes and the text form.
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
