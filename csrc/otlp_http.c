/*
 * otlp_http.c: the OTLP/HTTP exporter, a batch span processor. A collector
 * hook puts each finished (and sampled) span into a bounded single-producer,
 * single-consumer ring: the Lua thread never waits on the network and, when
 * the ring is full, drops the span and counts it. One background thread takes
 * batches out, writes them as OTLP/JSON (gzip optional) and POSTs them with
 * libcurl, retrying with exponential backoff and jitter on connection errors
 * and on 429, 502, 503 and 504 (honouring Retry-After) until the export
 * timeout; a retried batch is the same bytes, so a span is delivered at most
 * once per successful response. Header values never reach a message.
 *
 * Spans without metadata, links or events go into the ring as plain fields
 * (their name is the collector's interned name, whose bytes never move);
 * the others are written as OTLP JSON by the producer, since their metadata
 * stays the collector's to change or free.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

#include "internal.h"

typedef struct rec {
  vt_otlp_ctx ctx;
  vt_id id, parent;
  int64_t start_unix_ns, dur_ns;
  const char *name; /* plain spans: the interned name */
  uint32_t name_len;
  uint8_t kind;
  char *json;       /* the rest: the span written by the producer */
  uint64_t dropped; /* the collector's count when the span finished */
} rec;

