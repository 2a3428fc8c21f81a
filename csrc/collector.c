/*
 * collector.c: the span store. Spans live in fixed-size chunks indexed by id
 * (ids count up from 1), so an open or completed span is found in O(1) and a
 * completed span without metadata costs one 40-byte slot plus its place in the
 * finish-order list. Active stacks (one per coroutine) hold open ids; each open
 * span knows its stack, so finishing from anywhere removes it from the right
 * one. Room in the finish-order list is reserved at start, so finishing never
 * allocates and never fails.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void fire(const vt_collector *c, vt_hook_event ev, vt_id id);
static int merge(vt_slot *s, cJSON *obj);

static const char *const kind_names[VT_KIND_COUNT] = {
    "pipeline",      "fn_call",       "llm_call",     "tool_call",
    "import",        "parallel",      "spawn",        "step",
    "vm_setup",      "suspension",    "resume",       "drain",
    "drain_decision", "pool_submit",  "pool_dequeue", "channel_emit",
    "channel_match", "user_timing",   "model_route",  "tool_mount",
    "deferred_tool_load"};

const char *vt_kind_name(int kind) {
  return kind >= 0 && kind < VT_KIND_COUNT ? kind_names[kind] : NULL;
}

int vt_kind_parse(const char *s, size_t len) {
  int k;
  for (k = 0; k < VT_KIND_COUNT; k++)
    if (strlen(kind_names[k]) == len && memcmp(kind_names[k], s, len) == 0)
      return k;
  return -1;
}

const char *vt_kind_list(void) {
  return "pipeline, fn_call, llm_call, tool_call, import, parallel, spawn, "
         "step, vm_setup, suspension, resume, drain, drain_decision, "
         "pool_submit, pool_dequeue, channel_emit, channel_match, user_timing, "
         "model_route, tool_mount, deferred_tool_load";
}

/* ---- slots ------------------------------------------------------------------- */

vt_slot *vt_slot_of(const vt_collector *c, vt_id id) {
  size_t k;
  vt_chunk *ch;
  vt_slot *s;
  if (id == 0 || id >= c->next_id) return NULL;
  k = (size_t)((id - 1) >> VT_CHUNK_BITS);
  if (k >= c->nchunks || !(ch = c->chunks[k])) return NULL;
  s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  return s->state != VT_FREE ? s : NULL;
}

static void links_free(vt_link *l, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    vt_free((char *)l[i].trace_id);
    vt_free((char *)l[i].span_id);
    cJSON_Delete(l[i].attributes);
  }
  vt_free(l);
}

static void extra_free(vt_extra *x) {
  size_t i;
  if (!x) return;
  cJSON_Delete(x->meta);
  links_free(x->links, x->nlinks);
  for (i = 0; i < x->nevents; i++) {
    vt_free((char *)x->events[i].name);
    cJSON_Delete(x->events[i].attributes);
  }
  vt_free(x->events);
  vt_free(x);
}

static vt_extra *extra_of(vt_slot *s) {
  if (!s->x) s->x = vt_calloc(1, sizeof *s->x);
  return s->x;
}

/* Free a slot's contents; free its chunk once every id of it was used and
 * every span in it is gone. */
static void slot_release(vt_collector *c, vt_id id, vt_slot *s) {
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS);
  vt_chunk *ch = c->chunks[k];
  extra_free(s->x);
  memset(s, 0, sizeof *s);
  if (--ch->live == 0 && c->next_id > (vt_id)(k + 1) * VT_CHUNK_SIZE) {
    vt_free(ch);
    c->chunks[k] = NULL;
  }
}

/* ---- collectors ------------------------------------------------------------ */

/* The sampler's decision for the current trace. */
static void decide(vt_collector *c) {
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
  c->wall_epoch_ns = vt_clock_wall_ns();
  vt_trace_id_new(c->trace_bytes, c->trace_id, &c->span_salt);
  c->remote_parent = 0;
  c->remote_flags = 0;
  decide(c);
}

void vt_collector_set_sampler(vt_collector *c, vt_sampler s, double ratio) {
  c->sampler = s;
  c->ratio = ratio;
  decide(c);
}

int vt_collector_sampled(const vt_collector *c) { return c->sampled; }
uint64_t vt_collector_remote_parent(const vt_collector *c) { return c->remote_parent; }

