/*
 * vmtrace.h: the public C API of the vmtrace core.
 *
 * A host that embeds Lua uses this header to emit spans from C into the same
 * collector a script sees (vt_lua_collector), or creates collectors of its own.
 * Everything here is plain C; only vt_lua_collector lives in the Lua binding.
 *
 * Conventions
 *  - Span ids count up from 1 per collector; 0 means "not recorded".
 *  - Times are nanoseconds: monotonic offsets from the collector's epoch, or
 *    wall-clock nanoseconds since the UNIX epoch where the name says unix.
 *  - Strings are byte strings with explicit lengths; they may hold NUL bytes
 *    and invalid UTF-8 (outputs escape them; nothing is changed on input).
 *  - Metadata values are JSON values in vmtrace's compact encoding
 *    (vt_value, below): build them with vt_vb_* or convert a cJSON item with
 *    vt_value_from_cjson. The core copies what it is given.
 *  - Functions return a status (vt_status); vt_strerror words it.
 *  - A collector belongs to one thread at a time; two collectors share nothing.
 */
#ifndef VMTRACE_H
#define VMTRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMTRACE_VERSION "0.2.0"

typedef uint64_t vt_id;
typedef struct vt_collector vt_collector;
typedef struct vt_stack vt_stack;

/* Metadata keys one span may hold: a bound on memory and on the linear cost
 * of keeping its keys sorted. A new key past it is refused (VT_ELIMIT). */
#define VT_MAX_KEYS 10000

/* ---- status ------------------------------------------------------------------ */

typedef enum vt_status {
  VT_OK = 0,
  VT_ENOTFOUND = 1, /* the id is 0 or unknown, or the span is not open */
  VT_EEXIST = 2,    /* the key (or span id) is already there */
  VT_ENOMEM = 3,    /* an allocation failed; nothing changed */
  VT_EINVAL = 4,    /* a malformed argument or input */
  VT_EIO = 5,       /* an input or output error (errno says which) */
  VT_ELIMIT = 6,    /* a bound was reached (VT_MAX_KEYS, a size limit) */
  VT_ENOMOCK = 7,   /* no mock clock is installed */
  VT_STATUS_COUNT
} vt_status;

/* The message for a status: one place for every wording ("out of memory"). */
const char *vt_strerror(int status);
/* Its name: "ENOTFOUND", "ENOMEM", ... (what Lua returns as the third value). */
const char *vt_status_name(int status);

/* ---- span kinds ----------------------------------------------------------------- */

typedef enum vt_kind {
  VT_PIPELINE, VT_FN_CALL, VT_LLM_CALL, VT_TOOL_CALL, VT_IMPORT, VT_PARALLEL,
  VT_SPAWN, VT_STEP, VT_VM_SETUP, VT_SUSPENSION, VT_RESUME, VT_DRAIN,
  VT_DRAIN_DECISION, VT_POOL_SUBMIT, VT_POOL_DEQUEUE, VT_CHANNEL_EMIT,
  VT_CHANNEL_MATCH, VT_USER_TIMING, VT_MODEL_ROUTE, VT_TOOL_MOUNT,
  VT_DEFERRED_TOOL_LOAD,
  VT_KIND_COUNT
} vt_kind;

/* "pipeline", "fn_call", ...; NULL for an out-of-range kind. */
const char *vt_kind_name(int kind);
/* The kind whose name is s[0..len), or -1. */
int vt_kind_parse(const char *s, size_t len);

/* ---- memory ------------------------------------------------------------------ */

/* Every allocation of the core goes through these (cJSON's too). The
 * allocator is process-wide: install it before any collector exists. NULL
 * restores malloc/realloc/free. */
typedef struct vt_allocator {
  void *(*malloc_fn)(size_t size);
  void *(*realloc_fn)(void *ptr, size_t size);
  void (*free_fn)(void *ptr);
} vt_allocator;
void vt_set_allocator(const vt_allocator *a);
void *vt_malloc(size_t n);
void *vt_calloc(size_t n, size_t size);
void *vt_realloc(void *p, size_t n);
/* Frees what the core returns (summaries, export strings, built values). */
void vt_free(void *p);

/* ---- values -------------------------------------------------------------------- */

/* A JSON value in vmtrace's compact, self-contained encoding: a tag byte,
 * then the payload (integers keep all 64 bits, strings any bytes). A
 * `const vt_value *` points at the tag; the encoding holds no pointers, so
 * it can be copied with memcpy (vt_value_size bytes). Object keys are unique
 * and sorted by their bytes. */
typedef struct vt_value vt_value;

typedef enum vt_type {
  VT_NULL, VT_FALSE, VT_TRUE, VT_INT, VT_NUM, VT_STR, VT_ARR, VT_OBJ
} vt_type;

