/*
 * test_core.c: unit tests of the vmtrace core (csrc/ without the Lua
 * binding), no Lua involved. Checks the contract of csrc/vmtrace.h and ports
 * the seed's unit tests (seed/tracing.rs) that concern the collector; each
 * port names its seed test. Seed tests of Lua-side helpers (LlmCallUsage,
 * marker spans, tool_mount) belong to the busted specs.
 *
 * Durations are only asserted under the mock clock; the two timing tests
 * (sparse ids, a long stream) allow ten times the time they need.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "vmtrace.h"
#include "io/buf.h"
#include "io/json.h"
#include "snapshot.h"
#include "tap.h"

#define MS INT64_C(1000000) /* nanoseconds in a millisecond */

/* ---- values for one call ----------------------------------------------------
 * The core copies every value it is given, so a test's values need only live
 * through the call: they are kept in a ring and freed RING values later. */

#define RING 256
static vt_value *ring[RING];
static size_t ring_at;

static const vt_value *keep(vt_value *v) {
  vt_free(ring[ring_at]);
  ring[ring_at] = v;
  ring_at = (ring_at + 1) % RING;
  return v;
}

static void ring_free(void) {
  size_t i;
  for (i = 0; i < RING; i++) {
    vt_free(ring[i]);
    ring[i] = NULL;
  }
}

/* The finished value of a builder, copied into the ring; the builder freed. */
static const vt_value *built(vt_vb *b) {
  const vt_value *v = vt_vb_value(b);
  vt_value *copy = v ? vt_value_dup(v) : NULL;
  vt_vb_free(b);
  if (!copy) tap_fail(__FILE__, __LINE__, "a test value was built");
  return keep(copy);
}

static const vt_value *vi(int64_t x) {
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_int(&b, x);
  return built(&b);
}

static const vt_value *vn(double x) {
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_num(&b, x);
  return built(&b);
}

static const vt_value *vs(const char *s, size_t len) {
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_str(&b, s, len);
  return built(&b);
}

static const vt_value *vbool(int on) {
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_bool(&b, on);
  return built(&b);
}

static const vt_value *vnull(void) {
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_null(&b);
  return built(&b);
}

/* A value from JSON text (a test's literal). */
static const vt_value *vj(const char *json) {
  const char *err = NULL;
  size_t at = 0;
  vt_value *v = vt_json_parse(json, strlen(json), &err, &at);
  if (!v) {
    tap_fail(__FILE__, __LINE__, "a test's JSON parses");
    printf("#   %s at byte %lu of %s\n", err ? err : "?", (unsigned long)at, json);
  }
  return keep(v);
}

/* A value as text, for comparisons, written by the test itself: JSON-like,
 * items in stored order, integers as "i:N", doubles "%.17g", strings with
 * every byte outside printable ASCII (and '"', '\\') as \xNN. */
static void show_to(char **p, char *end, const vt_value *v) {
  vt_iter it;
  const vt_value *x;
  const char *k, *s;
  size_t kl, n, i;
  int first = 1;
#define PUT(...) (*p += snprintf(*p, (size_t)(end - *p), __VA_ARGS__), \
                  *p = *p > end ? end : *p)
  if (!v) {
    PUT("(NULL)");
    return;
  }
  switch (vt_value_type(v)) {
    case VT_NULL: PUT("null"); break;
    case VT_FALSE: PUT("false"); break;
    case VT_TRUE: PUT("true"); break;
    case VT_INT: PUT("i:%lld", (long long)vt_value_int(v)); break;
    case VT_NUM: PUT("%.17g", vt_value_num(v)); break;
    case VT_STR:
      s = vt_value_str(v, &n);
      PUT("\"");
      for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') PUT("\\x%02x", ch);
        else PUT("%c", ch);
      }
      PUT("\"");
      break;
    case VT_ARR:
    case VT_OBJ:
      PUT(vt_value_type(v) == VT_ARR ? "[" : "{");
      vt_value_iter(v, &it);
      while ((x = vt_iter_next(&it, &k, &kl)) != NULL) {
        if (!first) PUT(",");
        first = 0;
        if (it.object) {
          PUT("\"");
          for (i = 0; i < kl; i++) {
            unsigned char ch = (unsigned char)k[i];
            if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\') PUT("\\x%02x", ch);
            else PUT("%c", ch);
          }
          PUT("\":");
        }
        show_to(p, end, x);
      }
      PUT(vt_value_type(v) == VT_ARR ? "]" : "}");
      break;
    default: PUT("(tag %d)", (int)vt_value_type(v));
  }
#undef PUT
}

static const char *show(const vt_value *v) {
  static char buf[8][2048];
  static int next;
  char *p = buf[next = (next + 1) % 8];
  show_to(&p, buf[next] + sizeof buf[next] - 1, v);
  *p = '\0';
  return buf[next];
}

/* ---- collectors ------------------------------------------------------------- */

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
  vt_start_args args;
  memset(&args, 0, sizeof args);
  args.flags = flags;
  return vt_collector_start(c, NULL, kind, name, strlen(name), &args);
}

static int finish(vt_collector *c, vt_id id) {
  int64_t d = -1;
  return vt_collector_finish(c, id, &d);
}

static int set_meta(vt_collector *c, vt_id id, const char *key,
                    const vt_value *v) {
  return vt_collector_set_metadata(c, id, key, strlen(key), v, 0);
}

static int set_meta_flags(vt_collector *c, vt_id id, const char *key,
                          const vt_value *v, unsigned flags) {
  return vt_collector_set_metadata(c, id, key, strlen(key), v, flags);
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

static const vt_value *meta(const vt_span_view *v, const char *key) {
  if (v->metadata == NULL) return NULL;
  return vt_value_get(v->metadata, key, strlen(key));
}

/* The integer under `key` in a span's metadata, or INT64_MIN + 1. */
static int64_t meta_int(const vt_span_view *v, const char *key) {
  int64_t out;
  if (!vt_value_is_int(meta(v, key), &out)) return INT64_MIN + 1;
  return out;
}

static int str_is(const vt_value *x, const char *want, size_t wlen) {
  const char *s;
  size_t len;
  if (x == NULL || vt_value_type(x) != VT_STR) return 0;
  s = vt_value_str(x, &len);
  return len == wlen && memcmp(s, want, len) == 0;
}

static int meta_str_is(const vt_span_view *v, const char *key,
                       const char *want) {
  return str_is(meta(v, key), want, strlen(want));
}

static size_t meta_count(const vt_span_view *v) {
  return v->metadata ? vt_value_count(v->metadata) : 0;
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
        printf("#   (line %lu)\n", (unsigned long)i);
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

/* How many times slower than the plain build this run is, for the two
 * timing limits: an ASan build, or valgrind (which preloads its own). */
static double slowness(void) {
  const char *pre = getenv("LD_PRELOAD");
  if (pre && strstr(pre, "vgpreload")) return 100;
#if defined(__SANITIZE_ADDRESS__)
  return 10;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return 10;
#endif
#endif
  return 1;
}

/* Seconds of CPU this process used: what an algorithm costs, whatever else
 * the machine is busy with (make test runs the specs beside). */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run fn in a child process (for code that may crash): its exit status (0
 * when its checks passed), or 128 + the signal that ended it. */
static int in_child(void (*fn)(void)) {
  pid_t pid;
  int status = 0;
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    tap_cur_failed = 0;
    fn();
    fflush(stdout);
    _exit(tap_cur_failed ? 1 : 0);
  }
  if (pid < 0) { /* no fork: run it here */
    fn();
    return 0;
  }
  if (waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* An allocator that counts the bytes held (installed only around code that
 * creates and frees its own collector: blocks must not cross it). */
typedef union mem_hdr {
  size_t n;
  long double align_;
  void *p_;
} mem_hdr;
static size_t mem_live, mem_peak;

static void *m_malloc(size_t n) {
  mem_hdr *h = malloc(sizeof *h + n);
  if (!h) return NULL;
  h->n = n;
  mem_live += n;
  if (mem_live > mem_peak) mem_peak = mem_live;
  return h + 1;
}

static void *m_realloc(void *p, size_t n) {
  mem_hdr *h = p ? (mem_hdr *)p - 1 : NULL, *q;
  size_t old = h ? h->n : 0;
  q = realloc(h, sizeof *q + n);
  if (!q) return NULL;
  q->n = n;
  mem_live = mem_live - old + n;
  if (mem_live > mem_peak) mem_peak = mem_live;
  return q + 1;
}

static void m_free(void *p) {
  if (p) {
    mem_hdr *h = (mem_hdr *)p - 1;
    mem_live -= h->n;
    free(h);
  }
}

static const vt_allocator measuring = {m_malloc, m_realloc, m_free};

/* ---- the output buffer's writers (every export goes through them) ----------------- */

/* Decimal and hex digits as printf writes them, and JSON strings the same
 * whether the buffer has room (the copy-while-scanning path) or not. */
TEST(test_buf_writers) {
  static const uint64_t edge[] = {0, 1, 9, 10, 99, 100, 101, 999, 1000, 99999999, 100000000,
                                  1700000000123456789ULL, 9999999999999999999ULL,
                                  10000000000000000000ULL, UINT64_MAX};
  static const char *strs[] = {"", "plain", "a\"b", "\\", "tab\there", "\x01\x1f", "caf\xc3\xa9",
                               "bad\xff\xfe", "</script>&", "\xe2\x80\xa8", "long plain text without escapes",
                               "abcdefghij\"klmnop", "0123456\x7f" "89abcdef", "abcdefgh\xc3\xa9ijklmnop",
                               "abcdefgh<ijk>lmnopqrs&", "abcdefg\x1fhijklmno", " !#$%&'()*+,-./0123456789:;=?@[]^_`{|}~"};
  uint64_t x = 88172645463325252ULL;
  char want[32];
  size_t i, k;
  for (i = 0; i < sizeof edge / sizeof *edge + 20000; i++) {
    vt_buf b;
    uint64_t v;
    if (i < sizeof edge / sizeof *edge) {
      v = edge[i];
    } else { /* xorshift, every magnitude */
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      v = x >> (x % 64);
    }
    vt_buf_init(&b);
    vt_buf_put_u64(&b, v);
    snprintf(want, sizeof want, "%llu", (unsigned long long)v);
    if (b.n != strlen(want) || memcmp(b.p, want, b.n) != 0) {
      CHECK_MEM(b.p, b.n, want, strlen(want));
      vt_buf_free(&b);
      break;
    }
    b.n = 0;
    vt_buf_put_hex64(&b, v);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)v);
    if (b.n != 16 || memcmp(b.p, want, 16) != 0) {
      CHECK_MEM(b.p, b.n, want, 16);
      vt_buf_free(&b);
      break;
    }
    vt_buf_free(&b);
  }
  CHECK(i == sizeof edge / sizeof *edge + 20000);
  for (k = 0; k < 2; k++)
    for (i = 0; i < sizeof strs / sizeof *strs; i++) {
      vt_buf roomy, tight;
      vt_buf_init(&roomy);
      vt_buf_grow(&roomy, 4096);
      vt_buf_init(&tight); /* grows a byte at a time: never the copying path */
      if (k) vt_json_write_str_html(&roomy, strs[i], strlen(strs[i]));
      else vt_json_write_str(&roomy, strs[i], strlen(strs[i]));
      tight.cap = 0;
      if (k) vt_json_write_str_html(&tight, strs[i], strlen(strs[i]));
      else vt_json_write_str(&tight, strs[i], strlen(strs[i]));
      CHECK_MEM(roomy.p, roomy.n, tight.p, tight.n);
      vt_buf_free(&roomy);
      vt_buf_free(&tight);
    }
  {
    vt_buf b;
    vt_buf_init(&b);
    vt_json_write_str(&b, "a\"b\xff</", 6);
    CHECK_MEM(b.p, b.n, "\"a\\\"b\xef\xbf\xbd</\"", 11);
    b.n = 0;
    vt_json_write_str_html(&b, "</&", 3);
    CHECK_MEM(b.p, b.n, "\"\\u003c/\\u0026\"", 15);
    vt_buf_free(&b);
  }
}

/* A JSON string the plain way, a byte at a time (what the writers' word-
 * at-a-time and room-once paths must give): escapes, U+FFFD for each
 * maximal invalid UTF-8 subpart. */
static void naive_str(vt_buf *b, const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, n, bad;
  vt_buf_putc(b, '"');
  while (i < len) {
    unsigned char c = p[i];
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c;
      vt_buf_put(b, esc, 2);
    } else if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
      esc[0] = '\\', esc[1] = c == '\b' ? 'b' : c == '\f' ? 'f' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      vt_buf_put(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      vt_buf_put(b, esc, 6);
    } else if (c < 0x80) {
      vt_buf_putc(b, (char)c);
    } else if ((n = vt_utf8_len(p + i, len - i, &bad)) != 0) {
      vt_buf_put(b, p + i, n);
      i += n;
      continue;
    } else {
      vt_buf_put(b, "\xEF\xBF\xBD", 3);
      i += bad;
      continue;
    }
    i++;
  }
  vt_buf_putc(b, '"');
}

/* vt_json_put_str (short strings inline, a word at a time, the last word
 * overlapping) and vt_json_write_str (room or none; long strings escaped in
 * pieces of 4096 bytes) against naive_str: strings of every length to 40
 * and around 4096 with something to escape at each position, written into
 * exactly VT_JSON_STR_MAX bytes (a write past them is a heap overflow
 * under ASan). */
TEST(test_json_str_paths) {
  static const char *const odd[] = {"\"", "\\", "\n", "\x01", "\x1f", "\x7f", "\xff", "\xc3\xa9",
                                    "\xe2\x82\xac", "\xe2\x82", "\xf0\x9f\x98\x80", "\xed\xa0\x80",
                                    "<", "\0"};
  static const size_t big[] = {4090, 4094, 4095, 4096, 4097, 4100, 8192, 8195};
  size_t nl, oi, pos, fails = 0;
  for (nl = 0; nl < 41 + sizeof big / sizeof *big; nl++) {
    size_t len = nl < 41 ? nl : big[nl - 41];
    for (oi = 0; oi <= sizeof odd / sizeof *odd; oi++) {
      const char *e = oi < sizeof odd / sizeof *odd ? odd[oi] : "";
      size_t el = oi < sizeof odd / sizeof *odd ? (oi == sizeof odd / sizeof *odd - 1 ? 1 : strlen(e)) : 0;
      for (pos = len > 64 ? len - 8 : 0; pos <= len && fails < 5; pos++) {
        size_t n = len + el, j;
        char *s = malloc(n ? n : 1), *o, *end;
        vt_buf want, roomy, tight;
        for (j = 0; j < len; j++) s[j < pos ? j : j + el] = (char)('a' + j % 26);
        memcpy(s + pos, e, el);
        vt_buf_init(&want);
        naive_str(&want, s, n);
        o = malloc(VT_JSON_STR_MAX(n));
        end = vt_json_put_str(o, s, n);
        vt_buf_init(&roomy);
        vt_buf_grow(&roomy, 6 * n + 64);
        vt_json_write_str(&roomy, s, n);
        vt_buf_init(&tight);
        vt_json_write_str(&tight, s, n);
        if ((size_t)(end - o) != want.n || memcmp(o, want.p, want.n) != 0 || roomy.n != want.n ||
            memcmp(roomy.p, want.p, want.n) != 0 || tight.n != want.n ||
            memcmp(tight.p, want.p, want.n) != 0) {
          printf("# length %lu, odd %lu at %lu\n", (unsigned long)n, (unsigned long)oi,
                 (unsigned long)pos);
          CHECK_MEM(o, (size_t)(end - o), want.p, want.n);
          CHECK_MEM(roomy.p, roomy.n, want.p, want.n);
          CHECK_MEM(tight.p, tight.n, want.p, want.n);
          fails++;
        }
        free(s);
        free(o);
        vt_buf_free(&want);
        vt_buf_free(&roomy);
        vt_buf_free(&tight);
      }
    }
  }
  CHECK(fails == 0);
}

/* vt_hex64_to and vt_put_digits8 (no loops: word tricks) as printf writes them. */
TEST(test_hex_and_digits) {
  uint64_t x = 88172645463325252ULL;
  char got[24], want[24];
  uint32_t d;
  int i, fails = 0;
  for (i = 0; i < 100000 && fails < 5; i++) {
    uint64_t v = i < 64 ? (uint64_t)1 << i : i < 80 ? ~(uint64_t)0 >> (i - 64) : (x ^= x << 13, x ^= x >> 7, x ^= x << 17);
    vt_hex64_to(got, v);
    snprintf(want, sizeof want, "%016llx", (unsigned long long)v);
    if (memcmp(got, want, 16) != 0) fails++, CHECK_MEM(got, 16, want, 16);
  }
  for (d = 0; d < 100000000 && fails < 10; d += d < 100000 ? 1 : 997) {
    vt_put_digits8(got, d);
    snprintf(want, sizeof want, "%08u", (unsigned)d);
    if (memcmp(got, want, 8) != 0) fails++, CHECK_MEM(got, 8, want, 8);
  }
  vt_put_digits8(got, 99999999);
  CHECK_MEM(got, 8, "99999999", 8);
  CHECK(fails == 0);
}

/* ---- status words ------------------------------------------------------------ */

TEST(test_status_words) {
  static const char *const names[] = {"OK",     "ENOTFOUND", "EEXIST", "ENOMEM",
                                      "EINVAL", "EIO",       "ELIMIT", "ENOMOCK"};
  int s, t;
  CHECK_EQ_INT(VT_STATUS_COUNT, 8);
  for (s = 0; s < VT_STATUS_COUNT; s++) {
    const char *m = vt_strerror(s);
    CHECK_STR(vt_status_name(s), names[s]);
    if (!CHECK(m != NULL && strlen(m) > 0)) continue;
    for (t = 0; t < s; t++) /* every status has its own words */
      if (!CHECK(strcmp(m, vt_strerror(t)) != 0))
        printf("#   %s and %s share \"%s\"\n", names[s], names[t], m);
  }
  CHECK_STR(vt_strerror(VT_ENOMEM), "out of memory");
  CHECK_STR(vt_strerror(VT_OK), "ok");
  CHECK(strstr(vt_strerror(VT_ENOMOCK), "mock") != NULL);
  CHECK_STR(vt_status_name(-1), "EUNKNOWN");
  CHECK_STR(vt_status_name(VT_STATUS_COUNT), "EUNKNOWN");
  CHECK_STR(vt_strerror(-1), "unknown status");
  CHECK_STR(vt_strerror(VT_STATUS_COUNT), "unknown status");
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
  CHECK_EQ_INT(sizeof kind_names / sizeof kind_names[0], VT_KIND_COUNT);
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
}

TEST(test_format_weight_sampler_names) {
  static const char *const formats[] = {"json", "otlp", "chrome", "folded",
                                        "profile", "summary", "html"};
  static const char *const weights[] = {"time", "tokens", "cost"};
  static const char *const samplers[] = {
      "always_on", "always_off", "traceidratio", "parentbased_always_on",
      "parentbased_always_off", "parentbased_traceidratio"};
  int i;
  CHECK_EQ_INT(VT_FORMAT_COUNT, 7);
  for (i = 0; i < VT_FORMAT_COUNT; i++) {
    CHECK_STR(vt_format_name(i), formats[i]);
    CHECK_EQ_INT(vt_format_parse(formats[i], strlen(formats[i])), i);
  }
  CHECK(vt_format_name(VT_FORMAT_COUNT) == NULL);
  CHECK(vt_format_name(-1) == NULL);
  CHECK_EQ_INT(vt_format_parse("jso", 3), -1);
  CHECK_EQ_INT(vt_format_parse("JSON", 4), -1);
  for (i = 0; i < VT_WEIGHT_COUNT; i++) {
    CHECK_STR(vt_weight_name(i), weights[i]);
    CHECK_EQ_INT(vt_weight_parse(weights[i], strlen(weights[i])), i);
  }
  CHECK(vt_weight_name(VT_WEIGHT_COUNT) == NULL);
  CHECK_EQ_INT(vt_weight_parse("time ", 5), -1);
  CHECK_EQ_INT(VT_SAMPLER_COUNT, 6);
  for (i = 0; i < VT_SAMPLER_COUNT; i++) {
    CHECK_STR(vt_sampler_name((vt_sampler)i), samplers[i]);
    CHECK_EQ_INT(vt_sampler_parse(samplers[i], strlen(samplers[i])), i);
  }
  CHECK(vt_sampler_name(VT_SAMPLER_COUNT) == NULL);
  CHECK_EQ_INT(vt_sampler_parse("always", 6), -1);
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
  vt_stats st;
  uint64_t gen;
  REQUIRE(c != NULL);
  snprintf(before, sizeof before, "%s", vt_collector_trace_id(c));
  gen = vt_collector_generation(c);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "a"), 1);
  CHECK_EQ_INT(start(c, VT_FN_CALL, "b"), 2);
  CHECK_EQ_INT(finish(c, 2), VT_OK);
  vt_collector_reset(c);
  CHECK(vt_collector_enabled(c));
  CHECK_EQ_INT(vt_collector_count(c), 0);
  CHECK_EQ_INT(current(c), 0);
  CHECK_EQ_INT(finish(c, 1), VT_ENOTFOUND);
  CHECK(strcmp(before, vt_collector_trace_id(c)) != 0);
  CHECK_EQ_INT(vt_collector_generation(c), gen + 1);
  vt_collector_stats(c, &st);
  CHECK_EQ_INT(st.open, 0);
  CHECK_EQ_INT(st.completed, 0);
  CHECK_EQ_INT(st.names, 0);
  CHECK_EQ_INT(st.generation, gen + 1);
  CHECK_EQ_INT(start(c, VT_PIPELINE, "x"), 1);
  CHECK_EQ_INT(parent_of(c, 1), 0);
  vt_collector_free(c);
}

TEST(test_trace_id_format) {
  vt_collector *c = vt_collector_new();
  vt_trace_info info;
  const char *t, *u;
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
  vt_collector_trace_info(c, &info);
  CHECK_STR(info.trace_id, t);
  CHECK(memcmp(info.trace_bytes, parsed, 16) == 0);
  CHECK_EQ_INT(info.trace_bytes[6] >> 4, 7);
  CHECK_EQ_INT(info.trace_bytes[8] & 0xC0, 0x80);
  for (i = 0; i < 6; i++) ms = (ms << 8) | info.trace_bytes[i];
  now_ms = vt_clock_wall_ns() / MS;
  CHECK(ms > now_ms - 3600 * 1000 && ms < now_ms + 3600 * 1000);
  CHECK_EQ_INT(info.remote_parent, 0);
  CHECK_EQ_INT(info.remote_flags, 0);
  CHECK_STR(info.tracestate, "");
  CHECK_EQ_INT(info.sampled, 1); /* parent-based, no parent: always on */
  CHECK_EQ_INT(info.dropped, 0);
  CHECK(info.wall_epoch_ns > now_ms * MS - 3600 * 1000 * MS);
  vt_collector_free(c);
}

