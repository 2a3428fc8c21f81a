/*
 * vmtrace.h: the public C API of the vmtrace core.
 *
 * A host that embeds Lua uses this header to emit spans from C into the same
 * collector a script sees (vt_lua_collector), or creates collectors of its own.
 * The core is plain C (no Lua); every function here but vt_lua_collector lives
 * in csrc/ files that never include lua.h.
 *
 * Conventions
 *  - Span ids count up from 1 per collector; 0 means "not recorded".
 *  - Times are nanoseconds: monotonic offsets from the collector's epoch, or
 *    wall-clock nanoseconds since the UNIX epoch where the name says unix.
 *  - Every cJSON value handed to the core is consumed (owned by the core after
 *    the call, whatever the result). Integers that must keep all 64 bits are
 *    cJSON_Raw items holding decimal text (vt_json_int makes them).
 *  - Strings are byte strings with explicit lengths; they may hold NUL bytes
 *    and invalid UTF-8. Keys and string values stored inside cJSON items keep
 *    NUL and 0xC0 bytes escaped (see vt_json_str / vt_str_decode).
 *  - A collector belongs to one thread at a time; two collectors share nothing.
 */
#ifndef VMTRACE_H
#define VMTRACE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMTRACE_VERSION "0.1.0"

typedef uint64_t vt_id;

/* Metadata keys one span may hold: a bound on memory and on the linear cost
 * of keeping its keys sorted. A new key past it is refused (VT_ELIMIT). */
#define VT_MAX_KEYS 10000
typedef struct vt_collector vt_collector;
typedef struct vt_stack vt_stack;

/* Status codes returned by the core. */
typedef enum vt_status {
  VT_OK = 0,
  VT_ENOTFOUND = 1, /* id is 0, unknown, finished (or not open), or no mock */
  VT_EEXIST = 2,    /* set_metadata_if_absent: the key was already there */
  VT_ENOMEM = 3,    /* an allocation failed; the collector is unchanged */
  VT_EINVAL = 4,    /* a malformed argument */
  VT_EIO = 5,       /* an output error */
  VT_ELIMIT = 6     /* a span already has VT_MAX_KEYS metadata keys */
} vt_status;

/* Span kinds, in the seed's order. */
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
/* "pipeline, fn_call, ..., deferred_tool_load" */
const char *vt_kind_list(void);

/* A causal link to another span (OTel span link). */
typedef struct vt_link {
  const char *trace_id;
  size_t trace_id_len;
  const char *span_id; /* decimal string of the local id, or a remote id */
  size_t span_id_len;
  cJSON *attributes; /* object of string values, or NULL */
} vt_link;

/* A sub-phase event recorded on a span. */
typedef struct vt_event {
  const char *name;
  size_t name_len;
  int64_t time_unix_ns; /* wall clock (mock-aware) */
  int64_t offset_ns;    /* from the span's start */
  cJSON *attributes;    /* object, or NULL */
} vt_event;

/* ---- memory ------------------------------------------------------------------ */

/* Every allocation of the core, cJSON's included, goes through these. The
 * allocator is process-wide (like cJSON's hooks): install it before any
 * collector exists. NULL restores malloc/realloc/free. */
typedef struct vt_allocator {
  void *(*malloc_fn)(size_t size);
  void *(*realloc_fn)(void *ptr, size_t size);
  void (*free_fn)(void *ptr);
} vt_allocator;
void vt_set_allocator(const vt_allocator *a);
void *vt_malloc(size_t n);
void *vt_calloc(size_t n, size_t size);
void *vt_realloc(void *p, size_t n);
/* Frees what the core returns (summaries, export strings). */
void vt_free(void *p);

/* ---- collectors -------------------------------------------------------- */

/* A new, disabled collector (NULL when out of memory). */
vt_collector *vt_collector_new(void);
void vt_collector_free(vt_collector *c);
/* Drop every span, restart ids at 1, new trace id and epoch. Open stacks stay
 * valid but are emptied. */
