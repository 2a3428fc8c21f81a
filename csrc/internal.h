/*
 * internal.h: structures shared by the core's files (not a public header).
 * The collector's span store, the name table, output buffers, JSON writing.
 */
#ifndef VT_INTERNAL_H
#define VT_INTERNAL_H

#include "vmtrace.h"

#if defined(__GNUC__)
#define VT_HIDDEN __attribute__((visibility("hidden")))
#define VT_LIKELY(x) __builtin_expect(!!(x), 1)
#define VT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define VT_HIDDEN
#define VT_LIKELY(x) (x)
#define VT_UNLIKELY(x) (x)
#endif

#include <time.h>

/* The monotonic clock in ns, inlined on the hot paths. */
static inline int64_t vt_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Make room for `need` elements of `size` bytes in the array *p of *cap
 * (doubling); 0, leaving it as it was, when out of memory. */
VT_HIDDEN int vt_grow(void **p, size_t *cap, size_t need, size_t size);

/* ---- output buffer --------------------------------------------------------- */

#include <stdio.h>

/* A growable byte buffer; `failed` sticks once an allocation or a write
 * failed. With `f` set it is a window onto the file: full windows are written
 * out (vt_buf_flush), so output of any size takes bounded memory. */
typedef struct vt_buf {
  char *p;
  size_t n, cap;
  int failed;
  FILE *f;
  int err; /* errno of a failed write */
} vt_buf;

/* Write out what is pending to b->f (no-op without a file). */
VT_HIDDEN int vt_buf_flush(vt_buf *b);
VT_HIDDEN void vt_buf_put_u64(vt_buf *b, uint64_t v);

VT_HIDDEN int vt_buf_grow(vt_buf *b, size_t extra);
VT_HIDDEN void vt_buf_put(vt_buf *b, const void *s, size_t len);
VT_HIDDEN void vt_buf_putc(vt_buf *b, char ch);
VT_HIDDEN void vt_buf_puts(vt_buf *b, const char *s);
VT_HIDDEN void vt_buf_put_i64(vt_buf *b, int64_t v);
VT_HIDDEN void vt_buf_free(vt_buf *b);

/* JSON text of a value as serde_json prints it compactly: sorted object keys
 * (kept sorted at insertion), shortest round-trip floats with ".0" when
 * integral, raw integers, strings escaped with invalid UTF-8 as U+FFFD. */
VT_HIDDEN void vt_json_write(vt_buf *b, const cJSON *v);
/* Length of the valid UTF-8 sequence at p (n bytes left), or 0 with *bad set
 * to the length of the maximal invalid subpart (one U+FFFD replaces it). */
VT_HIDDEN size_t vt_utf8_len(const unsigned char *p, size_t n, size_t *bad);
/* A JSON string literal of raw bytes (invalid UTF-8 becomes U+FFFD). */
VT_HIDDEN void vt_json_write_str(vt_buf *b, const char *s, size_t len);
/* Append the decoded bytes of a stored (escaped) string. */
VT_HIDDEN void vt_buf_put_decoded(vt_buf *b, const char *s);
/* Encode bytes for storage in cJSON (NUL and 0xC0 escaped), malloc'd. */
VT_HIDDEN char *vt_str_encode(const char *s, size_t len);

/* vt_json_obj_set that adds a new key only when may_add (else VT_ELIMIT);
 * *added says whether it did. */
VT_HIDDEN int vt_json_obj_put(cJSON *obj, const char *key, size_t len,
                              cJSON *value, int may_add, int *added);

/* ---- names ------------------------------------------------------------------- */

typedef struct vt_name {
  const char *s;
  uint32_t len;
  uint32_t hash;
} vt_name;

/* Interned span names: a hash table of indices into an array of names whose
 * bytes live in an arena. */
typedef struct vt_names {
  vt_name *v;
  uint32_t n, cap;
  uint32_t *slots; /* index + 1, 0 = empty */
  uint32_t mask;
  char *arena; /* current block; blocks are chained through their first word */
  size_t used, avail;
} vt_names;

/* ---- spans ------------------------------------------------------------------- */

enum { VT_FREE = 0, VT_OPEN = 1, VT_DONE = 2 };
#define VT_F_MOCK 1u /* a mock clock was active at start */
#define VT_F_WALL 2u /* the start's unix time is x->wall_ns (mocked, imported) */

typedef struct vt_extra {
  cJSON *meta;   /* object, sorted keys */
  int nkeys;     /* keys in meta, or -1: to be counted */
  vt_link *links;
  size_t nlinks;
  vt_event *events;
  size_t nevents, capevents;
  int64_t wall_ns;      /* start in unix ns, when VT_F_WALL */
  int64_t mock_mono_ms; /* mock monotonic clock at start, when VT_F_MOCK */
} vt_extra;

/* One span, open or completed: 48 bytes. */
typedef struct vt_slot {
  int64_t start_ns; /* real monotonic, from the collector's epoch */
  union {
    int64_t dur_ns;  /* completed */
    vt_stack *stack; /* open: the stack that holds it (NULL once freed) */
  } u;
  vt_id parent;
  uint32_t name;
  uint32_t track; /* the stack it was started on (0: main) */
  uint8_t kind, state, flags, pad[7];
  vt_extra *x;
} vt_slot;

#define VT_CHUNK_BITS 12
#define VT_CHUNK_SIZE (1u << VT_CHUNK_BITS)

typedef struct vt_chunk {
  uint32_t live; /* slots not FREE */
  vt_slot s[VT_CHUNK_SIZE];
} vt_chunk;

