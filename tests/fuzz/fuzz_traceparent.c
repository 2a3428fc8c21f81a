/*
 * fuzz_traceparent.c: libFuzzer harness for the W3C traceparent parser and
 * vt_collector_continue_trace. Whatever a header holds: an accepted one has
 * the specification's form, joins the collector to exactly its trace and
 * parent, and comes back unchanged (version 00) from vt_collector_traceparent;
 * a refused one changes nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"

static int lower_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *h = (const char *)data;
  unsigned char trace[16];
  uint64_t parent;
  unsigned flags;
  vt_collector *c = vt_collector_new();
  char before[48], out[56];
  int ok = vt_traceparent_parse(h, size, trace, &parent, &flags);
  if (!c) return 0;
  memcpy(before, vt_collector_trace_id(c), sizeof before);
  if (ok) { /* the form the specification gives */
    if (size < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') abort();
    if (!lower_hex(h, 2) || !lower_hex(h + 3, 32) || !lower_hex(h + 36, 16) || !lower_hex(h + 53, 2))
      abort();
    if (!memcmp(h, "ff", 2) || parent == 0) abort();
    if (!memcmp(h, "00", 2) && size != 55) abort();
  }
  if (vt_collector_continue_trace(c, h, size) == VT_OK) {
    if (!ok || vt_collector_remote_parent(c) != parent) abort();
    if (memcmp(vt_collector_trace_bytes(c), trace, 16) != 0) abort();
    if (vt_collector_traceparent(c, 0, out) != VT_OK) abort();
    if (!memcmp(h, "00", 2) && memcmp(out, h, 53) != 0) abort(); /* same trace and parent */
  } else {
    if (ok || strcmp(before, vt_collector_trace_id(c)) != 0 || vt_collector_remote_parent(c))
      abort();
  }
  vt_collector_free(c);
  return 0;
}
