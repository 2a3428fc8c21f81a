/*
 * env.c: the OpenTelemetry environment variables (see env.h), read in one
 * place: the binding and the exporter module ask here.
 */
#include <stdlib.h>
#include <string.h>

#include "otel/env.h"

const char *vt_env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

static int hexv(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode s[0..n) into out (at least n bytes); the length. */
static size_t decode(const char *s, size_t n, char *out) {
  size_t i, j = 0;
  for (i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
      out[j++] = (char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
      i += 2;
    } else {
      out[j++] = s[i];
    }
  }
  return j;
}

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

void vt_env_pairs(vt_vb *b, const char *raw) {
  const char *p = raw;
  if (!raw) return;
  while (*p) {
    const char *e = strchr(p, ','), *eq;
    size_t n = e ? (size_t)(e - p) : strlen(p);
    eq = memchr(p, '=', n);
    if (eq) {
      const char *k = p, *v = eq + 1;
      size_t kn = (size_t)(eq - p), vn = n - kn - 1;
      trim(&k, &kn);
      trim(&v, &vn);
      if (kn) {
        char *tmp = vt_malloc(kn + vn + 2);
        if (!tmp) {
          b->failed = 1;
          return;
        }
        vt_vb_key(b, tmp, decode(k, kn, tmp));
        vt_vb_str(b, tmp, decode(v, vn, tmp));
        vt_free(tmp);
      }
    }
    if (!e) break;
    p = e + 1;
  }
}

void vt_env_resource(vt_vb *b, const vt_value *extra) {
  vt_vb_obj(b);
  vt_env_pairs(b, vt_env("OTEL_RESOURCE_ATTRIBUTES"));
  if (extra && vt_value_type(extra) == VT_OBJ) { /* later keys win in the builder */
    vt_iter it;
    const vt_value *v;
    const char *k;
    size_t kl;
    vt_value_iter(extra, &it);
    while ((v = vt_iter_next(&it, &k, &kl)) != NULL) {
      vt_vb_key(b, k, kl);
      vt_vb_copy(b, v);
    }
  }
  vt_vb_end(b);
}

const char *vt_env_service_name(const char *given, const vt_value *resource, char *buf,
                                size_t bufsize) {
  const vt_value *v;
  if (given) return given;
  if (vt_env("OTEL_SERVICE_NAME")) return vt_env("OTEL_SERVICE_NAME");
  v = vt_value_get(resource, "service.name", 12);
  if (v && vt_value_type(v) == VT_STR) {
    size_t n;
    const char *s = vt_value_str(v, &n);
    if (n >= bufsize) n = bufsize - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
  }
  return NULL;
}

static size_t env_size(const char *a, const char *b, size_t def, const char **bad) {
  const char *names[2], *v;
  int i;
  names[0] = a;
  names[1] = b;
  for (i = 0; i < 2; i++) {
    char *end;
    long long n;
    if (!names[i] || !(v = vt_env(names[i]))) continue;
    n = strtoll(v, &end, 10);
    if (*end || n < 0) {
      if (bad && !*bad) *bad = names[i];
      continue;
    }
    return (size_t)n;
  }
  return def;
}

void vt_env_limits(vt_limits *l, const char **bad) {
  l->attribute_count = env_size("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", 128, bad);
  l->attribute_value_length = env_size("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                                       "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", 0, bad);
  l->event_count = env_size("OTEL_SPAN_EVENT_COUNT_LIMIT", NULL, 128, bad);
  l->link_count = env_size("OTEL_SPAN_LINK_COUNT_LIMIT", NULL, 128, bad);
}

void vt_limits_resolve(vt_limits *l, const vt_limits *given, unsigned mask, const char **bad) {
  vt_env_limits(l, bad);
  if (mask & VT_LIMIT_ATTRIBUTE_COUNT) l->attribute_count = given->attribute_count;
  if (mask & VT_LIMIT_ATTRIBUTE_VALUE_LENGTH) l->attribute_value_length = given->attribute_value_length;
  if (mask & VT_LIMIT_EVENT_COUNT) l->event_count = given->event_count;
  if (mask & VT_LIMIT_LINK_COUNT) l->link_count = given->link_count;
}
