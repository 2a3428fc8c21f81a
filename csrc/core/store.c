/*
 * store.c: the span store. Spans live in fixed-size chunks indexed by id
 * (ids count up from 1), so an open or completed span is found in O(1) and a
 * completed span without metadata costs one 48-byte slot plus its place in
 * the finish-order list. The table of chunks begins at the lowest one used,
 * so imported spans of far ids cost what near ones do. What a span owns besides its slot (metadata in the
 * compact value encoding, links, events) is carved from its chunk's arena
 * and freed with the chunk. Active stacks (one per coroutine) hold open ids;
 * each open span knows its stack, so finishing from anywhere removes it from
 * the right one. Room in the finish-order list is reserved at start, so
 * finishing never allocates and never fails. Every change worth telling goes
 * to the subscribers of the event bus.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "otel/otel.h"

/* ---- slots and arenas ---------------------------------------------------------- */

#define BLOCK_DATA ((sizeof(vt_block) + 15) & ~(size_t)15)
#define BLOCK_SIZE 16384u

/* The chunk that holds id, or NULL (an id below the table's base wraps to
 * an index past its end). */
static vt_chunk *chunk_of(const vt_collector *c, vt_id id) {
  size_t i = (size_t)((id - 1) >> VT_CHUNK_BITS) - c->chunk_base;
  return i < c->nchunks ? c->chunks[i] : NULL;
}

vt_slot *vt_slot_of(const vt_collector *c, vt_id id) {
  vt_chunk *ch;
  vt_slot *s;
  if (id == 0 || id >= c->next_id || !(ch = chunk_of(c, id))) return NULL;
  s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  return s->state != VT_FREE ? s : NULL;
}

static void *small_alloc(vt_chunk *ch, size_t n) {
  vt_block *b = ch->arena;
  if (!b || b->cap - b->used < n) {
    vt_block *nb = vt_malloc(BLOCK_DATA + BLOCK_SIZE);
    if (!nb) return NULL;
    nb->used = 0;
    nb->cap = BLOCK_SIZE;
    nb->next = b;
    ch->arena = b = nb;
  }
  b->used += n;
  return (char *)b + BLOCK_DATA + b->used - n;
}

/* n bytes for span id. Small ones come from its chunk's arena, freed with
 * the chunk (when all 4,096 spans of it are gone); a big one is a block of
 * its own on the span's list, freed with the span: under max_spans, memory
 * follows the spans kept, however much metadata each one carries. */
void *vt_arena_alloc(vt_collector *c, vt_id id, size_t n) {
  vt_chunk *ch = chunk_of(c, id);
  vt_slot *s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  vt_block *own;
  if (n > SIZE_MAX - BLOCK_SIZE) return NULL;
  n = (n + 15) & ~(size_t)15;
  if (n <= BLOCK_SIZE / 4) return small_alloc(ch, n);
  if (!s->x) { /* the list lives in the span's extra */
    size_t xs = (sizeof(vt_extra) + 15) & ~(size_t)15;
    if (!(s->x = small_alloc(ch, xs))) return NULL;
    memset(s->x, 0, sizeof *s->x);
  }
  if (!(own = vt_malloc(BLOCK_DATA + n))) return NULL;
  own->used = own->cap = n;
  own->next = s->x->big;
  s->x->big = own;
  return (char *)own + BLOCK_DATA;
}

/* Give back p, from vt_arena_alloc for span id, when it was a big one (a
 * small one stays in the arena until its chunk goes). */
static void arena_drop(vt_slot *s, void *p) {
  vt_block **pb;
  if (!p || !s->x) return;
  for (pb = &s->x->big; *pb; pb = &(*pb)->next)
    if ((char *)*pb + BLOCK_DATA == (char *)p) {
      vt_block *b = *pb;
      *pb = b->next;
      vt_free(b);
      return;
    }
}

static void big_free(vt_slot *s) {
  vt_block *b;
  if (!s->x) return;
  for (b = s->x->big; b;) {
    vt_block *next = b->next;
    vt_free(b);
    b = next;
  }
  s->x->big = NULL;
}

static void chunk_free(vt_chunk *ch) {
  vt_block *b = ch->arena;
  while (b) {
    vt_block *next = b->next;
    vt_free(b);
    b = next;
  }
  vt_free(ch);
}

/* Forget a slot; free its chunk once every id of it was used and every span
 * in it is gone. */
static void slot_release(vt_collector *c, vt_id id, vt_slot *s) {
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS);
  vt_chunk *ch = c->chunks[k - c->chunk_base];
  vt_names_release(&c->names, s->name);
  if (s->smeta) vt_names_release(&c->names, s->smeta - 1);
  big_free(s);
  memset(s, 0, sizeof *s);
  if (--ch->live == 0 && c->next_id > (vt_id)(k + 1) * VT_CHUNK_SIZE) {
    chunk_free(ch);
    c->chunks[k - c->chunk_base] = NULL;
  }
}

/* Make chunk k (ids k*VT_CHUNK_SIZE+1 ..). The table begins at the first
 * chunk made after a reset (0 when recording, an import's otherwise) and
 * grows up, or down for an import of lower ids, doubling either way. */
static int chunk_new(vt_collector *c, size_t k) {
  size_t i;
  if (!c->nchunks) c->chunk_base = k;
  if (k < c->chunk_base) {
    size_t by = c->chunk_base - k, n;
    vt_chunk **d;
    if (by < c->nchunks) by = c->nchunks < c->chunk_base ? c->nchunks : c->chunk_base;
    n = c->nchunks + by;
    d = vt_realloc(c->chunks, n * sizeof *d);
    if (!d) return 0;
    memmove(d + by, d, c->nchunks * sizeof *d);
    memset(d, 0, by * sizeof *d);
    c->chunks = d;
    c->nchunks = n;
    c->chunk_base -= by;
  }
  i = k - c->chunk_base;
  if (i >= c->nchunks) {
    size_t n = c->nchunks ? c->nchunks * 2 : 16;
    vt_chunk **d;
    while (n <= i) n *= 2;
    d = vt_realloc(c->chunks, n * sizeof *d);
    if (!d) return 0;
    memset(d + c->nchunks, 0, (n - c->nchunks) * sizeof *d);
    c->chunks = d;
    c->nchunks = n;
  }
  if (!c->chunks[i]) {
    /* Only slots of ids below next_id are ever read. A chunk that begins at
     * next_id gets each slot written as its id comes (the recording path);
     * any other (an import's) starts with every slot free. */
    int fresh = (vt_id)k * VT_CHUNK_SIZE + 1 == c->next_id;
    vt_chunk *ch = fresh ? vt_malloc(sizeof(vt_chunk)) : vt_calloc(1, sizeof(vt_chunk));
    if (!ch) return 0;
    ch->live = 0;
    ch->arena = NULL;
    c->chunks[i] = ch;
  }
  return 1;
}

/* Move next_id up to `id` + 1, freeing the slots it passes over in the
 * chunks that exist (an import with a gap in the ids). No chunk lies between
 * next_id's and id's (chunks are made at next_id, or at the id imported), so
 * a missing one is passed in one step, not chunk by chunk. */
