/*
 * test_oom.c: out of memory, everywhere. An allocator that fails the k-th
 * allocation is installed (vt_set_allocator: the core's and cJSON's), and an
 * ordinary run of the core (values built with vt_vb, spans with links,
 * metadata, events and markers, interned names, twelve subscribers, stacks,
 * the mock clock, every export, the summary, the profile, a stream, loading
 * what was exported, a bound on spans, take, reset, prices) is played once
 * for every k up to the number of allocations it makes.
 *
 * The run keeps a model of what it did (which spans are open, completed or
 * were never recorded), so each call is held to exactly the statuses it may
 * give: VT_OK or VT_ENOMEM where it allocates, and where its input calls for
 * one (a span that was never recorded, a key already there, no mock) that
 * status alone; calls that never allocate (finish, unsubscribe, mock
 * advance and pop, continue_trace) must succeed. A start that fails must be
 * counted as dropped. After each step the collector must be consistent
 * with the model (counts, open spans, readable completed spans, parents
 * before children); at the end every block must be freed, and nothing may
 * crash.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
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

/* ---- what went wrong -------------------------------------------------------------- */

enum {
  BAD_ANSWER = 10,   /* a status the call may not give */
  INCONSISTENT = 11, /* the collector disagrees with the model */
  BAD_DROP = 12,     /* a failed start not counted, or counted twice */
  BAD_LOAD = 13,     /* loading the export */
  BAD_OUTPUT = 14,   /* an export, the stream or the summary */
  LEAK = 20
};

static int bad_line, bad_rc;

#define FAIL(code)        \
  do {                    \
    bad_line = __LINE__;  \
    return (code);        \
  } while (0)

/* The call answered a or b (bad_rc keeps what it said otherwise). */
#define EXPECT2(x, a, b)                  \
  do {                                    \
    int rc_ = (x);                        \
    if (rc_ != (a) && rc_ != (b)) {       \
      bad_rc = rc_;                       \
      FAIL(BAD_ANSWER);                   \
    }                                     \
  } while (0)
#define EXPECT(x, a) EXPECT2(x, a, a)
#define OK_OR_OOM(x) EXPECT2(x, VT_OK, VT_ENOMEM)
#define REQUIRE_THAT(cond, code) \
  do {                           \
    if (!(cond)) FAIL(code);     \
  } while (0)

/* ---- the model ---------------------------------------------------------------------- */

enum { NONE, OPEN, DONE };

#define NSPANS 24
#define NSUBS 12

typedef struct model {
  vt_id ids[NSPANS];
  int state[NSPANS];
  vt_id root;
  size_t drops;   /* starts that returned 0 */
  size_t started; /* starts that returned an id */
  size_t llm_done;
  int subscribed[NSUBS];
  size_t heard[NSUBS]; /* START events each subscriber heard */
} model;

static model M;

static void listener(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  size_t *n = ud;
  (void)c;
  (void)id;
  if (ev == VT_EV_START) (*n)++;
}

/* Every completed span readable, completed, and after its parent; the
 * counts those of the model. */
static int consistent(const vt_collector *c, size_t open) {
  size_t i, n = vt_collector_count(c);
  vt_stats st;
  for (i = 0; i < n; i++) {
    vt_span_view v;
    vt_id id = vt_collector_completed_id(c, i);
    if (vt_collector_get(c, id, &v) != VT_OK || v.open || v.parent >= id || !v.name) return 0;
  }
  vt_collector_stats(c, &st);
  return st.completed == n && st.open == open;
}

#define CONSISTENT(c, open) REQUIRE_THAT(consistent(c, open), INCONSISTENT)

static size_t open_spans(void) {
  size_t i, n = M.root ? 1 : 0;
  for (i = 0; i < NSPANS; i++) n += M.state[i] == OPEN;
  return n;
}

/* ---- values built under the failing allocator ---------------------------------------- */

static vt_vb vb; /* one value at a time: NULL when its building failed */

static const vt_value *int_value(int64_t x) {
  vt_vb_reset(&vb);
  vt_vb_int(&vb, x);
  return vt_vb_value(&vb);
}

