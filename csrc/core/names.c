/*
 * names.c: interned span names. Agents repeat a handful of names millions of
 * times, so a span stores a 32-bit index and each distinct name is kept once.
 * Names are reference-counted (every span holding one, and the binding's
 * name cache), so a program that makes millions of distinct names under
 * max_spans or take_spans keeps flat memory: a name goes with its last user
 * and its index is reused. Open addressing, linear probing with
 * backward-shift deletion, power-of-two table.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

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
  uint32_t i;
  for (i = 0; i < t->n; i++) vt_free(t->v[i].s);
  vt_free(t->v);
  vt_free(t->slots);
  vt_names_init(t);
}

static int rehash(vt_names *t, uint32_t cap) {
  uint32_t *slots = vt_calloc(cap, sizeof *slots), i;
  if (!slots) return 0;
  for (i = 0; i < t->n; i++) {
    uint32_t j;
    if (!t->v[i].s) continue;
    for (j = t->v[i].hash & (cap - 1); slots[j]; j = (j + 1) & (cap - 1)) {
    }
    slots[j] = i + 1;
  }
  vt_free(t->slots);
  t->slots = slots;
  t->mask = cap - 1;
  return 1;
}

int64_t vt_names_intern(vt_names *t, const char *s, size_t len) {
  uint32_t h, j, i;
  char *copy;
  if (len > UINT32_MAX - 1) return -1;
  h = hash_bytes(s, len);
  if (t->mask) {
    for (j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
      vt_name *nm = &t->v[t->slots[j] - 1];
      if (nm->hash == h && nm->len == len && memcmp(nm->s, s, len) == 0) {
        nm->refs++;
        return t->slots[j] - 1;
      }
    }
  }
  if ((t->live + 1) * 2 > (t->mask ? t->mask + 1 : 0) &&
      !rehash(t, t->mask ? (t->mask + 1) * 2 : 64))
    return -1;
  if (!t->free_head) {
    if (t->n == UINT32_MAX - 1) return -1;
    if (t->n == t->cap) {
      uint32_t cap = t->cap ? t->cap * 2 : 64;
      vt_name *v = vt_realloc(t->v, cap * sizeof *v);
      if (!v) return -1;
      t->v = v;
      t->cap = cap;
    }
  }
  if (!(copy = vt_memdup(s, len))) return -1;
  if (t->free_head) { /* a freed index: its hash field chains the free list */
    i = t->free_head - 1;
    t->free_head = t->v[i].hash;
  } else {
    i = t->n++;
  }
  t->v[i].s = copy;
  t->v[i].len = (uint32_t)len;
  t->v[i].hash = h;
  t->v[i].refs = 1;
  for (j = h & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
  }
  t->slots[j] = i + 1;
  t->live++;
  t->bytes += len + 1;
  return i;
}

void vt_names_release(vt_names *t, uint32_t i) {
  vt_name *nm = &t->v[i];
  uint32_t j, k;
  if (--nm->refs) return;
  for (j = nm->hash & t->mask; t->slots[j] != i + 1; j = (j + 1) & t->mask) {
  }
  /* backward-shift deletion: pull later entries of the cluster into the gap */
  for (k = (j + 1) & t->mask; t->slots[k]; k = (k + 1) & t->mask) {
    uint32_t home = t->v[t->slots[k] - 1].hash & t->mask;
    if (((k - home) & t->mask) >= ((k - j) & t->mask)) {
      t->slots[j] = t->slots[k];
      j = k;
    }
  }
  t->slots[j] = 0;
  t->bytes -= nm->len + 1;
  vt_free(nm->s);
  nm->s = NULL;
  nm->len = 0;
  nm->hash = t->free_head;
  t->free_head = i + 1;
  t->live--;
}