static void skip_to(vt_collector *c, vt_id id) {
  vt_id first = (((id - 1) >> VT_CHUNK_BITS) << VT_CHUNK_BITS) + 1; /* of id's chunk */
  while (c->next_id < id) {
    vt_chunk *ch = chunk_of(c, c->next_id);
    if (ch) ch->s[(c->next_id - 1) & (VT_CHUNK_SIZE - 1)].state = VT_FREE;
    if (ch || c->next_id >= first) c->next_id++;
    else c->next_id = first;
  }
  c->next_id = id + 1;
}

static vt_extra *extra_of(vt_collector *c, vt_id id, vt_slot *s) {
  if (!s->x && (s->x = vt_arena_alloc(c, id, sizeof *s->x)) != NULL)
    memset(s->x, 0, sizeof *s->x);
  return s->x;
}

/* ---- the event bus --------------------------------------------------------------- */

void vt_bus_fire(vt_collector *c, vt_ev ev, vt_id id) {
  size_t i, n = c->nsubs;
  c->firing++;
  for (i = 0; i < n; i++)
    if (c->subs[i].fn) c->subs[i].fn(c->subs[i].ud, c, ev, id);
  if (--c->firing == 0 && c->removed) { /* compact what was removed meanwhile */
    size_t j = 0;
    for (i = 0; i < c->nsubs; i++)
      if (c->subs[i].fn) c->subs[j++] = c->subs[i];
    c->nsubs = j;
    c->removed = 0;
  }
}

int vt_collector_subscribe(vt_collector *c, vt_listener fn, void *ud) {
  if (!fn) return VT_EINVAL;
  if (!vt_grow((void **)&c->subs, &c->capsubs, c->nsubs + 1, sizeof *c->subs))
    return VT_ENOMEM;
  c->subs[c->nsubs].fn = fn;
  c->subs[c->nsubs].ud = ud;
  c->nsubs++;
  return VT_OK;
}

int vt_collector_unsubscribe(vt_collector *c, vt_listener fn, void *ud) {
  size_t i;
  for (i = 0; i < c->nsubs; i++)
    if (c->subs[i].fn == fn && c->subs[i].ud == ud) {
      if (c->firing) { /* the loop in vt_bus_fire goes on over it */
        c->subs[i].fn = NULL;
        c->removed = 1;
      } else {
        memmove(&c->subs[i], &c->subs[i + 1], (c->nsubs - i - 1) * sizeof *c->subs);
        c->nsubs--;
      }
      return VT_OK;
    }
  return VT_ENOTFOUND;
}

#define FIRE(c, ev, id)                               \
  do {                                                \
    if (VT_UNLIKELY((c)->nsubs)) vt_bus_fire(c, ev, id); \
  } while (0)

/* ---- trace identity ------------------------------------------------------------- */

void vt_trace_decide(vt_collector *c) {
  int parent = c->sampler >= VT_SAMPLER_PARENT_ALWAYS_ON;
  if (parent && c->remote_parent) {
    c->sampled = c->remote_flags & 1;
    return;
  }
  switch (c->sampler) {
    case VT_SAMPLER_ALWAYS_OFF:
    case VT_SAMPLER_PARENT_ALWAYS_OFF: c->sampled = 0; break;
    case VT_SAMPLER_RATIO:
    case VT_SAMPLER_PARENT_RATIO: c->sampled = vt_trace_sampled(c->trace_bytes, c->ratio); break;
    default: c->sampled = 1;
  }
}

static void stamp(vt_collector *c) {
  c->epoch_ns = vt_clock_mono_ns();
  c->last_ns = 0;
  c->wall_epoch_ns = vt_clock_wall_ns();
  vt_trace_id_new(c->trace_bytes, c->trace_id, &c->span_salt);
  c->remote_parent = 0;
  c->remote_flags = 0;
  c->tracestate[0] = '\0';
  vt_trace_decide(c);
}

void vt_collector_set_sampler(vt_collector *c, vt_sampler s, double ratio) {
  c->sampler = (unsigned)s < VT_SAMPLER_COUNT ? s : VT_SAMPLER_PARENT_ALWAYS_ON;
  c->ratio = ratio;
  vt_trace_decide(c);
}

int vt_collector_continue_trace(vt_collector *c, const char *header, size_t len,
                                const char *tracestate, size_t ts_len) {
  unsigned char trace[16];
  uint64_t parent;
  unsigned flags;
  if (!vt_traceparent_parse(header, len, trace, &parent, &flags)) return VT_EINVAL;
  memcpy(c->trace_bytes, trace, 16);
  vt_trace_id_text(trace, c->trace_id);
  c->remote_parent = parent;
  c->remote_flags = flags;
  /* an invalid tracestate is dropped, the traceparent kept (W3C) */
  if (!tracestate || !vt_tracestate_keep(tracestate, ts_len, c->tracestate))
    c->tracestate[0] = '\0';
  vt_trace_decide(c);
  FIRE(c, VT_EV_CONTEXT, 0);
  return VT_OK;
}

int vt_collector_traceparent(const vt_collector *c, vt_id id, char out[56]) {
  uint64_t span;
  if (id) {
    if (!vt_slot_of(c, id)) return VT_ENOTFOUND;
    span = vt_otel_span_id(c->span_salt, id);
  } else if (c->remote_parent) {
    span = c->remote_parent;
  } else {
    return VT_ENOTFOUND;
  }
  vt_traceparent_format(c->trace_bytes, span, c->sampled ? 1u : 0u, out);
  return VT_OK;
}

uint64_t vt_collector_otel_span_id(const vt_collector *c, vt_id id) {
  return vt_otel_span_id(c->span_salt, id);
}

void vt_collector_trace_info(const vt_collector *c, vt_trace_info *out) {
  memcpy(out->trace_id, c->trace_id, sizeof out->trace_id);
  memcpy(out->trace_bytes, c->trace_bytes, 16);
  out->span_salt = c->span_salt;
  out->remote_parent = c->remote_parent;
  out->remote_flags = c->remote_flags;
  out->sampled = c->sampled;
  out->wall_epoch_ns = c->wall_epoch_ns;
  out->dropped = c->dropped;
  out->generation = c->generation;
  memcpy(out->tracestate, c->tracestate, sizeof out->tracestate);
}

const char *vt_collector_trace_id(const vt_collector *c) { return c->trace_id; }

/* ---- collectors ------------------------------------------------------------------ */

vt_collector *vt_collector_new(void) {
  vt_collector *c = vt_calloc(1, sizeof *c);
  if (!c) return NULL;
  c->next_id = 1;
  c->main.prev = c->main.next = &c->main;
  c->sampler = VT_SAMPLER_PARENT_ALWAYS_ON; /* OpenTelemetry's default */
  c->ratio = 1;
  vt_names_init(&c->names);
  stamp(c);
  return c;
}