struct vt_otlp {
  vt_collector *c;
  /* configuration */
  char *endpoint;
  struct curl_slist *headers;
  vt_export_opts opts; /* service name and resource for every batch */
  cJSON *resource;
  char *service_name;
  long timeout_ms, max_retry_ms, delay_ms, backoff_ms;
  int gzip;
  size_t batch;
  /* the ring: the producer moves head, the consumer tail */
  rec *ring;
  size_t cap;   /* a power of two */
  size_t limit; /* max_queue: spans waiting at most */
  size_t head, tail;
  /* the consumer thread */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake; /* to the consumer: a batch, a flush, stop */
  pthread_cond_t idle; /* from the consumer: the ring is empty */
  int stop, abort_now, flushing, busy;
  /* counters (the consumer's, read under mu) */
  uint64_t exported, dropped, failed_batches, failed_spans, retries, batches;
  char last_error[256];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t load(const size_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store(size_t *p, size_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ---- the producer (the Lua thread) -------------------------------------------------- */

static void on_event(void *ud, const vt_collector *c, vt_hook_event ev, vt_id id) {
  vt_otlp *x = ud;
  size_t head = x->head, tail = load(&x->tail);
  vt_span_view v;
  rec *r;
  if (ev != VT_HOOK_END || !c->sampled) return;
  if (head - tail >= x->limit) { /* full: never wait, count */
    __atomic_add_fetch(&x->dropped, 1, __ATOMIC_RELAXED);
    return;
  }
  if (vt_collector_get(c, id, &v) != VT_OK) return;
  r = &x->ring[head & (x->cap - 1)];
  vt_otlp_ctx_of(c, &r->ctx);
  r->id = id;
  r->parent = v.parent;
  r->start_unix_ns = v.start_unix_ns;
  r->dur_ns = v.duration_ns;
  r->name = v.name;
  r->name_len = (uint32_t)v.name_len;
  r->kind = (uint8_t)v.kind;
  r->dropped = c->dropped;
  r->json = NULL;
  if (v.metadata || v.nlinks || v.nevents) {
    vt_buf b;
    memset(&b, 0, sizeof b);
    vt_otlp_write_span(&b, &r->ctx, &v);
    vt_buf_putc(&b, '\0');
    if (b.failed) {
      vt_buf_free(&b);
      __atomic_add_fetch(&x->dropped, 1, __ATOMIC_RELAXED);
      return;
    }
    r->json = b.p;
  }
  store(&x->head, head + 1);
  if (head + 1 - tail == x->batch) { /* a batch is ready: wake the consumer */
    pthread_mutex_lock(&x->mu);
    pthread_cond_signal(&x->wake);
    pthread_mutex_unlock(&x->mu);
  }
}

/* ---- the consumer (the exporter thread) ---------------------------------------------- */

/* The last error, as the user sees it (never a header value). */
static void set_error(vt_otlp *x, const char *msg) {
  pthread_mutex_lock(&x->mu);
  snprintf(x->last_error, sizeof x->last_error, "%s", msg);
  pthread_mutex_unlock(&x->mu);
}

/* One request body: the batch tail..tail+n written as OTLP JSON. */
static int write_batch(vt_otlp *x, size_t tail, size_t n, vt_buf *b) {
  size_t i;
  uint64_t dropped = 0;
  for (i = 0; i < n; i++) {
    const rec *r = &x->ring[(tail + i) & (x->cap - 1)];
    if (r->dropped > dropped) dropped = r->dropped;
  }
  vt_otlp_write_head(b, &x->opts, dropped + __atomic_load_n(&x->dropped, __ATOMIC_RELAXED));
  for (i = 0; i < n; i++) {
    rec *r = &x->ring[(tail + i) & (x->cap - 1)];
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    if (r->json) {
      vt_buf_puts(b, r->json);
    } else {
      vt_span_view v;
      memset(&v, 0, sizeof v);
      v.id = r->id;
      v.parent = r->parent;
      v.kind = (vt_kind)r->kind;
      v.name = r->name;
      v.name_len = r->name_len;
      v.start_unix_ns = r->start_unix_ns;
      v.duration_ns = r->dur_ns;
      vt_otlp_write_span(b, &r->ctx, &v);
    }
  }
  vt_otlp_write_tail(b);
  return !b->failed;
}

static int gzip_body(const vt_buf *in, vt_buf *out) {
  z_stream z;
  int rc;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return 0;
  if (!vt_buf_grow(out, deflateBound(&z, (uLong)in->n))) {
    deflateEnd(&z);
    return 0;
  }
  z.next_in = (Bytef *)in->p;
  z.avail_in = (uInt)in->n;
  z.next_out = (Bytef *)out->p;
  z.avail_out = (uInt)out->cap;
  rc = deflate(&z, Z_FINISH);
  out->n = z.total_out;
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

typedef struct reply {
  long retry_after_ms; /* from Retry-After, or -1 */
} reply;

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  reply *r = ud;
  size_t len = size * n;
  if (len > 12 && !strncasecmp(buf, "Retry-After:", 12)) {
    char tmp[32];
    size_t k = len - 12 < sizeof tmp - 1 ? len - 12 : sizeof tmp - 1;
    char *end;
    long secs;
    memcpy(tmp, buf + 12, k);
    tmp[k] = '\0';
    secs = strtol(tmp, &end, 10);
    while (*end == ' ' || *end == '\r' || *end == '\n') end++;
    if (end != tmp && !*end && secs >= 0 && secs < 3600) {
      r->retry_after_ms = secs * 1000;
    } else { /* an HTTP date */
      time_t when = curl_getdate(tmp, NULL), now = time(NULL);
      if (when != (time_t)-1) r->retry_after_ms = when > now ? (long)(when - now) * 1000 : 0;
    }
  }
  return len;
}

static size_t discard(char *buf, size_t size, size_t n, void *ud) {
  (void)buf;
  (void)ud;
  return size * n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d) {
  vt_otlp *x = ud;
  (void)a, (void)b, (void)c, (void)d;
  return __atomic_load_n(&x->abort_now, __ATOMIC_RELAXED); /* shutdown past its time */
}

/* POST the body once: 1 delivered, 0 worth a retry, -1 refused for good. */
static int post(vt_otlp *x, CURL *h, const vt_buf *body, long *retry_after) {
  reply r = {-1};
  long code = 0;
  CURLcode rc;
  curl_easy_setopt(h, CURLOPT_URL, x->endpoint);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->p);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->n);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  rc = curl_easy_perform(h);
  *retry_after = r.retry_after_ms;
  if (rc != CURLE_OK) { /* connection errors and timeouts are worth a retry */
    char msg[160];
    snprintf(msg, sizeof msg, "%s (curl error %d)", curl_easy_strerror(rc), (int)rc);
    set_error(x, msg);
    return rc == CURLE_ABORTED_BY_CALLBACK ? -1 : 0;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300) return 1;
  {
    char msg[64];
    snprintf(msg, sizeof msg, "HTTP status %ld", code);
    set_error(x, msg);
  }
  return (code == 429 || code == 502 || code == 503 || code == 504) ? 0 : -1;
}

static int64_t now_ms(void) { return vt_clock_mono_ns() / 1000000; }

/* Wait up to ms (or until stop); 0 when stopping. */
static int nap(vt_otlp *x, long ms) {
  struct timespec ts;
  int stopping;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  pthread_mutex_lock(&x->mu);
  while (!x->abort_now && pthread_cond_timedwait(&x->wake, &x->mu, &ts) != ETIMEDOUT) {
  }
  stopping = x->abort_now;
  pthread_mutex_unlock(&x->mu);
  return !stopping;
}

/* Deliver one batch: the same bytes until a success, a refusal or the
 * export timeout. */
static void deliver(vt_otlp *x, CURL *h, size_t tail, size_t n) {
  vt_buf json, gz, *body = &json;
  int64_t deadline = now_ms() + x->max_retry_ms;
  long backoff = x->backoff_ms;
  int rc = -1;
  memset(&json, 0, sizeof json);
  memset(&gz, 0, sizeof gz);
  if (!write_batch(x, tail, n, &json)) {
    set_error(x, "out of memory writing a batch");
  } else if (x->gzip && !gzip_body(&json, &gz)) {
    set_error(x, "gzip failed");
  } else {
    if (x->gzip) body = &gz;
    for (;;) {
      long retry_after;
      rc = post(x, h, body, &retry_after);
      if (rc != 0) break;
      {
        long wait = retry_after >= 0 ? retry_after
                                     : backoff / 2 + (long)(rand() % (backoff / 2 + 1));
        if (now_ms() + wait > deadline) break; /* out of time: give up */
        pthread_mutex_lock(&x->mu);
        x->retries++;
        pthread_mutex_unlock(&x->mu);
        if (!nap(x, wait)) break;
        if (backoff < 32000) backoff *= 2;
      }
    }
  }
  pthread_mutex_lock(&x->mu);
  x->batches++;
  if (rc == 1) x->exported += n;
  else {
    x->failed_batches++;
    x->failed_spans += n;
  }
  pthread_mutex_unlock(&x->mu);
  vt_buf_free(&json);
  vt_buf_free(&gz);
}

static void *run(void *ud) {
  vt_otlp *x = ud;
  CURL *h = curl_easy_init();
  for (;;) {
    size_t tail = x->tail, head, n, i;
    struct timespec ts;
    pthread_mutex_lock(&x->mu);
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += x->delay_ms / 1000;
    ts.tv_nsec += (x->delay_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    while (!x->stop && !x->flushing && load(&x->head) - tail < x->batch) {
      if (pthread_cond_timedwait(&x->wake, &x->mu, &ts) == ETIMEDOUT) break;
    }
    head = load(&x->head);
    if (head == tail) { /* nothing to send */
      x->flushing = 0;
      pthread_cond_broadcast(&x->idle);
      if (x->stop) {
        pthread_mutex_unlock(&x->mu);
        break;
      }
      pthread_mutex_unlock(&x->mu);
      continue;
    }
    x->busy = 1;
    pthread_mutex_unlock(&x->mu);
    n = head - tail < x->batch ? head - tail : x->batch;
    if (h) deliver(x, h, tail, n);
    for (i = 0; i < n; i++) { /* give the slots back */
      rec *r = &x->ring[(tail + i) & (x->cap - 1)];
      vt_free(r->json);
      r->json = NULL;
    }
    store(&x->tail, tail + n);
    pthread_mutex_lock(&x->mu);
    x->busy = 0;
    pthread_mutex_unlock(&x->mu);
  }
  if (h) curl_easy_cleanup(h);
  return NULL;
}

/* ---- starting, flushing, stopping ----------------------------------------------------- */

static void otlp_free(vt_otlp *x) {
  size_t i;
  if (!x) return;
  for (i = 0; x->ring && i < x->cap; i++) vt_free(x->ring[i].json);
  vt_free(x->ring);
  vt_free(x->endpoint);
  vt_free(x->service_name);
  cJSON_Delete(x->resource);
  curl_slist_free_all(x->headers);
  vt_free(x);
}

vt_otlp *vt_otlp_start(vt_collector *c, const vt_otlp_config *cfg, char *err, size_t errlen) {
  vt_otlp *x;
  size_t cap, i;
  const char *const *hd;
  pthread_once(&curl_once, curl_init);
  if (!cfg->endpoint || !*cfg->endpoint) {
    snprintf(err, errlen, "no endpoint");
    return NULL;
  }
  x = vt_calloc(1, sizeof *x);
  if (!x) goto oom;
  x->c = c;
  x->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
  x->max_retry_ms = cfg->max_retry_ms > 0 ? cfg->max_retry_ms : 30000;
  x->delay_ms = cfg->delay_ms > 0 ? cfg->delay_ms : 5000;
  x->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 1000;
  x->gzip = cfg->gzip;
  x->batch = cfg->batch_size > 0 ? cfg->batch_size : 512;
  x->limit = cfg->max_queue > 0 ? cfg->max_queue : 2048;
  cap = 1;
  while (cap < x->limit) cap *= 2;
  x->cap = cap;
  if (x->batch > x->limit) x->batch = x->limit;
  if (!(x->ring = vt_calloc(cap, sizeof *x->ring))) goto oom;
  if (!(x->endpoint = vt_malloc(strlen(cfg->endpoint) + 1))) goto oom;
  strcpy(x->endpoint, cfg->endpoint);
  if (cfg->service_name) {
    if (!(x->service_name = vt_malloc(strlen(cfg->service_name) + 1))) goto oom;
    strcpy(x->service_name, cfg->service_name);
  }
  if (cfg->resource && !(x->resource = cJSON_Duplicate(cfg->resource, 1))) goto oom;
  x->opts.service_name = x->service_name;
  x->opts.resource = x->resource;
  x->headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (x->gzip) x->headers = curl_slist_append(x->headers, "Content-Encoding: gzip");
  for (hd = cfg->headers, i = 0; hd && *hd; hd++, i++) {
    struct curl_slist *l = curl_slist_append(x->headers, *hd);
    if (!l) goto oom;
    x->headers = l;
  }
  if (!x->headers) goto oom;
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->wake, NULL);
  pthread_cond_init(&x->idle, NULL);
  if (vt_collector_add_hook(c, on_event, x) != VT_OK) {
    snprintf(err, errlen, "the collector has no room for another hook");
    goto fail_sync;
  }
  if (pthread_create(&x->thread, NULL, run, x) != 0) {
    vt_collector_remove_hook(c, on_event, x);
    snprintf(err, errlen, "cannot start the exporter thread");
    goto fail_sync;
  }
  return x;
fail_sync:
  pthread_cond_destroy(&x->idle);
  pthread_cond_destroy(&x->wake);
  pthread_mutex_destroy(&x->mu);
  otlp_free(x);
  return NULL;
oom:
  snprintf(err, errlen, "out of memory");
  otlp_free(x);
  return NULL;
}

int vt_otlp_flush(vt_otlp *x, long timeout_ms) {
  struct timespec ts;
  int done;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  pthread_mutex_lock(&x->mu);
  x->flushing = 1;
  pthread_cond_signal(&x->wake);
  while (!(done = load(&x->head) == load(&x->tail) && !x->busy)) {
    if (pthread_cond_timedwait(&x->idle, &x->mu, &ts) == ETIMEDOUT) {
      done = load(&x->head) == load(&x->tail) && !x->busy;
      break;
    }
    x->flushing = 1; /* until everything queued before the flush is out */
    pthread_cond_signal(&x->wake);
  }
  pthread_mutex_unlock(&x->mu);
  return done;
}

int vt_otlp_shutdown(vt_otlp *x, long timeout_ms) {
  int done;
  if (!x) return 1;
  vt_collector_remove_hook(x->c, on_event, x); /* nothing more comes in */
  done = vt_otlp_flush(x, timeout_ms);
  pthread_mutex_lock(&x->mu);
  x->stop = 1;
  if (!done) x->abort_now = 1; /* past its time: cut the request short */
  pthread_cond_broadcast(&x->wake);
  pthread_mutex_unlock(&x->mu);
  pthread_join(x->thread, NULL);
  pthread_cond_destroy(&x->idle);
  pthread_cond_destroy(&x->wake);
  pthread_mutex_destroy(&x->mu);
  otlp_free(x);
  return done;
}

void vt_otlp_stats_get(vt_otlp *x, vt_otlp_stats *out) {
  pthread_mutex_lock(&x->mu);
  out->queued = load(&x->head) - load(&x->tail);
  out->exported = x->exported;
  out->dropped = __atomic_load_n(&x->dropped, __ATOMIC_RELAXED);
  out->failed_batches = x->failed_batches;
  out->failed_spans = x->failed_spans;
  out->retries = x->retries;
  out->batches = x->batches;
  snprintf(out->last_error, sizeof out->last_error, "%s", x->last_error);
  pthread_mutex_unlock(&x->mu);
}
