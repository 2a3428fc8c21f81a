/*
 * l_thread.c: one active stack per coroutine. A coroutine's stack lives in a
 * box: a userdata whose uservalue is the thread and which is the value of the
 * thread in a weak-keyed table. When the thread is garbage, the box is
 * finalized; the box keeps the thread from being freed (and its address
 * reused) until the box's finalizer has run, so the one-entry cache
 * (co_L, co_st) can never name a different thread. (Part of the binding.)
 */

#define THREAD_MT "vmtrace.Thread"

typedef struct thread_box {
  vt_stack *st;
  lua_State *co;
  struct auto_thread *at; /* its automatic spans' data (l_auto.c), or NULL */
} thread_box;

static int l_thread_gc(lua_State *L) {
  lvt *S = STATE(L);
  thread_box *b = luaL_checkudata(L, 1, THREAD_MT);
  if (b->at) auto_thread_gc(S, b->at);
  b->at = NULL;
  if (b->st && S->c) vt_stack_free(S->c, b->st);
  if (S->co_L == b->co) S->co_L = NULL, S->co_st = NULL;
  b->st = NULL;
  return 0;
}

/* The box of thread `co` (at index idx), made with `base` as inherited parent
 * when missing and create is set. */
static thread_box *box_of(lua_State *L, lvt *S, int idx, lua_State *co, vt_id base, int create) {
  thread_box *b;
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->threads_ref);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TUSERDATA || !create) {
    b = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return b;
  }
  lua_pop(L, 1);
  b = lua_newuserdatauv(L, sizeof *b, 1); /* threads, box */
  b->st = NULL;
  b->co = co;
  b->at = NULL;
  lua_pushvalue(L, idx);
  lua_setiuservalue(L, -2, 1);
  b->st = vt_stack_new(S->c, base);
  if (!b->st) status_error(L, "coroutine", VT_ENOMEM);
  luaL_setmetatable(L, THREAD_MT);
  lua_pushvalue(L, idx);
  lua_pushvalue(L, -2);
  lua_rawset(L, -4);
  lua_pop(L, 2);
  return b;
}

/* The active stack of the running thread (NULL: the main stack). A coroutine
 * not made by vmtrace.coroutine inherits the main thread's current span. */
static vt_stack *stack_of(lua_State *L, lvt *S) {
  thread_box *b;
  if (VT_UNLIKELY(S->auto_pending)) auto_flush(L, S); /* calls waiting for min_ms */
  if (VT_LIKELY(L == S->main_L)) return NULL;
  if (L == S->co_L) return S->co_st;
  lua_pushthread(L);
  b = box_of(L, S, -1, L, vt_stack_current(S->c, NULL), 1);
  lua_pop(L, 1);
  S->co_L = L;
  S->co_st = b->st;
  return b->st;
}

/* The current span of the running thread, without making it a stack. */
static vt_id current_of(lua_State *L, lvt *S) {
  thread_box *b;
  if (VT_UNLIKELY(S->auto_pending)) auto_flush(L, S);
  if (L == S->main_L) return vt_stack_current(S->c, NULL);
  if (L == S->co_L) return vt_stack_current(S->c, S->co_st);
  lua_pushthread(L);
  b = box_of(L, S, -1, L, 0, 0);
  lua_pop(L, 1);
  return b ? vt_stack_current(S->c, b->st) : vt_stack_current(S->c, NULL);
}

/* _adopt(co): co's first span gets the caller's current span as parent. */
static int l_adopt(lua_State *L) {
  lvt *S = STATE(L);
  lua_State *co = lua_tothread(L, 1);
  thread_box *b;
  vt_id base;
  if (!co) type_error(L, "coroutine.create", 1, "coroutine");
  base = current_of(L, S);
  b = box_of(L, S, 1, co, base, 1);
  vt_stack_set_base(b->st, base);
  return 0;
}