/* Free every span (their names released) and the finish-order list. */
static void clear_spans(vt_collector *c) {
  size_t k;
  for (k = 0; k < c->nchunks; k++) {
    vt_chunk *ch = c->chunks[k];
    vt_id first = (vt_id)(c->chunk_base + k) * VT_CHUNK_SIZE + 1;
    size_t i;
    if (!ch) continue;
    for (i = 0; i < VT_CHUNK_SIZE && first + i < c->next_id; i++)
      if (ch->s[i].state != VT_FREE) {
        vt_names_release(&c->names, ch->s[i].name);
        if (ch->s[i].smeta) vt_names_release(&c->names, ch->s[i].smeta - 1);
        big_free(&ch->s[i]);
      }
    chunk_free(ch);
  }
  vt_free(c->chunks);
  c->chunks = NULL;
  c->nchunks = c->chunk_base = 0;
  vt_free(c->done_base);
  c->done = c->done_base = NULL;
  c->ndone = c->capdone = c->nopen = 0;
}

/* Empty the store and every stack, count a new generation. */
static void empty(vt_collector *c) {
  vt_stack *st = &c->main;
  clear_spans(c);
  do { /* every stack is emptied and forgets its inherited parent */
    st->n = 0;
    st->base = 0;
    st = st->next;
  } while (st != &c->main);
  c->next_id = 1;
  c->dropped = 0;
  c->generation++;
  vt_llm_clear(c);
}

void vt_collector_reset(vt_collector *c) {
  empty(c);
  stamp(c);
  FIRE(c, VT_EV_RESET, 0);
}

void vt_collector_reset_trace(vt_collector *c, const vt_trace_info *t) {
  static const unsigned char zero[16];
  empty(c);
  stamp(c);
  /* Never an all-zero trace id (W3C and OTLP refuse it): a trace t does not
   * name keeps the fresh one stamp made; bytes t lacks come from its text. */
  if (t->trace_id[0] || memcmp(t->trace_bytes, zero, 16) != 0) {
    memcpy(c->trace_id, t->trace_id, sizeof c->trace_id);
    c->trace_id[sizeof c->trace_id - 1] = '\0';
    if (memcmp(t->trace_bytes, zero, 16) != 0) memcpy(c->trace_bytes, t->trace_bytes, 16);
    else vt_trace_id_derive(c->trace_id, strlen(c->trace_id), c->trace_bytes);
    if (!c->trace_id[0]) vt_trace_id_text(c->trace_bytes, c->trace_id);
    c->span_salt = t->span_salt;
  }
  c->remote_parent = t->remote_parent;
  c->remote_flags = t->remote_flags;
  c->wall_epoch_ns = t->wall_epoch_ns;
  c->dropped = t->dropped;
  memcpy(c->tracestate, t->tracestate, sizeof c->tracestate);
  c->tracestate[sizeof c->tracestate - 1] = '\0';
  vt_trace_decide(c);
  FIRE(c, VT_EV_RESET, 0);
}

void vt_collector_free(vt_collector *c) {
  if (!c) return;
  FIRE(c, VT_EV_CLOSE, 0);
  clear_spans(c);
  vt_names_free(&c->names);
  while (c->main.next != &c->main) vt_stack_free(c, c->main.next);
  vt_free(c->main.ids);
  vt_free(c->mocks);
  vt_free(c->subs);
  vt_llm_clear(c);
  vt_free(c->models);
  vt_free(c);
}

void vt_collector_set_enabled(vt_collector *c, int on) {
  c->enabled = on != 0;
  if (on) vt_collector_reset(c);
}

int vt_collector_enabled(const vt_collector *c) { return c->enabled; }
const int *vt_collector_enabled_flag(const vt_collector *c) { return &c->enabled; }
uint64_t vt_collector_dropped(const vt_collector *c) { return c->dropped; }
uint64_t vt_collector_generation(const vt_collector *c) { return c->generation; }
const uint64_t *vt_collector_generation_flag(const vt_collector *c) { return &c->generation; }

void vt_collector_stats(const vt_collector *c, vt_stats *out) {
  out->open = c->nopen;
  out->completed = c->ndone;
  out->stacks = c->nstacks;
  out->names = c->names.live;
  out->name_bytes = c->names.bytes;
  out->dropped = c->dropped;
  out->generation = c->generation;
}

/* ---- stacks ------------------------------------------------------------------ */

vt_stack *vt_collector_main_stack(vt_collector *c) { return &c->main; }

vt_stack *vt_stack_new(vt_collector *c, vt_id base_parent) {
  vt_stack *st = vt_calloc(1, sizeof *st);
  if (!st) return NULL;
  st->base = base_parent;
  st->track = ++c->next_track;
  st->next = c->main.next;
  st->prev = &c->main;
  c->main.next->prev = st;
  c->main.next = st;
  c->nstacks++;
  return st;
}

void vt_stack_free(vt_collector *c, vt_stack *st) {
  uint32_t i;
  if (!st || st == &c->main) return;
  for (i = 0; i < st->n; i++) { /* its spans stay open, on no stack */
    vt_slot *s = vt_slot_of(c, st->ids[i]);
    if (s && s->state == VT_OPEN) s->u.stack = NULL;
  }
  st->prev->next = st->next;
  st->next->prev = st->prev;
  c->nstacks--;
  vt_free(st->ids);
  vt_free(st);
}

vt_id vt_stack_current(const vt_collector *c, const vt_stack *st) {
  if (!st) st = &c->main;
  return st->n ? st->ids[st->n - 1] : st->base;
}

void vt_stack_set_base(vt_stack *st, vt_id base_parent) { st->base = base_parent; }
uint32_t vt_stack_track(const vt_stack *st) { return st->track; }

static void stack_remove(vt_stack *st, vt_id id) {
  uint32_t i = st->n;
  while (i > 0) {
    if (st->ids[--i] == id) {
      memmove(st->ids + i, st->ids + i + 1, (st->n - i - 1) * sizeof(vt_id));
      st->n--;
      return;
    }
  }
}

static int stack_grow(vt_stack *st) {
  uint32_t cap = st->cap ? st->cap * 2 : 16;
  vt_id *ids = vt_realloc(st->ids, cap * sizeof *ids);
  if (!ids) return 0;
  st->ids = ids;
  st->cap = cap;
  return 1;
}

/* ---- the finish-order list and its bound ------------------------------------------- */

/* Move the finish-order list back to the start of its allocation. */
static void done_compact(vt_collector *c) {
  size_t gap = (size_t)(c->done - c->done_base);
  if (!gap) return;
  memmove(c->done_base, c->done, c->ndone * sizeof *c->done);
  c->done = c->done_base;
  c->capdone += gap;
}

/* Room in the finish-order list for every open span and one more. */
static int done_reserve(vt_collector *c) {
  size_t cap;
  vt_id *d;
  done_compact(c);
  if (c->capdone > c->ndone + c->nopen + 1) return 1;
  cap = c->capdone ? c->capdone * 2 : 1024;
  while (cap <= c->ndone + c->nopen + 1) cap *= 2;
  d = vt_realloc(c->done_base, cap * sizeof *d);
  if (!d) return 0;
  c->done = c->done_base = d;
  c->capdone = cap;
  return 1;
}

