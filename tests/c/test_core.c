/*
 * test_core.c: unit tests of the vmtrace core (csrc/ without lvmtrace.c),
 * no Lua involved. Checks the contract of csrc/vmtrace.h and ports the seed's
 * unit tests (seed/tracing.rs) that concern the collector; each port names
 * its seed test. Seed tests of Lua-side helpers (LlmCallUsage, marker spans,
 * tool_mount) belong to the busted specs.
 *
 * Durations are only asserted under the mock clock; nothing here depends on
 * how fast the machine is.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmtrace.h"
#include "tap.h"

#define MS INT64_C(1000000) /* nanoseconds in a millisecond */

/* ---- helpers ------------------------------------------------------------- */

static vt_collector *new_enabled(void) {
  vt_collector *c = vt_collector_new();
  if (c) vt_collector_set_enabled(c, 1);
  return c;
}

static vt_id start_on(vt_collector *c, vt_stack *st, vt_kind kind,
                      const char *name) {
  return vt_collector_start(c, st, kind, name, strlen(name), NULL);
}

static vt_id start(vt_collector *c, vt_kind kind, const char *name) {
  return start_on(c, NULL, kind, name);
}

static vt_id start_flags(vt_collector *c, vt_kind kind, const char *name,
                         unsigned flags) {
  vt_start_args args = {NULL, 0, NULL, 0};
  args.flags = flags;
  return vt_collector_start(c, NULL, kind, name, strlen(name), &args);
}

static int finish(vt_collector *c, vt_id id) {
  int64_t d = -1;
  return vt_collector_finish(c, id, &d);
}

static vt_id current(vt_collector *c) {
  return vt_stack_current(c, vt_collector_main_stack(c));
}

static vt_id parent_of(vt_collector *c, vt_id id) {
  vt_span_view v;
  if (vt_collector_get(c, id, &v) != VT_OK) return (vt_id)-1;
  return v.parent;
}

static int is_open(vt_collector *c, vt_id id) {
  vt_span_view v;
  if (vt_collector_get(c, id, &v) != VT_OK) return -1;
  return v.open;
}

static const cJSON *meta(const vt_span_view *v, const char *key) {
  if (v->metadata == NULL) return NULL;
  return vt_json_obj_get(v->metadata, key, strlen(key));
}

/* The integer under `key` in a span's metadata, or INT64_MIN + 1. */
static int64_t meta_int(const vt_span_view *v, const char *key) {
  int64_t out;
  const cJSON *item = meta(v, key);
  if (item == NULL || !vt_json_is_int(item, &out)) return INT64_MIN + 1;
  return out;
}

/* Decode a stored string item into a static buffer; *len gets its length. */
static const char *str_of(const cJSON *item, size_t *len) {
  static char buf[512];
  if (item == NULL || !cJSON_IsString(item) || item->valuestring == NULL ||
      strlen(item->valuestring) >= sizeof buf) {
    *len = 0;
    return NULL;
  }
  *len = vt_str_decode(item->valuestring, buf);
  return buf;
}

static int meta_str_is(const vt_span_view *v, const char *key,
                       const char *want) {
  size_t len;
  const char *s = str_of(meta(v, key), &len);
  return s != NULL && len == strlen(want) && memcmp(s, want, len) == 0;
}

static char *summary(vt_collector *c) {
  size_t len = (size_t)-1;
  char *s = vt_collector_summary(c, &len);
  if (s != NULL) CHECK_EQ_INT(len, strlen(s));
  return s;
}

/* Compare `text` line by line with `want` (n lines, joined by "\n"). */
static void check_lines(const char *text, const char *const *want, size_t n) {
  size_t i = 0;
  const char *p = text;
  for (;;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (i < n) {
      if (!CHECK_MEM(p, len, want[i], strlen(want[i])))
        printf("#   (summary line %lu)\n", (unsigned long)i);
    }
    i++;
    if (nl == NULL) break;
    p = nl + 1;
  }
  CHECK_EQ_INT(i, n);
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  return -1; /* upper case is not allowed either */
}

/* ---- kinds --------------------------------------------------------------- */

static const char *const kind_names[] = {
    "pipeline",      "fn_call",       "llm_call",       "tool_call",
    "import",        "parallel",      "spawn",          "step",
    "vm_setup",      "suspension",    "resume",         "drain",
    "drain_decision", "pool_submit",  "pool_dequeue",   "channel_emit",
    "channel_match", "user_timing",   "model_route",    "tool_mount",
    "deferred_tool_load"};

/* Port of seed test_new_span_kinds_stringify, extended to all kinds. */
TEST(test_kind_names) {
  int k;
  CHECK_EQ_INT(VT_KIND_COUNT, 21);
  CHECK_STR(vt_kind_name(VT_MODEL_ROUTE), "model_route");
  CHECK_STR(vt_kind_name(VT_TOOL_MOUNT), "tool_mount");
  CHECK_STR(vt_kind_name(VT_DEFERRED_TOOL_LOAD), "deferred_tool_load");
  for (k = 0; k < VT_KIND_COUNT; k++) {
    CHECK_STR(vt_kind_name(k), kind_names[k]);
    CHECK_EQ_INT(vt_kind_parse(kind_names[k], strlen(kind_names[k])), k);
  }
  CHECK(vt_kind_name(-1) == NULL);
  CHECK(vt_kind_name(VT_KIND_COUNT) == NULL);
  CHECK_EQ_INT(vt_kind_parse("fn", 2), -1);
  CHECK_EQ_INT(vt_kind_parse("fn_callx", 7), VT_FN_CALL); /* length counts */
  CHECK_EQ_INT(vt_kind_parse("fn_call\0", 8), -1);
  CHECK_EQ_INT(vt_kind_parse("Pipeline", 8), -1);
  CHECK_EQ_INT(vt_kind_parse("", 0), -1);
  CHECK_STR(vt_kind_list(),
            "pipeline, fn_call, llm_call, tool_call, import, parallel, spawn, "
            "step, vm_setup, suspension, resume, drain, drain_decision, "
            "pool_submit, pool_dequeue, channel_emit, channel_match, "
            "user_timing, model_route, tool_mount, deferred_tool_load");
}

/* ---- ids, enable, reset ---------------------------------------------------- */

TEST(test_ids_count_up_from_one) {
  vt_collector *c = new_enabled();
  vt_span_view v1, v2, v3;
  vt_id a, b, d;
  REQUIRE(c != NULL);
  CHECK(vt_collector_enabled(c));
  a = start(c, VT_PIPELINE, "a");
  b = start(c, VT_FN_CALL, "b");
  d = start(c, VT_FN_CALL, "c");
  CHECK_EQ_INT(a, 1);
  CHECK_EQ_INT(b, 2);
  CHECK_EQ_INT(d, 3);
  CHECK_EQ_INT(finish(c, d), VT_OK);
  CHECK_EQ_INT(start(c, VT_STEP, "d"), 4); /* ids are never reused */
  REQUIRE(vt_collector_get(c, a, &v1) == VT_OK);
  REQUIRE(vt_collector_get(c, b, &v2) == VT_OK);
  REQUIRE(vt_collector_get(c, d, &v3) == VT_OK);
  CHECK_EQ_INT(v1.id, a);
  CHECK_EQ_INT(v3.id, d);
  CHECK(v1.start_ns >= 0);
  CHECK(v2.start_ns >= v1.start_ns);
  CHECK(v3.start_ns >= v2.start_ns);
  CHECK_EQ_INT(vt_collector_get(c, 0, &v1), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_get(c, 5, &v1), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  vt_collector_free(c);
}

/* Port of seed test_noop_when_disabled. */
TEST(test_zero_while_disabled) {
  vt_collector *c = vt_collector_new();
  REQUIRE(c != NULL);
  CHECK(!vt_collector_enabled(c));
  CHECK_EQ_INT(start(c, VT_PIPELINE, "test"), 0);
  CHECK_EQ_INT(finish(c, 0), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(vt_collector_dropped(c), 0); /* off is not a drop */
  vt_collector_set_enabled(c, 1);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "on"), 1);
  vt_collector_set_enabled(c, 0);
  CHECK(!vt_collector_enabled(c));
  CHECK_EQ_INT(start(c, VT_PIPELINE, "off again"), 0);
  vt_collector_free(c);
}

