/*
 * fuzz_ops.c: libFuzzer harness that reads its input as a program of core
 * operations (start, finish, metadata, events, links, markers, given
 * parents, stacks, the mock clock, reset, enable, take, max_spans, a remote
 * trace, every export) and runs it against one collector beside a model of
 * what the collector must hold: which ids are open, completed (in finish
 * order) or gone, how many were dropped, which stacks live. After every step
 * the collector's counts must be the model's; each call must answer what the
 * model says; reads must agree with what was written; exports must parse
 * (vt_json_parse), and the json export must load back to the same spans and
 * export the same again. Violations are reported through fuzz_check.h;
 * memory errors, leaks and undefined behaviour are the sanitizers' to catch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"
#include "fuzz_check.h"

typedef struct in {
  const uint8_t *p;
  size_t n;
} in;

static unsigned byte(in *s) {
  if (!s->n) return 0;
  s->n--;
  return *s->p++;
}

/* A short byte string from the input (may hold NUL and invalid UTF-8). */
static size_t bytes(in *s, const char **out) {
  size_t len = byte(s) % 24;
  if (len > s->n) len = s->n;
  *out = (const char *)s->p;
  s->p += len;
  s->n -= len;
  return len;
}

/* A value from the input, appended to b. */
static void value(vt_vb *b, in *s, int depth) {
  const char *k;
  size_t len, i;
  switch (byte(s) % 8) {
    case 0: vt_vb_null(b); break;
    case 1: vt_vb_bool(b, byte(s) & 1); break;
    case 2: {
      uint64_t hi = byte(s), mid = byte(s), lo = byte(s);
      vt_vb_int(b, (int64_t)(hi << 56 | mid << 8 | lo) - 7);
      break;
    }
    case 3: {
      double d;
      uint64_t bits = 0;
      for (i = 0; i < 8; i++) bits = bits << 8 | byte(s);
      memcpy(&d, &bits, sizeof d);
      vt_vb_num(b, d);
      break;
    }
    case 4:
      len = bytes(s, &k);
      vt_vb_str(b, k, len);
      break;
    case 5:
      if (depth > 4) {
        vt_vb_null(b);
        break;
      }
      vt_vb_arr(b);
      for (i = byte(s) % 4; i > 0; i--) value(b, s, depth + 1);
      vt_vb_end(b);
      break;
    default:
      if (depth > 4) {
        vt_vb_null(b);
        break;
      }
      vt_vb_obj(b);
      for (i = byte(s) % 4; i > 0; i--) {
        len = bytes(s, &k);
        vt_vb_key(b, k, len);
        value(b, s, depth + 1);
      }
      vt_vb_end(b);
  }
}

/* A value from the input in b (reset first). */
static const vt_value *gen(vt_vb *b, in *s, int depth) {
  vt_vb_reset(b);
  value(b, s, depth);
  return vt_vb_value(b);
}

/* An object from the input (what attributes must be), or NULL. */
static const vt_value *gen_obj(vt_vb *b, in *s, int depth) {
  const vt_value *v = gen(b, s, depth);
  return v && vt_value_type(v) == VT_OBJ ? v : NULL;
}

static int same_value(const vt_value *a, const vt_value *b) {
  return a && b && vt_value_size(a) == vt_value_size(b) && !memcmp(a, b, vt_value_size(a));
}

#define MAX_IDS 64
#define MAX_STACKS 4
#define MAX_SPAN 4096 /* ids are below it: at most one start a step */

enum { NONE, OPEN, DONE, GONE };

/* What the collector must hold. */
typedef struct model {
  unsigned char state[MAX_SPAN];
  vt_id order[MAX_SPAN]; /* completed ids in finish order: [head, tail) */
  size_t head, tail;
  size_t nopen;
  uint64_t dropped;
  size_t max_spans;
  int enabled, mocks;
} model;

static model M;

static size_t ndone(void) { return M.tail - M.head; }

static void complete(vt_id id) {
  M.state[id] = DONE;
  M.order[M.tail++] = id;
  while (M.max_spans && ndone() > M.max_spans) { /* the oldest go, counted */
    M.state[M.order[M.head++]] = GONE;
    M.dropped++;
  }
}

