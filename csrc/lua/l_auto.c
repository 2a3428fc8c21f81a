/*
 * l_auto.c: automatic spans (issue 11): an fn_call span per Lua function
 * call made by a call/return hook, an import span per require that loads a
 * module, a spawn span per coroutine; and explicit instrumentation without
 * a hook (wrap, instrument). (Part of the binding unit.)
 *
 * The hook keeps, per thread, a shadow of the call stack: one frame per
 * call event (Lua and C functions alike), popped by its return event. A
 * frame is known by the address of its CallInfo (lua_Debug.i_ci, only
 * compared, never read): a caller's CallInfo does not change while it runs,
 * so at each call the shadow's top must be the caller's frame and at each
 * return the returning frame (a call's CallInfo is the one right after its
 * caller's: one seen from the caller's slot before proves the caller without
 * asking Lua; anything else asks). When it is not, an error unwound the frames
 * above (Lua calls no return hook for them): their spans are finished with
 * status = "error" there and then, with the error's message when the event
 * carries it (a catcher returning false, msg) or later, when the catcher
 * returns. A tail call finishes the span of the frame it replaces.
 *
 * Whether a function is traced, and its name and metadata, are decided once
 * per prototype: prototypes are keyed by their chunk name and line (what
 * lua_getinfo "S" gives), through a direct-mapped cache whose hits are
 * proven by the chunk name's address when auto keeps that very string alive
 * (Lua keeps one string per short content), else by its bytes: a reused
 * address can never give another chunk's answer. A function of excluded
 * code costs one lua_getinfo, a cache probe and a push and pop of its frame.
 * The metadata {source = "path:LINE"} is interned once per prototype as
 * shared metadata (VT_START_SHARED): no bytes per span. A call span's start
 * and end read the clock the quick way (VT_START_QUICK and
 * vt_collector_finish_quick: rdtsc, README "Clock"); min_ms's call times
 * and every other span's readings are ordered.
 *
 * With min_ms, a traced call's span is not started at the call: the frame
 * keeps the call time, and the span is made (started at that time) only
 * when the call ends no shorter than min_ms, or when anything must see it
 * (a span starts inside it, the current span is asked for): short calls
 * never reach the collector. A span always starts after its parent, so the
 * waiting frames under a span being made are made first (they are longer).
 *
 * A hook gets no user data, and looking the state up in the registry at
 * every event costs as much as the rest of the hook: each state that traces
 * calls takes one of AUTO_SLOTS hook functions, each reading its own slot
 * (the only C global here: a slot belongs to one state from auto() until
 * the state closes; past AUTO_SLOTS states, a hook that looks the state up
 * in the registry). A hook found on a thread of another state (a thread
 * switch is checked against the state's main thread) removes itself.
 */

#define AUTO_SLOTS 16
#define AUTO_FRONT 1024    /* direct-mapped cache of prototypes */
#define AUTO_MAX_SRCS 65536 /* distinct chunks judged and kept; past it, not traced */
#define AUTO_NAME_TRIES 16 /* calls that find no name before the site is the name */
#define AUTO_PATCH 16      /* spans unwound before their error's message was seen */

static const char *const unwound_msg = "unwound by an error (its message was not seen)";

/* ---- prototypes and chunks ------------------------------------------------------- */

typedef struct auto_src { /* one chunk name (lua_Debug.source) */
  struct auto_src *next;
  uint32_t hash;
  int traced;
  int anchored; /* the chunk's own name string is kept alive by auto: its address is proof */
  size_t len;
  char *text; /* the chunk name's bytes */
  char *path; /* what metadata shows: the file's path, or short_src */
  const char *base; /* its last component */
} auto_src;

typedef struct auto_fn { /* one prototype (or one C function) */
  struct auto_fn *next;
  auto_src *src;
  const void *key; /* the C function, for C functions */
  int line, lastline;
  int traced;
  int tries;        /* calls that gave no name */
  int64_t name;     /* interned name (a reference held), -1 while unknown */
  int64_t site;     /* interned "file.lua:LINE", -1 until needed */
  int64_t meta;      /* {source = "path:LINE"}: shared metadata (a handle held), -1 */
  int64_t meta_tail; /* the same with tail_call = true */
  int ready;         /* name and meta known: a call takes auto_event_rest's fast path */
  vt_start_args args; /* what that path starts its span with (meta shared) */
} auto_fn;

typedef struct auto_front {
  const char *p;
  int line;
  uint8_t traced, anchored;
  auto_fn *fn;
} auto_front;

/* ---- threads --------------------------------------------------------------------- */

enum { FR_NONE, FR_OPEN, FR_PENDING, FR_LOST };

typedef struct auto_frame {
  const void *ci; /* the frame's CallInfo: its identity while it runs */
  const void *child_ci; /* the CallInfo a call from this depth used last (kept across pushes) */
  vt_id id;       /* FR_OPEN: its span */
  auto_fn *fn;    /* traced: its prototype */
  int64_t t0;     /* FR_PENDING: when it was called (vt_mono_ns) */
  int64_t nm;     /* FR_PENDING: the name it was called by */
  uint8_t state, tail;
} auto_frame;

typedef struct auto_thread {
  /* what every event reads, together */
  auto_frame *f;
  size_t n, cap;
  int started, npatch;
  lua_Hook uhook;   /* a hook set through debug.sethook, chained */
  int umask, ucount;
  uint32_t traced;  /* traced frames, for max_depth */
  uint32_t pending; /* FR_PENDING frames */
  vt_stack *st;     /* its stack in the core (NULL: the main stack) */
  /* the rest */
  struct auto_thread *prev, *next; /* the coroutines' (the main thread's is not linked) */
  lua_State *L;
  size_t low;       /* the lowest FR_PENDING frame, while pending */
  vt_id spawn;      /* its spawn span, while open */
  int dead;
  /* spans unwound at a call, waiting for their message from the catcher */
  const void *catch_ci;
  vt_id patch[AUTO_PATCH];
} auto_thread;

typedef struct lauto {
  /* what every event reads first, together */
  int hooked; /* the call hook is installed (calls on, tracing on) */
  lua_State *cur_L;
  struct auto_thread *cur;
  auto_front *front;
  lvt *S;
  int cfuncs;
  int on, calls, requires, coroutines;
  int64_t min_ns;
  uint32_t max_depth;
  uint32_t fast_depth; /* max_depth, 0 with min_ns: the fast path's depth limit */
  const uint64_t *genp; /* the collector's generation (vt_collector_generation_flag) */
  int slot;
  lua_Hook hook;
  uint64_t gen; /* the collector's generation the spans belong to */
  auto_thread main;
  auto_thread *threads; /* coroutines with auto data */
  int policy_ref, policy_failed;
  int anchors_ref; /* registry ref: chunk name strings kept alive */
  int nanchors;
  auto_src **srcs;
  size_t nsrcs, capsrcs;
  auto_fn **fns;
  size_t nfns, capfns;
  auto_fn **cfns;
  size_t ncfns, capcfns;
  auto_fn untraced; /* for what is judged without being kept */
  /* the functions replaced while on: originals and ours (registry refs) */
  int orig_ref[8], ours_ref[8];
  lua_CFunction orig_fn[8];
} lauto;

/* What auto replaces: require; coroutine.create, wrap, resume, close;
 * debug.sethook, gethook. */
enum { W_REQUIRE, W_CREATE, W_WRAP, W_RESUME, W_CLOSE, W_SETHOOK, W_GETHOOK, W_COUNT };
static const char *const w_table[W_COUNT] = {NULL, "coroutine", "coroutine", "coroutine",
                                             "coroutine", "debug", "debug"};
static const char *const w_field[W_COUNT] = {"require", "create", "wrap", "resume",
                                             "close", "sethook", "gethook"};

/* ---- the hooks ------------------------------------------------------------------- */

static struct lauto *auto_slots[AUTO_SLOTS];

static inline void auto_event(lua_State *L, lua_Debug *ar, struct lauto *A)
    __attribute__((always_inline));

#define AUTO_HOOK(k) \
  static void auto_hook##k(lua_State *L, lua_Debug *ar) { auto_event(L, ar, auto_slots[k]); }
AUTO_HOOK(0)
AUTO_HOOK(1)
AUTO_HOOK(2)
AUTO_HOOK(3)
AUTO_HOOK(4)
AUTO_HOOK(5)
AUTO_HOOK(6)
AUTO_HOOK(7)
AUTO_HOOK(8)
AUTO_HOOK(9)
AUTO_HOOK(10)
AUTO_HOOK(11)
AUTO_HOOK(12)
AUTO_HOOK(13)
AUTO_HOOK(14)
AUTO_HOOK(15)

static const lua_Hook auto_hooks[AUTO_SLOTS] = {
    auto_hook0, auto_hook1, auto_hook2,  auto_hook3,  auto_hook4,  auto_hook5,
    auto_hook6, auto_hook7, auto_hook8,  auto_hook9,  auto_hook10, auto_hook11,
    auto_hook12, auto_hook13, auto_hook14, auto_hook15};

/* Past AUTO_SLOTS states: the state from the registry. */
static void auto_hook_any(lua_State *L, lua_Debug *ar) {
  lvt *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &state_key);
  S = lua_touserdata(L, -1);
  lua_pop(L, 1);
  auto_event(L, ar, S ? S->au : NULL);
}

static lua_Hook auto_take_slot(struct lauto *A, int *slot) {
  int k;
  for (k = 0; k < AUTO_SLOTS; k++)
    if (__sync_bool_compare_and_swap(&auto_slots[k], (struct lauto *)NULL, A)) {
      *slot = k;
      return auto_hooks[k];
    }
  *slot = -1;
  return auto_hook_any;
}

