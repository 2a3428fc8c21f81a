/*
 * clock.c: the monotonic and wall clocks, and the collector's mock clock stack
 * (the seed's clock_mock: mocks nest, the innermost is active, advancing moves
 * its wall and monotonic readings together).
 *
 * The monotonic clock reads the TSC where that is safe (util.h): a reading
 * is the last anchor (a TSC reading and CLOCK_MONOTONIC's reading taken
 * together) plus the ticks since, at the rate measured between the last two
 * anchors. A reading past the anchor's interval takes a new anchor here. The
 * rules, in vt_tsc_renew:
 *  - the readings never go back, whichever thread reads: a new anchor is at
 *    least what the old one gives for the same tick;
 *  - when the readings run ahead of CLOCK_MONOTONIC, the rate until the next
 *    anchor is lowered so that they meet it again there;
 *  - a TSC that jumps (a virtual machine moved, a suspended host) by more
 *    than VT_TSC_MAX_SKEW_NS restarts the calibration, during which readings
 *    are CLOCK_MONOTONIC's (never below the last one given);
 *  - a sample whose two TSC readings are far apart (the thread was
 *    interrupted between them) is taken again, up to 8 times.
 * The TSC is used only when it is invariant and read with rdtscp (CPUID),
 * the kernel itself keeps time with it (its clock source is "tsc": it has
 * checked that the TSC runs alike on every CPU), and not with
 * VMTRACE_CLOCK=monotonic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include "core.h"
#if defined(VT_HAVE_TSC)
#include <cpuid.h>
#endif

int64_t vt_clock_mono_ns(void) { return vt_mono_ns(); }
int64_t vt_clock_mono_ns_quick(void) { return vt_mono_ns_quick(); }

vt_tsc_clock vt_tsc_g = {0, 1, 0, 0, 0, 0};

#if defined(VT_HAVE_TSC)
__extension__ typedef unsigned __int128 vt_u128;

enum { TSC_UNDECIDED, TSC_DECIDING, TSC_DECIDED };
static int tsc_decided = TSC_UNDECIDED;
static vt_tsc_cal tsc_cal; /* the writer's side, under vt_tsc_g.seq */

int64_t vt_tsc_extrapolate(const vt_tsc_clock *k, uint64_t tsc) {
  if (!k->mult || tsc <= k->tsc) return k->ns;
  return k->ns + (int64_t)(((vt_u128)(tsc - k->tsc) * k->mult) >> 32);
}

int64_t vt_tsc_given(const vt_tsc_clock *k, uint64_t tsc) {
  if (tsc <= k->tsc) return k->ns; /* from before the anchor (its thread waited) */
  if (k->limit && tsc - k->tsc > k->limit) tsc = k->tsc + k->limit;
  return vt_tsc_extrapolate(k, tsc);
}

int64_t vt_tsc_renew(vt_tsc_clock *k, vt_tsc_cal *cal, uint64_t tsc, int64_t now, uint64_t cover) {
  uint64_t last = cover > tsc ? cover : tsc; /* the last tick the old anchor may have read */
  /* its rate carried on (a jump shows against the clock) and, within its
   * limit, the most it gave: after a thread idled past the limit the new
   * anchor starts from the clock, not from an extrapolation over the idle */
  int64_t floor = vt_tsc_extrapolate(k, last), reached = vt_tsc_given(k, last),
          at = now > reached ? now : reached, elapsed, ahead;
  vt_u128 mult;
  uint64_t ticks;
  if (cal->ns && now <= cal->ns) { /* a sample from before the last one (its thread waited) */
    int64_t given = vt_tsc_given(k, tsc);
    return now > given ? now : given;
  }
  if (k->mult && (floor - now > VT_TSC_MAX_SKEW_NS || now - floor > VT_TSC_MAX_SKEW_NS))
    cal->ns = 0; /* the TSC jumped: measure its rate again */
  if (!cal->ns || tsc <= cal->tsc) { /* (re)start: CLOCK_MONOTONIC until a rate is known */
    cal->tsc = tsc;
    cal->ns = now;
    cal->interval_ns = VT_TSC_FIRST_NS;
    k->tsc = tsc;
    k->ns = at;
    k->mult = 0;
    k->limit = 0;
    return at;
  }
  elapsed = now - cal->ns;
  if (elapsed < (k->mult ? VT_TSC_MIN_RENEW_NS : cal->interval_ns)) { /* too soon to measure */
    if (k->mult) k->tsc = tsc; /* the same rate from here */
    k->ns = at;                /* the highest reading given */
    return at;
  }
  mult = ((vt_u128)elapsed << 32) / (tsc - cal->tsc);
  if (!mult) mult = 1;
  cal->tsc = tsc;
  cal->ns = now;
  if (k->mult && cal->interval_ns < VT_TSC_MAX_NS) cal->interval_ns *= 2;
  if (cal->interval_ns > VT_TSC_MAX_NS) cal->interval_ns = VT_TSC_MAX_NS;
  ticks = (uint64_t)(((vt_u128)cal->interval_ns << 32) / mult);
  if (!ticks) ticks = 1;
  ahead = at - now; /* the readings are ahead of the clock: meet it at the next anchor */
  if (ahead > 0) {
    vt_u128 less = ((vt_u128)ahead << 32) / ticks;
    mult = less < mult / 2 ? mult - less : mult / 2;
  }
  k->tsc = tsc;
  k->ns = at;
  k->mult = (uint64_t)mult;
  k->limit = ticks;
  return at;
}