/* Keep at most max_spans completed spans: the oldest go (counted). */
static void evict(vt_collector *c) {
  while (c->max_spans && c->ndone > c->max_spans) {
    vt_id id = c->done[0];
    vt_slot *s = vt_slot_of(c, id);
    if (s) slot_release(c, id, s);
    c->done++;
    c->ndone--;
    c->capdone--;
    c->dropped++;
  }
  if ((size_t)(c->done - c->done_base) > c->ndone + 4096) done_compact(c);
}

void vt_collector_set_max_spans(vt_collector *c, size_t max) {
  c->max_spans = max;
  evict(c);
}

size_t vt_collector_max_spans(const vt_collector *c) { return c->max_spans; }

/* ---- metadata ------------------------------------------------------------------------ */

/* A span's metadata is an object encoding (vt_value) in a region of meta_cap
 * bytes of its chunk's arena; keys stay sorted and unique. */
#define OBJ_HEAD 9

static uint32_t rd32(const unsigned char *p) {
  uint32_t x;
  memcpy(&x, p, 4);
  return x;
}

static void wr32(unsigned char *p, uint32_t x) { memcpy(p, &x, 4); }

static int key_cmp(const char *a, size_t an, const char *b, size_t bn) {
  int r = memcmp(a, b, an < bn ? an : bn);
  if (r) return r;
  return an < bn ? -1 : an > bn;
}

/* Where key is (*found) or would go in the object at m: an offset from m. */
static size_t meta_find(const unsigned char *m, const char *key, size_t klen, int *found,
                        size_t *old_len) {
  size_t off = OBJ_HEAD, end = OBJ_HEAD + rd32(m + 5);
  *found = 0;
  while (off < end) {
    uint32_t kl = rd32(m + off);
    size_t vlen = vt_value_size((const vt_value *)(m + off + 4 + kl));
    int r = key_cmp((const char *)m + off + 4, kl, key, klen);
    if (r == 0) {
      *found = 1;
      *old_len = 4 + kl + vlen;
      return off;
    }
    if (r > 0) break;
    off += 4 + kl + vlen;
  }
  return off;
}

/* Room for `need` bytes of metadata encoding on the span. */
static int meta_room(vt_collector *c, vt_id id, vt_slot *s, size_t need) {
  vt_extra *x = extra_of(c, id, s);
  unsigned char *m;
  size_t cap;
  if (!x) return 0;
  if (x->meta && need <= x->meta_cap) return 1;
  if (need > UINT32_MAX - 64) return 0;
  cap = x->meta_cap ? (size_t)x->meta_cap * 2 : 64;
  while (cap < need) cap *= 2;
  if (cap > UINT32_MAX) cap = need;
  if (!(m = vt_arena_alloc(c, id, cap))) return 0;
  if (x->meta) {
    memcpy(m, x->meta, OBJ_HEAD + rd32(x->meta + 5)); /* the old one: the caller's to drop */
  } else {
    memset(m, 0, OBJ_HEAD);
    m[0] = VT_OBJ;
  }
  x->meta = m;
  x->meta_cap = (uint32_t)cap;
  return 1;
}

/* The metadata a span shows: its own, else the shared object it carries. */
static const unsigned char *span_meta(const vt_collector *c, const vt_slot *s) {
  if (s->x && s->x->meta) return s->x->meta;
  return s->smeta ? (const unsigned char *)c->names.v[s->smeta - 1].s : NULL;
}

/* Before a span's metadata changes: the shared object it carries becomes its
 * own copy. */
static int meta_own(vt_collector *c, vt_id id, vt_slot *s) {
  const unsigned char *sh;
  size_t size;
  if (!s->smeta) return 1;
  sh = (const unsigned char *)c->names.v[s->smeta - 1].s;
  size = OBJ_HEAD + rd32(sh + 5);
  if (!meta_room(c, id, s, size)) return 0;
  memcpy(s->x->meta, sh, size);
  vt_names_release(&c->names, s->smeta - 1);
  s->smeta = 0;
  return 1;
}

int64_t vt_collector_intern_meta(vt_collector *c, const vt_value *obj) {
  if (!obj || vt_value_type(obj) != VT_OBJ) return -1;
  return vt_names_intern(&c->names, (const char *)obj, vt_value_size(obj));
}

/* Put key = value into the span's metadata (room checked by the caller when
 * may_fail is 0). */
static int meta_put(vt_collector *c, vt_id id, vt_slot *s, const char *key, size_t klen,
                    const vt_value *value, unsigned flags) {
  size_t vlen = vt_value_size(value), old = 0, off = OBJ_HEAD, size = OBJ_HEAD, entry = 4 + klen + vlen;
  unsigned char *m, *prev;
  int found = 0;
  if (klen > UINT32_MAX - 64 || vlen > UINT32_MAX - 64) return VT_ELIMIT;
  if (VT_UNLIKELY(s->smeta) && !meta_own(c, id, s)) return VT_ENOMEM;
  if (s->x && s->x->meta) {
    off = meta_find(s->x->meta, key, klen, &found, &old);
    if (found && (flags & VT_META_IF_ABSENT)) return VT_EEXIST;
    if (!found && rd32(s->x->meta + 1) >= VT_MAX_KEYS) return VT_ELIMIT;
    size = OBJ_HEAD + rd32(s->x->meta + 5);
  }
  if (size - old + entry > UINT32_MAX - 64) return VT_ELIMIT;
  prev = s->x ? s->x->meta : NULL;
  /* a larger region keeps every offset: off stays where the key goes */
  if (!meta_room(c, id, s, size - old + entry)) return VT_ENOMEM;
  m = s->x->meta;
  if (entry != old) memmove(m + off + entry, m + off + old, size - off - old);
  wr32(m + off, (uint32_t)klen);
  memcpy(m + off + 4, key, klen);
  memcpy(m + off + 4 + klen, value, vlen);
  if (!found) wr32(m + 1, rd32(m + 1) + 1);
  wr32(m + 5, (uint32_t)(size - old + entry - OBJ_HEAD));
  /* an outgrown big region goes now, after the copy: value may point into
   * it (a host passing the span's own metadata) */
  if (prev && prev != m) arena_drop(s, prev);
  return VT_OK;
}

/* A finished llm_call span: its usage is in the LLM totals, so a change of
 * its metadata goes there too (one truth: the totals say what the spans
 * say, however late the usage came). */
static int counted_llm(const vt_slot *s) { return s->state == VT_DONE && s->kind == VT_LLM_CALL; }

/* Does p point into the metadata span s shows (its own region or the
 * shared object it carries)? A value from there moves or goes as the
 * metadata changes: the caller works on a copy. */
static inline int in_meta(const vt_collector *c, const vt_slot *s, const void *p, const void *p2) {
  const unsigned char *m;
  uintptr_t n;
  if (s->x && s->x->meta) {
    m = s->x->meta;
    n = s->x->meta_cap;
  } else if (s->smeta) {
    m = (const unsigned char *)c->names.v[s->smeta - 1].s;
    n = OBJ_HEAD + rd32(m + 5);
  } else {
    return 0;
  }
  return (uintptr_t)p - (uintptr_t)m < n || (uintptr_t)p2 - (uintptr_t)m < n;
}