TEST(test_enable_resets) {
  vt_collector *c = new_enabled();
  char before[128];
  vt_span_view v;
  REQUIRE(c != NULL);
  REQUIRE(vt_collector_trace_id(c) != NULL);
  snprintf(before, sizeof before, "%s", vt_collector_trace_id(c));
  CHECK_EQ_INT(start(c, VT_PIPELINE, "a"), 1);
  CHECK_EQ_INT(start(c, VT_FN_CALL, "b"), 2);
  CHECK_EQ_INT(finish(c, 2), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c), 1);
  vt_collector_set_enabled(c, 1); /* already on: turning on resets anyway */
  CHECK(vt_collector_enabled(c));
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(vt_collector_get(c, 1, &v), VT_ENOTFOUND); /* open one gone */
  CHECK_EQ_INT(finish(c, 1), VT_ENOTFOUND);
  CHECK(strcmp(before, vt_collector_trace_id(c)) != 0);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "again"), 1);
  REQUIRE(vt_collector_get(c, 1, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, "again", 5);
  vt_collector_free(c);
}

TEST(test_disable_keeps_spans) {
  vt_collector *c = new_enabled();
  char before[128];
  REQUIRE(c != NULL);
  snprintf(before, sizeof before, "%s", vt_collector_trace_id(c));
  CHECK_EQ_INT(start(c, VT_PIPELINE, "a"), 1);
  CHECK_EQ_INT(finish(c, 1), VT_OK);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "open"), 2);
  vt_collector_set_enabled(c, 0);
  CHECK_EQ_INT(vt_collector_count(c), 1);
  CHECK_EQ_INT(vt_collector_completed_id(c, 0), 1);
  CHECK_STR(vt_collector_trace_id(c), before);
  CHECK_EQ_INT(finish(c, 2), VT_OK); /* open spans can still finish */
  CHECK_EQ_INT(vt_collector_count(c), 2);
  vt_collector_free(c);
}

TEST(test_reset) {
  vt_collector *c = new_enabled();
  char before[128];
  REQUIRE(c != NULL);
  snprintf(before, sizeof before, "%s", vt_collector_trace_id(c));
  CHECK_EQ_INT(start(c, VT_PIPELINE, "a"), 1);
  CHECK_EQ_INT(start(c, VT_FN_CALL, "b"), 2);
  CHECK_EQ_INT(finish(c, 2), VT_OK);
  vt_collector_reset(c);
  CHECK(vt_collector_enabled(c));
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(finish(c, 1), VT_ENOTFOUND);
  CHECK(strcmp(before, vt_collector_trace_id(c)) != 0);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "x"), 1);
  CHECK_EQ_INT(parent_of(c, 1), 0);
  vt_collector_free(c);
}

TEST(test_trace_id_format) {
  vt_collector *c = vt_collector_new();
  const char *t, *u;
  const unsigned char *bytes;
  unsigned char parsed[16];
  int i, nb = 0, bad = 0;
  int64_t ms = 0, now_ms;
  REQUIRE(c != NULL);
  t = vt_collector_trace_id(c);
  REQUIRE(t != NULL);
  CHECK_EQ_INT(strlen(t), 6 + 36);
  CHECK(strncmp(t, "trace_", 6) == 0);
  REQUIRE(strlen(t) == 42);
  u = t + 6;
  for (i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (u[i] != '-') bad++;
    } else if (hexval(u[i]) < 0) {
      bad++;
    } else {
      if ((nb & 1) == 0) parsed[nb / 2] = (unsigned char)(hexval(u[i]) << 4);
      else parsed[nb / 2] |= (unsigned char)hexval(u[i]);
      nb++;
    }
  }
  CHECK_EQ_INT(bad, 0); /* dashes where a uuid has them, lowercase hex */
  REQUIRE(nb == 32);
  CHECK(u[14] == '7');                            /* version 7 */
  CHECK(u[19] != '\0' && strchr("89ab", u[19]) != NULL); /* variant 10 */
  bytes = vt_collector_trace_bytes(c);
  REQUIRE(bytes != NULL);
  CHECK(memcmp(bytes, parsed, 16) == 0);
  CHECK_EQ_INT(bytes[6] >> 4, 7);
  CHECK_EQ_INT(bytes[8] & 0xC0, 0x80);
  for (i = 0; i < 6; i++) ms = (ms << 8) | bytes[i];
  now_ms = vt_clock_wall_ns() / MS;
  CHECK(ms > now_ms - 3600 * 1000 && ms < now_ms + 3600 * 1000);
  vt_collector_free(c);
}

/* Two collectors share nothing: ids, enabled flags, trace ids, spans. */
TEST(test_collectors_independent) {
  vt_collector *c1 = vt_collector_new();
  vt_collector *c2 = vt_collector_new();
  REQUIRE(c1 != NULL && c2 != NULL);
  CHECK(strcmp(vt_collector_trace_id(c1), vt_collector_trace_id(c2)) != 0);
  CHECK(memcmp(vt_collector_trace_bytes(c1), vt_collector_trace_bytes(c2),
               16) != 0);
  vt_collector_set_enabled(c1, 1);
  CHECK(!vt_collector_enabled(c2));
  CHECK_EQ_INT(start(c1, VT_PIPELINE, "one"), 1);
  CHECK_EQ_INT(start(c2, VT_PIPELINE, "two"), 0);
  vt_collector_set_enabled(c2, 1);
  CHECK_EQ_INT(start(c2, VT_PIPELINE, "two"), 1);
  CHECK_EQ_INT(start(c1, VT_FN_CALL, "one.b"), 2);
  CHECK_EQ_INT(parent_of(c2, 1), 0); /* not a child of c1's span */
  CHECK_EQ_INT(finish(c1, 2), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c1), 1);
  CHECK_EQ_INT(vt_collector_count(c2), 0);
  CHECK_EQ_INT(current(c2), 1);
  CHECK_EQ_INT(vt_collector_mock_push(c1, 5000), VT_OK);
  CHECK(!vt_collector_mocked(c2));
  CHECK_EQ_INT(vt_collector_mock_pop(c1), VT_OK);
  vt_collector_free(c1);
  CHECK_EQ_INT(finish(c2, 1), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c2), 1);
  vt_collector_free(c2);
}

/* ---- spans and parents ------------------------------------------------------ */

/* Port of seed test_span_collector_basic. (span_link is a Lua-level helper:
 * the core's part is that an open span can be read.) */
TEST(test_span_collector_basic) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_PIPELINE, "main");
  CHECK_EQ_INT(id, 1);
  CHECK_EQ_INT(current(c), 1);
  CHECK_EQ_INT(is_open(c, id), 1);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(vt_collector_count(c), 1);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, "main", 4);
  CHECK_EQ_INT(v.parent, 0);
  CHECK_EQ_INT(v.kind, VT_PIPELINE);
  CHECK_EQ_INT(v.open, 0);
  vt_collector_free(c);
}

/* Port of seed test_span_parent_child. */
TEST(test_span_parent_child) {
  vt_collector *c = new_enabled();
  vt_id parent, child;
  REQUIRE(c != NULL);
  parent = start(c, VT_PIPELINE, "main");
  child = start(c, VT_FN_CALL, "helper");
  CHECK_EQ_INT(finish(c, child), VT_OK);
  CHECK_EQ_INT(finish(c, parent), VT_OK);
  REQUIRE(vt_collector_count(c) == 2);
  CHECK_EQ_INT(vt_collector_completed_id(c, 0), child);
  CHECK_EQ_INT(vt_collector_completed_id(c, 1), parent);
  CHECK_EQ_INT(parent_of(c, child), parent);
  CHECK_EQ_INT(parent_of(c, parent), 0);
  vt_collector_free(c);
}

TEST(test_out_of_order_finish) {
  vt_collector *c = new_enabled();
  vt_id a, b, d, e;
  int64_t dur = -1;
  REQUIRE(c != NULL);
  a = start(c, VT_PIPELINE, "a");
  b = start(c, VT_FN_CALL, "b");
  d = start(c, VT_FN_CALL, "c");
  CHECK_EQ_INT(vt_collector_finish(c, b, &dur), VT_OK);
  CHECK(dur >= 0);
  CHECK_EQ_INT(current(c), d);
  CHECK_EQ_INT(is_open(c, a), 1);
  CHECK_EQ_INT(is_open(c, b), 0);
  CHECK_EQ_INT(is_open(c, d), 1);
  CHECK_EQ_INT(parent_of(c, d), b); /* parent fixed at start */
  e = start(c, VT_STEP, "e");
  CHECK_EQ_INT(parent_of(c, e), d);
  CHECK_EQ_INT(finish(c, e), VT_OK);
  CHECK_EQ_INT(finish(c, d), VT_OK);
  CHECK_EQ_INT(current(c), a);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(current(c), 0);
  vt_collector_free(c);
}

TEST(test_finish_not_found) {
  vt_collector *c = new_enabled();
  int64_t dur = 12345;
  vt_id a;
  REQUIRE(c != NULL);
  a = start(c, VT_PIPELINE, "a");
  CHECK_EQ_INT(vt_collector_finish(c, 0, &dur), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_finish(c, 999, &dur), VT_ENOTFOUND);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(vt_collector_finish(c, a, &dur), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_count(c), 1); /* not completed twice */
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  vt_collector_free(c);
}

