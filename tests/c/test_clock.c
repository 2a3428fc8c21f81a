/*
 * test_clock.c: the monotonic clock (csrc/core/clock.c). Its calibration
 * (vt_tsc_renew) is driven here with a TSC of the test's own, at rates and
 * jumps chosen by the test; the clock itself is read from several threads
 * against CLOCK_MONOTONIC.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/util.h"
#include "tap.h"

#if defined(VT_HAVE_TSC)

/* A clock as one thread sees it: the fast path of vt_mono_ns (util.h) within
 * the anchor's limit, a new anchor past it. */
typedef struct sim {
  vt_tsc_clock k;
  vt_tsc_cal cal;
  int64_t last;     /* the last reading */
  long backwards;   /* readings below the one before */
  long renewals;
  int64_t max_err;  /* |reading - true| at most, after the first 10 ms */
  int64_t start_ns; /* the true time of the first reading */
} sim;

static int64_t sim_read(sim *s, uint64_t tsc, int64_t true_ns, int64_t noise) {
  int64_t r, err;
  if (s->k.limit && tsc - s->k.tsc < s->k.limit) {
    r = vt_tsc_extrapolate(&s->k, tsc); /* within the limit: what vt_tsc_fast gives */
  } else {
    r = vt_tsc_renew(&s->k, &s->cal, tsc, true_ns + noise, tsc);
    s->renewals++;
  }
  if (!s->start_ns) s->start_ns = true_ns;
  if (r < s->last) s->backwards++;
  s->last = r;
  err = r > true_ns ? r - true_ns : true_ns - r;
  if (true_ns - s->start_ns > 10000000 && err > s->max_err) s->max_err = err;
  return r;
}

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void) { /* xorshift64 */
  rnd_state ^= rnd_state << 13;
  rnd_state ^= rnd_state >> 7;
  rnd_state ^= rnd_state << 17;
  return rnd_state;
}

/* A TSC of `ghz` ticks per ns: ten simulated minutes of readings 1 us to
 * 5 ms apart, each sample of CLOCK_MONOTONIC off by up to 50 ns. */
static void run_steady(sim *s, double ghz, int64_t minutes) {
  int64_t ns = 1000000000, end = ns + minutes * 60 * 1000000000LL;
  uint64_t base = 123456789;
  while (ns < end) {
    sim_read(s, base + (uint64_t)((double)ns * ghz), ns, (int64_t)(rnd() % 101) - 50);
    ns += 1000 + (int64_t)(rnd() % 5000000);
  }
}

TEST(test_tsc_follows_the_clock) {
  sim s;
  memset(&s, 0, sizeof s);
  run_steady(&s, 3.0, 10);
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.max_err <= 2000); /* 2 us: the samples' noise, not growing */
  /* an anchor lasts 100 ms at most: about 6,000 in ten minutes, not one per reading */
  CHECK(s.renewals > 5000 && s.renewals < 9000);
  printf("# 3 GHz, 10 min: max error %lld ns, %ld anchors\n", (long long)s.max_err, s.renewals);
  memset(&s, 0, sizeof s);
  run_steady(&s, 0.1, 1); /* a slow TSC: 100 MHz */
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.max_err <= 2000);
}

/* The clock's rate against the TSC changes by 300 ppm (NTP slewing it):
 * the error stays within what one anchor's interval allows (30 us), and is
 * back to the noise two anchors later. */
TEST(test_tsc_follows_a_rate_change) {
  sim s;
  int64_t ns = 1000000000, change = ns + 60000000000LL, end = change + 60000000000LL;
  uint64_t tsc = 1000;
  int64_t late_err = 0;
  memset(&s, 0, sizeof s);
  while (ns < end) {
    int64_t step = 1000 + (int64_t)(rnd() % 2000000), r, err;
    ns += step;
    tsc += (uint64_t)((double)step * (ns < change ? 2.5 : 2.5 * 1.0003));
    r = sim_read(&s, tsc, ns, 0);
    err = r > ns ? r - ns : ns - r;
    if (ns > change + 400000000 && err > late_err) late_err = err;
  }
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.max_err <= 31000);
  CHECK(late_err <= 2000);
  printf("# 300 ppm change: max error %lld ns, %lld ns after 400 ms\n", (long long)s.max_err,
         (long long)late_err);
}

/* The TSC jumps (a virtual machine moved to another host, a resume): forward
 * by 10 s, then back by 10 s. The readings never go back, stay within one
 * anchor's interval of the clock, and follow it again once recalibrated. */