/* Two collectors share nothing: ids, enabled flags, trace ids, spans. */
TEST(test_collectors_independent) {
  vt_collector *c1 = vt_collector_new();
  vt_collector *c2 = vt_collector_new();
  vt_trace_info i1, i2;
  REQUIRE(c1 != NULL && c2 != NULL);
  CHECK(strcmp(vt_collector_trace_id(c1), vt_collector_trace_id(c2)) != 0);
  vt_collector_trace_info(c1, &i1);
  vt_collector_trace_info(c2, &i2);
  CHECK(memcmp(i1.trace_bytes, i2.trace_bytes, 16) != 0);
  CHECK(i1.span_salt != i2.span_salt);
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

/* VT_START_PARENT: the parent is given (an open or completed span before it),
 * whatever the stack holds; the span is still pushed on the stack. */
TEST(test_start_with_given_parent) {
  vt_collector *c = new_enabled();
  vt_start_args a;
  vt_id root, done, x, y, z;
  REQUIRE(c != NULL);
  root = start(c, VT_PIPELINE, "root");
  done = start(c, VT_STEP, "done");
  CHECK_EQ_INT(finish(c, done), VT_OK);
  memset(&a, 0, sizeof a);
  a.flags = VT_START_PARENT;
  a.parent = done;
  x = vt_collector_start(c, NULL, VT_FN_CALL, "x", 1, &a);
  CHECK_EQ_INT(parent_of(c, x), done);
  CHECK_EQ_INT(current(c), x);
  y = start(c, VT_FN_CALL, "y"); /* under x, as usual */
  CHECK_EQ_INT(parent_of(c, y), x);
  a.parent = 0; /* a given parent of 0: a root */
  z = vt_collector_start(c, NULL, VT_FN_CALL, "z", 1, &a);
  CHECK_EQ_INT(parent_of(c, z), 0);
  a.parent = z + 5; /* never a later span */
  CHECK_EQ_INT(parent_of(c, vt_collector_start(c, NULL, VT_FN_CALL, "w", 1, &a)), 0);
  a.flags = VT_START_PARENT | VT_START_DETACHED; /* given wins over detached */
  a.parent = root;
  CHECK_EQ_INT(parent_of(c, vt_collector_start(c, NULL, VT_FN_CALL, "v", 1, &a)), root);
  vt_collector_free(c);
}

/* VT_START_AT: a span started at a time taken earlier (vmtrace.auto's
 * min_ms makes the span of a long call when it ends); never before the
 * epoch, never after now. */
TEST(test_start_at_an_earlier_time) {
  int64_t t0 = vt_clock_mono_ns(), dur = -1; /* before the collector's epoch */
  vt_collector *c = new_enabled();
  vt_start_args a;
  vt_span_view v;
  vt_id early, late;
  REQUIRE(c != NULL);
  memset(&a, 0, sizeof a);
  a.flags = VT_START_AT;
  a.start_mono_ns = t0; /* clamped to the epoch */
  early = vt_collector_start(c, NULL, VT_FN_CALL, "early", 5, &a);
  REQUIRE(vt_collector_get(c, early, &v) == VT_OK);
  CHECK_EQ_INT(v.start_ns, 0);
  a.start_mono_ns = vt_clock_mono_ns();
  { /* 20 ms of work, then a span that began before it */
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  late = vt_collector_start(c, NULL, VT_FN_CALL, "late", 4, &a);
  CHECK_EQ_INT(vt_collector_finish(c, late, &dur), VT_OK);
  CHECK(dur >= 20 * MS);
  CHECK_EQ_INT(parent_of(c, late), early);
  a.start_mono_ns = vt_clock_mono_ns() + 1000 * MS; /* the future: now */
  late = vt_collector_start(c, NULL, VT_FN_CALL, "future", 6, &a);
  REQUIRE(vt_collector_get(c, late, &v) == VT_OK);
  CHECK(v.start_ns <= vt_clock_mono_ns());
  vt_collector_free(c);
}

/* VT_START_SHARED: spans carry an interned metadata object without a copy
 * each; it is read as their metadata, copied when changed, released with
 * the spans. */
TEST(test_shared_metadata) {
  vt_collector *c = new_enabled();
  vt_start_args a;
  vt_span_view v;
  vt_stats st;
  vt_id x, y, z;
  int64_t h;
  size_t names0;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_intern_meta(c, vi(3)), -1); /* objects only */
  vt_collector_stats(c, &st);
  names0 = st.names;
  h = vt_collector_intern_meta(c, vj("{\"source\":\"a.lua:3\"}"));
  REQUIRE(h >= 0);
  CHECK_EQ_INT(vt_collector_intern_meta(c, vj("{\"source\":\"a.lua:3\"}")), h); /* the same */
  vt_collector_name_release(c, (uint32_t)h);
  memset(&a, 0, sizeof a);
  a.flags = VT_START_SHARED;
  a.shared_meta = (uint32_t)h;
  x = vt_collector_start(c, NULL, VT_FN_CALL, "f", 1, &a);
  y = vt_collector_start(c, NULL, VT_FN_CALL, "f", 1, &a);
  REQUIRE(vt_collector_get(c, x, &v) == VT_OK);
  CHECK(str_is(meta(&v, "source"), "a.lua:3", 7));
  CHECK_EQ_INT(set_meta(c, y, "status", vs("error", 5)), VT_OK); /* y's own copy now */
  REQUIRE(vt_collector_get(c, y, &v) == VT_OK);
  CHECK(str_is(meta(&v, "source"), "a.lua:3", 7));
  CHECK(str_is(meta(&v, "status"), "error", 5));
  REQUIRE(vt_collector_get(c, x, &v) == VT_OK); /* x unchanged */
  CHECK(meta(&v, "status") == NULL);
  a.metadata = vj("{\"source\":\"mine\",\"k\":1}"); /* given metadata wins */
  z = vt_collector_start(c, NULL, VT_FN_CALL, "g", 1, &a);
  REQUIRE(vt_collector_get(c, z, &v) == VT_OK);
  CHECK(str_is(meta(&v, "source"), "mine", 4));
  CHECK_EQ_INT(meta_int(&v, "k"), 1);
  CHECK_EQ_INT(finish(c, z), VT_OK);
  CHECK_EQ_INT(finish(c, y), VT_OK);
  CHECK_EQ_INT(finish(c, x), VT_OK);
  vt_collector_name_release(c, (uint32_t)h); /* the caller's reference */
  REQUIRE(vt_collector_get(c, x, &v) == VT_OK); /* the spans hold it */
  CHECK(str_is(meta(&v, "source"), "a.lua:3", 7));
  vt_collector_take(c);
  vt_collector_stats(c, &st);
  CHECK_EQ_INT(st.names, names0); /* gone with the last span */
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
  vt_id id;
  size_t i;
  REQUIRE(c != NULL);
  for (i = 1; i <= 5; i++) CHECK_EQ_INT(start(c, VT_STEP, "s"), i);
  for (i = 0; i < 5; i++) CHECK_EQ_INT(finish(c, order[i]), VT_OK);
  REQUIRE(vt_collector_count(c) == 5);
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(vt_collector_completed_id(c, i), order[i]);
  CHECK_EQ_INT(vt_collector_completed_id(c, 5), 0);
  /* and in id (start) order */
  for (i = 1, id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id))
    CHECK_EQ_INT(id, i++);
  CHECK_EQ_INT(i, 6);
  vt_collector_free(c);
}

/* next_completed skips open spans, taken spans and the chunks freed by take. */
TEST(test_next_completed_skips) {
  vt_collector *c = new_enabled();
  vt_id id, last = 0, open_id;
  size_t i, n = 0;
  REQUIRE(c != NULL);
  for (i = 0; i < 10000; i++) CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  vt_collector_take(c);
  open_id = start(c, VT_PIPELINE, "open");
  for (i = 0; i < 5000; i++) CHECK(finish(c, start(c, VT_STEP, "t")) == VT_OK);
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    if (!CHECK(id > last && id != open_id)) break;
    last = id;
    n++;
  }
  CHECK_EQ_INT(n, 5000);
  CHECK_EQ_INT(n, vt_collector_count(c));
  CHECK_EQ_INT(last, 15001);
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
  CHECK(v.metadata == NULL); /* none: NULL, not an empty object */
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
  CHECK_EQ_INT(vt_collector_elapsed(c, b, &dur), VT_OK);
  CHECK_EQ_INT(vt_collector_elapsed(c, 99, &dur), VT_ENOTFOUND);
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
  CHECK_EQ_INT(set_meta_flags(c, b, "k", vi(1), VT_META_IF_ABSENT), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta_flags(c, b, "k", vi(1), VT_META_DONE), VT_ENOTFOUND);
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
  vt_free(s);
  vt_collector_free(c);
}

/* max_spans keeps the newest completed spans and counts the others. */
TEST(test_max_spans) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id open_id;
  size_t i;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_max_spans(c), 0);
  open_id = start(c, VT_PIPELINE, "open");
  for (i = 0; i < 10; i++) CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  vt_collector_set_max_spans(c, 4);
  CHECK_EQ_INT(vt_collector_max_spans(c), 4);
  CHECK_EQ_INT(vt_collector_count(c), 4);
  CHECK_EQ_INT(vt_collector_dropped(c), 6);
  CHECK_EQ_INT(vt_collector_completed_id(c, 0), 8); /* the newest four */
  CHECK_EQ_INT(vt_collector_get(c, 7, &v), VT_ENOTFOUND);
  CHECK_EQ_INT(is_open(c, open_id), 1); /* open spans are not counted */
  CHECK_EQ_INT(start_flags(c, VT_STEP, "marker", VT_START_INSTANT), 12);
  CHECK_EQ_INT(vt_collector_count(c), 4);
  CHECK_EQ_INT(vt_collector_completed_id(c, 3), 12);
  CHECK_EQ_INT(vt_collector_dropped(c), 7);
  CHECK_EQ_INT(finish(c, open_id), VT_OK);
  CHECK_EQ_INT(vt_collector_completed_id(c, 3), open_id);
  CHECK_EQ_INT(vt_collector_dropped(c), 8);
  vt_collector_set_max_spans(c, 0); /* no bound */
  for (i = 0; i < 10; i++) CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  CHECK_EQ_INT(vt_collector_count(c), 14);
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
  CHECK_EQ_INT(set_meta(c, id, "tokens", vi(100)), VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "tokens"), 100);
  vt_collector_free(c);
}

/* The core copies a value: the caller's may change or go right after. */
TEST(test_metadata_is_copied) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_start_args a;
  vt_vb b;
  vt_value *mine;
  vt_id id;
  REQUIRE(c != NULL);
  vt_vb_init(&b);
  vt_vb_obj(&b);
  vt_vb_key(&b, "list", 4);
  vt_vb_arr(&b);
  vt_vb_int(&b, 1);
  vt_vb_str(&b, "two", 3);
  vt_vb_end(&b);
  vt_vb_end(&b);
  REQUIRE(vt_vb_value(&b) != NULL);
  memset(&a, 0, sizeof a);
  a.metadata = vt_vb_value(&b);
  id = vt_collector_start(c, NULL, VT_FN_CALL, "f", 1, &a);
  REQUIRE(id != 0);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "again", 5, vt_vb_value(&b), 0), VT_OK);
  mine = vt_value_dup(vt_vb_value(&b));
  REQUIRE(mine != NULL);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, mine), VT_OK);
  memset(b.p, 0xAB, b.n); /* the caller scribbles over its values and frees them */
  vt_vb_free(&b);
  memset(mine, 0xCD, 9);
  vt_free(mine);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_STR(show(v.metadata), "{\"again\":{\"list\":[i:1,\"two\"]},\"list\":[i:1,\"two\"]}");
  vt_collector_free(c);
}

TEST(test_set_metadata_open_only) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(set_meta(c, id, "a", vi(1)), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "a"), 1); /* visible while open */
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "b", vi(2)), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta(c, id, "a", vi(3)), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta(c, 0, "a", vi(3)), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta(c, 77, "a", vi(3)), VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK(meta(&v, "b") == NULL);
  CHECK_EQ_INT(meta_int(&v, "a"), 1);
  CHECK_EQ_INT(meta_count(&v), 1);
  /* VT_META_DONE: a completed span takes it too, replacing */
  CHECK_EQ_INT(set_meta_flags(c, id, "a", vi(4), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, id, "c", vi(5), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, 0, "c", vi(5), VT_META_DONE), VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "a"), 4);
  CHECK_EQ_INT(meta_int(&v, "c"), 5);
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
  CHECK_EQ_INT(set_meta_flags(c, id, "first_token_ms", vi(125), VT_META_IF_ABSENT), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, id, "first_token_ms", vi(250), VT_META_IF_ABSENT),
               VT_EEXIST);
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "first_token_ms"), 125);
  CHECK_EQ_INT(set_meta_flags(c, 0, "k", vi(1), VT_META_IF_ABSENT), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta_flags(c, 42, "k", vi(1), VT_META_IF_ABSENT), VT_ENOTFOUND);
  vt_collector_free(c);
}

TEST(test_metadata_if_absent_open) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(set_meta_flags(c, id, "x", vi(1), VT_META_IF_ABSENT), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, id, "x", vi(2), VT_META_IF_ABSENT), VT_EEXIST);
  CHECK_EQ_INT(set_meta(c, id, "y", vi(3)), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, id, "y", vi(4), VT_META_IF_ABSENT), VT_EEXIST);
  CHECK_EQ_INT(set_meta_flags(c, id, "y", vi(5), VT_META_IF_ABSENT | VT_META_DONE), VT_EEXIST);
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
  const vt_value *item;
  const char *k;
  size_t kl;
  vt_iter it;
  vt_span_view v;
  vt_id id;
  size_t i;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  for (i = 0; i < 6; i++)
    CHECK_EQ_INT(set_meta(c, id, ins[i], vi((int64_t)i)), VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, id, "late", vi(6), VT_META_IF_ABSENT), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(vt_value_type(v.metadata), VT_OBJ);
  CHECK_EQ_INT(meta_count(&v), 7);
  i = 0;
  vt_value_iter(v.metadata, &it);
  while ((item = vt_iter_next(&it, &k, &kl)) != NULL) {
    if (i < 7) CHECK_MEM(k, kl, want[i], strlen(want[i]));
    i++;
  }
  CHECK_EQ_INT(i, 7);
  CHECK_EQ_INT(meta_int(&v, "zeta"), 0);
  CHECK_EQ_INT(meta_int(&v, "late"), 6);
  vt_collector_free(c);
}

TEST(test_metadata_replace) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_iter it;
  const char *k = NULL;
  size_t kl = 0;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  CHECK_EQ_INT(set_meta(c, id, "b", vi(1)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "a", vi(2)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "b", vs("new", 3)), VT_OK);
  /* a longer and a shorter value in place of one in the middle */
  CHECK_EQ_INT(set_meta(c, id, "c", vi(3)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "b", vj("{\"deep\":[1,2,3,{\"x\":null}]}")), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "b", vbool(1)), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(meta_count(&v), 3);
  CHECK(vt_value_type(meta(&v, "b")) == VT_TRUE);
  CHECK_EQ_INT(meta_int(&v, "a"), 2);
  CHECK_EQ_INT(meta_int(&v, "c"), 3);
  vt_value_iter(v.metadata, &it);
  CHECK(vt_iter_next(&it, &k, &kl) != NULL);
  CHECK_MEM(k, kl, "a", 1);
  CHECK_STR(show(v.metadata), "{\"a\":i:2,\"b\":true,\"c\":i:3}");
  vt_collector_free(c);
}

TEST(test_merge_metadata) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id, done;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  CHECK_EQ_INT(set_meta(c, id, "keep", vi(1)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "swap", vi(2)), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{\"swap\":\"new\",\"add\":[true]}")),
               VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{}")), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("[1]")), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vi(3)), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, 99, vj("{\"a\":1}")), VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_STR(show(v.metadata), "{\"add\":[true],\"keep\":i:1,\"swap\":\"new\"}");
  /* completed spans take it too */
  done = start(c, VT_STEP, "done");
  CHECK_EQ_INT(finish(c, done), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, done, vj("{\"late\":1.5}")), VT_OK);
  REQUIRE(vt_collector_get(c, done, &v) == VT_OK);
  CHECK_STR(show(v.metadata), "{\"late\":1.5}");
  vt_collector_free(c);
}

/* VT_MAX_KEYS keys per span; a new key past it is refused, an old one may
 * still change, and a merge is all or nothing. */
TEST(test_metadata_key_limit) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  char key[32];
  vt_id id;
  int i, bad = 0;
  REQUIRE(c != NULL);
  id = start(c, VT_FN_CALL, "f");
  for (i = 0; i < VT_MAX_KEYS; i++) {
    snprintf(key, sizeof key, "k%05d", i);
    if (set_meta(c, id, key, vi(i)) != VT_OK) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(set_meta(c, id, "one too many", vi(1)), VT_ELIMIT);
  CHECK_EQ_INT(set_meta(c, id, "k00007", vs("changed", 7)), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{\"k00001\":0,\"fresh\":1}")), VT_ELIMIT);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{\"k00001\":0,\"k00002\":0}")), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(meta_count(&v), VT_MAX_KEYS);
  CHECK(meta(&v, "fresh") == NULL);
  CHECK(meta_str_is(&v, "k00007", "changed"));
  CHECK_EQ_INT(meta_int(&v, "k00001"), 0);
  CHECK_EQ_INT(meta_int(&v, "k09999"), 9999);
  vt_collector_free(c);
}

/* ---- values: the builder ----------------------------------------------------- */

TEST(test_vb_scalars) {
  static const int64_t ints[] = {0, 1, -1, INT64_MAX, INT64_MIN,
                                 INT64_C(9007199254740993)};
  const vt_value *v;
  int64_t out;
  size_t i, n;
  for (i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    v = vi(ints[i]);
    REQUIRE(v != NULL);
    CHECK_EQ_INT(vt_value_type(v), VT_INT);
    out = ints[i] == 0 ? 1 : 0;
    CHECK(vt_value_is_int(v, &out));
    CHECK(out == ints[i]); /* all 64 bits */
    CHECK(vt_value_int(v) == ints[i]);
    CHECK_EQ_INT(vt_value_size(v), 9);
  }
  CHECK(vt_value_num(vi(-3)) == -3.0); /* an int reads as a number too */
  v = vn(5.0);
  CHECK_EQ_INT(vt_value_type(v), VT_NUM);
  CHECK(!vt_value_is_int(v, &out)); /* 5.0 is a number, not an integer */
  CHECK(vt_value_num(v) == 5.0);
  CHECK(!vt_value_is_int(NULL, &out));
  CHECK(!vt_value_is_int(vs("5", 1), &out));
  CHECK(!vt_value_is_int(vbool(1), &out));
  CHECK(vt_value_is_int(vi(7), NULL));
  CHECK_EQ_INT(vt_value_type(vn(NAN)), VT_NULL); /* not JSON: null */
  CHECK_EQ_INT(vt_value_type(vn(INFINITY)), VT_NULL);
  CHECK_EQ_INT(vt_value_type(vn(-INFINITY)), VT_NULL);
  CHECK(signbit(vt_value_num(vn(-0.0))) && vt_value_num(vn(-0.0)) == 0.0);
  CHECK_EQ_INT(vt_value_type(vbool(1)), VT_TRUE);
  CHECK_EQ_INT(vt_value_type(vbool(0)), VT_FALSE);
  CHECK_EQ_INT(vt_value_type(vbool(42)), VT_TRUE);
  CHECK_EQ_INT(vt_value_type(vnull()), VT_NULL);
  CHECK_EQ_INT(vt_value_size(vnull()), 1);
  v = vs("hello", 5);
  CHECK_EQ_INT(vt_value_type(v), VT_STR);
  CHECK(str_is(v, "hello", 5));
  CHECK_EQ_INT(vt_value_size(v), 5 + 5);
  CHECK_EQ_INT(vt_value_count(v), 0); /* only arrays and objects count */
  CHECK(str_is(vs("", 0), "", 0));
  CHECK(vt_value_get(v, "h", 1) == NULL); /* not an object */
  CHECK(vt_value_get(NULL, "h", 1) == NULL);
  (void)n;
}

/* Strings and keys are bytes: NUL, invalid UTF-8, anything. */
TEST(test_vb_bytes) {
  static const char nul_c0[] = "a\0b\xC0" "c\xC0\x80\0";
  vt_vb b;
  const vt_value *v, *x;
  const char *k;
  size_t kl;
  vt_iter it;
  CHECK(str_is(vs(nul_c0, sizeof nul_c0 - 1), nul_c0, sizeof nul_c0 - 1));
  CHECK(str_is(vs("\0", 1), "\0", 1));
  CHECK(str_is(vs("caf\xC3\xA9 \xFF\xFE", 8), "caf\xC3\xA9 \xFF\xFE", 8));
  vt_vb_init(&b);
  vt_vb_obj(&b);
  vt_vb_key(&b, "k\0a", 3);
  vt_vb_int(&b, 3);
  vt_vb_key(&b, "k", 1);
  vt_vb_int(&b, 1);
  vt_vb_key(&b, "k\0", 2);
  vt_vb_int(&b, 2);
  vt_vb_key(&b, "", 0);
  vt_vb_str(&b, "v\0w", 3);
  vt_vb_end(&b);
  v = built(&b);
  REQUIRE(v != NULL);
  CHECK_EQ_INT(vt_value_count(v), 4); /* "k", "k\0" and "k\0a" differ */
  CHECK_STR(show(v), "{\"\":\"v\\x00w\",\"k\":i:1,\"k\\x00\":i:2,\"k\\x00a\":i:3}");
  CHECK(vt_value_is_int(vt_value_get(v, "k\0", 2), NULL) && vt_value_int(vt_value_get(v, "k\0", 2)) == 2);
  CHECK(vt_value_int(vt_value_get(v, "k\0a", 3)) == 3);
  CHECK(str_is(vt_value_get(v, "", 0), "v\0w", 3));
  CHECK(vt_value_get(v, "k\0b", 3) == NULL);
  vt_value_iter(v, &it);
  CHECK(vt_iter_next(&it, &k, &kl) != NULL && kl == 0);
  CHECK((x = vt_iter_next(&it, &k, &kl)) != NULL && kl == 1 && k[0] == 'k');
}

TEST(test_vb_sorted_keys) {
  static const char *const ins[] = {"b", "ab", "B", "a", "a_", "\xff", "", "zz", "\x7f"};
  vt_vb b;
  const vt_value *v;
  size_t i;
  vt_vb_init(&b);
  vt_vb_obj(&b);
  for (i = 0; i < sizeof ins / sizeof ins[0]; i++) {
    vt_vb_key(&b, ins[i], strlen(ins[i]));
    vt_vb_int(&b, (int64_t)i);
  }
  vt_vb_end(&b);
  v = built(&b);
  REQUIRE(v != NULL);
  CHECK_EQ_INT(vt_value_type(v), VT_OBJ);
  CHECK_EQ_INT(vt_value_count(v), 9);
  /* by raw (unsigned) bytes, a prefix first */
  CHECK_STR(show(v), "{\"\":i:6,\"B\":i:2,\"a\":i:3,\"a_\":i:4,\"ab\":i:1,\"b\":i:0,"
                     "\"zz\":i:7,\"\\x7f\":i:8,\"\\xff\":i:5}");
  for (i = 0; i < sizeof ins / sizeof ins[0]; i++) {
    const vt_value *x = vt_value_get(v, ins[i], strlen(ins[i]));
    CHECK(x != NULL && vt_value_int(x) == (int64_t)i);
  }
  CHECK(vt_value_get(v, "zz", 1) == NULL); /* length counts: "z" */
  CHECK(vt_value_get(v, "abc", 2) != NULL); /* "ab" */
  CHECK(vt_value_get(v, "A", 1) == NULL);
  CHECK(vt_value_get(v, "c", 1) == NULL);
}