vt_type vt_value_type(const vt_value *v);
int64_t vt_value_int(const vt_value *v);                 /* VT_INT */
double vt_value_num(const vt_value *v);                  /* VT_NUM (VT_INT converted) */
const char *vt_value_str(const vt_value *v, size_t *len); /* VT_STR (not NUL-ended) */
size_t vt_value_count(const vt_value *v);                /* items of VT_ARR / VT_OBJ */
size_t vt_value_size(const vt_value *v);                 /* bytes of the encoding */
/* The item of an object under key, or NULL. */
const vt_value *vt_value_get(const vt_value *obj, const char *key, size_t klen);
/* Is v (possibly NULL) an integer? *out then holds it. */
int vt_value_is_int(const vt_value *v, int64_t *out);

/* Iteration over the items of an array or an object (key set for objects). */
typedef struct vt_iter {
  const unsigned char *p;
  size_t left;
  int object;
} vt_iter;
void vt_value_iter(const vt_value *v, vt_iter *it);
const vt_value *vt_iter_next(vt_iter *it, const char **key, size_t *klen);

/* A value builder: encodings are written into a growable buffer. Begin an
 * array or object, add items (for objects: vt_vb_key before each value),
 * end it; the builder sorts object keys (a later duplicate replaces an
 * earlier one). `failed` sticks once an allocation failed or the nesting was
 * wrong. vt_vb_value returns the finished value (NULL when failed). */
typedef struct vt_vb {
  unsigned char *p;
  size_t n, cap;
  int failed;
  size_t *open; /* offsets of the arrays and objects being built */
  size_t nopen, capopen;
} vt_vb;
void vt_vb_init(vt_vb *b);
void vt_vb_free(vt_vb *b);
void vt_vb_reset(vt_vb *b);
void vt_vb_null(vt_vb *b);
void vt_vb_bool(vt_vb *b, int v);
void vt_vb_int(vt_vb *b, int64_t v);
void vt_vb_num(vt_vb *b, double v); /* NaN and infinities become null */
void vt_vb_str(vt_vb *b, const char *s, size_t len);
void vt_vb_arr(vt_vb *b);
void vt_vb_obj(vt_vb *b);
void vt_vb_key(vt_vb *b, const char *s, size_t len);
void vt_vb_end(vt_vb *b);
void vt_vb_copy(vt_vb *b, const vt_value *v); /* a whole value */
const vt_value *vt_vb_value(const vt_vb *b);
/* A copy of a value (vt_free it), or NULL (out of memory, or v is NULL). */
vt_value *vt_value_dup(const vt_value *v);

/* ---- collectors -------------------------------------------------------------- */

/* A new, disabled collector (NULL when out of memory). */
vt_collector *vt_collector_new(void);
/* Tell the subscribers (VT_EV_CLOSE), then free everything. */
void vt_collector_free(vt_collector *c);
/* Drop every span, restart ids at 1, new trace id and epoch, clear the LLM
 * totals. Stacks stay valid but are emptied; names still used are kept. */
void vt_collector_reset(vt_collector *c);
/* Turning tracing on resets the collector, as in the seed. */
void vt_collector_set_enabled(vt_collector *c, int on);
int vt_collector_enabled(const vt_collector *c);
/* Where the collector keeps its enabled flag, for hot paths that test it
 * without a call (valid for the collector's life). */
const int *vt_collector_enabled_flag(const vt_collector *c);
/* Keep at most `max` completed spans (0: no bound); the oldest go first and
 * are counted in vt_collector_dropped. Subscribers have seen them already. */
void vt_collector_set_max_spans(vt_collector *c, size_t max);
size_t vt_collector_max_spans(const vt_collector *c);
/* Spans not kept: allocation failures and spans past max_spans. */
uint64_t vt_collector_dropped(const vt_collector *c);

/* The longest W3C tracestate kept (the length every vendor SHOULD pass on);
 * a longer one loses whole entries. */
#define VT_TRACESTATE_MAX 512

/* What exports and consumers need to know of the trace, copied out. */
typedef struct vt_trace_info {
  char trace_id[48];            /* "trace_<uuid v7>" */
  unsigned char trace_bytes[16]; /* the OTLP / W3C trace id */
  uint64_t span_salt;           /* behind the exported span ids */
  uint64_t remote_parent;       /* the remote span joined (0: none) */
  unsigned remote_flags;        /* its trace flags */
  int sampled;                  /* the sampler's decision for this trace */
  int64_t wall_epoch_ns;        /* wall clock at the epoch */
  uint64_t dropped;
  uint64_t generation;          /* counts up at every reset */
  char tracestate[VT_TRACESTATE_MAX + 1]; /* the W3C tracestate joined ("" if none) */
} vt_trace_info;
void vt_collector_trace_info(const vt_collector *c, vt_trace_info *out);
/* "trace_<uuid v7>", valid until the next reset or join. */
const char *vt_collector_trace_id(const vt_collector *c);
uint64_t vt_collector_generation(const vt_collector *c);
/* Where the collector keeps its generation, for hot paths that test it
 * without a call (valid for the collector's life). */