/* ---- small helpers --------------------------------------------------------------- */

static uint32_t auto_hash_bytes(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* a[0..n) == b[0..n), inlined (chunk names are short) */
static inline int auto_same(const char *a, const char *b, size_t n) {
  uint64_t x, y;
  while (n >= 8) {
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
    a += 8, b += 8, n -= 8;
  }
  while (n--)
    if (*a++ != *b++) return 0;
  return 1;
}

static inline uint32_t auto_front_hash(const char *p, int line) {
  uintptr_t a = (uintptr_t)p;
  return (uint32_t)((a >> 3) ^ (a >> 12) ^ ((uint32_t)line * 2654435761u)) & (AUTO_FRONT - 1);
}

/* Is thread co finished (normally, by an error, or closed)? */
static int auto_thread_done(lua_State *co) {
  lua_Debug ar;
  int st = lua_status(co);
  if (st == LUA_YIELD) return 0;
  if (st != LUA_OK) return 1;
  return !lua_getstack(co, 0, &ar) && lua_gettop(co) == 0;
}

/* The metadata {source = "<path>:<line>"} (and tail_call = true), interned
 * as shared metadata: a handle, or -1. */
static int64_t auto_meta(lvt *S, const char *path, int line, int tail) {
  char buf[32];
  vt_vb *b = &S->vb2;
  vt_vb_reset(b);
  vt_vb_obj(b);
  vt_vb_key(b, "source", 6);
  if (line >= 0) {
    size_t pl = strlen(path);
    int n = snprintf(buf, sizeof buf, ":%d", line);
    char *s = vt_malloc(pl + (size_t)n + 1);
    if (!s) return -1;
    memcpy(s, path, pl);
    memcpy(s + pl, buf, (size_t)n + 1);
    vt_vb_str(b, s, pl + (size_t)n);
    vt_free(s);
  } else {
    vt_vb_str(b, path, strlen(path));
  }
  if (tail) {
    vt_vb_key(b, "tail_call", 9);
    vt_vb_bool(b, 1);
  }
  vt_vb_end(b);
  return vt_vb_value(b) ? vt_collector_intern_meta(S->c, vt_vb_value(b)) : -1;
}

static int64_t auto_intern(lvt *S, const char *s, size_t len) {
  return vt_collector_intern(S->c, s, len);
}

/* ---- chunks: the policy's answers -------------------------------------------------- */

/* Ask the Lua policy whether the chunk is traced (inside the hook: no hook
 * runs meanwhile). An error is reported once and means "no". */
static int auto_ask_policy(lua_State *L, lauto *A, const char *src, size_t len) {
  int traced = 0;
  if (A->policy_ref == LUA_NOREF || !lua_checkstack(L, 4)) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, A->policy_ref);
  lua_pushlstring(L, src, len);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
    traced = lua_toboolean(L, -1);
  } else if (!A->policy_failed) {
    A->policy_failed = 1;
    lua_pushfstring(L, "vmtrace.auto: the include/exclude policy raised (its chunks are not traced): %s\n",
                    lua_tostring(L, -1) ? lua_tostring(L, -1) : luaL_typename(L, -1));
    report(L, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return traced;
}

static auto_src *auto_src_of(lua_State *L, lauto *A, const lua_Debug *ar) {
  uint32_t h = auto_hash_bytes(ar->source, ar->srclen);
  auto_src *s;
  size_t i;
  if (A->capsrcs)
    for (s = A->srcs[h & (A->capsrcs - 1)]; s; s = s->next)
      if (s->hash == h && s->len == ar->srclen && memcmp(s->text, ar->source, s->len) == 0) return s;
  if (A->nsrcs >= AUTO_MAX_SRCS) return NULL;
  if (A->nsrcs + 1 > A->capsrcs / 2 * 1) { /* keep the load under 1/2 */
    size_t cap = A->capsrcs ? A->capsrcs * 2 : 64;
    auto_src **t = vt_calloc(cap, sizeof *t);
    if (!t) return NULL;
    for (i = 0; i < A->capsrcs; i++)
      while (A->srcs[i]) {
        auto_src *x = A->srcs[i];
        A->srcs[i] = x->next;
        x->next = t[x->hash & (cap - 1)];
        t[x->hash & (cap - 1)] = x;
      }
    vt_free(A->srcs);
    A->srcs = t;
    A->capsrcs = cap;
  }
  s = vt_calloc(1, sizeof *s);
  if (!s) return NULL;
  s->text = vt_memdup(ar->source, ar->srclen);
  if (ar->source[0] == '@') s->path = vt_memdup(ar->source + 1, ar->srclen - 1);
  else s->path = vt_memdup(ar->short_src, strlen(ar->short_src));
  if (!s->text || !s->path) {
    vt_free(s->text);
    vt_free(s->path);
    vt_free(s);
    return NULL;
  }
  s->base = ar->source[0] == '@' && strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
  s->len = ar->srclen;
  s->hash = h;
  s->traced = auto_ask_policy(L, A, ar->source, ar->srclen);
  /* Lua keeps one string per short content: when the string made here is
   * the chunk's own, keeping it alive means no other string can ever have
   * its address, and the address alone identifies the chunk. */
  if (A->anchors_ref != LUA_NOREF && lua_checkstack(L, 3)) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, A->anchors_ref);
    lua_pushlstring(L, ar->source, ar->srclen);
    if (lua_tostring(L, -1) == ar->source) {
      lua_rawseti(L, -2, ++A->nanchors);
      s->anchored = 1;
    } else {
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  s->next = A->srcs[h & (A->capsrcs - 1)];
  A->srcs[h & (A->capsrcs - 1)] = s;
  A->nsrcs++;
  return s;
}

static void auto_fn_init(auto_fn *f) {
  memset(f, 0, sizeof *f);
  f->name = f->site = f->meta = f->meta_tail = -1;
}

/* Once its name and metadata are known, a prototype's calls take the fast
 * path, with start args made here once. */
static void auto_fn_ready(auto_fn *f) {
  if (f->name < 0 || f->meta < 0) return;
  memset(&f->args, 0, sizeof f->args);
  f->args.flags = VT_START_SHARED | VT_START_QUICK;
  f->args.shared_meta = (uint32_t)f->meta;
  f->ready = 1;
}

/* The prototype entry of the Lua function described by ar ("S" filled). */
static auto_fn *auto_fn_slow(lua_State *L, lauto *A, const lua_Debug *ar, auto_front *e) {
  auto_src *src = auto_src_of(L, A, ar);
  uintptr_t h;
  auto_fn *f;
  size_t i;
  if (!src) return &A->untraced;
  h = ((uintptr_t)src >> 4) ^ ((uint32_t)ar->linedefined * 2654435761u);
  if (A->capfns)
    for (f = A->fns[h & (A->capfns - 1)]; f; f = f->next)
      if (f->src == src && f->line == ar->linedefined && f->lastline == ar->lastlinedefined) goto found;
  if (A->nfns + 1 > A->capfns / 2) {
    size_t cap = A->capfns ? A->capfns * 2 : 256;
    auto_fn **t = vt_calloc(cap, sizeof *t);
    if (!t) return &A->untraced;
    for (i = 0; i < A->capfns; i++)
      while (A->fns[i]) {
        auto_fn *x = A->fns[i];
        uintptr_t xh = ((uintptr_t)x->src >> 4) ^ ((uint32_t)x->line * 2654435761u);
        A->fns[i] = x->next;
        x->next = t[xh & (cap - 1)];
        t[xh & (cap - 1)] = x;
      }
    vt_free(A->fns);
    A->fns = t;
    A->capfns = cap;
  }
  f = vt_malloc(sizeof *f);
  if (!f) return &A->untraced;
  auto_fn_init(f);
  f->src = src;
  f->line = ar->linedefined;
  f->lastline = ar->lastlinedefined;
  f->traced = src->traced;
  f->next = A->fns[h & (A->capfns - 1)];
  A->fns[h & (A->capfns - 1)] = f;
  A->nfns++;
found:
  e->p = ar->source;
  e->line = ar->linedefined;
  e->fn = f;
  e->traced = (uint8_t)f->traced;
  e->anchored = (uint8_t)src->anchored;
  return f;
}

static inline auto_fn *auto_fn_of(lua_State *L, lauto *A, const lua_Debug *ar) {
  auto_front *e = &A->front[auto_front_hash(ar->source, ar->linedefined)];
  if (VT_LIKELY(e->p == ar->source && e->line == ar->linedefined)) {
    auto_fn *f = e->fn;
    if (VT_LIKELY(e->anchored ||
                  (f->src->len == ar->srclen && auto_same(f->src->text, ar->source, ar->srclen))))
      return f;
  }
  return auto_fn_slow(L, A, ar, e);
}

/* The entry of the C function at the top of the stack (c = true). */
static auto_fn *auto_cfn_of(lauto *A, lua_CFunction cf) {
  uintptr_t h = ((uintptr_t)cf >> 4) * 2654435761u;
  auto_fn *f;
  size_t i;
  if (A->capcfns)
    for (f = A->cfns[h & (A->capcfns - 1)]; f; f = f->next)
      if (f->key == (const void *)(uintptr_t)cf) return f;
  if (A->ncfns + 1 > A->capcfns / 2) {
    size_t cap = A->capcfns ? A->capcfns * 2 : 64;
    auto_fn **t = vt_calloc(cap, sizeof *t);
    if (!t) return &A->untraced;
    for (i = 0; i < A->capcfns; i++)
      while (A->cfns[i]) {
        auto_fn *x = A->cfns[i];
        uintptr_t xh = ((uintptr_t)x->key >> 4) * 2654435761u;
        A->cfns[i] = x->next;
        x->next = t[xh & (cap - 1)];
        t[xh & (cap - 1)] = x;
      }
    vt_free(A->cfns);
    A->cfns = t;
    A->capcfns = cap;
  }
  f = vt_malloc(sizeof *f);
  if (!f) return &A->untraced;
  auto_fn_init(f);
  f->key = (const void *)(uintptr_t)cf;
  f->line = -1;
  f->traced = 1;
  f->src = NULL;
  f->next = A->cfns[h & (A->capcfns - 1)];
  A->cfns[h & (A->capcfns - 1)] = f;
  A->ncfns++;
  return f;
}

/* The site name "file.lua:LINE" ("[C]" for C functions; the file name alone
 * for a main chunk). */
static int64_t auto_site(lvt *S, auto_fn *f) {
  char buf[300];
  int n;
  if (f->site >= 0) return f->site;
  if (!f->src) n = snprintf(buf, sizeof buf, "[C]");
  else if (f->line == 0) n = snprintf(buf, sizeof buf, "%s", f->src->base);
  else n = snprintf(buf, sizeof buf, "%s:%d", f->src->base, f->line);
  if (n < 0) return -1;
  if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
  f->site = auto_intern(S, buf, (size_t)n);
  return f->site;
}

/* The table name under which the function at fidx is field `name`: a module
 * of package.loaded, else a table of the globals; pushes "<table>.<name>"
 * or nothing (returns 0). */
static int auto_qualify(lua_State *L, int fidx, const char *name) {
  int pass, found = 0;
  if (!lua_checkstack(L, 8)) return 0;
  for (pass = 0; pass < 2 && !found; pass++) {
    int t;
    if (pass == 0) lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    else lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    t = lua_gettop(L);
    if (lua_type(L, t) == LUA_TTABLE) {
      lua_pushnil(L);
      while (!found && lua_next(L, t)) { /* t, key, value */
        if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE &&
            strcmp(lua_tostring(L, -2), "_G") != 0) {
          lua_getfield(L, -1, name) ;
          found = lua_rawequal(L, -1, fidx);
          lua_pop(L, 1);
          if (found) {
            lua_pushfstring(L, "%s.%s", lua_tostring(L, -2), name);
            lua_replace(L, t);
            lua_settop(L, t);
            return 1;
          }
        }
        lua_pop(L, 1);
      }
    }
    lua_settop(L, t - 1);
  }
  return 0;
}