TEST(test_vb_duplicate_keys) {
  vt_vb b;
  const vt_value *v;
  vt_vb_init(&b);
  vt_vb_obj(&b);
  vt_vb_key(&b, "x", 1);
  vt_vb_str(&b, "first, and longer than the rest", 31);
  vt_vb_key(&b, "a", 1);
  vt_vb_int(&b, 1);
  vt_vb_key(&b, "x", 1);
  vt_vb_int(&b, 2);
  vt_vb_key(&b, "m", 1);
  vt_vb_obj(&b); /* duplicates inside a nested object too */
  vt_vb_key(&b, "q", 1);
  vt_vb_null(&b);
  vt_vb_key(&b, "q", 1);
  vt_vb_arr(&b);
  vt_vb_bool(&b, 0);
  vt_vb_end(&b);
  vt_vb_end(&b);
  vt_vb_key(&b, "x", 1);
  vt_vb_str(&b, "last", 4); /* the later wins */
  vt_vb_key(&b, "a", 1);
  vt_vb_null(&b);
  vt_vb_end(&b);
  v = built(&b);
  REQUIRE(v != NULL);
  CHECK_EQ_INT(vt_value_count(v), 3);
  CHECK_STR(show(v), "{\"a\":null,\"m\":{\"q\":[false]},\"x\":\"last\"}");
  CHECK_EQ_INT(vt_value_count(vt_value_get(v, "m", 1)), 1);
  /* the encoding's size is what it holds: no room left by the dropped ones */
  CHECK_EQ_INT(vt_value_size(v), 9 + (4 + 1 + 1) + (4 + 1 + 9 + 4 + 1 + 9 + 1) + (4 + 1 + 5 + 4));
}

TEST(test_vb_nesting) {
  vt_vb b;
  const vt_value *v, *x, *arr;
  vt_iter it;
  const char *k;
  size_t kl, n = 0;
  vt_value *copy;
  vt_vb_init(&b);
  vt_vb_arr(&b);
  vt_vb_int(&b, 1);
  vt_vb_arr(&b);
  vt_vb_arr(&b);
  vt_vb_end(&b);
  vt_vb_obj(&b);
  vt_vb_end(&b);
  vt_vb_obj(&b);
  vt_vb_key(&b, "z", 1);
  vt_vb_num(&b, 0.5);
  vt_vb_key(&b, "y", 1);
  vt_vb_arr(&b);
  vt_vb_str(&b, "s", 1);
  vt_vb_end(&b);
  vt_vb_end(&b);
  vt_vb_end(&b);
  vt_vb_null(&b);
  CHECK(vt_vb_value(&b) == NULL); /* the outer array is not closed yet */
  vt_vb_end(&b);
  v = built(&b);
  REQUIRE(v != NULL);
  CHECK_EQ_INT(vt_value_type(v), VT_ARR);
  CHECK_EQ_INT(vt_value_count(v), 3);
  CHECK_STR(show(v), "[i:1,[[],{},{\"y\":[\"s\"],\"z\":0.5}],null]");
  vt_value_iter(v, &it);
  while ((x = vt_iter_next(&it, &k, &kl)) != NULL) {
    CHECK(k == NULL && kl == 0); /* array items have no key */
    n++;
  }
  CHECK_EQ_INT(n, 3);
  vt_value_iter(v, &it);
  vt_iter_next(&it, NULL, NULL);
  arr = vt_iter_next(&it, NULL, NULL);
  CHECK_EQ_INT(vt_value_count(arr), 3);
  vt_value_iter(vi(3), &it); /* a scalar has no items */
  CHECK(vt_iter_next(&it, &k, &kl) == NULL);
  /* a copy is the same bytes */
  copy = vt_value_dup(v);
  REQUIRE(copy != NULL);
  CHECK_MEM((const char *)copy, vt_value_size(copy), (const char *)v, vt_value_size(v));
  /* vt_vb_copy puts a whole value inside another */
  vt_vb_init(&b);
  vt_vb_obj(&b);
  vt_vb_key(&b, "inner", 5);
  vt_vb_copy(&b, copy);
  vt_vb_end(&b);
  vt_free(copy);
  CHECK_STR(show(built(&b)), "{\"inner\":[i:1,[[],{},{\"y\":[\"s\"],\"z\":0.5}],null]}");
  /* wrong nesting sticks as failed */
  vt_vb_init(&b);
  vt_vb_end(&b);
  CHECK(b.failed);
  vt_vb_int(&b, 1);
  CHECK(vt_vb_value(&b) == NULL);
  vt_vb_reset(&b); /* and reset makes it usable again */
  CHECK(!b.failed);
  vt_vb_int(&b, 5);
  CHECK(vt_vb_value(&b) != NULL && vt_value_int(vt_vb_value(&b)) == 5);
  vt_vb_free(&b);
  vt_vb_init(&b); /* nothing built: no value */
  CHECK(vt_vb_value(&b) == NULL);
  vt_vb_free(&b);
}

/* vt_value_from_cjson / vt_value_to_cjson for hosts that build with cJSON. */
TEST(test_value_cjson_round_trip) {
  cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *back, *item;
  vt_value *v;
  char *text;
  REQUIRE(o != NULL && arr != NULL);
  cJSON_AddItemToObject(o, "zmax", cJSON_CreateRaw("9223372036854775807"));
  cJSON_AddItemToObject(o, "min", cJSON_CreateRaw("-9223372036854775808"));
  cJSON_AddItemToObject(o, "exact", cJSON_CreateRaw("9007199254740993"));
  cJSON_AddItemToObject(o, "num", cJSON_CreateNumber(2.5));
  cJSON_AddItemToObject(o, "whole", cJSON_CreateNumber(3));
  cJSON_AddItemToObject(o, "s", cJSON_CreateString("caf\xC3\xA9"));
  cJSON_AddItemToObject(o, "t", cJSON_CreateTrue());
  cJSON_AddItemToObject(o, "f", cJSON_CreateFalse());
  cJSON_AddItemToObject(o, "n", cJSON_CreateNull());
  cJSON_AddItemToArray(arr, cJSON_CreateRaw("-1"));
  cJSON_AddItemToArray(arr, cJSON_CreateObject());
  cJSON_AddItemToArray(arr, cJSON_CreateArray());
  cJSON_AddItemToObject(o, "arr", arr);
  cJSON_AddItemToObject(o, "dup", cJSON_CreateRaw("1"));
  cJSON_AddItemToObject(o, "dup", cJSON_CreateRaw("2")); /* the later wins */
  v = vt_value_from_cjson(o);
  REQUIRE(v != NULL);
  CHECK_STR(show(v), "{\"arr\":[i:-1,{},[]],\"dup\":i:2,\"exact\":i:9007199254740993,"
                     "\"f\":false,\"min\":i:-9223372036854775808,\"n\":null,\"num\":2.5,"
                     "\"s\":\"caf\\xc3\\xa9\",\"t\":true,\"whole\":3,"
                     "\"zmax\":i:9223372036854775807}");
  CHECK_EQ_INT(vt_value_type(vt_value_get(v, "whole", 5)), VT_NUM); /* a cJSON number */
  back = vt_value_to_cjson(v);
  REQUIRE(back != NULL);
  item = cJSON_GetObjectItemCaseSensitive(back, "zmax");
  CHECK(item != NULL && cJSON_IsRaw(item) && strcmp(item->valuestring, "9223372036854775807") == 0);
  item = cJSON_GetObjectItemCaseSensitive(back, "min");
  CHECK(item != NULL && cJSON_IsRaw(item) && strcmp(item->valuestring, "-9223372036854775808") == 0);
  item = cJSON_GetObjectItemCaseSensitive(back, "dup");
  CHECK(item != NULL && cJSON_IsRaw(item) && strcmp(item->valuestring, "2") == 0);
  CHECK(cJSON_GetObjectItemCaseSensitive(back, "num")->valuedouble == 2.5);
  text = cJSON_PrintUnformatted(back); /* keys sorted, integers exact */
  CHECK_STR(text, "{\"arr\":[-1,{},[]],\"dup\":2,\"exact\":9007199254740993,\"f\":false,"
                  "\"min\":-9223372036854775808,\"n\":null,\"num\":2.5,\"s\":\"caf\xC3\xA9\","
                  "\"t\":true,\"whole\":3,\"zmax\":9223372036854775807}");
  cJSON_free(text);
  /* and back again: the same value */
  {
    vt_value *again = vt_value_from_cjson(back);
    REQUIRE(again != NULL);
    CHECK_MEM((const char *)again, vt_value_size(again), (const char *)v, vt_value_size(v));
    vt_free(again);
  }
  cJSON_Delete(back);
  cJSON_Delete(o);
  /* a scalar on its own, and NULL */
  o = cJSON_CreateString("x");
  vt_free(v);
  v = vt_value_from_cjson(o);
  CHECK(v != NULL && str_is(v, "x", 1));
  vt_free(v);
  cJSON_Delete(o);
  /* a cJSON string stops at NUL; the value's NUL bytes cannot survive */
  back = vt_value_to_cjson(vs("a\0b", 3));
  CHECK(back != NULL && cJSON_IsString(back) && strcmp(back->valuestring, "a") == 0);
  cJSON_Delete(back);
}

/* vt_json_parse: integers keep 64 bits, strings any byte. */
TEST(test_json_parse) {
  const char *err = NULL;
  size_t at = 0;
  vt_value *v;
  static const char text[] = "{\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                             "\"big\":9223372036854775808,\"f\":1.0,\"e\":1e3,"
                             "\"s\":\"a\\u0000b\\u00e9\\ud83d\\ude00\",\"k\":1,\"k\":2}";
  v = vt_json_parse(text, strlen(text), &err, &at);
  REQUIRE(v != NULL);
  CHECK(vt_value_int(vt_value_get(v, "max", 3)) == INT64_MAX);
  CHECK(vt_value_int(vt_value_get(v, "min", 3)) == INT64_MIN);
  CHECK_EQ_INT(vt_value_type(vt_value_get(v, "big", 3)), VT_NUM); /* past int64: a number */
  CHECK(vt_value_num(vt_value_get(v, "big", 3)) == 9223372036854775808.0);
  CHECK_EQ_INT(vt_value_type(vt_value_get(v, "f", 1)), VT_NUM);
  CHECK_EQ_INT(vt_value_type(vt_value_get(v, "e", 1)), VT_NUM);
  CHECK(str_is(vt_value_get(v, "s", 1), "a\0b\xC3\xA9\xF0\x9F\x98\x80", 9));
  CHECK_EQ_INT(vt_value_int(vt_value_get(v, "k", 1)), 2);
  CHECK_EQ_INT(vt_value_count(v), 7);
  vt_free(v);
  v = vt_json_parse("[1, 2", 5, &err, &at);
  CHECK(v == NULL);
  CHECK(err != NULL);
  CHECK_EQ_INT(at, 5);
  err = NULL;
  v = vt_json_parse("{\"a\":tru}", 9, &err, &at);
  CHECK(v == NULL && err != NULL);
  CHECK_EQ_INT(at, 5);
  err = NULL;
  v = vt_json_parse("1 2", 3, &err, &at);
  CHECK(v == NULL && err != NULL);
  err = NULL;
  CHECK(vt_json_parse("", 0, &err, &at) == NULL && err != NULL);
  v = vt_json_parse(" \"x\" ", 5, &err, &at);
  CHECK(v != NULL && str_is(v, "x", 1));
  vt_free(v);
  {
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    err = NULL;
    CHECK(vt_json_parse(deep, 600, &err, &at) == NULL); /* nesting is bounded */
    CHECK(err != NULL);
    v = vt_json_parse(deep + 100, 400, &err, &at); /* 200 deep is fine */
    CHECK(v != NULL);
    vt_free(v);
  }
}

/* Names, keys and event names are byte strings with lengths. */
TEST(test_byte_string_names) {
  static const char name[] = "a\0b\xC0" "c";
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL);
  id = vt_collector_start(c, NULL, VT_FN_CALL, name, 5, NULL);
  REQUIRE(id != 0);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k\0\xC0", 3, vs("v\0w", 3), 0), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "k", vi(1)), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "e\0f", 3, NULL), VT_OK);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, name, 5);
  REQUIRE(v.metadata != NULL);
  CHECK_EQ_INT(meta_count(&v), 2); /* "k\0\xC0" != "k" */
  CHECK(str_is(vt_value_get(v.metadata, "k\0\xC0", 3), "v\0w", 3));
  CHECK_EQ_INT(meta_int(&v, "k"), 1);
  REQUIRE(v.nevents == 1);
  CHECK_MEM(v.events[0].name, v.events[0].name_len, "e\0f", 3);
  vt_collector_free(c);
}

/* ---- events and links ----------------------------------------------------------- */

TEST(test_events) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  int64_t n = -1;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_LLM_CALL, "m");
  CHECK_EQ_INT(vt_collector_record_event(c, id, "parse", 5,
                                         vj("{\"step\":3,\"phase\":\"parse\"}")),
               VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "emit", 4, NULL), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "empty", 5, vj("{}")), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 3); /* visible while open */
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "late", 4, NULL), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_record_event(c, 0, "zero", 4, NULL), VT_ENOTFOUND);
  CHECK_EQ_INT(vt_collector_record_event(c, 99, "none", 4, vj("{}")), VT_ENOTFOUND);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 3);
  CHECK_MEM(v.events[0].name, v.events[0].name_len, "parse", 5);
  CHECK_MEM(v.events[1].name, v.events[1].name_len, "emit", 4);
  CHECK(v.events[0].offset_ns >= 0);
  CHECK(v.events[1].offset_ns >= v.events[0].offset_ns);
  CHECK(v.events[0].time_unix_ns > 0);
  REQUIRE(v.events[0].attributes != NULL);
  CHECK(vt_value_is_int(vt_value_get(v.events[0].attributes, "step", 4), &n) && n == 3);
  CHECK_STR(show(v.events[0].attributes), "{\"phase\":\"parse\",\"step\":i:3}");
  CHECK(v.events[1].attributes == NULL);
  CHECK(v.events[2].attributes == NULL || vt_value_count(v.events[2].attributes) == 0);
  vt_collector_free(c);
}

/* Many events: the event list grows and keeps them all, in order. */
TEST(test_many_events) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  char name[16];
  size_t i, bad = 0;
  vt_id id;
  REQUIRE(c != NULL);
  id = start(c, VT_STEP, "s");
  for (i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "e%lu", (unsigned long)i);
    if (vt_collector_record_event(c, id, name, strlen(name), (i % 3) ? NULL : vj("{\"n\":1}")) !=
        VT_OK)
      bad++;
  }
  CHECK_EQ_INT(bad, 0);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nevents == 1000);
  for (i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "e%lu", (unsigned long)i);
    if (v.events[i].name_len != strlen(name) || memcmp(v.events[i].name, name, strlen(name)))
      bad++;
  }
  CHECK_EQ_INT(bad, 0);
  vt_collector_free(c);
}

TEST(test_links_copied) {
  vt_start_args args;
  vt_collector *c = new_enabled();
  char want_tid[64];
  char *tid = malloc(64), *sid = malloc(16);
  vt_link *links = malloc(2 * sizeof *links);
  vt_vb attrs;
  vt_span_view v;
  vt_id id;
  REQUIRE(c != NULL && tid && sid && links);
  memset(&args, 0, sizeof args);
  snprintf(want_tid, sizeof want_tid, "%s", vt_collector_trace_id(c));
  snprintf(tid, 64, "%s", want_tid);
  snprintf(sid, 16, "17");
  vt_vb_init(&attrs);
  vt_vb_obj(&attrs);
  vt_vb_key(&attrs, "kind", 4);
  vt_vb_str(&attrs, "follows", 7);
  vt_vb_end(&attrs);
  links[0].trace_id = tid;
  links[0].trace_id_len = strlen(tid);
  links[0].span_id = sid;
  links[0].span_id_len = 2;
  links[0].attributes = vt_vb_value(&attrs);
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
  memset(attrs.p, 0, attrs.n);
  vt_vb_free(&attrs);
  memset(links, 0, 2 * sizeof *links);
  free(tid);
  free(sid);
  free(links);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  REQUIRE(v.nlinks == 2 && v.links != NULL);
  CHECK_MEM(v.links[0].trace_id, v.links[0].trace_id_len, want_tid,
            strlen(want_tid));
  CHECK_MEM(v.links[0].span_id, v.links[0].span_id_len, "17", 2);
  REQUIRE(v.links[0].attributes != NULL);
  CHECK(str_is(vt_value_get(v.links[0].attributes, "kind", 4), "follows", 7));
  CHECK_MEM(v.links[1].trace_id, v.links[1].trace_id_len, "remote-trace", 12);
  CHECK_MEM(v.links[1].span_id, v.links[1].span_id_len, "00f067aa0ba902b7",
            16);
  CHECK(v.links[1].attributes == NULL);
  vt_collector_free(c);
}

/* Port of seed test_span_links_are_preserved. */
TEST(test_span_links_are_preserved) {
  vt_start_args args;
  vt_collector *c = new_enabled();
  char sid[24];
  vt_link link;
  vt_span_view v;
  vt_id parent, child;
  REQUIRE(c != NULL);
  memset(&args, 0, sizeof args);
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
  vt_start_args args;
  vt_collector *c = new_enabled();
  char sid[24];
  vt_link link;
  vt_span_view v;
  vt_id pipeline, drain, inner;
  size_t i;
  int found = 0;
  REQUIRE(c != NULL);
  memset(&args, 0, sizeof args);
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
  CHECK_EQ_INT(set_meta(c, id, "phase", vs("warmup", 6)), VT_OK);
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

/* Markers: completed at once, never on a stack, duration 0. */
TEST(test_instant_markers) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  vt_start_args a;
  vt_id p, m;
  REQUIRE(c != NULL);
  p = start(c, VT_PIPELINE, "p");
  memset(&a, 0, sizeof a);
  a.flags = VT_START_INSTANT;
  a.metadata = vj("{\"at\":\"mark\"}");
  m = vt_collector_start(c, NULL, VT_STEP, "mark", 4, &a);
  REQUIRE(m != 0);
  CHECK_EQ_INT(current(c), p);
  REQUIRE(vt_collector_get(c, m, &v) == VT_OK);
  CHECK_EQ_INT(v.open, 0);
  CHECK_EQ_INT(v.duration_ns, 0);
  CHECK_EQ_INT(v.parent, p);
  CHECK(meta_str_is(&v, "at", "mark"));
  CHECK_EQ_INT(vt_collector_count(c), 1);
  CHECK_EQ_INT(finish(c, m), VT_ENOTFOUND);
  CHECK_EQ_INT(set_meta(c, m, "x", vi(1)), VT_ENOTFOUND); /* completed */
  CHECK_EQ_INT(set_meta_flags(c, m, "x", vi(1), VT_META_DONE), VT_OK);
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
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_ENOMOCK);
  vt_collector_free(c);
}

TEST(test_mock_absent) {
  vt_collector *c = vt_collector_new();
  int64_t wall = 77, now, real, m1, m2;
  REQUIRE(c != NULL);
  CHECK(!vt_collector_mocked(c));
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_ENOMOCK);
  CHECK_EQ_INT(wall, 77); /* untouched */
  CHECK_EQ_INT(vt_collector_mock_pop(c), VT_ENOMOCK);
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
  vt_free(s);
  start(c, VT_PIPELINE, "open only"); /* open spans are not in the summary */
  s = summary(c);
  CHECK_STR(s, "No spans recorded.");
  vt_free(s);
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
  CHECK_EQ_INT(set_meta(c, h, "tokens", vi(100)), VT_OK);
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
  vt_free(s);
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
  vt_free(s);
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
  vt_free(s);
  CHECK_EQ_INT(finish(c, p), VT_OK);
  s = summary(c);
  CHECK_STR(s, "Trace: 2 spans, 0ms total\n\npipeline P 0ms\n  fn_call C 0ms");
  vt_free(s);
  vt_collector_free(c);
}

/* Metadata values print as serde_json prints them (compact, keys sorted,
 * floats shortest round-trip with ".0" when integral, exponent form outside
 * 1e-5 <= |x| < 1e16). */
TEST(test_summary_values) {
  enum { MAXV = 40 };
  vt_collector *c = new_enabled();
  const vt_value *vals[MAXV];
  const char *texts[MAXV];
  const char *want[MAXV + 3];
  char lines[MAXV + 3][160], name[16];
  size_t n = 0, i;
  vt_id id;
  char *s;
  REQUIRE(c != NULL);
#define ADD(v, t) (vals[n] = (v), texts[n] = (t), n++)
  ADD(vn(3.0), "3.0");
  ADD(vn(1e21), "1e21");
  ADD(vn(1.5e-7), "1.5e-7");
  ADD(vn(0.1), "0.1");
  ADD(vn(-2.5), "-2.5");
  ADD(vn(1e15), "1000000000000000.0");
  ADD(vn(1e16), "1e16");
  ADD(vn(1.2345678901234567e19), "1.2345678901234567e19");
  ADD(vn(123456.789), "123456.789");
  ADD(vn(1e-5), "0.00001");
  ADD(vn(1e-6), "1e-6");
  ADD(vn(0.0), "0.0");
  ADD(vn(-0.0), "-0.0");
  ADD(vn(5e-324), "5e-324"); /* subnormals too */
  ADD(vn(1e-320), "1e-320");
  ADD(vn(1.7976931348623157e308), "1.7976931348623157e308");
  ADD(vn(NAN), "null");
  ADD(vi(0), "0");
  ADD(vi(-42), "-42");
  ADD(vi(INT64_MAX), "9223372036854775807");
  ADD(vi(INT64_MIN), "-9223372036854775808");
  ADD(vbool(1), "true");
  ADD(vbool(0), "false");
  ADD(vnull(), "null");
  ADD(vs("plain", 5), "\"plain\"");
  ADD(vs("say \"hi\"\\\n\t\x01/\xc3\xa9", 15),
      "\"say \\\"hi\\\"\\\\\\n\\t\\u0001/\xc3\xa9\"");
  ADD(vs("\x1f\x7f\r\b\f", 5), "\"\\u001f\x7f\\r\\b\\f\"");
  ADD(vs("a\0b", 3), "\"a\\u0000b\"");
  ADD(vs("", 0), "\"\"");
  ADD(vs("bad \xff\xc0 utf8", 11), "\"bad \xef\xbf\xbd\xef\xbf\xbd utf8\""); /* U+FFFD */
  ADD(vj("[]"), "[]");
  ADD(vj("{}"), "{}");
  ADD(vj("{\"z\":1,\"a\":[true,null,\"x\",2.5,9223372036854775807,\"n\\u0000\"],"
         "\"q\\\"\":4.0,\"m\":{}}"),
      "{\"a\":[true,null,\"x\",2.5,9223372036854775807,\"n\\u0000\"],"
      "\"m\":{},\"q\\\"\":4.0,\"z\":1}");
#undef ADD
  CHECK_EQ_INT(vt_collector_mock_push(c, 1000000), VT_OK);
  for (i = 0; i < n; i++) {
    snprintf(name, sizeof name, "v%lu", (unsigned long)i);
    id = start(c, VT_TOOL_CALL, name);
    CHECK_EQ_INT(set_meta(c, id, "k", vals[i]), VT_OK);
    CHECK_EQ_INT(finish(c, id), VT_OK);
    snprintf(lines[i + 2], sizeof lines[0], "tool_call v%lu 0ms (k=%s)",
             (unsigned long)i, texts[i]);
  }
  /* several keys: sorted bytewise, printed bare, joined by ", " */
  id = start(c, VT_FN_CALL, "multi");
  CHECK_EQ_INT(set_meta(c, id, "b", vnull()), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "my key", vi(1)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "a_", vbool(1)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "B", vs("x", 1)), VT_OK);
  CHECK_EQ_INT(set_meta(c, id, "a", vn(0.5)), VT_OK);
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
  vt_free(s);
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
  vt_free(job.text);
  free(want);
  vt_collector_free(c);
}

TEST(test_summary_deep_chain) {
  int status = in_child(deep_chain_body);
  if (status > 128)
    printf("# summary child killed by signal %d (stack overflow?)\n", status - 128);
  CHECK_EQ_INT(status, 0);
}


