/*
 * kind.c: the 21 span kinds, in the seed's order, and their names.
 */
#include <string.h>

#include "util.h"

static const char *const kind_names[VT_KIND_COUNT] = {
    "pipeline",       "fn_call",     "llm_call",     "tool_call",
    "import",         "parallel",    "spawn",        "step",
    "vm_setup",       "suspension",  "resume",       "drain",
    "drain_decision", "pool_submit", "pool_dequeue", "channel_emit",
    "channel_match",  "user_timing", "model_route",  "tool_mount",
    "deferred_tool_load"};

const char *vt_kind_name(int kind) {
  return kind >= 0 && kind < VT_KIND_COUNT ? kind_names[kind] : NULL;
}

int vt_kind_parse(const char *s, size_t len) {
  int k;
  for (k = 0; k < VT_KIND_COUNT; k++)
    if (strlen(kind_names[k]) == len && memcmp(kind_names[k], s, len) == 0) return k;
  return -1;
}
