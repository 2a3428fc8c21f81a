/*
 * fuzz_ops.c: libFuzzer harness that reads its input as a program of core
 * operations (start, finish, metadata, events, links, markers, stacks, the
 * mock clock, reset, take, every export) and runs it against one collector,
 * checking after each step that what the core reports is consistent. Memory
 * errors, leaks and undefined behaviour are the sanitizers' to catch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmtrace.h"

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

static cJSON *value(in *s, int depth) {
  const char *b;
  size_t len, i;
  cJSON *v;
  switch (byte(s) % 8) {
    case 0: return cJSON_CreateNull();
    case 1: return cJSON_CreateBool(byte(s) & 1);
    case 2: return vt_json_int((int64_t)((uint64_t)byte(s) << 56 | byte(s) << 8 | byte(s)) - 7);
    case 3: {
      double d;
      uint64_t bits = 0;
      for (i = 0; i < 8; i++) bits = bits << 8 | byte(s);
      memcpy(&d, &bits, sizeof d);
      return vt_json_num(d);
    }
    case 4:
      len = bytes(s, &b);
      return vt_json_str(b, len);
    case 5:
      if (depth > 4) return cJSON_CreateNull();
      v = cJSON_CreateArray();
      for (i = byte(s) % 4; v && i > 0; i--) cJSON_AddItemToArray(v, value(s, depth + 1));
      return v;
    default:
      if (depth > 4) return cJSON_CreateNull();
      v = cJSON_CreateObject();
      for (i = byte(s) % 4; v && i > 0; i--) {
        len = bytes(s, &b);
        vt_json_obj_set(v, b, len, value(s, depth + 1));
      }
      return v;
  }
}

#define MAX_IDS 64
#define MAX_STACKS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  in s = {data, size};
  vt_collector *c = vt_collector_new();
  vt_stack *stacks[MAX_STACKS] = {NULL};
  vt_id ids[MAX_IDS] = {0};
  size_t nids = 0, steps = 0;
  if (!c) return 0;
  vt_collector_set_enabled(c, 1);
  while (s.n && steps++ < 2000) {
    unsigned op = byte(&s) % 16;
    vt_id id = nids ? ids[byte(&s) % nids] : (vt_id)byte(&s);
    const char *b;
    size_t len;
    vt_span_view v;
    switch (op) {
      case 0:
      case 1: { /* start, with links, metadata and flags */
        vt_start_args a;
        vt_link links[2];
        unsigned k = byte(&s) % (VT_KIND_COUNT + 1), i;
        vt_stack *st = stacks[byte(&s) % MAX_STACKS];
        memset(&a, 0, sizeof a);
        a.flags = byte(&s) & 7;
        len = bytes(&s, &b);
        if (op == 1) {
          a.nlinks = byte(&s) % 3;
          for (i = 0; i < a.nlinks; i++) {
            links[i].trace_id_len = bytes(&s, &links[i].trace_id);
            links[i].span_id_len = bytes(&s, &links[i].span_id);
            links[i].attributes = (byte(&s) & 1) ? value(&s, 3) : NULL;
          }
          a.links = links;
          if (byte(&s) & 1) a.metadata = value(&s, 0);
        }
        id = vt_collector_start(c, st, (vt_kind)k, b, len, &a);
        if (id) ids[nids < MAX_IDS ? nids++ : byte(&s) % MAX_IDS] = id;
        break;
      }
      case 2: {
        int64_t dur = -1;
        if (vt_collector_finish(c, id, &dur) == VT_OK && dur < 0) abort();
        break;
      }
      case 3:
        len = bytes(&s, &b);
        vt_collector_set_metadata(c, id, b, len, value(&s, 0));
        break;
      case 4:
        len = bytes(&s, &b);
        vt_collector_set_metadata_if_absent(c, id, b, len, value(&s, 0));
        break;
      case 5:
        len = bytes(&s, &b);
        vt_collector_record_event(c, id, b, len, (byte(&s) & 1) ? value(&s, 1) : NULL);
        break;
      case 6: vt_collector_merge_metadata(c, id, value(&s, 0)); break;
      case 7:
        if ((byte(&s) & 15) == 0) {
          vt_collector_reset(c);
          nids = 0;
        }
        break;
      case 8:
        if ((byte(&s) & 7) == 0) vt_collector_set_enabled(c, byte(&s) & 1);
        break;
      case 9: vt_collector_take(c); break;
      case 10: { /* every export, to strings */
        size_t n;
        char *t = vt_collector_summary(c, &n);
        vt_format f;
        vt_export_opts o;
        memset(&o, 0, sizeof o);
        o.weight = (vt_weight)(byte(&s) % 3);
        free(t);
        for (f = VT_FORMAT_JSON; f <= VT_FORMAT_FOLDED; f++) free(vt_collector_export_string(c, f, &o, &n));
        cJSON_Delete(vt_collector_profile(c));
        break;
      }
      case 11: {
        int64_t wall;
        switch (byte(&s) % 3) {
          case 0: vt_collector_mock_push(c, (int64_t)byte(&s) * 1000); break;
          case 1: vt_collector_mock_advance(c, byte(&s), &wall); break;
          default: vt_collector_mock_pop(c);
        }
        break;
      }
      case 12: { /* make or drop a coroutine's stack */
        unsigned i = byte(&s) % MAX_STACKS;
        if (stacks[i]) {
          vt_stack_free(c, stacks[i]);
          stacks[i] = NULL;
        } else {
          stacks[i] = vt_stack_new(c, id);
        }
        break;
      }
      case 13: { /* what get says must hold */
        if (vt_collector_get(c, id, &v) == VT_OK) {
          if (v.id != id || (unsigned)v.kind >= VT_KIND_COUNT || v.duration_ns < 0) abort();
          if (v.open && v.duration_ns != 0) abort();
        }
        break;
      }
      case 14: {
        int64_t ns;
        vt_collector_elapsed(c, id, &ns);
        vt_stack_current(c, stacks[byte(&s) % MAX_STACKS]);
        break;
      }
      default: { /* completed ids are all readable and completed */
        size_t i, n = vt_collector_count(c);
        for (i = 0; i < n; i++) {
          if (vt_collector_get(c, vt_collector_completed_id(c, i), &v) != VT_OK || v.open)
            abort();
        }
      }
    }
  }
  vt_collector_free(c); /* frees the stacks left */
  return 0;
}