TEST(test_tsc_jumps) {
  sim s;
  int64_t ns = 1000000000, jump1 = ns + 5000000000LL, jump2 = jump1 + 5000000000LL,
          end = jump2 + 5000000000LL, worst_after = 0;
  uint64_t off = 0;
  int j1 = 0, j2 = 0;
  memset(&s, 0, sizeof s);
  while (ns < end) {
    int64_t r, err;
    ns += 1000 + (int64_t)(rnd() % 3000000);
    if (!j1 && ns >= jump1) off += 30000000000ull, j1 = 1; /* +10 s at 3 GHz */
    if (!j2 && ns >= jump2) off -= 30000000000ull, j2 = 1;
    r = sim_read(&s, (uint64_t)ns * 3 + off + 77, ns, 0);
    err = r > ns ? r - ns : ns - r;
    if ((ns > jump1 + 300000000 && ns < jump2) || ns > jump2 + 300000000)
      if (err > worst_after) worst_after = err;
  }
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.max_err <= VT_TSC_MAX_NS + 1000); /* a stall of at most one interval */
  CHECK(worst_after <= 2000);
  printf("# jumps: max error %lld ns, %lld ns 300 ms after each\n", (long long)s.max_err,
         (long long)worst_after);
}

/* A TSC that stops (reads the same) or a thread that reads no clock for an
 * hour: no division by zero, no overflow, the readings go on. */
TEST(test_tsc_stops_and_idles) {
  sim s;
  int64_t ns = 1000000000;
  int i;
  memset(&s, 0, sizeof s);
  for (i = 0; i < 1000; i++, ns += 50000) sim_read(&s, 5000, ns, 0); /* stopped */
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.last >= ns - 50000 - VT_TSC_MAX_SKEW_NS);
  memset(&s, 0, sizeof s);
  for (i = 0; i < 1000; i++, ns += 300000) sim_read(&s, (uint64_t)ns * 2, ns, 0);
  ns += 3600 * 1000000000LL; /* an hour without a reading */
  sim_read(&s, (uint64_t)ns * 2, ns, 0);
  CHECK_EQ_INT(s.backwards, 0);
  CHECK(s.last >= ns - 1000 && s.last <= ns + 1000);
}

/* Noisy samples (each CLOCK_MONOTONIC reading off by up to 16 us, as a sample pair allows), then
 * reads 10 s apart: the anchor after an idle starts from the clock, not from
 * the old rate carried over the idle (which put readings up to 960 us
 * ahead, just under the jump threshold). */
TEST(test_tsc_idle_gaps) {
  sim s;
  int64_t ns = 1000000000, worst = 0;
  int i;
  memset(&s, 0, sizeof s);
  for (i = 0; i < 4000; i++, ns += 300000)
    sim_read(&s, (uint64_t)ns * 3, ns, (int64_t)(rnd() % 32001) - 16000);
  for (i = 0; i < 20; i++) {
    int64_t r, err;
    ns += 10000000000LL;
    r = vt_tsc_renew(&s.k, &s.cal, (uint64_t)ns * 3, ns + (int64_t)(rnd() % 32001) - 16000,
                     (uint64_t)ns * 3);
    err = r > ns ? r - ns : ns - r;
    if (err > worst) worst = err;
    CHECK(r >= s.last);
    s.last = r;
  }
  CHECK(worst <= 25000); /* the noise of one sample; the old rate over 10 s gave 39 us here */
  printf("# 10 s idles, 16 us noise: first reading after each at most %lld ns off\n", (long long)worst);
}

/* A thread that took its sample, then waited while others renewed the
 * anchor: its old sample neither moves the anchor nor gives a reading past
 * the clock (the real clock once gave readings up to an interval ahead). */
TEST(test_tsc_stale_sample) {
  sim s;
  vt_tsc_clock before;
  int64_t ns = 1000000000, r;
  int i;
  memset(&s, 0, sizeof s);
  for (i = 0; i < 2000; i++, ns += 100000) sim_read(&s, (uint64_t)ns * 2, ns, 0);
  REQUIRE(s.k.mult != 0 && s.k.limit != 0);
  before = s.k;
  /* a reading from before the anchor: the anchor's own, not its limit's */
  CHECK(vt_tsc_given(&s.k, s.k.tsc - 1000) == s.k.ns);
  CHECK(vt_tsc_given(&s.k, s.k.tsc + s.k.limit / 2) < s.k.ns + VT_TSC_MAX_NS);
  r = vt_tsc_renew(&s.k, &s.cal, s.k.tsc - 4000, s.k.ns - 2000, s.k.tsc - 4000);
  CHECK(r == before.ns);
  CHECK(s.k.tsc == before.tsc && s.k.ns == before.ns && s.k.mult == before.mult);
}