int vt_collector_continue_trace(vt_collector *c, const char *header, size_t len) {
  unsigned char trace[16];
  uint64_t parent;
  unsigned flags;
  if (!vt_traceparent_parse(header, len, trace, &parent, &flags)) return VT_EINVAL;
  memcpy(c->trace_bytes, trace, 16);
  vt_trace_id_text(trace, c->trace_id);
  c->remote_parent = parent;
  c->remote_flags = flags;
  decide(c);
  if (c->nhooks) fire(c, VT_HOOK_CONTEXT, 0);
  return VT_OK;
}

int vt_collector_traceparent(const vt_collector *c, vt_id id, char out[56]) {
  static const char hexd[] = "0123456789abcdef";
  uint64_t span;
  int i;
  if (id) {
    if (!vt_slot_of(c, id)) return VT_ENOTFOUND;
    span = vt_collector_otel_span_id(c, id);
  } else if (c->remote_parent) {
    span = c->remote_parent;
  } else {
    return VT_ENOTFOUND;
  }
  memcpy(out, "00-", 3);
  for (i = 0; i < 16; i++) {
    out[3 + 2 * i] = hexd[c->trace_bytes[i] >> 4];
    out[4 + 2 * i] = hexd[c->trace_bytes[i] & 15];
  }
  out[35] = '-';
  for (i = 15; i >= 0; i--, span >>= 4) out[36 + i] = hexd[span & 15];
  out[52] = '-';
  out[53] = '0';
  out[54] = c->sampled ? '1' : '0';
  out[55] = '\0';
  return VT_OK;
}

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

static void clear_spans(vt_collector *c) {
  size_t k;
  for (k = 0; k < c->nchunks; k++) {
    vt_chunk *ch = c->chunks[k];
    size_t i;
    if (!ch) continue;
    for (i = 0; i < VT_CHUNK_SIZE; i++) extra_free(ch->s[i].x);
    vt_free(ch);
  }
  vt_free(c->chunks);
  c->chunks = NULL;
  c->nchunks = 0;
  vt_free(c->done_base);
  c->done = c->done_base = NULL;
  c->ndone = c->capdone = c->nopen = 0;
}

void vt_collector_reset(vt_collector *c) {
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
  stamp(c);
  if (c->nhooks) fire(c, VT_HOOK_RESET, 0);
}

void vt_collector_free(vt_collector *c) {
  if (!c) return;
  clear_spans(c);
  vt_names_free(&c->names);
  while (c->main.next != &c->main) vt_stack_free(c, c->main.next);
  vt_free(c->main.ids);
  vt_free(c->mocks);
  vt_free(c);
}

void vt_collector_set_enabled(vt_collector *c, int on) {
  c->enabled = on != 0;
  if (on) vt_collector_reset(c);
}

int vt_collector_enabled(const vt_collector *c) { return c->enabled; }
const char *vt_collector_trace_id(const vt_collector *c) { return c->trace_id; }
const unsigned char *vt_collector_trace_bytes(const vt_collector *c) {
  return c->trace_bytes;
}
uint64_t vt_collector_dropped(const vt_collector *c) { return c->dropped; }
uint64_t vt_collector_generation(const vt_collector *c) { return c->generation; }

void vt_collector_stats(const vt_collector *c, vt_stats *out) {
  out->open = c->nopen;
  out->completed = c->ndone;
  out->stacks = c->nstacks;
  out->names = c->names.n;
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

/* ---- recording ----------------------------------------------------------------- */

static int64_t mock_mono(const vt_collector *c) {
  return c->mocks[c->nmocks - 1].mono_ms;
}

/* Copy links into `x`; consumes every link's attributes. */
static int links_copy(vt_extra *x, vt_link *links, size_t n) {
  size_t i;
  int ok = x != NULL;
  if (ok) ok = (x->links = vt_calloc(n, sizeof *x->links)) != NULL;
  for (i = 0; i < n; i++) {
    vt_link *d;
    char *t = NULL, *s = NULL;
    if (!ok) {
      cJSON_Delete(links[i].attributes);
      continue;
    }
    d = &x->links[i];
    t = vt_malloc(links[i].trace_id_len + 1);
    s = vt_malloc(links[i].span_id_len + 1);
    d->attributes = links[i].attributes;
    d->trace_id = t;
    d->span_id = s;
    x->nlinks = i + 1;
    if (!t || !s) {
      ok = 0;
      continue;
    }
    memcpy(t, links[i].trace_id, links[i].trace_id_len);
    t[links[i].trace_id_len] = '\0';
    memcpy(s, links[i].span_id, links[i].span_id_len);
    s[links[i].span_id_len] = '\0';
    d->trace_id_len = links[i].trace_id_len;
    d->span_id_len = links[i].span_id_len;
  }
  return ok;
}

static void links_discard(vt_link *links, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) cJSON_Delete(links[i].attributes);
}