void vt_collector_reset(vt_collector *c);
/* Turning tracing on resets the collector, as in the seed. */
void vt_collector_set_enabled(vt_collector *c, int on);
int vt_collector_enabled(const vt_collector *c);
/* "trace_<uuid v7>" (42 bytes + NUL). */
const char *vt_collector_trace_id(const vt_collector *c);
/* The 16 bytes of the trace uuid (OTLP / W3C trace id). */
const unsigned char *vt_collector_trace_bytes(const vt_collector *c);
/* Spans not kept: allocation failures and spans past max_spans. */
uint64_t vt_collector_dropped(const vt_collector *c);
/* Keep at most `max` completed spans (0: no bound). Past it the oldest
 * completed spans are dropped and counted in vt_collector_dropped; hooks (the
 * stream) have seen them already. */
void vt_collector_set_max_spans(vt_collector *c, size_t max);
size_t vt_collector_max_spans(const vt_collector *c);
/* Counts up at every reset: an id is only meaningful with its generation. */
uint64_t vt_collector_generation(const vt_collector *c);

typedef struct vt_stats {
  size_t open, completed, stacks, names;
  uint64_t dropped, generation;
} vt_stats;
void vt_collector_stats(const vt_collector *c, vt_stats *out);

/* ---- active stacks (one per coroutine) ----------------------------------- */

/* The collector's main stack. */
vt_stack *vt_collector_main_stack(vt_collector *c);
/* A new stack whose first span gets `base_parent` (0: none) as parent. */
vt_stack *vt_stack_new(vt_collector *c, vt_id base_parent);
/* Free a stack; spans it holds stay open and can still be finished. */
void vt_stack_free(vt_collector *c, vt_stack *st);
/* The innermost open span of `st` (its base parent when empty), or 0. */
vt_id vt_stack_current(const vt_collector *c, const vt_stack *st);

/* ---- recording ----------------------------------------------------------- */

#define VT_START_DETACHED 1u /* a root span: no parent, whatever is active */
#define VT_START_ALWAYS 2u   /* record even while tracing is off */
#define VT_START_INSTANT 4u  /* a marker: completed at once, duration 0 */

/* What a span starts with besides its kind and name (all optional). */
typedef struct vt_start_args {
  vt_link *links;  /* copied; each link's attributes are consumed */
  size_t nlinks;
  cJSON *metadata; /* an object, consumed */
  unsigned flags;  /* VT_START_* */
} vt_start_args;

/* Start a span on `st` (NULL: the main stack); its parent is the current span
 * of `st` unless detached. `a` may be NULL; what it holds is consumed whatever
 * the result. Returns the id, or 0 when tracing is off (and not ALWAYS) or out
 * of memory (counted in vt_collector_dropped). */
vt_id vt_collector_start(vt_collector *c, vt_stack *st, vt_kind kind,
                         const char *name, size_t name_len,
                         const vt_start_args *a);
/* Intern a span name: a handle that stays valid for the collector's life
 * (names survive reset), or -1 when out of memory. */
int64_t vt_collector_intern(vt_collector *c, const char *name, size_t len);
/* vt_collector_start with an interned name: the fast path for hot loops. */
vt_id vt_collector_start_interned(vt_collector *c, vt_stack *st, vt_kind kind,
                                  uint32_t name, const vt_start_args *a);
/* Finish an open span: VT_OK and its duration, or VT_ENOTFOUND. The span is
 * removed from whichever stack holds it, wherever it is in that stack. */
int vt_collector_finish(vt_collector *c, vt_id id, int64_t *duration_ns);
/* Set a metadata key of an open span (VT_ENOTFOUND otherwise). */
int vt_collector_set_metadata(vt_collector *c, vt_id id, const char *key,
                              size_t key_len, cJSON *value);