TEST(test_completed_order_is_finish_order) {
  vt_collector *c = new_enabled();
  static const vt_id order[] = {3, 1, 5, 2, 4};
  size_t i;
  REQUIRE(c != NULL);
  for (i = 1; i <= 5; i++) CHECK_EQ_INT(start(c, VT_STEP, "s"), i);
  for (i = 0; i < 5; i++) CHECK_EQ_INT(finish(c, order[i]), VT_OK);
  REQUIRE(vt_collector_count(c) == 5);
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(vt_collector_completed_id(c, i), order[i]);
  vt_collector_free(c);
}

TEST(test_get_open_and_completed) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id a, b;
  int64_t dur = -1;
  REQUIRE(c != NULL);
  a = start(c, VT_LLM_CALL, "gpt");
  b = start(c, VT_TOOL_CALL, "grep");
  REQUIRE(vt_collector_get(c, b, &v) == VT_OK);
  CHECK_EQ_INT(v.id, b);
  CHECK_EQ_INT(v.parent, a);
  CHECK_EQ_INT(v.kind, VT_TOOL_CALL);
  CHECK_MEM(v.name, v.name_len, "grep", 4);
  CHECK_EQ_INT(v.open, 1);
  CHECK_EQ_INT(v.duration_ns, 0);
  CHECK(v.start_unix_ns > 0);
  CHECK_EQ_INT(v.nlinks, 0);
  CHECK_EQ_INT(v.nevents, 0);
  CHECK(v.metadata == NULL || cJSON_GetArraySize(v.metadata) == 0);
  CHECK_EQ_INT(vt_collector_finish(c, b, &dur), VT_OK);
  REQUIRE(vt_collector_get(c, b, &v) == VT_OK);
  CHECK_EQ_INT(v.open, 0);
  CHECK_EQ_INT(v.duration_ns, dur);
  CHECK_EQ_INT(v.parent, a);
  CHECK_EQ_INT(v.kind, VT_TOOL_CALL);
  CHECK_MEM(v.name, v.name_len, "grep", 4);
  REQUIRE(vt_collector_get(c, a, &v) == VT_OK);
  CHECK_EQ_INT(v.open, 1);
  CHECK_EQ_INT(v.kind, VT_LLM_CALL);
  vt_collector_free(c);
}

/* 100,000 spans: 50,000 detached parents each with one child; every 100th
 * parent stays open. get must find each one, right. */
TEST(test_get_many_spans) {
  enum { N = 100000 };
  vt_collector *c = new_enabled();
  vt_span_view v;
  char name[32];
  vt_id id, first_bad = 0;
  long bad = 0;
  int i;
  REQUIRE(c != NULL);
  for (i = 0; i < N / 2; i++) {
    vt_id p, q;
    snprintf(name, sizeof name, "p%d", i);
    p = start_flags(c, VT_FN_CALL, name, VT_START_DETACHED);
    snprintf(name, sizeof name, "q%d", i);
    q = start(c, VT_LLM_CALL, name);
    if (p != (vt_id)(2 * i + 1) || q != p + 1) bad++;
    if (finish(c, q) != VT_OK) bad++;
    if (i % 100 != 0 && finish(c, p) != VT_OK) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(vt_collector_count(c), N - N / 200);
  for (id = 1; id <= N; id++) {
    int pair = (int)((id - 1) / 2), is_p = (id % 2) == 1;
    size_t nlen = (size_t)snprintf(name, sizeof name, "%c%d", is_p ? 'p' : 'q',
                                   pair);
    int ok = vt_collector_get(c, id, &v) == VT_OK && v.id == id &&
             v.kind == (is_p ? VT_FN_CALL : VT_LLM_CALL) &&
             v.name_len == nlen && memcmp(v.name, name, nlen) == 0 &&
             v.parent == (is_p ? 0 : id - 1) &&
             v.open == (is_p && pair % 100 == 0);
    if (!ok) {
      if (!first_bad) first_bad = id;
      bad++;
    }
  }
  if (!CHECK_EQ_INT(bad, 0))
    printf("#   first wrong span: %llu\n", (unsigned long long)first_bad);
  for (i = 0; i < N / 2; i += 100) CHECK_EQ_INT(finish(c, 2 * i + 1), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c), N);
  /* the last one to finish: the p of pair 49,900 */
  CHECK_EQ_INT(vt_collector_completed_id(c, N - 1), 2 * (N / 2 - 100) + 1);
  vt_collector_take(c);
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(vt_collector_get(c, 1, &v), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_get(c, N / 2, &v), VT_ENOTFOUND);
  id = start(c, VT_STEP, "after");
  CHECK_EQ_INT(id, N + 1); /* take does not restart ids */
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, "after", 5);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(v.open, 0);
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  vt_collector_free(c);
}

TEST(test_take_keeps_open_spans) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id a, b, x, d;
  int64_t wall;
  char *s;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  a = start(c, VT_PIPELINE, "a");
  b = start(c, VT_FN_CALL, "b");
  CHECK_EQ_INT(finish(c, b), VT_OK);
  x = start(c, VT_FN_CALL, "x");
  CHECK_EQ_INT(finish(c, x), VT_OK);
  vt_collector_take(c);
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(vt_collector_get(c, b, &v), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, b, "k", 1,
                                                   vt_json_int(1)),
               VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, a, &v) == VT_OK);
  CHECK_EQ_INT(v.open, 1);
  CHECK_EQ_INT(current(c), a);
  d = start(c, VT_FN_CALL, "d");
  CHECK_EQ_INT(d, 4);
  CHECK_EQ_INT(parent_of(c, d), a);
  CHECK_EQ_INT(finish(c, d), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 7, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  REQUIRE(vt_collector_count(c) == 2);
  CHECK_EQ_INT(vt_collector_completed_id(c, 0), d);
  CHECK_EQ_INT(vt_collector_completed_id(c, 1), a);
  s = summary(c);
  REQUIRE(s != NULL);
  CHECK_STR(s, "Trace: 2 spans, 7ms total\n\npipeline a 7ms\n  fn_call d 0ms");
  free(s);
  vt_collector_free(c);
}

/* ---- metadata ---------------------------------------------------------------- */

/* Port of seed test_span_metadata. */
TEST(test_span_metadata) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "gpt-4");
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "tokens", 6, vt_json_int(100)),
               VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "tokens"), 100);
  vt_collector_free(c);
}

TEST(test_set_metadata_open_only) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "a", 1, vt_json_int(1)), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "a"), 1); /* visible while open */
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "b", 1, vt_json_int(2)),
               VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "a", 1, vt_json_int(3)),
               VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_set_metadata(c, 0, "a", 1, vt_json_int(3)),
               VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_set_metadata(c, 77, "a", 1, vt_json_int(3)),
               VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK(meta(&v, "b") == NULL);
  CHECK_EQ_INT(meta_int(&v, "a"), 1);
  CHECK_EQ_INT(cJSON_GetArraySize(v.metadata), 1);
  vt_collector_free(c);
}

/* Port of seed test_completed_span_metadata_can_be_attached_late. */
TEST(test_completed_span_metadata_can_be_attached_late) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "gpt-4");
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "first_token_ms", 14,
                                                   vt_json_int(125)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "first_token_ms", 14,
                                                   vt_json_int(250)),
               VT_EEXIST);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "first_token_ms"), 125);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, 0, "k", 1,
                                                   vt_json_int(1)),
               VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, 42, "k", 1,
                                                   vt_json_int(1)),
               VT_ENOTFOUND);
  vt_collector_free(c);
}

TEST(test_metadata_if_absent_open) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "x", 1,
                                                   vt_json_int(1)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "x", 1,
                                                   vt_json_int(2)),
               VT_EEXIST);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "y", 1, vt_json_int(3)), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "y", 1,
                                                   vt_json_int(4)),
               VT_EEXIST);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "x"), 1);
  CHECK_EQ_INT(meta_int(&v, "y"), 3);
  vt_collector_free(c);
}