int64_t vt_collector_intern(vt_collector *c, const char *name, size_t len) {
  return vt_names_intern(&c->names, name, len);
}

static int chunk_new(vt_collector *c, size_t k) {
  if (k >= c->nchunks) {
    size_t n = c->nchunks ? c->nchunks * 2 : 16;
    vt_chunk **d;
    while (n <= k) n *= 2;
    d = vt_realloc(c->chunks, n * sizeof *d);
    if (!d) return 0;
    memset(d + c->nchunks, 0, (n - c->nchunks) * sizeof *d);
    c->chunks = d;
    c->nchunks = n;
  }
  return c->chunks[k] || (c->chunks[k] = vt_calloc(1, sizeof(vt_chunk))) != NULL;
}

static int stack_grow(vt_stack *st) {
  uint32_t cap = st->cap ? st->cap * 2 : 16;
  vt_id *ids = vt_realloc(st->ids, cap * sizeof *ids);
  if (!ids) return 0;
  st->ids = ids;
  st->cap = cap;
  return 1;
}

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

static void fire(const vt_collector *c, vt_hook_event ev, vt_id id) {
  int i;
  for (i = 0; i < c->nhooks; i++) c->hooks[i].fn(c->hooks[i].ud, c, ev, id);
}

int vt_collector_add_hook(vt_collector *c, vt_hook_fn fn, void *ud) {
  if (c->nhooks == (int)(sizeof c->hooks / sizeof c->hooks[0])) return VT_ENOMEM;
  c->hooks[c->nhooks].fn = fn;
  c->hooks[c->nhooks].ud = ud;
  c->nhooks++;
  return VT_OK;
}

int vt_collector_remove_hook(vt_collector *c, vt_hook_fn fn, void *ud) {
  int i;
  for (i = 0; i < c->nhooks; i++)
    if (c->hooks[i].fn == fn && c->hooks[i].ud == ud) {
      memmove(&c->hooks[i], &c->hooks[i + 1], (size_t)(c->nhooks - i - 1) * sizeof c->hooks[0]);
      c->nhooks--;
      return VT_OK;
    }
  return VT_ENOTFOUND;
}

static const vt_start_args no_args = {NULL, 0, NULL, 0};

/* Give up on what a start was handed: consumed, as promised. */
static void args_discard(const vt_start_args *a) {
  links_discard(a->links, a->nlinks);
  cJSON_Delete(a->metadata);
}

/* A span that could not be recorded: counted, its arguments freed. */
static vt_id drop(vt_collector *c, const vt_start_args *a) {
  args_discard(a);
  c->dropped++;
  return 0;
}

vt_id vt_collector_start_interned(vt_collector *c, vt_stack *st, vt_kind kind,
                                  uint32_t name, const vt_start_args *a) {
  vt_id id = c->next_id;
  size_t k = (size_t)((id - 1) >> VT_CHUNK_BITS);
  vt_chunk *ch;
  vt_slot *s;
  if (!a) a = &no_args;
  if (VT_UNLIKELY(!c->enabled) && !(a->flags & VT_START_ALWAYS)) {
    args_discard(a); /* not recording is not a drop */
    return 0;
  }
  if (VT_UNLIKELY((unsigned)kind >= VT_KIND_COUNT || name >= c->names.n))
    return drop(c, a);
  if (!st) st = &c->main;
  if (VT_UNLIKELY(k >= c->nchunks || !c->chunks[k]) && !chunk_new(c, k))
    return drop(c, a);
  if (VT_UNLIKELY(st->n == st->cap) && !stack_grow(st)) return drop(c, a);
  if (VT_UNLIKELY(c->capdone <= c->ndone + c->nopen + 1) && !done_reserve(c))
    return drop(c, a);
  ch = c->chunks[k];
  s = &ch->s[(id - 1) & (VT_CHUNK_SIZE - 1)];
  s->x = NULL;
  s->flags = 0;
  if (VT_UNLIKELY(a->nlinks || a->metadata || c->nmocks)) {
    vt_extra *x = extra_of(s);
    if (a->nlinks && !links_copy(x, a->links, a->nlinks)) {
      extra_free(x);
      s->x = NULL;
      cJSON_Delete(a->metadata);
      c->dropped++;
      return 0;
    }
    if (!x) return drop(c, a);
    if (c->nmocks) {
      x->wall_ns = c->mocks[c->nmocks - 1].wall_ms * 1000000;
      x->mock_mono_ms = mock_mono(c);
      s->flags = VT_F_MOCK | VT_F_WALL;
    }
  }
  s->start_ns = vt_mono_ns() - c->epoch_ns;
  s->parent = (a->flags & VT_START_DETACHED) ? 0
              : st->n                         ? st->ids[st->n - 1]
              : st->base < id                 ? st->base /* never a later span */
                                              : 0;
  s->name = name;
  s->track = st->track;
  s->kind = (uint8_t)kind;
  ch->live++;
  c->next_id = id + 1;
  if (a->flags & VT_START_INSTANT) { /* done at once, never on a stack */
    s->state = VT_DONE;
    s->u.dur_ns = 0;
    c->done[c->ndone++] = id;
    if (VT_UNLIKELY(c->max_spans)) evict(c);
  } else {
    s->state = VT_OPEN;
    s->u.stack = st;
    st->ids[st->n++] = id;
    c->nopen++;
  }
  if (a->metadata) {
    if (cJSON_IsObject(a->metadata)) merge(s, a->metadata);
    else cJSON_Delete(a->metadata);
  }
  if (VT_UNLIKELY(c->nhooks)) {
    fire(c, VT_HOOK_START, id);
    if (a->flags & VT_START_INSTANT) fire(c, VT_HOOK_END, id);
  }
  return id;
}