const uint64_t *vt_collector_generation_flag(const vt_collector *c);

typedef struct vt_stats {
  size_t open, completed, stacks, names;
  uint64_t dropped, generation;
  size_t name_bytes; /* bytes of the names held */
} vt_stats;
void vt_collector_stats(const vt_collector *c, vt_stats *out);

/* ---- active stacks (one per coroutine) ----------------------------------- */

/* The collector's main stack. */
vt_stack *vt_collector_main_stack(vt_collector *c);
/* A new stack whose first span gets `base_parent` (0: none) as parent. */
vt_stack *vt_stack_new(vt_collector *c, vt_id base_parent);
/* Free a stack; spans it holds stay open and can still be finished. */
void vt_stack_free(vt_collector *c, vt_stack *st);
/* The innermost open span of `st` (NULL: main), else its base parent, or 0. */
vt_id vt_stack_current(const vt_collector *c, const vt_stack *st);
void vt_stack_set_base(vt_stack *st, vt_id base_parent);
/* The track number of a stack (0: main; never reused). */
uint32_t vt_stack_track(const vt_stack *st);

/* ---- recording ----------------------------------------------------------- */

/* A causal link to another span (OTel span link). */
typedef struct vt_link {
  const char *trace_id;
  size_t trace_id_len;
  const char *span_id; /* decimal text of a local id, or 16 hex digits */
  size_t span_id_len;
  const vt_value *attributes; /* an object, or NULL (at start anything else
                               * is none; import refuses it, VT_EINVAL) */
} vt_link;

/* A sub-phase event of a span. */
typedef struct vt_event {
  const char *name;
  size_t name_len;
  int64_t time_unix_ns; /* wall clock (mock-aware) */
  int64_t offset_ns;    /* from the span's start */
  const vt_value *attributes; /* an object, or NULL */
} vt_event;

#define VT_START_DETACHED 1u /* a root span: no parent, whatever is active */
#define VT_START_ALWAYS 2u   /* record even while tracing is off */
#define VT_START_INSTANT 4u  /* a marker: completed at once, duration 0 */
#define VT_START_PARENT 8u   /* the parent is args->parent (an open or completed span) */
#define VT_START_AT 16u      /* it started at args->start_mono_ns, a vt_clock_mono_ns reading
                              * taken earlier (after the last reset), not now */
#define VT_START_SHARED 32u  /* its metadata is args->shared_meta (vt_collector_intern_meta) */
#define VT_START_QUICK 64u   /* its start read with vt_clock_mono_ns_quick: for per-call hooks */

/* What a span starts with besides its kind and name (all optional; copied). */
typedef struct vt_start_args {
  const vt_link *links;
  size_t nlinks;
  const vt_value *metadata; /* an object */
  unsigned flags;           /* VT_START_* */
  vt_id parent;             /* with VT_START_PARENT */
  int64_t start_mono_ns;    /* with VT_START_AT */
  uint32_t shared_meta;     /* with VT_START_SHARED */
} vt_start_args;

/* Start a span on `st` (NULL: the main stack); its parent is the current span
 * of `st` unless detached or given. Returns the id, or 0 when tracing is off
 * (and not ALWAYS) or the span could not be kept (counted as dropped). */
vt_id vt_collector_start(vt_collector *c, vt_stack *st, vt_kind kind,
                         const char *name, size_t name_len,
                         const vt_start_args *a);
/* Intern a name: a handle for vt_collector_start_interned, or -1 when out of
 * memory. The caller holds one reference until vt_collector_name_release;
 * a name is freed when no span or holder uses it. */
int64_t vt_collector_intern(vt_collector *c, const char *name, size_t len);
void vt_collector_name_release(vt_collector *c, uint32_t name);
/* Shared metadata: an object (vmtrace.auto's {source = ...}) that many spans
 * carry without a copy each, interned as names are (and counted with them):
 * a handle for vt_start_args.shared_meta (VT_START_SHARED), with one
 * reference the caller holds until vt_collector_name_release; -1 when out of
 * memory or not an object. A span copies it only when its metadata changes. */