TEST(test_metadata_keys_sorted) {
  vt_collector *c = new_enabled();
  static const char *const ins[] = {"zeta", "alpha", "mid", "Beta", "a_", "ab"};
  static const char *const want[] = {"Beta", "a_", "ab", "alpha", "late",
                                     "mid", "zeta"};
  const cJSON *item;
  vt_span_view v;
  vt_id id;
  size_t i;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  for (i = 0; i < 6; i++)
    CHECK_EQ_INT(vt_collector_set_metadata(c, id, ins[i], strlen(ins[i]),
                                           vt_json_int((int64_t)i)),
                 VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata_if_absent(c, id, "late", 4,
                                                   vt_json_int(6)),
               VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(cJSON_GetArraySize(v.metadata), 7);
  i = 0;
  cJSON_ArrayForEach(item, v.metadata) {
    if (i < 7) CHECK_STR(item->string, want[i]);
    i++;
  }
  CHECK_EQ_INT(meta_int(&v, "zeta"), 0);
  CHECK_EQ_INT(meta_int(&v, "late"), 6);
  vt_collector_free(c);
}

TEST(test_metadata_replace) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "b", 1, vt_json_int(1)), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "a", 1, vt_json_int(2)), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "b", 1, vt_json_str("new", 3)),
               VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(cJSON_GetArraySize(v.metadata), 2);
  CHECK(meta_str_is(&v, "b", "new"));
  CHECK_EQ_INT(meta_int(&v, "a"), 2);
  CHECK_STR(v.metadata->child ? v.metadata->child->string : NULL, "a");
  vt_collector_free(c);
}

/* ---- JSON values ------------------------------------------------------------- */

TEST(test_json_obj_set_sorted) {
  cJSON *o = cJSON_CreateObject(), *item;
  static const char *const ins[] = {"b", "ab", "B", "a", "a_"};
  static const char *const want[] = {"B", "a", "a_", "ab", "b"};
  int64_t n = -1;
  size_t i;
  REQUIRE(o != NULL);
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(vt_json_obj_set(o, ins[i], strlen(ins[i]),
                                 vt_json_int((int64_t)i)),
                 VT_OK);
  CHECK_EQ_INT(vt_json_obj_set(o, "ab", 2, vt_json_int(99)), VT_OK);
  CHECK_EQ_INT(cJSON_GetArraySize(o), 5);
  i = 0;
  cJSON_ArrayForEach(item, o) {
    if (i < 5) CHECK_STR(item->string, want[i]);
    i++;
  }
  CHECK(vt_json_is_int(vt_json_obj_get(o, "ab", 2), &n) && n == 99);
  CHECK(vt_json_is_int(vt_json_obj_get(o, "B", 1), &n) && n == 2);
  CHECK(vt_json_obj_get(o, "zz", 2) == NULL);
  CHECK(vt_json_obj_get(o, "abc", 2) != NULL); /* length counts: "ab" */
  CHECK(vt_json_obj_get(o, "A", 1) == NULL);
  cJSON_Delete(o);
}

TEST(test_json_int_limits) {
  static const int64_t vals[] = {0, 1, -1, INT64_MAX, INT64_MIN,
                                 INT64_C(9007199254740993)};
  vt_collector *c = new_enabled();
  vt_span_view v;
  cJSON *item;
  char want[32], *text;
  int64_t out;
  size_t i;
  vt_id id;
  REQUIRE(c != NULL);
  for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    item = vt_json_int(vals[i]);
    REQUIRE(item != NULL);
    out = vals[i] == 0 ? 1 : 0;
    CHECK(vt_json_is_int(item, &out));
    CHECK_EQ_INT(out, vals[i]);
    snprintf(want, sizeof want, "%lld", (long long)vals[i]);
    text = cJSON_PrintUnformatted(item);
    CHECK_STR(text, want);
    free(text);
    cJSON_Delete(item);
  }
  item = vt_json_num(5.0);
  CHECK(!vt_json_is_int(item, &out));
  cJSON_Delete(item);
  item = vt_json_str("5", 1);
  CHECK(!vt_json_is_int(item, &out));
  cJSON_Delete(item);
  item = cJSON_CreateTrue();
  CHECK(!vt_json_is_int(item, &out));
  cJSON_Delete(item);
  /* and through a span */
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "max", 3,
                                         vt_json_int(INT64_MAX)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "min", 3,
                                         vt_json_int(INT64_MIN)),
               VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK(meta_int(&v, "max") == INT64_MAX);
  CHECK(meta_int(&v, "min") == INT64_MIN);
  vt_collector_free(c);
}

TEST(test_json_num_nonfinite) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  cJSON *item;
  int64_t out;
  vt_id id;
  REQUIRE(c != NULL);
  item = vt_json_num(NAN);
  CHECK(cJSON_IsNull(item));
  cJSON_Delete(item);
  item = vt_json_num(INFINITY);
  CHECK(cJSON_IsNull(item));
  cJSON_Delete(item);
  item = vt_json_num(-INFINITY);
  CHECK(cJSON_IsNull(item));
  cJSON_Delete(item);
  item = vt_json_num(1.5);
  CHECK(cJSON_IsNumber(item) && item->valuedouble == 1.5);
  CHECK(!vt_json_is_int(item, &out));
  cJSON_Delete(item);
  id = start(c, VT_FN_CALL, "f");
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "nan", 3, vt_json_num(NAN)),
               VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK(cJSON_IsNull(meta(&v, "nan")));
  vt_collector_free(c);
}

static void check_str_roundtrip(const char *s, size_t len) {
  cJSON *item = vt_json_str(s, len);
  char *buf;
  size_t n;
  if (!CHECK(item != NULL && cJSON_IsString(item) && item->valuestring))
    return;
  CHECK(strlen(item->valuestring) >= len); /* no raw NUL inside */
  buf = malloc(strlen(item->valuestring) + 1);
  if (buf != NULL) {
    n = vt_str_decode(item->valuestring, buf);
    CHECK_MEM(buf, n, s, len);
    free(buf);
  }
  cJSON_Delete(item);
}

TEST(test_json_str_bytes) {
  static const char nul_c0[] = "a\0b\xC0" "c\xC0\x80\0";
  cJSON *item;
  check_str_roundtrip(nul_c0, sizeof nul_c0 - 1); /* ends with NUL too */
  check_str_roundtrip("\0", 1);
  check_str_roundtrip("\xC0", 1);
  check_str_roundtrip("\xC0\xC0\x80", 3);
  check_str_roundtrip("", 0);
  check_str_roundtrip("caf\xC3\xA9 \xFF\xFE", 8);
  item = vt_json_str("hello", 5); /* ordinary bytes are stored as they are */
  CHECK(item != NULL && cJSON_IsString(item) &&
        strcmp(item->valuestring, "hello") == 0);
  cJSON_Delete(item);
}

/* Names, keys and event names are byte strings with lengths. */
TEST(test_byte_string_names) {
  static const char name[] = "a\0b\xC0" "c";
  vt_collector *c = new_enabled();
  vt_span_view v;
  const cJSON *item;
  const char *s;
  size_t len;
  vt_id id;
  REQUIRE(c != NULL);
  id = vt_collector_start(c, NULL, VT_FN_CALL, name, 5, NULL);
  REQUIRE(id != 0);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k\0\xC0", 3,
                                         vt_json_str("v\0w", 3)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k", 1, vt_json_int(1)), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "e\0f", 3, NULL), VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, name, 5);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(cJSON_GetArraySize(v.metadata), 2); /* "k\0\xC0" != "k" */
  item = vt_json_obj_get(v.metadata, "k\0\xC0", 3);
  s = str_of(item, &len);
  CHECK_MEM(s, len, "v\0w", 3);
  CHECK_EQ_INT(meta_int(&v, "k"), 1);
  REQUIRE(v.nevents == 1);
  CHECK_MEM(v.events[0].name, v.events[0].name_len, "e\0f", 3);
  vt_collector_free(c);
}

/* ---- events and links ----------------------------------------------------------- */

TEST(test_events) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  cJSON *attrs = cJSON_CreateObject();
  int64_t n = -1;
  vt_id id;
  REQUIRE(c != NULL && attrs != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(vt_json_obj_set(attrs, "step", 4, vt_json_int(3)), VT_OK);
  CHECK_EQ_INT(vt_json_obj_set(attrs, "phase", 5, vt_json_str("parse", 5)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "parse", 5, attrs), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "emit", 4, NULL), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 2); /* visible while open */
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "late", 4, NULL), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_record_event(c, 0, "zero", 4, NULL), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_record_event(c, 99, "none", 4,
                                         cJSON_CreateObject()),
               VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 2);
  CHECK_MEM(v.events[0].name, v.events[0].name_len, "parse", 5);
  CHECK_MEM(v.events[1].name, v.events[1].name_len, "emit", 4);
  CHECK(v.events[0].offset_ns >= 0);
  CHECK(v.events[1].offset_ns >= v.events[0].offset_ns);
  CHECK(v.events[0].time_unix_ns > 0);
  REQUIRE(v.events[0].attributes != NULL);
  CHECK(vt_json_is_int(vt_json_obj_get(v.events[0].attributes, "step", 4),
                       &n) &&
        n == 3);
  CHECK(v.events[1].attributes == NULL ||
        cJSON_GetArraySize(v.events[1].attributes) == 0);
  vt_collector_free(c);
}