/* Invariant TSC, and the kernel keeps time with it. */
static int tsc_usable(void) {
  unsigned a, b, c, d;
  char src[32] = "";
  FILE *f;
  const char *env = getenv("VMTRACE_CLOCK");
  if (env && strcmp(env, "monotonic") == 0) return 0;
  if (!__get_cpuid(0x80000000u, &a, &b, &c, &d) || a < 0x80000007u) return 0;
  __get_cpuid(0x80000007u, &a, &b, &c, &d);
  if (!(d & (1u << 8))) return 0; /* invariant TSC */
  __get_cpuid(0x80000001u, &a, &b, &c, &d);
  if (!(d & (1u << 27))) return 0; /* rdtscp */
  f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
  if (!f) return 0;
  if (!fgets(src, sizeof src, f)) src[0] = 0;
  fclose(f);
  return strcmp(src, "tsc\n") == 0;
}

/* In a child of fork: a thread of the parent may have held the lock, and is
 * not here to release it. The child measures the rate again. */
static void tsc_after_fork(void) {
  unsigned seq = __atomic_load_n(&vt_tsc_g.seq, __ATOMIC_RELAXED);
  vt_tsc_g.ns = vt_tsc_given(&vt_tsc_g, vt_rdtsc()); /* no reading below the parent's */
  vt_tsc_g.mult = 0;
  vt_tsc_g.limit = 0;
  tsc_cal.ns = 0;
  __atomic_store_n(&vt_tsc_g.seq, (seq | 1u) + 1, __ATOMIC_RELEASE);
}

static void tsc_decide(void) {
  int expect = TSC_UNDECIDED;
  if (!__atomic_compare_exchange_n(&tsc_decided, &expect, TSC_DECIDING, 0, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE))
    return; /* decided, or another thread is deciding */
  if (!tsc_usable() || pthread_atfork(NULL, NULL, tsc_after_fork) != 0)
    __atomic_store_n(&vt_tsc_g.on, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&tsc_decided, TSC_DECIDED, __ATOMIC_RELEASE);
}

static void tsc_wait(int *spins) {
  if (++*spins % 64) __builtin_ia32_pause();
  else sched_yield(); /* the thread renewing it was preempted */
}

/* Past the anchor's limit, or before any: take the lock (an odd sequence
 * number), sample both clocks, renew the anchor. A thread that finds the
 * lock taken waits for the new anchor (renewing takes about 100 ns). */