/* The name of the function being called (the hook's ar, "S" filled): its
 * name from the call (cached once found), else its site. */
static int64_t auto_name(lua_State *L, lvt *S, auto_fn *f, lua_Debug *ar, int tail) {
  int64_t nm = -1;
  if (VT_LIKELY(f->name >= 0)) return f->name;
  if (tail) return auto_site(S, f); /* Lua cannot name a tail-called function */
  if (f->src && f->line == 0) { /* a main chunk: its file */
    f->name = auto_site(S, f);
    return f->name;
  }
  if (lua_getinfo(L, "nf", ar) && ar->name && ar->name[0] != '?' && ar->namewhat[0]) {
    const char *w = ar->namewhat;
    if (strcmp(w, "global") == 0 || strcmp(w, "local") == 0 || strcmp(w, "upvalue") == 0 ||
        strcmp(w, "constant") == 0) {
      nm = auto_intern(S, ar->name, strlen(ar->name));
    } else if (strcmp(w, "field") == 0 || strcmp(w, "method") == 0) {
      if (auto_qualify(L, lua_gettop(L), ar->name)) {
        size_t len;
        const char *q = lua_tolstring(L, -1, &len);
        nm = auto_intern(S, q, len);
        lua_pop(L, 1);
      } else {
        nm = auto_intern(S, ar->name, strlen(ar->name));
      }
    }
  }
  lua_pop(L, 1); /* the function ("f") */
  if (nm >= 0) return f->name = nm;
  if (++f->tries >= AUTO_NAME_TRIES) return f->name = auto_site(S, f);
  return auto_site(S, f);
}

/* Start args carrying f's shared metadata (flags added to `flags`). */
static void auto_args(lvt *S, auto_fn *f, int tail, unsigned flags, vt_start_args *a) {
  int64_t *m = tail ? &f->meta_tail : &f->meta;
  memset(a, 0, sizeof *a);
  if (*m < 0) *m = auto_meta(S, f->src ? f->src->path : "[C]", f->src ? f->line : -1, tail);
  a->flags = flags;
  if (*m >= 0) {
    a->flags |= VT_START_SHARED;
    a->shared_meta = (uint32_t)*m;
  }
}

/* ---- spans of frames ------------------------------------------------------------ */

/* Every thread with auto data (the main thread first). */
#define FOR_THREADS(A, t) for (t = &(A)->main; t; t = (t == &(A)->main ? (A)->threads : t->next))

/* Forget every span the frames hold (after a reset): the frames stay. */
static void auto_forget_spans(lvt *S, lauto *A) {
  auto_thread *t;
  FOR_THREADS(A, t) {
    size_t i;
    for (i = 0; i < t->n; i++) {
      if (t->f[i].state == FR_OPEN || t->f[i].state == FR_PENDING) t->f[i].state = FR_LOST;
      t->f[i].id = 0;
    }
    S->auto_pending -= t->pending;
    t->pending = 0;
    t->spawn = 0;
    t->npatch = 0;
  }
  A->gen = vt_collector_generation(S->c);
}

static inline void auto_check_gen(lvt *S, lauto *A) {
  if (VT_UNLIKELY(vt_collector_generation(S->c) != A->gen)) auto_forget_spans(S, A);
}

/* Start the spans of the waiting frames up to frame `upto` (at their call
 * times, ancestors first). */
static void auto_materialize(lvt *S, lauto *A, auto_thread *t, size_t upto) {
  size_t i;
  vt_start_args a;
  if (!t->pending || t->low > upto) return;
  auto_check_gen(S, A);
  for (i = t->low; i <= upto && t->pending; i++) {
    auto_frame *fr = &t->f[i];
    if (fr->state != FR_PENDING) continue;
    auto_args(S, fr->fn, fr->tail, VT_START_AT, &a);
    a.start_mono_ns = fr->t0;
    fr->id = fr->nm >= 0 ? vt_collector_start_interned(S->c, t->st, VT_FN_CALL, (uint32_t)fr->nm, &a)
                         : 0;
    fr->state = fr->id ? FR_OPEN : FR_LOST;
    t->pending--;
    S->auto_pending--;
  }
  for (; i < t->n && t->pending; i++)
    if (t->f[i].state == FR_PENDING) break;
  t->low = i;
}

/* Mark span id failed: the error object at idx, or the message msg. */
static void auto_mark(lua_State *L, lvt *S, vt_id id, int idx, const char *msg) {
  if (!id) return;
  if (idx) {
    mark_error(L, S, id, idx, 0);
  } else {
    lua_pushstring(L, msg);
    mark_error(L, S, id, -1, 0);
    lua_pop(L, 1);
  }
}

/* End frame i (the top): its span finished, failed with the error at
 * err_idx (or msg) when `failed`; a waiting one made first when long enough,
 * else dropped. Returns the span finished (0: none). */
static vt_id auto_end(lua_State *L, lvt *S, lauto *A, auto_thread *t, int failed, int err_idx,
                      const char *msg) {
  auto_frame *fr = &t->f[t->n - 1];
  vt_id id = 0;
  if (fr->state == FR_PENDING) {
    if (vt_mono_ns() - fr->t0 >= A->min_ns) {
      auto_materialize(S, A, t, t->n - 1);
    } else {
      t->pending--;
      S->auto_pending--;
      fr->state = FR_LOST;
    }
  }
  if (fr->state == FR_OPEN) {
    id = fr->id;
    if (failed) auto_mark(L, S, id, err_idx, msg);
    vt_collector_finish_quick(S->c, id, NULL);
  }
  if (fr->fn) t->traced--;
  if (fr->ci == t->catch_ci) t->npatch = 0;
  t->n--;
  return id;
}

/* Pop the frames above index keep (keep < 0: all) as unwound by an error:
 * the error object at err_idx, or (0) not seen yet; then the spans wait for
 * it from the frame kept (the catcher), when it returns. */
static void auto_unwind(lua_State *L, lvt *S, lauto *A, auto_thread *t, long keep, int err_idx) {
  if ((long)t->n <= keep + 1) return;
  auto_check_gen(S, A);
  if (!err_idx) t->npatch = 0;
  while ((long)t->n > keep + 1) {
    vt_id id = auto_end(L, S, A, t, 1, err_idx, unwound_msg);
    if (id && !err_idx && t->npatch < AUTO_PATCH) t->patch[t->npatch++] = id;
  }
  t->catch_ci = !err_idx && keep >= 0 ? t->f[keep].ci : NULL;
  if (!t->catch_ci) t->npatch = 0;
}

/* The index of the frame whose CallInfo is ci, searching down; -1. */
static long auto_find(const auto_thread *t, const void *ci) {
  size_t i = t->n;
  while (i > 0)
    if (t->f[--i].ci == ci) return (long)i;
  return -1;
}

/* For a return event: push the error message when the values returned are
 * (false or nil, message) as a catcher gives them (pcall, resume); 0 when
 * none was pushed. */
