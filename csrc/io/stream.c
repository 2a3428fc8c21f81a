/*
 * stream.c: the crash-safe NDJSON stream. A subscriber of the event bus
 * writes one JSON line per span start and end as it happens, straight to a
 * file descriptor (each line at once by default), so a process killed at any
 * moment leaves every finished span readable, and the open ones recoverable
 * as unfinished.
 *
 *   {"type":"trace","trace_id":...,"otel_salt":"<16 hex>","version":...}
 *   {"type":"start","span":{...the span as the JSON export writes it...}}
 *   {"type":"end","span":{...}}
 *   {"type":"meta","span_id":N,"metadata":{...}}   (late metadata)
 *   {"type":"context","trace_id":...,"remote_parent_span_id":...}  (joined)
 *
 * A failed write (a full disk) is reported at once, on stderr and in the
 * stream's status; the lines that could not be written are counted, and the
 * stream goes on trying, so it resumes when the disk has room again (always
 * on a fresh line: the reader skips a torn one). A buffered stream
 * (flush_each = 0) is written out at close and at process exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "export/export.h"
#include "io/json.h"

struct vt_stream {
  vt_collector *c; /* NULL once the collector is gone */
  int fd;
  int flush_each;
  int err;      /* errno of the first failed write (0: none) */
  int failing;  /* the last write failed */
  int torn;     /* the file may end inside a line: begin the next with \n */
  uint64_t lines, lost;
  vt_buf out;       /* lines not written yet (buffered streams) */
  uint64_t pending; /* lines in out */
  vt_buf line;      /* the line being made */
  vt_trace_info info;
  struct vt_stream *prev, *next; /* the open streams, for the exit handler */
};

/* ---- every open stream, written out at process exit ------------------------------ */

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static vt_stream *open_streams;
static int exit_registered;

static void write_out(vt_stream *s);

static void at_exit(void) {
  vt_stream *s;
  pthread_mutex_lock(&open_mu);
  for (s = open_streams; s; s = s->next) write_out(s);
  pthread_mutex_unlock(&open_mu);
}

/* ---- writing ----------------------------------------------------------------------- */

/* Write all of p; 0, or errno. *done says how many bytes went out. */
static int write_all(int fd, const char *p, size_t n, size_t *done) {
  *done = 0;
  while (*done < n) {
    ssize_t w = write(fd, p + *done, n - *done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno ? errno : EIO;
    }
    if (w == 0) return EIO;
    *done += (size_t)w;
  }
  return 0;
}

/* Write bytes holding `lines` whole lines; count them written or lost. */
static void deliver(vt_stream *s, const char *p, size_t n, uint64_t lines) {
  size_t done = 0;
  int e = 0;
  if (s->torn) { /* a line was cut: this one starts on its own */
    e = write_all(s->fd, "\n", 1, &done);
    if (!e) s->torn = 0;
  }
  if (!e) e = write_all(s->fd, p, n, &done);
  if (!e) {
    if (s->failing)
      fprintf(stderr, "vmtrace: the stream writes again (%llu lines were lost)\n",
              (unsigned long long)s->lost);
    s->failing = 0;
    s->lines += lines;
    return;
  }
  if (done) s->torn = 1;
  s->lost += lines;
  if (!s->err) {
    s->err = e;
    fprintf(stderr, "vmtrace: the stream cannot write (%s); lines are counted as lost "
                    "until it can\n", strerror(e));
  }
  s->failing = 1;
}

static void write_out(vt_stream *s) {
  if (!s->pending) return;
  deliver(s, s->out.p, s->out.n, s->pending);
  s->out.n = 0;
  s->pending = 0;
}

/* The line in s->line is complete: send it on. */
static void emit(vt_stream *s) {
  vt_buf *b = &s->line;
  vt_buf_putc(b, '\n');
  if (b->failed) { /* out of memory making it */
    s->lost++;
    if (!s->err) s->err = ENOMEM;
  } else if (s->flush_each) {
    deliver(s, b->p, b->n, 1);
  } else {
    if (s->out.n + b->n > VT_BUF_WINDOW) write_out(s);
    vt_buf_put(&s->out, b->p, b->n);
    if (s->out.failed) {
      s->out.failed = 0;
      s->out.n = 0;
      s->lost += s->pending + 1;
      s->pending = 0;
    } else {
      s->pending++;
    }
  }
  b->n = 0;
  b->failed = 0;
}