/* ---- names: interned, reference-counted ------------------------------------------ */

static vt_stats stats_of(const vt_collector *c) {
  vt_stats s;
  vt_collector_stats(c, &s);
  return s;
}

/* A name lives while a span or a holder uses it, and goes with the last. */
TEST(test_names_refcounted) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  int64_t h;
  vt_id a, b, d;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(stats_of(c).names, 0);
  CHECK_EQ_INT(stats_of(c).name_bytes, 0);
  h = vt_collector_intern(c, "alpha", 5);
  REQUIRE(h >= 0);
  CHECK_EQ_INT(stats_of(c).names, 1);
  CHECK(stats_of(c).name_bytes >= 5);
  CHECK_EQ_INT(vt_collector_intern(c, "alpha", 5), h); /* the same name: the same handle */
  vt_collector_name_release(c, (uint32_t)h); /* that second reference */
  a = vt_collector_start_interned(c, NULL, VT_STEP, (uint32_t)h, NULL);
  b = vt_collector_start_interned(c, NULL, VT_STEP, (uint32_t)h, NULL);
  REQUIRE(a != 0 && b != 0);
  vt_collector_name_release(c, (uint32_t)h); /* the holder lets go: spans keep it */
  CHECK_EQ_INT(stats_of(c).names, 1);
  d = start(c, VT_STEP, "beta");
  CHECK_EQ_INT(stats_of(c).names, 2);
  CHECK_EQ_INT(finish(c, d), VT_OK);
  CHECK_EQ_INT(finish(c, b), VT_OK);
  vt_collector_take(c); /* beta's only span goes: so does beta */
  CHECK_EQ_INT(stats_of(c).names, 1);
  REQUIRE(vt_collector_get(c, a, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, "alpha", 5);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(stats_of(c).names, 1); /* completed, not taken yet */
  vt_collector_take(c);
  CHECK_EQ_INT(stats_of(c).names, 0);
  CHECK_EQ_INT(stats_of(c).name_bytes, 0);
  /* a handle whose name is gone starts nothing (counted) */
  CHECK_EQ_INT(vt_collector_start_interned(c, NULL, VT_STEP, (uint32_t)h, NULL), 0);
  CHECK_EQ_INT(vt_collector_start_interned(c, NULL, VT_STEP, 123456, NULL), 0);
  CHECK_EQ_INT(vt_collector_dropped(c), 2);
  vt_collector_name_release(c, 123456); /* unknown handles are ignored */
  vt_collector_name_release(c, (uint32_t)h);
  CHECK_EQ_INT(stats_of(c).names, 0);
  vt_collector_free(c);
}

/* Millions of distinct names under take, reset or max_spans: flat memory. */
TEST(test_names_flat_after_take_and_reset) {
  enum { N = 10000 };
  vt_collector *c = new_enabled();
  vt_stats s0, s;
  char name[32];
  int i, bad = 0;
  REQUIRE(c != NULL);
  s0 = stats_of(c);
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof name, "distinct name %d", i);
    if (finish(c, start(c, VT_FN_CALL, name)) != VT_OK) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  s = stats_of(c);
  CHECK_EQ_INT(s.names, s0.names + N);
  CHECK(s.name_bytes > s0.name_bytes + (size_t)N * 15);
  vt_collector_take(c);
  s = stats_of(c);
  CHECK_EQ_INT(s.names, s0.names);
  CHECK_EQ_INT(s.name_bytes, s0.name_bytes);
  for (i = 0; i < N; i++) { /* again, half of them left open, then reset */
    vt_id id;
    snprintf(name, sizeof name, "another name %d", i);
    id = start(c, VT_FN_CALL, name);
    if (!id || (i % 2 && finish(c, id) != VT_OK)) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(stats_of(c).names, s0.names + N);
  vt_collector_reset(c);
  s = stats_of(c);
  CHECK_EQ_INT(s.names, s0.names);
  CHECK_EQ_INT(s.name_bytes, s0.name_bytes);
  vt_collector_set_max_spans(c, 10);
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof name, "bounded %d", i);
    if (finish(c, start(c, VT_FN_CALL, name)) != VT_OK) bad++;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(stats_of(c).names, s0.names + 10);
  vt_collector_free(c);
}

/* A freed name's index is used again. */
TEST(test_name_index_reused) {
  vt_collector *c = new_enabled();
  vt_span_view v;
  int64_t h1, h2, h3;
  vt_id id;
  REQUIRE(c != NULL);
  h1 = vt_collector_intern(c, "one", 3);
  h2 = vt_collector_intern(c, "two", 3);
  REQUIRE(h1 >= 0 && h2 >= 0);
  CHECK(h1 != h2);
  vt_collector_name_release(c, (uint32_t)h1);
  h3 = vt_collector_intern(c, "three", 5);
  CHECK_EQ_INT(h3, h1);
  id = vt_collector_start_interned(c, NULL, VT_STEP, (uint32_t)h3, NULL);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_MEM(v.name, v.name_len, "three", 5); /* not "one" */
  CHECK_EQ_INT(stats_of(c).names, 2);
  vt_collector_name_release(c, (uint32_t)h2);
  vt_collector_name_release(c, (uint32_t)h3);
  vt_collector_free(c);
}

/* ---- the event bus ---------------------------------------------------------------- */

typedef struct heard {
  int n[VT_EV_CLOSE + 1];
  vt_ev last_ev;
  vt_id last_id;
  char log[512]; /* "S1 E1 M1 R0 ..." */
  vt_collector *unsub_c;          /* on the first event: unsubscribe ... */
  vt_listener unsub_fn;           /* ... this listener */
  void *unsub_ud;                 /* ... with this ud */
  int unsub_rc;
  int read_ok;                    /* START/END/META/LOAD: the span was readable */
} heard;

static void listen(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  heard *h = ud;
  static const char letters[] = "SEMRCLX";
  size_t len = strlen(h->log);
  vt_span_view v;
  h->n[ev]++;
  h->last_ev = ev;
  h->last_id = id;
  if (len + 24 < sizeof h->log)
    snprintf(h->log + len, sizeof h->log - len, "%s%c%llu", len ? " " : "", letters[ev],
             (unsigned long long)id);
  if (ev == VT_EV_START || ev == VT_EV_END || ev == VT_EV_META || ev == VT_EV_LOAD)
    h->read_ok += vt_collector_get(c, id, &v) == VT_OK && v.open == (ev == VT_EV_START);
  if (h->unsub_fn) {
    h->unsub_rc = vt_collector_unsubscribe(h->unsub_c ? h->unsub_c : c, h->unsub_fn, h->unsub_ud);
    h->unsub_fn = NULL;
  }
}

/* Any number of subscribers (there were 8 hook slots): all are called. */
TEST(test_bus_many_subscribers) {
  enum { N = 40 };
  vt_collector *c = new_enabled();
  static heard h[N];
  int i, bad = 0;
  REQUIRE(c != NULL);
  memset(h, 0, sizeof h);
  for (i = 0; i < N; i++) CHECK_EQ_INT(vt_collector_subscribe(c, listen, &h[i]), VT_OK);
  CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  for (i = 0; i < N; i++)
    if (h[i].n[VT_EV_START] != 1 || h[i].n[VT_EV_END] != 1 || h[i].read_ok != 2) bad++;
  CHECK_EQ_INT(bad, 0);
  for (i = 1; i < N; i += 2) CHECK_EQ_INT(vt_collector_unsubscribe(c, listen, &h[i]), VT_OK);
  CHECK_EQ_INT(vt_collector_unsubscribe(c, listen, &h[1]), VT_ENOTFOUND);
  CHECK(finish(c, start(c, VT_STEP, "t")) == VT_OK);
  for (i = 0; i < N; i++)
    if (h[i].n[VT_EV_END] != (i % 2 ? 1 : 2)) bad++;
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(vt_collector_subscribe(c, NULL, &h[0]), VT_EINVAL);
  vt_collector_free(c);
  for (i = 0; i < N; i++) /* every one left heard the collector go */
    if (h[i].n[VT_EV_CLOSE] != (i % 2 ? 0 : 1)) bad++;
  CHECK_EQ_INT(bad, 0);
}

/* A listener may unsubscribe itself, or another, while an event is told. */
TEST(test_bus_unsubscribe_during_fire) {
  vt_collector *c = new_enabled();
  heard a, b, x, d;
  REQUIRE(c != NULL);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&x, 0, sizeof x);
  memset(&d, 0, sizeof d);
  a.unsub_fn = listen; /* a: itself */
  a.unsub_ud = &a;
  b.unsub_fn = listen; /* b: x, which comes after it */
  b.unsub_ud = &x;
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &a), VT_OK);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &b), VT_OK);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &x), VT_OK);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &d), VT_OK);
  CHECK_EQ_INT(start(c, VT_STEP, "s"), 1);
  CHECK_EQ_INT(a.unsub_rc, VT_OK);
  CHECK_EQ_INT(b.unsub_rc, VT_OK);
  CHECK_EQ_INT(a.n[VT_EV_START], 1);
  CHECK_EQ_INT(d.n[VT_EV_START], 1); /* the one after them still heard it */
  CHECK(x.n[VT_EV_START] <= 1);
  CHECK_EQ_INT(finish(c, 1), VT_OK);
  CHECK_EQ_INT(start(c, VT_STEP, "t"), 2);
  CHECK_EQ_INT(a.n[VT_EV_START] + a.n[VT_EV_END], 1); /* gone */
  CHECK_EQ_INT(x.n[VT_EV_END], 0);
  CHECK_EQ_INT(b.n[VT_EV_START], 2);
  CHECK_EQ_INT(d.n[VT_EV_START], 2);
  CHECK_EQ_INT(d.n[VT_EV_END], 1);
  CHECK_EQ_INT(vt_collector_unsubscribe(c, listen, &a), VT_ENOTFOUND);
  /* and everyone leaving during one event */
  b.unsub_fn = listen;
  b.unsub_ud = &b;
  d.unsub_fn = listen;
  d.unsub_ud = &d;
  CHECK_EQ_INT(finish(c, 2), VT_OK);
  CHECK_EQ_INT(b.unsub_rc, VT_OK);
  CHECK_EQ_INT(d.unsub_rc, VT_OK);
  CHECK_EQ_INT(finish(c, start(c, VT_STEP, "u")), VT_OK);
  CHECK_EQ_INT(b.n[VT_EV_END], 2); /* that END, and none after */
  CHECK_EQ_INT(d.n[VT_EV_END], 2);
  CHECK_EQ_INT(d.n[VT_EV_START], 2);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &a), VT_OK); /* the list works again */
  CHECK_EQ_INT(finish(c, start(c, VT_STEP, "v")), VT_OK);
  CHECK_EQ_INT(a.n[VT_EV_END], 1);
  vt_collector_free(c);
  CHECK_EQ_INT(a.n[VT_EV_CLOSE], 1);
  CHECK_EQ_INT(b.n[VT_EV_CLOSE] + d.n[VT_EV_CLOSE] + x.n[VT_EV_CLOSE], 0);
}

/* Which events are told, with which ids, whoever records the spans. */
TEST(test_bus_events) {
  static const char json[] =
      "[{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1000,\"duration_ns\":5},"
      "{\"span_id\":2,\"kind\":\"step\",\"name\":\"b\",\"start_unix_ns\":1000,\"duration_ns\":5}]";
  vt_collector *c = new_enabled();
  vt_load_result r;
  heard h;
  vt_id a, m;
  REQUIRE(c != NULL);
  memset(&h, 0, sizeof h);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &h), VT_OK);
  a = start(c, VT_STEP, "a");
  CHECK_EQ_INT(set_meta(c, a, "open", vi(1)), VT_OK); /* open: no META */
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, a, "late", vi(1), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, a, "late", vi(2), VT_META_IF_ABSENT), VT_EEXIST); /* no META */
  CHECK_EQ_INT(vt_collector_merge_metadata(c, a, vj("{\"m\":1}")), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, a, vj("{}")), VT_OK); /* nothing: no META */
  m = start_flags(c, VT_STEP, "marker", VT_START_INSTANT);
  CHECK_EQ_INT(m, 2);
  CHECK_EQ_INT(start(c, VT_STEP, ""), 3);
  vt_collector_take(c);
  vt_collector_reset(c);
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, NULL, 0),
               VT_OK);
  CHECK_EQ_INT(vt_collector_continue_trace(c, "bad", 3, NULL, 0), VT_EINVAL); /* nothing */
  CHECK_EQ_INT(vt_collector_load_text(c, json, strlen(json), &r), VT_OK);
  CHECK_STR(h.log, "S1 E1 M1 M1 S2 E2 S3 R0 C0 R0 L1 L2");
  /* readable at each: open at START (a marker is already done then) */
  CHECK_EQ_INT(h.read_ok, 8);
  vt_collector_free(c);
  CHECK_EQ_INT(h.n[VT_EV_CLOSE], 1);
  CHECK_EQ_INT(h.last_ev, VT_EV_CLOSE);
  CHECK_EQ_INT(h.last_id, 0);
}

/* Spans a C host records through the public API reach every subscriber, as
 * the Lua binding's would (the bus is the only path). */
TEST(test_bus_sees_stacks_and_disabled) {
  vt_collector *c = vt_collector_new();
  vt_stack *st;
  heard h;
  REQUIRE(c != NULL);
  memset(&h, 0, sizeof h);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &h), VT_OK);
  CHECK_EQ_INT(start(c, VT_STEP, "off"), 0); /* not recorded: not told */
  CHECK_EQ_INT(h.n[VT_EV_START], 0);
  CHECK_EQ_INT(finish(c, start_flags(c, VT_USER_TIMING, "always", VT_START_ALWAYS)), VT_OK);
  vt_collector_set_enabled(c, 1); /* resets */
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  CHECK_EQ_INT(finish(c, start_on(c, st, VT_FN_CALL, "on a stack")), VT_OK);
  vt_stack_free(c, st);
  CHECK_STR(h.log, "S1 E1 R0 S1 E1");
  CHECK_EQ_INT(vt_collector_unsubscribe(c, listen, &h), VT_OK);
  vt_collector_free(c);
  CHECK_EQ_INT(h.n[VT_EV_CLOSE], 0);
}

/* ---- trace context -------------------------------------------------------------------- */

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

TEST(test_continue_trace) {
  static const unsigned char trace[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                          0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  static const char ts[] = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
  vt_collector *c = new_enabled();
  vt_trace_info info, before;
  char out[56], want[56];
  vt_id id;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_traceparent(c, 0, out), VT_ENOTFOUND); /* nothing joined */
  CHECK_EQ_INT(vt_collector_continue_trace(c, TP, 55, ts, strlen(ts)), VT_OK);
  vt_collector_trace_info(c, &info);
  CHECK(memcmp(info.trace_bytes, trace, 16) == 0);
  CHECK_STR(info.trace_id, "trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
  CHECK_STR(vt_collector_trace_id(c), "trace_4bf92f35-77b3-4da6-a3ce-929d0e0e4736");
  CHECK(info.remote_parent == UINT64_C(0x00f067aa0ba902b7));
  CHECK_EQ_INT(info.remote_flags, 1);
  CHECK_EQ_INT(info.sampled, 1);
  CHECK_STR(info.tracestate, ts);
  CHECK_EQ_INT(vt_collector_traceparent(c, 0, out), VT_OK);
  CHECK_STR(out, TP);
  id = start(c, VT_PIPELINE, "p");
  CHECK_EQ_INT(vt_collector_traceparent(c, id, out), VT_OK);
  snprintf(want, sizeof want, "00-4bf92f3577b34da6a3ce929d0e0e4736-%016llx-01",
           (unsigned long long)vt_collector_otel_span_id(c, id));
  CHECK_STR(out, want);
  CHECK(vt_collector_otel_span_id(c, id) == vt_otel_span_id(info.span_salt, id));
  CHECK(vt_otel_span_id(info.span_salt, 1) != vt_otel_span_id(info.span_salt, 2));
  CHECK_EQ_INT(vt_collector_traceparent(c, 99, out), VT_ENOTFOUND);
  /* an invalid tracestate is dropped, the traceparent kept */
  CHECK_EQ_INT(vt_collector_continue_trace(c, TP, 55, "Bad Key=1", 9), VT_OK);
  vt_collector_trace_info(c, &info);
  CHECK_STR(info.tracestate, "");
  CHECK(info.remote_parent == UINT64_C(0x00f067aa0ba902b7));
  /* not sampled: the parent-based default follows the flag */
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", 55, NULL, 0),
               VT_OK);
  vt_collector_trace_info(c, &info);
  CHECK_EQ_INT(info.sampled, 0);
  CHECK_EQ_INT(vt_collector_traceparent(c, 0, out), VT_OK);
  CHECK_STR(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  vt_collector_set_sampler(c, VT_SAMPLER_ALWAYS_ON, 1);
  vt_collector_trace_info(c, &info);
  CHECK_EQ_INT(info.sampled, 1);
  vt_collector_set_sampler(c, VT_SAMPLER_ALWAYS_OFF, 1);
  vt_collector_trace_info(c, &info);
  CHECK_EQ_INT(info.sampled, 0);
  vt_collector_set_sampler(c, VT_SAMPLER_PARENT_ALWAYS_ON, 1);
  /* refused headers change nothing */
  memset(&before, 0, sizeof before);
  memset(&info, 0, sizeof info);
  vt_collector_trace_info(c, &before);
  CHECK_EQ_INT(vt_collector_continue_trace(c, "", 0, NULL, 0), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55, NULL, 0),
               VT_EINVAL);
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "00-00000000000000000000000000000000-00f067aa0ba902b7-01", 55, NULL, 0),
               VT_EINVAL);
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", 55, NULL, 0),
               VT_EINVAL);
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", 55, NULL, 0),
               VT_EINVAL);
  CHECK_EQ_INT(vt_collector_continue_trace(c, TP "-x", 57, NULL, 0), VT_EINVAL); /* 00: exactly 55 */
  vt_collector_trace_info(c, &info);
  CHECK(memcmp(&info, &before, sizeof info) == 0);
  /* a later version may add fields */
  CHECK_EQ_INT(vt_collector_continue_trace(
                   c, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", 61, NULL,
                   0),
               VT_OK);
  /* reset forgets the remote parent */
  vt_collector_reset(c);
  vt_collector_trace_info(c, &info);
  CHECK_EQ_INT(info.remote_parent, 0);
  CHECK_STR(info.tracestate, "");
  CHECK(memcmp(info.trace_bytes, trace, 16) != 0);
  vt_collector_free(c);
}

TEST(test_traceparent_parse) {
  unsigned char trace[16];
  uint64_t parent = 0;
  unsigned flags = 0;
  CHECK(vt_traceparent_parse(TP, 55, trace, &parent, &flags));
  CHECK(parent == UINT64_C(0x00f067aa0ba902b7));
  CHECK_EQ_INT(flags, 1);
  CHECK_EQ_INT(trace[0], 0x4b);
  CHECK_EQ_INT(trace[15], 0x36);
  CHECK(vt_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", 55,
                             trace, &parent, &flags));
  CHECK_EQ_INT(flags, 0xff);
  CHECK(!vt_traceparent_parse(TP, 54, trace, &parent, &flags));
  CHECK(!vt_traceparent_parse("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                              trace, &parent, &flags));
  CHECK(!vt_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", 55,
                              trace, &parent, &flags));
  CHECK(!vt_traceparent_parse("02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", 56,
                              trace, &parent, &flags)); /* a later version: '-' after */
  CHECK(vt_traceparent_parse("02-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55,
                             trace, &parent, &flags));
}

/* reset_trace: the collector reset into a trace described elsewhere. */
TEST(test_reset_trace) {
  vt_collector *a = new_enabled(), *b = new_enabled();
  vt_trace_info ia, ib;
  vt_llm_totals t;
  heard h;
  uint64_t gen;
  REQUIRE(a != NULL && b != NULL);
  CHECK_EQ_INT(vt_collector_continue_trace(a, TP, 55, "k=v", 3), VT_OK);
  vt_collector_trace_info(a, &ia);
  ia.dropped = 7;
  ia.wall_epoch_ns = INT64_C(1700000000000000000);
  CHECK(finish(b, start(b, VT_LLM_CALL, "m")) == VT_OK);
  CHECK_EQ_INT(start(b, VT_PIPELINE, "open"), 2);
  memset(&h, 0, sizeof h);
  CHECK_EQ_INT(vt_collector_subscribe(b, listen, &h), VT_OK);
  gen = vt_collector_generation(b);
  vt_collector_reset_trace(b, &ia);
  vt_collector_trace_info(b, &ib);
  CHECK_STR(ib.trace_id, ia.trace_id);
  CHECK(memcmp(ib.trace_bytes, ia.trace_bytes, 16) == 0);
  CHECK(ib.span_salt == ia.span_salt);
  CHECK(ib.remote_parent == ia.remote_parent);
  CHECK_EQ_INT(ib.remote_flags, ia.remote_flags);
  CHECK_EQ_INT(ib.sampled, 1);
  CHECK_EQ_INT(ib.wall_epoch_ns, INT64_C(1700000000000000000));
  CHECK_EQ_INT(ib.dropped, 7);
  CHECK_EQ_INT(vt_collector_dropped(b), 7);
  CHECK_STR(ib.tracestate, "k=v");
  CHECK_EQ_INT(ib.generation, gen + 1);
  CHECK_EQ_INT(vt_collector_count(b), 0);
  CHECK_EQ_INT(stats_of(b).open, 0);
  CHECK_EQ_INT(current(b), 0);
  vt_collector_llm_totals(b, &t);
  CHECK_EQ_INT(t.calls, 0);
  CHECK_STR(h.log, "R0");
  CHECK_EQ_INT(start(b, VT_STEP, "fresh"), 1);
  CHECK(vt_collector_otel_span_id(b, 1) == vt_collector_otel_span_id(a, 1)); /* same salt */
  /* the sampled flag follows the remote parent's */
  ia.remote_flags = 0;
  vt_collector_reset_trace(b, &ia);
  vt_collector_trace_info(b, &ib);
  CHECK_EQ_INT(ib.sampled, 0);
  vt_collector_free(a);
  vt_collector_free(b);
}

/* ---- import -------------------------------------------------------------------------- */