#endif

/* The real clock, from four threads: never backwards in a thread, and
 * within 1 ms of CLOCK_MONOTONIC read beside it. */
typedef struct reader {
  long backwards, far;
  int64_t worst;
} reader;

static int64_t (*read_clock_fn)(void) = vt_clock_mono_ns;

static void *read_clock(void *arg) {
  reader *r = arg;
  int64_t last = 0, end = vt_mono_gettime() + 300000000;
  for (;;) {
    int64_t before = vt_mono_gettime(), t = read_clock_fn(), after = vt_mono_gettime(), off = 0;
    if (t < last) r->backwards++;
    last = t;
    if (t < before) off = before - t;
    if (t > after) off = t - after;
    if (off > r->worst) r->worst = off;
    if (off > 1000000 && r->far++ == 0)
      printf("# far: CLOCK_MONOTONIC %lld, then the clock %lld, then CLOCK_MONOTONIC %lld\n",
             (long long)before, (long long)t, (long long)after);
    if (after > end) break;
  }
  return NULL;
}

TEST(test_clock_from_threads) {
  pthread_t th[4];
  reader rd[4];
  int i;
  const char *src = vt_clock_source();
  memset(rd, 0, sizeof rd);
  for (i = 0; i < 4; i++) REQUIRE(pthread_create(&th[i], NULL, read_clock, &rd[i]) == 0);
  for (i = 0; i < 4; i++) pthread_join(th[i], NULL);
  for (i = 0; i < 4; i++) {
    CHECK_EQ_INT(rd[i].backwards, 0);
    CHECK_EQ_INT(rd[i].far, 0);
  }
  CHECK(strcmp(src, "tsc") == 0 || strcmp(src, "monotonic") == 0);
  printf("# source %s; worst offset from CLOCK_MONOTONIC %lld ns\n", src, (long long)rd[0].worst);
}

/* The quick reading (rdtsc) is the same clock: from four threads, never
 * backwards in a thread, within 1 ms of CLOCK_MONOTONIC; and back to back,
 * with nothing between two readings, never backwards either. */
TEST(test_clock_quick_from_threads) {
  pthread_t th[4];
  reader rd[4];
  int64_t last, t;
  long i, back = 0;
  memset(rd, 0, sizeof rd);
  read_clock_fn = vt_clock_mono_ns_quick;
  for (i = 0; i < 4; i++) REQUIRE(pthread_create(&th[i], NULL, read_clock, &rd[i]) == 0);
  for (i = 0; i < 4; i++) pthread_join(th[i], NULL);
  read_clock_fn = vt_clock_mono_ns;
  for (i = 0; i < 4; i++) {
    CHECK_EQ_INT(rd[i].backwards, 0);
    CHECK_EQ_INT(rd[i].far, 0);
  }
  last = vt_clock_mono_ns_quick();
  for (i = 0; i < 2000000; i++) {
    t = vt_clock_mono_ns_quick();
    if (t < last) back++;
    last = t;
  }
  CHECK_EQ_INT(back, 0);
  printf("# worst offset of the quick reading from CLOCK_MONOTONIC %lld ns\n", (long long)rd[0].worst);
}

/* Spans read with the quick clock (VT_START_QUICK, vt_collector_finish_quick,
 * as vmtrace.auto's): on the fast paths and the general ones; no quick start
 * or end below the collector's last reading of a start, an end or an event,
 * so its spans stay in order (here that mark is moved 5 s ahead, beyond any
 * real reading, to see it; an ordered reading then comes below it). */