/* Set a key of an open or completed span unless present (VT_EEXIST). */
int vt_collector_set_metadata_if_absent(vt_collector *c, vt_id id,
                                        const char *key, size_t key_len,
                                        cJSON *value);
/* Set every key of `obj` (an object, consumed) on an open or completed span
 * (replacing keys it has). */
int vt_collector_merge_metadata(vt_collector *c, vt_id id, cJSON *obj);
/* Time since an open span started (mock-aware), or a completed span's
 * duration. */
int vt_collector_elapsed(const vt_collector *c, vt_id id, int64_t *ns);
/* Append an event to an open span (VT_ENOTFOUND otherwise). */
int vt_collector_record_event(vt_collector *c, vt_id id, const char *name,
                              size_t name_len, cJSON *attributes);

/* ---- trace context (W3C) and sampling ----------------------------------------- */

/* Join a remote trace from a W3C traceparent header: its trace id becomes the
 * collector's and its span the parent of every root span in the exports.
 * VT_EINVAL (and nothing changes) for a header the specification calls
 * invalid: version ff, all-zero ids, wrong lengths, uppercase hex. */
int vt_collector_continue_trace(vt_collector *c, const char *header, size_t len);
/* The traceparent header for span id (0: the remote parent joined, if any):
 * "00-<trace>-<span>-<flags>" into out (56 bytes with the NUL); VT_OK or
 * VT_ENOTFOUND. */
int vt_collector_traceparent(const vt_collector *c, vt_id id, char out[56]);
/* The remote parent span id joined (its 8 bytes), or 0. */
uint64_t vt_collector_remote_parent(const vt_collector *c);
/* Parse a traceparent header (1 when valid). */
int vt_traceparent_parse(const char *s, size_t len, unsigned char trace[16],
                         uint64_t *parent, unsigned *flags);

/* OpenTelemetry samplers (OTEL_TRACES_SAMPLER): the decision is made per
 * trace, from the trace id (the same in every process) or the remote
 * parent's sampled flag, and is what vt_collector_sampled says. */
typedef enum vt_sampler {
  VT_SAMPLER_ALWAYS_ON,
  VT_SAMPLER_ALWAYS_OFF,
  VT_SAMPLER_RATIO,
  VT_SAMPLER_PARENT_ALWAYS_ON,
  VT_SAMPLER_PARENT_ALWAYS_OFF,
  VT_SAMPLER_PARENT_RATIO
} vt_sampler;
void vt_collector_set_sampler(vt_collector *c, vt_sampler s, double ratio);
int vt_collector_sampled(const vt_collector *c);
/* Is a trace with this id sampled at `ratio` (0..1)? */
int vt_trace_sampled(const unsigned char trace[16], double ratio);

/* ---- OTLP/HTTP exporter ----------------------------------------------------------- */

typedef struct vt_otlp_config {
  const char *endpoint;        /* the full URL, e.g. http://host:4318/v1/traces */
  const char *const *headers;  /* "Name: value" strings, NULL-terminated, or NULL */
  const char *service_name;    /* NULL: "unknown_service" */
  const cJSON *resource;       /* more resource attributes (copied), or NULL */
  long timeout_ms;             /* one request (default 10000) */
  long max_retry_ms;           /* retrying one batch, in all (default 30000) */
  long delay_ms;               /* the longest a span waits for its batch (default 5000) */
  long backoff_ms;             /* the first retry's wait, doubled each time (default 1000) */
  int gzip;                    /* compress request bodies */
  size_t batch_size;           /* spans per request (default 512) */
  size_t max_queue;            /* spans waiting at most (default 2048); past it: dropped */
} vt_otlp_config;

typedef struct vt_otlp vt_otlp;
typedef struct vt_otlp_stats {
  uint64_t queued, exported, dropped, failed_batches, failed_spans, retries, batches;
  char last_error[256];
} vt_otlp_stats;