int vt_collector_set_metadata(vt_collector *c, vt_id id, const char *key, size_t key_len,
                              const vt_value *value, unsigned flags) {
  vt_slot *s = vt_slot_of(c, id);
  vt_llm_was was;
  int rc, llm;
  if (!value) return VT_ENOMEM; /* what a failed vt_vb_value gives a host */
  if (!s || (s->state != VT_OPEN && !(flags & (VT_META_DONE | VT_META_IF_ABSENT))))
    return VT_ENOTFOUND;
  if (VT_UNLIKELY(in_meta(c, s, value, key))) { /* its own metadata */
    vt_value *v = vt_value_dup(value);
    char *k = vt_malloc(key_len + 1);
    rc = v && k ? VT_OK : VT_ENOMEM;
    if (rc == VT_OK) {
      if (key_len) memcpy(k, key, key_len);
      rc = vt_collector_set_metadata(c, id, k, key_len, v, flags);
    }
    vt_free(v);
    vt_free(k);
    return rc;
  }
  if ((llm = counted_llm(s)) != 0) vt_llm_before(c, (const vt_value *)span_meta(c, s), &was);
  rc = meta_put(c, id, s, key, key_len, value, flags);
  if (rc == VT_OK && llm) vt_llm_after(c, &was, (const vt_value *)span_meta(c, s));
  if (rc == VT_OK && s->state == VT_DONE) FIRE(c, VT_EV_META, id);
  return rc;
}

/* Merge the object obj into the span's metadata: all or nothing. */
static int merge(vt_collector *c, vt_id id, vt_slot *s, const vt_value *obj) {
  vt_iter it;
  const vt_value *v;
  const char *k;
  size_t kl, fresh = 0, size, total = 0;
  uint32_t have;
  unsigned char *prev;
  if (vt_value_type(obj) != VT_OBJ) return VT_EINVAL;
  if (!vt_value_count(obj)) return VT_OK;
  if (!meta_own(c, id, s)) return VT_ENOMEM;
  have = s->x && s->x->meta ? rd32(s->x->meta + 1) : 0;
  vt_value_iter(obj, &it);
  while ((v = vt_iter_next(&it, &k, &kl)) != NULL) {
    int found = 0;
    size_t old;
    if (s->x && s->x->meta) meta_find(s->x->meta, k, kl, &found, &old);
    fresh += !found;
    total += 4 + kl + vt_value_size(v);
  }
  if (have + fresh > VT_MAX_KEYS) return VT_ELIMIT;
  size = s->x && s->x->meta ? OBJ_HEAD + rd32(s->x->meta + 5) : OBJ_HEAD;
  if (size + total > UINT32_MAX - 64) return VT_ELIMIT;
  prev = s->x ? s->x->meta : NULL;
  if (!meta_room(c, id, s, size + total)) return VT_ENOMEM; /* enough for any order */
  vt_value_iter(obj, &it); /* obj may lie in the region outgrown: it goes after */
  while ((v = vt_iter_next(&it, &k, &kl)) != NULL) meta_put(c, id, s, k, kl, v, 0);
  if (prev && prev != s->x->meta) arena_drop(s, prev);
  return VT_OK;
}

int vt_collector_merge_metadata(vt_collector *c, vt_id id, const vt_value *obj) {
  vt_slot *s = vt_slot_of(c, id);
  vt_llm_was was;
  int rc, llm;
  if (!obj) return VT_ENOMEM; /* what a failed vt_vb_value gives a host */
  if (!s) return VT_ENOTFOUND;
  if (VT_UNLIKELY(in_meta(c, s, obj, obj))) { /* its own metadata: merged from a copy */
    vt_value *copy = vt_value_dup(obj);
    if (!copy) return VT_ENOMEM;
    rc = vt_collector_merge_metadata(c, id, copy);
    vt_free(copy);
    return rc;
  }
  if ((llm = counted_llm(s)) != 0) vt_llm_before(c, (const vt_value *)span_meta(c, s), &was);
  rc = merge(c, id, s, obj);
  if (rc == VT_OK && llm) vt_llm_after(c, &was, (const vt_value *)span_meta(c, s));
  if (rc == VT_OK && s->state == VT_DONE && vt_value_count(obj)) FIRE(c, VT_EV_META, id);
  return rc;
}

/* ---- recording ----------------------------------------------------------------- */

static int64_t mock_mono(const vt_collector *c) { return c->mocks[c->nmocks - 1].mono_ms; }

/* A copy of bytes in the span's arena. */
static char *arena_dup(vt_collector *c, vt_id id, const void *p, size_t n) {
  char *d = vt_arena_alloc(c, id, n + 1);
  if (d) {
    if (n) memcpy(d, p, n);
    d[n] = '\0';
  }
  return d;
}

static const vt_value *arena_value(vt_collector *c, vt_id id, const vt_value *v, int *ok) {
  if (!v) return NULL;
  v = (const vt_value *)arena_dup(c, id, v, vt_value_size(v));
  if (!v) *ok = 0;
  return v;
}

/* Attributes (of a link or an event) and metadata are an object, or NULL. */
static int obj_or_null(const vt_value *a) { return !a || vt_value_type(a) == VT_OBJ; }

/* Copy links into the span's extra. At start, attributes that are no object
 * are none (start has no status to refuse them with, as metadata that is no
 * object is none); import refuses them before it gets here. */
static int links_copy(vt_collector *c, vt_id id, vt_extra *x, const vt_link *links, size_t n) {
  size_t i;
  int ok = 1;
  x->links = vt_arena_alloc(c, id, n * sizeof *x->links);
  if (!x->links) return 0;
  for (i = 0; i < n && ok; i++) {
    vt_link *d = &x->links[i];
    d->trace_id = arena_dup(c, id, links[i].trace_id, links[i].trace_id_len);
    d->span_id = arena_dup(c, id, links[i].span_id, links[i].span_id_len);
    d->trace_id_len = links[i].trace_id_len;
    d->span_id_len = links[i].span_id_len;
    d->attributes = links[i].attributes && obj_or_null(links[i].attributes) &&
                            vt_value_count(links[i].attributes)
                        ? arena_value(c, id, links[i].attributes, &ok)
                        : NULL;
    ok = ok && d->trace_id && d->span_id;
  }
  x->nlinks = (uint32_t)n;
  return ok;
}

/* A span that could not be recorded: counted. */
static vt_id drop(vt_collector *c) {
  c->dropped++;
  return 0;
}

int64_t vt_collector_intern(vt_collector *c, const char *name, size_t len) {
  return vt_names_intern(&c->names, name, len);
}

void vt_collector_name_release(vt_collector *c, uint32_t name) {
  if (name < c->names.n && c->names.v[name].s) vt_names_release(&c->names, name);
}

static const vt_start_args no_args = {NULL, 0, NULL, 0, 0, 0, 0};

/* Undo a slot filled by start when what it carries could not be copied. */
static vt_id start_fail(vt_collector *c, vt_id id, vt_slot *s) {
  big_free(s); /* its small arena memory goes with the chunk */
  memset(s, 0, sizeof *s);
  (void)id;
  return drop(c);
}