static void model_reset(void) {
  int enabled = M.enabled, mocks = M.mocks;
  size_t max = M.max_spans;
  memset(&M, 0, sizeof M);
  M.enabled = enabled;
  M.mocks = mocks;
  M.max_spans = max;
}

static vt_vb vbs[4];

/* The collector's counts are the model's. */
static void check_counts(vt_collector *c, vt_stack **stacks) {
  vt_stats st;
  size_t i, nstacks = 0;
  for (i = 0; i < MAX_STACKS; i++) nstacks += stacks[i] != NULL;
  vt_collector_stats(c, &st);
  FUZZ_CHECKF(st.open == M.nopen, "open spans: %zu, the model %zu", st.open, M.nopen);
  FUZZ_CHECKF(st.completed == ndone() && vt_collector_count(c) == ndone(),
              "completed spans: %zu, the model %zu", st.completed, ndone());
  FUZZ_CHECKF(st.dropped == M.dropped && vt_collector_dropped(c) == M.dropped,
              "dropped: %llu, the model %llu", (unsigned long long)st.dropped,
              (unsigned long long)M.dropped);
  FUZZ_CHECK(st.stacks == nstacks);
  FUZZ_CHECK(vt_collector_enabled(c) == M.enabled);
  FUZZ_CHECK(vt_collector_mocked(c) == (M.mocks > 0));
}

/* Completed spans: in the model's finish order, each readable, completed,
 * after its parent; the id-order walk finds the same set. */
static void check_completed(vt_collector *c) {
  size_t i, n = vt_collector_count(c), walked = 0;
  vt_id id, last = 0;
  for (i = 0; i < n && i < ndone(); i++) {
    vt_span_view v;
    id = vt_collector_completed_id(c, i);
    FUZZ_CHECKF(id == M.order[M.head + i], "completed #%zu is %llu, the model %llu", i,
                (unsigned long long)id, (unsigned long long)M.order[M.head + i]);
    FUZZ_CHECK(vt_collector_get(c, id, &v) == VT_OK && !v.open && v.id == id &&
               v.parent < id && v.duration_ns >= 0 && (unsigned)v.kind < VT_KIND_COUNT);
  }
  for (id = vt_collector_next_completed(c, 0); id; id = vt_collector_next_completed(c, id)) {
    FUZZ_CHECK(id > last && id < MAX_SPAN && M.state[id] == DONE);
    last = id;
    if (++walked > n) break;
  }
  FUZZ_CHECKF(walked == n, "next_completed walks %zu spans of %zu", walked, n);
}

/* Every export: text where text is due, JSON that parses; the json export
 * loads back into a new collector with the same spans, and exports the
 * same again once normalised (keys that differ only in invalid UTF-8 merge
 * on the first trip: U+FFFD). */
static void check_exports(vt_collector *c, unsigned weight) {
  size_t n, i;
  char *t = vt_collector_summary(c, &n), *json[3] = {NULL, NULL, NULL};
  size_t jlen[3] = {0, 0, 0};
  vt_collector *d;
  vt_export_opts o;
  int f;
  FUZZ_CHECK(t != NULL);
  vt_free(t);
  memset(&o, 0, sizeof o);
  o.weight = (vt_weight)(weight % VT_WEIGHT_COUNT);
  for (f = 0; f < VT_FORMAT_COUNT; f++) {
    t = vt_collector_export_string(c, (vt_format)f, &o, &n);
    FUZZ_CHECKF(t != NULL, "export %s gave NULL", vt_format_name(f));
    if (t && (f == VT_FORMAT_JSON || f == VT_FORMAT_OTLP || f == VT_FORMAT_CHROME)) {
      const char *err = NULL;
      size_t at = 0;
      vt_value *v = vt_json_parse(t, n, &err, &at);
      FUZZ_CHECKF(v != NULL, "export %s does not parse: %s at %zu", vt_format_name(f),
                  err ? err : "?", at);
      if (v && f == VT_FORMAT_JSON)
        FUZZ_CHECK(vt_value_type(v) == VT_ARR &&
                   vt_value_count(v) == ndone() + (M.dropped ? 1 : 0));
      vt_free(v);
    }
    if (f == VT_FORMAT_JSON) {
      json[0] = t;
      jlen[0] = n;
    } else {
      vt_free(t);
    }
  }
  {
    vt_value *p = vt_collector_profile(c);
    FUZZ_CHECK(p != NULL && vt_value_type(p) == VT_OBJ);
    vt_free(p);
  }
  for (i = 0; i < 2 && json[i]; i++) {
    vt_load_result r;
    int rc;
    if (!(d = vt_collector_new())) break;
    rc = vt_collector_load_text(d, json[i], jlen[i], &r);
    FUZZ_CHECKF(rc == VT_OK, "the json export does not load (%d, line %zu: %s)", rc, r.line,
                r.error);
    FUZZ_CHECKF(rc != VT_OK || (r.spans == ndone() && vt_collector_count(d) == ndone() &&
                                vt_collector_dropped(d) == M.dropped),
                "the json export of %zu spans loads as %zu", ndone(), r.spans);
    FUZZ_CHECK(rc != VT_OK || !ndone() ||
               !strcmp(vt_collector_trace_id(d), vt_collector_trace_id(c)));
    json[i + 1] = vt_collector_export_string(d, VT_FORMAT_JSON, NULL, &jlen[i + 1]);
    vt_collector_free(d);
  }
  if (json[1] && json[2])
    FUZZ_CHECKF(jlen[1] == jlen[2] && !memcmp(json[1], json[2], jlen[1]),
                "export(load(export)) changes at the second trip (%zu -> %zu bytes)", jlen[1],
                jlen[2]);
  for (i = 0; i < 3; i++) vt_free(json[i]);
}

