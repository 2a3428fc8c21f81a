/*
 * alloc.c: the one allocator every allocation of the core goes through,
 * cJSON's included (its hooks are set to the same functions). A host may
 * install its own; a test installs one that fails the k-th allocation.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "util.h"

static vt_allocator current = {malloc, realloc, free};

void vt_set_allocator(const vt_allocator *a) {
  cJSON_Hooks hooks;
  if (a && a->malloc_fn && a->realloc_fn && a->free_fn) current = *a;
  else {
    current.malloc_fn = malloc;
    current.realloc_fn = realloc;
    current.free_fn = free;
  }
  hooks.malloc_fn = current.malloc_fn;
  hooks.free_fn = current.free_fn;
  cJSON_InitHooks(&hooks);
}

void *vt_malloc(size_t n) { return current.malloc_fn(n ? n : 1); }

void *vt_calloc(size_t n, size_t size) {
  size_t total;
  void *p;
  if (size && n > SIZE_MAX / size) return NULL;
  total = n * size;
  p = current.malloc_fn(total ? total : 1);
  if (p) memset(p, 0, total);
  return p;
}

void *vt_realloc(void *p, size_t n) { return current.realloc_fn(p, n ? n : 1); }

void vt_free(void *p) {
  if (p) current.free_fn(p);
}

int vt_grow(void **p, size_t *cap, size_t need, size_t size) {
  size_t n = *cap ? *cap : 16;
  void *q;
  if (need <= *cap) return 1;
  while (n < need) {
    if (n > SIZE_MAX / 2 / size) return 0;
    n *= 2;
  }
  q = vt_realloc(*p, n * size);
  if (!q) return 0;
  *p = q;
  *cap = n;
  return 1;
}

char *vt_memdup(const char *s, size_t len) {
  char *d;
  if (len == SIZE_MAX) return NULL;
  d = vt_malloc(len + 1);
  if (!d) return NULL;
  if (len) memcpy(d, s, len);
  d[len] = '\0';
  return d;
}