static const vt_value *str_value(const char *s, size_t len) {
  vt_vb_reset(&vb);
  vt_vb_str(&vb, s, len);
  return vt_vb_value(&vb);
}

/* {key: true} or {key: value of i} in b */
static const vt_value *obj_value(vt_vb *b, const char *key, long i) {
  vt_vb_reset(b);
  vt_vb_obj(b);
  vt_vb_key(b, key, strlen(key));
  if (i < 0) vt_vb_bool(b, 1);
  else vt_vb_int(b, i);
  vt_vb_end(b);
  return vt_vb_value(b);
}

static char big[5000];

/* {"blob": a 5000-byte string} in b */
static const vt_value *big_obj(vt_vb *b) {
  vt_vb_reset(b);
  vt_vb_obj(b);
  vt_vb_key(b, "blob", 4);
  vt_vb_str(b, big, sizeof big);
  vt_vb_end(b);
  return vt_vb_value(b);
}

/* A metadata call on span i: what the model says it may answer. A value
 * that could not be built is no call (the builder answered: failed). */
#define META(i, key, value, flags)                                                          \
  do {                                                                                      \
    const vt_value *v_ = (value);                                                           \
    if (v_) {                                                                               \
      if (M.state[i] == OPEN || (M.state[i] == DONE && (flags)))                            \
        OK_OR_OOM(vt_collector_set_metadata(c, M.ids[i], key, strlen(key), v_, flags));     \
      else                                                                                  \
        EXPECT(vt_collector_set_metadata(c, M.ids[i], key, strlen(key), v_, flags),         \
               VT_ENOTFOUND);                                                               \
    }                                                                                       \
  } while (0)

static vt_id start_counted(vt_collector *c, vt_stack *st, vt_kind k, const char *name,
                           const vt_start_args *a) {
  vt_id id = vt_collector_start(c, st, k, name, strlen(name), a);
  if (id) M.started++;
  else M.drops++;
  return id;
}

/* ---- one ordinary run ----------------------------------------------------------------- */

