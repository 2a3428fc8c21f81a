/*
 * core.h: the span store's private structures. Only csrc/core/ includes this
 * file; everything else reads spans through vmtrace.h (vt_collector_get, the
 * completed-span iterators, vt_collector_trace_info, the event bus).
 */
#ifndef VT_CORE_H
#define VT_CORE_H

#include "vmtrace.h"
#include "util.h"

/* ---- names ------------------------------------------------------------------- */

typedef struct vt_name {
  char *s;       /* NUL-terminated copy (may hold NULs inside), NULL when free */
  uint32_t len;
  uint32_t hash;
  uint32_t refs; /* spans, stacks' holders and the binding's cache */
} vt_name;

/* Interned span names: a hash table of indices into an array of names.
 * Reference-counted: a name is freed when nothing uses it, and its index is
 * reused. */
typedef struct vt_names {
  vt_name *v;
  uint32_t n, cap;      /* entries used (live or free) */
  uint32_t live;
  uint32_t free_head;   /* a freed index + 1, chained through hash; 0: none */
  uint32_t *slots;      /* index + 1, 0 = empty */
  uint32_t mask;
  size_t bytes;         /* bytes of the live names */
} vt_names;

void vt_names_init(vt_names *t);
void vt_names_free(vt_names *t);
/* The index of the name (a new reference), or -1 when out of memory. */
int64_t vt_names_intern(vt_names *t, const char *s, size_t len);
void vt_names_release(vt_names *t, uint32_t i);
static inline void vt_names_ref(vt_names *t, uint32_t i) { t->v[i].refs++; }

/* ---- spans ------------------------------------------------------------------- */

enum { VT_FREE = 0, VT_OPEN = 1, VT_DONE = 2 };
#define VT_F_MOCK 1u /* a mock clock was active at start */
#define VT_F_WALL 2u /* the start's unix time is x->wall_ns (mocked, imported) */
#define VT_F_LLM 4u  /* counted in the LLM totals */

/* What a span has besides its slot, allocated from its chunk's arena. */
typedef struct vt_extra {
  unsigned char *meta; /* an object encoding with room for meta_cap bytes */
  uint32_t meta_cap;
  uint32_t nlinks;
  vt_link *links;
  vt_event *events;
  uint32_t nevents, capevents;
  int64_t wall_ns;      /* start in unix ns, when VT_F_WALL */
  int64_t mock_mono_ms; /* mock monotonic clock at start, when VT_F_MOCK */
  struct vt_block *big; /* the span's own big allocations, freed with it */
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
  uint8_t kind, state, flags, pad;
  uint32_t smeta; /* shared metadata: its name index + 1 (0: none), while x has none */
  vt_extra *x;
} vt_slot;

#define VT_CHUNK_BITS 12
#define VT_CHUNK_SIZE (1u << VT_CHUNK_BITS)

/* Arena blocks of a chunk: everything its spans own besides their slots
 * (metadata, links, events) is carved from them and freed with the chunk. */
typedef struct vt_block {
  struct vt_block *next;
  size_t used, cap;
  /* data follows, max-aligned */
} vt_block;

typedef struct vt_chunk {
  uint32_t live; /* slots not FREE */
  vt_block *arena;
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

typedef struct vt_sub {
  vt_listener fn;
  void *ud;
} vt_sub;

typedef struct vt_model_totals {
  char *model;
  size_t len;
  uint32_t hash;
  vt_llm_totals t;
} vt_model_totals;

struct vt_collector {
  int enabled;
  vt_id next_id;
  vt_chunk **chunks; /* chunks[i] holds ids (chunk_base+i)*VT_CHUNK_SIZE+1 .. */
  size_t nchunks;
  size_t chunk_base; /* the table begins at the lowest chunk an import used, so
                      * its size follows the range of ids held, not the ids */
  vt_id *done; /* completed ids in finish order (the oldest may be evicted:
                * done then moves ahead within done_base) */
  vt_id *done_base;
  size_t ndone, capdone; /* capdone > ndone + nopen: finishing never fails */
  size_t max_spans;      /* completed spans kept (0: no bound) */
  size_t nopen;
  vt_names names;
  vt_stack main;
  int64_t epoch_ns;      /* monotonic clock at reset */
  int64_t last_ns;       /* the last start, end or event read, from epoch_ns (span_now) */
  int64_t wall_epoch_ns; /* wall clock at reset */
  vt_mock *mocks;
  size_t nmocks, capmocks;
  uint64_t dropped;
  uint64_t generation;
  size_t nstacks;      /* besides main */
  uint32_t next_track; /* serial number of the next stack */
  /* the event bus */
  vt_sub *subs;
  size_t nsubs, capsubs;
  int firing;          /* inside fire(): removals are deferred */
  int removed;         /* a subscriber was removed while firing */
  /* trace context */
  uint64_t remote_parent; /* the remote span joined (0: none) */
  unsigned remote_flags;
  vt_sampler sampler;
  double ratio;
  int sampled; /* the sampler's decision for this trace */
  unsigned char trace_bytes[16];
  uint64_t span_salt; /* random per collector, for exported span ids */
  char trace_id[48];
  char tracestate[VT_TRACESTATE_MAX + 1];
  /* LLM totals, updated as llm_call spans finish */
  vt_llm_totals llm;
  vt_model_totals *models;
  size_t nmodels, capmodels;
};

vt_slot *vt_slot_of(const vt_collector *c, vt_id id);
/* Memory of a span's chunk arena (freed with the chunk); NULL when out. */
void *vt_arena_alloc(vt_collector *c, vt_id id, size_t n);
/* Tell every subscriber. */
void vt_bus_fire(vt_collector *c, vt_ev ev, vt_id id);
/* The sampler's decision for the current trace. */
void vt_trace_decide(vt_collector *c);
/* Count the usage of a finished llm_call span in the totals. */
void vt_llm_count(vt_collector *c, const vt_value *metadata);
/* A finished llm_call span's usage as counted, kept while its metadata
 * changes: vt_llm_before reads it, vt_llm_after takes it out of the totals
 * and the usage the metadata has now in (when they differ). */
typedef struct vt_llm_was {
  vt_usage u;  /* its numbers (its strings may move with the change) */
  long model;  /* the model totals it is in, or -1 */
} vt_llm_was;
void vt_llm_before(const vt_collector *c, const vt_value *metadata, vt_llm_was *w);
void vt_llm_after(vt_collector *c, const vt_llm_was *w, const vt_value *metadata);
void vt_llm_clear(vt_collector *c);

#endif