int64_t vt_mono_slow(void) {
  int spins = 0;
  if (VT_UNLIKELY(__atomic_load_n(&tsc_decided, __ATOMIC_ACQUIRE) != TSC_DECIDED)) {
    tsc_decide();
    if (__atomic_load_n(&tsc_decided, __ATOMIC_ACQUIRE) != TSC_DECIDED) return vt_mono_gettime();
  }
  if (!__atomic_load_n(&vt_tsc_g.on, __ATOMIC_RELAXED)) return vt_mono_gettime();
  for (;;) {
    vt_tsc_clock k;
    uint64_t ta, tb;
    int64_t now, at, out;
    int tries = 0;
    unsigned seq = __atomic_load_n(&vt_tsc_g.seq, __ATOMIC_ACQUIRE);
    if (seq & 1) {
      tsc_wait(&spins);
      continue;
    }
    if (vt_tsc_fast(&out)) return out; /* another thread renewed it */
    if (!__atomic_compare_exchange_n(&vt_tsc_g.seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
      tsc_wait(&spins);
      continue;
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    k.tsc = vt_tsc_g.tsc;
    k.ns = vt_tsc_g.ns;
    k.mult = vt_tsc_g.mult;
    k.limit = vt_tsc_g.limit;
    do { /* a sample not interrupted between its readings */
      ta = vt_rdtsc();
      now = vt_mono_gettime();
      tb = vt_rdtsc();
    } while (tb - ta > VT_TSC_PAIR_TICKS && ++tries < 8);
    /* readings of the old anchor were taken before the lock; a TSC reading
     * may run a little late, so they are covered up to tb plus a margin */
    at = vt_tsc_renew(&k, &tsc_cal, ta + (tb - ta) / 2, now, tb + VT_TSC_PAIR_TICKS / 16);
    __atomic_store_n(&vt_tsc_g.tsc, k.tsc, __ATOMIC_RELAXED);
    __atomic_store_n(&vt_tsc_g.ns, k.ns, __ATOMIC_RELAXED);
    __atomic_store_n(&vt_tsc_g.mult, k.mult, __ATOMIC_RELAXED);
    __atomic_store_n(&vt_tsc_g.limit, k.limit, __ATOMIC_RELAXED);
    __atomic_store_n(&vt_tsc_g.seq, seq + 2, __ATOMIC_RELEASE);
    return at;
  }
}
#else
int64_t vt_mono_slow(void) {
  return vt_mono_gettime();
}
#endif

const char *vt_clock_source(void) {
#if defined(VT_HAVE_TSC)
  if (__atomic_load_n(&tsc_decided, __ATOMIC_ACQUIRE) != TSC_DECIDED) (void)vt_mono_ns();
  if (__atomic_load_n(&tsc_decided, __ATOMIC_ACQUIRE) != TSC_DECIDED) return "monotonic";
  return __atomic_load_n(&vt_tsc_g.on, __ATOMIC_RELAXED) ? "tsc" : "monotonic";
#else
  return "monotonic";
#endif
}

int64_t vt_clock_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int vt_collector_mock_push(vt_collector *c, int64_t wall_ms) {
  if (wall_ms < 0 || wall_ms >= VT_MAX_TIME_MS) return VT_EINVAL;
  if (!vt_grow((void **)&c->mocks, &c->capmocks, c->nmocks + 1, sizeof *c->mocks))
    return VT_ENOMEM;
  c->mocks[c->nmocks].wall_ms = wall_ms;
  c->mocks[c->nmocks].mono_ms = 0;
  c->nmocks++;
  return VT_OK;
}

int vt_collector_mock_advance(vt_collector *c, int64_t ms, int64_t *wall_ms) {
  vt_mock *m;
  if (!c->nmocks) return VT_ENOMOCK;
  m = &c->mocks[c->nmocks - 1];
  if (ms < 0 || ms >= VT_MAX_TIME_MS - m->wall_ms) return VT_EINVAL;
  m->wall_ms += ms;
  m->mono_ms += ms;
  if (wall_ms) *wall_ms = m->wall_ms;
  return VT_OK;
}

int vt_collector_mock_pop(vt_collector *c) {
  if (!c->nmocks) return VT_ENOMOCK;
  c->nmocks--;
  return VT_OK;
}

int vt_collector_mocked(const vt_collector *c) { return c->nmocks > 0; }

int64_t vt_collector_now_ms(const vt_collector *c) {
  if (c->nmocks) return c->mocks[c->nmocks - 1].wall_ms;
  return vt_clock_wall_ns() / 1000000;
}

int64_t vt_collector_monotonic_ms(const vt_collector *c) {
  if (c->nmocks) return c->mocks[c->nmocks - 1].mono_ms;
  return (vt_clock_mono_ns() - c->epoch_ns) / 1000000;
}