vt_id vt_collector_start(vt_collector *c, vt_stack *st, vt_kind kind,
                         const char *name, size_t name_len,
                         const vt_start_args *a) {
  int64_t nm;
  if (!a) a = &no_args;
  if (!c->enabled && !(a->flags & VT_START_ALWAYS)) {
    args_discard(a);
    return 0;
  }
  nm = vt_names_intern(&c->names, name, name_len);
  if (nm < 0) return drop(c, a);
  return vt_collector_start_interned(c, st, kind, (uint32_t)nm, a);
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

int vt_collector_finish(vt_collector *c, vt_id id, int64_t *duration_ns) {
  vt_slot *s = vt_slot_of(c, id);
  int64_t dur;
  if (!s || s->state != VT_OPEN) return VT_ENOTFOUND;
  dur = elapsed(c, s);
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
  if (VT_UNLIKELY(c->nhooks)) fire(c, VT_HOOK_END, id);
  if (VT_UNLIKELY(c->max_spans)) evict(c);
  return VT_OK;
}

/* Set a key of a span's metadata; a new key only while there is room for
 * it (VT_MAX_KEYS), else VT_ELIMIT. */
static int meta_put(vt_extra *x, const char *key, size_t len, cJSON *value) {
  int added, rc;
  if (x->nkeys < 0) { /* metadata put there whole: count it once */
    const cJSON *it;
    x->nkeys = 0;
    for (it = x->meta->child; it; it = it->next) x->nkeys++;
  }
  rc = vt_json_obj_put(x->meta, key, len, value, x->nkeys < VT_MAX_KEYS, &added);
  x->nkeys += added;
  return rc;
}

static int set_meta(vt_collector *c, vt_id id, const char *key, size_t len,
                    cJSON *value, int if_absent) {
  vt_slot *s = vt_slot_of(c, id);
  vt_extra *x;
  int rc;
  if (!value) return VT_ENOMEM;
  if (!s || (s->state != VT_OPEN && !if_absent)) {
    cJSON_Delete(value);
    return VT_ENOTFOUND;
  }
  if (if_absent && s->x && s->x->meta && vt_json_obj_get(s->x->meta, key, len)) {
    cJSON_Delete(value);
    return VT_EEXIST;
  }
  x = extra_of(s);
  if (x && !x->meta) x->meta = cJSON_CreateObject();
  if (!x || !x->meta) {
    cJSON_Delete(value);
    return VT_ENOMEM;
  }
  rc = meta_put(x, key, len, value);
  if (rc == VT_OK && s->state == VT_DONE && c->nhooks) fire(c, VT_HOOK_META, id);
  return rc;
}

int vt_collector_set_metadata(vt_collector *c, vt_id id, const char *key,
                              size_t key_len, cJSON *value) {
  return set_meta(c, id, key, key_len, value, 0);
}

int vt_collector_set_metadata_if_absent(vt_collector *c, vt_id id,
                                        const char *key, size_t key_len,
                                        cJSON *value) {
  return set_meta(c, id, key, key_len, value, 1);
}

int vt_collector_merge_metadata(vt_collector *c, vt_id id, cJSON *obj) {
  vt_slot *s = vt_slot_of(c, id);
  int rc;
  if (!obj) return VT_ENOMEM;
  if (!s || !cJSON_IsObject(obj)) {
    cJSON_Delete(obj);
    return !s ? VT_ENOTFOUND : VT_EINVAL;
  }
  rc = merge(s, obj);
  if (rc == VT_OK && s->state == VT_DONE && c->nhooks) fire(c, VT_HOOK_META, id);
  return rc;
}

/* Set every key of the object `obj` (consumed) on the span in slot s. */
static int merge(vt_slot *s, cJSON *obj) {
  vt_extra *x;
  size_t len;
  int rc = VT_OK;
  if (!obj->child) {
    cJSON_Delete(obj);
    return VT_OK;
  }
  x = extra_of(s);
  if (!x) {
    cJSON_Delete(obj);
    return VT_ENOMEM;
  }
  if (!x->meta) { /* the object becomes the metadata if its keys are sorted */
    const cJSON *it = obj->child;
    int n = 1;
    while (it->next && it->string && it->next->string &&
           strcmp(it->string, it->next->string) < 0)
      it = it->next, n++;
    if (!it->next && it->string && n <= VT_MAX_KEYS) {
      x->meta = obj;
      x->nkeys = n;
      return VT_OK;
    }
    if (!(x->meta = cJSON_CreateObject())) {
      cJSON_Delete(obj);
      return VT_ENOMEM;
    }
  }
  while (obj->child && rc == VT_OK) {
    cJSON *it = cJSON_DetachItemViaPointer(obj, obj->child);
    const char *k = it->string ? it->string : "";
    char *raw = vt_malloc(strlen(k) + 1);
    if (!raw) {
      cJSON_Delete(it);
      rc = VT_ENOMEM;
      break;
    }
    len = vt_str_decode(k, raw);
    rc = meta_put(x, raw, len, it);
    vt_free(raw);
  }
  cJSON_Delete(obj);
  return rc;
}

int vt_collector_record_event(vt_collector *c, vt_id id, const char *name,
                              size_t name_len, cJSON *attributes) {
  vt_slot *s = vt_slot_of(c, id);
  vt_extra *x;
  vt_event *ev;
  char *nm;
  int64_t now;
  if (!s || s->state != VT_OPEN) {
    cJSON_Delete(attributes);
    return VT_ENOTFOUND;
  }
  x = extra_of(s);
  nm = vt_malloc(name_len + 1);
  if (!x || !nm || !vt_grow((void **)&x->events, &x->capevents, x->nevents + 1, sizeof *x->events)) {
    vt_free(nm);
    cJSON_Delete(attributes);
    return VT_ENOMEM;
  }
  memcpy(nm, name, name_len);
  nm[name_len] = '\0';
  now = vt_mono_ns() - c->epoch_ns;
  ev = &x->events[x->nevents++];
  ev->name = nm;
  ev->name_len = name_len;
  ev->attributes = attributes;
  if (c->nmocks) {
    ev->time_unix_ns = c->mocks[c->nmocks - 1].wall_ms * 1000000;
  } else {
    ev->time_unix_ns = c->wall_epoch_ns + now;
  }
  if ((s->flags & VT_F_MOCK) && c->nmocks) {
    ev->offset_ns = (mock_mono(c) - x->mock_mono_ms) * 1000000;
    if (ev->offset_ns < 0) ev->offset_ns = 0;
  } else {
    ev->offset_ns = now - s->start_ns;
  }
  return VT_OK;
}

/* Replace the spans of c by those of from (which gets c's old ones): a reset
 * of c, then the span store, names, trace and clock epoch trade places. */
void vt_collector_adopt(vt_collector *c, vt_collector *from) {
#define SWAP(field)               \
  do {                            \
    tmp_##field = c->field;       \
    c->field = from->field;       \
    from->field = tmp_##field;    \
  } while (0)
  vt_chunk **tmp_chunks;
  size_t tmp_nchunks, tmp_ndone, tmp_capdone, tmp_nopen;
  vt_id *tmp_done, *tmp_done_base, tmp_next_id;
  vt_names tmp_names;
  uint64_t tmp_dropped, tmp_span_salt, tmp_remote_parent;
  unsigned tmp_remote_flags;
  int64_t tmp_epoch_ns, tmp_wall_epoch_ns;
  unsigned char bytes[16];
  char text[48];
  vt_collector_reset(c); /* new generation, empty stacks, hooks told */
  SWAP(chunks);
  SWAP(nchunks);
  SWAP(done);
  SWAP(done_base);
  SWAP(ndone);
  SWAP(capdone);
  SWAP(nopen);
  SWAP(next_id);
  SWAP(names);
  SWAP(dropped);
  SWAP(span_salt);
  SWAP(remote_parent);
  SWAP(remote_flags);
  SWAP(epoch_ns);
  SWAP(wall_epoch_ns);
#undef SWAP
  memcpy(bytes, c->trace_bytes, 16);
  memcpy(c->trace_bytes, from->trace_bytes, 16);
  memcpy(from->trace_bytes, bytes, 16);
  memcpy(text, c->trace_id, sizeof text);
  memcpy(c->trace_id, from->trace_id, sizeof text);
  memcpy(from->trace_id, text, sizeof text);
  decide(c);
  evict(c);
}

/* ---- import ------------------------------------------------------------------ */

int vt_collector_import(vt_collector *c, const vt_span_view *v, cJSON *metadata,
                        vt_link *links, size_t nlinks, vt_event *events,
                        size_t nevents) {
  size_t k, i;
  int64_t nm;
  vt_slot *s;
  vt_extra *x = NULL;
  int rc = VT_ENOMEM;
  if (v->id == 0 || v->id > ((vt_id)1 << 36) || (unsigned)v->kind >= VT_KIND_COUNT) {
    rc = VT_EINVAL;
    goto fail;
  }
  if (vt_slot_of(c, v->id)) {
    rc = VT_EEXIST;
    goto fail;
  }
  k = (size_t)((v->id - 1) >> VT_CHUNK_BITS);
  nm = vt_names_intern(&c->names, v->name, v->name_len);
  if (nm < 0 || !chunk_new(c, k)) goto fail;
  if (c->capdone <= c->ndone + c->nopen + 1 && !done_reserve(c)) goto fail;
  if (!(x = vt_calloc(1, sizeof *x))) goto fail;
  if (nlinks && !links_copy(x, links, nlinks)) {
    links = NULL;
    nlinks = 0;
    goto fail;
  }
  links = NULL;
  nlinks = 0;
  if (nevents) {
    if (!(x->events = vt_calloc(nevents, sizeof *x->events))) goto fail;
    x->capevents = nevents;
    for (i = 0; i < nevents; i++) {
      char *nme = vt_malloc(events[i].name_len + 1);
      if (!nme) goto fail;
      memcpy(nme, events[i].name, events[i].name_len);
      nme[events[i].name_len] = '\0';
      x->events[i] = events[i];
      x->events[i].name = nme;
      events[i].attributes = NULL;
      x->nevents = i + 1;
    }
  }
  x->meta = metadata;
  x->nkeys = -1;
  metadata = NULL;
  x->wall_ns = v->start_unix_ns;
  if (v->id >= c->next_id) c->next_id = v->id + 1;
  s = &c->chunks[k]->s[(v->id - 1) & (VT_CHUNK_SIZE - 1)];
  s->start_ns = v->start_ns;
  s->u.dur_ns = v->duration_ns;
  s->parent = v->parent;
  s->name = (uint32_t)nm;
  s->track = v->track;
  s->kind = (uint8_t)v->kind;
  s->state = VT_DONE;
  s->flags = VT_F_WALL;
  s->x = x;
  c->chunks[k]->live++;
  c->done[c->ndone++] = v->id;
  if (c->max_spans) evict(c);
  return VT_OK;
fail:
  extra_free(x);
  cJSON_Delete(metadata);
  links_discard(links, nlinks);
  for (i = 0; i < nevents; i++) cJSON_Delete(events[i].attributes);
  return rc;
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
  out->start_unix_ns = (s->flags & VT_F_WALL) ? s->x->wall_ns
                                              : c->wall_epoch_ns + s->start_ns;
  out->duration_ns = out->open ? 0 : s->u.dur_ns;
  out->metadata = s->x ? s->x->meta : NULL;
  out->links = s->x ? s->x->links : NULL;
  out->nlinks = s->x ? s->x->nlinks : 0;
  out->events = s->x ? s->x->events : NULL;
  out->nevents = s->x ? s->x->nevents : 0;
  return VT_OK;
}

size_t vt_collector_count(const vt_collector *c) { return c->ndone; }

vt_id vt_collector_completed_id(const vt_collector *c, size_t i) {
  return i < c->ndone ? c->done[i] : 0;
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