int64_t vt_collector_intern_meta(vt_collector *c, const vt_value *obj);
/* vt_collector_start with an interned name: the fast path for hot loops. */
vt_id vt_collector_start_interned(vt_collector *c, vt_stack *st, vt_kind kind,
                                  uint32_t name, const vt_start_args *a);
/* Finish an open span: VT_OK and its duration, or VT_ENOTFOUND. The span is
 * removed from whichever stack holds it, wherever it is in that stack. */
int vt_collector_finish(vt_collector *c, vt_id id, int64_t *duration_ns);
/* The same, its end read with vt_clock_mono_ns_quick (a span started with
 * VT_START_QUICK, as vmtrace.auto's). */
int vt_collector_finish_quick(vt_collector *c, vt_id id, int64_t *duration_ns);

#define VT_META_IF_ABSENT 1u /* only when the key is missing (VT_EEXIST) */
#define VT_META_DONE 2u      /* completed spans take it too */
/* Set a metadata key of an open span (with VT_META_DONE, or IF_ABSENT, of a
 * completed one too). VT_ENOTFOUND, VT_EEXIST, VT_ELIMIT, VT_ENOMEM. A NULL
 * value (what vt_vb_value gives once building failed) is VT_ENOMEM, and
 * nothing changes: a host may pass vt_vb_value(&b) straight on. */
int vt_collector_set_metadata(vt_collector *c, vt_id id, const char *key,
                              size_t key_len, const vt_value *value,
                              unsigned flags);
/* Set every key of the object `obj` (open or completed span), replacing
 * keys it has. All or nothing: VT_ENOTFOUND, VT_EINVAL (obj is no object),
 * VT_ELIMIT, VT_ENOMEM (also for a NULL obj, as vt_collector_set_metadata). */
int vt_collector_merge_metadata(vt_collector *c, vt_id id, const vt_value *obj);
/* Append an event to an open span (VT_ENOTFOUND otherwise). Its attributes
 * are an object or NULL: anything else is VT_EINVAL, as vmtrace.record_event
 * refuses it. */
int vt_collector_record_event(vt_collector *c, vt_id id, const char *name,
                              size_t name_len, const vt_value *attributes);
/* Time since an open span started (mock-aware), or a completed span's
 * duration. */
int vt_collector_elapsed(const vt_collector *c, vt_id id, int64_t *ns);

/* ---- reading ------------------------------------------------------------- */

typedef struct vt_span_view {
  vt_id id;
  vt_id parent; /* 0 at a root */
  vt_kind kind;
  const char *name;
  size_t name_len;
  int open;              /* 1 while not finished */
  uint32_t track;        /* the stack (coroutine) it ran on: 0 is main */
  int64_t start_ns;      /* monotonic offset from the collector's epoch */
  int64_t start_unix_ns; /* wall clock at start (mock-aware) */
  int64_t duration_ns;   /* 0 while open */
  const vt_value *metadata; /* an object with sorted keys, or NULL */
  const vt_link *links;
  size_t nlinks;
  const vt_event *events;
  size_t nevents;
} vt_span_view;

/* Fill `out` for an open or completed span: VT_OK or VT_ENOTFOUND. O(1).
 * The pointers stay valid until the span changes or goes. */
int vt_collector_get(const vt_collector *c, vt_id id, vt_span_view *out);
/* Completed spans, in the order they finished. */
size_t vt_collector_count(const vt_collector *c);
vt_id vt_collector_completed_id(const vt_collector *c, size_t i);
/* The next completed span in id (start) order after `after` (0 to begin),
 * or 0 at the end. */
vt_id vt_collector_next_completed(const vt_collector *c, vt_id after);
/* Drop every completed span (after reading them): take_spans. */
void vt_collector_take(vt_collector *c);

/* Reset the collector (as vt_collector_reset) into the trace `t` names
 * (trace id, salt, remote parent, tracestate, wall epoch, dropped count):
 * what reading a file back does before importing its spans. The trace id is
 * never all zero (invalid in W3C and OTLP): with trace_id "" and all-zero
 * trace_bytes the collector keeps the fresh trace id and salt of the reset;
 * with a text but zero bytes (a trace id that is no uuid) the bytes are a
 * hash of the text (the same text, the same bytes); with bytes but no text
 * the text is "trace_<uuid>" of the bytes. */
void vt_collector_reset_trace(vt_collector *c, const vt_trace_info *t);
/* Add a completed span as it was recorded elsewhere (its id, times, metadata,
 * links and events, all copied). VT_EEXIST for an id in use, VT_EINVAL for
 * an id of 0 or past 2^40, an unknown kind, a parent not before it, or
 * metadata, link or event attributes that are no object.
 * Ids are kept as given, and the store's memory follows the range of the ids
 * held, not their size: one span of id 2^40 costs what one of id 1 does.
 * An id that would spread the ids held over more than VT_IMPORT_RANGE ids
 * and 8192 more per span held is refused with VT_ELIMIT (nothing changes):
 * renumber ids that sparse first, keeping their order (the reader does,
 * vt_load_result.renumbered). Spans come in any order (finish order: a
 * child before its parent), so the core cannot renumber them one by one. */