static int auto_returned_error(lua_State *L, lua_Debug *ar) {
  const char *nm;
  if (!lua_getinfo(L, "r", ar) || ar->ntransfer < 2 || !lua_checkstack(L, 3)) return 0;
  nm = lua_getlocal(L, ar, ar->ftransfer);
  if (!nm) return 0;
  if (lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pop(L, 1);
  if (!lua_getlocal(L, ar, ar->ftransfer + 1)) return 0;
  return 1;
}

/* ---- spawn spans ---------------------------------------------------------------- */

/* Finish the spawn span of t (failed with the error at err_idx, 0: none). */
static void auto_spawn_end(lua_State *L, lvt *S, auto_thread *t, int err_idx) {
  if (!t->spawn) return;
  if (err_idx) mark_error(L, S, t->spawn, err_idx, 0);
  vt_collector_finish(S->c, t->spawn, NULL);
  t->spawn = 0;
}

/* t's coroutine is finished: its frames and its spawn span end; failed by
 * the error at err_idx (0: its message not at hand) when it died of one. */
static void auto_thread_finished(lua_State *L, lvt *S, lauto *A, auto_thread *t, int err_idx) {
  int st = lua_status(t->L), failed = (st != LUA_OK && st != LUA_YIELD) || err_idx;
  if (t->dead) return;
  auto_check_gen(S, A);
  t->dead = 1;
  if (failed) {
    auto_unwind(L, S, A, t, -1, err_idx);
    if (t->spawn) auto_mark(L, S, t->spawn, err_idx, unwound_msg);
  } else {
    while (t->n) auto_end(L, S, A, t, 0, 0, NULL); /* closed while suspended */
  }
  auto_spawn_end(L, S, t, 0);
}

static auto_thread *auto_thread_of(lua_State *L, lvt *S, lauto *A, int idx, lua_State *co,
                                   vt_id base, int create);

/* Start t's spawn span for its body f (its first resume). */
static void auto_spawn_start(lvt *S, lauto *A, auto_thread *t, auto_fn *f) {
  vt_start_args a;
  int64_t nm;
  t->started = 1;
  if (!f || !f->traced || !A->coroutines || !vt_collector_enabled(S->c)) return;
  auto_check_gen(S, A);
  nm = f->name >= 0 ? f->name : auto_site(S, f);
  if (nm < 0) return;
  auto_args(S, f, 0, 0, &a);
  t->spawn = vt_collector_start_interned(S->c, t->st, VT_SPAWN, (uint32_t)nm, &a);
}

/* Start the spawn span of coroutine co before its first resume, named after
 * its body (the function at index 1 of co). */
static void auto_spawn_begin(lua_State *L, lvt *S, lauto *A, auto_thread *t, lua_State *co) {
  lua_Debug ar;
  auto_fn *f = NULL;
  if (t->started) return;
  t->started = 1;
  if (lua_gettop(co) < 1 || !lua_checkstack(L, 2)) return;
  lua_pushvalue(co, 1);
  lua_xmove(co, L, 1);
  if (lua_iscfunction(L, -1)) {
    lua_CFunction cf = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (A->cfuncs) f = auto_cfn_of(A, cf);
  } else if (lua_getinfo(L, ">S", &ar)) {
    f = auto_fn_of(L, A, &ar);
  }
  auto_spawn_start(S, A, t, f);
}

/* ---- the event ------------------------------------------------------------------ */

/* Room for one more frame; new slots know no child CallInfo. */
static int auto_room(auto_thread *t) {
  size_t old = t->cap, i;
  if (!vt_grow((void **)&t->f, &t->cap, t->n + 1, sizeof *t->f)) return 0;
  for (i = old; i < t->cap; i++) t->f[i].child_ci = NULL;
  return 1;
}

/* A frame that records nothing (excluded code, C functions). */
static inline void auto_push_none(auto_thread *t, const void *ci) {
  auto_frame *fr;
  if (VT_UNLIKELY(t->n == t->cap) && !auto_room(t))
    return; /* out of memory: the next events find the shadow short and repair it */
  fr = &t->f[t->n++];
  fr->ci = ci;
  fr->fn = NULL;
  fr->state = FR_NONE;
}

/* A traced frame: its span started, or waiting (min_ms). */
static void auto_push(lvt *S, lauto *A, auto_thread *t, const void *ci, auto_fn *fn, int64_t nm,
                      int tail) {
  auto_frame *fr;
  if (VT_UNLIKELY(t->n == t->cap) && !auto_room(t)) return;
  fr = &t->f[t->n++];
  fr->ci = ci;
  fr->fn = fn;
  fr->tail = (uint8_t)tail;
  fr->id = 0;
  fr->nm = nm;
  t->traced++;
  if (A->min_ns) {
    fr->state = FR_PENDING;
    fr->t0 = vt_mono_ns();
    if (!t->pending++) t->low = t->n - 1;
    S->auto_pending++;
    return;
  }
  if (nm >= 0) {
    vt_start_args a;
    auto_args(S, fn, tail, VT_START_QUICK, &a);
    fr->id = vt_collector_start_interned(S->c, t->st, VT_FN_CALL, (uint32_t)nm, &a);
  }
  fr->state = fr->id ? FR_OPEN : FR_LOST;
}

static void auto_hooks_off(lua_State *L, lvt *S, lauto *A);

#define AUTO_COLD __attribute__((noinline, cold))

/* The caller of a new frame is not the shadow's top: frames above the
 * caller were unwound (caller NULL: every frame). */
static AUTO_COLD void auto_repair(lua_State *L, lvt *S, lauto *A, auto_thread *t,
                                  const void *caller) {
  auto_unwind(L, S, A, t, caller ? auto_find(t, caller) : -1, 0);
}

/* A call event past the fast path of auto_event ("S" filled in ar): a
 * function to trace, a tail call, a C function with c = true, a coroutine's
 * body, a prototype not seen yet. */
static AUTO_COLD void auto_call(lua_State *L, lua_Debug *ar, lvt *S, lauto *A, auto_thread *t,
                                int tail) {
  auto_fn *fn = NULL;
  int64_t nm = -1;
  if (tail) { /* the frame it replaces ends: same CallInfo */
    long i = t->n ? (t->f[t->n - 1].ci == ar->i_ci ? (long)t->n - 1 : auto_find(t, ar->i_ci)) : -1;
    if (i >= 0) {
      auto_unwind(L, S, A, t, i, 0);
      auto_check_gen(S, A);
      auto_end(L, S, A, t, 0, 0, NULL);
    }
  }
  if (VT_LIKELY(ar->what[0] != 'C')) {
    fn = auto_fn_of(L, A, ar);
  } else if (A->cfuncs) {
    lua_getinfo(L, "f", ar);
    fn = auto_cfn_of(A, lua_tocfunction(L, -1));
    lua_pop(L, 1);
  }
  if (VT_UNLIKELY(!t->started) && t->n == 0) { /* a coroutine's body */
    lua_Debug up;
    if (!lua_getstack(L, 1, &up)) auto_spawn_start(S, A, t, fn);
    t->started = 1;
  }
  if (!fn || !fn->traced || t->traced >= A->max_depth) {
    auto_push_none(t, ar->i_ci);
    return;
  }
  if (VT_UNLIKELY(!vt_collector_enabled(S->c))) { /* turned off from C: the hooks go */
    auto_push_none(t, ar->i_ci);
    auto_hooks_off(L, S, A);
    return;
  }
  auto_check_gen(S, A);
  nm = auto_name(L, S, fn, ar, tail);
  auto_push(S, A, t, ar->i_ci, fn, nm, tail);
  if (!fn->ready) auto_fn_ready(fn);
}

static AUTO_COLD void auto_ret(lua_State *L, lua_Debug *ar, lvt *S, lauto *A, auto_thread *t) {
  long i;
  int err = 0, patch;
  if (VT_LIKELY(t->n && t->f[t->n - 1].ci == ar->i_ci)) {
    patch = t->npatch && t->catch_ci == ar->i_ci;
    if (VT_UNLIKELY(patch)) {
      if (auto_returned_error(L, ar)) {
        int k;
        for (k = 0; k < t->npatch; k++) mark_error(L, S, t->patch[k], -1, 0);
        lua_pop(L, 1);
      }
      t->npatch = 0;
    }
    if (t->f[t->n - 1].state != FR_NONE) auto_check_gen(S, A);
    auto_end(L, S, A, t, 0, 0, NULL);
  } else {
    if (!t->n || (i = auto_find(t, ar->i_ci)) < 0) return; /* a frame from before */
    err = auto_returned_error(L, ar);
    auto_unwind(L, S, A, t, i, err ? lua_gettop(L) : 0);
    if (err) lua_pop(L, 1);
    auto_check_gen(S, A);
    auto_end(L, S, A, t, 0, 0, NULL);
  }
  if (VT_UNLIKELY(t->n == 0) && t != &A->main && t->spawn) { /* the body returned: done */
    lua_Debug up;
    if (!lua_getstack(L, 1, &up)) {
      t->dead = 1;
      auto_spawn_end(L, S, t, 0);
    }
  }
}

/* Remove vmtrace's hook from thread co, giving back a hook it chained. */
static void auto_unhook(lauto *A, lua_State *co, auto_thread *t) {
  if (lua_gethook(co) != A->hook) return;
  if (t && t->uhook) lua_sethook(co, t->uhook, t->umask, t->ucount);
  else lua_sethook(co, NULL, 0, 0);
}

/* Install vmtrace's hook on thread co, chaining a hook already there. */
static void auto_hook_thread(lauto *A, lua_State *co, auto_thread *t) {
  lua_Hook h = lua_gethook(co);
  if (h == A->hook) return;
  if (t) {
    t->uhook = h;
    t->umask = h ? lua_gethookmask(co) : 0;
    t->ucount = h ? lua_gethookcount(co) : 0;
  }
  lua_sethook(co, A->hook, LUA_MASKCALL | LUA_MASKRET | (t ? t->umask : 0), t ? t->ucount : 0);
}

/* The thread's auto data on a thread switch (NULL: not ours). */
static auto_thread *auto_switch(lua_State *L, lua_Debug *ar, lvt *S, lauto *A) {
  auto_thread *prev = A->cur, *t;
  lua_State *main_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  main_L = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (main_L != S->main_L) return NULL; /* a thread of another state */
  if (L == S->main_L) {
    t = &A->main;
  } else {
    vt_id base;
    /* a spawn span needs its parent made; without one, the coroutine's
     * spans go under the nearest span made */
    if (A->coroutines && prev && prev->pending) auto_materialize(S, A, prev, prev->n - 1);
    base = vt_stack_current(S->c, prev ? prev->st : NULL);
    lua_pushthread(L);
    t = auto_thread_of(L, S, A, -1, L, base, 1);
    lua_pop(L, 1);
    if (!t) return NULL;
  }
  if (prev && prev != t && prev != &A->main && !prev->dead && auto_thread_done(prev->L)) {
    int err = ar->event == LUA_HOOKRET && auto_returned_error(L, ar);
    auto_thread_finished(L, S, A, prev, err ? lua_gettop(L) : 0);
    if (err) lua_pop(L, 1);
  }
  A->cur = t;
  A->cur_L = L;
  return t;
}

static AUTO_COLD void auto_stray(lua_State *L) { lua_sethook(L, NULL, 0, 0); }

/* A chained hook: its events. */
static void auto_chain(lua_State *L, lua_Debug *ar, auto_thread *t) {
  static const int mask_of[] = {LUA_MASKCALL, LUA_MASKRET, LUA_MASKLINE, LUA_MASKCOUNT,
                                LUA_MASKCALL};
  if (ar->event >= 0 && ar->event <= 4 && (t->umask & mask_of[ar->event])) t->uhook(L, ar);
}

/* A traced call returns (the top frame, its span open): its span finished
 * (after a reset, auto_ret forgets it). */
static VT_NOINLINE void auto_ret_open(lua_State *L, lua_Debug *ar, lauto *A, auto_thread *t) {
  lvt *S = A->S;
  if (VT_LIKELY(*A->genp == A->gen)) {
    vt_collector_finish_quick(S->c, t->f[t->n - 1].id, NULL);
    t->traced--;
    t->n--;
  } else {
    auto_ret(L, ar, S, A, t);
  }
  DELIVER(L, S); /* sinks hear of the spans (hooks are off inside a hook) */
  if (VT_UNLIKELY(t->uhook != NULL)) auto_chain(L, ar, t);
}

/* Any other return. */
static VT_NOINLINE void auto_ret_other(lua_State *L, lua_Debug *ar, lauto *A, auto_thread *t) {
  lvt *S = A->S;
  auto_ret(L, ar, S, A, t);
  DELIVER(L, S); /* sinks hear of the spans (hooks are off inside a hook) */
  if (VT_UNLIKELY(t->uhook != NULL)) auto_chain(L, ar, t);
}

/* Every event but those auto_event takes itself (all returns of the thread
 * seen last; a return here follows a switch of threads): the call fast
 * paths (a frame of excluded code or of a C function pushed, a traced call
 * whose prototype is known), the rest out of line. */
static VT_NOINLINE void auto_event_rest(lua_State *L, lua_Debug *ar, lauto *A, auto_thread *t) {
  lvt *S = A->S;
  if (ar->event == LUA_HOOKRET) {
    auto_ret(L, ar, S, A, t); /* just after a switch of threads: the fast paths are auto_event's */
  } else if (ar->event == LUA_HOOKCALL) {
    if (VT_LIKELY(t->n) && t->f[t->n - 1].child_ci != ar->i_ci) { /* ask who the caller is */
      lua_Debug up;
      const void *caller = lua_getstack(L, 1, &up) ? (const void *)up.i_ci : NULL;
      if (VT_UNLIKELY(t->f[t->n - 1].ci != caller)) auto_repair(L, S, A, t, caller);
      if (t->n) t->f[t->n - 1].child_ci = ar->i_ci;
    }
    lua_getinfo(L, "S", ar);
    if (VT_LIKELY(t->started)) {
      if (VT_LIKELY(ar->what[0] != 'C')) {
        auto_front *e = &A->front[auto_front_hash(ar->source, ar->linedefined)];
        if (VT_LIKELY(e->p == ar->source && e->line == ar->linedefined &&
                      (e->anchored || (e->fn->src->len == ar->srclen &&
                                       auto_same(e->fn->src->text, ar->source, ar->srclen))))) {
          auto_fn *fn = e->fn;
          if (!e->traced) {
            auto_push_none(t, ar->i_ci); /* excluded code */
            goto quiet;
          }
          if (VT_LIKELY(fn->ready && t->traced < A->fast_depth && t->n < t->cap &&
                        *A->genp == A->gen)) {
            auto_frame *fr = &t->f[t->n]; /* a traced call, named and seen before */
            fr->id = vt_collector_start_interned(S->c, t->st, VT_FN_CALL, (uint32_t)fn->name,
                                                 &fn->args);
            if (VT_LIKELY(fr->id)) {
              fr->ci = ar->i_ci;
              fr->fn = fn;
              fr->tail = 0;
              fr->state = FR_OPEN;
              t->n++;
              t->traced++;
              goto done;
            }
          }
        }
      } else if (VT_LIKELY(!A->cfuncs)) {
        auto_push_none(t, ar->i_ci); /* a C function */
        goto quiet;
      }
    }
    auto_call(L, ar, S, A, t, 0);
  } else if (ar->event == LUA_HOOKTAILCALL) {
    lua_getinfo(L, "S", ar);
    auto_call(L, ar, S, A, t, 1);
  }
done:
  DELIVER(L, S); /* sinks hear of the spans (hooks are off inside a hook) */
quiet:
  if (VT_UNLIKELY(t->uhook != NULL)) auto_chain(L, ar, t);
}

/* An event on a thread other than the one seen last, or a hook left over. */
static VT_NOINLINE void auto_event_other(lua_State *L, lua_Debug *ar, lauto *A) {
  auto_thread *t;
  if (!A || !A->hooked || !(t = auto_switch(L, ar, A->S, A))) { /* left over: it goes */
    auto_stray(L);
    return;
  }
  auto_event_rest(L, ar, A, t);
}

/* Every hook event. A return on the thread seen last is taken here: a
 * frame of excluded code or of a C function popped here, a traced call's
 * span finished by auto_ret_open, any other by auto_ret_other; anything else
 * goes to auto_event_rest. Every call here is a tail call: this part saves
 * no registers (the returns of excluded code are cheaper by that). A->cur_L
 * is set only while the hook is installed. */
static inline void auto_event(lua_State *L, lua_Debug *ar, lauto *A) {
  auto_thread *t;
  if (VT_UNLIKELY(!A || L != A->cur_L)) {
    auto_event_other(L, ar, A);
    return;
  }
  t = A->cur;
  if (ar->event == LUA_HOOKRET) {
    size_t n = t->n;
    auto_frame *fr = n ? &t->f[n - 1] : NULL;
    if (VT_LIKELY(fr && fr->ci == ar->i_ci && !t->npatch)) {
      if (VT_LIKELY(fr->state == FR_NONE)) {
        t->n = n - 1; /* nothing recorded */
        if (VT_UNLIKELY(t->uhook != NULL)) auto_chain(L, ar, t);
        return;
      }
      if (fr->state == FR_OPEN && n > 1) { /* a traced call returns */
        lvt *S = A->S;
        if (VT_LIKELY(*A->genp == A->gen && !S->nsinks && !S->nq && !t->uhook)) {
          /* nothing to do after the finish (no sink can hear of it): a tail call */
          vt_id id = fr->id;
          t->traced--;
          t->n = n - 1;
          vt_collector_finish_quick(S->c, id, NULL);
          return;
        }
        auto_ret_open(L, ar, A, t);
        return;
      }
    }
    auto_ret_other(L, ar, A, t);
    return;
  }
  auto_event_rest(L, ar, A, t);
}

/* ---- threads' auto data ------------------------------------------------------------ */

static auto_thread *auto_thread_of(lua_State *L, lvt *S, lauto *A, int idx, lua_State *co,
                                   vt_id base, int create) {
  thread_box *b;
  auto_thread *t;
  if (co == S->main_L) return &A->main;
  b = box_of(L, S, idx, co, base, create);
  if (!b) return NULL;
  if (b->at) return b->at;
  if (!create) return NULL;
  t = vt_calloc(1, sizeof *t);
  if (!t) return NULL;
  t->L = co;
  t->st = b->st;
  t->next = A->threads;
  if (A->threads) A->threads->prev = t;
  A->threads = t;
  b->at = t;
  return t;
}

/* The box of a thread is being freed: so is its auto data; spans it still
 * holds finish as abandoned. */
static void auto_thread_gc(lvt *S, auto_thread *t) {
  lauto *A = S->au;
  static const unsigned char yes[1] = {VT_TRUE};
  size_t i;
  if (A && S->c) {
    if (A->gen == vt_collector_generation(S->c)) {
      for (i = t->n; i > 0; i--)
        if (t->f[i - 1].state == FR_OPEN) {
          vt_collector_set_metadata(S->c, t->f[i - 1].id, "abandoned", 9, (const vt_value *)yes, 0);
          vt_collector_finish(S->c, t->f[i - 1].id, NULL);
        }
      if (t->spawn) {
        vt_collector_set_metadata(S->c, t->spawn, "abandoned", 9, (const vt_value *)yes, 0);
        vt_collector_finish(S->c, t->spawn, NULL);
      }
    }
    S->auto_pending -= t->pending;
    if (t->prev) t->prev->next = t->next;
    else if (A->threads == t) A->threads = t->next;
    if (t->next) t->next->prev = t->prev;
    if (A->cur == t) A->cur = NULL, A->cur_L = NULL;
  }
  vt_free(t->f);
  vt_free(t);
}

/* A span starts on thread L, or L's current span is asked for: its waiting
 * frames become spans first. */
static void auto_flush(lua_State *L, lvt *S) {
  lauto *A = S->au;
  auto_thread *t;
  if (!A) return;
  if (L == A->cur_L) t = A->cur;
  else if (L == S->main_L) t = &A->main;
  else {
    lua_pushthread(L);
    t = auto_thread_of(L, S, A, -1, L, 0, 0);
    lua_pop(L, 1);
  }
  if (t && t->pending) auto_materialize(S, A, t, t->n - 1);
}

/* ---- on and off ------------------------------------------------------------------- */

/* Finish every span auto holds and empty the shadows. */
static void auto_end_all(lua_State *L, lvt *S, lauto *A) {
  auto_thread *t;
  auto_check_gen(S, A);
  FOR_THREADS(A, t) {
    while (t->n) {
      if (t->f[t->n - 1].state == FR_PENDING) { /* not asked for: no span */
        t->f[t->n - 1].state = FR_LOST;
        t->pending--;
        S->auto_pending--;
      }
      auto_end(L, S, A, t, 0, 0, NULL);
    }
    t->traced = 0;
    t->pending = 0;
    t->npatch = 0;
    auto_spawn_end(L, S, t, 0);
  }
  S->auto_pending = 0;
}

/* The hooks off every thread known (giving back chained hooks), every span
 * auto holds finished. */
static void auto_hooks_off(lua_State *L, lvt *S, lauto *A) {
  auto_thread *t;
  if (!A->hooked) return;
  auto_end_all(L, S, A);
  FOR_THREADS(A, t) if (t->L) auto_unhook(A, t->L, t);
  A->hooked = 0;
  A->cur = NULL;
  A->cur_L = NULL;
}

/* Install or remove the call hook on every thread known, as auto and the
 * switch say. */
static void auto_apply(lua_State *L, lvt *S, int enabled) {
  lauto *A = S->au;
  auto_thread *t;
  int want;
  if (!A) return;
  want = A->on && A->calls && enabled;
  if (want && !A->hooked) {
    A->hooked = 1;
    A->gen = vt_collector_generation(S->c);
    A->cur = NULL;
    A->cur_L = NULL;
    A->main.L = S->main_L;
    FOR_THREADS(A, t) if (t->L && !t->dead) auto_hook_thread(A, t->L, t);
    if (L != S->main_L) { /* the thread that turned it on */
      lua_pushthread(L);
      t = auto_thread_of(L, S, A, -1, L, current_of(L, S), 1);
      lua_pop(L, 1);
      if (t) {
        t->started = 1; /* running already: no spawn span */
        auto_hook_thread(A, L, t);
      }
    }
  } else if (!want && A->hooked) {
    auto_hooks_off(L, S, A);
  } else if (!enabled) { /* spawn spans of coroutines (no hook) */
    auto_end_all(L, S, A);
  }
}

/* Tracing was switched (enable, disable): the hook follows. Called before
 * turning off, after turning on. */
static void auto_switched(lua_State *L, lvt *S, int on) {
  if (S->au && S->au->on) auto_apply(L, S, on);
}

static void auto_fn_release(lvt *S, auto_fn *f) {
  if (f->name >= 0 && f->name != f->site) vt_collector_name_release(S->c, (uint32_t)f->name);
  if (f->site >= 0) vt_collector_name_release(S->c, (uint32_t)f->site);
  if (f->meta >= 0) vt_collector_name_release(S->c, (uint32_t)f->meta);
  if (f->meta_tail >= 0) vt_collector_name_release(S->c, (uint32_t)f->meta_tail);
  vt_free(f);
}

static void auto_clear_caches(lvt *S, lauto *A) {
  size_t i;
  for (i = 0; i < A->capfns; i++)
    while (A->fns[i]) {
      auto_fn *f = A->fns[i];
      A->fns[i] = f->next;
      auto_fn_release(S, f);
    }
  for (i = 0; i < A->capcfns; i++)
    while (A->cfns[i]) {
      auto_fn *f = A->cfns[i];
      A->cfns[i] = f->next;
      auto_fn_release(S, f);
    }
  for (i = 0; i < A->capsrcs; i++)
    while (A->srcs[i]) {
      auto_src *s = A->srcs[i];
      A->srcs[i] = s->next;
      vt_free(s->text);
      vt_free(s->path);
      vt_free(s);
    }
  vt_free(A->fns);
  vt_free(A->cfns);
  vt_free(A->srcs);
  A->fns = A->cfns = NULL;
  A->srcs = NULL;
  A->nfns = A->capfns = A->ncfns = A->capcfns = A->nsrcs = A->capsrcs = 0;
  if (A->front) memset(A->front, 0, AUTO_FRONT * sizeof *A->front);
}

/* The table holding replaced function w (pushed), or nothing (0). */
static int auto_w_table(lua_State *L, int w) {
  if (!w_table[w]) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    return 1;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, w_table[w]);
  lua_remove(L, -2);
  if (lua_type(L, -1) == LUA_TTABLE) return 1;
  lua_pop(L, 1);
  return 0;
}