TEST(test_links_copied) {
  vt_start_args args = {NULL, 0, NULL, 0};
  vt_collector *c = new_enabled();
  char want_tid[64];
  char *tid = malloc(64), *sid = malloc(16), *key = malloc(8);
  vt_link *links = malloc(2 * sizeof *links);
  cJSON *attrs = cJSON_CreateObject();
  const char *s;
  size_t len;
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL && tid && sid && key && links && attrs);
  snprintf(want_tid, sizeof want_tid, "%s", vt_collector_trace_id(c));
  snprintf(tid, 64, "%s", want_tid);
  snprintf(sid, 16, "17");
  snprintf(key, 8, "kind");
  CHECK_EQ_INT(vt_json_obj_set(attrs, key, 4, vt_json_str("follows", 7)),
               VT_OK);
  links[0].trace_id = tid;
  links[0].trace_id_len = strlen(tid);
  links[0].span_id = sid;
  links[0].span_id_len = 2;
  links[0].attributes = attrs;
  links[1].trace_id = "remote-trace";
  links[1].trace_id_len = 12;
  links[1].span_id = "00f067aa0ba902b7";
  links[1].span_id_len = 16;
  links[1].attributes = NULL;
  args.links = links;
  args.nlinks = 2;
  id = vt_collector_start(c, NULL, VT_RESUME, "r", 1, &args);
  REQUIRE(id != 0);
  /* the caller's buffers may go away */
  memset(tid, 'X', 63);
  memset(sid, 'Y', 15);
  memset(key, 'Z', 7);
  memset(links, 0, 2 * sizeof *links);
  free(tid);
  free(sid);
  free(key);
  free(links);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nlinks == 2 && v.links != NULL);
  CHECK_MEM(v.links[0].trace_id, v.links[0].trace_id_len, want_tid,
            strlen(want_tid));
  CHECK_MEM(v.links[0].span_id, v.links[0].span_id_len, "17", 2);
  REQUIRE(v.links[0].attributes != NULL);
  s = str_of(vt_json_obj_get(v.links[0].attributes, "kind", 4), &len);
  CHECK_MEM(s, len, "follows", 7);
  CHECK_MEM(v.links[1].trace_id, v.links[1].trace_id_len, "remote-trace", 12);
  CHECK_MEM(v.links[1].span_id, v.links[1].span_id_len, "00f067aa0ba902b7",
            16);
  vt_collector_free(c);
}

/* Port of seed test_span_links_are_preserved. */
TEST(test_span_links_are_preserved) {
  vt_start_args args = {NULL, 0, NULL, 0};
  vt_collector *c = new_enabled();
  char sid[24];
  vt_link link;
  vt_span_view v;
  vt_id parent, child;
  REQUIRE(c != NULL);
  parent = start(c, VT_SUSPENSION, "suspend worker");
  /* span_link(parent): this trace id and the decimal local id */
  snprintf(sid, sizeof sid, "%llu", (unsigned long long)parent);
  link.trace_id = vt_collector_trace_id(c);
  link.trace_id_len = strlen(link.trace_id);
  link.span_id = sid;
  link.span_id_len = strlen(sid);
  link.attributes = NULL;
  CHECK_EQ_INT(finish(c, parent), VT_OK);
  args.links = &link;
  args.nlinks = 1;
  child = vt_collector_start(c, NULL, VT_RESUME, "resume worker", 13, &args);
  CHECK_EQ_INT(finish(c, child), VT_OK);
  REQUIRE(vt_collector_count(c) == 2);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 1), &v) == VT_OK);
  CHECK_EQ_INT(v.parent, 0);
  REQUIRE(v.nlinks == 1);
  CHECK_MEM(v.links[0].span_id, v.links[0].span_id_len, "1", 1);
  CHECK_MEM(v.links[0].trace_id, v.links[0].trace_id_len,
            vt_collector_trace_id(c), strlen(vt_collector_trace_id(c)));
  vt_collector_free(c);
}

/* Port of seed test_detached_span_links_do_not_inherit_active_parent. */
TEST(test_detached_span_links_do_not_inherit_active_parent) {
  vt_start_args args = {NULL, 0, NULL, 0};
  vt_collector *c = new_enabled();
  char sid[24];
  vt_link link;
  vt_span_view v;
  vt_id pipeline, drain, inner;
  size_t i;
  int found = 0;
  REQUIRE(c != NULL);
  pipeline = start(c, VT_PIPELINE, "pipeline");
  snprintf(sid, sizeof sid, "%llu", (unsigned long long)pipeline);
  link.trace_id = vt_collector_trace_id(c);
  link.trace_id_len = strlen(link.trace_id);
  link.span_id = sid;
  link.span_id_len = strlen(sid);
  link.attributes = NULL;
  args.links = &link;
  args.nlinks = 1;
  args.flags = VT_START_DETACHED;
  drain = vt_collector_start(c, NULL, VT_DRAIN, "drain", 5, &args);
  CHECK_EQ_INT(current(c), drain); /* a detached span is still pushed */
  inner = start(c, VT_DRAIN_DECISION, "decide");
  CHECK_EQ_INT(parent_of(c, inner), drain);
  CHECK_EQ_INT(finish(c, inner), VT_OK);
  CHECK_EQ_INT(finish(c, drain), VT_OK);
  CHECK_EQ_INT(finish(c, pipeline), VT_OK);
  for (i = 0; i < vt_collector_count(c); i++) {
    if (vt_collector_get(c, vt_collector_completed_id(c, i), &v) != VT_OK ||
        v.kind != VT_DRAIN)
      continue;
    found = 1;
    CHECK_EQ_INT(v.parent, 0);
    REQUIRE(v.nlinks == 1);
    CHECK_MEM(v.links[0].span_id, v.links[0].span_id_len, "1", 1);
  }
  CHECK(found);
  vt_collector_free(c);
}

/* Port of seed test_user_timing_records_when_tracing_disabled. */
TEST(test_user_timing_records_when_tracing_disabled) {
  vt_collector *c = vt_collector_new();
  vt_span_view v;
  vt_id id, inner;
  int64_t dur = -1;
  REQUIRE(c != NULL);
  CHECK(!vt_collector_enabled(c));
  id = start_flags(c, VT_USER_TIMING, "script.work", VT_START_ALWAYS);
  CHECK(id != 0);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "phase", 5,
                                         vt_json_str("warmup", 6)),
               VT_OK);
  CHECK(strlen(vt_collector_trace_id(c)) > 0);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(v.parent, 0);
  CHECK(v.start_unix_ns > 0);
  CHECK_EQ_INT(start(c, VT_FN_CALL, "not always"), 0);
  inner = start_flags(c, VT_USER_TIMING, "inner", VT_START_ALWAYS);
  CHECK_EQ_INT(parent_of(c, inner), id);
  CHECK_EQ_INT(finish(c, inner), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "checkpoint", 10, NULL), VT_OK);
  CHECK_EQ_INT(vt_collector_finish(c, id, &dur), VT_OK);
  CHECK(dur >= 0);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(v.kind, VT_USER_TIMING);
  REQUIRE(v.nevents == 1);
  CHECK_MEM(v.events[0].name, v.events[0].name_len, "checkpoint", 10);
  CHECK(meta_str_is(&v, "phase", "warmup"));
  REQUIRE(vt_collector_count(c) == 2);
  CHECK_EQ_INT(vt_collector_completed_id(c, 1), id);
  CHECK_MEM(v.name, v.name_len, "script.work", 11);
  /* and with the mock clock, while tracing stays off */
  CHECK_EQ_INT(vt_collector_mock_push(c, 2000), VT_OK);
  id = start_flags(c, VT_USER_TIMING, "mocked", VT_START_ALWAYS);
  CHECK(id != 0);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 5, &dur), VT_OK);
  CHECK_EQ_INT(dur, 2005);
  CHECK_EQ_INT(vt_collector_finish(c, id, &dur), VT_OK);
  CHECK_EQ_INT(dur, 5 * MS);
  CHECK(!vt_collector_enabled(c));
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  vt_collector_free(c);
}

/* ---- stacks ------------------------------------------------------------------- */