TEST(test_import) {
  vt_collector *c = vt_collector_new();
  vt_span_view v, got;
  vt_link link;
  vt_event ev[2];
  char *name = malloc(8), *tid = malloc(8);
  vt_value *m = vt_value_dup(vj("{\"model\":\"gpt\",\"input_tokens\":7}"));
  vt_llm_totals t;
  heard h;
  REQUIRE(c != NULL && name && tid && m);
  memcpy(name, "grep", 5);
  memcpy(tid, "remote", 7);
  memset(&h, 0, sizeof h);
  CHECK_EQ_INT(vt_collector_subscribe(c, listen, &h), VT_OK);
  memset(&v, 0, sizeof v);
  v.id = 5;
  v.parent = 3; /* not there: allowed (a file may lack it) */
  v.kind = VT_LLM_CALL;
  v.name = name;
  v.name_len = 4;
  v.track = 3;
  v.start_ns = 100;
  v.start_unix_ns = INT64_C(1000000000000000000);
  v.duration_ns = 42;
  v.metadata = m;
  link.trace_id = tid;
  link.trace_id_len = 6;
  link.span_id = "9";
  link.span_id_len = 1;
  link.attributes = vj("{\"why\":\"x\"}");
  v.links = &link;
  v.nlinks = 1;
  ev[0].name = "e0";
  ev[0].name_len = 2;
  ev[0].time_unix_ns = INT64_C(1000000000000000010);
  ev[0].offset_ns = 10;
  ev[0].attributes = NULL;
  ev[1] = ev[0];
  ev[1].name = "e1";
  ev[1].attributes = vj("{\"n\":1}");
  v.events = ev;
  v.nevents = 2;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_OK);
  memset(name, 'X', 4); /* all of it was copied */
  memset(tid, 'Y', 6);
  memset(m, 0, vt_value_size(m));
  free(name);
  free(tid);
  vt_free(m);
  REQUIRE(vt_collector_get(c, 5, &got) == VT_OK);
  CHECK_EQ_INT(got.id, 5);
  CHECK_EQ_INT(got.parent, 3);
  CHECK_EQ_INT(got.kind, VT_LLM_CALL);
  CHECK_MEM(got.name, got.name_len, "grep", 4);
  CHECK_EQ_INT(got.open, 0);
  CHECK_EQ_INT(got.track, 3);
  CHECK_EQ_INT(got.start_ns, 100);
  CHECK_EQ_INT(got.start_unix_ns, INT64_C(1000000000000000000));
  CHECK_EQ_INT(got.duration_ns, 42);
  CHECK_STR(show(got.metadata), "{\"input_tokens\":i:7,\"model\":\"gpt\"}");
  REQUIRE(got.nlinks == 1);
  CHECK_MEM(got.links[0].trace_id, got.links[0].trace_id_len, "remote", 6);
  CHECK_MEM(got.links[0].span_id, got.links[0].span_id_len, "9", 1);
  CHECK_STR(show(got.links[0].attributes), "{\"why\":\"x\"}");
  REQUIRE(got.nevents == 2);
  CHECK_MEM(got.events[1].name, got.events[1].name_len, "e1", 2);
  CHECK_EQ_INT(got.events[1].offset_ns, 10);
  CHECK_EQ_INT(got.events[0].time_unix_ns, INT64_C(1000000000000000010));
  CHECK_STR(show(got.events[1].attributes), "{\"n\":i:1}");
  CHECK_EQ_INT(vt_collector_count(c), 1);
  CHECK_STR(h.log, "L5");
  vt_collector_llm_totals(c, &t); /* an imported llm_call counts */
  CHECK_EQ_INT(t.calls, 1);
  CHECK_EQ_INT(t.input, 7);
  /* refused */
  memset(&v, 0, sizeof v);
  v.name = "n";
  v.name_len = 1;
  v.kind = VT_STEP;
  v.id = 5;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EEXIST);
  v.id = 0;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.id = 6;
  v.parent = 6;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.parent = 7;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.parent = 0;
  v.kind = VT_KIND_COUNT;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.kind = VT_STEP;
  v.id = ((vt_id)1 << 40) + 1;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_count(c), 1);
  CHECK_STR(h.log, "L5");
  /* accepted: below the ids there, and ids go on after the highest */
  v.id = 2;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_OK);
  CHECK_EQ_INT(vt_collector_count(c), 2);
  vt_collector_set_enabled(c, 0);
  CHECK_EQ_INT(start_flags(c, VT_STEP, "next", VT_START_ALWAYS), 6);
  vt_collector_free(c);
}

/* ---- reading files ---------------------------------------------------------------- */

/* A collector with a little of everything, under the mock clock. */
static vt_collector *sample_trace(void) {
  vt_collector *c = new_enabled();
  vt_start_args a;
  vt_link link;
  vt_stack *st;
  vt_id p, l, t, w;
  int64_t wall;
  if (!c) return NULL;
  vt_collector_mock_push(c, INT64_C(1700000000000));
  p = start(c, VT_PIPELINE, "main");
  set_meta(c, p, "run", vs("r\0n \xff", 5));
  l = start(c, VT_LLM_CALL, "gpt");
  vt_collector_merge_metadata(c, l, vj("{\"model\":\"gpt-4o\",\"input_tokens\":100,"
                                       "\"output_tokens\":20,\"cost_usd\":0.25,"
                                       "\"deep\":{\"x\":[1,2.5,null,true]}}"));
  vt_collector_record_event(c, l, "first_token", 11, vj("{\"n\":1}"));
  vt_collector_mock_advance(c, 12, &wall);
  finish(c, l);
  st = vt_stack_new(c, p);
  t = start_on(c, st, VT_TOOL_CALL, "grep");
  vt_collector_mock_advance(c, 3, &wall);
  finish(c, t);
  vt_stack_free(c, st);
  memset(&a, 0, sizeof a);
  link.trace_id = vt_collector_trace_id(c);
  link.trace_id_len = strlen(link.trace_id);
  link.span_id = "2";
  link.span_id_len = 1;
  link.attributes = vj("{\"why\":\"resume\"}");
  a.links = &link;
  a.nlinks = 1;
  a.flags = VT_START_DETACHED;
  w = vt_collector_start(c, NULL, VT_RESUME, "resume", 6, &a);
  vt_collector_mock_advance(c, 1, &wall);
  finish(c, w);
  start_flags(c, VT_STEP, "</script><b>marker", VT_START_INSTANT);
  vt_collector_mock_advance(c, 4, &wall);
  finish(c, p);
  set_meta_flags(c, p, "late", vi(INT64_MIN), VT_META_DONE);
  return c;
}

/* What the json export writes, reading it gives back: exporting again
 * writes the same bytes. */
TEST(test_load_round_trip) {
  vt_collector *c = sample_trace(), *d = vt_collector_new();
  vt_load_result r;
  char *one, *two;
  size_t n1 = 0, n2 = 0;
  REQUIRE(c != NULL && d != NULL);
  CHECK_EQ_INT(vt_collector_count(c), 5);
  one = vt_collector_export_string(c, VT_FORMAT_JSON, NULL, &n1);
  REQUIRE(one != NULL);
  CHECK_EQ_INT(vt_collector_load_text(d, one, n1, &r), VT_OK);
  CHECK_EQ_INT(r.spans, 5);
  CHECK_EQ_INT(r.unfinished, 0);
  CHECK_EQ_INT(r.renumbered, 0);
  CHECK_EQ_INT(r.skipped_lines, 0);
  CHECK_EQ_INT(vt_collector_count(d), 5);
  CHECK_STR(vt_collector_trace_id(d), vt_collector_trace_id(c));
  CHECK(vt_collector_otel_span_id(d, 3) == vt_collector_otel_span_id(c, 3)); /* the salt too */
  two = vt_collector_export_string(d, VT_FORMAT_JSON, NULL, &n2);
  REQUIRE(two != NULL);
  CHECK_MEM(two, n2, one, n1);
  vt_free(one);
  vt_free(two);
  /* and the summary */
  one = vt_collector_summary(c, &n1);
  two = vt_collector_summary(d, &n2);
  CHECK(one && two);
  if (one && two) CHECK_MEM(two, n2, one, n1);
  vt_free(one);
  vt_free(two);
  vt_collector_free(c);
  vt_collector_free(d);
}

TEST(test_load_json_list) {
  static const char text[] =
      "[\n"
      "{\"trace_id\":\"trace_01234567-89ab-7def-8123-456789abcdef\",\"span_id\":1,"
      "\"kind\":\"pipeline\",\"name\":\"p\",\"start_unix_ms\":1000,\"duration_ms\":5,"
      "\"metadata\":{\"k\":\"v\"}},\n"
      "{\"span_id\":2,\"parent_id\":1,\"kind\":\"step\",\"name\":\"s\","
      "\"start_unix_ns\":1000000000,\"duration_ns\":3000000,\"track\":4},\n"
      "{\"dropped_spans\":3}\n"
      "]\n";
  vt_collector *c = vt_collector_new();
  vt_load_result r;
  vt_trace_info info;
  vt_span_view v;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_load_text(c, text, strlen(text), &r), VT_OK);
  CHECK_EQ_INT(r.spans, 2);
  CHECK_EQ_INT(r.torn_tail, 0);
  CHECK_STR(r.error, "");
  CHECK_EQ_INT(vt_collector_dropped(c), 3);
  vt_collector_trace_info(c, &info);
  CHECK_STR(info.trace_id, "trace_01234567-89ab-7def-8123-456789abcdef");
  CHECK_EQ_INT(info.trace_bytes[0], 0x01);
  CHECK_EQ_INT(info.trace_bytes[15], 0xef);
  REQUIRE(vt_collector_get(c, 1, &v) == VT_OK);
  CHECK_EQ_INT(v.start_unix_ns, INT64_C(1000000000));
  CHECK_EQ_INT(v.duration_ns, 5 * MS);
  CHECK(meta_str_is(&v, "k", "v"));
  REQUIRE(vt_collector_get(c, 2, &v) == VT_OK);
  CHECK_EQ_INT(v.parent, 1);
  CHECK_EQ_INT(v.track, 4);
  CHECK_EQ_INT(v.duration_ns, 3 * MS);
  CHECK_EQ_INT(vt_collector_load_text(c, "[]", 2, &r), VT_OK); /* an empty list is a trace */
  CHECK_EQ_INT(r.spans, 0);
  CHECK_EQ_INT(vt_collector_count(c), 0);
  vt_collector_free(c);
}

/* A stream cut short by a crash: torn and corrupt lines are skipped and
 * counted; open spans come back unfinished. */
TEST(test_load_stream_cut) {
  static const char text[] =
      "{\"type\":\"trace\",\"trace_id\":\"trace_x\",\"start_unix_ns\":1000000000}\n"
      "{\"type\":\"start\",\"span\":{\"span_id\":1,\"kind\":\"pipeline\",\"name\":\"p\","
      "\"start_unix_ns\":1000000000}}\n"
      "{\"type\":\"start\",\"span\":{\"span_id\":2,\"parent_id\":1,\"kind\":\"step\","
      "\"name\":\"s\",\"start_unix_ns\":1005000000}}\n"
      "{\"type\":\"end\",\"span\":{\"span_id\":2,\"parent_id\":1,\"kind\":\"step\","
      "\"name\":\"s\",\"start_unix_ns\":1005000000,\"duration_ns\":3000000}}\n"
      "{\"type\":\"end\",\"span\":{\"span_i\n" /* torn mid-file (a full disk) */
      "not json at all\n"
      "{\"type\":\"unknown line\"}\n"
      "{\"type\":\"meta\",\"span_id\":2,\"metadata\":{\"late\":true}}\n"
      "{\"type\":\"start\",\"span\":{\"span_id\":3,\"parent_id\":1,\"kind\":\"step\","
      "\"name\":\"t\",\"start_unix_ns\":1010000000}}\n"
      "{\"type\":\"end\",\"span\":{\"span_id\":3,\"parent_id\":1,\"ki"; /* cut by the crash */
  vt_collector *c = vt_collector_new();
  vt_load_result r;
  vt_span_view v;
  REQUIRE(c != NULL);
  CHECK_EQ_INT(vt_collector_load_text(c, text, strlen(text), &r), VT_OK);
  CHECK_EQ_INT(r.spans, 3);
  CHECK_EQ_INT(r.unfinished, 2);
  CHECK_EQ_INT(r.skipped_lines, 3);
  CHECK_EQ_INT(r.torn_tail, 1);
  CHECK_STR(vt_collector_trace_id(c), "trace_x");
  REQUIRE(vt_collector_get(c, 2, &v) == VT_OK);
  CHECK_EQ_INT(v.duration_ns, 3 * MS);
  CHECK(meta(&v, "unfinished") == NULL);
  CHECK_EQ_INT(vt_value_type(meta(&v, "late")), VT_TRUE);
  REQUIRE(vt_collector_get(c, 1, &v) == VT_OK);
  CHECK_EQ_INT(vt_value_type(meta(&v, "unfinished")), VT_TRUE);
  CHECK_EQ_INT(v.duration_ns, 10 * MS); /* to the last time seen */
  REQUIRE(vt_collector_get(c, 3, &v) == VT_OK);
  CHECK_EQ_INT(vt_value_type(meta(&v, "unfinished")), VT_TRUE);
  CHECK_EQ_INT(v.open, 0);
  /* the same with its last line whole: nothing torn */
  CHECK_EQ_INT(vt_collector_load_text(c, text, (size_t)(strrchr(text, '\n') + 1 - text), &r),
               VT_OK);
  CHECK_EQ_INT(r.unfinished, 2);
  CHECK_EQ_INT(r.torn_tail, 0);
  CHECK_EQ_INT(r.skipped_lines, 3);
  vt_collector_free(c);
}

/* After a load that succeeded, r.line and r.error say why the first skipped
 * line was skipped, and nothing when none was (not what a later skipped
 * line, or the torn last one, left there). */
TEST(test_load_result_says_what_was_skipped) {
  static const char span1[] = "{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\","
                              "\"start_unix_ns\":1,\"duration_ns\":1}";
  static const struct {
    const char *lines[4];
    size_t line, skipped;
    const char *why;
  } cases[] = {
      {{"{\"type\":\"trace\",\"trace_id\":\"trace_x\"}", "not json", "[1]", NULL}, 2, 2,
       "unexpected character"},
      {{"{\"type\":\"trace\",\"trace_id\":\"trace_x\"}", "{\"type\":\"odd\"}", NULL}, 2, 1,
       "unknown line type"},
      {{"{\"type\":\"trace\",\"trace_id\":\"trace_x\"}", "{\"no\":\"type\"}", NULL}, 2, 1,
       "no object with a \"type\""},
      {{"{\"type\":\"trace\",\"trace_id\":\"trace_x\"}", "{\"type\":\"meta\",\"span_id\":1}", NULL}, 2,
       1, "meta line"},
      {{"{\"type\":\"end\",\"span\":SPAN}", "{\"type\":\"end\",\"span\":SPAN}", "x", NULL}, 2, 2,
       "span 1 ends twice"},
      {{"{\"type\":\"end\",\"span\":{\"span_id\":1}}", "{\"type\":\"end\",\"span\":SPAN}", NULL}, 1, 1,
       "unknown span kind"},
  };
  vt_collector *c = vt_collector_new();
  vt_load_result r;
  char text[1024];
  size_t i, j;
  REQUIRE(c != NULL);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *p = text;
    for (j = 0; j < 4 && cases[i].lines[j]; j++) {
      const char *l = cases[i].lines[j], *at = strstr(l, "SPAN");
      if (at) p += sprintf(p, "%.*s%s%s\n", (int)(at - l), l, span1, at + 4);
      else p += sprintf(p, "%s\n", l);
    }
    p += sprintf(p, "{\"type\":\"end\",\"span\":{\"span_"); /* a torn last line */
    CHECK_EQ_INT(vt_collector_load_text(c, text, strlen(text), &r), VT_OK);
    CHECK_EQ_INT(r.torn_tail, 1);
    if (!CHECK_EQ_INT(r.skipped_lines, cases[i].skipped) || !CHECK_EQ_INT(r.line, cases[i].line) ||
        !CHECK(strstr(r.error, cases[i].why) != NULL))
      printf("#   case %lu: line %lu: %s\n", (unsigned long)i, (unsigned long)r.line, r.error);
    /* whole: the same answer */
    CHECK_EQ_INT(vt_collector_load_text(c, text, (size_t)(strrchr(text, '\n') + 1 - text), &r), VT_OK);
    CHECK_EQ_INT(r.line, cases[i].line);
    CHECK(strstr(r.error, cases[i].why) != NULL);
  }
  /* nothing skipped, even with a torn last line: nothing said */
  snprintf(text, sizeof text, "{\"type\":\"end\",\"span\":%s}\n{\"type\":\"end\",\"sp", span1);
  CHECK_EQ_INT(vt_collector_load_text(c, text, strlen(text), &r), VT_OK);
  CHECK_EQ_INT(r.skipped_lines, 0);
  CHECK_EQ_INT(r.torn_tail, 1);
  CHECK_EQ_INT(r.line, 0);
  CHECK_STR(r.error, "");
  snprintf(text, sizeof text, "[%s]", span1);
  CHECK_EQ_INT(vt_collector_load_text(c, text, strlen(text), &r), VT_OK);
  CHECK_EQ_INT(r.line, 0);
  CHECK_STR(r.error, "");
  vt_collector_free(c);
}

/* A refused file leaves the collector as it was, and says where: VT_EEXIST
 * for a span id that comes twice, VT_EINVAL for everything else. */
TEST(test_load_refused) {
  static const struct {
    const char *text;
    size_t line;
  } bad[] = {
      {"[{\"span_id\":1}]", 1},
      {"[\n{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1},\n"
       "{\"span_id\":2,\"parent_id\":2,\"kind\":\"step\",\"name\":\"b\",\"start_unix_ns\":1,"
       "\"duration_ns\":1}\n]", 3},
      {"[\n{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1},\n"
       "{\"span_id\":1,\"kind\":\"step\",\"name\":\"b\",\"start_unix_ns\":1,\"duration_ns\":1}\n]", 3},
      {"[\n\n{\"span_id\":1,\"kind\":\"fn\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1}]", 3},
      {"[{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":-1,\"duration_ns\":1}]", 1},
      {"[{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1},", 1},
      {"[{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1}]", 1},
      {"[{\"span_id\":1099511627777,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,"
       "\"duration_ns\":1}]", 1},
      {"[] trailing", 1},
      {"", 1},
      {"   \n  ", 1},
      {"not json\nnor this\n", 1},
      {"\0\0\0\0", 1},
  };
  static const size_t lens[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4};
  vt_collector *c = new_enabled();
  vt_load_result r;
  snapshot before;
  vt_id open_id;
  size_t i;
  REQUIRE(c != NULL);
  CHECK(finish(c, start(c, VT_STEP, "kept")) == VT_OK);
  open_id = start(c, VT_PIPELINE, "still open");
  before = snap(c);
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = lens[i] ? lens[i] : strlen(bad[i].text);
    int rc = vt_collector_load_text(c, bad[i].text, len, &r);
    if (!CHECK_EQ_INT(rc, i == 2 ? VT_EEXIST : VT_EINVAL) || !CHECK_EQ_INT(r.line, bad[i].line) ||
        !CHECK(strlen(r.error) > 0) || !CHECK(same_snap(snap(c), before)))
      printf("#   input %lu: status %d, line %lu: %s\n", (unsigned long)i, rc,
             (unsigned long)r.line, r.error);
  }
  CHECK_EQ_INT(is_open(c, open_id), 1);
  CHECK_EQ_INT(current(c), open_id);
  vt_collector_free(c);
}

/* From a FILE: larger than the read window, and a read error. */
TEST(test_load_file) {
  vt_collector *c = new_enabled(), *d = vt_collector_new();
  vt_load_result r;
  FILE *f;
  char name[64];
  snapshot before;
  size_t i;
  int rc;
  REQUIRE(c != NULL && d != NULL);
  for (i = 0; i < 3000; i++) { /* ~1 MB of json */
    vt_id id;
    snprintf(name, sizeof name, "span number %lu", (unsigned long)i);
    id = start(c, VT_FN_CALL, name);
    set_meta(c, id, "i", vi((int64_t)i));
    finish(c, id);
  }
  f = tmpfile();
  REQUIRE(f != NULL);
  CHECK_EQ_INT(vt_collector_export(c, VT_FORMAT_JSON, NULL, f), VT_OK);
  CHECK(ftell(f) > 3 * 65536);
  rewind(f);
  CHECK_EQ_INT(vt_collector_load(d, f, &r), VT_OK);
  CHECK_EQ_INT(r.spans, 3000);
  CHECK_EQ_INT(vt_collector_count(d), 3000);
  fclose(f);
  /* a stream that cannot be read */
  before = snap(d);
  f = fopen("/dev/null", "w");
  REQUIRE(f != NULL);
  errno = 0;
  rc = vt_collector_load(d, f, &r);
  CHECK_EQ_INT(rc, VT_EIO);
  CHECK(errno != 0);
  CHECK(strlen(r.error) > 0);
  CHECK(same_snap(snap(d), before));
  fclose(f);
  vt_collector_free(c);
  vt_collector_free(d);
}

/* Sparse ids (ids 4096 apart, one past 2^36) are renumbered 1..N in order:
 * memory follows the spans, not the id range (a 4096-id chunk of slots is
 * 196 KB, and 2^36 ids would need a 128 MB chunk table). */
TEST(test_load_sparse_ids) {
  enum { N = 300 };
  size_t cap = N * 200 + 400, n, i;
  char *text = malloc(cap);
  vt_collector *c;
  vt_load_result r;
  vt_span_view v;
  double t0, t1;
  int rc, bad = 0;
  size_t held;
  vt_id id, prev = 0;
  REQUIRE(text != NULL);
  n = (size_t)snprintf(text, cap, "[");
  for (i = 0; i < N; i++) {
    vt_id sid = i + 1 == N ? ((vt_id)1 << 36) : 1 + (vt_id)i * 4096;
    n += (size_t)snprintf(text + n, cap - n,
                          "%s{\"span_id\":%llu,%s%llu,\"kind\":\"step\",\"name\":\"s%lu\","
                          "\"start_unix_ns\":%lu,\"duration_ns\":1}",
                          i ? ",\n" : "\n", (unsigned long long)sid,
                          prev ? "\"parent_id\":" : "\"x\":", (unsigned long long)prev,
                          (unsigned long)i, (unsigned long)(1000 + i));
    prev = sid;
  }
  n += (size_t)snprintf(text + n, cap - n, "\n]\n");
  REQUIRE(n < cap);
  mem_live = mem_peak = 0;
  vt_set_allocator(&measuring); /* nothing of the core's is held across it */
  c = vt_collector_new();
  t0 = now_s();
  rc = c ? vt_collector_load_text(c, text, n, &r) : VT_ENOMEM;
  t1 = now_s();
  held = mem_live;
  if (rc == VT_OK) {
    CHECK_EQ_INT(r.spans, N);
    CHECK_EQ_INT(r.renumbered, 1);
    CHECK_EQ_INT(vt_collector_count(c), N);
    for (i = 0, id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id), i++) {
      char want[16];
      snprintf(want, sizeof want, "s%lu", (unsigned long)i); /* in the same order */
      if (vt_collector_get(c, id, &v) != VT_OK || v.name_len != strlen(want) ||
          memcmp(v.name, want, v.name_len) || (i > 0) != (v.parent != 0) || v.parent >= id ||
          (v.parent && parent_of(c, v.parent) == (vt_id)-1))
        bad++;
    }
    CHECK_EQ_INT(i, N);
    CHECK_EQ_INT(bad, 0);
  }
  vt_collector_free(c);
  vt_set_allocator(NULL);
  CHECK_EQ_INT(rc, VT_OK);
  printf("# %d sparse spans: %.3f s of CPU, %lu bytes held, %lu at most\n", N, t1 - t0,
         (unsigned long)held, (unsigned long)mem_peak);
  CHECK(held < 2u << 20); /* 2 MiB for 300 spans (was 196 KB each) */
  CHECK(mem_peak < 8u << 20);
  CHECK(t1 - t0 < 1.0 * slowness());
  CHECK_EQ_INT(mem_live, 0);
  free(text);
}