/* The clock for a span's start or end or an event, from the epoch, never
 * below the last such reading. A quick reading (VT_START_QUICK,
 * vt_collector_finish_quick) may be taken before the instructions ahead of
 * it have run, and so come before the reading before it: it is raised to
 * that one. An ordered one (rdtscp) waits for them, so it is never below
 * (the readings of this collector were taken before it, by this thread or
 * by one that handed the collector over). Spans and their events stay in
 * order whichever way they were read. */
static VT_INLINE int64_t span_now(vt_collector *c, unsigned quick) {
  int64_t t;
  if (quick) {
    t = vt_mono_ns_quick() - c->epoch_ns;
    if (VT_UNLIKELY(t < c->last_ns)) t = c->last_ns;
  } else {
    t = vt_mono_ns() - c->epoch_ns;
  }
  c->last_ns = t;
  return t;
}

/* Any start: vt_collector_start_interned's fast path leaves the rest here. */
static VT_NOINLINE vt_id start_any(vt_collector *c, vt_stack *st, vt_kind kind, uint32_t name,
                                   const vt_start_args *a) {
  vt_id id = c->next_id;
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS); /* never below the table's base */
  vt_chunk *ch;
  vt_slot *s;
  if (!a) a = &no_args;
  if (VT_UNLIKELY(!c->enabled) && !(a->flags & VT_START_ALWAYS)) return 0;
  if (VT_UNLIKELY((unsigned)kind >= VT_KIND_COUNT || name >= c->names.n ||
                  !c->names.v[name].s))
    return drop(c);
  if (!st) st = &c->main;
  if (VT_UNLIKELY(k - c->chunk_base >= c->nchunks || !c->chunks[k - c->chunk_base]) &&
      !chunk_new(c, k))
    return drop(c);
  if (VT_UNLIKELY(st->n == st->cap) && !stack_grow(st)) return drop(c);
  if (VT_UNLIKELY(c->capdone <= c->ndone + c->nopen + 1) && !done_reserve(c)) return drop(c);
  ch = c->chunks[k - c->chunk_base];
  s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  s->x = NULL;
  s->flags = 0;
  s->smeta = 0;
  s->kind = (uint8_t)kind;
  s->state = VT_OPEN; /* for the arena helpers; set again below */
  if (VT_UNLIKELY(a->nlinks || a->metadata || c->nmocks)) {
    vt_extra *x = extra_of(c, id, s);
    if (!x) return start_fail(c, id, s);
    if (a->nlinks && !links_copy(c, id, x, a->links, a->nlinks)) return start_fail(c, id, s);
    if (a->metadata && vt_value_type(a->metadata) == VT_OBJ &&
        merge(c, id, s, a->metadata) != VT_OK)
      return start_fail(c, id, s);
    if (c->nmocks) {
      x->wall_ns = c->mocks[c->nmocks - 1].wall_ms * 1000000;
      x->mock_mono_ms = mock_mono(c);
      s->flags = VT_F_MOCK | VT_F_WALL;
    }
  }
  s->start_ns = span_now(c, a->flags & VT_START_QUICK);
  if (VT_UNLIKELY(a->flags & VT_START_AT) && a->start_mono_ns - c->epoch_ns < s->start_ns)
    s->start_ns = a->start_mono_ns > c->epoch_ns ? a->start_mono_ns - c->epoch_ns : 0;
  if (VT_UNLIKELY(a->flags & (VT_START_DETACHED | VT_START_PARENT)))
    s->parent = (a->flags & VT_START_PARENT) && a->parent < id ? a->parent : 0;
  else
    s->parent = st->n ? st->ids[st->n - 1] : st->base < id ? st->base /* never a later span */ : 0;
  s->name = name;
  s->track = st->track;
  vt_names_ref(&c->names, name);
  if (VT_UNLIKELY(a->flags & VT_START_SHARED) && a->shared_meta < c->names.n &&
      c->names.v[a->shared_meta].s) {
    if (s->x && s->x->meta) { /* metadata given too: the shared object goes under it */
      vt_iter it;
      const vt_value *v, *sh = (const vt_value *)c->names.v[a->shared_meta].s;
      const char *key;
      size_t kl;
      vt_value_iter(sh, &it);
      while ((v = vt_iter_next(&it, &key, &kl)) != NULL)
        meta_put(c, id, s, key, kl, v, VT_META_IF_ABSENT);
    } else {
      s->smeta = a->shared_meta + 1;
      vt_names_ref(&c->names, a->shared_meta);
    }
  }
  ch->live++;
  c->next_id = id + 1;
  if (a->flags & VT_START_INSTANT) { /* done at once, never on a stack */
    s->state = VT_DONE;
    s->u.dur_ns = 0;
    c->done[c->ndone++] = id;
    if (kind == VT_LLM_CALL) vt_llm_count(c, (const vt_value *)span_meta(c, s));
  } else {
    s->u.stack = st;
    st->ids[st->n++] = id;
    c->nopen++;
  }
  if (VT_UNLIKELY(c->nsubs)) {
    vt_bus_fire(c, VT_EV_START, id);
    if (a->flags & VT_START_INSTANT) vt_bus_fire(c, VT_EV_END, id);
  }
  if ((a->flags & VT_START_INSTANT) && VT_UNLIKELY(c->max_spans)) evict(c);
  return id;
}

/* The common start (vmtrace.auto's per call, span(), wrap): no links, no
 * metadata but a shared object, no flags but SHARED, no mock clock, and
 * room everywhere. What start_any does for it, without its tests of what is
 * absent; anything else goes there. */
vt_id vt_collector_start_interned(vt_collector *c, vt_stack *st, vt_kind kind, uint32_t name,
                                  const vt_start_args *a) {
  vt_id id = c->next_id;
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS) - c->chunk_base;
  uint32_t sm = 0; /* shared metadata: its name index + 1 */
  unsigned quick = 0;
  vt_chunk *ch;
  vt_slot *s;
  if (a) {
    if (VT_UNLIKELY((a->flags & ~(VT_START_SHARED | VT_START_QUICK)) || a->nlinks || a->metadata))
      return start_any(c, st, kind, name, a);
    quick = a->flags & VT_START_QUICK;
    if (a->flags & VT_START_SHARED) {
      sm = a->shared_meta + 1;
      if (VT_UNLIKELY(a->shared_meta >= c->names.n || !c->names.v[a->shared_meta].s))
        return start_any(c, st, kind, name, a);
    }
  }
  if (!st) st = &c->main;
  if (VT_UNLIKELY(!c->enabled || c->nmocks || (unsigned)kind >= VT_KIND_COUNT ||
                  name >= c->names.n || !c->names.v[name].s || k >= c->nchunks ||
                  !(ch = c->chunks[k]) || st->n == st->cap ||
                  c->capdone <= c->ndone + c->nopen + 1))
    return start_any(c, st, kind, name, a);
  s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  s->start_ns = span_now(c, quick);
  s->u.stack = st;
  s->parent = st->n ? st->ids[st->n - 1] : st->base < id ? st->base /* never a later span */ : 0;
  s->name = name;
  s->track = st->track;
  s->kind = (uint8_t)kind;
  s->state = VT_OPEN;
  s->flags = 0;
  s->smeta = sm;
  s->x = NULL;
  vt_names_ref(&c->names, name);
  if (sm) vt_names_ref(&c->names, sm - 1);
  ch->live++;
  c->next_id = id + 1;
  st->ids[st->n++] = id;
  c->nopen++;
  FIRE(c, VT_EV_START, id);
  return id;
}