TEST(test_stack_base_parent) {
  vt_collector *c = new_enabled();
  vt_stack *st, *st0;
  vt_id root, x, y, z, r;
  REQUIRE(c != NULL);
  root = start(c, VT_PIPELINE, "root");
  st = vt_stack_new(c, root);
  REQUIRE(st != NULL);
  CHECK_EQ_INT(vt_stack_current(c, st), root);
  x = start_on(c, st, VT_FN_CALL, "x");
  CHECK_EQ_INT(parent_of(c, x), root);
  y = start_on(c, st, VT_FN_CALL, "y");
  CHECK_EQ_INT(parent_of(c, y), x);
  CHECK_EQ_INT(vt_stack_current(c, st), y);
  CHECK_EQ_INT(current(c), root); /* the main stack did not move */
  z = start(c, VT_STEP, "z");
  CHECK_EQ_INT(parent_of(c, z), root);
  CHECK_EQ_INT(finish(c, z), VT_OK);
  CHECK_EQ_INT(finish(c, y), VT_OK);
  CHECK_EQ_INT(finish(c, x), VT_OK);
  CHECK_EQ_INT(vt_stack_current(c, st), root);
  /* base 0: a root, whatever the main stack holds */
  st0 = vt_stack_new(c, 0);
  REQUIRE(st0 != NULL);
  CHECK_EQ_INT(vt_stack_current(c, st0), 0);
  r = start_on(c, st0, VT_SPAWN, "r");
  CHECK_EQ_INT(parent_of(c, r), 0);
  CHECK_EQ_INT(finish(c, r), VT_OK);
  CHECK_EQ_INT(finish(c, root), VT_OK);
  vt_stack_free(c, st);
  vt_stack_free(c, st0);
  CHECK_EQ_INT(vt_collector_count(c), 5);
  vt_collector_free(c);
}

TEST(test_stacks_do_not_parent_to_each_other) {
  vt_collector *c = new_enabled();
  vt_stack *s1, *s2;
  vt_id a1, a2, b1, b2, c1;
  REQUIRE(c != NULL);
  s1 = vt_stack_new(c, 0);
  s2 = vt_stack_new(c, 0);
  REQUIRE(s1 != NULL && s2 != NULL);
  a1 = start_on(c, s1, VT_FN_CALL, "a1");
  a2 = start_on(c, s2, VT_FN_CALL, "a2");
  b1 = start_on(c, s1, VT_FN_CALL, "b1");
  b2 = start_on(c, s2, VT_FN_CALL, "b2");
  CHECK_EQ_INT(parent_of(c, a1), 0);
  CHECK_EQ_INT(parent_of(c, a2), 0);
  CHECK_EQ_INT(parent_of(c, b1), a1);
  CHECK_EQ_INT(parent_of(c, b2), a2);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(finish(c, b1), VT_OK);
  c1 = start_on(c, s1, VT_FN_CALL, "c1");
  CHECK_EQ_INT(parent_of(c, c1), a1);
  CHECK_EQ_INT(vt_stack_current(c, s2), b2);
  vt_stack_free(c, s1);
  vt_stack_free(c, s2);
  vt_collector_free(c);
}

TEST(test_finish_from_another_stack) {
  vt_collector *c = new_enabled();
  vt_stack *s1, *s2;
  vt_id m, x1, x2, y, x3;
  REQUIRE(c != NULL);
  m = start(c, VT_PIPELINE, "m");
  s1 = vt_stack_new(c, 0);
  s2 = vt_stack_new(c, 0);
  REQUIRE(s1 != NULL && s2 != NULL);
  x1 = start_on(c, s1, VT_FN_CALL, "x1");
  x2 = start_on(c, s1, VT_FN_CALL, "x2");
  y = start_on(c, s2, VT_FN_CALL, "y");
  /* finished while "running" elsewhere: removed from s1, wherever it is */
  CHECK_EQ_INT(finish(c, x1), VT_OK);
  CHECK_EQ_INT(vt_stack_current(c, s1), x2);
  CHECK_EQ_INT(vt_stack_current(c, s2), y);
  CHECK_EQ_INT(current(c), m);
  CHECK_EQ_INT(finish(c, x2), VT_OK);
  CHECK_EQ_INT(vt_stack_current(c, s1), 0);
  x3 = start_on(c, s1, VT_FN_CALL, "x3");
  CHECK_EQ_INT(parent_of(c, x3), 0);
  CHECK_EQ_INT(finish(c, m), VT_OK); /* main's span, s2 untouched */
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(vt_stack_current(c, s2), y);
  CHECK_EQ_INT(finish(c, y), VT_OK);
  CHECK_EQ_INT(vt_stack_current(c, s2), 0);
  CHECK_EQ_INT(vt_stack_current(c, s1), x3);
  vt_stack_free(c, s1);
  vt_stack_free(c, s2);
  vt_collector_free(c);
}

TEST(test_stack_free_keeps_spans_finishable) {
  vt_collector *c = new_enabled();
  vt_stack *st;
  vt_id a, b, m;
  REQUIRE(c != NULL);
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  a = start_on(c, st, VT_FN_CALL, "a");
  b = start_on(c, st, VT_FN_CALL, "b");
  vt_stack_free(c, st);
  CHECK_EQ_INT(is_open(c, a), 1);
  CHECK_EQ_INT(is_open(c, b), 1);
  m = start(c, VT_PIPELINE, "m");
  CHECK_EQ_INT(parent_of(c, m), 0);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(finish(c, b), VT_OK);
  CHECK_EQ_INT(parent_of(c, b), a);
  CHECK_EQ_INT(finish(c, m), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c), 3);
  /* and a freed stack with open spans does not get in the way of reset */
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  a = start_on(c, st, VT_FN_CALL, "left open");
  vt_stack_free(c, st);
  vt_collector_reset(c);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "fresh"), 1);
  vt_collector_free(c);
}

TEST(test_reset_empties_stacks) {
  vt_collector *c = new_enabled();
  vt_stack *st;
  vt_id x;
  REQUIRE(c != NULL);
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  CHECK(start_on(c, st, VT_FN_CALL, "a") != 0);
  CHECK(start_on(c, st, VT_FN_CALL, "b") != 0);
  vt_collector_reset(c);
  CHECK_EQ_INT(vt_stack_current(c, st), 0);
  x = start_on(c, st, VT_FN_CALL, "x");
  CHECK_EQ_INT(x, 1);
  CHECK_EQ_INT(parent_of(c, x), 0);
  CHECK_EQ_INT(vt_stack_current(c, st), x);
  CHECK_EQ_INT(finish(c, x), VT_OK);
  vt_collector_set_enabled(c, 1); /* enabling resets too */
  CHECK(start_on(c, st, VT_FN_CALL, "y") == 1);
  vt_collector_set_enabled(c, 1);
  CHECK_EQ_INT(vt_stack_current(c, st), 0);
  vt_stack_free(c, st);
  vt_collector_free(c);
}

/* ---- mock clock ------------------------------------------------------------------ */

TEST(test_mock_clock_span) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  int64_t wall = -1, mono0, dur = -1;
  vt_id id;
  REQUIRE(c != NULL);
  CHECK(!vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  CHECK(vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_now_ms(c), 1000000);
  mono0 = vt_collector_monotonic_ms(c);
  id = start(c, VT_USER_TIMING, "timed");
  REQUIRE(id != 0);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_OK);
  CHECK_EQ_INT(wall, 1000010);
  CHECK_EQ_INT(vt_collector_now_ms(c), 1000010);
  CHECK_EQ_INT(vt_collector_monotonic_ms(c) - mono0, 10);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "mid", 3, NULL), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 15, &wall), VT_OK);
  CHECK_EQ_INT(wall, 1000025);
  CHECK_EQ_INT(vt_collector_finish(c, id, &dur), VT_OK);
  CHECK_EQ_INT(dur, 25 * MS);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(v.duration_ns, 25 * MS);
  CHECK_EQ_INT(v.start_unix_ns, 1000000 * MS);
  REQUIRE(v.nevents == 1);
  CHECK_EQ_INT(v.events[0].offset_ns, 10 * MS);
  CHECK_EQ_INT(v.events[0].time_unix_ns, 1000010 * MS);
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_OK);
  CHECK(!vt_collector_mocked(c));
  vt_collector_free(c);
}

/* Port of seed test_span_event_offset_is_monotonic. */
TEST(test_span_event_offset_is_monotonic) {
  vt_collector *c = vt_collector_new();
  vt_span_view v;
  int64_t wall;
  vt_id id;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, INT64_C(1000000000000)), VT_OK);
  id = start_flags(c, VT_USER_TIMING, "outer", VT_START_ALWAYS);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "before", 6, NULL), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "after", 5, NULL), VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 2);
  CHECK(v.events[1].offset_ns > v.events[0].offset_ns);
  CHECK_EQ_INT(v.events[0].offset_ns, 0);
  CHECK_EQ_INT(v.events[1].offset_ns, 10 * MS);
  CHECK_EQ_INT(v.events[1].time_unix_ns, INT64_C(1000000000010) * MS);
  vt_collector_free(c);
}

