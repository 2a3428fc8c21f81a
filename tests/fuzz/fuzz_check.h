/*
 * fuzz_check.h: how a fuzz harness checks its properties and reports one it
 * found violated. Under libFuzzer a violation prints its reason and aborts,
 * so the fuzzer keeps the input as a crash; replay.c (the regression tests
 * run by make test) turns aborting off, runs an input, and asks
 * vt_fuzz_check_failed whether every property held: a file that broke one
 * is a failed test that names it, and so is a file on which nothing was
 * checked. Include it in the harness; replay.c defines VT_FUZZ_NO_IMPL
 * first and gets the declarations alone.
 */
#ifndef VT_FUZZ_CHECK_H
#define VT_FUZZ_CHECK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

/* Properties violated since the last call (0: none); the first one's reason
 * is copied into reason, and *checks gets how many were checked. Resets. */
int vt_fuzz_check_failed(char *reason, size_t size, unsigned long *checks);
/* 1 (the default): abort on a violation, as libFuzzer needs; 0: count it. */
void vt_fuzz_set_abort(int on);
/* Record a violated property: where, and what (printf-style). */
void vt_fuzz_fail(const char *file, int line, const char *fmt, ...);
/* Count a property checked. */
void vt_fuzz_checked(void);

/* Check a property (cond), and say what it was when it does not hold. */
#define FUZZ_CHECK(cond)                                        \
  do {                                                          \
    vt_fuzz_checked();                                          \
    if (!(cond)) vt_fuzz_fail(__FILE__, __LINE__, "%s", #cond); \
  } while (0)
/* The same with a message of its own (printf-style, at least one value). */
#define FUZZ_CHECKF(cond, ...)                                     \
  do {                                                             \
    vt_fuzz_checked();                                             \
    if (!(cond)) vt_fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);    \
  } while (0)

#ifndef VT_FUZZ_NO_IMPL
static int fuzz_abort = 1;
static int fuzz_failed;
static unsigned long fuzz_checks;
static char fuzz_reason[512];

void vt_fuzz_checked(void) { fuzz_checks++; }

void vt_fuzz_fail(const char *file, int line, const char *fmt, ...) {
  if (!fuzz_failed++) {
    va_list ap;
    int n = snprintf(fuzz_reason, sizeof fuzz_reason, "%s:%d: ", file, line);
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof fuzz_reason)
      vsnprintf(fuzz_reason + n, sizeof fuzz_reason - (size_t)n, fmt, ap);
    va_end(ap);
  }
  if (fuzz_abort) {
    fprintf(stderr, "property violated: %s\n", fuzz_reason);
    abort();
  }
}

void vt_fuzz_set_abort(int on) { fuzz_abort = on; }

int vt_fuzz_check_failed(char *reason, size_t size, unsigned long *checks) {
  int n = fuzz_failed;
  if (size) snprintf(reason, size, "%s", n ? fuzz_reason : "");
  if (checks) *checks = fuzz_checks;
  fuzz_failed = 0;
  fuzz_checks = 0;
  fuzz_reason[0] = '\0';
  return n;
}
#endif

#endif