vt_id vt_collector_start(vt_collector *c, vt_stack *st, vt_kind kind, const char *name,
                         size_t name_len, const vt_start_args *a) {
  int64_t nm;
  vt_id id;
  if (!a) a = &no_args;
  if (!c->enabled && !(a->flags & VT_START_ALWAYS)) return 0;
  nm = vt_names_intern(&c->names, name, name_len);
  if (nm < 0) return drop(c);
  id = vt_collector_start_interned(c, st, kind, (uint32_t)nm, a);
  vt_names_release(&c->names, (uint32_t)nm); /* the span holds its own */
  return id;
}

/* Time since the start of an open span: the mock's when a mock was active at
 * its start and is now, else the real monotonic clock's (as in the seed). */
static int64_t elapsed(const vt_collector *c, const vt_slot *s) {
  int64_t d;
  if (VT_UNLIKELY(s->flags & VT_F_MOCK) && c->nmocks) {
    d = (mock_mono(c) - s->x->mock_mono_ms) * 1000000;
    return d < 0 ? 0 : d;
  }
  return vt_mono_ns() - c->epoch_ns - s->start_ns;
}

int vt_collector_elapsed(const vt_collector *c, vt_id id, int64_t *ns) {
  const vt_slot *s = vt_slot_of(c, id);
  if (!s) return VT_ENOTFOUND;
  *ns = s->state == VT_OPEN ? elapsed(c, s) : s->u.dur_ns;
  return VT_OK;
}

/* Finish open span s: any span (vt_collector_finish's fast path leaves the
 * rest here). */
static VT_NOINLINE int finish_any(vt_collector *c, vt_id id, vt_slot *s, int64_t *duration_ns,
                                  unsigned quick) {
  int64_t dur;
  if (VT_UNLIKELY(s->flags & VT_F_MOCK) && c->nmocks) dur = elapsed(c, s);
  else dur = span_now(c, quick) - s->start_ns;
  if (s->u.stack) {
    vt_stack *st = s->u.stack;
    if (VT_LIKELY(st->n && st->ids[st->n - 1] == id)) st->n--;
    else stack_remove(st, id);
  }
  s->u.dur_ns = dur;
  s->state = VT_DONE;
  c->nopen--;
  c->done[c->ndone++] = id;
  if (duration_ns) *duration_ns = dur;
  if (VT_UNLIKELY(s->kind == VT_LLM_CALL))
    vt_llm_count(c, (const vt_value *)span_meta(c, s));
  FIRE(c, VT_EV_END, id);
  if (VT_UNLIKELY(c->max_spans)) evict(c);
  return VT_OK;
}

/* The common finish: the top of its stack, no mock clock, no llm_call, no
 * subscribers, no bound; anything else goes to finish_any. */
static inline int finish(vt_collector *c, vt_id id, int64_t *duration_ns, unsigned quick) {
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS) - c->chunk_base;
  vt_stack *st;
  vt_slot *s;
  int64_t dur;
  if (id == 0 || id >= c->next_id || k >= c->nchunks || !c->chunks[k]) return VT_ENOTFOUND;
  s = &c->chunks[k]->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  if (s->state != VT_OPEN) return VT_ENOTFOUND;
  st = s->u.stack;
  if (VT_UNLIKELY((s->flags & VT_F_MOCK) || s->kind == VT_LLM_CALL || c->nsubs || c->max_spans ||
                  !st || !st->n || st->ids[st->n - 1] != id))
    return finish_any(c, id, s, duration_ns, quick);
  dur = span_now(c, quick) - s->start_ns;
  st->n--;
  s->u.dur_ns = dur;
  s->state = VT_DONE;
  c->nopen--;
  c->done[c->ndone++] = id;
  if (duration_ns) *duration_ns = dur;
  return VT_OK;
}

int vt_collector_finish(vt_collector *c, vt_id id, int64_t *duration_ns) {
  return finish(c, id, duration_ns, 0);
}

int vt_collector_finish_quick(vt_collector *c, vt_id id, int64_t *duration_ns) {
  return finish(c, id, duration_ns, 1);
}

int vt_collector_record_event(vt_collector *c, vt_id id, const char *name, size_t name_len,
                              const vt_value *attributes) {
  vt_slot *s = vt_slot_of(c, id);
  vt_extra *x;
  vt_event *ev;
  char *nm;
  int64_t now;
  int ok = 1;
  const vt_value *attrs;
  if (!obj_or_null(attributes)) return VT_EINVAL;
  if (!s || s->state != VT_OPEN) return VT_ENOTFOUND;
  if (!(x = extra_of(c, id, s))) return VT_ENOMEM;
  if (x->nevents == x->capevents) { /* doubling within the arena */
    uint32_t cap = x->capevents ? x->capevents * 2 : 4;
    vt_event *e = vt_arena_alloc(c, id, (size_t)cap * sizeof *e);
    if (!e) return VT_ENOMEM;
    if (x->nevents) memcpy(e, x->events, x->nevents * sizeof *e);
    arena_drop(s, x->events);
    x->events = e;
    x->capevents = cap;
  }
  nm = arena_dup(c, id, name, name_len);
  attrs = attributes && vt_value_count(attributes) ? arena_value(c, id, attributes, &ok) : NULL;
  if (!nm || !ok) return VT_ENOMEM;
  now = span_now(c, 0); /* ordered, and the mark a quick end after it keeps to */
  ev = &x->events[x->nevents++];
  ev->name = nm;
  ev->name_len = name_len;
  ev->attributes = attrs;
  if (c->nmocks) ev->time_unix_ns = c->mocks[c->nmocks - 1].wall_ms * 1000000;
  else ev->time_unix_ns = c->wall_epoch_ns + now;
  if ((s->flags & VT_F_MOCK) && c->nmocks) {
    ev->offset_ns = (mock_mono(c) - x->mock_mono_ms) * 1000000;
    if (ev->offset_ns < 0) ev->offset_ns = 0;
  } else {
    ev->offset_ns = now - s->start_ns;
  }
  return VT_OK;
}

/* ---- import (the reader) ------------------------------------------------------------ */

/* May an import make chunk k? When the table must grow for it, the chunks it
 * would span (from its base to the highest id used, and k) are bounded by
 * the spans held: VT_IMPORT_RANGE ids and two chunks for each span. */
static int import_fits(const vt_collector *c, size_t k) {
  size_t lo = c->chunk_base, hi;
  if (!c->nchunks || (k >= lo && k - lo < c->nchunks)) return 1; /* no growth */
  hi = c->next_id > 1 ? (size_t)((c->next_id - 2) >> VT_CHUNK_BITS) : lo;
  if (k < lo) lo = k;
  if (k > hi) hi = k;
  return hi - lo < (size_t)(VT_IMPORT_RANGE >> VT_CHUNK_BITS) + 2 * (c->ndone + c->nopen + 1);
}