TEST(test_quick_spans_keep_order) {
  vt_collector *c = vt_collector_new();
  vt_start_args a;
  vt_span_view v;
  vt_link ln;
  vt_id outer, inner, linked, plain;
  int64_t dur = -1, mark, outer_start;
  REQUIRE(c != NULL);
  vt_collector_set_enabled(c, 1);
  memset(&a, 0, sizeof a);
  a.flags = VT_START_QUICK;
  outer = vt_collector_start(c, NULL, VT_FN_CALL, "outer", 5, &a);
  REQUIRE(outer != 0);
  REQUIRE(vt_collector_get(c, outer, &v) == VT_OK);
  CHECK(v.start_ns >= 0 && v.start_ns == c->last_ns);
  outer_start = v.start_ns;
  mark = c->last_ns = v.start_ns + 5000 * 1000000LL;
  inner = vt_collector_start(c, NULL, VT_FN_CALL, "inner", 5, &a); /* the fast path */
  REQUIRE(vt_collector_get(c, inner, &v) == VT_OK);
  CHECK_EQ_INT(v.start_ns, mark);
  memset(&ln, 0, sizeof ln); /* a link: the general path */
  ln.trace_id = "0af7651916cd43dd8448eb211c80319c";
  ln.trace_id_len = 32;
  ln.span_id = "b7ad6b7169203331";
  ln.span_id_len = 16;
  a.links = &ln;
  a.nlinks = 1;
  linked = vt_collector_start(c, NULL, VT_FN_CALL, "linked", 6, &a);
  REQUIRE(linked != 0);
  REQUIRE(vt_collector_get(c, linked, &v) == VT_OK);
  CHECK_EQ_INT(v.start_ns, mark);
  plain = vt_collector_start(c, NULL, VT_FN_CALL, "plain", 5, NULL);
  REQUIRE(vt_collector_get(c, plain, &v) == VT_OK);
  CHECK(v.start_ns < mark); /* an ordered reading is the clock's (never below a real one) */
  CHECK_EQ_INT(c->last_ns, v.start_ns); /* ... and the new mark */
  c->last_ns = mark;
  CHECK_EQ_INT(vt_collector_finish_quick(c, plain, &dur), VT_OK); /* the fast finish */
  CHECK_EQ_INT(dur, mark - v.start_ns);
  CHECK_EQ_INT(vt_collector_finish_quick(c, inner, &dur), VT_OK); /* not its stack's top: finish_any */
  CHECK_EQ_INT(dur, 0);
  CHECK_EQ_INT(vt_collector_finish_quick(c, linked, &dur), VT_OK);
  CHECK_EQ_INT(dur, 0);
  CHECK_EQ_INT(vt_collector_finish_quick(c, outer, &dur), VT_OK);
  CHECK_EQ_INT(dur, mark - outer_start);
  CHECK_EQ_INT(vt_collector_finish_quick(c, outer, &dur), VT_ENOTFOUND); /* done already */
  CHECK_EQ_INT(vt_collector_finish_quick(c, 0, &dur), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_finish_quick(c, 999, NULL), VT_ENOTFOUND);
  { /* an event's reading is a mark too: a quick end after it is not before it */
    vt_id ev = vt_collector_start(c, NULL, VT_FN_CALL, "ev", 2, &a);
    vt_span_view e;
    REQUIRE(ev != 0);
    REQUIRE(vt_collector_get(c, ev, &e) == VT_OK);
    CHECK_EQ_INT(e.start_ns, mark);
    c->last_ns = 0;
    CHECK_EQ_INT(vt_collector_record_event(c, ev, "exception", 9, NULL), VT_OK);
    CHECK(c->last_ns > 0); /* the event's reading set it */
    c->last_ns += 5000 * 1000000LL; /* as if the event had been read 5 s later */
    CHECK_EQ_INT(vt_collector_finish_quick(c, ev, &dur), VT_OK);
    CHECK_EQ_INT(dur, c->last_ns - e.start_ns);
  }
  vt_collector_reset(c); /* a new epoch: the mark starts again */
  CHECK_EQ_INT(c->last_ns, 0);
  a.nlinks = 0;
  outer = vt_collector_start(c, NULL, VT_FN_CALL, "after", 5, &a);
  REQUIRE(vt_collector_get(c, outer, &v) == VT_OK);
  CHECK(v.start_ns < 1000 * 1000000LL);
  vt_collector_free(c);
}

/* Causality across threads: a reading taken after a thread has seen
 * another thread's reading is not smaller. Nothing between the two (a
 * clock_gettime call would order them and hide the fault): with plain rdtsc
 * the counter could be read before the earlier load, and 59 runs of 60 gave
 * readings up to 3 us back. */
static int64_t causal_max;
static long causal_bad;
static pthread_barrier_t causal_bar;