/* Export every finished, sampled span of c from now on (a background thread,
 * libcurl). NULL with a message in err when it cannot start. */
vt_otlp *vt_otlp_start(vt_collector *c, const vt_otlp_config *cfg, char *err,
                       size_t errlen);
/* Wait until what was queued has been sent (or failed); 1 when done in time. */
int vt_otlp_flush(vt_otlp *x, long timeout_ms);
/* Flush, stop the thread, free. 1 when everything was sent in time. */
int vt_otlp_shutdown(vt_otlp *x, long timeout_ms);
void vt_otlp_stats_get(vt_otlp *x, vt_otlp_stats *out);

/* ---- hooks ------------------------------------------------------------------ */

typedef enum vt_hook_event {
  VT_HOOK_START, /* a span started (readable with vt_collector_get) */
  VT_HOOK_END,   /* a span finished */
  VT_HOOK_META,  /* metadata was added to a completed span */
  VT_HOOK_RESET,  /* the collector was reset (new trace id); id is 0 */
  VT_HOOK_CONTEXT /* the collector joined a remote trace; id is 0 */
} vt_hook_event;

typedef void (*vt_hook_fn)(void *ud, const vt_collector *c, vt_hook_event ev,
                           vt_id id);
/* Call fn on every span start and end, whoever records them (Lua or C).
 * At most 8 hooks; VT_ENOMEM past that. */
int vt_collector_add_hook(vt_collector *c, vt_hook_fn fn, void *ud);
int vt_collector_remove_hook(vt_collector *c, vt_hook_fn fn, void *ud);

/* ---- the NDJSON stream -------------------------------------------------------- */

typedef struct vt_stream vt_stream;
/* Write every span start and end of `c` to `f` as NDJSON lines from now on
 * (fflush after each line when flush_each), after a header line. With owns,
 * vt_stream_close closes f. NULL when out of memory or out of hooks. */
vt_stream *vt_stream_open(vt_collector *c, FILE *f, int owns, int flush_each);
/* errno of the first failed write, or 0. */
int vt_stream_error(const vt_stream *s);
/* Stop, flush (and close); returns the first error's errno, or 0. */
int vt_stream_close(vt_stream *s);

/* ---- reading files ------------------------------------------------------------ */

/* Replace the spans of c with those of `text`: a JSON span list (the json
 * export) or an NDJSON stream, also one cut short by a crash (spans still open
 * come back with unfinished = true, ending at the last time seen). VT_OK, or
 * VT_EINVAL / VT_ENOMEM with a message "line N: ..." in err. */
int vt_collector_load(vt_collector *c, const char *text, size_t len, char *err,
                      size_t errlen);
/* Parse one JSON value (integers keep 64 bits); NULL with *err and the byte
 * offset *at of the problem. */
cJSON *vt_json_parse(const char *text, size_t len, const char **err, size_t *at);

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
  const cJSON *metadata; /* object with sorted keys, or NULL */
  const vt_link *links;
  size_t nlinks;
  const vt_event *events;
  size_t nevents;
} vt_span_view;

/* Fill `out` for an open or completed span: VT_OK or VT_ENOTFOUND. O(1). */
int vt_collector_get(const vt_collector *c, vt_id id, vt_span_view *out);
/* Completed spans, in the order they finished. */
size_t vt_collector_count(const vt_collector *c);
vt_id vt_collector_completed_id(const vt_collector *c, size_t i);
/* Drop every completed span (after reading them): take_spans. */
void vt_collector_take(vt_collector *c);

/* The seed's format_summary text, NUL-terminated (vt_free it), or
 * NULL when out of memory. Linear in the number of spans. */
char *vt_collector_summary(const vt_collector *c, size_t *len);

/* ---- exports -------------------------------------------------------------- */

