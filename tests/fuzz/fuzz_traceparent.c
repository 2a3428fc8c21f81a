/*
 * fuzz_traceparent.c: libFuzzer harness for the W3C traceparent parser and
 * vt_collector_continue_trace. The input is a traceparent header, and after
 * a newline, if there is one, a tracestate. Properties: an accepted header
 * has the specification's form; formatting what was parsed and parsing it
 * again gives the same trace, parent and flags (and, for version 00, the
 * same text); continue_trace accepts exactly the headers the parser does,
 * joins the collector to exactly that trace, parent and flags (the
 * tracestate kept when it is valid), hands the header back from
 * vt_collector_traceparent, and the root spans it records then carry the
 * remote parent through the json export; a refused header changes nothing.
 * Violations are reported through fuzz_check.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"
#include "otel/otel.h"
#include "fuzz_check.h"

static int lower_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *h = (const char *)data, *ts = NULL, *nl = memchr(data, '\n', size);
  size_t hlen = nl ? (size_t)(nl - h) : size, tslen = 0;
  unsigned char trace[16];
  uint64_t parent = 0;
  unsigned flags = 0;
  vt_collector *c = vt_collector_new();
  vt_trace_info before, after;
  char out[56];
  int ok, rc;
  if (!c) return 0;
  if (nl) {
    ts = nl + 1;
    tslen = size - hlen - 1;
  }
  ok = vt_traceparent_parse(h, hlen, trace, &parent, &flags);
  if (ok) { /* the form the specification gives */
    unsigned char t2[16];
    uint64_t p2 = 0;
    unsigned f2 = 0;
    FUZZ_CHECK(hlen >= 55 && h[2] == '-' && h[35] == '-' && h[52] == '-');
    FUZZ_CHECK(lower_hex(h, 2) && lower_hex(h + 3, 32) && lower_hex(h + 36, 16) &&
               lower_hex(h + 53, 2));
    FUZZ_CHECK(memcmp(h, "ff", 2) != 0 && parent != 0 && flags <= 0xff);
    FUZZ_CHECK(memcmp(h, "00", 2) != 0 || hlen == 55);
    /* parse(format(x)) == x */
    vt_traceparent_format(trace, parent, flags, out);
    FUZZ_CHECK(strlen(out) == 55);
    FUZZ_CHECK(vt_traceparent_parse(out, 55, t2, &p2, &f2));
    FUZZ_CHECK(!memcmp(t2, trace, 16) && p2 == parent && f2 == flags);
    FUZZ_CHECK(memcmp(h, "00", 2) != 0 || !memcmp(out, h, 55)); /* version 00: the same text */
  } else {
    FUZZ_CHECK(hlen < 55 || !lower_hex(h, 2) || !memcmp(h, "ff", 2) || h[2] != '-' ||
               !lower_hex(h + 3, 32) || !lower_hex(h + 36, 16) || !lower_hex(h + 53, 2) ||
               h[35] != '-' || h[52] != '-' || (hlen > 55 && (h[55] != '-' || !memcmp(h, "00", 2))) ||
               (lower_hex(h + 3, 32) && strspn(h + 3, "0") >= 32) ||
               (lower_hex(h + 36, 16) && strspn(h + 36, "0") >= 16));
  }
  memset(&before, 0, sizeof before);
  memset(&after, 0, sizeof after);
  vt_collector_trace_info(c, &before);
  rc = vt_collector_continue_trace(c, h, hlen, ts, tslen);
  FUZZ_CHECKF(rc == (ok ? VT_OK : VT_EINVAL), "continue_trace: %d, the parser: %d", rc, ok);
  vt_collector_trace_info(c, &after);
  if (rc == VT_OK) {
    int ts_ok = ts && tslen < sizeof after.tracestate && vt_tracestate_valid(ts, tslen);
    unsigned char t2[16];
    uint64_t p2 = 0;
    unsigned f2 = 0;
    vt_id id;
    int64_t d;
    FUZZ_CHECK(after.remote_parent == parent && after.remote_flags == flags);
    FUZZ_CHECK(!memcmp(after.trace_bytes, trace, 16));
    FUZZ_CHECK(after.sampled == (int)(flags & 1)); /* parent-based by default */
    FUZZ_CHECK(ts_ok ? (strlen(after.tracestate) == tslen && !memcmp(after.tracestate, ts, tslen))
                     : after.tracestate[0] == '\0');
    FUZZ_CHECK(vt_collector_traceparent(c, 0, out) == VT_OK);
    FUZZ_CHECK(!memcmp(out, "00-", 3) && !memcmp(out + 3, h + 3, 50)); /* same trace and parent */
    FUZZ_CHECK(vt_traceparent_parse(out, strlen(out), t2, &p2, &f2) && p2 == parent &&
               f2 == (flags & 1) && !memcmp(t2, trace, 16));
    /* a root span recorded now: its traceparent, and the remote parent in the export */
    vt_collector_set_enabled(c, 0);
    id = vt_collector_start(c, NULL, VT_PIPELINE, "root", 4, &(vt_start_args){.flags = VT_START_ALWAYS});
    FUZZ_CHECK(id != 0 && vt_collector_finish(c, id, &d) == VT_OK);
    FUZZ_CHECK(vt_collector_traceparent(c, id, out) == VT_OK &&
               vt_traceparent_parse(out, 55, t2, &p2, &f2) && !memcmp(t2, trace, 16) &&
               p2 == vt_collector_otel_span_id(c, id));
    {
      size_t n;
      char *json = vt_collector_export_string(c, VT_FORMAT_JSON, NULL, &n);
      vt_collector *e = vt_collector_new();
      vt_load_result r;
      vt_trace_info ei;
      FUZZ_CHECK(json != NULL && e != NULL);
      if (json && e) {
        FUZZ_CHECK(vt_collector_load_text(e, json, n, &r) == VT_OK);
        vt_collector_trace_info(e, &ei);
        FUZZ_CHECK(ei.remote_parent == parent && !memcmp(ei.trace_bytes, trace, 16));
      }
      vt_free(json);
      vt_collector_free(e);
    }
  } else {
    FUZZ_CHECK(!memcmp(&before, &after, sizeof before)); /* nothing changed */
  }
  vt_collector_free(c);
  return 0;
}
