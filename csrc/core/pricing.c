/*
 * pricing.c: the price catalog and the cost rule. Prices are USD per million
 * tokens for input, output, cache reads and cache writes, per provider and
 * model; a dated or versioned model id takes the price of the longest catalog
 * entry it starts with where the next character is '-' or '@' (so
 * gpt-4o-mini-2024-07-18 takes gpt-4o-mini, and gpt-5.1 does not take
 * gpt-5), and an exact entry wins.
 * The default catalog is data (lua/vmtrace/prices.lua) loaded into it.
 */
#include <string.h>

#include "util.h"

typedef struct entry {
  char *provider, *model;
  size_t plen, mlen;
  vt_price price;
} entry;

struct vt_prices {
  entry *v;
  size_t n, cap;
};

vt_prices *vt_prices_new(void) { return vt_calloc(1, sizeof(vt_prices)); }

void vt_prices_clear(vt_prices *p) {
  size_t i;
  for (i = 0; i < p->n; i++) {
    vt_free(p->v[i].provider);
    vt_free(p->v[i].model);
  }
  p->n = 0;
}

void vt_prices_free(vt_prices *p) {
  if (!p) return;
  vt_prices_clear(p);
  vt_free(p->v);
  vt_free(p);
}

static int same(const char *a, size_t an, const char *b, size_t bn) {
  return an == bn && memcmp(a, b, an) == 0;
}

int vt_prices_set(vt_prices *p, const char *provider, size_t plen, const char *model, size_t mlen,
                  const vt_price *price) {
  size_t i;
  entry *e;
  for (i = 0; i < p->n; i++)
    if (same(p->v[i].provider, p->v[i].plen, provider, plen) &&
        same(p->v[i].model, p->v[i].mlen, model, mlen)) {
      p->v[i].price = *price;
      return VT_OK;
    }
  if (!vt_grow((void **)&p->v, &p->cap, p->n + 1, sizeof *p->v)) return VT_ENOMEM;
  e = &p->v[p->n];
  e->provider = vt_memdup(provider, plen);
  e->model = vt_memdup(model, mlen);
  if (!e->provider || !e->model) {
    vt_free(e->provider);
    vt_free(e->model);
    return VT_ENOMEM;
  }
  e->plen = plen;
  e->mlen = mlen;
  e->price = *price;
  p->n++;
  return VT_OK;
}

const vt_price *vt_prices_find(const vt_prices *p, const char *provider, size_t plen,
                               const char *model, size_t mlen, const char **matched) {
  const entry *best = NULL;
  size_t i;
  for (i = 0; i < p->n; i++) {
    const entry *e = &p->v[i];
    if (plen && !same(e->provider, e->plen, provider, plen)) continue;
    if (same(e->model, e->mlen, model, mlen)) {
      best = e;
      break; /* an exact entry wins */
    }
    if (e->mlen && e->mlen < mlen && memcmp(e->model, model, e->mlen) == 0 &&
        (model[e->mlen] == '-' || model[e->mlen] == '@') && (!best || e->mlen > best->mlen))
      best = e;
  }
  if (matched) *matched = best ? best->model : NULL;
  return best ? &best->price : NULL;
}

double vt_price_cost(const vt_price *price, const vt_usage *u) {
  return ((double)u->input * price->input + (double)u->output * price->output +
          (double)u->cache_read * price->cache_read + (double)u->cache_write * price->cache_write) /
         1e6;
}