typedef enum vt_format {
  VT_FORMAT_JSON,   /* array of span objects (the Lua table shape) */
  VT_FORMAT_OTLP,   /* OTLP/JSON ExportTraceServiceRequest */
  VT_FORMAT_CHROME, /* Chrome trace events (Perfetto, speedscope) */
  VT_FORMAT_FOLDED  /* folded stacks (flamegraph.pl, inferno, speedscope) */
} vt_format;

typedef enum vt_weight {
  VT_WEIGHT_TIME,   /* self time in microseconds */
  VT_WEIGHT_TOKENS, /* input + output + cache read + cache write tokens */
  VT_WEIGHT_COST    /* cost in micro-USD */
} vt_weight;

typedef struct vt_export_opts {
  vt_weight weight;         /* folded */
  const char *service_name; /* otlp: service.name (NULL: "unknown_service") */
  const cJSON *resource;    /* otlp: more resource attributes, or NULL */
} vt_export_opts;

/* Write the completed spans in `fmt` to `f`, streaming: memory does not grow
 * with the number of spans. VT_OK, VT_EIO (errno set) or VT_ENOMEM. */
int vt_collector_export(const vt_collector *c, vt_format fmt,
                        const vt_export_opts *o, FILE *f);
/* The same into a NUL-terminated string (vt_free it), or NULL. */
char *vt_collector_export_string(const vt_collector *c, vt_format fmt,
                                 const vt_export_opts *o, size_t *len);
/* The run profile as a JSON object (wall_ms, by_kind, residual_ms,
 * top_llm_calls, top_tool_calls, steps, llm totals), or NULL (no memory). */
cJSON *vt_collector_profile(const vt_collector *c);
/* The exported (OTLP / W3C) id of a local span: 16 hex digits' worth, unique
 * across processes that share a trace. */
uint64_t vt_collector_otel_span_id(const vt_collector *c, vt_id id);

/* ---- clock ----------------------------------------------------------------- */

int64_t vt_clock_mono_ns(void); /* CLOCK_MONOTONIC */
int64_t vt_clock_wall_ns(void); /* CLOCK_REALTIME */
/* Mock clock (per collector, nesting): the innermost mock is active. */
int vt_collector_mock_push(vt_collector *c, int64_t wall_ms);
int vt_collector_mock_advance(vt_collector *c, int64_t ms, int64_t *wall_ms);
int vt_collector_mock_pop(vt_collector *c);
int vt_collector_mocked(const vt_collector *c);
int64_t vt_collector_now_ms(const vt_collector *c);       /* wall ms */
int64_t vt_collector_monotonic_ms(const vt_collector *c); /* ms since epoch, or
                                                            mock monotonic */

/* ---- JSON values ----------------------------------------------------------- */

/* A 64-bit integer kept exactly (cJSON_Raw with decimal text). */
cJSON *vt_json_int(int64_t v);
/* A string value of `len` bytes (NUL and 0xC0 bytes escaped). */
cJSON *vt_json_str(const char *s, size_t len);
/* A number; NaN and infinities become null. */
cJSON *vt_json_num(double d);
/* Add `value` to `obj` under `key`, keeping keys sorted and unique (an old
 * value under the same key is replaced). Consumes value. */
int vt_json_obj_set(cJSON *obj, const char *key, size_t key_len, cJSON *value);
/* The item under `key`, or NULL. */
cJSON *vt_json_obj_get(const cJSON *obj, const char *key, size_t key_len);
/* Is `item` an integer made by vt_json_int? Then *out holds it. */
int vt_json_is_int(const cJSON *item, int64_t *out);
/* Decode a stored (escaped) string into buf (at least strlen(s) bytes);
 * returns the decoded length. */
size_t vt_str_decode(const char *s, char *buf);

/* ---- Lua hosts (defined in lvmtrace.c) ------------------------------------ */

struct lua_State;
/* The collector of a Lua state that has loaded vmtrace.core, or NULL. */
vt_collector *vt_lua_collector(struct lua_State *L);

#ifdef __cplusplus
}
#endif
#endif
