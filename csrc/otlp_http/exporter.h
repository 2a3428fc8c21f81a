/*
 * exporter.h: the OTLP/HTTP exporter (csrc/otlp_http/exporter.c), a batch
 * span processor built as its own module (vmtrace.otlp_http) so that the
 * core links no HTTP library. It reaches the collector through the core's
 * function table (vt_api).
 */
#ifndef VT_EXPORTER_H
#define VT_EXPORTER_H

#include "vmtrace.h"

/* Settings; a negative number (or NULL) means "the default" (one table of
 * defaults, in exporter.c: vt_otlp_defaults). */
typedef struct vt_otlp_config {
  const char *endpoint;       /* the full URL, e.g. http://host:4318/v1/traces */
  const char *const *headers; /* "Name: value" strings, NULL-terminated, or NULL */
  const char *service_name;   /* NULL: "unknown_service" */
  const vt_value *resource;   /* more resource attributes (an object, copied), or NULL */
  vt_limits limits;           /* OpenTelemetry span limits for every span sent */
  long timeout_ms;            /* one request */
  long max_retry_ms;          /* retrying one batch, in all (0: no retry) */
  long delay_ms;              /* the longest a span waits for its batch */
  long backoff_ms;            /* the first retry's wait, doubled each time */
  long batch_size;            /* spans per request */
  long max_queue;             /* spans waiting at most; past it: dropped */
  long long max_queue_bytes;  /* bytes of spans waiting at most; past it: dropped */
  long close_ms;              /* how long closing the state or exiting waits */
  int gzip;                   /* compress request bodies (0 or 1; -1: default) */
} vt_otlp_config;

/* The defaults: timeout 10000 ms, max_retry 30000 ms, delay 5000 ms, backoff
 * 1000 ms, batch 512, max_queue 2048, max_queue_bytes 32 MiB, close 5000 ms,
 * no gzip. */
extern const vt_otlp_config vt_otlp_defaults;

typedef struct vt_otlp vt_otlp;

typedef struct vt_otlp_stats {
  uint64_t queued, queued_bytes, exported, dropped, failed_batches, failed_spans, retries, batches;
  char last_error[256];
} vt_otlp_stats;

/* Export every finished span of a sampled trace of c from now on (a
 * background thread, libcurl). NULL with a message in err when it cannot
 * start. */
vt_otlp *vt_otlp_start(const vt_api *api, vt_collector *c, const vt_otlp_config *cfg,
                       char *err, size_t errlen);
/* Wait until what was queued before the call has been sent (or has failed);
 * 1 when done in time. Returns within timeout_ms (+ a few ms). */
int vt_otlp_flush(vt_otlp *x, long timeout_ms);
/* Stop taking spans, flush within timeout_ms, stop the thread, free. 1 when
 * everything was delivered. */
int vt_otlp_shutdown(vt_otlp *x, long timeout_ms);
/* Stop taking spans and let the thread deliver what is queued on its own
 * (within its retry time, or by process exit), then free itself. */
void vt_otlp_detach(vt_otlp *x);
void vt_otlp_stats_get(vt_otlp *x, vt_otlp_stats *out);

#endif