static int l_auto_require(lua_State *L);
static int l_auto_create(lua_State *L);
static int l_auto_cowrap(lua_State *L);
static int l_auto_resume(lua_State *L);
static int l_auto_close(lua_State *L);
static int l_auto_sethook(lua_State *L);
static int l_auto_gethook(lua_State *L);
static const lua_CFunction w_impl[W_COUNT] = {l_auto_require, l_auto_create, l_auto_cowrap,
                                              l_auto_resume,  l_auto_close,  l_auto_sethook,
                                              l_auto_gethook};

/* Replace function w by vmtrace's (upvalues: the state, the original). */
static void auto_replace(lua_State *L, lauto *A, int w) {
  if (A->ours_ref[w] != LUA_NOREF || !auto_w_table(L, w)) return;
  if (lua_getfield(L, -1, w_field[w]) != LUA_TFUNCTION) {
    lua_pop(L, 2);
    return;
  }
  A->orig_fn[w] = NULL;
  if (lua_iscfunction(L, -1)) {
    if (lua_getupvalue(L, -1, 1)) lua_pop(L, 1); /* has upvalues: called through Lua */
    else A->orig_fn[w] = lua_tocfunction(L, -1);
  }
  lua_pushvalue(L, -1);
  A->orig_ref[w] = luaL_ref(L, LUA_REGISTRYINDEX); /* table, orig */
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, -2);
  lua_pushcclosure(L, w_impl[w], 2); /* table, ours */
  lua_pushvalue(L, -1);
  A->ours_ref[w] = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setfield(L, -2, w_field[w]);
  lua_pop(L, 1);
}

