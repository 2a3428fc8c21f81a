/*
 * export.h: what the writers in csrc/export/ share. They read finished spans
 * only through vmtrace.h (vt_collector_get, the completed-span iterators,
 * vt_collector_trace_info) and write into a vt_buf, which with a file is a
 * bounded window: exports never build the whole trace in memory.
 */
#ifndef VT_EXPORT_H
#define VT_EXPORT_H

#include "io/buf.h"
#include "io/json.h"
#include "vmtrace.h"

/* An id -> position map (open addressing) for one pass over the spans. */
typedef struct vt_idmap {
  vt_id *keys;
  uint32_t *vals;
  size_t mask, n;
} vt_idmap;
#define VT_NONE UINT32_MAX
int vt_idmap_init(vt_idmap *m, size_t n);
void vt_idmap_free(vt_idmap *m);
uint32_t vt_idmap_get(const vt_idmap *m, vt_id id);
int vt_idmap_put(vt_idmap *m, vt_id id, uint32_t v); /* 0 when out of memory */

/* A span object of the JSON span list (and of the stream's lines). */
void vt_write_span_json(vt_buf *b, const vt_trace_info *t, const vt_span_view *v);

/* OTLP/JSON, in pieces, for the file export and the exporter thread. */
/* What a writer of many spans keeps from one span to the next: the digits
 * of the last timestamp above its last eight (spans come close in time). */
typedef struct vt_otlp_memo {
  uint64_t hi;  /* ns / 10^8 of the last timestamp (0: none yet) */
  size_t hi_n;
  char hi_s[24];
} vt_otlp_memo;

typedef struct vt_otlp_ctx {
  unsigned char trace[16];
  char trace_hex[32]; /* the same, as every span writes it */
  vt_otlp_memo *memo;  /* the writer's own (NULL: none), not part of the trace */
  uint64_t salt, remote_parent;
  vt_limits limits;
  const char *tracestate; /* each span's traceState (NULL or "": none); points
                           * into the vt_trace_info given to vt_otlp_ctx_of */
} vt_otlp_ctx;
void vt_otlp_ctx_of(const vt_trace_info *t, const vt_limits *limits, vt_otlp_ctx *x);
void vt_otlp_write_head(vt_buf *b, const vt_export_opts *o, uint64_t dropped);
void vt_otlp_write_span(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v);
void vt_otlp_write_tail(vt_buf *b);

/* The writers: VT_OK, or VT_ENOMEM (b->failed with b->err: VT_EIO). */
int vt_export_json(const vt_collector *c, vt_buf *b);
int vt_export_otlp(const vt_collector *c, const vt_export_opts *o, vt_buf *b);
int vt_export_chrome(const vt_collector *c, vt_buf *b);
int vt_export_folded(const vt_collector *c, const vt_export_opts *o, vt_buf *b);
int vt_export_summary(const vt_collector *c, vt_buf *b);
int vt_export_profile_text(const vt_collector *c, vt_buf *b);
int vt_export_html(const vt_collector *c, const vt_export_opts *o, vt_buf *b);

#endif