int vt_collector_import(vt_collector *c, const vt_span_view *v) {
  size_t k, i;
  int64_t nm;
  vt_slot *s;
  vt_extra *x = NULL;
  int ok = 1;
  if (v->id == 0 || v->id > ((vt_id)1 << 40) || (unsigned)v->kind >= VT_KIND_COUNT ||
      v->parent >= v->id)
    return VT_EINVAL;
  if (!obj_or_null(v->metadata)) return VT_EINVAL; /* (merge's refusal would read as VT_ENOMEM) */
  for (i = 0; i < v->nlinks; i++)
    if (!obj_or_null(v->links[i].attributes)) return VT_EINVAL;
  for (i = 0; i < v->nevents; i++)
    if (!obj_or_null(v->events[i].attributes)) return VT_EINVAL;
  if (vt_slot_of(c, v->id)) return VT_EEXIST;
  k = (size_t)((v->id - 1) >> VT_CHUNK_BITS);
  if (!import_fits(c, k)) return VT_ELIMIT;
  if (!chunk_new(c, k)) return VT_ENOMEM;
  if (c->capdone <= c->ndone + c->nopen + 1 && !done_reserve(c)) return VT_ENOMEM;
  nm = vt_names_intern(&c->names, v->name, v->name_len);
  if (nm < 0) return VT_ENOMEM;
  s = &chunk_of(c, v->id)->s[(v->id - 1) & (VT_CHUNK_SIZE - 1)];
  memset(s, 0, sizeof *s);
  if (v->id >= c->next_id) skip_to(c, v->id);
  s->state = VT_DONE;
  if (!(x = extra_of(c, v->id, s))) ok = 0;
  if (ok && v->metadata && merge(c, v->id, s, v->metadata) != VT_OK) ok = 0;
  if (ok && v->nlinks && !links_copy(c, v->id, x, v->links, v->nlinks)) ok = 0;
  if (ok && v->nevents) {
    x->events = vt_arena_alloc(c, v->id, v->nevents * sizeof *x->events);
    if (!x->events) ok = 0;
    for (i = 0; ok && i < v->nevents; i++) {
      x->events[i] = v->events[i];
      x->events[i].name = arena_dup(c, v->id, v->events[i].name, v->events[i].name_len);
      x->events[i].attributes = arena_value(c, v->id, v->events[i].attributes, &ok);
      if (!x->events[i].name) ok = 0;
      x->nevents = x->capevents = (uint32_t)(i + 1);
    }
  }
  if (!ok) {
    big_free(s);
    memset(s, 0, sizeof *s);
    vt_names_release(&c->names, (uint32_t)nm);
    return VT_ENOMEM;
  }
  x->wall_ns = v->start_unix_ns;
  s->start_ns = v->start_ns;
  s->u.dur_ns = v->duration_ns;
  s->parent = v->parent;
  s->name = (uint32_t)nm;
  s->track = v->track;
  s->kind = (uint8_t)v->kind;
  s->flags = VT_F_WALL;
  chunk_of(c, v->id)->live++;
  c->done[c->ndone++] = v->id;
  if (s->kind == VT_LLM_CALL) vt_llm_count(c, (const vt_value *)x->meta);
  FIRE(c, VT_EV_LOAD, v->id);
  if (c->max_spans) evict(c);
  return VT_OK;
}

/* ---- reading ----------------------------------------------------------------- */

int vt_collector_get(const vt_collector *c, vt_id id, vt_span_view *out) {
  const vt_slot *s = vt_slot_of(c, id);
  const vt_name *nm;
  if (!s) return VT_ENOTFOUND;
  nm = &c->names.v[s->name];
  out->id = id;
  out->parent = s->parent;
  out->kind = (vt_kind)s->kind;
  out->name = nm->s;
  out->name_len = nm->len;
  out->open = s->state == VT_OPEN;
  out->track = s->track;
  out->start_ns = s->start_ns;
  out->start_unix_ns = (s->flags & VT_F_WALL) ? s->x->wall_ns : c->wall_epoch_ns + s->start_ns;
  out->duration_ns = out->open ? 0 : s->u.dur_ns;
  if (s->x) {
    out->metadata = s->x->meta && rd32(s->x->meta + 1) ? (const vt_value *)s->x->meta : NULL;
    out->links = s->x->links;
    out->nlinks = s->x->nlinks;
    out->events = s->x->events;
    out->nevents = s->x->nevents;
  } else {
    out->metadata = NULL;
    out->links = NULL;
    out->nlinks = 0;
    out->events = NULL;
    out->nevents = 0;
  }
  if (s->smeta && !(s->x && s->x->meta)) { /* shared metadata */
    const unsigned char *sh = (const unsigned char *)c->names.v[s->smeta - 1].s;
    out->metadata = rd32(sh + 1) ? (const vt_value *)sh : NULL;
  }
  return VT_OK;
}

size_t vt_collector_count(const vt_collector *c) { return c->ndone; }

vt_id vt_collector_completed_id(const vt_collector *c, size_t i) {
  return i < c->ndone ? c->done[i] : 0;
}

vt_id vt_collector_next_completed(const vt_collector *c, vt_id after) {
  vt_id id = after + 1, lo = (vt_id)c->chunk_base * VT_CHUNK_SIZE + 1;
  if (id < lo) id = lo; /* no span below the table */
  while (id < c->next_id) {
    size_t i = (size_t)((id - 1) >> VT_CHUNK_BITS) - c->chunk_base;
    const vt_chunk *ch;
    if (i >= c->nchunks) return 0; /* nor past it */
    if (!(ch = c->chunks[i])) { /* a freed chunk: skip it whole */
      id = (vt_id)(c->chunk_base + i + 1) * VT_CHUNK_SIZE + 1;
      continue;
    }
    if (ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)].state == VT_DONE) return id;
    id++;
  }
  return 0;
}

void vt_collector_take(vt_collector *c) {
  size_t i;
  for (i = 0; i < c->ndone; i++) {
    vt_slot *s = vt_slot_of(c, c->done[i]);
    if (s) slot_release(c, c->done[i], s);
  }
  c->ndone = 0;
  done_compact(c);
  if (c->capdone > 4096 && c->capdone / 4 > c->nopen + 1024) {
    /* give memory back, keeping the room reserved for open spans */
    vt_id *d = vt_realloc(c->done_base, (c->nopen + 1024) * sizeof *d);
    if (d) {
      c->done = c->done_base = d;
      c->capdone = c->nopen + 1024;
    }
  }
}

/* ---- for modules ------------------------------------------------------------------ */

static const vt_api api = {VT_API_VERSION,           vt_collector_subscribe,
                           vt_collector_unsubscribe, vt_collector_get,
                           vt_collector_trace_info,  vt_collector_set_sampler,
                           vt_collector_dropped};

const vt_api *vt_core_api(void) { return &api; }
