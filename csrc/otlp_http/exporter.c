/*
 * exporter.c: the OTLP/HTTP exporter, a batch span processor. A subscriber of
 * the collector's event bus copies each finished span of a sampled trace into
 * a record the exporter owns (its name, metadata, links and events packed in
 * one block: nothing on the exporter thread points into the collector) and
 * puts it in a bounded single-producer, single-consumer ring, bounded by
 * spans and by bytes: the script never waits on the network, and a span past
 * either bound is dropped and counted.
 *
 * One background thread takes batches out, writes them as OTLP/JSON (gzip
 * optional) and POSTs them with libcurl's multi interface, retrying with
 * exponential backoff and jitter on connection errors and on 429, 502, 503
 * and 504 (honouring Retry-After) until the export timeout; any 2xx status
 * means delivered, whatever happens to the body. A retried batch is the same
 * bytes. The thread sleeps in curl_multi_poll and is woken by
 * curl_multi_wakeup, so flush and shutdown keep their deadlines even in the
 * middle of a request. Header values never reach a message.
 *
 * Exit and fork: an exit handler flushes every exporter (within its close
 * time) when the process exits without closing the Lua state (os.exit) and
 * says on stderr how many spans were not delivered; after fork() the child
 * starts its own thread and sends only its own spans (the parent's queued
 * spans are the parent's to send).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

#include "core/util.h"
#include "export/export.h"
#include "otlp_http/exporter.h"

const vt_otlp_config vt_otlp_defaults = {
    NULL,  NULL, NULL, NULL, {0, 0, 0, 0},
    10000,                /* timeout_ms: OTEL_EXPORTER_OTLP_TIMEOUT's default */
    30000,                /* max_retry_ms: OTEL_BSP_EXPORT_TIMEOUT's default */
    5000,                 /* delay_ms: OTEL_BSP_SCHEDULE_DELAY's default */
    1000,                 /* backoff_ms */
    512,                  /* batch_size: OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default */
    2048,                 /* max_queue: OTEL_BSP_MAX_QUEUE_SIZE's default */
    32ll * 1024 * 1024,   /* max_queue_bytes */
    5000,                 /* close_ms */
    0                     /* gzip */
};

/* A finished span, owned by the queue: fixed fields, then name, metadata,
 * links and events packed behind them. */
typedef struct rec {
  size_t size;
  int64_t enq_ms;
  uint64_t dropped; /* the collector's count when the span finished */
  vt_otlp_ctx ctx;
  vt_id id, parent;
  int64_t start_unix_ns, dur_ns;
  uint32_t track, name_len, meta_len, nlinks, nevents, ts_len; /* ts: the tracestate */
  uint8_t kind;
} rec;

enum { RUNNING, DETACHED, STOPPED };

struct vt_otlp {
  const vt_api *api;
  vt_collector *c; /* NULL once unsubscribed */
  /* configuration */
  char *endpoint;
  struct curl_slist *headers;
  vt_export_opts opts; /* service name and resource for every batch */
  vt_value *resource;
  char *service_name;
  vt_limits limits;
  long timeout_ms, max_retry_ms, delay_ms, backoff_ms, close_ms;
  int gzip;
  size_t batch, limit, max_bytes;
  /* what the producer knows of the trace (ctx.tracestate points into info) */
  vt_trace_info info;
  vt_otlp_ctx ctx;
  int sampled;
  /* the ring: the producer moves head, the consumer tail */
  rec **ring;
  size_t cap; /* a power of two */
  size_t head, tail, bytes;
  /* the thread */
  pthread_t thread;
  int state;
  CURLM *multi;
  pthread_mutex_t mu;
  pthread_cond_t idle; /* from the consumer: a batch is done */
  int stop, abort_now;
  size_t flush_target;
  /* counters (the consumer's, read under mu), dropped is atomic */
  uint64_t exported, dropped, failed_batches, failed_spans, retries, batches;
  char last_error[256];
  struct vt_otlp *prev, *next; /* every exporter of the process */
};