static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in s = {data, size};
  vt_collector *c = vt_collector_new();
  vt_stack *stacks[MAX_STACKS] = {NULL};
  vt_id ids[MAX_IDS] = {0};
  size_t nids = 0, steps = 0, i;
  if (!c) return 0;
  memset(&M, 0, sizeof M);
  for (i = 0; i < 4; i++) vt_vb_init(&vbs[i]);
  vt_collector_set_enabled(c, 1);
  M.enabled = 1;
  while (s.n && steps++ < 2000) {
    unsigned op = byte(&s) % 16;
    vt_id id = nids ? ids[byte(&s) % nids] : (vt_id)byte(&s);
    int known = id < MAX_SPAN, st_of = known ? M.state[id] : NONE;
    const char *b;
    size_t len;
    vt_span_view v;
    int rc;
    switch (op) {
      case 0:
      case 1: { /* start, with links, metadata, flags and a given parent */
        vt_start_args a;
        vt_link links[2];
        unsigned k = byte(&s) % (VT_KIND_COUNT + 1), j;
        vt_stack *st = stacks[byte(&s) % MAX_STACKS];
        vt_id cur = vt_stack_current(c, st), got;
        memset(&a, 0, sizeof a);
        a.flags = byte(&s) & 15;
        a.parent = id;
        len = bytes(&s, &b);
        if (op == 1) {
          a.nlinks = byte(&s) % 3;
          for (j = 0; j < a.nlinks; j++) {
            links[j].trace_id_len = bytes(&s, &links[j].trace_id);
            links[j].span_id_len = bytes(&s, &links[j].span_id);
            links[j].attributes = (byte(&s) & 1) ? gen_obj(&vbs[j], &s, 3) : NULL;
          }
          a.links = links;
          if (byte(&s) & 1) a.metadata = gen(&vbs[2], &s, 0);
        }
        got = vt_collector_start(c, st, (vt_kind)k, b, len, &a);
        if (!M.enabled && !(a.flags & VT_START_ALWAYS)) {
          FUZZ_CHECK(got == 0); /* off: not recorded, not dropped */
          break;
        }
        if (k == VT_KIND_COUNT) { /* no such kind: dropped */
          FUZZ_CHECK(got == 0);
          M.dropped++;
          break;
        }
        FUZZ_CHECK(got != 0 && got < MAX_SPAN && M.state[got] == NONE);
        if (!got || got >= MAX_SPAN) break;
        if (vt_collector_get(c, got, &v) == VT_OK) {
          vt_id want = (a.flags & VT_START_PARENT) ? (a.parent < got ? a.parent : 0)
                       : (a.flags & VT_START_DETACHED) ? 0
                       : cur < got                      ? cur
                                                        : 0; /* never a later span */
          FUZZ_CHECKF(v.parent == want, "span %llu has parent %llu, not %llu",
                      (unsigned long long)got, (unsigned long long)v.parent,
                      (unsigned long long)want);
          FUZZ_CHECK(v.kind == (vt_kind)k && v.name_len == len && !memcmp(v.name, b, len));
          FUZZ_CHECK(v.nlinks == a.nlinks);
          for (j = 0; j < v.nlinks && j < a.nlinks; j++)
            FUZZ_CHECK(v.links[j].span_id_len == links[j].span_id_len &&
                       !memcmp(v.links[j].span_id, links[j].span_id, links[j].span_id_len));
          if (a.metadata && vt_value_type(a.metadata) == VT_OBJ && vt_value_count(a.metadata))
            FUZZ_CHECK(same_value(v.metadata, a.metadata));
        } else {
          FUZZ_CHECK(!"a started span is readable");
        }
        if (a.flags & VT_START_INSTANT) {
          complete(got);
        } else {
          M.state[got] = OPEN;
          M.nopen++;
          FUZZ_CHECK(vt_stack_current(c, st) == got);
        }
        ids[nids < MAX_IDS ? nids++ : byte(&s) % MAX_IDS] = got;
        break;
      }
      case 2: {
        int64_t dur = -1;
        rc = vt_collector_finish(c, id, &dur);
        FUZZ_CHECKF(rc == (st_of == OPEN ? VT_OK : VT_ENOTFOUND), "finish(%llu): %d",
                    (unsigned long long)id, rc);
        if (rc == VT_OK) {
          FUZZ_CHECK(dur >= 0);
          if (known) {
            M.nopen--;
            complete(id);
          }
        }
        break;
      }
      case 3:
      case 4: { /* set a key: flags 0 or DONE (3), IF_ABSENT (4) */
        const vt_value *x;
        int had = 0;
        unsigned flags;
        len = bytes(&s, &b);
        flags = op == 4 ? VT_META_IF_ABSENT : (len & 1) ? VT_META_DONE : 0;
        x = gen(&vbs[0], &s, 0);
        if (!x) break;
        if (vt_collector_get(c, id, &v) == VT_OK)
          had = v.metadata && vt_value_get(v.metadata, b, len) != NULL;
        rc = vt_collector_set_metadata(c, id, b, len, x, flags);
        if (st_of == OPEN || (st_of == DONE && flags))
          FUZZ_CHECKF(rc == (had && (flags & VT_META_IF_ABSENT) ? VT_EEXIST : VT_OK),
                      "set_metadata: %d", rc);
        else
          FUZZ_CHECKF(rc == VT_ENOTFOUND, "set_metadata on a span %s: %d",
                      st_of == DONE ? "completed" : "not there", rc);
        if (rc == VT_OK && vt_collector_get(c, id, &v) == VT_OK)
          FUZZ_CHECK(same_value(vt_value_get(v.metadata, b, len), x));
        break;
      }
      case 5: {
        size_t before = 0;
        const vt_value *attrs;
        len = bytes(&s, &b);
        attrs = (byte(&s) & 1) ? gen_obj(&vbs[0], &s, 1) : NULL;
        if (vt_collector_get(c, id, &v) == VT_OK) before = v.nevents;
        rc = vt_collector_record_event(c, id, b, len, attrs);
        FUZZ_CHECKF(rc == (st_of == OPEN ? VT_OK : VT_ENOTFOUND), "record_event: %d", rc);
        if (rc == VT_OK && vt_collector_get(c, id, &v) == VT_OK)
          FUZZ_CHECK(v.nevents == before + 1 && v.events[before].name_len == len &&
                     !memcmp(v.events[before].name, b, len) && v.events[before].offset_ns >= 0);
        break;
      }
      case 6: {
        const vt_value *x = gen(&vbs[0], &s, 0), *item;
        vt_iter it;
        const char *k;
        size_t kl;
        if (!x) break;
        rc = vt_collector_merge_metadata(c, id, x);
        if (st_of != OPEN && st_of != DONE) FUZZ_CHECK(rc == VT_ENOTFOUND);
        else if (vt_value_type(x) != VT_OBJ) FUZZ_CHECK(rc == VT_EINVAL);
        else FUZZ_CHECKF(rc == VT_OK, "merge_metadata: %d", rc);
        if (rc == VT_OK && vt_collector_get(c, id, &v) == VT_OK) {
          vt_value_iter(x, &it);
          while ((item = vt_iter_next(&it, &k, &kl)) != NULL)
            FUZZ_CHECK(same_value(vt_value_get(v.metadata, k, kl), item));
        }
        break;
      }
      case 7:
        switch (byte(&s) & 15) {
          case 0: /* reset */
            vt_collector_reset(c);
            model_reset();
            nids = 0;
            FUZZ_CHECK(vt_collector_count(c) == 0);
            break;
          case 1: /* a bound on completed spans (0: none) */
            vt_collector_set_max_spans(c, (size_t)(id % 8));
            M.max_spans = (size_t)(id % 8);
            while (M.max_spans && ndone() > M.max_spans) {
              M.state[M.order[M.head++]] = GONE;
              M.dropped++;
            }
            break;
          case 2: { /* join a remote trace */
            vt_trace_info info;
            FUZZ_CHECK(vt_collector_continue_trace(c, tp, 55, "k=v", 3) == VT_OK);
            vt_collector_trace_info(c, &info);
            FUZZ_CHECK(info.remote_parent == UINT64_C(0x00f067aa0ba902b7) &&
                       !strcmp(info.tracestate, "k=v"));
            break;
          }
          default: break;
        }
        break;
      case 8:
        if ((byte(&s) & 7) == 0) {
          int on = byte(&s) & 1;
          vt_collector_set_enabled(c, on);
          M.enabled = on;
          if (on) { /* enabling resets */
            model_reset();
            nids = 0;
          }
        }
        break;
      case 9:
        vt_collector_take(c);
        while (M.head < M.tail) M.state[M.order[M.head++]] = GONE;
        FUZZ_CHECK(vt_collector_count(c) == 0);
        break;
      case 10: check_exports(c, byte(&s)); break;
      case 11: {
        int64_t wall;
        switch (byte(&s) % 3) {
          case 0:
            FUZZ_CHECK(vt_collector_mock_push(c, (int64_t)byte(&s) * 1000) == VT_OK);
            M.mocks++;
            break;
          case 1:
            rc = vt_collector_mock_advance(c, byte(&s), &wall);
            FUZZ_CHECK(rc == (M.mocks ? VT_OK : VT_ENOMOCK));
            break;
          default:
            FUZZ_CHECK(vt_collector_mock_pop(c) == (M.mocks ? VT_OK : VT_ENOMOCK));
            if (M.mocks) M.mocks--;
        }
        break;
      }
      case 12: { /* make or drop a coroutine's stack */
        unsigned j = byte(&s) % MAX_STACKS;
        if (stacks[j]) {
          vt_stack_free(c, stacks[j]);
          stacks[j] = NULL;
        } else {
          stacks[j] = vt_stack_new(c, id);
          FUZZ_CHECK(stacks[j] != NULL);
        }
        break;
      }
      case 13: /* what get says must hold */
        rc = vt_collector_get(c, id, &v);
        FUZZ_CHECKF(rc == ((st_of == OPEN || st_of == DONE) ? VT_OK : VT_ENOTFOUND),
                    "get(%llu): %d", (unsigned long long)id, rc);
        if (rc == VT_OK)
          FUZZ_CHECK(v.id == id && (unsigned)v.kind < VT_KIND_COUNT && v.duration_ns >= 0 &&
                     v.open == (st_of == OPEN) && (!v.open || v.duration_ns == 0) &&
                     v.parent < id && (!v.metadata || vt_value_type(v.metadata) == VT_OBJ));
        break;
      case 14: {
        int64_t ns = -1;
        vt_stack *st = stacks[byte(&s) % MAX_STACKS];
        vt_id cur;
        rc = vt_collector_elapsed(c, id, &ns);
        FUZZ_CHECK(rc == ((st_of == OPEN || st_of == DONE) ? VT_OK : VT_ENOTFOUND));
        FUZZ_CHECK(rc != VT_OK || ns >= 0);
        cur = vt_stack_current(c, st); /* an open span, or the stack's base */
        (void)cur;
        break;
      }
      default: check_completed(c);
    }
    check_counts(c, stacks);
  }
  check_completed(c);
  check_exports(c, 0);
  vt_collector_free(c); /* frees the stacks left */
  for (i = 0; i < 4; i++) vt_vb_free(&vbs[i]);
  return 0;
}