/* Put function w back, when the table still holds vmtrace's. */
static void auto_restore(lua_State *L, lauto *A, int w) {
  if (A->ours_ref[w] == LUA_NOREF) return;
  if (auto_w_table(L, w)) {
    lua_getfield(L, -1, w_field[w]);
    lua_rawgeti(L, LUA_REGISTRYINDEX, A->ours_ref[w]);
    if (lua_rawequal(L, -1, -2)) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, A->orig_ref[w]);
      lua_setfield(L, -4, w_field[w]);
    }
    lua_pop(L, 3);
  }
  luaL_unref(L, LUA_REGISTRYINDEX, A->ours_ref[w]);
  luaL_unref(L, LUA_REGISTRYINDEX, A->orig_ref[w]);
  A->ours_ref[w] = A->orig_ref[w] = LUA_NOREF;
  A->orig_fn[w] = NULL;
}

static lauto *auto_state(lua_State *L, lvt *S) {
  int w;
  if (S->au) return S->au;
  S->au = vt_calloc(1, sizeof *S->au);
  if (!S->au) status_error(L, "auto", VT_ENOMEM);
  S->au->policy_ref = LUA_NOREF;
  S->au->anchors_ref = LUA_NOREF;
  S->au->S = S;
  S->au->genp = vt_collector_generation_flag(S->c);
  S->au->slot = -1;
  for (w = 0; w < W_COUNT; w++) S->au->ours_ref[w] = S->au->orig_ref[w] = LUA_NOREF;
  auto_fn_init(&S->au->untraced);
  S->au->main.L = S->main_L;
  S->au->main.started = 1;
  return S->au;
}

static void auto_off(lua_State *L, lvt *S) {
  lauto *A = S->au;
  int w;
  if (!A || !A->on) return;
  auto_hooks_off(L, S, A);
  auto_end_all(L, S, A);
  for (w = 0; w < W_COUNT; w++) auto_restore(L, A, w);
  luaL_unref(L, LUA_REGISTRYINDEX, A->policy_ref);
  A->policy_ref = LUA_NOREF;
  A->policy_failed = 0;
  auto_clear_caches(S, A); /* before the anchors go */
  luaL_unref(L, LUA_REGISTRYINDEX, A->anchors_ref);
  A->anchors_ref = LUA_NOREF;
  A->nanchors = 0;
  A->on = A->calls = A->requires = A->coroutines = A->cfuncs = 0;
}