static void *read_causal(void *arg) {
  int i;
  (void)arg;
  pthread_barrier_wait(&causal_bar);
  for (i = 0; i < 20000; i++) {
    int64_t seen = __atomic_load_n(&causal_max, __ATOMIC_ACQUIRE), t = vt_clock_mono_ns(),
            o = __atomic_load_n(&causal_max, __ATOMIC_RELAXED);
    if (t < seen) __atomic_add_fetch(&causal_bad, 1, __ATOMIC_RELAXED);
    while (t > o && !__atomic_compare_exchange_n(&causal_max, &o, t, 0, __ATOMIC_RELEASE,
                                                 __ATOMIC_RELAXED)) {
    }
    if (i % 97 == 0) sched_yield();
  }
  return NULL;
}

TEST(test_clock_causal_across_threads) {
  enum { N = 32 };
  pthread_t th[N];
  int i, round;
  for (round = 0; round < 3; round++) {
    REQUIRE(pthread_barrier_init(&causal_bar, NULL, N) == 0);
    for (i = 0; i < N; i++) REQUIRE(pthread_create(&th[i], NULL, read_causal, NULL) == 0);
    for (i = 0; i < N; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&causal_bar);
  }
  CHECK_EQ_INT(causal_bad, 0);
}

#if defined(VT_HAVE_TSC)
/* fork while another thread renews the anchor (its lock taken, shown here
 * by an odd sequence number): the child, without that thread, still reads
 * the clock, and it goes on from the parent's readings. */
TEST(test_clock_fork_during_renewal) {
  pid_t pid;
  int status = -1;
  unsigned seq;
  int64_t before = vt_clock_mono_ns();
  REQUIRE(strcmp(vt_clock_source(), "tsc") == 0 || strcmp(vt_clock_source(), "monotonic") == 0);
  seq = __atomic_fetch_add(&vt_tsc_g.seq, 1, __ATOMIC_ACQ_REL); /* as a renewing thread */
  REQUIRE((seq & 1) == 0);
  pid = fork();
  if (pid == 0) {
    int64_t a = vt_clock_mono_ns(), b = vt_clock_mono_ns();
    alarm(0);
    _exit(a >= before && b >= a ? 0 : 1);
  }
  __atomic_store_n(&vt_tsc_g.seq, seq, __ATOMIC_RELEASE); /* released, as that thread would */
  REQUIRE(pid > 0);
  {
    int i;
    struct timespec ms10 = {0, 10000000};
    for (i = 0; i < 500 && waitpid(pid, &status, WNOHANG) == 0; i++) nanosleep(&ms10, NULL);
    if (i == 500) { /* hung: the child spins on the parent's lock */
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#endif

/* VMTRACE_CLOCK=monotonic: clock_gettime, said by vt_clock_source (the
 * decision is taken at the first reading, so in a fresh process). */
TEST(test_clock_env_monotonic) {
  char cmd[512];
  FILE *p;
  char out[64] = "";
  const char *self = getenv("VT_TEST_CLOCK_SELF");
  REQUIRE(self != NULL);
  snprintf(cmd, sizeof cmd, "VMTRACE_CLOCK=monotonic %s --source", self);
  p = popen(cmd, "r");
  REQUIRE(p != NULL);
  if (!fgets(out, sizeof out, p)) out[0] = 0;
  pclose(p);
  CHECK(strcmp(out, "monotonic\n") == 0);
}

static const tap_test tests[] = {
#if defined(VT_HAVE_TSC)
    TAP_ENTRY(test_tsc_follows_the_clock),
    TAP_ENTRY(test_tsc_follows_a_rate_change),
    TAP_ENTRY(test_tsc_jumps),
    TAP_ENTRY(test_tsc_stops_and_idles),
    TAP_ENTRY(test_tsc_stale_sample),
    TAP_ENTRY(test_tsc_idle_gaps),
#endif
    TAP_ENTRY(test_clock_from_threads),
    TAP_ENTRY(test_clock_quick_from_threads),
    TAP_ENTRY(test_quick_spans_keep_order),
    TAP_ENTRY(test_clock_causal_across_threads),
#if defined(VT_HAVE_TSC)
    TAP_ENTRY(test_clock_fork_during_renewal),
#endif
    TAP_ENTRY(test_clock_env_monotonic),
};

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--source") == 0) {
    (void)vt_clock_mono_ns();
    printf("%s\n", vt_clock_source());
    return 0;
  }
  setenv("VT_TEST_CLOCK_SELF", argv[0], 1);
  return tap_run(tests, sizeof tests / sizeof tests[0]);
}