#define VT_IMPORT_RANGE ((vt_id)1 << 29)
int vt_collector_import(vt_collector *c, const vt_span_view *v);

/* ---- the event bus ---------------------------------------------------------- */

typedef enum vt_ev {
  VT_EV_START,   /* a span started (readable with vt_collector_get) */
  VT_EV_END,     /* a span finished */
  VT_EV_META,    /* metadata was added to a completed span */
  VT_EV_RESET,   /* the collector was reset (new trace); id is 0 */
  VT_EV_CONTEXT, /* the collector joined a remote trace; id is 0 */
  VT_EV_LOAD,    /* a completed span was read from a file (vt_collector_load) */
  VT_EV_CLOSE    /* the collector is being freed: let go of it; id is 0 */
} vt_ev;

typedef void (*vt_listener)(void *ud, vt_collector *c, vt_ev ev, vt_id id);
/* Every consumer of span events (the stream, the OTLP exporter, Lua sinks,
 * a host's own) subscribes here, whoever records the spans. A listener must
 * not start, finish or change spans; it may unsubscribe itself. */
int vt_collector_subscribe(vt_collector *c, vt_listener fn, void *ud);
int vt_collector_unsubscribe(vt_collector *c, vt_listener fn, void *ud);

/* ---- trace context (W3C) and sampling ------------------------------------------- */

/* Join a remote trace from a W3C traceparent header (and its tracestate, or
 * NULL): its trace id becomes the collector's and its span the parent of
 * every root span in the exports. VT_EINVAL (nothing changes) for a header
 * the specification calls invalid. */
int vt_collector_continue_trace(vt_collector *c, const char *traceparent,
                                size_t len, const char *tracestate,
                                size_t ts_len);
/* The traceparent header for span id (0: the remote parent joined):
 * "00-<trace>-<span>-<flags>" into out; VT_OK or VT_ENOTFOUND. */
int vt_collector_traceparent(const vt_collector *c, vt_id id, char out[56]);

/* OpenTelemetry samplers (OTEL_TRACES_SAMPLER): the decision is made per
 * trace, from the trace id or the remote parent's sampled flag. */
typedef enum vt_sampler {
  VT_SAMPLER_ALWAYS_ON,
  VT_SAMPLER_ALWAYS_OFF,
  VT_SAMPLER_RATIO,
  VT_SAMPLER_PARENT_ALWAYS_ON,
  VT_SAMPLER_PARENT_ALWAYS_OFF,
  VT_SAMPLER_PARENT_RATIO,
  VT_SAMPLER_COUNT
} vt_sampler;
/* "always_on", "always_off", "traceidratio", "parentbased_always_on", ... */
const char *vt_sampler_name(vt_sampler s);
int vt_sampler_parse(const char *s, size_t len); /* or -1 */
void vt_collector_set_sampler(vt_collector *c, vt_sampler s, double ratio);

/* ---- LLM usage (one rule: read from metadata here, used everywhere) ------ */

typedef struct vt_usage {
  int64_t input, output, cache_read, cache_write; /* tokens (0 when absent) */
  double cost_usd;
  int priced;          /* cost_usd was set */
  const char *model;   /* metadata "model" (bytes), or "" */
  size_t model_len;
  const char *provider;
  size_t provider_len;
} vt_usage;
/* Read the usage of a span's metadata (NULL: none). */
void vt_usage_read(const vt_value *metadata, vt_usage *out);
/* input + output + cache_read + cache_write */
int64_t vt_usage_tokens(const vt_usage *u);
/* Add the keys of a usage to the object being built in b: model, provider,
 * input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, and
 * cost_usd when priced (what llm_usage and llm_response record). */
void vt_usage_write(const vt_usage *u, vt_vb *b);

/* Running totals of the finished llm_call spans: kept by the core when they
 * finish, and when the metadata of a finished one changes (VT_META_DONE,
 * VT_META_IF_ABSENT, merge, a stream's meta line on load: its old usage
 * out, the new in); not changed by take or max_spans, cleared by reset. */
typedef struct vt_llm_totals {
  uint64_t calls, unpriced;
  int64_t input, output, cache_read, cache_write;
  double cost_usd;
} vt_llm_totals;
void vt_collector_llm_totals(const vt_collector *c, vt_llm_totals *out);
/* The totals of the i-th model seen (0 <= i < the count returned by
 * vt_collector_llm_models); the model name in *model. */