/* 0 when every answer was one the call may give. */
static int run(void) {
  vt_collector *c, *d;
  vt_stack *st;
  vt_vb b1, b2;
  char name[16], *s, *json = NULL;
  size_t n, i, json_count = 0;
  int64_t dur, wall, h;
  int mocked = 0, f;
  vt_export_opts o;
  FILE *tmp;
  vt_llm_totals t;
  memset(&M, 0, sizeof M);
  vt_vb_init(&vb);
  vt_vb_init(&b1);
  vt_vb_init(&b2);
  if (!(c = vt_collector_new())) return 0; /* answered: NULL */
  vt_collector_set_enabled(c, 1);
  for (i = 0; i < NSUBS; i++) { /* more than the old 8 hook slots */
    int rc = vt_collector_subscribe(c, listener, &M.heard[i]);
    EXPECT2(rc, VT_OK, VT_ENOMEM);
    M.subscribed[i] = rc == VT_OK;
  }
  st = vt_stack_new(c, 0); /* NULL: the main stack is used */
  M.root = start_counted(c, NULL, VT_PIPELINE, "root", NULL);
  for (i = 0; i < NSPANS; i++) {
    vt_start_args a;
    vt_link link;
    memset(&a, 0, sizeof a);
    snprintf(name, sizeof name, "span %u", (unsigned)i);
    if (i % 3 == 0) {
      link.trace_id = vt_collector_trace_id(c);
      link.trace_id_len = strlen(link.trace_id);
      link.span_id = "1";
      link.span_id_len = 1;
      link.attributes = obj_value(&b1, "why", -1);
      a.links = &link;
      a.nlinks = 1;
      a.metadata = obj_value(&b2, "at", (long)i);
    }
    if (i % 7 == 6) a.flags = VT_START_INSTANT;
    M.ids[i] = start_counted(c, i % 2 ? st : NULL, (vt_kind)(i % VT_KIND_COUNT), name, &a);
    M.state[i] = !M.ids[i] ? NONE : (a.flags & VT_START_INSTANT) ? DONE : OPEN;
    if (M.state[i] == DONE && i % VT_KIND_COUNT == VT_LLM_CALL) M.llm_done++;
    META(i, "n", int_value((int64_t)i * 1000), 0);
    META(i, "s", str_value("a\0b", 3), 0);
    META(i, "model", str_value("m", 1), 0);
    META(i, "input_tokens", int_value(10), 0);
    META(i, "late", int_value(1), VT_META_DONE);
    if (i % 5 == 0) /* past a quarter of an arena block: an allocation of its own */
      META(i, "big", str_value(big, sizeof big), 0);
    if (M.state[i] == OPEN)
      OK_OR_OOM(vt_collector_record_event(c, M.ids[i], "ev", 2,
                                          i % 5 == 1 ? big_obj(&b1) : obj_value(&b1, "e", 1)));
    else
      EXPECT(vt_collector_record_event(c, M.ids[i], "ev", 2, NULL), VT_ENOTFOUND);
    if (obj_value(&b1, "merged", -1)) {
      if (M.state[i] != NONE) OK_OR_OOM(vt_collector_merge_metadata(c, M.ids[i], vt_vb_value(&b1)));
      else EXPECT(vt_collector_merge_metadata(c, M.ids[i], vt_vb_value(&b1)), VT_ENOTFOUND);
    }
    if (i % 4 == 3) { /* out of order: finishing never fails */
      size_t j = i - 2;
      EXPECT(vt_collector_finish(c, M.ids[j], &dur), M.state[j] == OPEN ? VT_OK : VT_ENOTFOUND);
      if (M.state[j] == OPEN) {
        M.state[j] = DONE;
        if (j % VT_KIND_COUNT == VT_LLM_CALL) M.llm_done++;
      }
    }
    if (i == 10) {
      int rc = vt_collector_mock_push(c, 1000000);
      OK_OR_OOM(rc);
      mocked = rc == VT_OK;
      EXPECT(vt_collector_mock_advance(c, 5, &wall), mocked ? VT_OK : VT_ENOMOCK);
    }
    if (i == 14) EXPECT(vt_collector_mock_pop(c), mocked ? VT_OK : VT_ENOMOCK);
    CONSISTENT(c, open_spans());
    REQUIRE_THAT(vt_collector_dropped(c) == M.drops, BAD_DROP);
  }
  for (i = 0; i < NSPANS; i++) {
    EXPECT(vt_collector_finish(c, M.ids[i], &dur), M.state[i] == OPEN ? VT_OK : VT_ENOTFOUND);
    if (M.state[i] == OPEN) {
      M.state[i] = DONE;
      if (i % VT_KIND_COUNT == VT_LLM_CALL) M.llm_done++;
    }
  }
  if (int_value(1)) { /* a late key, then the same again */
    int rc = vt_collector_set_metadata(c, M.ids[3], "first", 5, vt_vb_value(&vb), VT_META_IF_ABSENT);
    if (M.state[3] == NONE) {
      EXPECT(rc, VT_ENOTFOUND);
    } else {
      OK_OR_OOM(rc);
      if (rc == VT_OK)
        EXPECT(vt_collector_set_metadata(c, M.ids[3], "first", 5, vt_vb_value(&vb), VT_META_IF_ABSENT),
               VT_EEXIST);
    }
  }
  CONSISTENT(c, open_spans());
  REQUIRE_THAT(vt_collector_dropped(c) == M.drops, BAD_DROP);
  vt_collector_llm_totals(c, &t); /* counted as they finish, whatever failed */
  REQUIRE_THAT(t.calls == M.llm_done, INCONSISTENT);
  for (i = 0; i < NSUBS; i++) /* every subscriber heard every start */
    REQUIRE_THAT(M.heard[i] == (M.subscribed[i] ? M.started : 0), INCONSISTENT);

  /* interned names */
  h = vt_collector_intern(c, "hot", 3);
  if (h >= 0) {
    for (i = 0; i < 3; i++) {
      vt_id id = vt_collector_start_interned(c, NULL, VT_STEP, (uint32_t)h, NULL);
      if (!id) M.drops++;
      else M.started++;
      EXPECT(vt_collector_finish(c, id, &dur), id ? VT_OK : VT_ENOTFOUND);
    }
    vt_collector_name_release(c, (uint32_t)h);
  }
  REQUIRE_THAT(vt_collector_dropped(c) == M.drops, BAD_DROP);

  /* a remote trace: no allocation */
  EXPECT(vt_collector_continue_trace(c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                     55, "k=v", 3),
         VT_OK);

  /* read it every way */
  s = vt_collector_summary(c, &n);
  REQUIRE_THAT(!s || n == strlen(s), BAD_OUTPUT);
  vt_free(s);
  memset(&o, 0, sizeof o);
  for (f = 0; f < VT_FORMAT_COUNT; f++) {
    for (o.weight = VT_WEIGHT_TIME; o.weight < VT_WEIGHT_COUNT; o.weight++) {
      if (o.weight != VT_WEIGHT_TIME && f != VT_FORMAT_FOLDED) break;
      s = vt_collector_export_string(c, (vt_format)f, &o, &n);
      if (s && (f == VT_FORMAT_JSON || f == VT_FORMAT_OTLP || f == VT_FORMAT_CHROME)) {
        const char *err = NULL;
        vt_value *v = vt_json_parse(s, n, &err, NULL);
        REQUIRE_THAT(v || (err && !strcmp(err, "out of memory")), BAD_OUTPUT);
        REQUIRE_THAT(!v || f != VT_FORMAT_JSON ||  /* the spans, and how many were dropped */
                         vt_value_count(v) == vt_collector_count(c) + (M.drops ? 1 : 0),
                     BAD_OUTPUT);
        vt_free(v);
      }
      if (f == VT_FORMAT_JSON && s && !json) {
        json = s;
        json_count = vt_collector_count(c);
      } else {
        vt_free(s);
      }
    }
    o.weight = VT_WEIGHT_TOKENS;
    if ((tmp = tmpfile()) != NULL) {
      OK_OR_OOM(vt_collector_export(c, (vt_format)f, &o, tmp));
      fclose(tmp);
    }
  }
  {
    vt_value *p = vt_collector_profile(c);
    REQUIRE_THAT(!p || vt_value_type(p) == VT_OBJ, BAD_OUTPUT);
    vt_free(p);
  }

  /* a stream: every line written or counted lost */
  {
    char path[] = "/tmp/vt-oom-stream-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
      vt_stream *stream = vt_stream_open(c, fd, 1);
      size_t k = 0;
      if (stream) {
        vt_stream_status ss;
        int e;
        for (i = 0; i < 6; i++) {
          vt_id id = start_counted(c, NULL, VT_STEP, "s", NULL);
          k += id != 0;
          EXPECT(vt_collector_finish(c, id, &dur), id ? VT_OK : VT_ENOTFOUND);
        }
        vt_stream_status_get(stream, &ss);
        REQUIRE_THAT(ss.lines + ss.lost_lines == 1 + 2 * k, BAD_OUTPUT);
        REQUIRE_THAT(!ss.lost_lines || ss.error == ENOMEM, BAD_OUTPUT);
        e = vt_stream_close(stream);
        REQUIRE_THAT(e == 0 || e == ENOMEM, BAD_OUTPUT);
        /* what was written reads back */
        if ((tmp = fopen(path, "rb")) != NULL) {
          vt_collector *e2 = vt_collector_new();
          if (e2) {
            vt_load_result r;
            int rc = vt_collector_load(e2, tmp, &r);
            EXPECT2(rc, ss.lines ? VT_OK : VT_EINVAL, VT_ENOMEM); /* nothing written: empty */
            REQUIRE_THAT(rc != VT_OK || ss.lost_lines || (r.spans == k && r.unfinished == 0),
                         BAD_LOAD);
            REQUIRE_THAT(consistent(e2, 0), INCONSISTENT);
            vt_collector_free(e2);
          }
          fclose(tmp);
        }
      } else {
        close(fd); /* not taken: still ours */
      }
      unlink(path);
    }
  }
  REQUIRE_THAT(vt_collector_dropped(c) == M.drops, BAD_DROP);

  /* a bound, take, reset */
  {
    size_t before = vt_collector_count(c), added = 0, evicted;
    vt_collector_set_max_spans(c, 5);
    for (i = 0; i < 8; i++) {
      vt_id id = start_counted(c, NULL, VT_STEP, "b", NULL);
      added += id != 0;
      EXPECT(vt_collector_finish(c, id, &dur), id ? VT_OK : VT_ENOTFOUND);
    }
    n = before + added < 5 ? before + added : 5;
    evicted = before + added - n;
    REQUIRE_THAT(vt_collector_count(c) == n, INCONSISTENT);
    REQUIRE_THAT(vt_collector_dropped(c) == M.drops + evicted, BAD_DROP);
  }
  CONSISTENT(c, open_spans());
  vt_collector_take(c);
  CONSISTENT(c, open_spans());
  REQUIRE_THAT(vt_collector_count(c) == 0, INCONSISTENT);
  EXPECT(vt_collector_finish(c, M.root, &dur), M.root ? VT_OK : VT_ENOTFOUND);
  vt_collector_llm_totals(c, &t);
  REQUIRE_THAT(t.calls == M.llm_done, INCONSISTENT); /* take and the bound keep them */
  vt_collector_reset(c);
  {
    vt_stats ss;
    vt_collector_stats(c, &ss);
    REQUIRE_THAT(ss.open == 0 && ss.completed == 0 && ss.names == 0 && ss.name_bytes == 0,
                 INCONSISTENT);
    vt_collector_llm_totals(c, &t);
    REQUIRE_THAT(t.calls == 0 && vt_collector_llm_models(c) == 0, INCONSISTENT);
  }

  /* load what was exported into a collector that holds a span: all of it,
   * or (out of memory) the collector as it was or emptied */
  if (json && (d = vt_collector_new()) != NULL) {
    vt_load_result r;
    vt_id kept;
    size_t had;
    int rc;
    vt_collector_set_enabled(d, 1);
    kept = vt_collector_start(d, NULL, VT_STEP, "kept", 4, NULL);
    EXPECT(vt_collector_finish(d, kept, &dur), kept ? VT_OK : VT_ENOTFOUND);
    had = vt_collector_count(d);
    rc = vt_collector_load_text(d, json, strlen(json), &r);
    OK_OR_OOM(rc);
    if (rc == VT_OK) {
      REQUIRE_THAT(r.spans == json_count && vt_collector_count(d) == json_count, BAD_LOAD);
    } else {
      REQUIRE_THAT(r.error[0] != '\0', BAD_LOAD);
      REQUIRE_THAT(vt_collector_count(d) == had || vt_collector_count(d) == 0, BAD_LOAD);
    }
    REQUIRE_THAT(consistent(d, 0), INCONSISTENT);
    vt_collector_free(d);
  }
  vt_free(json);

  /* prices */
  {
    vt_prices *p = vt_prices_new();
    if (p) {
      vt_price pr = {1, 2, 3, 4};
      int rc = vt_prices_set(p, "openai", 6, "gpt-4o", 6, &pr);
      OK_OR_OOM(rc);
      REQUIRE_THAT((vt_prices_find(p, "openai", 6, "gpt-4o-2024", 11, NULL) != NULL) == (rc == VT_OK),
                   INCONSISTENT);
      OK_OR_OOM(vt_prices_set(p, "", 0, "claude", 6, &pr));
      vt_prices_free(p);
    }
  }

  for (i = 0; i < NSUBS; i++)
    EXPECT(vt_collector_unsubscribe(c, listener, &M.heard[i]),
           M.subscribed[i] ? VT_OK : VT_ENOTFOUND);
  vt_stack_free(c, st);
  vt_collector_free(c);
  vt_vb_free(&vb);
  vt_vb_free(&b1);
  vt_vb_free(&b2);
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

