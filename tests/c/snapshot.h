/*
 * snapshot.h: what a collector holds (its trace id, span count, first
 * finished span and generation), taken before a load that must be refused
 * and compared after it: a refused load leaves the collector as it was.
 * Shared by the C tests (test_core.c) and the reader's fuzz harness
 * (tests/fuzz/fuzz_reader.c).
 */
#ifndef VT_TEST_SNAPSHOT_H
#define VT_TEST_SNAPSHOT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "vmtrace.h"

typedef struct snapshot {
  char trace_id[48];
  size_t count;
  vt_id first;
  uint64_t generation;
} snapshot;

static snapshot snap(const vt_collector *c) {
  snapshot s;
  memset(&s, 0, sizeof s);
  snprintf(s.trace_id, sizeof s.trace_id, "%s", vt_collector_trace_id(c));
  s.count = vt_collector_count(c);
  s.first = vt_collector_completed_id(c, 0);
  s.generation = vt_collector_generation(c);
  return s;
}

static int same_snap(snapshot a, snapshot b) {
  return !strcmp(a.trace_id, b.trace_id) && a.count == b.count && a.first == b.first &&
         a.generation == b.generation;
}

#endif
