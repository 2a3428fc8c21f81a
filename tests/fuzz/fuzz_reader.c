/*
 * fuzz_reader.c: libFuzzer harness for the reader behind vmtrace.load and
 * `vmtrace convert`: any bytes are loaded, from memory and from a FILE (the
 * windowed reader), as a JSON span list or an NDJSON stream, into a
 * collector that already holds a span. Properties: both readings agree; a
 * refused input names its line and leaves the collector as it was; what
 * loads is consistent (spans readable, parents before children, unfinished
 * ones marked), exports cleanly (the JSON formats parse), and its json
 * export loads back to the same spans and exports the same again.
 * Violations are reported through fuzz_check.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"
#include "fuzz_check.h"
#include "../c/snapshot.h"

/* A collector holding one completed span. */
static vt_collector *with_a_span(void) {
  vt_collector *c = vt_collector_new();
  int64_t d;
  if (!c) return NULL;
  vt_collector_set_enabled(c, 1);
  vt_collector_finish(c, vt_collector_start(c, NULL, VT_STEP, "kept", 4, NULL), &d);
  return c;
}

/* What loaded is consistent; returns the spans marked unfinished. */
static size_t check_loaded(const vt_collector *c) {
  size_t i, n = vt_collector_count(c), unfinished = 0;
  vt_id id, last = 0, walked = 0;
  for (i = 0; i < n; i++) {
    vt_span_view v;
    const vt_value *u;
    id = vt_collector_completed_id(c, i);
    FUZZ_CHECK(vt_collector_get(c, id, &v) == VT_OK && !v.open && v.parent < id &&
               (unsigned)v.kind < VT_KIND_COUNT && v.duration_ns >= 0 && v.start_unix_ns >= 0);
    u = v.metadata ? vt_value_get(v.metadata, "unfinished", 10) : NULL;
    unfinished += u && vt_value_type(u) == VT_TRUE;
  }
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    FUZZ_CHECK(id > last); /* ids unique and ascending */
    last = id;
    if (++walked > n) break;
  }
  FUZZ_CHECKF(walked == n, "next_completed walks %llu spans of %zu", (unsigned long long)walked, n);
  return unfinished;
}

/* Exports; the json export (returned, vt_free it) parses. */
static char *check_exports(const vt_collector *c, size_t *json_len) {
  char *json = NULL, *t;
  size_t n;
  int f;
  t = vt_collector_summary(c, &n);
  FUZZ_CHECK(t != NULL);
  vt_free(t);
  for (f = 0; f < VT_FORMAT_COUNT; f++) {
    t = vt_collector_export_string(c, (vt_format)f, NULL, &n);
    FUZZ_CHECKF(t != NULL, "export %s gave NULL", vt_format_name(f));
    if (t && (f == VT_FORMAT_JSON || f == VT_FORMAT_OTLP || f == VT_FORMAT_CHROME)) {
      const char *err = NULL;
      size_t at = 0;
      vt_value *v = vt_json_parse(t, n, &err, &at);
      FUZZ_CHECKF(v != NULL, "export %s does not parse: %s at %zu", vt_format_name(f),
                  err ? err : "?", at);
      vt_free(v);
    }
    if (f == VT_FORMAT_JSON) {
      json = t;
      *json_len = n;
    } else {
      vt_free(t);
    }
  }
  {
    vt_value *p = vt_collector_profile(c);
    FUZZ_CHECK(p != NULL && vt_value_type(p) == VT_OBJ);
    vt_free(p);
  }
  return json;
}

/* Load the json export of c into a new collector: the same spans; returns
 * that collector's json export, and its trace id in tid. */
