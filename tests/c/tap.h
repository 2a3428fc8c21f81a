/*
 * tap.h: a header-only TAP harness for the C unit tests.
 *
 * Each test is a `TEST(name)` function listed in a `tap_test` table that main
 * hands to tap_run(). A test prints one line, `ok N - name` or
 * `not ok N - name`; each failed check adds a `# file:line: failed: expr`
 * diagnostic. CHECK* record a failure and go on; REQUIRE records it and ends
 * the test (use it where later checks would read through a failed result).
 * The plan line `1..N` comes last; tap_run returns 1 if any test failed.
 *
 * A test that hits a known bug of the core calls KNOWN_BUG("what") first: it
 * still runs (its diagnostics are printed), but reports
 * `ok N - name # SKIP csrc bug: what`, and says so when it passes again.
 */
#ifndef VT_TAP_H
#define VT_TAP_H

#include <stdio.h>
#include <string.h>

typedef struct tap_test {
  const char *name;
  void (*fn)(void);
} tap_test;

#define TEST(name) static void name(void)
#define TAP_ENTRY(name) { #name, name }

static int tap_cur_failed;      /* checks failed in the running test */
static const char *tap_cur_bug; /* the csrc bug the running test is known to hit */

#define KNOWN_BUG(what) (tap_cur_bug = (what))

/* Print `s[0..len)` with newlines and non-printable bytes escaped, so that a
 * multi-line value stays on one diagnostic line. */
static inline void tap_put_escaped(const char *s, size_t len) {
  size_t i;
  if (s == NULL) {
    fputs("(null)", stdout);
    return;
  }
  putchar('"');
  for (i = 0; i < len && i < 400; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n') fputs("\\n", stdout);
    else if (ch == '\\') fputs("\\\\", stdout);
    else if (ch == '"') fputs("\\\"", stdout);
    else if (ch < 0x20 || ch >= 0x7f) printf("\\x%02x", ch);
    else putchar(ch);
  }
  if (len > 400) printf("...(%lu bytes)", (unsigned long)len);
  putchar('"');
}

static inline int tap_fail(const char *file, int line, const char *expr) {
  tap_cur_failed++;
  printf("# %s:%d: failed: %s\n", file, line, expr);
  fflush(stdout);
  return 0;
}

static inline int tap_check(int cond, const char *file, int line,
                            const char *expr) {
  return cond ? 1 : tap_fail(file, line, expr);
}

static inline int tap_check_int(long long a, long long b, const char *file,
                                int line, const char *expr) {
  if (a == b) return 1;
  tap_fail(file, line, expr);
  printf("#   got %lld, expected %lld\n", a, b);
  return 0;
}

static inline int tap_check_mem(const char *a, size_t alen, const char *b,
                                size_t blen, const char *file, int line,
                                const char *expr) {
  size_t i;
  if (a != NULL && b != NULL && alen == blen && memcmp(a, b, alen) == 0)
    return 1;
  tap_fail(file, line, expr);
  fputs("#   got      ", stdout);
  tap_put_escaped(a, alen);
  fputs("\n#   expected ", stdout);
  tap_put_escaped(b, blen);
  putchar('\n');
  if (a != NULL && b != NULL) {
    for (i = 0; i < alen && i < blen && a[i] == b[i]; i++) {}
    printf("#   first difference at byte %lu\n", (unsigned long)i);
  }
  fflush(stdout);
  return 0;
}

static inline int tap_check_str(const char *a, const char *b, const char *file,
                                int line, const char *expr) {
  return tap_check_mem(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, file, line,
                       expr);
}

#define CHECK(expr) tap_check((expr) != 0, __FILE__, __LINE__, #expr)
#define CHECK_EQ_INT(a, b) \
  tap_check_int((long long)(a), (long long)(b), __FILE__, __LINE__, \
                #a " == " #b)
#define CHECK_STR(a, b) tap_check_str((a), (b), __FILE__, __LINE__, \
                                      #a " equals " #b)
#define CHECK_MEM(a, alen, b, blen) \
  tap_check_mem((a), (alen), (b), (blen), __FILE__, __LINE__, \
                #a " equals " #b)
#define REQUIRE(expr) \
  do { \
    if (!tap_check((expr) != 0, __FILE__, __LINE__, #expr)) return; \
  } while (0)

static inline int tap_run(const tap_test *tests, size_t n) {
  size_t i;
  int any_failed = 0;
  for (i = 0; i < n; i++) {
    tap_cur_failed = 0;
    tap_cur_bug = NULL;
    tests[i].fn();
    if (tap_cur_bug) {
      if (!tap_cur_failed)
        printf("# %s passes: the bug looks fixed, remove its KNOWN_BUG\n",
               tests[i].name);
      printf("ok %lu - %s # SKIP csrc bug: %s\n", (unsigned long)(i + 1),
             tests[i].name, tap_cur_bug);
    } else {
      if (tap_cur_failed) any_failed = 1;
      printf("%sok %lu - %s\n", tap_cur_failed ? "not " : "",
             (unsigned long)(i + 1), tests[i].name);
    }
    fflush(stdout);
  }
  printf("1..%lu\n", (unsigned long)n);
  fflush(stdout);
  return any_failed;
}

#endif
