/*
 * fuzz_reader.c: libFuzzer harness for the reader behind `vmtrace convert`:
 * any bytes are loaded as a JSON span list or an NDJSON stream; whatever
 * loads must then export, summarise and profile cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vt_collector *c = vt_collector_new();
  char err[256];
  if (!c) return 0;
  if (vt_collector_load(c, (const char *)data, size, err, sizeof err) == VT_OK) {
    size_t n;
    vt_format f;
    vt_export_opts o;
    memset(&o, 0, sizeof o);
    free(vt_collector_summary(c, &n));
    for (f = VT_FORMAT_JSON; f <= VT_FORMAT_FOLDED; f++) free(vt_collector_export_string(c, f, &o, &n));
    cJSON_Delete(vt_collector_profile(c));
  } else if (strncmp(err, "line ", 5) != 0) {
    abort(); /* every refusal names the line */
  }
  {
    const char *e = NULL;
    size_t at = 0;
    cJSON_Delete(vt_json_parse((const char *)data, size, &e, &at));
    if (!e && at > size) abort();
  }
  vt_collector_free(c);
  return 0;
}