static char *reload(const vt_collector *c, const char *json, size_t len, size_t *out_len,
                    char tid[48]) {
  vt_collector *d = vt_collector_new();
  vt_load_result r;
  char *again = NULL;
  int rc;
  tid[0] = '\0';
  if (!d) return NULL;
  rc = vt_collector_load_text(d, json, len, &r);
  FUZZ_CHECKF(rc == VT_OK, "the json export does not load (%d, line %zu: %s)", rc, r.line,
              r.error);
  if (rc == VT_OK) {
    FUZZ_CHECKF(vt_collector_count(d) == vt_collector_count(c),
                "%zu spans exported, %zu loaded back", vt_collector_count(c),
                vt_collector_count(d));
    FUZZ_CHECK(vt_collector_dropped(d) == vt_collector_dropped(c));
    snprintf(tid, 48, "%s", vt_collector_trace_id(d));
    again = vt_collector_export_string(d, VT_FORMAT_JSON, NULL, out_len);
  }
  vt_collector_free(d);
  return again;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vt_collector *c = with_a_span(), *c2;
  vt_load_result r, r2;
  snapshot before;
  int rc;
  if (!c) return 0;
  before = snap(c);
  rc = vt_collector_load_text(c, (const char *)data, size, &r);
  FUZZ_CHECKF(rc == VT_OK || rc == VT_EINVAL || rc == VT_EEXIST || rc == VT_ENOMEM,
              "load: status %d", rc);
  if (rc == VT_OK) {
    size_t unfinished, n1 = 0, n2 = 0, n3 = 0;
    char *j1, *j2, *j3, tid2[48], tid3[48];
    FUZZ_CHECKF(r.spans == vt_collector_count(c), "load says %zu spans, holds %zu", r.spans,
                vt_collector_count(c));
    FUZZ_CHECK(r.unfinished <= r.spans && r.renumbered <= 1);
    unfinished = check_loaded(c);
    FUZZ_CHECKF(unfinished >= r.unfinished, "%zu unfinished, %zu marked", r.unfinished,
                unfinished);
    j1 = check_exports(c, &n1);
    j2 = j1 ? reload(c, j1, n1, &n2, tid2) : NULL;
    j3 = j2 ? reload(c, j2, n2, &n3, tid3) : NULL;
    /* once written (invalid UTF-8 is written as U+FFFD), a trace reads and
     * writes back the same */
    if (j2 && j3) {
      FUZZ_CHECKF(n2 == n3 && !memcmp(j2, j3, n2),
                  "export(load(export)) changes at the second trip (%zu -> %zu bytes)", n2, n3);
      FUZZ_CHECK(vt_collector_count(c) == 0 || !strcmp(tid2, tid3));
    }
    vt_free(j1);
    vt_free(j2);
    vt_free(j3);
  } else {
    FUZZ_CHECKF(r.line >= 1 && r.error[0] != '\0', "a refusal without its line (%zu: %s)",
                r.line, r.error);
    if (rc != VT_ENOMEM) /* out of memory while importing empties it */
      FUZZ_CHECK(same_snap(snap(c), before));
  }
  /* the windowed reader of a FILE says the same */
  if (size > 0 && (c2 = with_a_span()) != NULL) {
    FILE *f = fmemopen((void *)data, size, "rb");
    if (f) {
      int rc2 = vt_collector_load(c2, f, &r2);
      FUZZ_CHECKF(rc2 == rc, "from memory %d, from a FILE %d", rc, rc2);
      FUZZ_CHECK(rc2 != VT_OK || (r2.spans == r.spans && r2.unfinished == r.unfinished &&
                                  r2.skipped_lines == r.skipped_lines &&
                                  r2.torn_tail == r.torn_tail));
      FUZZ_CHECK(rc2 == VT_OK || r2.line == r.line);
      fclose(f);
    }
    vt_collector_free(c2);
  }
  {
    const char *e = NULL;
    size_t at = 0;
    vt_value *v = vt_json_parse((const char *)data, size, &e, &at);
    FUZZ_CHECK(v != NULL || (e != NULL && at <= size));
    FUZZ_CHECK(v == NULL || vt_value_size(v) >= 1);
    vt_free(v);
  }
  vt_collector_free(c);
  return 0;
}