struct vt_stack {
  vt_id *ids;
  uint32_t n, cap;
  uint32_t track; /* serial number, never reused (main: 0) */
  vt_id base;
  struct vt_stack *prev, *next; /* all stacks of a collector */
};

typedef struct vt_mock {
  int64_t wall_ms, mono_ms;
} vt_mock;

struct vt_collector {
  int enabled;
  vt_id next_id;
  vt_chunk **chunks; /* chunk k holds ids k*VT_CHUNK_SIZE+1 .. */
  size_t nchunks;
  vt_id *done; /* completed ids in finish order (the oldest may be evicted:
                * done then moves ahead within done_base) */
  vt_id *done_base;
  size_t ndone, capdone; /* capdone > ndone + nopen: finishing never fails */
  size_t max_spans;      /* completed spans kept (0: no bound) */
  size_t nopen;
  vt_names names;
  vt_stack main;
  int64_t epoch_ns;      /* monotonic clock at reset */
  int64_t wall_epoch_ns; /* wall clock at reset */
  vt_mock *mocks;
  size_t nmocks, capmocks;
  uint64_t dropped;
  uint64_t generation;
  size_t nstacks;      /* besides main */
  uint32_t next_track; /* serial number of the next stack */
  struct {
    vt_hook_fn fn;
    void *ud;
  } hooks[8];
  int nhooks;
  uint64_t remote_parent; /* the remote span joined (0: none) */
  unsigned remote_flags;
  vt_sampler sampler;
  double ratio;
  int sampled; /* the sampler's decision for this trace */
  unsigned char trace_bytes[16];
  uint64_t span_salt; /* random per collector, for exported span ids */
  char trace_id[48];
};

VT_HIDDEN vt_slot *vt_slot_of(const vt_collector *c, vt_id id);

/* c takes the spans of from, from gets c's (then usually freed). */
VT_HIDDEN void vt_collector_adopt(vt_collector *c, vt_collector *from);

/* A completed span read back from a file (reader.c): the view's fields, its
 * metadata (consumed), links (copied, attributes consumed) and events (names
 * copied, attributes consumed). Ids must be new. */
VT_HIDDEN int vt_collector_import(vt_collector *c, const vt_span_view *v,
                                  cJSON *metadata, vt_link *links,
                                  size_t nlinks, vt_event *events,
                                  size_t nevents);

/* ---- exports (export.c) ---------------------------------------------------- */

/* Text of raw bytes as valid UTF-8 (invalid sequences become U+FFFD); with
 * `folded`, ';' becomes ':' and line breaks become spaces. */
VT_HIDDEN void vt_buf_put_text(vt_buf *b, const char *s, size_t len, int folded);
VT_HIDDEN void vt_buf_put_hex(vt_buf *b, const unsigned char *p, size_t n);
VT_HIDDEN void vt_buf_put_hex64(vt_buf *b, uint64_t v);
VT_HIDDEN void vt_hex64(uint64_t v, char out[17]);
/* Milliseconds with three decimals (ns precision) from nanoseconds. */
VT_HIDDEN void vt_buf_put_ms(vt_buf *b, int64_t ns);
/* The next completed span in id order after *k (start with 0). */
VT_HIDDEN vt_id vt_next_completed(const vt_collector *c, vt_id after);
VT_HIDDEN int vt_export_json(const vt_collector *c, vt_buf *b);
VT_HIDDEN int vt_export_otlp(const vt_collector *c, const vt_export_opts *o,
                             vt_buf *b);
VT_HIDDEN int vt_export_chrome(const vt_collector *c, vt_buf *b);
VT_HIDDEN int vt_export_folded(const vt_collector *c, const vt_export_opts *o,
                               vt_buf *b);
VT_HIDDEN void vt_json_write_span(vt_buf *b, const vt_collector *c,
                                  const vt_span_view *v);

/* What an OTLP span needs of its collector, copied so that the exporter
 * thread can write spans without touching the collector. */
typedef struct vt_otlp_ctx {
  unsigned char trace[16];
  uint64_t salt, remote_parent;
} vt_otlp_ctx;
VT_HIDDEN void vt_otlp_ctx_of(const vt_collector *c, vt_otlp_ctx *x);
VT_HIDDEN void vt_otlp_write_head(vt_buf *b, const vt_export_opts *o, uint64_t dropped);
VT_HIDDEN void vt_otlp_write_span(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v);
VT_HIDDEN void vt_otlp_write_tail(vt_buf *b);
/* The exported id of local span id under a collector's salt. */
VT_HIDDEN uint64_t vt_otel_id(uint64_t salt, vt_id id);

/* An id -> position map (open addressing) for one pass over the spans. */
typedef struct vt_idmap {
  vt_id *keys;
  uint32_t *vals;
  size_t mask, n;
} vt_idmap;
VT_HIDDEN int vt_idmap_init(vt_idmap *m, size_t n);
VT_HIDDEN void vt_idmap_free(vt_idmap *m);
VT_HIDDEN uint32_t vt_idmap_get(const vt_idmap *m, vt_id id);
/* Set (or overwrite) id; grows as needed. 0 when out of memory. */
VT_HIDDEN int vt_idmap_put(vt_idmap *m, vt_id id, uint32_t v);
#define VT_NONE UINT32_MAX
VT_HIDDEN void vt_names_init(vt_names *t);
VT_HIDDEN void vt_names_free(vt_names *t);
VT_HIDDEN int64_t vt_names_intern(vt_names *t, const char *s, size_t len);
VT_HIDDEN void vt_trace_id_new(unsigned char bytes[16], char text[48],
                               uint64_t *salt);
VT_HIDDEN void vt_trace_id_text(const unsigned char bytes[16], char text[48]);

#endif
