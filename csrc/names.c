/*
 * names.c: interned span names. Agents repeat a handful of names millions of
 * times, so a span stores a 32-bit index and each distinct name is kept once,
 * its bytes in an arena. Open addressing, linear probing, power-of-two table.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define ARENA_BLOCK 65536u

static uint32_t hash_bytes(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
  }
  h *= 0xBF58476D1CE4E5B9ull;
  return (uint32_t)(h >> 32);
}

void vt_names_init(vt_names *t) { memset(t, 0, sizeof *t); }

void vt_names_free(vt_names *t) {
  char *blk = t->arena;
  uint32_t i;
  while (blk) {
    char *prev;
    memcpy(&prev, blk, sizeof prev);
    vt_free(blk);
    blk = prev;
  }
  for (i = 0; i < t->n; i++) /* names too big for the arena */
    if (t->v[i].len + 1 > ARENA_BLOCK / 4) vt_free((char *)t->v[i].s);
  vt_free(t->v);
  vt_free(t->slots);
  vt_names_init(t);
}

/* Copy the bytes of a name; big names get a block of their own. */
static char *arena_copy(vt_names *t, const char *s, size_t len) {
  char *d;
  if (len + 1 > ARENA_BLOCK / 4) {
    d = vt_malloc(len + 1);
  } else {
    if (len + 1 > t->avail) {
      char *blk = vt_malloc(ARENA_BLOCK);
      if (!blk) return NULL;
      memcpy(blk, &t->arena, sizeof t->arena);
      t->arena = blk;
      t->used = sizeof(char *);
      t->avail = ARENA_BLOCK - t->used;
    }
    d = t->arena + t->used;
    t->used += len + 1;
    t->avail -= len + 1;
  }
  if (d) {
    memcpy(d, s, len);
    d[len] = '\0';
  }
  return d;
}

static int rehash(vt_names *t) {
  uint32_t cap = t->mask ? (t->mask + 1) * 2 : 64, i;
  uint32_t *slots = vt_calloc(cap, sizeof *slots);
  if (!slots) return 0;
  for (i = 0; i < t->n; i++) {
    uint32_t j = t->v[i].hash & (cap - 1);
    while (slots[j]) j = (j + 1) & (cap - 1);
    slots[j] = i + 1;
  }
  vt_free(t->slots);
  t->slots = slots;
  t->mask = cap - 1;
  return 1;
}

int64_t vt_names_intern(vt_names *t, const char *s, size_t len) {
  uint32_t h, j;
  char *copy;
  if (len > UINT32_MAX - 1) return -1;
  h = hash_bytes(s, len);
  if (t->mask) {
    for (j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
      const vt_name *nm = &t->v[t->slots[j] - 1];
      if (nm->hash == h && nm->len == len && memcmp(nm->s, s, len) == 0)
        return t->slots[j] - 1;
    }
  }
  if (t->n == UINT32_MAX - 1) return -1;
  if ((t->n + 1) * 2 > (t->mask ? t->mask + 1 : 0)) {
    if (!rehash(t)) return -1;
  }
  if (t->n == t->cap) {
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    vt_name *v = vt_realloc(t->v, cap * sizeof *v);
    if (!v) return -1;
    t->v = v;
    t->cap = cap;
  }
  copy = arena_copy(t, s, len);
  if (!copy) return -1;
  t->v[t->n].s = copy;
  t->v[t->n].len = (uint32_t)len;
  t->v[t->n].hash = h;
  for (j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
  }
  t->slots[j] = t->n + 1;
  return t->n++;
}
