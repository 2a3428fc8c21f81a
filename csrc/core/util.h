/*
 * util.h: what every part of the C code shares and the public header does
 * not say: branch hints, symbol visibility, the inlined monotonic clock and
 * the array-growing helper. No structures of the span store.
 */
#ifndef VT_UTIL_H
#define VT_UTIL_H

#include <time.h>

#include "vmtrace.h"

#if defined(__GNUC__)
#define VT_LIKELY(x) __builtin_expect(!!(x), 1)
#define VT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define VT_NOINLINE __attribute__((noinline))
#else
#define VT_LIKELY(x) (x)
#define VT_UNLIKELY(x) (x)
#define VT_NOINLINE
#endif

/* The monotonic clock in ns, inlined on the hot paths. */
static inline int64_t vt_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Make room for `need` elements of `size` bytes in the array *p of *cap
 * (doubling); 0, leaving it as it was, when out of memory. */
int vt_grow(void **p, size_t *cap, size_t need, size_t size);

/* A copy of len bytes with a NUL after them (vt_free it), or NULL. */
char *vt_memdup(const char *s, size_t len);

#endif