/* The state closes: hooks off its threads, the slot back. */
static void auto_close(lua_State *L, lvt *S) {
  lauto *A = S->au;
  auto_thread *t;
  if (!A) return;
  FOR_THREADS(A, t) if (t->L) auto_unhook(A, t->L, t);
  auto_clear_caches(S, A);
  while (A->threads) {
    t = A->threads;
    A->threads = t->next;
    t->prev = t->next = NULL; /* the box frees it */
  }
  vt_free(A->main.f);
  vt_free(A->front);
  if (A->slot >= 0) __sync_bool_compare_and_swap(&auto_slots[A->slot], A, (struct lauto *)NULL);
  vt_free(A);
  S->au = NULL;
  S->auto_pending = 0;
  (void)L;
}

/* _auto(false) | _auto{calls=, min_ns=, max_depth=, c=, requires=,
 * coroutines=, policy=}: the Lua side (vmtrace.auto) checked the settings. */
static int l_auto(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A;
  if (lua_type(L, 1) != LUA_TTABLE) {
    auto_off(L, S);
    return 0;
  }
  A = auto_state(L, S);
  auto_off(L, S);
  lua_getfield(L, 1, "calls");
  A->calls = lua_toboolean(L, -1);
  lua_getfield(L, 1, "c");
  A->cfuncs = lua_toboolean(L, -1);
  lua_getfield(L, 1, "requires");
  A->requires = lua_toboolean(L, -1);
  lua_getfield(L, 1, "coroutines");
  A->coroutines = lua_toboolean(L, -1);
  lua_getfield(L, 1, "min_ns");
  A->min_ns = (int64_t)lua_tointeger(L, -1);
  lua_getfield(L, 1, "max_depth");
  A->max_depth = lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
                         lua_tointeger(L, -1) < UINT32_MAX
                     ? (uint32_t)lua_tointeger(L, -1)
                     : UINT32_MAX;
  lua_settop(L, 1);
  if (A->min_ns < 0) A->min_ns = 0;
  A->fast_depth = A->min_ns ? 0 : A->max_depth;
  if (lua_getfield(L, 1, "policy") == LUA_TFUNCTION) A->policy_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  else lua_pop(L, 1);
  lua_newtable(L);
  A->anchors_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!A->front && !(A->front = vt_calloc(AUTO_FRONT, sizeof *A->front)))
    return status_error(L, "auto", VT_ENOMEM);
  if (A->calls) {
    if (!A->hook) A->hook = auto_take_slot(A, &A->slot);
    auto_replace(L, A, W_SETHOOK);
    auto_replace(L, A, W_GETHOOK);
  }
  if (A->requires) auto_replace(L, A, W_REQUIRE);
  if (A->coroutines) {
    auto_replace(L, A, W_CREATE);
    auto_replace(L, A, W_WRAP);
    auto_replace(L, A, W_RESUME);
    auto_replace(L, A, W_CLOSE);
  }
  A->on = 1;
  auto_apply(L, S, vt_collector_enabled(S->c));
  return 0;
}

/* ---- the replaced functions ---------------------------------------------------------- */

/* Call the original of w with the arguments as they are: the C function
 * itself when it has no upvalues (no frame of its own, so messages and
 * tracebacks are the original's), else through Lua. Its results. */
static int auto_orig(lua_State *L, lauto *A, int w) {
  if (A && A->orig_fn[w]) return A->orig_fn[w](L);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* Push a span handle for span id (to-be-closed by the caller): closing it
 * finishes the span, marked failed when an error closes it. */
static void push_handle(lua_State *L, lvt *S, vt_id id) {
  lspan *h = lua_newuserdatauv(L, sizeof *h, 0);
  h->gen = vt_collector_generation(S->c);
  h->id = id;
  h->closed = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->span_mt_ref);
  lua_setmetatable(L, -2);
}

/* require(name): an import span when it loads the module. The span is a
 * to-be-closed value, not a pcall: an error goes on untouched, with its
 * traceback from where the module raised it. */
static int l_auto_require(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  vt_id id = 0;
  int n;
  lua_settop(L, 1);
  if (A && A->on && A->requires && vt_collector_enabled(S->c)) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, name);
    if (!lua_toboolean(L, -1)) id = vt_collector_start(S->c, stack_of(L, S), VT_IMPORT, name, len, NULL);
    lua_settop(L, 1);
    DELIVER(L, S);
  }
  if (!id) {
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  push_handle(L, S, id); /* name, handle */
  lua_insert(L, 1);
  lua_toclose(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2)); /* handle, name, require */
  lua_insert(L, 2);
  lua_call(L, 1, LUA_MULTRET); /* handle, results... */
  n = lua_gettop(L) - 1;
  if (n >= 2 && lua_type(L, 3) == LUA_TSTRING) { /* the loader's data: the file found */
    size_t pl;
    const char *p = lua_tolstring(L, 3, &pl);
    vt_vb_reset(&S->vb);
    vt_vb_str(&S->vb, p, pl);
    if (vt_vb_value(&S->vb)) vt_collector_set_metadata(S->c, id, "path", 4, vt_vb_value(&S->vb), 0);
  }
  return n; /* the handle closes: the span ends */
}

/* Before thread co (at idx) is resumed: the hook on it, and its spawn span
 * at its first resume. */
static auto_thread *auto_before_resume(lua_State *L, lvt *S, lauto *A, int idx) {
  lua_State *co = lua_tothread(L, idx);
  lua_Debug ar;
  auto_thread *t;
  int fresh;
  if (!co || co == L || !vt_collector_enabled(S->c)) return NULL;
  fresh = lua_status(co) == LUA_OK && !lua_getstack(co, 0, &ar) && lua_gettop(co) > 0;
  t = auto_thread_of(L, S, A, idx, co, current_of(L, S), fresh || A->hooked);
  if (!t) return NULL;
  if (!fresh) t->started = 1;
  if (A->hooked) auto_hook_thread(A, co, t);
  if (fresh && !t->started) {
    t->dead = 0;
    auto_spawn_begin(L, S, A, t, co);
    DELIVER(L, S);
  }
  return t;
}

/* After it: when it finished, its spans end (failed with the error at
 * err_idx, 0: none). */
static void auto_after_resume(lua_State *L, lvt *S, lauto *A, auto_thread *t, int err_idx) {
  if (!t || t->dead || !auto_thread_done(t->L)) return;
  auto_thread_finished(L, S, A, t, err_idx);
  DELIVER(L, S);
}

static int l_auto_resume(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  auto_thread *t = A && A->on && A->coroutines ? auto_before_resume(L, S, A, 1) : NULL;
  int n = auto_orig(L, A, W_RESUME), top = lua_gettop(L);
  A = S->au;
  if (t && A && A->on)
    auto_after_resume(L, S, A, t, n >= 2 && !lua_toboolean(L, top - n + 1) ? top - n + 2 : 0);
  return n;
}

/* coroutine.create(fn): the coroutine's spans are parented here. */
static int l_auto_create(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  int n = auto_orig(L, A, W_CREATE);
  lua_State *co = lua_tothread(L, -1);
  if (co && A && A->on && A->coroutines && vt_collector_enabled(S->c)) {
    auto_thread *t = auto_thread_of(L, S, A, -1, co, current_of(L, S), 1);
    if (t && A->hooked) auto_hook_thread(A, co, t);
  }
  return n;
}

/* The function coroutine.wrap returns: upvalues the state, the original's
 * function, the coroutine. */