size_t vt_collector_llm_models(const vt_collector *c);
int vt_collector_llm_model(const vt_collector *c, size_t i, const char **model,
                           size_t *len, vt_llm_totals *out);

/* A price catalog: USD per million tokens, per provider and model. */
typedef struct vt_price {
  double input, output, cache_read, cache_write;
} vt_price;
typedef struct vt_prices vt_prices;
vt_prices *vt_prices_new(void);
void vt_prices_free(vt_prices *p);
void vt_prices_clear(vt_prices *p);
int vt_prices_set(vt_prices *p, const char *provider, size_t plen, const char *model,
                  size_t mlen, const vt_price *price);
/* The price of a model: the exact entry, else the longest entry the model id
 * starts with where the next character is '-' or '@' (a dated or versioned
 * id: gpt-4o-mini-2024-07-18 takes gpt-4o-mini, not gpt-4o; gpt-5.1 does not
 * take gpt-5, a model of its own).
 * With provider "" any provider's (the first found). NULL when unpriced;
 * *matched (may be NULL) gets the entry's model name. */
const vt_price *vt_prices_find(const vt_prices *p, const char *provider, size_t plen,
                               const char *model, size_t mlen, const char **matched);
/* The cost of a usage under a price. */
double vt_price_cost(const vt_price *price, const vt_usage *u);

/* ---- provider responses ----------------------------------------------------- */

/* A provider's decoded response body, normalized to vmtrace's convention:
 * input = uncached input only, cache reads and writes apart, output with
 * reasoning/thinking tokens included (csrc/core/response.c says how each
 * API shape maps). Pointers point into the body. */
typedef enum vt_api_shape {
  VT_SHAPE_OPENAI_CHAT,        /* OpenAI Chat Completions */
  VT_SHAPE_OPENAI_RESPONSES,   /* OpenAI Responses */
  VT_SHAPE_ANTHROPIC_MESSAGES, /* Anthropic Messages */
  VT_SHAPE_GEMINI              /* Gemini generateContent */
} vt_api_shape;

typedef struct vt_response {
  vt_usage usage;  /* tokens; model as the response names it; provider "openai",
                    * "anthropic" or "google"; cost set by vt_response_price */
  vt_api_shape shape;
  const char *response_id; /* "" when the body has none */
  size_t response_id_len;
  size_t nfinish;          /* finish reasons: vt_response_finish */
  const vt_value *finish_list, *finish_one; /* (where they are read from) */
  const char *finish_key;
  char error[200];         /* why a body was refused */
} vt_response;

/* The providers vt_response_read knows: "openai, anthropic, google, gemini". */
extern const char *const vt_response_providers;
/* Read `body` (an object) as a response of `provider`'s API: VT_OK, or
 * VT_EINVAL with the reason in r->error (an unknown provider, a body of
 * another shape or without its usage block, a count that is not a token
 * count from 0 to 2^53, cached tokens larger than the prompt holding them). */
int vt_response_read(const vt_value *body, const char *provider, size_t plen, vt_response *r);
/* The i-th finish reason (the provider's own string, in choice order), or NULL. */
const char *vt_response_finish(const vt_response *r, size_t i, size_t *len);
/* Price the response from a catalog (by its model id, as vt_prices_find). */
void vt_response_price(vt_response *r, const vt_prices *prices);
/* The llm_call metadata of a response, as an object into b: the usage keys
 * (vt_usage_write), response_id and finish_reasons (an array of strings). */
void vt_response_metadata(const vt_response *r, vt_vb *b);

/* ---- clock ----------------------------------------------------------------- */

int64_t vt_clock_mono_ns(void); /* CLOCK_MONOTONIC (read through the TSC where safe: README "Clock") */
const char *vt_clock_source(void); /* "tsc" or "monotonic": what vt_clock_mono_ns reads */
/* The same clock, read without waiting for the instructions before the
 * reading (rdtsc, not rdtscp; about 10 ns less on this project's machines):
 * it may precede a reading taken before it, by what the processor had in
 * flight, this thread's or one another thread took and this thread has
 * seen. A collector never gives a span a start or an end below the last
 * reading it took for a start, an end or an event, so its spans read this
 * way (VT_START_QUICK, vt_collector_finish_quick) stay in order (README
 * "Clock"). */
int64_t vt_clock_mono_ns_quick(void);
int64_t vt_clock_wall_ns(void); /* CLOCK_REALTIME */
/* Mock clock (per collector, nesting): the innermost mock is active. Its
 * wall time stays within [0, VT_MAX_TIME_MS) ms since 1970, the times files
 * can hold (2^62 ns: sums of times never overflow); a push or an advance
 * past that is VT_EINVAL, as a negative advance is. */