static void header(vt_stream *s) {
  vt_buf *b = &s->line;
  vt_buf_puts(b, "{\"type\":\"trace\",\"trace_id\":");
  vt_json_write_str(b, s->info.trace_id, strlen(s->info.trace_id));
  vt_buf_puts(b, ",\"otel_salt\":\"");
  vt_buf_put_hex64(b, s->info.span_salt);
  vt_buf_puts(b, "\",\"version\":\"" VMTRACE_VERSION "\",\"start_unix_ns\":");
  vt_buf_put_i64(b, s->info.wall_epoch_ns);
  if (s->info.remote_parent) { /* a trace joined before it began */
    vt_buf_puts(b, ",\"remote_parent_span_id\":\"");
    vt_buf_put_hex64(b, s->info.remote_parent);
    vt_buf_puts(b, "\",\"remote_flags\":");
    vt_buf_put_u64(b, s->info.remote_flags);
  }
  if (s->info.dropped) {
    vt_buf_puts(b, ",\"dropped_spans\":");
    vt_buf_put_u64(b, s->info.dropped);
  }
  vt_buf_putc(b, '}');
  emit(s);
}

static void on_event(void *ud, vt_collector *c, vt_ev ev, vt_id id) {
  vt_stream *s = ud;
  vt_buf *b = &s->line;
  vt_span_view v;
  switch (ev) {
    case VT_EV_CLOSE: /* the collector goes: let go of it */
      vt_collector_unsubscribe(c, on_event, s);
      s->c = NULL;
      return;
    case VT_EV_RESET:
      vt_collector_trace_info(c, &s->info);
      header(s);
      return;
    case VT_EV_CONTEXT: /* joined a remote trace */
      vt_collector_trace_info(c, &s->info);
      vt_buf_puts(b, "{\"type\":\"context\",\"trace_id\":");
      vt_json_write_str(b, s->info.trace_id, strlen(s->info.trace_id));
      vt_buf_puts(b, ",\"remote_parent_span_id\":\"");
      vt_buf_put_hex64(b, s->info.remote_parent);
      vt_buf_puts(b, "\",\"remote_flags\":");
      vt_buf_put_u64(b, s->info.remote_flags);
      vt_buf_putc(b, '}');
      emit(s);
      return;
    default: break;
  }
  if (vt_collector_get(c, id, &v) != VT_OK) return;
  if (ev == VT_EV_META) {
    vt_buf_puts(b, "{\"type\":\"meta\",\"span_id\":");
    vt_buf_put_u64(b, id);
    vt_buf_puts(b, ",\"metadata\":");
    if (v.metadata) vt_json_write(b, v.metadata);
    else vt_buf_puts(b, "{}");
    vt_buf_putc(b, '}');
  } else {
    vt_buf_puts(b, ev == VT_EV_START ? "{\"type\":\"start\",\"span\":" : "{\"type\":\"end\",\"span\":");
    vt_write_span_json(b, &s->info, &v);
    vt_buf_putc(b, '}');
  }
  emit(s);
}

/* Does the file at fd end inside a line (an append after a crash)? A
 * write-only descriptor is read through /proc/self/fd. */
static int ends_torn(int fd) {
  struct stat st;
  char last, path[64];
  ssize_t got;
  int rfd;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  got = pread(fd, &last, 1, st.st_size - 1);
  if (got < 0 && errno == EBADF) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if ((rfd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return 0;
    got = pread(rfd, &last, 1, st.st_size - 1);
    close(rfd);
  }
  return got == 1 && last != '\n';
}

vt_stream *vt_stream_open(vt_collector *c, int fd, int flush_each) {
  vt_stream *s = vt_calloc(1, sizeof *s);
  if (!s) return NULL;
  s->c = c;
  s->fd = fd;
  s->flush_each = flush_each;
  s->torn = ends_torn(fd);
  vt_buf_init(&s->out);
  vt_buf_init(&s->line);
  if (vt_collector_subscribe(c, on_event, s) != VT_OK) {
    vt_free(s);
    return NULL;
  }
  vt_collector_trace_info(c, &s->info);
  header(s);
  pthread_mutex_lock(&open_mu);
  if (!exit_registered) exit_registered = atexit(at_exit) == 0;
  s->next = open_streams;
  if (open_streams) open_streams->prev = s;
  open_streams = s;
  pthread_mutex_unlock(&open_mu);
  return s;
}

void vt_stream_status_get(const vt_stream *s, vt_stream_status *out) {
  out->error = s->err;
  out->failing = s->failing;
  out->lines = s->lines;
  out->lost_lines = s->lost;
}

int vt_stream_close(vt_stream *s) {
  int err;
  if (!s) return 0;
  pthread_mutex_lock(&open_mu);
  if (s->prev) s->prev->next = s->next;
  else open_streams = s->next;
  if (s->next) s->next->prev = s->prev;
  pthread_mutex_unlock(&open_mu);
  if (s->c) vt_collector_unsubscribe(s->c, on_event, s);
  write_out(s);
  if (close(s->fd) != 0 && !s->err) s->err = errno ? errno : EIO;
  err = s->err;
  vt_buf_free(&s->out);
  vt_buf_free(&s->line);
  vt_free(s);
  return err;
}