static int l_auto_wrapped_co(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  auto_thread *t = NULL;
  int status;
  lua_pushvalue(L, lua_upvalueindex(3));
  if (A && A->on && A->coroutines) t = auto_before_resume(L, S, A, lua_gettop(L));
  lua_pop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
  A = S->au;
  if (t && A && A->on) auto_after_resume(L, S, A, t, status == LUA_OK ? 0 : lua_gettop(L));
  if (status == LUA_OK) return lua_gettop(L);
  if (status != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) { /* as coroutine.wrap says where */
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

static int l_auto_cowrap(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  lua_State *co;
  int n = auto_orig(L, A, W_WRAP);
  if (n != 1 || !A || !A->on || !A->coroutines || lua_type(L, -1) != LUA_TFUNCTION ||
      !lua_getupvalue(L, -1, 1))
    return n;
  co = lua_tothread(L, -1); /* wrapfn, co */
  if (!co) {
    lua_pop(L, 1);
    return n;
  }
  if (vt_collector_enabled(S->c)) {
    auto_thread *t = auto_thread_of(L, S, A, -1, co, current_of(L, S), 1);
    if (t && A->hooked) auto_hook_thread(A, co, t);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, -3); /* state, wrapfn, co */
  lua_pushcclosure(L, l_auto_wrapped_co, 3);
  return 1;
}

static int l_auto_close(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  lua_State *co = lua_tothread(L, 1);
  auto_thread *t = NULL;
  int n, top;
  if (co && A && A->on) {
    lua_pushvalue(L, 1);
    t = auto_thread_of(L, S, A, -1, co, 0, 0);
    lua_pop(L, 1);
  }
  n = auto_orig(L, A, W_CLOSE);
  top = lua_gettop(L);
  A = S->au;
  if (t && A && A->on && !t->dead && auto_thread_done(co)) {
    auto_thread_finished(L, S, A, t, n >= 2 && !lua_toboolean(L, top - n + 1) ? top - n + 2 : 0);
    DELIVER(L, S);
  }
  return n;
}

/* The thread debug.sethook/gethook act on: argument 1 when a thread. */
static lua_State *auto_hook_target(lua_State *L, int *idx) {
  if (lua_type(L, 1) == LUA_TTHREAD) {
    *idx = 1;
    return lua_tothread(L, 1);
  }
  *idx = 0;
  return L;
}

/* debug.sethook: the script's hook is set, then chained behind vmtrace's
 * while calls are traced. */
static int l_auto_sethook(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  int idx, n;
  lua_State *co = auto_hook_target(L, &idx);
  auto_thread *t;
  n = auto_orig(L, A, W_SETHOOK);
  if (!A || !A->hooked || !vt_collector_enabled(S->c)) return n;
  if (idx) lua_pushvalue(L, idx);
  else lua_pushthread(L);
  t = auto_thread_of(L, S, A, -1, co, current_of(L, S), 1);
  lua_pop(L, 1);
  if (!t) return n;
  t->uhook = lua_gethook(co) == A->hook ? t->uhook : lua_gethook(co);
  t->umask = t->uhook ? lua_gethookmask(co) : 0;
  t->ucount = t->uhook ? lua_gethookcount(co) : 0;
  lua_sethook(co, A->hook, LUA_MASKCALL | LUA_MASKRET | t->umask, t->ucount);
  return n;
}

/* debug.gethook: the script's own hook, as if vmtrace's were not there. */
static int l_auto_gethook(lua_State *L) {
  lvt *S = STATE(L);
  lauto *A = S->au;
  int idx, n, mask, count;
  lua_State *co = auto_hook_target(L, &idx);
  auto_thread *t;
  if (!A || !A->hooked || lua_gethook(co) != A->hook) return auto_orig(L, A, W_GETHOOK);
  if (idx) lua_pushvalue(L, idx);
  else lua_pushthread(L);
  t = auto_thread_of(L, S, A, -1, co, 0, 0);
  lua_pop(L, 1);
  mask = lua_gethookmask(co);
  count = lua_gethookcount(co);
  lua_sethook(co, t ? t->uhook : NULL, t ? t->umask : 0, t ? t->ucount : 0);
  n = auto_orig(L, A, W_GETHOOK);
  lua_sethook(co, A->hook, mask, count);
  return n;
}

/* ---- explicit instrumentation: no hook ------------------------------------------------ */

/* A traced function: upvalues the state, the function, the kind (an
 * integer), the name. A span handle in a to-be-closed slot finishes the span
 * however the call ends (an error marks it, after the error's traceback was
 * taken), and lets the function yield. */
static int l_wrapped_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return lua_gettop(L) - (int)ctx;
}

static int l_wrapped(lua_State *L) {
  lvt *S = STATE(L);
  int n = lua_gettop(L);
  if (vt_collector_enabled(S->c)) {
    size_t len;
    const char *name = lua_tolstring(L, lua_upvalueindex(4), &len);
    int64_t nm;
    vt_id id = 0;
    if (S->auto_pending) auto_flush(L, S);
    nm = name_of(L, S, lua_upvalueindex(4), name, len);
    if (nm >= 0)
      id = vt_collector_start_interned(S->c, stack_of(L, S),
                                       (vt_kind)lua_tointeger(L, lua_upvalueindex(3)),
                                       (uint32_t)nm, NULL);
    DELIVER(L, S);
    if (id) {
      push_handle(L, S, id);
      lua_insert(L, 1);
      lua_toclose(L, 1);
      lua_pushvalue(L, lua_upvalueindex(2));
      lua_insert(L, 2);
      lua_callk(L, n, LUA_MULTRET, 1, l_wrapped_k);
      return lua_gettop(L) - 1;
    }
  }
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, l_wrapped_k);
  return lua_gettop(L);
}

/* Push the traced version of the function at fi (kind k, name at ni). */
static void push_wrapped(lua_State *L, int fi, int k, int ni) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, fi);
  lua_pushinteger(L, k);
  lua_pushvalue(L, ni);
  lua_pushcclosure(L, l_wrapped, 4);
}

/* Check the callable at arg. */
static void check_callable(lua_State *L, const char *fn, int arg) {
  if (lua_type(L, arg) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, arg, "__call") == LUA_TNIL) type_error(L, fn, arg, "function");
    lua_pop(L, 1);
  }
}

/* The kind named at idx, argument arg's `what` (default fn_call). */
static int opt_kind(lua_State *L, const char *fn, int idx, int arg, const char *what) {
  int k;
  const char *kind = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
  luaL_Buffer b;
  if (lua_isnoneornil(L, idx)) return VT_FN_CALL;
  for (k = 0; kind && k < VT_KIND_COUNT; k++)
    if (strcmp(kind, vt_kind_name(k)) == 0) return k;
  if (!kind) return arg_error(L, fn, arg, "%s must be a span kind string, got %s", what, type_of(L, idx));
  luaL_buffinit(L, &b);
  for (k = 0; k < VT_KIND_COUNT; k++) {
    if (k) luaL_addstring(&b, ", ");
    luaL_addstring(&b, vt_kind_name(k));
  }
  luaL_pushresult(&b);
  return arg_error(L, fn, arg, "unknown span kind '%s'; expected one of %s", kind, lua_tostring(L, -1));
}

/* The site of the Lua function at fi: "file.lua:LINE" (pushed). */
static void push_site(lua_State *L, int fi) {
  lua_Debug ar;
  const char *base;
  lua_pushvalue(L, fi);
  if (lua_type(L, -1) != LUA_TFUNCTION || !lua_getinfo(L, ">S", &ar) || ar.what[0] == 'C') {
    if (lua_type(L, fi) != LUA_TFUNCTION) lua_pop(L, 1);
    lua_pushliteral(L, "[C]");
    return;
  }
  base = strrchr(ar.short_src, '/') ? strrchr(ar.short_src, '/') + 1 : ar.short_src;
  if (ar.linedefined > 0) lua_pushfstring(L, "%s:%d", base, ar.linedefined);
  else lua_pushstring(L, base);
}

/* wrap(fn [, kind [, name]]): fn traced as a span of kind (fn_call) named
 * name (fn's definition site). */
static int l_wrap(lua_State *L) {
  int k;
  check_callable(L, "wrap", 1);
  if (!lua_isnoneornil(L, 3)) check_str(L, "wrap", 3, NULL);
  k = opt_kind(L, "wrap", 2, 2, "kind");
  lua_settop(L, 3);
  if (lua_isnil(L, 3)) {
    push_site(L, 1);
    lua_replace(L, 3);
  }
  push_wrapped(L, 1, k, 3);
  return 1;
}

/* instrument(t [, opts]): every function field of t (a string key) traced,
 * named "<prefix>.<key>" (prefix: opts.prefix, else t's name in
 * package.loaded, else none), kind opts.kind (fn_call). Functions traced
 * already stay as they are. Returns t. */
static int l_instrument(lua_State *L) {
  static const char *const known[] = {"kind", "prefix", NULL};
  int k = VT_FN_CALL, keys;
  if (lua_type(L, 1) != LUA_TTABLE) type_error(L, "instrument", 1, "table");
  lua_settop(L, 2);
  if (check_opts(L, "instrument", 2, known)) {
    lua_getfield(L, 2, "kind");
    k = opt_kind(L, "instrument", lua_gettop(L), 2, "opts.kind");
    lua_pop(L, 1);
    lua_getfield(L, 2, "prefix"); /* 3 */
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      arg_error(L, "instrument", 2, "opts.prefix must be a string, got %s", luaL_typename(L, -1));
  } else {
    lua_pushnil(L); /* 3 */
  }
  if (lua_isnil(L, 3)) { /* the module's name */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_rawequal(L, -1, 1) && lua_type(L, -2) == LUA_TSTRING) {
        lua_pop(L, 1);
        lua_replace(L, 3);
        lua_settop(L, 3);
        break;
      }
      lua_pop(L, 1);
    }
    lua_settop(L, 3);
  }
  lua_newtable(L); /* 4: the keys, as the table changes while they are wrapped */
  keys = 0;
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION &&
        lua_tocfunction(L, -1) != l_wrapped) {
      lua_pushvalue(L, -2);
      lua_rawseti(L, 4, ++keys);
    }
    lua_pop(L, 1);
  }
  for (; keys > 0; keys--) {
    lua_rawgeti(L, 4, keys); /* 5: key */
    lua_pushvalue(L, 5);
    lua_rawget(L, 1); /* 6: fn */
    if (lua_isnil(L, 3)) lua_pushvalue(L, 5);
    else lua_pushfstring(L, "%s.%s", lua_tostring(L, 3), lua_tostring(L, 5)); /* 7: name */
    lua_pushvalue(L, 5);
    push_wrapped(L, 6, k, 7); /* key, fn, name, key, traced */
    lua_rawset(L, 1);
    lua_settop(L, 4);
  }
  lua_settop(L, 1);
  return 1;
}

/* _auto_hooked([co]): is vmtrace's call hook installed on thread co (the
 * running thread)? For the specs: off must mean removed, not idle. */
static int l_auto_hooked(lua_State *L) {
  lvt *S = STATE(L);
  lua_State *co = lua_isthread(L, 1) ? lua_tothread(L, 1) : L;
  lua_Hook h = lua_gethook(co);
  int k, ours = h == auto_hook_any;
  for (k = 0; k < AUTO_SLOTS && !ours; k++) ours = h == auto_hooks[k];
  lua_pushboolean(L, ours && S->au && S->au->hook == h);
  return 1;
}

/* _realpath(path): the canonical absolute path, or nil. */
static int l_realpath(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  char *r = realpath(p, NULL);
  if (!r) return 0;
  lua_pushstring(L, r);
  free(r);
  return 1;
}
