/*
 * util.h: what every part of the C code shares and the public header does
 * not say: branch hints, symbol visibility, the inlined monotonic clock and
 * the array-growing helper. No structures of the span store.
 */
#ifndef VT_UTIL_H
#define VT_UTIL_H

#include <stdint.h>
#include <time.h>

#include "vmtrace.h"

#if defined(__GNUC__)
#define VT_LIKELY(x) __builtin_expect(!!(x), 1)
#define VT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VT_NOINLINE __attribute__((noinline))
#define VT_INLINE inline __attribute__((always_inline))
#else
#define VT_LIKELY(x) (x)
#define VT_UNLIKELY(x) (x)
#define VT_NOINLINE
#define VT_INLINE inline
#endif

/* a + b for counts (b >= 0), held at INT64_MAX rather than past it: token
 * counts come from metadata, any integer a script or a file gives. */
static inline int64_t vt_sat_add(int64_t a, int64_t b) {
  return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* The monotonic clock in ns, inlined on the hot paths (clock.c says how).
 * On x86-64 with an invariant TSC that the kernel itself uses as its clock
 * source, a reading is the TSC scaled to CLOCK_MONOTONIC: a sample of both
 * clocks (an anchor) and the rate between the last two samples, renewed
 * when the reading is past the anchor's interval (1 ms at first, doubling to
 * 100 ms). Elsewhere, or with VMTRACE_CLOCK=monotonic, it is clock_gettime.
 * The anchor is read under a sequence counter: any thread may read it. */
typedef struct vt_tsc_clock {
  unsigned seq;   /* odd while a thread renews the anchor */
  int on;         /* 1: the TSC (or not decided yet), 0: clock_gettime */
  uint64_t tsc;   /* the anchor: a TSC reading */
  int64_t ns;     /* ... and the clock's reading then */
  uint64_t mult;  /* ns per tick, times 2^32 (0: not calibrated) */
  uint64_t limit; /* ticks after the anchor it extrapolates to (0: none) */
} vt_tsc_clock;
extern vt_tsc_clock vt_tsc_g;
int64_t vt_mono_slow(void);

/* The calibration's own state (clock.c, and tests/c with a clock of their own). */
typedef struct vt_tsc_cal {
  uint64_t tsc;        /* the last sample: a TSC reading */
  int64_t ns;          /* ... and CLOCK_MONOTONIC then (0: none yet) */
  int64_t interval_ns; /* until the next anchor */
} vt_tsc_cal;
#define VT_TSC_FIRST_NS 1000000LL    /* the first rate is measured over 1 ms */
#define VT_TSC_MAX_NS 100000000LL    /* an anchor lasts at most 100 ms */
#define VT_TSC_MIN_RENEW_NS 100000LL /* a rate measured over less is not used */
#define VT_TSC_MAX_SKEW_NS 1000000LL /* a TSC off by more restarts the calibration */
#define VT_TSC_PAIR_TICKS 100000u    /* a sample's two TSC readings at most this far apart */

static inline int64_t vt_mono_gettime(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VT_NO_TSC) /* -DVT_NO_TSC: clock_gettime only */
#define VT_HAVE_TSC 1
/* rdtscp, not rdtsc: it reads the counter only once every earlier
 * instruction has run, so a reading comes after the loads before it (with
 * rdtsc a thread could read the counter before it saw another thread's
 * later reading, and give a smaller one: a 32-thread test saw it). */
static inline uint64_t vt_rdtsc(void) {
  unsigned lo, hi, aux;
  __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
  return (uint64_t)hi << 32 | lo;
}

/* rdtsc: the quick reading (vt_mono_ns_quick), about 10 ns less here. The
 * processor may take it before the instructions ahead of it have run. */
static inline uint64_t vt_rdtsc_quick(void) {
  unsigned lo, hi;
  __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return (uint64_t)hi << 32 | lo;
}

/* Tick t read from the anchor: 1 with it in *out when the anchor is whole
 * and covers t (its limit keeps the product in 64 bits). */
static inline int vt_tsc_at(uint64_t t, int64_t *out) {
  uint64_t base, mult, limit;
  int64_t ns;
  unsigned seq = __atomic_load_n(&vt_tsc_g.seq, __ATOMIC_ACQUIRE);
  base = __atomic_load_n(&vt_tsc_g.tsc, __ATOMIC_RELAXED);
  ns = __atomic_load_n(&vt_tsc_g.ns, __ATOMIC_RELAXED);
  mult = __atomic_load_n(&vt_tsc_g.mult, __ATOMIC_RELAXED);
  limit = __atomic_load_n(&vt_tsc_g.limit, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (VT_UNLIKELY(t - base >= limit || __atomic_load_n(&vt_tsc_g.seq, __ATOMIC_RELAXED) != seq ||
                  (seq & 1)))
    return 0;
  *out = ns + (int64_t)(((t - base) * mult) >> 32);
  return 1;
}

/* A reading from the anchor, as vt_tsc_at. */
static inline int vt_tsc_fast(int64_t *out) { return vt_tsc_at(vt_rdtsc(), out); }

static inline int64_t vt_mono_ns(void) {
  int64_t r;
  if (VT_UNLIKELY(!__atomic_load_n(&vt_tsc_g.on, __ATOMIC_RELAXED))) return vt_mono_gettime();
  if (VT_LIKELY(vt_tsc_fast(&r))) return r;
  return vt_mono_slow();
}

/* The quick reading: the same clock, read with rdtsc. It may precede a
 * reading taken before it (this thread's, or another thread's that this
 * thread has seen), by what the processor had in flight: the store keeps a
 * collector's spans in order by its last reading (span_now). */
static inline int64_t vt_mono_ns_quick(void) {
  int64_t r;
  if (VT_UNLIKELY(!__atomic_load_n(&vt_tsc_g.on, __ATOMIC_RELAXED))) return vt_mono_gettime();
  if (VT_LIKELY(vt_tsc_at(vt_rdtsc_quick(), &r))) return r;
  return vt_mono_slow();
}

/* What the anchor k gives at tick tsc (never less than its own reading). */
int64_t vt_tsc_extrapolate(const vt_tsc_clock *k, uint64_t tsc);
/* The same, but no further than its limit: at least every reading this
 * anchor gave before tick tsc, and at most what it may give (what a thread
 * gives without a new anchor). */
int64_t vt_tsc_given(const vt_tsc_clock *k, uint64_t tsc);
/* A new anchor from the sample (tsc, now) of both clocks: the reading to
 * give. The old anchor may have given readings up to tick `cover`. */
int64_t vt_tsc_renew(vt_tsc_clock *k, vt_tsc_cal *cal, uint64_t tsc, int64_t now, uint64_t cover);
#else
static inline int64_t vt_mono_ns(void) { return vt_mono_gettime(); }
static inline int64_t vt_mono_ns_quick(void) { return vt_mono_gettime(); }
#endif

/* Make room for `need` elements of `size` bytes in the array *p of *cap
 * (doubling); 0, leaving it as it was, when out of memory. */
int vt_grow(void **p, size_t *cap, size_t need, size_t size);

/* A copy of len bytes with a NUL after them (vt_free it), or NULL. */
char *vt_memdup(const char *s, size_t len);

#endif