/* Play the run failing allocation k (0: none): 0, or what went wrong. A
 * run that returned early leaves blocks behind: only a finished run is
 * checked for leaks. */
static int play(long k) {
  int rc;
  playing = k;
  fail_at = k;
  count = live = 0;
  bad_line = bad_rc = 0;
  vt_set_allocator(&counting);
  rc = run();
  vt_set_allocator(NULL);
  if (rc) return rc;
  return live ? LEAK : 0; /* every block freed */
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
  int rc;
  CHECK(total > 100);
  rc = play(0);
  if (!CHECK_EQ_INT(rc, 0)) printf("#   line %d, status %d\n", bad_line, bad_rc);
  CHECK_EQ_INT(M.drops, 0); /* nothing failed: nothing dropped */
  CHECK(M.llm_done == 2);
  CHECK(M.heard[NSUBS - 1] == M.started && M.started > 40);
}

TEST(test_every_failed_allocation_is_answered) {
  long k, step = 1, failures = 0, dropped_runs = 0;
  const char *env = getenv("VT_OOM_STEP"); /* slower runs try every Nth k */
  if (env && atol(env) > 0) step = atol(env);
  for (k = 1; k <= total; k += step) {
    int rc = play(k);
    if (M.drops) dropped_runs++;
    if (rc && failures++ < 10)
      printf("# allocation %ld of %ld failed: code %d at test_oom.c line %d (status %d) "
             "(10 bad answer, 11 inconsistent, 12 drop count, 13 load, 14 output, 20 leak)\n",
             k, total, rc, bad_line, bad_rc);
  }
  printf("# %ld allocations; every %ld-th made to fail; %ld runs dropped spans\n", total, step,
         dropped_runs);
  CHECK_EQ_INT(failures, 0);
  CHECK(step > 1 || dropped_runs > 0); /* the failures did reach starts */
}