/* Reading a stream is linear: 100,000 starts, then their 100,000 ends. */
TEST(test_load_stream_linear) {
  enum { N = 100000 };
  size_t cap = (size_t)N * 200, n = 0, i, mid;
  char *text = malloc(cap);
  vt_collector *c = vt_collector_new();
  vt_load_result r;
  double t0, t1;
  int rc;
  REQUIRE(text != NULL && c != NULL);
  n += (size_t)snprintf(text + n, cap - n, "{\"type\":\"trace\",\"trace_id\":\"trace_x\"}\n");
  for (i = 1; i <= N; i++)
    n += (size_t)snprintf(text + n, cap - n,
                          "{\"type\":\"start\",\"span\":{\"span_id\":%lu,\"kind\":\"step\","
                          "\"name\":\"s\",\"start_unix_ns\":%lu}}\n",
                          (unsigned long)i, (unsigned long)(1000 + i));
  mid = n;
  for (i = 1; i <= N; i++)
    n += (size_t)snprintf(text + n, cap - n,
                          "{\"type\":\"end\",\"span\":{\"span_id\":%lu,\"kind\":\"step\","
                          "\"name\":\"s\",\"start_unix_ns\":%lu,\"duration_ns\":5}}\n",
                          (unsigned long)i, (unsigned long)(1000 + i));
  REQUIRE(n < cap);
  t0 = now_s();
  rc = vt_collector_load_text(c, text, n, &r);
  t1 = now_s();
  printf("# %d starts and %d ends (%lu bytes) read in %.3f s of CPU\n", N, N, (unsigned long)n,
         t1 - t0);
  CHECK_EQ_INT(rc, VT_OK);
  CHECK_EQ_INT(r.spans, N);
  CHECK_EQ_INT(r.unfinished, 0);
  CHECK_EQ_INT(r.skipped_lines, 0);
  CHECK_EQ_INT(vt_collector_count(c), N);
  CHECK(t1 - t0 < 2.0 * slowness());
  /* and all left open */
  t0 = now_s();
  rc = vt_collector_load_text(c, text, mid, &r);
  t1 = now_s();
  CHECK_EQ_INT(rc, VT_OK);
  CHECK_EQ_INT(r.unfinished, N);
  CHECK_EQ_INT(r.spans, N);
  CHECK(t1 - t0 < 2.0 * slowness());
  free(text);
  vt_collector_free(c);
}

/* ---- the NDJSON stream ------------------------------------------------------------- */

static char tmp_dir[64];

/* A fresh temporary directory for the running test, and paths in it. */
static const char *tmp_path(const char *name) {
  static char path[128];
  if (!tmp_dir[0]) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/vt-test-core-XXXXXX");
    if (!mkdtemp(tmp_dir)) {
      tmp_dir[0] = '\0';
      return "/nonexistent/dir/x";
    }
  }
  snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
  return path;
}

static void tmp_clean(void) {
  char cmd[128];
  if (!tmp_dir[0]) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
  if (system(cmd) != 0) printf("# could not remove %s\n", tmp_dir);
  tmp_dir[0] = '\0';
}

/* The bytes of a file (vt_free-able by free), NUL-ended; *len its size. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *p = NULL;
  long n;
  *len = 0;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (p = malloc((size_t)n + 1)) != NULL) {
    *len = fread(p, 1, (size_t)n, f);
    p[*len] = '\0';
  }
  fclose(f);
  return p;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

TEST(test_stream_lines) {
  vt_collector *c = new_enabled(), *d = vt_collector_new();
  const char *path = tmp_path("s.ndjson");
  vt_stream_status st;
  vt_stream *s;
  vt_load_result r;
  vt_span_view v;
  char *text;
  size_t len;
  vt_id a, b;
  int fd;
  REQUIRE(c != NULL && d != NULL);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  s = vt_stream_open(c, fd, 1);
  REQUIRE(s != NULL);
  a = start(c, VT_FN_CALL, "a");
  CHECK_EQ_INT(set_meta(c, a, "k", vi(1)), VT_OK);
  CHECK_EQ_INT(finish(c, a), VT_OK);
  CHECK_EQ_INT(set_meta_flags(c, a, "late", vs("yes", 3), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(vt_collector_continue_trace(c, TP, 55, NULL, 0), VT_OK);
  b = start(c, VT_PIPELINE, "left open");
  vt_stream_status_get(s, &st);
  CHECK_EQ_INT(st.lines, 6); /* trace, start, end, meta, context, start */
  CHECK_EQ_INT(st.lost_lines, 0);
  CHECK_EQ_INT(st.error, 0);
  CHECK_EQ_INT(st.failing, 0);
  text = slurp(path, &len); /* written at once */
  REQUIRE(text != NULL);
  CHECK_EQ_INT(count_lines(text), 6);
  CHECK(strncmp(text, "{\"type\":\"trace\",", 16) == 0);
  CHECK(strstr(text, "{\"type\":\"meta\",\"span_id\":1,") != NULL);
  CHECK(strstr(text, "{\"type\":\"context\",") != NULL);
  free(text);
  CHECK_EQ_INT(vt_stream_close(s), 0);
  CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF); /* closed with the stream */
  /* it reads back: the open span unfinished, the late key merged */
  {
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    CHECK_EQ_INT(vt_collector_load(d, f, &r), VT_OK);
    fclose(f);
  }
  CHECK_EQ_INT(r.spans, 2);
  CHECK_EQ_INT(r.unfinished, 1);
  CHECK_EQ_INT(r.skipped_lines, 0);
  CHECK_STR(vt_collector_trace_id(d), vt_collector_trace_id(c)); /* the trace joined */
  REQUIRE(vt_collector_get(d, a, &v) == VT_OK);
  CHECK_EQ_INT(meta_int(&v, "k"), 1);
  CHECK(meta_str_is(&v, "late", "yes"));
  REQUIRE(vt_collector_get(d, b, &v) == VT_OK);
  CHECK_EQ_INT(vt_value_type(meta(&v, "unfinished")), VT_TRUE);
  vt_collector_free(c);
  vt_collector_free(d);
}

/* A buffered stream writes at close (or when 64 KiB are waiting). */
TEST(test_stream_buffered) {
  vt_collector *c = new_enabled();
  const char *path = tmp_path("b.ndjson");
  vt_stream_status st;
  vt_stream *s;
  char *text;
  size_t len, i;
  int fd;
  REQUIRE(c != NULL);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  s = vt_stream_open(c, fd, 0);
  REQUIRE(s != NULL);
  for (i = 0; i < 3; i++) CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  text = slurp(path, &len);
  CHECK(text != NULL && len == 0); /* nothing yet */
  free(text);
  vt_stream_status_get(s, &st);
  CHECK_EQ_INT(st.lines, 0);
  for (i = 0; i < 2000; i++) CHECK(finish(c, start(c, VT_STEP, "many")) == VT_OK);
  text = slurp(path, &len);
  CHECK(text != NULL && len >= 65536); /* a full window went out */
  free(text);
  CHECK_EQ_INT(vt_stream_close(s), 0);
  text = slurp(path, &len);
  REQUIRE(text != NULL);
  CHECK_EQ_INT(count_lines(text), 1 + 2 * 2003);
  free(text);
  vt_collector_free(c);
}

/* Appending to a stream a crash cut inside a line: the new lines start on a
 * fresh one, so only the torn line is lost. `open_flags`: how the file is
 * opened for the append. */
static void torn_append(int open_flags) {
  static const char torn[] = "{\"type\":\"trace\",\"trace_id\":\"trace_t\"}\n"
                             "{\"type\":\"end\",\"span\":{\"sp";
  vt_collector *c = new_enabled(), *d = vt_collector_new();
  const char *path = tmp_path("torn.ndjson");
  vt_load_result r;
  vt_stream *s;
  char *text;
  size_t len;
  int fd;
  REQUIRE(c != NULL && d != NULL);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  CHECK(write(fd, torn, sizeof torn - 1) == (ssize_t)(sizeof torn - 1));
  close(fd);
  fd = open(path, open_flags);
  REQUIRE(fd >= 0);
  s = vt_stream_open(c, fd, 1);
  REQUIRE(s != NULL);
  CHECK(finish(c, start(c, VT_STEP, "after")) == VT_OK);
  CHECK_EQ_INT(vt_stream_close(s), 0);
  text = slurp(path, &len);
  REQUIRE(text != NULL);
  CHECK(strncmp(text + sizeof torn - 1, "\n{\"type\":\"trace\"", 16) == 0);
  CHECK_EQ_INT(vt_collector_load_text(d, text, len, &r), VT_OK);
  CHECK_EQ_INT(r.spans, 1); /* the last trace in the file */
  CHECK_EQ_INT(r.skipped_lines, 1);
  CHECK_EQ_INT(r.torn_tail, 0);
  CHECK_STR(vt_collector_trace_id(d), vt_collector_trace_id(c));
  free(text);
  vt_collector_free(c);
  vt_collector_free(d);
}

TEST(test_stream_after_torn_line) { torn_append(O_RDWR | O_APPEND); }

/* As the binding opens a stream's file (l_io.c): write-only. */
TEST(test_stream_after_torn_line_write_only) { torn_append(O_WRONLY | O_APPEND); }

/* A full disk (/dev/full; where there is none, a pipe nobody reads):
 * reported at once in the status, lines counted as lost, and the first
 * error comes back from close. */
TEST(test_stream_write_error) {
  vt_collector *c = new_enabled();
  vt_stream_status st;
  vt_stream *s;
  int fd = open("/dev/full", O_WRONLY), want = ENOSPC;
  void (*old)(int) = SIG_DFL;
  REQUIRE(c != NULL);
  if (fd < 0) {
    int p[2];
    REQUIRE(pipe(p) == 0);
    close(p[0]);
    fd = p[1];
    want = EPIPE;
    old = signal(SIGPIPE, SIG_IGN);
  }
  s = vt_stream_open(c, fd, 1);
  REQUIRE(s != NULL);
  vt_stream_status_get(s, &st);
  CHECK_EQ_INT(st.error, want);
  CHECK_EQ_INT(st.failing, 1);
  CHECK_EQ_INT(st.lost_lines, 1); /* the header */
  CHECK(finish(c, start(c, VT_STEP, "lost")) == VT_OK);
  vt_stream_status_get(s, &st);
  CHECK_EQ_INT(st.lost_lines, 3);
  CHECK_EQ_INT(st.lines, 0);
  CHECK_EQ_INT(vt_stream_close(s), want);
  if (want == EPIPE) signal(SIGPIPE, old);
  vt_collector_free(c);
}

/* The collector may go first: the stream hears VT_EV_CLOSE and lets go. */
TEST(test_stream_outlives_collector) {
  vt_collector *c = new_enabled();
  const char *path = tmp_path("o.ndjson");
  vt_stream *s;
  char *text;
  size_t len;
  int fd;
  REQUIRE(c != NULL);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  s = vt_stream_open(c, fd, 0);
  REQUIRE(s != NULL);
  CHECK(finish(c, start(c, VT_STEP, "s")) == VT_OK);
  vt_collector_free(c);
  CHECK_EQ_INT(vt_stream_close(s), 0);
  text = slurp(path, &len);
  REQUIRE(text != NULL);
  CHECK_EQ_INT(count_lines(text), 3);
  free(text);
}

/* ---- exports ------------------------------------------------------------------------- */

TEST(test_exports) {
  vt_collector *c = sample_trace();
  vt_export_opts o;
  vt_value *p;
  int f;
  REQUIRE(c != NULL);
  memset(&o, 0, sizeof o);
  o.generated_unix_ms = INT64_C(1700000000000); /* the HTML report says when: the same twice */
  for (f = 0; f < VT_FORMAT_COUNT; f++) {
    char *s, *back;
    size_t len = 0, blen;
    FILE *tmp;
    s = vt_collector_export_string(c, (vt_format)f, &o, &len);
    if (!CHECK(s != NULL)) {
      printf("#   format %s\n", vt_format_name(f));
      continue;
    }
    CHECK_EQ_INT(len, strlen(s));
    if (f == VT_FORMAT_JSON || f == VT_FORMAT_OTLP || f == VT_FORMAT_CHROME) {
      const char *err = NULL;
      size_t at = 0;
      vt_value *v = vt_json_parse(s, len, &err, &at);
      if (!CHECK(v != NULL)) printf("#   %s: %s at %lu\n", vt_format_name(f), err, (unsigned long)at);
      if (v && f == VT_FORMAT_JSON) {
        CHECK_EQ_INT(vt_value_type(v), VT_ARR);
        CHECK_EQ_INT(vt_value_count(v), vt_collector_count(c));
      }
      vt_free(v);
    }
    tmp = tmpfile(); /* the same bytes to a file */
    REQUIRE(tmp != NULL);
    CHECK_EQ_INT(vt_collector_export(c, (vt_format)f, &o, tmp), VT_OK);
    blen = (size_t)ftell(tmp);
    rewind(tmp);
    back = malloc(blen + 1);
    REQUIRE(back != NULL);
    CHECK_EQ_INT(fread(back, 1, blen, tmp), blen);
    CHECK_MEM(back, blen, s, len);
    free(back);
    fclose(tmp);
    if (f == VT_FORMAT_HTML) /* a page; names shown, never run */
      CHECK(strstr(s, "<html") != NULL && strstr(s, "</script><b>") == NULL);
    if (f == VT_FORMAT_SUMMARY) {
      char *sum = vt_collector_summary(c, &blen);
      CHECK(sum != NULL && blen == len && !memcmp(sum, s, len));
      vt_free(sum);
    }
    vt_free(s);
  }
  for (o.weight = VT_WEIGHT_TIME; o.weight < VT_WEIGHT_COUNT; o.weight++) {
    char *s = vt_collector_export_string(c, VT_FORMAT_FOLDED, &o, NULL);
    CHECK(s != NULL && strstr(s, "pipeline main") != NULL);
    vt_free(s);
  }
  o.service_name = "my-svc";
  o.resource = vj("{\"deployment.environment\":\"test\"}");
  {
    char *s = vt_collector_export_string(c, VT_FORMAT_OTLP, &o, NULL);
    CHECK(s != NULL && strstr(s, "my-svc") != NULL && strstr(s, "deployment.environment"));
    vt_free(s);
  }
  CHECK(vt_collector_export_string(c, (vt_format)VT_FORMAT_COUNT, NULL, NULL) == NULL);
  p = vt_collector_profile(c);
  REQUIRE(p != NULL);
  CHECK_EQ_INT(vt_value_type(p), VT_OBJ);
  CHECK(vt_value_get(p, "wall_ms", 7) != NULL);
  CHECK(vt_value_get(p, "by_kind", 7) != NULL);
  CHECK(vt_value_get(p, "residual_ms", 11) != NULL);
  CHECK(vt_value_get(p, "top_llm_calls", 13) != NULL);
  CHECK(vt_value_get(p, "top_tool_calls", 14) != NULL);
  CHECK(vt_value_get(p, "steps", 5) != NULL);
  CHECK(vt_value_get(p, "llm", 3) != NULL);
  CHECK_EQ_INT(vt_value_int(vt_value_get(vt_value_get(p, "llm", 3), "input_tokens", 12)), 100);
  vt_free(p);
  vt_collector_free(c);
}

static int tmp_leftovers(void) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q vmtrace-tmp", tmp_dir);
  return system(cmd) == 0;
}

TEST(test_export_path) {
  vt_collector *c = sample_trace();
  const char *path;
  char want_path[128];
  struct stat st;
  char *want, *got;
  size_t wlen, glen;
  int fd;
  REQUIRE(c != NULL);
  want = vt_collector_export_string(c, VT_FORMAT_CHROME, NULL, &wlen);
  REQUIRE(want != NULL);
  path = tmp_path("trace.json");
  snprintf(want_path, sizeof want_path, "%s", path);
  fd = open(want_path, O_WRONLY | O_CREAT | O_TRUNC, 0600); /* replaced, mode kept */
  REQUIRE(fd >= 0);
  CHECK(write(fd, "old", 3) == 3);
  close(fd);
  CHECK_EQ_INT(vt_collector_export_path(c, VT_FORMAT_CHROME, NULL, want_path), VT_OK);
  got = slurp(want_path, &glen);
  CHECK(got != NULL);
  if (got) CHECK_MEM(got, glen, want, wlen);
  free(got);
  CHECK(stat(want_path, &st) == 0 && (st.st_mode & 0777) == 0600);
  CHECK(!tmp_leftovers());
  errno = 0;
  CHECK_EQ_INT(vt_collector_export_path(c, VT_FORMAT_JSON, NULL, "/nonexistent-dir/x.json"),
               VT_EIO);
  CHECK_EQ_INT(errno, ENOENT);
  CHECK_EQ_INT(vt_collector_export_path(c, VT_FORMAT_COUNT, NULL, want_path), VT_EINVAL);
  got = slurp(want_path, &glen); /* a failed export leaves the old file */
  CHECK(got != NULL && glen == wlen);
  free(got);
  CHECK(!tmp_leftovers());
  vt_free(want);
  vt_collector_free(c);
}

/* ---- LLM usage and totals --------------------------------------------------------- */

TEST(test_usage_read) {
  vt_usage u;
  vt_usage_read(vj("{\"input_tokens\":100,\"output_tokens\":20,\"cache_read_tokens\":5,"
                   "\"cache_write_tokens\":1,\"cost_usd\":0.5,\"model\":\"gpt-4o\","
                   "\"provider\":\"openai\"}"),
                &u);
  CHECK_EQ_INT(u.input, 100);
  CHECK_EQ_INT(u.output, 20);
  CHECK_EQ_INT(u.cache_read, 5);
  CHECK_EQ_INT(u.cache_write, 1);
  CHECK_EQ_INT(vt_usage_tokens(&u), 126);
  CHECK(u.priced && u.cost_usd == 0.5);
  CHECK_MEM(u.model, u.model_len, "gpt-4o", 6);
  CHECK_MEM(u.provider, u.provider_len, "openai", 6);
  vt_usage_read(NULL, &u); /* no metadata: nothing */
  CHECK_EQ_INT(vt_usage_tokens(&u), 0);
  CHECK(!u.priced);
  CHECK_EQ_INT(u.model_len, 0);
  CHECK(u.model != NULL);
  vt_usage_read(vj("{\"input_tokens\":-5,\"output_tokens\":\"7\",\"cost_usd\":2,"
                   "\"model\":42}"),
                &u); /* not counts: 0; an integer cost is a cost */
  CHECK_EQ_INT(u.input, 0);
  CHECK_EQ_INT(u.output, 0);
  CHECK(u.priced && u.cost_usd == 2.0);
  CHECK_EQ_INT(u.model_len, 0);
  vt_usage_read(vj("{\"cost_usd\":\"1\"}"), &u);
  CHECK(!u.priced);
}

static vt_id llm_call(vt_collector *c, const char *model, int64_t in, int64_t out, double cost) {
  vt_id id = start(c, VT_LLM_CALL, model);
  set_meta(c, id, "model", vs(model, strlen(model)));
  set_meta(c, id, "input_tokens", vi(in));
  set_meta(c, id, "output_tokens", vi(out));
  if (cost >= 0) set_meta(c, id, "cost_usd", vn(cost));
  finish(c, id);
  return id;
}

static vt_llm_totals model_totals(const vt_collector *c, const char *model) {
  vt_llm_totals t;
  const char *m;
  size_t i, len;
  memset(&t, 0, sizeof t);
  for (i = 0; i < vt_collector_llm_models(c); i++)
    if (vt_collector_llm_model(c, i, &m, &len, &t) == VT_OK && len == strlen(model) &&
        !memcmp(m, model, len))
      return t;
  memset(&t, 0, sizeof t);
  return t;
}

/* Running totals: kept as llm_call spans finish, not changed by take or
 * max_spans, cleared by reset. */
TEST(test_llm_totals) {
  vt_collector *c = new_enabled();
  vt_llm_totals t;
  vt_start_args a;
  const char *m;
  size_t len;
  vt_id open_id, tool;
  REQUIRE(c != NULL);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 0);
  CHECK_EQ_INT(vt_collector_llm_models(c), 0);
  llm_call(c, "gpt-4o", 100, 10, 0.5);
  llm_call(c, "gpt-4o", 200, 20, 0.25);
  llm_call(c, "claude", 1000, 1, -1); /* unpriced */
  open_id = start(c, VT_LLM_CALL, "still open"); /* not finished: not counted */
  set_meta(c, open_id, "input_tokens", vi(99999));
  tool = start(c, VT_TOOL_CALL, "tool"); /* not an llm_call */
  set_meta(c, tool, "input_tokens", vi(5));
  finish(c, tool);
  memset(&a, 0, sizeof a);
  a.flags = VT_START_INSTANT; /* a marker llm_call counts at once */
  a.metadata = vj("{\"model\":\"gpt-4o\",\"cache_read_tokens\":3,\"cost_usd\":1}");
  CHECK(vt_collector_start(c, NULL, VT_LLM_CALL, "m", 1, &a) != 0);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 4);
  CHECK_EQ_INT(t.unpriced, 1);
  CHECK_EQ_INT(t.input, 1300);
  CHECK_EQ_INT(t.output, 31);
  CHECK_EQ_INT(t.cache_read, 3);
  CHECK(fabs(t.cost_usd - 1.75) < 1e-12);
  CHECK_EQ_INT(vt_collector_llm_models(c), 2);
  CHECK_EQ_INT(model_totals(c, "gpt-4o").calls, 3);
  CHECK_EQ_INT(model_totals(c, "gpt-4o").input, 300);
  CHECK_EQ_INT(model_totals(c, "claude").calls, 1);
  CHECK_EQ_INT(model_totals(c, "claude").unpriced, 1);
  CHECK_EQ_INT(vt_collector_llm_model(c, 2, &m, &len, &t), VT_ENOTFOUND);
  /* take: the spans go, the totals stay */
  vt_collector_take(c);
  CHECK_EQ_INT(vt_collector_count(c), 0);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 4);
  CHECK_EQ_INT(t.input, 1300);
  /* max_spans: evicted spans stay counted */
  vt_collector_set_max_spans(c, 1);
  llm_call(c, "claude", 1, 1, 0.125);
  llm_call(c, "new-model", 1, 1, 0.125);
  llm_call(c, "new-model", 1, 1, 0.125);
  CHECK_EQ_INT(vt_collector_count(c), 1);
  CHECK(vt_collector_dropped(c) >= 2);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 7);
  CHECK_EQ_INT(t.input, 1303);
  CHECK(fabs(t.cost_usd - 2.125) < 1e-12);
  CHECK_EQ_INT(vt_collector_llm_models(c), 3);
  CHECK_EQ_INT(model_totals(c, "new-model").calls, 2);
  CHECK_EQ_INT(model_totals(c, "claude").calls, 2);
  /* the open one, finished now, counts with its usage */
  CHECK_EQ_INT(finish(c, open_id), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 8);
  CHECK_EQ_INT(t.input, 1303 + 99999);
  CHECK_EQ_INT(model_totals(c, "").calls, 1); /* no model: counted under "" */
  /* reset clears them */
  vt_collector_reset(c);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 0);
  CHECK_EQ_INT(t.input, 0);
  CHECK(t.cost_usd == 0);
  CHECK_EQ_INT(vt_collector_llm_models(c), 0);
  llm_call(c, "after", 1, 2, 0.5);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 1);
  CHECK_EQ_INT(vt_collector_llm_models(c), 1);
  vt_collector_free(c);
}

/* Token counts are any integers metadata holds: sums of them stop at
 * INT64_MAX (the totals, a span's tokens, OTLP's input tokens) where they
 * overflowed before (UBSan found it; a plain build showed negative totals). */
