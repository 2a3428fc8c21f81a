/*
 * test_oom.c: out of memory, everywhere. An allocator that fails the k-th
 * allocation is installed (vt_set_allocator: the core's and cJSON's), and an
 * ordinary run of the core (spans with links, metadata, events and markers,
 * stacks, the mock clock, every export, the summary, the profile, a stream,
 * loading a file, a bound on spans, take, reset) is played once for every k
 * up to the number of allocations it makes. Each play must: answer every
 * failure with a status or a counted drop,
 * keep the collector consistent (every completed span readable), never
 * crash, and free every block it allocated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "tap.h"
#include "vmtrace.h"

static long fail_at = -1; /* the allocation to fail (1-based), or -1 */
static long count, live;

static void *t_malloc(size_t n) {
  void *p;
  if (++count == fail_at) return NULL;
  p = malloc(n);
  if (p) live++;
  return p;
}

static void *t_realloc(void *p, size_t n) {
  void *q;
  if (++count == fail_at) return NULL;
  q = realloc(p, n);
  if (q && !p) live++;
  return q;
}

static void t_free(void *p) {
  if (p) live--;
  free(p);
}

static const vt_allocator counting = {t_malloc, t_realloc, t_free};

static int consistent(const vt_collector *c) {
  size_t i, n = vt_collector_count(c);
  for (i = 0; i < n; i++) {
    vt_span_view v;
    if (vt_collector_get(c, vt_collector_completed_id(c, i), &v) != VT_OK || v.open)
      return 0;
  }
  return 1;
}

#define OK(x) do { int rc_ = (x); if (rc_ != VT_OK && rc_ != VT_ENOMEM && rc_ != VT_ENOTFOUND && rc_ != VT_EEXIST) return 10; } while (0)
#define CONSISTENT(c) do { if (!consistent(c)) return 11; } while (0)

/* One ordinary run; 0 when every answer was an answer. */
static int run(void) {
  vt_collector *c = vt_collector_new(), *d;
  vt_stack *st;
  vt_id ids[32], root;
  char name[16], *s;
  size_t n, i;
  int64_t dur, wall;
  vt_format f;
  vt_export_opts o;
  FILE *tmp;
  vt_stream *stream;
  char *json = NULL;
  if (!c) return 0;
  vt_collector_set_enabled(c, 1);
  st = vt_stack_new(c, 0);
  root = vt_collector_start(c, NULL, VT_PIPELINE, "root", 4, NULL);
  for (i = 0; i < 24; i++) {
    vt_start_args a;
    vt_link link;
    memset(&a, 0, sizeof a);
    snprintf(name, sizeof name, "span %u", (unsigned)i);
    if (i % 3 == 0) {
      link.trace_id = vt_collector_trace_id(c);
      link.trace_id_len = strlen(link.trace_id);
      link.span_id = "1";
      link.span_id_len = 1;
      link.attributes = cJSON_CreateObject();
      if (link.attributes) vt_json_obj_set(link.attributes, "why", 3, vt_json_str("resume", 6));
      a.links = &link;
      a.nlinks = 1;
      a.metadata = cJSON_CreateObject();
      if (a.metadata) vt_json_obj_set(a.metadata, "at", 2, vt_json_int((int64_t)i));
    }
    if (i % 7 == 6) a.flags = VT_START_INSTANT;
    ids[i] = vt_collector_start(c, i % 2 ? st : NULL, (vt_kind)(i % VT_KIND_COUNT), name,
                                strlen(name), &a);
    OK(vt_collector_set_metadata(c, ids[i], "n", 1, vt_json_int((int64_t)i * 1000)));
    OK(vt_collector_set_metadata(c, ids[i], "s", 1, vt_json_str("a\0b", 3)));
    OK(vt_collector_set_metadata(c, ids[i], "model", 5, vt_json_str("m", 1)));
    OK(vt_collector_set_metadata(c, ids[i], "input_tokens", 12, vt_json_int(10)));
    OK(vt_collector_record_event(c, ids[i], "ev", 2, cJSON_CreateObject()));
    {
      cJSON *obj = cJSON_CreateObject();
      if (obj) vt_json_obj_set(obj, "merged", 6, cJSON_CreateTrue());
      OK(vt_collector_merge_metadata(c, ids[i], obj));
    }
    if (i % 4 == 3) OK(vt_collector_finish(c, ids[i - 2], &dur)); /* out of order */
    if (i == 10) {
      OK(vt_collector_mock_push(c, 1000000));
      OK(vt_collector_mock_advance(c, 5, &wall));
    }
    if (i == 14) OK(vt_collector_mock_pop(c));
    CONSISTENT(c);
  }
  for (i = 0; i < 24; i++) OK(vt_collector_finish(c, ids[i], &dur));
  OK(vt_collector_set_metadata_if_absent(c, ids[3], "late", 4, vt_json_int(1)));
  CONSISTENT(c);

  /* read it every way */
  s = vt_collector_summary(c, &n);
  vt_free(s);
  memset(&o, 0, sizeof o);
  for (f = VT_FORMAT_JSON; f <= VT_FORMAT_FOLDED; f++) {
    for (o.weight = VT_WEIGHT_TIME; o.weight <= VT_WEIGHT_COST; o.weight++) {
      s = vt_collector_export_string(c, f, &o, &n);
      if (f == VT_FORMAT_JSON && s && !json) json = s;
      else vt_free(s);
    }
    if ((tmp = tmpfile()) != NULL) {
      OK(vt_collector_export(c, f, &o, tmp) == VT_EIO ? VT_ENOMEM : vt_collector_export(c, f, &o, tmp));
      fclose(tmp);
    }
  }
  cJSON_Delete(vt_collector_profile(c));

  /* a stream, a bound, take, reset */
  if ((tmp = tmpfile()) != NULL) {
    stream = vt_collector_trace_id(c) ? vt_stream_open(c, tmp, 1, 1) : NULL;
    for (i = 0; i < 6; i++) OK(vt_collector_finish(c, vt_collector_start(c, NULL, VT_STEP, "s", 1, NULL), &dur));
    if (stream) vt_stream_close(stream);
    else fclose(tmp);
  }
  vt_collector_set_max_spans(c, 5);
  for (i = 0; i < 8; i++) OK(vt_collector_finish(c, vt_collector_start(c, NULL, VT_STEP, "b", 1, NULL), &dur));
  if (vt_collector_count(c) > 5) return 12;
  CONSISTENT(c);
  vt_collector_take(c);
  OK(vt_collector_finish(c, root, &dur));
  CONSISTENT(c);
  vt_collector_reset(c);

  /* load what was exported */
  if (json && (d = vt_collector_new()) != NULL) {
    char err[128];
    int rc = vt_collector_load(d, json, strlen(json), err, sizeof err);
    if (rc != VT_OK && rc != VT_ENOMEM && strncmp(err, "line ", 5) != 0) return 13;
    CONSISTENT(d);
    vt_collector_free(d);
  }
  vt_free(json);
  vt_stack_free(c, st);
  vt_collector_free(c);
  return 0;
}