/* The profile, each of its allocations failing in turn: NULL or an object,
 * nothing leaked, no undefined behaviour. In a child process: in the
 * sanitizer build (make asan) UBSan stops the process at undefined
 * behaviour, such as `last - first` on the time sentinels when the first
 * allocation failed (csrc/export/profile.c once did that). */
static void profile_oom_body(void) {
  vt_collector *c;
  long k, allocs, bad = 0;
  int64_t d;
  size_t i;
  vt_set_allocator(&counting);
  fail_at = -1;
  count = live = 0;
  c = vt_collector_new();
  if (!c) {
    tap_fail(__FILE__, __LINE__, "a collector");
    return;
  }
  vt_collector_set_enabled(c, 1);
  for (i = 0; i < 6; i++) { /* a step with an llm and a tool call, twice */
    vt_id s = vt_collector_start(c, NULL, VT_STEP, "step", 4, NULL);
    vt_collector_finish(c, vt_collector_start(c, NULL, VT_LLM_CALL, "llm", 3, NULL), &d);
    vt_collector_finish(c, vt_collector_start(c, NULL, VT_TOOL_CALL, "tool", 4, NULL), &d);
    vt_collector_finish(c, s, &d);
  }
  {
    long before = count;
    vt_free(vt_collector_profile(c));
    allocs = count - before;
  }
  for (k = 1; k <= allocs; k++) {
    long before_live = live;
    vt_value *p;
    fail_at = count + k;
    p = vt_collector_profile(c);
    if (p && vt_value_type(p) != VT_OBJ) bad++;
    vt_free(p);
    if (live != before_live) bad++;
  }
  fail_at = -1;
  vt_collector_free(c);
  vt_set_allocator(NULL);
  CHECK(allocs > 0);
  CHECK_EQ_INT(bad, 0);
}

TEST(test_profile_out_of_memory) {
  pid_t pid;
  int status = 0;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    tap_cur_failed = 0;
    profile_oom_body();
    fflush(stdout);
    _exit(tap_cur_failed ? 1 : 0);
  }
  if (pid < 0) {
    profile_oom_body();
    return;
  }
  REQUIRE(waitpid(pid, &status, 0) == pid);
  if (WIFSIGNALED(status)) printf("# the child died of signal %d\n", WTERMSIG(status));
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static const tap_test tests[] = {
    TAP_ENTRY(test_ordinary_run_frees_everything),
    TAP_ENTRY(test_every_failed_allocation_is_answered),
    TAP_ENTRY(test_profile_out_of_memory),
};

int main(void) {
  signal(SIGSEGV, on_crash);
  signal(SIGBUS, on_crash);
  signal(SIGABRT, on_crash);
  memset(big, 'x', sizeof big);
  total = allocations();
  return tap_run(tests, sizeof tests / sizeof tests[0]);
}
