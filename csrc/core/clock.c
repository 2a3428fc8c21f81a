/*
 * clock.c: the monotonic and wall clocks, and the collector's mock clock stack
 * (the seed's clock_mock: mocks nest, the innermost is active, advancing moves
 * its wall and monotonic readings together).
 */
#include <stdlib.h>
#include <time.h>

#include "core.h"

int64_t vt_clock_mono_ns(void) { return vt_mono_ns(); }

int64_t vt_clock_wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int vt_collector_mock_push(vt_collector *c, int64_t wall_ms) {
  if (wall_ms < 0 || wall_ms >= VT_MAX_TIME_MS) return VT_EINVAL;
  if (!vt_grow((void **)&c->mocks, &c->capmocks, c->nmocks + 1, sizeof *c->mocks))
    return VT_ENOMEM;
  c->mocks[c->nmocks].wall_ms = wall_ms;
  c->mocks[c->nmocks].mono_ms = 0;
  c->nmocks++;
  return VT_OK;
}

int vt_collector_mock_advance(vt_collector *c, int64_t ms, int64_t *wall_ms) {
  vt_mock *m;
  if (!c->nmocks) return VT_ENOMOCK;
  m = &c->mocks[c->nmocks - 1];
  if (ms < 0 || ms >= VT_MAX_TIME_MS - m->wall_ms) return VT_EINVAL;
  m->wall_ms += ms;
  m->mono_ms += ms;
  if (wall_ms) *wall_ms = m->wall_ms;
  return VT_OK;
}

int vt_collector_mock_pop(vt_collector *c) {
  if (!c->nmocks) return VT_ENOMOCK;
  c->nmocks--;
  return VT_OK;
}

int vt_collector_mocked(const vt_collector *c) { return c->nmocks > 0; }

int64_t vt_collector_now_ms(const vt_collector *c) {
  if (c->nmocks) return c->mocks[c->nmocks - 1].wall_ms;
  return vt_clock_wall_ns() / 1000000;
}

int64_t vt_collector_monotonic_ms(const vt_collector *c) {
  if (c->nmocks) return c->mocks[c->nmocks - 1].mono_ms;
  return (vt_clock_mono_ns() - c->epoch_ns) / 1000000;
}