TEST(test_token_sums_saturate) {
  vt_collector *c = new_enabled();
  vt_llm_totals t;
  vt_usage u;
  vt_span_view v;
  vt_id id;
  char *otlp;
  size_t n;
  REQUIRE(c != NULL);
  llm_call(c, "big", INT64_MAX - 1, 5, -1);
  llm_call(c, "big", INT64_MAX - 1, 5, -1);
  vt_collector_llm_totals(c, &t);
  CHECK(t.input == INT64_MAX);
  CHECK_EQ_INT(t.output, 10);
  CHECK(model_totals(c, "big").input == INT64_MAX);
  /* a late change of a counted span: a total held at the maximum stays */
  id = llm_call(c, "big", 7, 1, -1);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "input_tokens", 12, vi(8), VT_META_DONE), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK(t.input == INT64_MAX);
  CHECK_EQ_INT(t.output, 11);
  /* one span's tokens */
  REQUIRE(vt_collector_get(c, vt_collector_completed_id(c, 0), &v) == VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, v.id, "cache_read_tokens", 17, vi(INT64_MAX), VT_META_DONE),
               VT_OK);
  REQUIRE(vt_collector_get(c, v.id, &v) == VT_OK);
  vt_usage_read(v.metadata, &u);
  CHECK(vt_usage_tokens(&u) == INT64_MAX);
  /* OTLP's input tokens: input + cache read + cache write */
  otlp = vt_collector_export_string(c, VT_FORMAT_OTLP, NULL, &n);
  REQUIRE(otlp != NULL);
  if (!CHECK(strstr(otlp, "{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":"
                          "\"9223372036854775807\"}}") != NULL))
    printf("#   %.300s\n", strstr(otlp, "gen_ai.usage.input_tokens") ? strstr(otlp, "gen_ai.usage.input_tokens") : otlp);
  CHECK(strstr(otlp, "\"intValue\":\"-") == NULL);
  vt_free(otlp);
  /* the folded cost weight (micro-dollars) of a cost past int64 */
  {
    vt_export_opts o;
    char *folded;
    memset(&o, 0, sizeof o);
    o.weight = VT_WEIGHT_COST;
    llm_call(c, "dear", 1, 1, 1e300);
    folded = vt_collector_export_string(c, VT_FORMAT_FOLDED, &o, &n);
    REQUIRE(folded != NULL);
    if (!CHECK(strstr(folded, "llm_call dear 9223372036854775807\n") != NULL)) printf("#   %s\n", folded);
    vt_free(folded);
  }
  vt_collector_free(c);
}

/* The totals say what the finished llm_call spans say, however late their
 * usage came: a change of a finished one's metadata (VT_META_DONE,
 * IF_ABSENT, merge, a stream's meta line on load) takes its old usage out
 * and the new in, model totals too; a change that is refused or touches no
 * usage changes nothing, not even the cost's last bits. */
TEST(test_llm_totals_follow_late_usage) {
  static const char stream[] =
      "{\"type\":\"trace\",\"trace_id\":\"trace_x\"}\n"
      "{\"type\":\"end\",\"span\":{\"span_id\":1,\"kind\":\"llm_call\",\"name\":\"l\","
      "\"start_unix_ns\":1,\"duration_ns\":1,\"metadata\":{\"model\":\"m\"}}}\n"
      "{\"type\":\"meta\",\"span_id\":1,\"metadata\":{\"input_tokens\":7,\"cost_usd\":0.5}}\n";
  vt_collector *c = new_enabled();
  vt_llm_totals t, before;
  vt_load_result r;
  vt_id id, tool;
  char name[16];
  int i;
  REQUIRE(c != NULL);
  llm_call(c, "other", 1, 1, 0.1);
  id = llm_call(c, "a", 10, 0, 0.5);
  CHECK_EQ_INT(set_meta_flags(c, id, "input_tokens", vi(30), VT_META_DONE), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 2);
  CHECK_EQ_INT(t.input, 31);
  CHECK_EQ_INT(model_totals(c, "a").input, 30);
  /* a new model and output: the call moves from a to b */
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{\"model\":\"b\",\"output_tokens\":5}")), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 2);
  CHECK_EQ_INT(t.output, 6);
  CHECK_EQ_INT(model_totals(c, "a").calls, 0);
  CHECK_EQ_INT(model_totals(c, "a").input, 0);
  CHECK_EQ_INT(model_totals(c, "b").calls, 1);
  CHECK_EQ_INT(model_totals(c, "b").input, 30);
  CHECK_EQ_INT(model_totals(c, "b").output, 5);
  CHECK(fabs(model_totals(c, "b").cost_usd - 0.5) < 1e-12);
  /* no longer priced */
  CHECK_EQ_INT(set_meta_flags(c, id, "cost_usd", vs("?", 1), VT_META_DONE), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.unpriced, 1);
  CHECK(fabs(t.cost_usd - 0.1) < 1e-12);
  CHECK_EQ_INT(model_totals(c, "b").unpriced, 1);
  /* usage where there was none: IF_ABSENT */
  CHECK_EQ_INT(set_meta_flags(c, id, "cache_read_tokens", vi(4), VT_META_IF_ABSENT), VT_OK);
  vt_collector_llm_totals(c, &before);
  CHECK_EQ_INT(before.cache_read, 4);
  /* refused, or no usage: exactly as they were */
  CHECK_EQ_INT(set_meta_flags(c, id, "cache_read_tokens", vi(9), VT_META_IF_ABSENT), VT_EEXIST);
  CHECK_EQ_INT(set_meta_flags(c, id, "note", vs("x", 1), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("{\"input_tokens\":30}")), VT_OK);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vj("[1]")), VT_EINVAL);
  vt_collector_llm_totals(c, &t);
  CHECK(memcmp(&t, &before, sizeof t) == 0);
  /* spans of other kinds are not counted, whatever their metadata */
  tool = start(c, VT_TOOL_CALL, "tool");
  finish(c, tool);
  CHECK_EQ_INT(set_meta_flags(c, tool, "input_tokens", vi(1000), VT_META_DONE), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK(memcmp(&t, &before, sizeof t) == 0);
  /* taken spans are gone: their usage stays in */
  vt_collector_take(c);
  CHECK_EQ_INT(set_meta_flags(c, id, "input_tokens", vi(1), VT_META_DONE), VT_ENOTFOUND);
  vt_collector_llm_totals(c, &t);
  CHECK(memcmp(&t, &before, sizeof t) == 0);
  /* a stream's meta line on load */
  CHECK_EQ_INT(vt_collector_load_text(c, stream, strlen(stream), &r), VT_OK);
  vt_collector_llm_totals(c, &t);
  CHECK_EQ_INT(t.calls, 1);
  CHECK_EQ_INT(t.input, 7);
  CHECK_EQ_INT(t.unpriced, 0);
  CHECK(fabs(t.cost_usd - 0.5) < 1e-12);
  CHECK_EQ_INT(model_totals(c, "m").input, 7);
  /* past 1024 models, a model already there is still counted as itself */
  vt_collector_reset(c);
  for (i = 0; i < 1024; i++) {
    snprintf(name, sizeof name, "m%d", i);
    llm_call(c, name, 1, 0, -1);
  }
  id = llm_call(c, "m0", 1, 0, -1);
  llm_call(c, "new", 1, 0, -1);
  CHECK_EQ_INT(model_totals(c, "m0").calls, 2);
  CHECK_EQ_INT(model_totals(c, "(other models)").calls, 1);
  CHECK_EQ_INT(set_meta_flags(c, id, "model", vs("newer", 5), VT_META_DONE), VT_OK);
  CHECK_EQ_INT(model_totals(c, "m0").calls, 1);
  CHECK_EQ_INT(model_totals(c, "(other models)").calls, 2);
  vt_collector_free(c);
}

/* The profile's LLM section is the running totals (one rule). */
TEST(test_profile_llm_is_totals) {
  vt_collector *c = new_enabled();
  vt_value *p;
  const vt_value *llm;
  REQUIRE(c != NULL);
  llm_call(c, "gpt-4o", 10, 1, 2.0);
  llm_call(c, "gpt-4o", 10, 1, -1);
  p = vt_collector_profile(c);
  REQUIRE(p != NULL);
  llm = vt_value_get(p, "llm", 3);
  CHECK(llm != NULL);
  CHECK_EQ_INT(vt_value_int(vt_value_get(llm, "calls", 5)), 2);
  CHECK_EQ_INT(vt_value_int(vt_value_get(llm, "input_tokens", 12)), 20);
  CHECK(vt_value_num(vt_value_get(llm, "cost_usd", 8)) == 2.0);
  CHECK_EQ_INT(vt_value_int(vt_value_get(llm, "unpriced", 8)), 1);
  vt_free(p);
  vt_collector_take(c); /* taken spans: the totals are still the run's */
  p = vt_collector_profile(c);
  REQUIRE(p != NULL);
  CHECK_EQ_INT(vt_value_int(vt_value_get(vt_value_get(p, "llm", 3), "calls", 5)), 2);
  vt_free(p);
  vt_collector_free(c);
}

/* ---- prices ------------------------------------------------------------------------------ */

TEST(test_prices) {
  vt_prices *p = vt_prices_new();
  vt_price gpt4o = {2.5, 10, 1.25, 0}, mini = {0.15, 0.6, 0.075, 0}, exact = {9, 9, 9, 9},
           azure = {3, 12, 0, 0}, claude = {3, 15, 0.3, 3.75};
  const vt_price *pr;
  const char *matched = NULL;
  vt_usage u;
  REQUIRE(p != NULL);
  CHECK(vt_prices_find(p, "", 0, "gpt-4o", 6, &matched) == NULL);
  CHECK(matched == NULL);
  CHECK_EQ_INT(vt_prices_set(p, "openai", 6, "gpt-4o", 6, &gpt4o), VT_OK);
  CHECK_EQ_INT(vt_prices_set(p, "openai", 6, "gpt-4o-mini", 11, &mini), VT_OK);
  CHECK_EQ_INT(vt_prices_set(p, "openai", 6, "gpt-4o-2024-05-13", 17, &exact), VT_OK);
  CHECK_EQ_INT(vt_prices_set(p, "azure", 5, "gpt-4o", 6, &azure), VT_OK);
  CHECK_EQ_INT(vt_prices_set(p, "anthropic", 9, "claude-3-5-sonnet", 17, &claude), VT_OK);
#define FIND(prov, model) \
  vt_prices_find(p, prov, strlen(prov), model, strlen(model), &matched)
  pr = FIND("openai", "gpt-4o");
  CHECK(pr != NULL && pr->input == 2.5);
  CHECK_STR(matched, "gpt-4o");
  pr = FIND("openai", "gpt-4o-mini-2024-07-18"); /* the longest prefix */
  CHECK(pr != NULL && pr->input == 0.15);
  CHECK_STR(matched, "gpt-4o-mini");
  pr = FIND("openai", "gpt-4o-2024-05-13"); /* exact wins */
  CHECK(pr != NULL && pr->input == 9);
  CHECK_STR(matched, "gpt-4o-2024-05-13");
  pr = FIND("openai", "gpt-4o-2024-08-06");
  CHECK(pr != NULL && pr->input == 2.5);
  CHECK(FIND("openai", "gpt-4o@2024") != NULL);
  CHECK(FIND("openai", "gpt-4o:latest") == NULL); /* only '-' and '@' mark a version */
  CHECK(FIND("openai", "gpt-4o.1") == NULL);      /* gpt-5.1 is not gpt-5 */
  CHECK(FIND("openai", "gpt-4omni") == NULL); /* a boundary character is required */
  CHECK(FIND("openai", "gpt-4o_x") == NULL);
  CHECK(FIND("openai", "gpt-4") == NULL);     /* a shorter id is no match */
  CHECK(FIND("openai", "GPT-4o") == NULL);
  CHECK(FIND("openai", "") == NULL);
  pr = FIND("azure", "gpt-4o-mini"); /* per provider: azure has no mini */
  CHECK(pr != NULL && pr->input == 3);
  CHECK_STR(matched, "gpt-4o");
  CHECK(FIND("google", "gpt-4o") == NULL);
  pr = FIND("", "claude-3-5-sonnet-20241022"); /* "": any provider */
  CHECK(pr != NULL && pr->output == 15);
  pr = FIND("", "gpt-4o-mini");
  CHECK(pr != NULL && pr->input == 0.15);
  CHECK(vt_prices_find(p, "openai", 6, "gpt-4o", 6, NULL) != NULL); /* matched may be NULL */
  /* a model id with a NUL: bytes with lengths */
  CHECK(vt_prices_find(p, "openai", 6, "gpt-4o\0x", 8, &matched) == NULL);
  /* set again: replaced */
  gpt4o.input = 5;
  CHECK_EQ_INT(vt_prices_set(p, "openai", 6, "gpt-4o", 6, &gpt4o), VT_OK);
  pr = FIND("openai", "gpt-4o-2024-08-06");
  CHECK(pr != NULL && pr->input == 5);
  /* cost */
  memset(&u, 0, sizeof u);
  u.input = 1000000;
  u.output = 500000;
  u.cache_read = 2000000;
  u.cache_write = 1000000;
  CHECK(fabs(vt_price_cost(&claude, &u) - (3 + 7.5 + 0.6 + 3.75)) < 1e-9);
  u.input = 1000;
  u.output = u.cache_read = u.cache_write = 0;
  CHECK(fabs(vt_price_cost(&mini, &u) - 0.00015) < 1e-15);
  vt_prices_clear(p);
  CHECK(FIND("openai", "gpt-4o") == NULL);
  CHECK_EQ_INT(vt_prices_set(p, "openai", 6, "gpt-4o", 6, &gpt4o), VT_OK);
  CHECK(FIND("openai", "gpt-4o") != NULL);
#undef FIND
  vt_prices_free(p);
  vt_prices_free(NULL);
}

/* A C host reads a provider's response through the core, as llm_response
 * does: the Anthropic fixture body (spec/fixtures/llm) and a Gemini one
 * with float counts (as some JSON decoders give them). */
TEST(test_response_read) {
  vt_response r;
  vt_prices *p = vt_prices_new();
  vt_price sonnet = {3, 15, 0.3, 3.75};
  vt_vb b;
  size_t n;
  const char *s;
  const vt_value *body = vj(
      "{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\","
      "\"model\":\"claude-sonnet-4-20250514\",\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
      "\"content\":[],\"usage\":{\"input_tokens\":472,\"cache_creation_input_tokens\":1820,"
      "\"cache_read_input_tokens\":3072,\"output_tokens\":65,\"service_tier\":\"standard\"}}");
  REQUIRE(p != NULL);
  CHECK_EQ_INT(vt_prices_set(p, "anthropic", 9, "claude-sonnet-4", 15, &sonnet), VT_OK);
  CHECK_EQ_INT(vt_response_read(body, "anthropic", 9, &r), VT_OK);
  CHECK_EQ_INT(r.shape, VT_SHAPE_ANTHROPIC_MESSAGES);
  CHECK_EQ_INT(r.usage.input, 472);
  CHECK_EQ_INT(r.usage.cache_read, 3072);
  CHECK_EQ_INT(r.usage.cache_write, 1820);
  CHECK_EQ_INT(r.usage.output, 65);
  CHECK_EQ_INT(r.nfinish, 1);
  s = vt_response_finish(&r, 0, &n);
  CHECK(s && n == 8 && memcmp(s, "tool_use", 8) == 0);
  CHECK(vt_response_finish(&r, 1, &n) == NULL);
  CHECK(r.response_id_len == 20 && memcmp(r.response_id, "msg_01Aq9w938a90dw8q", 20) == 0);
  vt_response_price(&r, p);
  CHECK(r.usage.priced && fabs(r.usage.cost_usd - 0.0101376) < 1e-12);
  vt_vb_init(&b);
  vt_response_metadata(&r, &b);
  CHECK_STR(show(vt_vb_value(&b)),
            "{\"cache_read_tokens\":i:3072,\"cache_write_tokens\":i:1820,\"cost_usd\":0.0101376,"
            "\"finish_reasons\":[\"tool_use\"],\"input_tokens\":i:472,"
            "\"model\":\"claude-sonnet-4-20250514\",\"output_tokens\":i:65,"
            "\"provider\":\"anthropic\",\"response_id\":\"msg_01Aq9w938a90dw8q\"}");
  vt_vb_free(&b);
  /* gemini: floats that are whole numbers are counts; thoughts are output */
  body = vj("{\"candidates\":[{\"finishReason\":\"STOP\"},{\"finishReason\":\"MAX_TOKENS\"}],"
            "\"usageMetadata\":{\"promptTokenCount\":11500.0,\"cachedContentTokenCount\":10000,"
            "\"candidatesTokenCount\":1000,\"thoughtsTokenCount\":10000},"
            "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}");
  CHECK_EQ_INT(vt_response_read(body, "gemini", 6, &r), VT_OK);
  CHECK_EQ_INT(r.usage.input, 1500);
  CHECK_EQ_INT(r.usage.output, 11000);
  CHECK(r.usage.provider_len == 6 && memcmp(r.usage.provider, "google", 6) == 0);
  CHECK_EQ_INT(r.nfinish, 2);
  s = vt_response_finish(&r, 1, &n);
  CHECK(s && n == 10 && memcmp(s, "MAX_TOKENS", 10) == 0);
  vt_response_price(&r, p);
  CHECK(!r.usage.priced); /* not in this catalog */
  /* refusals say why */
  CHECK_EQ_INT(vt_response_read(body, "cohere", 6, &r), VT_EINVAL);
  CHECK(strstr(r.error, "openai, anthropic, google, gemini") != NULL);
  CHECK_EQ_INT(vt_response_read(body, "anthropic", 9, &r), VT_EINVAL); /* no usage block */
  CHECK_EQ_INT(vt_response_read(vj("{\"usage\":{\"prompt_tokens\":5}}"), "anthropic", 9, &r),
               VT_EINVAL);
  CHECK(strstr(r.error, "neither input_tokens nor output_tokens") != NULL);
  CHECK_EQ_INT(vt_response_read(vj("{\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":5,"
                                   "\"prompt_tokens_details\":{\"cached_tokens\":6}}}"),
                                "openai", 6, &r),
               VT_EINVAL);
  CHECK(strstr(r.error, "cached_tokens is larger than usage.prompt_tokens") != NULL);
  CHECK_EQ_INT(vt_response_read(vj("[1]"), "openai", 6, &r), VT_EINVAL);
  vt_prices_free(p);
}

TEST(test_dropped_zero_in_ordinary_run) {
  vt_collector *c = new_enabled();
  vt_stack *st;
  vt_id ids[64];
  int i, round;
  REQUIRE(c != NULL);
  st = vt_stack_new(c, 0);
  REQUIRE(st != NULL);
  CHECK_EQ_INT(stats_of(c).stacks, 1);
  for (round = 0; round < 50; round++) {
    for (i = 0; i < 64; i++) {
      ids[i] = start_on(c, (i & 1) ? st : NULL, (vt_kind)(i % VT_KIND_COUNT),
                        "s");
      set_meta(c, ids[i], "i", vi(i));
      vt_collector_record_event(c, ids[i], "e", 1, NULL);
    }
    CHECK_EQ_INT(stats_of(c).open, 64);
    for (i = 63; i >= 0; i--) CHECK_EQ_INT(finish(c, ids[i]), VT_OK);
    if (round % 10 == 9) vt_collector_take(c);
  }
  CHECK_EQ_INT(vt_collector_dropped(c), 0);
  CHECK_EQ_INT(ids[63], 50 * 64);
  CHECK_EQ_INT(stats_of(c).open, 0);
  vt_stack_free(c, st);
  CHECK_EQ_INT(stats_of(c).stacks, 0);
  vt_collector_free(c);
}

/* ---- failed values ------------------------------------------------------------------------ */

/* A builder that failed (out of memory) gives NULL, and a host passes what
 * vt_vb_value gives: the core answers it (the old API answered a NULL cJSON
 * item with VT_ENOMEM) instead of reading through it. */
static void null_values_body(void) {
  vt_collector *c = new_enabled();
  vt_id id = start(c, VT_STEP, "s");
  vt_span_view v;
  vt_vb b;
  vt_vb_init(&b);
  vt_vb_end(&b); /* wrong nesting: the builder failed */
  CHECK(vt_vb_value(&b) == NULL);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k", 1, vt_vb_value(&b), 0), VT_ENOMEM);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vt_vb_value(&b)), VT_ENOMEM);
  CHECK(vt_value_dup(vt_vb_value(&b)) == NULL);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k", 1, NULL, VT_META_DONE), VT_ENOMEM);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "k", 1, NULL, VT_META_IF_ABSENT), VT_ENOMEM);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, NULL), VT_ENOMEM);
  CHECK_EQ_INT(vt_collector_get(c, id, &v), VT_OK); /* nothing changed */
  CHECK(v.metadata == NULL);
  vt_vb_free(&b);
  vt_collector_free(c);
}

TEST(test_null_values_answered) {
  int status;
  status = in_child(null_values_body);
  if (!CHECK_EQ_INT(status, 0) && status > 128)
    printf("#   the child died of signal %d\n", status - 128);
}

/* A cJSON_Raw integer past int64 is no exact integer: it must not become a
 * different one, and it reads as vt_json_parse reads the same literal (a
 * number). The ends of int64 stay exact integers. */
TEST(test_cjson_raw_out_of_range) {
  static const char *const texts[] = {"9223372036854775808", "-99999999999999999999",
                                      "9223372036854775807", "-9223372036854775808"};
  size_t i;
  for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    cJSON *raw = cJSON_CreateRaw(texts[i]);
    vt_value *v, *p;
    REQUIRE(raw != NULL);
    v = vt_value_from_cjson(raw);
    p = vt_json_parse(texts[i], strlen(texts[i]), NULL, NULL);
    REQUIRE(v != NULL && p != NULL);
    CHECK_EQ_INT(vt_value_type(v), i < 2 ? VT_NUM : VT_INT);
    if (!CHECK_EQ_INT(vt_value_type(v), vt_value_type(p)) ||
        !CHECK(vt_value_size(v) == vt_value_size(p) && memcmp(v, p, vt_value_size(v)) == 0))
      printf("#   %s: %s\n", texts[i], show(v));
    vt_free(v);
    vt_free(p);
    cJSON_Delete(raw);
  }
}

/* Link and event attributes are objects (the Lua API refuses anything
 * else): record_event and import refuse others with VT_EINVAL and change
 * nothing; at start (no status to give) they are no attributes, as metadata
 * that is no object is no metadata. */
TEST(test_attributes_must_be_objects) {
  const vt_value *bad[3];
  vt_collector *c = new_enabled();
  vt_span_view v, got;
  vt_start_args a;
  vt_link link;
  vt_event ev;
  vt_id id;
  char *json;
  size_t i, n;
  REQUIRE(c != NULL);
  bad[0] = vj("[1,2]");
  bad[1] = vj("\"s\"");
  bad[2] = vj("3");
  id = start(c, VT_STEP, "s");
  for (i = 0; i < 3; i++)
    CHECK_EQ_INT(vt_collector_record_event(c, id, "e", 1, bad[i]), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "ok", 2, vj("{\"a\":1}")), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "none", 4, NULL), VT_OK);
  REQUIRE(vt_collector_get(c, id, &got) == VT_OK);
  CHECK_EQ_INT(got.nevents, 2);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  CHECK_EQ_INT(vt_collector_record_event(c, id, "e", 1, bad[0]), VT_EINVAL);
  /* at start: the link is kept, without the array */
  memset(&a, 0, sizeof a);
  link.trace_id = "t";
  link.trace_id_len = 1;
  link.span_id = "1";
  link.span_id_len = 1;
  link.attributes = bad[0];
  a.links = &link;
  a.nlinks = 1;
  id = vt_collector_start(c, NULL, VT_STEP, "linked", 6, &a);
  REQUIRE(id != 0);
  REQUIRE(vt_collector_get(c, id, &got) == VT_OK);
  REQUIRE(got.nlinks == 1);
  CHECK(got.links[0].attributes == NULL);
  CHECK_EQ_INT(finish(c, id), VT_OK);
  json = vt_collector_export_string(c, VT_FORMAT_JSON, NULL, &n);
  CHECK(json != NULL && strstr(json, "[1,2]") == NULL);
  vt_free(json);
  /* import: refused, nothing added */
  memset(&v, 0, sizeof v);
  v.id = 100;
  v.kind = VT_STEP;
  v.name = "imp";
  v.name_len = 3;
  v.links = &link; /* attributes [1,2] */
  v.nlinks = 1;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.nlinks = 0;
  ev.name = "e";
  ev.name_len = 1;
  ev.time_unix_ns = ev.offset_ns = 0;
  ev.attributes = bad[1];
  v.events = &ev;
  v.nevents = 1;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL);
  v.nevents = 0;
  v.metadata = bad[2];
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_EINVAL); /* not VT_ENOMEM */
  CHECK_EQ_INT(vt_collector_count(c), 2);
  CHECK(vt_collector_get(c, 100, &got) == VT_ENOTFOUND);
  v.metadata = NULL;
  link.attributes = vj("{\"why\":\"x\"}");
  ev.attributes = vj("{}");
  v.nlinks = 1;
  v.nevents = 1;
  CHECK_EQ_INT(vt_collector_import(c, &v), VT_OK);
  vt_collector_free(c);
}