#define VT_MAX_TIME_MS INT64_C(4611686018427)
int vt_collector_mock_push(vt_collector *c, int64_t wall_ms);
int vt_collector_mock_advance(vt_collector *c, int64_t ms, int64_t *wall_ms);
int vt_collector_mock_pop(vt_collector *c);
int vt_collector_mocked(const vt_collector *c);
int64_t vt_collector_now_ms(const vt_collector *c);       /* wall ms */
int64_t vt_collector_monotonic_ms(const vt_collector *c); /* ms since epoch, or
                                                            mock monotonic */

/* ---- JSON ------------------------------------------------------------------------- */

struct cJSON;
/* Parse one JSON value (integers keep 64 bits, strings any byte): the value
 * (vt_free it), or NULL with a message in *err and the byte offset *at. */
vt_value *vt_json_parse(const char *text, size_t len, const char **err, size_t *at);
/* Conversions for hosts that build metadata with cJSON (a cJSON_Raw item
 * holding decimal digits is an exact integer; past int64 it is a number, as
 * vt_json_parse reads the same text). vt_free / cJSON_Delete them. */
vt_value *vt_value_from_cjson(const struct cJSON *item);
struct cJSON *vt_value_to_cjson(const vt_value *v);

/* ---- exports -------------------------------------------------------------- */

typedef enum vt_format {
  VT_FORMAT_JSON,    /* array of span objects (the Lua table shape) */
  VT_FORMAT_OTLP,    /* OTLP/JSON ExportTraceServiceRequest */
  VT_FORMAT_CHROME,  /* Chrome trace events (Perfetto, speedscope) */
  VT_FORMAT_FOLDED,  /* folded stacks (flamegraph.pl, inferno, speedscope) */
  VT_FORMAT_PROFILE, /* the run profile as text */
  VT_FORMAT_SUMMARY, /* the seed's format_summary text */
  VT_FORMAT_HTML,    /* the self-contained HTML report */
  VT_FORMAT_COUNT
} vt_format;
const char *vt_format_name(int fmt);           /* "json", "otlp", ... */
int vt_format_parse(const char *s, size_t len); /* or -1 */

typedef enum vt_weight {
  VT_WEIGHT_TIME,   /* self time in microseconds */
  VT_WEIGHT_TOKENS, /* input + output + cache read + cache write tokens */
  VT_WEIGHT_COST,   /* cost in micro-USD */
  VT_WEIGHT_COUNT
} vt_weight;
const char *vt_weight_name(int w);
int vt_weight_parse(const char *s, size_t len);

/* OpenTelemetry span limits for OTLP output (0: no limit). */
typedef struct vt_limits {
  size_t attribute_count;        /* OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT */
  size_t attribute_value_length; /* OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT */
  size_t event_count;            /* OTEL_SPAN_EVENT_COUNT_LIMIT */
  size_t link_count;             /* OTEL_SPAN_LINK_COUNT_LIMIT */
} vt_limits;

typedef struct vt_export_opts {
  vt_weight weight;          /* folded */
  const char *service_name;  /* otlp: service.name (NULL: "unknown_service") */
  const vt_value *resource;  /* otlp: more resource attributes (an object), or NULL */
  vt_limits limits;          /* otlp */
  int64_t generated_unix_ms; /* html: when the report was made (0: now) */
} vt_export_opts;

/* Write the completed spans in `fmt` to `f`, streaming: memory does not grow
 * with the number of spans. VT_OK, VT_EIO (errno set) or VT_ENOMEM. */
int vt_collector_export(const vt_collector *c, vt_format fmt, const vt_export_opts *o,
                        FILE *f);
/* The same into a NUL-terminated string (vt_free it), or NULL. */
char *vt_collector_export_string(const vt_collector *c, vt_format fmt,
                                 const vt_export_opts *o, size_t *len);
/* The same to a path, written to a temporary file in its directory (named
 * "<path>.vmtrace-tmp-XXXXXX", made with O_EXCL) and renamed into place once
 * complete; the file keeps the mode of the file it replaces. VT_OK, VT_EIO
 * with errno, VT_ENOMEM. */
int vt_collector_export_path(const vt_collector *c, vt_format fmt, const vt_export_opts *o,
                             const char *path);
/* The seed's format_summary text (vt_free it), or NULL when out of memory.
 * Linear in the number of spans. */
char *vt_collector_summary(const vt_collector *c, size_t *len);
/* The run profile as a value (an object: wall_ms, by_kind, residual_ms,
 * top_llm_calls, top_tool_calls, steps, llm), or NULL (vt_free it). */