static volatile long playing; /* the allocation made to fail, for a crash report */

static void on_crash(int sig) {
  char msg[96];
  int n = snprintf(msg, sizeof msg, "# crashed (signal %d) with allocation %ld failing\n", sig,
                   (long)playing);
  if (n > 0 && write(1, msg, (size_t)n) < 0) _exit(3);
  _exit(3);
}

/* Play the run failing allocation k (0: none): 0, or what went wrong. */
static int play(long k) {
  int rc;
  playing = k;
  fail_at = k;
  count = live = 0;
  vt_set_allocator(&counting);
  rc = run();
  vt_set_allocator(NULL);
  if (rc) return rc;
  return live ? 20 : 0; /* every block freed */
}

static long allocations(void) {
  long n;
  count = live = 0;
  fail_at = -1;
  vt_set_allocator(&counting);
  run();
  vt_set_allocator(NULL);
  n = count;
  return n;
}

static long total;

TEST(test_ordinary_run_frees_everything) {
  CHECK(total > 100);
  CHECK_EQ_INT(play(0), 0);
}

TEST(test_every_failed_allocation_is_answered) {
  long k, step = 1, failures = 0;
  const char *env = getenv("VT_OOM_STEP"); /* slower runs try every Nth k */
  if (env && atol(env) > 0) step = atol(env);
  for (k = 1; k <= total; k += step) {
    int rc = play(k);
    if (rc && failures++ < 10)
      printf("# allocation %ld of %ld failed: status %d (10 bad answer, 11 inconsistent, "
             "12 bound, 13 load, 20 leak)\n", k, total, rc);
  }
  printf("# %ld allocations; every %ld-th made to fail\n", total, step);
  CHECK_EQ_INT(failures, 0);
}

static const tap_test tests[] = {
    TAP_ENTRY(test_ordinary_run_frees_everything),
    TAP_ENTRY(test_every_failed_allocation_is_answered),
};

int main(void) {
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGABRT, on_crash);
  total = allocations();
  return tap_run(tests, sizeof tests / sizeof tests[0]);
}