static size_t load_z(const size_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store_z(size_t *p, size_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static int64_t now_ms(void) { return vt_clock_mono_ns() / 1000000; }

/* ---- the exporters of the process, for exit and fork ------------------------------ */

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static vt_otlp *all;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void list_add(vt_otlp *x) {
  pthread_mutex_lock(&all_mu);
  x->next = all;
  x->prev = NULL;
  if (all) all->prev = x;
  all = x;
  pthread_mutex_unlock(&all_mu);
}

static void list_remove_locked(vt_otlp *x) {
  if (x->prev) x->prev->next = x->next;
  else if (all == x) all = x->next;
  if (x->next) x->next->prev = x->prev;
  x->prev = x->next = NULL;
}

static int flush_wait(vt_otlp *x, long timeout_ms);
static void *run(void *ud);
static void on_event(void *ud, vt_collector *c, vt_ev ev, vt_id id);

/* At exit (os.exit does not close the Lua state): deliver what is queued
 * within each exporter's close time; say what could not be. */
static void at_exit(void) {
  vt_otlp *x;
  pthread_mutex_lock(&all_mu);
  for (x = all; x; x = x->next) {
    size_t left;
    if (x->state == STOPPED) continue;
    flush_wait(x, x->close_ms);
    pthread_mutex_lock(&x->mu);
    left = load_z(&x->head) - x->tail;
    x->stop = 1;
    x->abort_now = 1;
    pthread_mutex_unlock(&x->mu);
    curl_multi_wakeup(x->multi);
    if (left)
      fprintf(stderr, "vmtrace: %lu spans queued for %s were not delivered at exit%s%s\n",
              (unsigned long)left, x->endpoint, x->last_error[0] ? ": " : "", x->last_error);
  }
  pthread_mutex_unlock(&all_mu);
}

static void free_recs(vt_otlp *x) {
  size_t i;
  for (i = x->tail; i != x->head; i++) {
    vt_free(x->ring[i & (x->cap - 1)]);
    x->ring[i & (x->cap - 1)] = NULL;
  }
}

static void fork_prepare(void) {
  vt_otlp *x;
  pthread_mutex_lock(&all_mu);
  for (x = all; x; x = x->next) pthread_mutex_lock(&x->mu);
}

static void fork_parent(void) {
  vt_otlp *x;
  for (x = all; x; x = x->next) pthread_mutex_unlock(&x->mu);
  pthread_mutex_unlock(&all_mu);
}

/* The child: no exporter thread survived the fork. Each running exporter
 * forgets the parent's queue and starts a thread of its own. */
static void fork_child(void) {
  vt_otlp *x, *next;
  for (x = all; x; x = next) {
    next = x->next;
    pthread_mutex_unlock(&x->mu);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->idle, NULL);
    if (x->state != RUNNING) { /* the parent's to finish */
      list_remove_locked(x);
      continue;
    }
    free_recs(x);
    x->head = x->tail = x->bytes = x->flush_target = 0;
    x->exported = x->dropped = x->failed_batches = x->failed_spans = x->retries = x->batches = 0;
    x->last_error[0] = '\0';
    x->multi = curl_multi_init(); /* the parent's shares its wakeup pipe */
    if (!x->multi || pthread_create(&x->thread, NULL, run, x) != 0) {
      x->state = STOPPED;
      if (x->c) x->api->unsubscribe(x->c, on_event, x);
    }
  }
  pthread_mutex_unlock(&all_mu);
}

static void init_once(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  atexit(at_exit);
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- the producer (the Lua thread) -------------------------------------------------- */

static size_t pack_size(const vt_span_view *v, size_t ts_len) {
  size_t n = sizeof(rec) + v->name_len + ts_len, i;
  if (v->metadata) n += vt_value_size(v->metadata);
  for (i = 0; i < v->nlinks; i++)
    n += 12 + v->links[i].trace_id_len + v->links[i].span_id_len +
         (v->links[i].attributes ? vt_value_size(v->links[i].attributes) : 0);
  for (i = 0; i < v->nevents; i++)
    n += 24 + v->events[i].name_len + (v->events[i].attributes ? vt_value_size(v->events[i].attributes) : 0);
  return n;
}

static unsigned char *put(unsigned char *p, const void *s, size_t n) {
  if (n) memcpy(p, s, n);
  return p + n;
}

static unsigned char *put32(unsigned char *p, size_t n) {
  uint32_t x = (uint32_t)n;
  return put(p, &x, 4);
}

static void pack(rec *r, const vt_span_view *v, const char *ts, size_t ts_len) {
  unsigned char *p = (unsigned char *)(r + 1);
  size_t i;
  r->ts_len = (uint32_t)ts_len;
  p = put(p, ts, ts_len); /* the record owns its copy: the trace may change */
  r->id = v->id;
  r->parent = v->parent;
  r->kind = (uint8_t)v->kind;
  r->track = v->track;
  r->start_unix_ns = v->start_unix_ns;
  r->dur_ns = v->duration_ns;
  r->name_len = (uint32_t)v->name_len;
  r->meta_len = v->metadata ? (uint32_t)vt_value_size(v->metadata) : 0;
  r->nlinks = (uint32_t)v->nlinks;
  r->nevents = (uint32_t)v->nevents;
  p = put(p, v->name, v->name_len);
  p = put(p, v->metadata, r->meta_len);
  for (i = 0; i < v->nlinks; i++) {
    const vt_link *l = &v->links[i];
    size_t an = l->attributes ? vt_value_size(l->attributes) : 0;
    p = put32(p, l->trace_id_len);
    p = put32(p, l->span_id_len);
    p = put32(p, an);
    p = put(p, l->trace_id, l->trace_id_len);
    p = put(p, l->span_id, l->span_id_len);
    p = put(p, l->attributes, an);
  }
  for (i = 0; i < v->nevents; i++) {
    const vt_event *e = &v->events[i];
    size_t an = e->attributes ? vt_value_size(e->attributes) : 0;
    p = put(p, &e->time_unix_ns, 8);
    p = put(p, &e->offset_ns, 8);
    p = put32(p, e->name_len);
    p = put32(p, an);
    p = put(p, e->name, e->name_len);
    p = put(p, e->attributes, an);
  }
}

static void refresh(vt_otlp *x, vt_collector *c) {
  x->api->trace_info(c, &x->info);
  vt_otlp_ctx_of(&x->info, &x->limits, &x->ctx);
  x->sampled = x->info.sampled;
}

static void stop_thread(vt_otlp *x, long timeout_ms);

static void on_event(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  vt_otlp *x = ud;
  size_t head = x->head, tail, size, ts_len;
  vt_span_view v;
  rec *r;
  if (ev == VT_EV_CLOSE) { /* the collector goes: deliver what we have, let go */
    x->api->unsubscribe(c, on_event, x);
    x->c = NULL;
    if (x->state == RUNNING) stop_thread(x, x->close_ms);
    return;
  }
  if (ev == VT_EV_RESET || ev == VT_EV_CONTEXT) {
    refresh(x, c);
    return;
  }
  if (ev != VT_EV_END || !x->sampled) return;
  tail = load_z(&x->tail);
  if (head - tail >= x->limit || x->api->get(c, id, &v) != VT_OK) goto drop;
  ts_len = strlen(x->info.tracestate);
  size = pack_size(&v, ts_len);
  if (size > x->max_bytes - __atomic_load_n(&x->bytes, __ATOMIC_ACQUIRE) ||
      __atomic_load_n(&x->bytes, __ATOMIC_ACQUIRE) > x->max_bytes || !(r = vt_malloc(size)))
    goto drop;
  r->size = size;
  r->enq_ms = now_ms();
  r->ctx = x->ctx;
  r->dropped = x->api->dropped(c);
  pack(r, &v, x->info.tracestate, ts_len);
  x->ring[head & (x->cap - 1)] = r;
  __atomic_add_fetch(&x->bytes, size, __ATOMIC_RELEASE);
  store_z(&x->head, head + 1);
  if (head + 1 - tail == x->batch) curl_multi_wakeup(x->multi); /* a batch is ready */
  return;
drop:
  __atomic_add_fetch(&x->dropped, 1, __ATOMIC_RELAXED);
}

/* ---- the consumer (the exporter thread) ---------------------------------------------- */

/* The last error, as the user sees it (never a header value). */
static void set_error(vt_otlp *x, const char *msg) {
  pthread_mutex_lock(&x->mu);
  snprintf(x->last_error, sizeof x->last_error, "%s", msg);
  pthread_mutex_unlock(&x->mu);
}

static int aborting(vt_otlp *x) { return __atomic_load_n(&x->abort_now, __ATOMIC_ACQUIRE); }

static uint32_t get32(const unsigned char **p) {
  uint32_t v;
  memcpy(&v, *p, 4);
  *p += 4;
  return v;
}

typedef struct scratch {
  vt_link *links;
  size_t caplinks;
  vt_event *events;
  size_t capevents;
  char tracestate[VT_TRACESTATE_MAX + 1];
} scratch;

/* The view of a record (pointers into it), and its context with the
 * record's own tracestate (in s). */
static int unpack(const rec *r, vt_span_view *v, vt_otlp_ctx *ctx, scratch *s) {
  const unsigned char *p = (const unsigned char *)(r + 1);
  size_t i;
  memset(v, 0, sizeof *v);
  *ctx = r->ctx;
  if (r->ts_len >= sizeof s->tracestate) return 0;
  memcpy(s->tracestate, p, r->ts_len);
  s->tracestate[r->ts_len] = '\0';
  ctx->tracestate = s->tracestate;
  p += r->ts_len;
  v->id = r->id;
  v->parent = r->parent;
  v->kind = (vt_kind)r->kind;
  v->track = r->track;
  v->start_unix_ns = r->start_unix_ns;
  v->duration_ns = r->dur_ns;
  v->name = (const char *)p;
  v->name_len = r->name_len;
  p += r->name_len;
  v->metadata = r->meta_len ? (const vt_value *)p : NULL;
  p += r->meta_len;
  if (r->nlinks && !vt_grow((void **)&s->links, &s->caplinks, r->nlinks, sizeof *s->links)) return 0;
  for (i = 0; i < r->nlinks; i++) {
    vt_link *l = &s->links[i];
    size_t an;
    l->trace_id_len = get32(&p);
    l->span_id_len = get32(&p);
    an = get32(&p);
    l->trace_id = (const char *)p;
    p += l->trace_id_len;
    l->span_id = (const char *)p;
    p += l->span_id_len;
    l->attributes = an ? (const vt_value *)p : NULL;
    p += an;
  }
  if (r->nevents && !vt_grow((void **)&s->events, &s->capevents, r->nevents, sizeof *s->events))
    return 0;
  for (i = 0; i < r->nevents; i++) {
    vt_event *e = &s->events[i];
    size_t an;
    memcpy(&e->time_unix_ns, p, 8);
    memcpy(&e->offset_ns, p + 8, 8);
    p += 16;
    e->name_len = get32(&p);
    an = get32(&p);
    e->name = (const char *)p;
    p += e->name_len;
    e->attributes = an ? (const vt_value *)p : NULL;
    p += an;
  }
  v->links = s->links;
  v->nlinks = r->nlinks;
  v->events = s->events;
  v->nevents = r->nevents;
  return 1;
}

/* One request body: the batch tail..tail+n written as OTLP JSON. */
static int write_batch(vt_otlp *x, size_t tail, size_t n, vt_buf *b, scratch *s) {
  size_t i;
  uint64_t dropped = 0; /* the collector's, when the batch's last span finished */
  for (i = 0; i < n; i++) {
    const rec *r = x->ring[(tail + i) & (x->cap - 1)];
    if (r->dropped > dropped) dropped = r->dropped;
  }
  vt_otlp_memo memo;
  memset(&memo, 0, sizeof memo);
  vt_otlp_write_head(b, &x->opts, dropped + __atomic_load_n(&x->dropped, __ATOMIC_RELAXED));
  for (i = 0; i < n && !b->failed; i++) {
    const rec *r = x->ring[(tail + i) & (x->cap - 1)];
    vt_span_view v;
    vt_otlp_ctx ctx;
    if (!unpack(r, &v, &ctx, s)) return 0;
    ctx.memo = &memo;
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    vt_otlp_write_span(b, &ctx, &v);
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
    char tmp[64];
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

/* Sleep up to ms, woken early by curl_multi_wakeup; 0 when aborting. */
static int nap(vt_otlp *x, long ms) {
  int64_t until = now_ms() + ms;
  while (!aborting(x)) {
    int64_t left = until - now_ms();
    if (left <= 0) return 1;
    curl_multi_poll(x->multi, NULL, 0, (int)(left > 1000 ? 1000 : left), NULL);
  }
  return 0;
}

/* POST the body once: 1 delivered, 0 worth a retry, -1 refused for good (or
 * aborted). */
static int post(vt_otlp *x, CURL *h, const vt_buf *body, long *retry_after) {
  reply r = {-1};
  long code = 0;
  CURLcode rc = CURLE_OK;
  int running = 1, got = 0;
  CURLMsg *m;
  int left;
  curl_easy_setopt(h, CURLOPT_URL, x->endpoint);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "vmtrace/" VMTRACE_VERSION);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->p);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->n);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
  curl_multi_add_handle(x->multi, h);
  while (running && !aborting(x)) {
    curl_multi_perform(x->multi, &running);
    if (running) curl_multi_poll(x->multi, NULL, 0, 1000, NULL);
  }
  while ((m = curl_multi_info_read(x->multi, &left)) != NULL)
    if (m->msg == CURLMSG_DONE && m->easy_handle == h) {
      rc = m->data.result;
      got = 1;
    }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(x->multi, h);
  *retry_after = r.retry_after_ms;
  if (code >= 200 && code < 300) return 1; /* delivered, whatever became of the body */
  if (!got || aborting(x)) {
    set_error(x, "aborted: the exporter was shut down before an answer came");
    return -1;
  }
  if (rc != CURLE_OK) { /* connection errors and timeouts are worth a retry */
    char msg[160];
    snprintf(msg, sizeof msg, "%s (curl error %d)", curl_easy_strerror(rc), (int)rc);
    set_error(x, msg);
    return 0;
  }
  {
    char msg[64];
    snprintf(msg, sizeof msg, "HTTP status %ld", code);
    set_error(x, msg);
  }
  return (code == 429 || code == 502 || code == 503 || code == 504) ? 0 : -1;
}

/* Deliver one batch: the same bytes until a success, a refusal, the export
 * timeout or an abort. */
static void deliver(vt_otlp *x, CURL *h, size_t tail, size_t n, scratch *s) {
  vt_buf json, gz, *body = &json;
  int64_t deadline = now_ms() + x->max_retry_ms;
  long backoff = x->backoff_ms;
  int rc = -1;
  vt_buf_init(&json);
  vt_buf_init(&gz);
  if (!write_batch(x, tail, n, &json, s)) {
    set_error(x, "out of memory writing a batch");
  } else if (x->gzip && !gzip_body(&json, &gz)) {
    set_error(x, "gzip failed");
  } else {
    if (x->gzip) body = &gz;
    for (;;) {
      long retry_after, wait;
      rc = post(x, h, body, &retry_after);
      if (rc != 0) break;
      wait = retry_after >= 0 ? retry_after : backoff / 2 + (long)(rand() % (backoff / 2 + 1));
      if (now_ms() + wait > deadline) break; /* out of time: give up */
      pthread_mutex_lock(&x->mu);
      x->retries++;
      pthread_mutex_unlock(&x->mu);
      if (!nap(x, wait)) break;
      if (backoff < 32000) backoff *= 2;
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

/* Give the records tail..tail+n back. */
static void release(vt_otlp *x, size_t tail, size_t n) {
  size_t i, bytes = 0;
  for (i = 0; i < n; i++) {
    rec **slot = &x->ring[(tail + i) & (x->cap - 1)];
    bytes += (*slot)->size;
    vt_free(*slot);
    *slot = NULL;
  }
  __atomic_sub_fetch(&x->bytes, bytes, __ATOMIC_RELEASE);
  pthread_mutex_lock(&x->mu);
  store_z(&x->tail, tail + n);
  pthread_cond_broadcast(&x->idle);
  pthread_mutex_unlock(&x->mu);
}

static void free_exporter(vt_otlp *x);

static void *run(void *ud) {
  vt_otlp *x = ud;
  CURL *h = curl_easy_init();
  scratch s;
  memset(&s, 0, sizeof s);
  for (;;) {
    size_t tail = x->tail, head = load_z(&x->head), n = head - tail;
    int stop, want;
    int64_t waited = n ? now_ms() - x->ring[tail & (x->cap - 1)]->enq_ms : 0;
    pthread_mutex_lock(&x->mu);
    stop = x->stop || x->state == DETACHED;
    want = n && (stop || x->flush_target > tail || n >= x->batch || waited >= x->delay_ms);
    if (!n) pthread_cond_broadcast(&x->idle);
    pthread_mutex_unlock(&x->mu);
    if (aborting(x)) {
      pthread_mutex_lock(&x->mu);
      x->failed_spans += n;
      pthread_mutex_unlock(&x->mu);
      release(x, tail, n);
      break;
    }
    if (!n && stop) break;
    if (want) {
      n = n < x->batch ? n : x->batch;
      if (h) deliver(x, h, tail, n, &s);
      else {
        set_error(x, "libcurl could not make a handle");
        pthread_mutex_lock(&x->mu);
        x->failed_spans += n;
        pthread_mutex_unlock(&x->mu);
      }
      release(x, tail, n);
      continue;
    }
    curl_multi_poll(x->multi, NULL, 0, (int)(n ? x->delay_ms - waited : 1000), NULL);
  }
  if (h) curl_easy_cleanup(h);
  vt_free(s.links);
  vt_free(s.events);
  pthread_mutex_lock(&x->mu);
  pthread_cond_broadcast(&x->idle);
  pthread_mutex_unlock(&x->mu);
  if (x->state == DETACHED) { /* nobody waits for it: it goes by itself */
    pthread_mutex_lock(&all_mu);
    list_remove_locked(x);
    pthread_mutex_unlock(&all_mu);
    free_exporter(x);
  }
  return NULL;
}

/* ---- starting, flushing, stopping ----------------------------------------------------- */

static void free_exporter(vt_otlp *x) {
  if (!x) return;
  if (x->ring) free_recs(x);
  vt_free(x->ring);
  vt_free(x->endpoint);
  vt_free(x->service_name);
  vt_free(x->resource);
  curl_slist_free_all(x->headers);
  if (x->multi) curl_multi_cleanup(x->multi);
  pthread_cond_destroy(&x->idle);
  pthread_mutex_destroy(&x->mu);
  vt_free(x);
}

static long pick(long v, long def) { return v >= 0 ? v : def; }

vt_otlp *vt_otlp_start(const vt_api *api, vt_collector *c, const vt_otlp_config *cfg, char *err,
                       size_t errlen) {
  vt_otlp *x;
  size_t cap;
  const char *const *hd;
  const vt_otlp_config *d = &vt_otlp_defaults;
  pthread_once(&once, init_once);
  if (!cfg->endpoint || !*cfg->endpoint) {
    snprintf(err, errlen, "no endpoint");
    return NULL;
  }
  x = vt_calloc(1, sizeof *x);
  if (!x) goto oom;
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->idle, NULL);
  x->api = api;
  x->timeout_ms = pick(cfg->timeout_ms, d->timeout_ms);
  x->max_retry_ms = pick(cfg->max_retry_ms, d->max_retry_ms);
  x->delay_ms = pick(cfg->delay_ms, d->delay_ms);
  x->backoff_ms = pick(cfg->backoff_ms, d->backoff_ms);
  x->close_ms = pick(cfg->close_ms, d->close_ms);
  if (x->timeout_ms < 1) x->timeout_ms = 1;
  if (x->backoff_ms < 1) x->backoff_ms = 1;
  x->gzip = cfg->gzip >= 0 ? cfg->gzip : d->gzip;
  x->batch = (size_t)(cfg->batch_size > 0 ? cfg->batch_size : d->batch_size);
  x->limit = (size_t)(cfg->max_queue > 0 ? cfg->max_queue : d->max_queue);
  x->max_bytes = (size_t)(cfg->max_queue_bytes > 0 ? cfg->max_queue_bytes : d->max_queue_bytes);
  x->limits = cfg->limits;
  for (cap = 1; cap < x->limit; cap *= 2) {
  }
  x->cap = cap;
  if (x->batch > x->limit) x->batch = x->limit;
  if (!(x->ring = vt_calloc(cap, sizeof *x->ring))) goto oom;
  if (!(x->endpoint = vt_memdup(cfg->endpoint, strlen(cfg->endpoint)))) goto oom;
  if (cfg->service_name &&
      !(x->service_name = vt_memdup(cfg->service_name, strlen(cfg->service_name))))
    goto oom;
  if (cfg->resource && !(x->resource = vt_value_dup(cfg->resource))) goto oom;
  x->opts.service_name = x->service_name;
  x->opts.resource = x->resource;
  x->headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (x->gzip && x->headers) x->headers = curl_slist_append(x->headers, "Content-Encoding: gzip");
  if (!x->headers) goto oom;
  for (hd = cfg->headers; hd && *hd; hd++) {
    struct curl_slist *l = curl_slist_append(x->headers, *hd);
    if (!l) goto oom;
    x->headers = l;
  }
  if (!(x->multi = curl_multi_init())) goto oom;
  refresh(x, c);
  if (api->subscribe(c, on_event, x) != VT_OK) goto oom;
  x->c = c;
  if (pthread_create(&x->thread, NULL, run, x) != 0) {
    api->unsubscribe(c, on_event, x);
    snprintf(err, errlen, "cannot start the exporter thread");
    free_exporter(x);
    return NULL;
  }
  x->state = RUNNING;
  list_add(x);
  return x;
oom:
  snprintf(err, errlen, "out of memory");
  free_exporter(x);
  return NULL;
}

/* Wait until everything queued now is out; 1 when it all went out in time. */
static int flush_wait(vt_otlp *x, long timeout_ms) {
  struct timespec ts;
  size_t target;
  uint64_t failed;
  int done;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (timeout_ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
  pthread_mutex_lock(&x->mu);
  target = load_z(&x->head);
  failed = x->failed_spans;
  if (target > x->flush_target) x->flush_target = target;
  pthread_mutex_unlock(&x->mu);
  curl_multi_wakeup(x->multi);
  pthread_mutex_lock(&x->mu);
  while (load_z(&x->tail) < target && x->state != STOPPED)
    if (pthread_cond_timedwait(&x->idle, &x->mu, &ts) == ETIMEDOUT) break;
  done = load_z(&x->tail) >= target && x->failed_spans == failed;
  pthread_mutex_unlock(&x->mu);
  return done;
}

int vt_otlp_flush(vt_otlp *x, long timeout_ms) {
  if (x->state == STOPPED) return load_z(&x->head) == load_z(&x->tail);
  return flush_wait(x, timeout_ms);
}

/* Flush within timeout_ms, then stop the thread (cutting short what is
 * still going on) and wait for it. */
static void stop_thread(vt_otlp *x, long timeout_ms) {
  int done = flush_wait(x, timeout_ms);
  pthread_mutex_lock(&x->mu);
  x->stop = 1;
  if (!done) __atomic_store_n(&x->abort_now, 1, __ATOMIC_RELEASE);
  pthread_mutex_unlock(&x->mu);
  curl_multi_wakeup(x->multi);
  pthread_join(x->thread, NULL);
  x->state = STOPPED;
}

int vt_otlp_shutdown(vt_otlp *x, long timeout_ms) {
  int ok;
  if (!x) return 1;
  if (x->c) {
    x->api->unsubscribe(x->c, on_event, x); /* nothing more comes in */
    x->c = NULL;
  }
  if (x->state == RUNNING) stop_thread(x, timeout_ms);
  pthread_mutex_lock(&all_mu);
  list_remove_locked(x);
  pthread_mutex_unlock(&all_mu);
  ok = x->failed_spans == 0 && load_z(&x->head) == load_z(&x->tail);
  free_exporter(x);
  return ok;
}

void vt_otlp_detach(vt_otlp *x) {
  if (!x) return;
  if (x->c) {
    x->api->unsubscribe(x->c, on_event, x);
    x->c = NULL;
  }
  if (x->state != RUNNING) { /* its thread is gone already */
    vt_otlp_shutdown(x, 0);
    return;
  }
  pthread_detach(x->thread);
  pthread_mutex_lock(&all_mu); /* under all_mu: exit and fork see it whole */
  pthread_mutex_lock(&x->mu);
  x->state = DETACHED;
  pthread_mutex_unlock(&x->mu);
  pthread_mutex_unlock(&all_mu);
  curl_multi_wakeup(x->multi);
}

void vt_otlp_stats_get(vt_otlp *x, vt_otlp_stats *out) {
  pthread_mutex_lock(&x->mu);
  out->queued = load_z(&x->head) - load_z(&x->tail);
  out->queued_bytes = __atomic_load_n(&x->bytes, __ATOMIC_ACQUIRE);
  out->exported = x->exported;
  out->dropped = __atomic_load_n(&x->dropped, __ATOMIC_RELAXED);
  out->failed_batches = x->failed_batches;
  out->failed_spans = x->failed_spans;
  out->retries = x->retries;
  out->batches = x->batches;
  snprintf(out->last_error, sizeof out->last_error, "%s", x->last_error);
  pthread_mutex_unlock(&x->mu);
}