vt_value *vt_collector_profile(const vt_collector *c);

/* ---- the NDJSON stream -------------------------------------------------------- */

typedef struct vt_stream vt_stream;
/* Write every span start and end of `c` as NDJSON lines to the file
 * descriptor fd from now on, after a header line (vt_stream_close closes the
 * fd). flush_each: each line goes to the kernel at once; else lines are
 * buffered (64 KiB) and the buffer is written when full, at close and at
 * process exit. When the file does not end with a newline (an append after
 * a torn last line), the stream starts on a fresh line. NULL when out of
 * memory. */
vt_stream *vt_stream_open(vt_collector *c, int fd, int flush_each);
typedef struct vt_stream_status {
  int error;           /* errno of the first failed write (0: none) */
  int failing;         /* the last write failed */
  uint64_t lines;      /* lines written */
  uint64_t lost_lines; /* lines that could not be written */
} vt_stream_status;
void vt_stream_status_get(const vt_stream *s, vt_stream_status *out);
/* Stop, write what is buffered, close; the first error's errno, or 0. */
int vt_stream_close(vt_stream *s);

/* ---- reading files ------------------------------------------------------------ */

typedef struct vt_load_result {
  size_t spans;          /* spans read */
  size_t unfinished;     /* spans still open when the stream ended */
  size_t skipped_lines;  /* torn or corrupt stream lines skipped (but the last) */
  int torn_tail;         /* the last line was cut short (as a crash leaves it) */
  size_t renumbered;     /* 1 when sparse ids were renumbered */
  size_t line;           /* with a status other than VT_OK: where the error is;
                          * with VT_OK: the first line skipped (0: none) */
  char error[200];       /* what is wrong there ("" when VT_OK skipped none) */
} vt_load_result;
/* Replace the spans of c with those read from f: a JSON span list (the json
 * export) or an NDJSON stream, also one cut short by a crash (spans still
 * open come back with unfinished = true, ending at the last time seen). In a
 * stream a line that cannot be used (corrupt, an unknown type, a span that
 * ends twice) is skipped and counted; in a span list any such span refuses
 * the file: VT_EEXIST for a span id that comes twice, VT_EINVAL for the
 * rest. The input is read in a bounded window; a refused file leaves c as
 * it was. The trace is the file's (vt_collector_reset_trace): a file that names no
 * trace id gets a fresh one; an id that is no uuid keeps its text, its
 * OTLP/W3C bytes a hash of it; an id longer than 47 bytes, or not UTF-8, is
 * refused.
 * VT_OK, VT_EINVAL, VT_EEXIST, VT_EIO (errno) or VT_ENOMEM with r->line and
 * r->error. */
int vt_collector_load(vt_collector *c, FILE *f, vt_load_result *r);
/* The same from memory. */
int vt_collector_load_text(vt_collector *c, const char *text, size_t len, vt_load_result *r);

/* ---- OpenTelemetry ids ------------------------------------------------------ */

/* The exported (OTLP / W3C) id of a local span: unique across processes that
 * share a trace (a bijection of the id under a per-collector random salt). */
uint64_t vt_otel_span_id(uint64_t salt, vt_id id);
uint64_t vt_collector_otel_span_id(const vt_collector *c, vt_id id);
/* Parse a traceparent header (1 when valid). */
int vt_traceparent_parse(const char *s, size_t len, unsigned char trace[16],
                         uint64_t *parent, unsigned *flags);

/* ---- modules ----------------------------------------------------------------- */

/* What a separately built module (the OTLP/HTTP exporter, vmtrace.otlp_http)
 * needs of the core module it runs beside: the core's own functions, so that
 * one allocator and one copy of the store serve both. The Lua binding puts
 * it in the registry as light userdata under "vmtrace.api", and the state's
 * collector under "vmtrace.collector". */
#define VT_API_VERSION 1
typedef struct vt_api {
  int version;
  int (*subscribe)(vt_collector *c, vt_listener fn, void *ud);
  int (*unsubscribe)(vt_collector *c, vt_listener fn, void *ud);
  int (*get)(const vt_collector *c, vt_id id, vt_span_view *out);
  void (*trace_info)(const vt_collector *c, vt_trace_info *out);
  void (*set_sampler)(vt_collector *c, vt_sampler s, double ratio);
  uint64_t (*dropped)(const vt_collector *c);
} vt_api;
const vt_api *vt_core_api(void);

/* ---- Lua hosts (defined in the binding) --------------------------------------- */

struct lua_State;
/* The collector of a Lua state that has loaded vmtrace.core, or NULL. */
vt_collector *vt_lua_collector(struct lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