TEST(test_mock_nested) {
  vt_collector *c = new_enabled();
  int64_t wall = -1, mono;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 5, &wall), VT_OK);
  CHECK_EQ_INT(wall, 1000005);
  CHECK_EQ_INT(vt_collector_mock_push(c, 2000000), VT_OK);
  CHECK_EQ_INT(vt_collector_now_ms(c), 2000000);
  mono = vt_collector_monotonic_ms(c);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 7, &wall), VT_OK);
  CHECK_EQ_INT(wall, 2000007);
  CHECK_EQ_INT(vt_collector_monotonic_ms(c) - mono, 7);
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_OK);
  CHECK(vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_now_ms(c), 1000005); /* outer mock untouched */
  CHECK_EQ_INT(vt_collector_mock_advance(c, 1, &wall), VT_OK);
  CHECK_EQ_INT(wall, 1000006);
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_OK);
  CHECK(!vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_ENOTFOUND);
  vt_collector_free(c);
}

TEST(test_mock_absent) {
  vt_collector *c = vt_collector_new();
  int64_t wall = 77, now, real, m1, m2;
  REQUIRE(c != NULL);
  CHECK(!vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_ENOTFOUND);
  now = vt_collector_now_ms(c);
  real = vt_clock_wall_ns() / MS;
  CHECK(now > real - 3600 * 1000 && now < real + 3600 * 1000);
  CHECK(now > INT64_C(1600000000000)); /* after September 2020 */
  m1 = vt_clock_mono_ns();
  m2 = vt_clock_mono_ns();
  CHECK(m2 >= m1);
  CHECK(vt_collector_monotonic_ms(c) >= 0);
  /* a mock pushed and popped leaves the real clock in charge */
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000), VT_OK);
  CHECK_EQ_INT(vt_collector_now_ms(c), 1000);
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_OK);
  CHECK(vt_collector_now_ms(c) > INT64_C(1600000000000));
  vt_collector_free(c);
}

/* ---- summary ---------------------------------------------------------------------- */

TEST(test_summary_empty) {
  vt_collector *c = new_enabled();
  char *s;
  REQUIRE(c != NULL);
  s = summary(c);
  CHECK_STR(s, "No spans recorded.");
  free(s);
  start(c, VT_PIPELINE, "open only"); /* open spans are not in the summary */
  s = summary(c);
  CHECK_STR(s, "No spans recorded.");
  free(s);
  vt_collector_free(c);
}

TEST(test_summary_tree) {
  vt_collector *c = new_enabled();
  int64_t wall;
  vt_id p, h, g;
  char *s;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  p = start(c, VT_PIPELINE, "main");
  h = start(c, VT_FN_CALL, "helper");
  CHECK_EQ_INT(vt_collector_set_metadata(c, h, "tokens", 6, vt_json_int(100)),
               VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, h), VT_OK);
  g = start(c, VT_LLM_CALL, "gpt");
  CHECK_EQ_INT(vt_collector_mock_advance(c, 5, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, g), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 15, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, p), VT_OK);
  s = summary(c);
  CHECK_STR(s, "Trace: 3 spans, 30ms total\n\n"
               "pipeline main 30ms\n"
               "  fn_call helper 10ms (tokens=100)\n"
               "  llm_call gpt 5ms");
  free(s);
  vt_collector_free(c);
}

/* Roots and children both come in the order they finished. */
TEST(test_summary_finish_order) {
  vt_collector *c = new_enabled();
  vt_stack *s1, *s2;
  vt_id a, c1, c2, b;
  int64_t wall;
  char *s;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  a = start(c, VT_PIPELINE, "A");
  s1 = vt_stack_new(c, a);
  s2 = vt_stack_new(c, a);
  REQUIRE(s1 != NULL && s2 != NULL);
  c1 = start_on(c, s1, VT_FN_CALL, "first");
  c2 = start_on(c, s2, VT_FN_CALL, "second");
  CHECK_EQ_INT(vt_collector_mock_advance(c, 2, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, c2), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 3, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, c1), VT_OK);
  b = start_flags(c, VT_PIPELINE, "B", VT_START_DETACHED);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 4, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, b), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 1, &wall), VT_OK);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  s = summary(c);
  CHECK_STR(s, "Trace: 4 spans, 14ms total\n\n"
               "pipeline B 4ms\n"
               "pipeline A 10ms\n"
               "  fn_call second 2ms\n"
               "  fn_call first 5ms");
  free(s);
  vt_stack_free(c, s1);
  vt_stack_free(c, s2);
  vt_collector_free(c);
}

/* As in the seed: a completed span whose parent is not among the completed
 * spans counts in the header but is not printed. */
TEST(test_summary_unfinished_parent) {
  vt_collector *c = new_enabled();
  vt_id p, ch;
  char *s;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  p = start(c, VT_PIPELINE, "P");
  ch = start(c, VT_FN_CALL, "C");
  CHECK_EQ_INT(finish(c, ch), VT_OK);
  s = summary(c);
  CHECK_STR(s, "Trace: 1 spans, 0ms total\n");
  free(s);
  CHECK_EQ_INT(finish(c, p), VT_OK);
  s = summary(c);
  CHECK_STR(s, "Trace: 2 spans, 0ms total\n\npipeline P 0ms\n  fn_call C 0ms");
  free(s);
  vt_collector_free(c);
}

/* Metadata values print as serde_json prints them (compact, keys sorted,
 * floats shortest round-trip with ".0" when integral, exponent form outside
 * 1e-5 <= |x| < 1e16). */
TEST(test_summary_values) {
  enum { MAXV = 40 };
  vt_collector *c = new_enabled();
  cJSON *vals[MAXV], *o, *arr;
  const char *texts[MAXV];
  const char *want[MAXV + 3];
  char lines[MAXV + 3][160], name[16];
  size_t n = 0, i;
  vt_id id;
  char *s;
  REQUIRE(c != NULL);
#define ADD(v, t) (vals[n] = (v), texts[n] = (t), n++)
  ADD(vt_json_num(3.0), "3.0");
  ADD(vt_json_num(1e21), "1e21");
  ADD(vt_json_num(1.5e-7), "1.5e-7");
  ADD(vt_json_num(0.1), "0.1");
  ADD(vt_json_num(-2.5), "-2.5");
  ADD(vt_json_num(1e15), "1000000000000000.0");
  ADD(vt_json_num(1e16), "1e16");
  ADD(vt_json_num(1.2345678901234567e19), "1.2345678901234567e19");
  ADD(vt_json_num(123456.789), "123456.789");
  ADD(vt_json_num(1e-5), "0.00001");
  ADD(vt_json_num(1e-6), "1e-6");
  ADD(vt_json_num(0.0), "0.0");
  ADD(vt_json_num(-0.0), "-0.0");
  ADD(vt_json_num(5e-324), "5e-324"); /* subnormals too */
  ADD(vt_json_num(1e-320), "1e-320");
  ADD(vt_json_num(1.7976931348623157e308), "1.7976931348623157e308");
  ADD(vt_json_num(NAN), "null");
  ADD(vt_json_int(0), "0");
  ADD(vt_json_int(-42), "-42");
  ADD(vt_json_int(INT64_MAX), "9223372036854775807");
  ADD(vt_json_int(INT64_MIN), "-9223372036854775808");
  ADD(cJSON_CreateTrue(), "true");
  ADD(cJSON_CreateFalse(), "false");
  ADD(cJSON_CreateNull(), "null");
  ADD(vt_json_str("plain", 5), "\"plain\"");
  ADD(vt_json_str("say \"hi\"\\\n\t\x01/\xc3\xa9", 15),
      "\"say \\\"hi\\\"\\\\\\n\\t\\u0001/\xc3\xa9\"");
  ADD(vt_json_str("\x1f\x7f\r\b\f", 5), "\"\\u001f\x7f\\r\\b\\f\"");
  ADD(vt_json_str("a\0b", 3), "\"a\\u0000b\"");
  ADD(vt_json_str("", 0), "\"\"");
  ADD(cJSON_CreateArray(), "[]");
  ADD(cJSON_CreateObject(), "{}");
  o = cJSON_CreateObject();
  arr = cJSON_CreateArray();
  REQUIRE(o != NULL && arr != NULL);
  cJSON_AddItemToArray(arr, cJSON_CreateTrue());
  cJSON_AddItemToArray(arr, cJSON_CreateNull());
  cJSON_AddItemToArray(arr, vt_json_str("x", 1));
  cJSON_AddItemToArray(arr, vt_json_num(2.5));
  cJSON_AddItemToArray(arr, vt_json_int(INT64_MAX));
  cJSON_AddItemToArray(arr, vt_json_str("n\0", 2));
  vt_json_obj_set(o, "z", 1, vt_json_int(1));
  vt_json_obj_set(o, "a", 1, arr);
  vt_json_obj_set(o, "q\"", 2, vt_json_num(4.0));
  vt_json_obj_set(o, "m", 1, cJSON_CreateObject());
  ADD(o, "{\"a\":[true,null,\"x\",2.5,9223372036854775807,\"n\\u0000\"],"
         "\"m\":{},\"q\\\"\":4.0,\"z\":1}");
#undef ADD
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  for (i = 0; i < n; i++) {
    snprintf(name, sizeof name, "v%lu", (unsigned long)i);
    id = start(c, VT_TOOL_CALL, name);
    CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k", 1, vals[i]), VT_OK);
    CHECK_EQ_INT(finish(c, id), VT_OK);
    snprintf(lines[i + 2], sizeof lines[0], "tool_call v%lu 0ms (k=%s)",
             (unsigned long)i, texts[i]);
  }
  /* several keys: sorted bytewise, printed bare, joined by ", " */
  id = start(c, VT_FN_CALL, "multi");
  vt_collector_set_metadata(c, id, "b", 1, cJSON_CreateNull());
  vt_collector_set_metadata(c, id, "my key", 6, vt_json_int(1));
  vt_collector_set_metadata(c, id, "a_", 2, cJSON_CreateTrue());
  vt_collector_set_metadata(c, id, "B", 1, vt_json_str("x", 1));
  vt_collector_set_metadata(c, id, "a", 1, vt_json_num(0.5));
  CHECK_EQ_INT(finish(c, id), VT_OK);
  snprintf(lines[n + 2], sizeof lines[0],
           "fn_call multi 0ms (B=\"x\", a=0.5, a_=true, b=null, my key=1)");
  snprintf(lines[0], sizeof lines[0], "Trace: %lu spans, 0ms total",
           (unsigned long)(n + 1));
  lines[1][0] = '\0';
  for (i = 0; i < n + 3; i++) want[i] = lines[i];
  s = summary(c);
  REQUIRE(s != NULL);
  check_lines(s, want, n + 3);
  free(s);
  vt_collector_free(c);
}