/* A stream open while a file is loaded writes the loaded trace (a header
 * with its trace id and salt, then its spans): reading the stream gives the
 * file's spans back. */
TEST(test_stream_during_load) {
  vt_collector *src = sample_trace(), *c = new_enabled(), *d = vt_collector_new();
  const char *path = tmp_path("during-load.ndjson");
  vt_load_result r;
  vt_stream *s;
  char *json, *back, *text;
  size_t n, bn, len;
  int fd;
  REQUIRE(src != NULL && c != NULL && d != NULL);
  json = vt_collector_export_string(src, VT_FORMAT_JSON, NULL, &n);
  REQUIRE(json != NULL);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  s = vt_stream_open(c, fd, 1);
  REQUIRE(s != NULL);
  CHECK(finish(c, start(c, VT_STEP, "before the load")) == VT_OK);
  CHECK_EQ_INT(vt_collector_load_text(c, json, n, &r), VT_OK);
  CHECK_EQ_INT(vt_stream_close(s), 0);
  text = slurp(path, &len);
  REQUIRE(text != NULL);
  CHECK_EQ_INT(vt_collector_load_text(d, text, len, &r), VT_OK);
  CHECK_EQ_INT(r.spans, vt_collector_count(src));
  CHECK_STR(vt_collector_trace_id(d), vt_collector_trace_id(src));
  back = vt_collector_export_string(d, VT_FORMAT_JSON, NULL, &bn);
  CHECK(back != NULL);
  if (back) CHECK_MEM(back, bn, json, n);
  vt_free(back);
  vt_free(json);
  free(text);
  vt_collector_free(src);
  vt_collector_free(c);
  vt_collector_free(d);
}

/* A file that names no trace (an empty span list, spans without trace_id,
 * a stream header without one), or names one that is no uuid, still leaves
 * a valid trace: an all-zero trace id is invalid in W3C and OTLP, and a
 * traceparent made from it is refused by every receiver (and by
 * vt_collector_continue_trace). A file without one gets a fresh trace id; an
 * id that is no uuid keeps its text, with bytes derived from it (the same
 * each time); an id too long for the collector is refused, never cut. */
TEST(test_load_without_trace_id) {
  static const char *const texts[] = {
      "[]",
      "[{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1}]",
      "{\"type\":\"trace\"}\n",
      "{\"type\":\"trace\",\"trace_id\":\"\"}\n",
      "{\"type\":\"trace\",\"trace_id\":\"trace_x\"}\n",
      "[{\"trace_id\":\"trace_x\",\"span_id\":1,\"kind\":\"step\",\"name\":\"a\","
      "\"start_unix_ns\":1,\"duration_ns\":1}]"};
  /* 47 bytes fit; 48 do not, nor 46 + a 2-byte UTF-8 sequence (\xc3\xa9) */
  static const char fits[] = "[{\"trace_id\":\"trace_0123456789012345678901234567890123456789a\","
                             "\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,"
                             "\"duration_ns\":1}]";
  static const char *const too_long[] = {
      "[{\"trace_id\":\"trace_0123456789012345678901234567890123456789ab\","
      "\"span_id\":1,\"kind\":\"step\",\"name\":\"a\",\"start_unix_ns\":1,\"duration_ns\":1}]",
      "{\"type\":\"trace\",\"trace_id\":\"trace_0123456789012345678901234567890123456789\xc3\xa9\"}\n"
      "{\"type\":\"end\",\"span\":{\"span_id\":1,\"kind\":\"step\",\"name\":\"a\","
      "\"start_unix_ns\":1,\"duration_ns\":1}}\n"};
  vt_collector *c = new_enabled();
  vt_load_result r;
  vt_trace_info info;
  unsigned char trace[16], first[16];
  uint64_t parent;
  unsigned flags;
  char out[56], before[48], *otlp;
  size_t i, n;
  snapshot kept;
  static const unsigned char zero[16];
  REQUIRE(c != NULL);
  for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    int named = i >= 4;
    snprintf(before, sizeof before, "%s", vt_collector_trace_id(c));
    CHECK_EQ_INT(vt_collector_load_text(c, texts[i], strlen(texts[i]), &r), VT_OK);
    vt_collector_trace_info(c, &info);
    if (!CHECK(named || strlen(vt_collector_trace_id(c)) == 42) ||
        !CHECK(named || strcmp(vt_collector_trace_id(c), before) != 0) || /* fresh */
        !CHECK(!named || strcmp(vt_collector_trace_id(c), "trace_x") == 0) ||
        !CHECK(memcmp(info.trace_bytes, zero, 16) != 0))
      printf("#   after input %lu: trace id \"%s\"\n", (unsigned long)i, vt_collector_trace_id(c));
    if (!named) { /* the text and the bytes name the same trace */
      char hex[33];
      size_t k, m = 0;
      for (k = 6; info.trace_id[k] && m < 32; k++)
        if (info.trace_id[k] != '-') hex[m++] = info.trace_id[k];
      hex[m] = '\0';
      for (k = 0; k < 16; k++) snprintf(out + 2 * k, 3, "%02x", info.trace_bytes[k]);
      CHECK_STR(hex, out);
    }
    if (i == 4) memcpy(first, info.trace_bytes, 16);
    if (i == 5) CHECK(memcmp(first, info.trace_bytes, 16) == 0); /* derived alike */
    otlp = vt_collector_export_string(c, VT_FORMAT_OTLP, NULL, &n);
    CHECK(otlp != NULL && strstr(otlp, "\"traceId\":\"00000000000000000000000000000000\"") == NULL);
    vt_free(otlp);
    CHECK_EQ_INT(vt_collector_traceparent(c, vt_collector_start(c, NULL, VT_STEP, "x", 1, NULL), out),
                 VT_OK);
    CHECK(vt_traceparent_parse(out, 55, trace, &parent, &flags));
    CHECK(memcmp(trace, info.trace_bytes, 16) == 0);
  }
  CHECK_EQ_INT(vt_collector_load_text(c, fits, strlen(fits), &r), VT_OK);
  CHECK_STR(vt_collector_trace_id(c), "trace_0123456789012345678901234567890123456789a");
  kept = snap(c);
  for (i = 0; i < sizeof too_long / sizeof too_long[0]; i++) {
    int rc = vt_collector_load_text(c, too_long[i], strlen(too_long[i]), &r);
    if (!CHECK_EQ_INT(rc, VT_EINVAL) || !CHECK_EQ_INT(r.line, 1) ||
        !CHECK(strstr(r.error, "trace id longer than 47 bytes") != NULL))
      printf("#   too long %lu: line %lu: %s\n", (unsigned long)i, (unsigned long)r.line, r.error);
    CHECK(same_snap(snap(c), kept)); /* refused: the collector as it was */
  }
  { /* an id that is not UTF-8 is refused too: the exports would write U+FFFD
     * for its bad bytes, another id (three bytes each: the fuzzer's 40 bad
     * bytes made a file that did not load again); valid UTF-8 goes round */
    static const char *const bad_utf8[] = {
        "[{\"trace_id\":\"trace_\xff\",\"span_id\":1,\"kind\":\"step\",\"name\":\"a\","
        "\"start_unix_ns\":1,\"duration_ns\":1}]",
        "{\"type\":\"trace\",\"trace_id\":\"t\xc3\"}\n",
        "{\"type\":\"trace\",\"trace_id\":\"t\xed\xa0\x80\"}\n"}; /* a surrogate */
    static const char ok_utf8[] =
        "[{\"trace_id\":\"trace_\xc3\xa9t\xc3\xa9\",\"span_id\":1,\"kind\":\"step\",\"name\":\"a\","
        "\"start_unix_ns\":1,\"duration_ns\":1}]";
    char *json;
    vt_collector *c2 = vt_collector_new();
    REQUIRE(c2 != NULL);
    for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
      int rc = vt_collector_load_text(c, bad_utf8[i], strlen(bad_utf8[i]), &r);
      if (!CHECK_EQ_INT(rc, VT_EINVAL) || !CHECK(strstr(r.error, "trace id that is not UTF-8") != NULL))
        printf("#   not UTF-8 %lu: %s\n", (unsigned long)i, r.error);
      CHECK(same_snap(snap(c), kept));
    }
    CHECK_EQ_INT(vt_collector_load_text(c2, ok_utf8, strlen(ok_utf8), &r), VT_OK);
    json = vt_collector_export_string(c2, VT_FORMAT_JSON, NULL, &n);
    REQUIRE(json != NULL);
    CHECK_EQ_INT(vt_collector_load_text(c2, json, n, &r), VT_OK);
    CHECK_STR(vt_collector_trace_id(c2), "trace_\xc3\xa9t\xc3\xa9");
    vt_free(json);
    vt_collector_free(c2);
  }
  vt_collector_free(c);
}

/* The mock clock stays within the times files hold (an OTLP end time,
 * start + duration, overflowed past them). */
TEST(test_mock_time_range) {
  vt_collector *c = vt_collector_new();
  int64_t wall = 0;
  REQUIRE(c);
  CHECK_EQ_INT(vt_collector_mock_push(c, -1), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_mock_push(c, VT_MAX_TIME_MS), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_mock_push(c, INT64_C(9223372036854)), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_mocked(c), 0);
  CHECK_EQ_INT(vt_collector_mock_push(c, VT_MAX_TIME_MS - 10), VT_OK);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 10, &wall), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_mock_advance(c, INT64_MAX, &wall), VT_EINVAL);
  CHECK_EQ_INT(vt_collector_mock_advance(c, 9, &wall), VT_OK);
  CHECK(wall == VT_MAX_TIME_MS - 1);
  vt_collector_free(c);
}

/* A host may pass a span's own metadata (from vt_collector_get) back in as
 * a value or an object to merge: it lies in the region the change outgrows
 * and frees (a big one goes at once), so the core works on a copy. */
TEST(test_own_metadata_as_value) {
  static char big[6000];
  vt_collector *c = vt_collector_new();
  vt_vb b;
  vt_span_view v;
  vt_id id;
  const vt_value *got;
  size_t n;
  REQUIRE(c);
  memset(big, 'x', sizeof big);
  vt_collector_set_enabled(c, 1);
  vt_vb_init(&b);
  id = vt_collector_start(c, NULL, VT_FN_CALL, "a", 1, NULL);
  vt_vb_obj(&b);
  vt_vb_key(&b, "a", 1);
  vt_vb_str(&b, big, 3000);
  vt_vb_key(&b, "b", 1);
  vt_vb_str(&b, big, 1500);
  vt_vb_end(&b);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, vt_vb_value(&b)), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  /* the whole metadata under a new key (its region outgrown: 4.5 KB more) */
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, "zz", 2, v.metadata, 0), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  got = vt_value_get(v.metadata, "zz", 2);
  CHECK(got && vt_value_type(got) == VT_OBJ && vt_value_count(got) == 2);
  got = got ? vt_value_get(got, "a", 1) : NULL;
  CHECK(got && vt_value_str(got, &n) && n == 3000);
  /* a key that is itself in the metadata, and a merge of the metadata into itself */
  got = vt_value_get(v.metadata, "b", 1);
  REQUIRE(got);
  CHECK_EQ_INT(vt_collector_set_metadata(c, id, vt_value_str(got, &n), 20, v.metadata, 0), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(vt_value_count(v.metadata), 4);
  CHECK_EQ_INT(vt_collector_merge_metadata(c, id, v.metadata), VT_OK);
  REQUIRE(vt_collector_get(c, id, &v) == VT_OK);
  CHECK_EQ_INT(vt_value_count(v.metadata), 4);
  got = vt_value_get(v.metadata, "b", 1);
  CHECK(got && vt_value_str(got, &n) && n == 1500);
  vt_vb_free(&b);
  vt_collector_free(c);
}

/* A start that fails after taking big blocks (many links, then metadata
 * over the key limit) gives them back. */
TEST(test_start_fail_frees_big_blocks) {
  static vt_link links[200];
  static char tid[] = "0190d6a47c557b388e8a3f1c2d4e5f60";
  vt_collector *c;
  vt_vb b;
  vt_start_args a;
  size_t i;
  mem_live = mem_peak = 0;
  vt_set_allocator(&measuring);
  c = vt_collector_new();
  REQUIRE(c);
  vt_collector_set_enabled(c, 1);
  for (i = 0; i < 200; i++) {
    links[i].trace_id = tid;
    links[i].trace_id_len = 32;
    links[i].span_id = "1";
    links[i].span_id_len = 1;
  }
  vt_vb_init(&b);
  vt_vb_obj(&b);
  for (i = 0; i < VT_MAX_KEYS + 1; i++) {
    char k[16];
    int kl = snprintf(k, sizeof k, "k%lu", (unsigned long)i);
    vt_vb_key(&b, k, (size_t)kl);
    vt_vb_int(&b, 1);
  }
  vt_vb_end(&b);
  memset(&a, 0, sizeof a);
  a.links = links;
  a.nlinks = 200;
  a.metadata = vt_vb_value(&b);
  REQUIRE(a.metadata);
  for (i = 0; i < 3; i++) CHECK_EQ_INT(vt_collector_start(c, NULL, VT_FN_CALL, "l", 1, &a), 0);
  CHECK_EQ_INT(vt_collector_dropped(c), 3);
  vt_vb_free(&b);
  vt_collector_free(c);
  vt_set_allocator(NULL);
  CHECK_EQ_INT(mem_live, 0);
}

/* vt_collector_import takes ids up to 2^40; one span's memory should not
 * follow its id (the reader renumbers sparse files, but a host imports
 * through this call directly). Ids are kept: a run of spans far out, with
 * parents, children before them, and links among them, reads back as
 * given; spans recorded after it go on from there. Ids spread too far for
 * the spans held are refused (VT_ELIMIT), the collector as it was. */
TEST(test_import_sparse_id_memory) {
  static const int shifts[] = {32, 36, 40};
  size_t i;
  for (i = 0; i < sizeof shifts / sizeof shifts[0]; i++) {
    vt_collector *c;
    vt_span_view v, got;
    vt_link link;
    char sid[24];
    vt_id base = ((vt_id)1 << shifts[i]) - 6000, id; /* ids to 2^40 are taken */
    int rc[4];
    size_t held, peak, k;
    memset(&v, 0, sizeof v);
    v.kind = VT_STEP;
    v.name = "far";
    v.name_len = 3;
    mem_live = mem_peak = 0;
    vt_set_allocator(&measuring); /* nothing of the core's is held across it */
    c = vt_collector_new();
    REQUIRE(c != NULL);
    v.id = base;
    v.parent = base - 4000; /* not there, before it */
    rc[0] = vt_collector_import(c, &v);
    held = mem_live;
    v.id = base + 5000; /* the next chunk: a child first, its parent after */
    v.parent = base - 1;
    snprintf(sid, sizeof sid, "%llu", (unsigned long long)base);
    link.trace_id = vt_collector_trace_id(c);
    link.trace_id_len = strlen(link.trace_id);
    link.span_id = sid;
    link.span_id_len = strlen(sid);
    link.attributes = NULL;
    v.links = &link;
    v.nlinks = 1;
    rc[1] = vt_collector_import(c, &v);
    v.id = base - 1; /* the chunk below the first: the table grows down */
    v.parent = 0;
    v.links = NULL;
    v.nlinks = 0;
    rc[2] = vt_collector_import(c, &v);
    v.id = 1; /* ids spread over 2^32 and more for 3 spans: refused */
    rc[3] = vt_collector_import(c, &v);
    CHECK_EQ_INT(rc[0], VT_OK);
    CHECK_EQ_INT(rc[1], VT_OK);
    CHECK_EQ_INT(rc[2], VT_OK);
    CHECK_EQ_INT(rc[3], VT_ELIMIT);
    CHECK_EQ_INT(vt_collector_count(c), 3);
    CHECK(vt_collector_get(c, 1, &got) == VT_ENOTFOUND);
    REQUIRE(vt_collector_get(c, base + 5000, &got) == VT_OK);
    CHECK_EQ_INT(got.parent, base - 1);
    REQUIRE(got.nlinks == 1);
    CHECK_MEM(got.links[0].span_id, got.links[0].span_id_len, sid, strlen(sid));
    /* the completed spans in id order, and then the recording goes on */
    CHECK_EQ_INT(vt_collector_next_completed(c, 0), base - 1);
    CHECK_EQ_INT(vt_collector_next_completed(c, base - 1), base);
    CHECK_EQ_INT(vt_collector_next_completed(c, base), base + 5000);
    CHECK_EQ_INT(vt_collector_next_completed(c, base + 5000), 0);
    id = vt_collector_start(c, NULL, VT_STEP, "after", 5, &(vt_start_args){NULL, 0, NULL,
                                                                            VT_START_ALWAYS, 0, 0, 0});
    CHECK_EQ_INT(id, base + 5001);
    CHECK_EQ_INT(finish(c, id), VT_OK);
    for (k = 0, id = 0; (id = vt_collector_next_completed(c, id)) != 0; k++) {
    }
    CHECK_EQ_INT(k, 4);
    peak = mem_peak;
    vt_collector_take(c);
    vt_collector_reset(c);
    CHECK_EQ_INT(vt_collector_count(c), 0);
    vt_collector_free(c);
    vt_set_allocator(NULL);
    printf("# one span of id 2^%d - 6000: %lu bytes held; %lu at most for four\n", shifts[i],
           (unsigned long)held, (unsigned long)peak);
    CHECK(held < 1u << 20);
    CHECK(peak < 2u << 20);
    CHECK_EQ_INT(mem_live, 0);
  }
}

static const tap_test tests[] = {
    TAP_ENTRY(test_buf_writers),
    TAP_ENTRY(test_json_str_paths),
    TAP_ENTRY(test_hex_and_digits),
    TAP_ENTRY(test_status_words),
    TAP_ENTRY(test_kind_names),
    TAP_ENTRY(test_format_weight_sampler_names),
    TAP_ENTRY(test_ids_count_up_from_one),
    TAP_ENTRY(test_zero_while_disabled),
    TAP_ENTRY(test_enable_resets),
    TAP_ENTRY(test_disable_keeps_spans),
    TAP_ENTRY(test_reset),
    TAP_ENTRY(test_trace_id_format),
    TAP_ENTRY(test_collectors_independent),
    TAP_ENTRY(test_span_collector_basic),
    TAP_ENTRY(test_span_parent_child),
    TAP_ENTRY(test_start_with_given_parent),
    TAP_ENTRY(test_start_at_an_earlier_time),
    TAP_ENTRY(test_shared_metadata),
    TAP_ENTRY(test_out_of_order_finish),
    TAP_ENTRY(test_finish_not_found),
    TAP_ENTRY(test_completed_order_is_finish_order),
    TAP_ENTRY(test_next_completed_skips),
    TAP_ENTRY(test_get_open_and_completed),
    TAP_ENTRY(test_get_many_spans),
    TAP_ENTRY(test_take_keeps_open_spans),
    TAP_ENTRY(test_max_spans),
    TAP_ENTRY(test_span_metadata),
    TAP_ENTRY(test_metadata_is_copied),
    TAP_ENTRY(test_set_metadata_open_only),
    TAP_ENTRY(test_completed_span_metadata_can_be_attached_late),
    TAP_ENTRY(test_metadata_if_absent_open),
    TAP_ENTRY(test_metadata_keys_sorted),
    TAP_ENTRY(test_metadata_replace),
    TAP_ENTRY(test_merge_metadata),
    TAP_ENTRY(test_metadata_key_limit),
    TAP_ENTRY(test_vb_scalars),
    TAP_ENTRY(test_vb_bytes),
    TAP_ENTRY(test_vb_sorted_keys),
    TAP_ENTRY(test_vb_duplicate_keys),
    TAP_ENTRY(test_vb_nesting),
    TAP_ENTRY(test_value_cjson_round_trip),
    TAP_ENTRY(test_json_parse),
    TAP_ENTRY(test_byte_string_names),
    TAP_ENTRY(test_events),
    TAP_ENTRY(test_many_events),
    TAP_ENTRY(test_links_copied),
    TAP_ENTRY(test_span_links_are_preserved),
    TAP_ENTRY(test_detached_span_links_do_not_inherit_active_parent),
    TAP_ENTRY(test_user_timing_records_when_tracing_disabled),
    TAP_ENTRY(test_instant_markers),
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
    TAP_ENTRY(test_names_refcounted),
    TAP_ENTRY(test_names_flat_after_take_and_reset),
    TAP_ENTRY(test_name_index_reused),
    TAP_ENTRY(test_bus_many_subscribers),
    TAP_ENTRY(test_bus_unsubscribe_during_fire),
    TAP_ENTRY(test_bus_events),
    TAP_ENTRY(test_bus_sees_stacks_and_disabled),
    TAP_ENTRY(test_continue_trace),
    TAP_ENTRY(test_traceparent_parse),
    TAP_ENTRY(test_reset_trace),
    TAP_ENTRY(test_import),
    TAP_ENTRY(test_load_round_trip),
    TAP_ENTRY(test_load_json_list),
    TAP_ENTRY(test_load_stream_cut),
    TAP_ENTRY(test_load_result_says_what_was_skipped),
    TAP_ENTRY(test_load_refused),
    TAP_ENTRY(test_load_file),
    TAP_ENTRY(test_load_sparse_ids),
    TAP_ENTRY(test_load_stream_linear),
    TAP_ENTRY(test_stream_lines),
    TAP_ENTRY(test_stream_buffered),
    TAP_ENTRY(test_stream_after_torn_line),
    TAP_ENTRY(test_stream_after_torn_line_write_only),
    TAP_ENTRY(test_stream_write_error),
    TAP_ENTRY(test_stream_outlives_collector),
    TAP_ENTRY(test_exports),
    TAP_ENTRY(test_export_path),
    TAP_ENTRY(test_usage_read),
    TAP_ENTRY(test_llm_totals),
    TAP_ENTRY(test_llm_totals_follow_late_usage),
    TAP_ENTRY(test_token_sums_saturate),
    TAP_ENTRY(test_profile_llm_is_totals),
    TAP_ENTRY(test_prices),
    TAP_ENTRY(test_response_read),
    TAP_ENTRY(test_dropped_zero_in_ordinary_run),
    TAP_ENTRY(test_null_values_answered),
    TAP_ENTRY(test_cjson_raw_out_of_range),
    TAP_ENTRY(test_attributes_must_be_objects),
    TAP_ENTRY(test_stream_during_load),
    TAP_ENTRY(test_load_without_trace_id),
    TAP_ENTRY(test_import_sparse_id_memory),
    TAP_ENTRY(test_own_metadata_as_value),
    TAP_ENTRY(test_mock_time_range),
    TAP_ENTRY(test_start_fail_frees_big_blocks),
};

int main(void) {
  int rc = tap_run(tests, sizeof tests / sizeof tests[0]);
  ring_free();
  tmp_clean();
  return rc;
}