/* A chain of spans nested DEEP levels summarised on a thread with a 256 KiB
 * stack: a walker that recurses once per level needs more than that (it would
 * have to fit in 32 bytes a frame). The chain is not 100,000 deep because
 * the text itself grows with the square of the depth (indentation): 8,000
 * levels already make 64 MB. Runs in a child process so that a stack
 * overflow is reported as a failed test. */
enum { DEEP = 8000 };

struct deep_job {
  vt_collector *c;
  char *text;
  size_t len;
};

static void *deep_summary(void *arg) {
  struct deep_job *job = arg;
  job->text = vt_collector_summary(job->c, &job->len);
  return NULL;
}

static void deep_chain_body(void) {
  vt_collector *c = new_enabled();
  struct deep_job job;
  pthread_attr_t attr;
  pthread_t th;
  char *want, *p;
  size_t want_len, i, bad = 0;
  vt_id id;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  for (i = 0; i < DEEP; i++)
    if (start(c, VT_FN_CALL, "f") != i + 1) bad++;
  for (id = DEEP; id >= 1; id--)
    if (finish(c, id) != VT_OK) bad++;
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(parent_of(c, DEEP), DEEP - 1);
  job.c = c;
  job.text = NULL;
  job.len = 0;
  REQUIRE(pthread_attr_init(&attr) == 0);
  REQUIRE(pthread_attr_setstacksize(&attr, 256 * 1024) == 0);
  REQUIRE(pthread_create(&th, &attr, deep_summary, &job) == 0);
  pthread_join(th, NULL);
  pthread_attr_destroy(&attr);
  want_len = (size_t)DEEP * (size_t)(DEEP - 1) + (size_t)DEEP * 14 + 64;
  want = malloc(want_len);
  REQUIRE(want != NULL);
  p = want + sprintf(want, "Trace: %d spans, 0ms total\n", DEEP);
  for (i = 0; i < DEEP; i++) {
    *p++ = '\n';
    memset(p, ' ', 2 * i);
    p += 2 * i;
    memcpy(p, "fn_call f 0ms", 13);
    p += 13;
  }
  *p = '\0';
  want_len = (size_t)(p - want);
  if (CHECK(job.text != NULL)) {
    CHECK_EQ_INT(job.len, want_len);
    if (!CHECK(job.len == want_len && memcmp(job.text, want, want_len) == 0)) {
      for (i = 0; i < job.len && i < want_len && job.text[i] == want[i]; i++) {}
      printf("#   first difference at byte %lu\n", (unsigned long)i);
    }
  }
  free(job.text);
  free(want);
  vt_collector_free(c);
}

TEST(test_summary_deep_chain) {
  pid_t pid;
  int status = 0;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    tap_cur_failed = 0;
    deep_chain_body();
    fflush(stdout);
    _exit(tap_cur_failed ? 1 : 0);
  }
  if (pid < 0) { /* no fork: run it here */
    deep_chain_body();
    return;
  }
  REQUIRE(waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status))
    printf("# summary child killed by signal %d (stack overflow?)\n",
           WTERMSIG(status));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(test_dropped_zero_in_ordinary_run) {
  vt_collector *c = new_enabled();
  vt_stack *st;
  vt_id ids[64];
  int i, round;
  REQUIRE(c != NULL);
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  for (round = 0; round < 50; round++) {
    for (i = 0; i < 64; i++) {
      ids[i] = start_on(c, (i & 1) ? st : NULL, (vt_kind)(i % VT_KIND_COUNT),
                        "s");
      vt_collector_set_metadata(c, ids[i], "i", 1, vt_json_int(i));
      vt_collector_record_event(c, ids[i], "e", 1, NULL);
    }
    for (i = 63; i >= 0; i--) CHECK_EQ_INT(finish(c, ids[i]), VT_OK);
    if (round % 10 == 9) vt_collector_take(c);
  }
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  CHECK_EQ_INT(ids[63], 50 * 64);
  vt_stack_free(c, st);
  vt_collector_free(c);
}

static const tap_test tests[] = {
    TAP_ENTRY(test_kind_names),
    TAP_ENTRY(test_ids_count_up_from_one),
    TAP_ENTRY(test_zero_while_disabled),
    TAP_ENTRY(test_enable_resets),
    TAP_ENTRY(test_disable_keeps_spans),
    TAP_ENTRY(test_reset),
    TAP_ENTRY(test_trace_id_format),
    TAP_ENTRY(test_collectors_independent),
    TAP_ENTRY(test_span_collector_basic),
    TAP_ENTRY(test_span_parent_child),
    TAP_ENTRY(test_out_of_order_finish),
    TAP_ENTRY(test_finish_not_found),
    TAP_ENTRY(test_completed_order_is_finish_order),
    TAP_ENTRY(test_get_open_and_completed),
    TAP_ENTRY(test_get_many_spans),
    TAP_ENTRY(test_take_keeps_open_spans),
    TAP_ENTRY(test_span_metadata),
    TAP_ENTRY(test_set_metadata_open_only),
    TAP_ENTRY(test_completed_span_metadata_can_be_attached_late),
    TAP_ENTRY(test_metadata_if_absent_open),
    TAP_ENTRY(test_metadata_keys_sorted),
    TAP_ENTRY(test_metadata_replace),
    TAP_ENTRY(test_json_obj_set_sorted),
    TAP_ENTRY(test_json_int_limits),
    TAP_ENTRY(test_json_num_nonfinite),
    TAP_ENTRY(test_json_str_bytes),
    TAP_ENTRY(test_byte_string_names),
    TAP_ENTRY(test_events),
    TAP_ENTRY(test_links_copied),
    TAP_ENTRY(test_span_links_are_preserved),
    TAP_ENTRY(test_detached_span_links_do_not_inherit_active_parent),
    TAP_ENTRY(test_user_timing_records_when_tracing_disabled),
    TAP_ENTRY(test_stack_base_parent),
    TAP_ENTRY(test_stacks_do_not_parent_to_each_other),
    TAP_ENTRY(test_finish_from_another_stack),
    TAP_ENTRY(test_stack_free_keeps_spans_finishable),
    TAP_ENTRY(test_reset_empties_stacks),
    TAP_ENTRY(test_mock_clock_span),
    TAP_ENTRY(test_span_event_offset_is_monotonic),
    TAP_ENTRY(test_mock_nested),
    TAP_ENTRY(test_mock_absent),
    TAP_ENTRY(test_summary_empty),
    TAP_ENTRY(test_summary_tree),
    TAP_ENTRY(test_summary_finish_order),
    TAP_ENTRY(test_summary_unfinished_parent),
    TAP_ENTRY(test_summary_values),
    TAP_ENTRY(test_summary_deep_chain),
    TAP_ENTRY(test_dropped_zero_in_ordinary_run),
};

int main(void) {
  return tap_run(tests, sizeof tests / sizeof tests[0]);
}
