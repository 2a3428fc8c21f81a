/*
 * export_otlp.c: OTLP/JSON, an ExportTraceServiceRequest as an OpenTelemetry
 * Collector's otlphttp receiver takes it: hex trace and span ids, enums as
 * integers, 64-bit integers as decimal strings, typed attributes. llm_call and
 * tool_call spans also carry the GenAI semantic-convention attributes, and
 * every span carries vmtrace.kind.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* OTel SpanKind: INTERNAL 1, SERVER 2, CLIENT 3, PRODUCER 4, CONSUMER 5. */
static int otel_kind(vt_kind k) {
  switch (k) {
    case VT_LLM_CALL: return 3;
    case VT_POOL_SUBMIT:
    case VT_CHANNEL_EMIT: return 4;
    case VT_POOL_DEQUEUE:
    case VT_CHANNEL_MATCH: return 5;
    default: return 1;
  }
}

static void any_value(vt_buf *b, const cJSON *v);

static void key_value(vt_buf *b, const char *key, size_t klen, const cJSON *v) {
  vt_buf_puts(b, "{\"key\":");
  vt_json_write_str(b, key, klen);
  vt_buf_puts(b, ",\"value\":");
  any_value(b, v);
  vt_buf_putc(b, '}');
}

/* Key of a stored object item, decoded. */
static void stored_key_value(vt_buf *b, const cJSON *it) {
  const char *k = it->string ? it->string : "";
  if (!strchr(k, (char)0xC0)) {
    key_value(b, k, strlen(k), it);
  } else {
    char *raw = vt_malloc(strlen(k) + 1);
    if (!raw) {
      b->failed = 1;
      return;
    }
    key_value(b, raw, vt_str_decode(k, raw), it);
    vt_free(raw);
  }
}

static void any_value(vt_buf *b, const cJSON *v) {
  const cJSON *it;
  switch (v ? v->type & 0xFF : cJSON_NULL) {
    case cJSON_False: vt_buf_puts(b, "{\"boolValue\":false}"); break;
    case cJSON_True: vt_buf_puts(b, "{\"boolValue\":true}"); break;
    case cJSON_Number:
      vt_buf_puts(b, "{\"doubleValue\":");
      vt_json_write(b, v);
      vt_buf_putc(b, '}');
      break;
    case cJSON_Raw:
      vt_buf_puts(b, "{\"intValue\":\"");
      vt_buf_puts(b, v->valuestring);
      vt_buf_puts(b, "\"}");
      break;
    case cJSON_String:
      vt_buf_puts(b, "{\"stringValue\":");
      vt_json_write(b, v);
      vt_buf_putc(b, '}');
      break;
    case cJSON_Array:
      vt_buf_puts(b, "{\"arrayValue\":{\"values\":[");
      for (it = v->child; it; it = it->next) {
        if (it != v->child) vt_buf_putc(b, ',');
        any_value(b, it);
      }
      vt_buf_puts(b, "]}}");
      break;
    case cJSON_Object:
      vt_buf_puts(b, "{\"kvlistValue\":{\"values\":[");
      for (it = v->child; it; it = it->next) {
        if (it != v->child) vt_buf_putc(b, ',');
        stored_key_value(b, it);
      }
      vt_buf_puts(b, "]}}");
      break;
    default: vt_buf_puts(b, "{}"); break; /* null: an empty value */
  }
}

/* Attribute list writer: remembers whether a comma is due. */
typedef struct attrs {
  vt_buf *b;
  int n;
} attrs;

static void attr_sep(attrs *a) {
  if (a->n++) vt_buf_putc(a->b, ',');
}

static void attr_str(attrs *a, const char *k, const char *v, size_t vlen) {
  attr_sep(a);
  vt_buf_puts(a->b, "{\"key\":\"");
  vt_buf_puts(a->b, k);
  vt_buf_puts(a->b, "\",\"value\":{\"stringValue\":");
  vt_json_write_str(a->b, v, vlen);
  vt_buf_puts(a->b, "}}");
}

static void attr_item(attrs *a, const char *k, const cJSON *v) {
  attr_sep(a);
  key_value(a->b, k, strlen(k), v);
}

/* The GenAI attributes for an llm_call / tool_call span. */
static void genai(attrs *a, const vt_span_view *v) {
  const cJSON *m = v->metadata, *it;
  static const struct {
    const char *meta, *attr;
  } tokens[] = {{"input_tokens", "gen_ai.usage.input_tokens"},
                {"output_tokens", "gen_ai.usage.output_tokens"},
                {"cache_read_tokens", "gen_ai.usage.cache_read.input_tokens"},
                {"cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"}};
  size_t i;
  if (v->kind == VT_LLM_CALL) {
    attr_str(a, "gen_ai.operation.name", "chat", 4);
    it = vt_json_obj_get(m, "provider", 8);
    if (cJSON_IsString(it) && it->valuestring[0]) attr_item(a, "gen_ai.provider.name", it);
    it = vt_json_obj_get(m, "model", 5);
    if (cJSON_IsString(it) && it->valuestring[0]) attr_item(a, "gen_ai.request.model", it);
    for (i = 0; i < sizeof tokens / sizeof tokens[0]; i++) {
      it = vt_json_obj_get(m, tokens[i].meta, strlen(tokens[i].meta));
      if (vt_json_is_int(it, NULL)) attr_item(a, tokens[i].attr, it);
    }
  } else if (v->kind == VT_TOOL_CALL) {
    attr_str(a, "gen_ai.operation.name", "execute_tool", 12);
    it = vt_json_obj_get(m, "tool_name", 9);
    if (cJSON_IsString(it)) attr_item(a, "gen_ai.tool.name", it);
    else attr_str(a, "gen_ai.tool.name", v->name, v->name_len);
  }
}

/* 32 hex digits of a trace id given as "trace_<uuid>", a uuid or hex. */
static int trace_hex(const char *s, size_t len, char out[33]) {
  size_t i, n = 0;
  if (len >= 6 && memcmp(s, "trace_", 6) == 0) s += 6, len -= 6;
  for (i = 0; i < len; i++) {
    char ch = s[i];
    if (ch == '-') continue;
    if (n == 32 || !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                     (ch >= 'A' && ch <= 'F')))
      return 0;
    out[n++] = (char)(ch >= 'A' && ch <= 'F' ? ch + 32 : ch);
  }
  out[n] = '\0';
  return n == 32 && strspn(out, "0") != 32;
}

static void links(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v) {
  size_t i;
  int n = 0;
  char own[33];
  for (i = 0; i < 16; i++) {
    static const char hexd[] = "0123456789abcdef";
    own[2 * i] = hexd[x->trace[i] >> 4];
    own[2 * i + 1] = hexd[x->trace[i] & 15];
  }
  own[32] = '\0';
  for (i = 0; i < v->nlinks; i++) {
    const vt_link *l = &v->links[i];
    char th[33], sh[17];
    size_t j;
    int dec = l->span_id_len > 0 && l->span_id_len <= 19, hex = l->span_id_len == 16;
    if (!trace_hex(l->trace_id, l->trace_id_len, th)) continue;
    for (j = 0; j < l->span_id_len; j++) {
      char ch = l->span_id[j];
      if (ch < '0' || ch > '9') dec = 0;
      if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) hex = 0;
    }
    if (dec && strcmp(th, own) == 0) { /* a local span: its exported id */
      vt_hex64(vt_otel_id(x->salt, (vt_id)strtoull(l->span_id, NULL, 10)), sh);
    } else if (hex && strspn(l->span_id, "0") != 16) {
      memcpy(sh, l->span_id, 16);
    } else {
      continue; /* not an id a collector could use */
    }
    vt_buf_puts(b, n++ ? ",{\"traceId\":\"" : "{\"traceId\":\"");
    vt_buf_put(b, th, 32);
    vt_buf_puts(b, "\",\"spanId\":\"");
    vt_buf_put(b, sh, 16);
    vt_buf_puts(b, "\",\"attributes\":[");
    if (l->attributes) {
      const cJSON *it;
      for (it = l->attributes->child; it; it = it->next) {
        if (it != l->attributes->child) vt_buf_putc(b, ',');
        stored_key_value(b, it);
      }
    }
    vt_buf_puts(b, "]}");
  }
}

static void put_nanos(vt_buf *b, const char *key, int64_t ns) {
  vt_buf_puts(b, key);
  vt_buf_putc(b, '"');
  vt_buf_put_u64(b, ns < 0 ? 0 : (uint64_t)ns);
  vt_buf_putc(b, '"');
}

void vt_otlp_write_span(vt_buf *b, const vt_otlp_ctx *x, const vt_span_view *v) {
  attrs a;
  const cJSON *it, *status;
  size_t i;
  vt_buf_puts(b, "{\"traceId\":\"");
  vt_buf_put_hex(b, x->trace, 16);
  vt_buf_puts(b, "\",\"spanId\":\"");
  vt_buf_put_hex64(b, vt_otel_id(x->salt, v->id));
  vt_buf_putc(b, '"');
  if (v->parent || x->remote_parent) { /* a root's parent: the remote span */
    vt_buf_puts(b, ",\"parentSpanId\":\"");
    vt_buf_put_hex64(b, v->parent ? vt_otel_id(x->salt, v->parent) : x->remote_parent);
    vt_buf_putc(b, '"');
  }
  vt_buf_puts(b, ",\"name\":");
  vt_json_write_str(b, v->name, v->name_len);
  vt_buf_puts(b, ",\"kind\":");
  vt_buf_put_i64(b, otel_kind(v->kind));
  put_nanos(b, ",\"startTimeUnixNano\":", v->start_unix_ns);
  put_nanos(b, ",\"endTimeUnixNano\":", v->start_unix_ns + v->duration_ns);
  vt_buf_puts(b, ",\"attributes\":[");
  a.b = b;
  a.n = 0;
  attr_str(&a, "vmtrace.kind", vt_kind_name((int)v->kind),
           strlen(vt_kind_name((int)v->kind)));
  genai(&a, v);
  if (v->metadata)
    for (it = v->metadata->child; it; it = it->next) {
      attr_sep(&a);
      stored_key_value(b, it);
    }
  vt_buf_putc(b, ']');
  if (v->nevents) {
    vt_buf_puts(b, ",\"events\":[");
    for (i = 0; i < v->nevents; i++) {
      const vt_event *e = &v->events[i];
      if (i) vt_buf_putc(b, ',');
      put_nanos(b, "{\"timeUnixNano\":", e->time_unix_ns);
      vt_buf_puts(b, ",\"name\":");
      vt_json_write_str(b, e->name, e->name_len);
      vt_buf_puts(b, ",\"attributes\":[");
      if (e->attributes)
        for (it = e->attributes->child; it; it = it->next) {
          if (it != e->attributes->child) vt_buf_putc(b, ',');
          stored_key_value(b, it);
        }
      vt_buf_puts(b, "]}");
    }
    vt_buf_putc(b, ']');
  }
  if (v->nlinks) {
    vt_buf_puts(b, ",\"links\":[");
    links(b, x, v);
    vt_buf_putc(b, ']');
  }
  status = vt_json_obj_get(v->metadata, "status", 6);
  if (cJSON_IsString(status) && strcmp(status->valuestring, "error") == 0) {
    const cJSON *msg = vt_json_obj_get(v->metadata, "error", 5);
    vt_buf_puts(b, ",\"status\":{\"code\":2");
    if (cJSON_IsString(msg)) {
      vt_buf_puts(b, ",\"message\":");
      vt_json_write(b, msg);
    }
    vt_buf_putc(b, '}');
  }
  vt_buf_putc(b, '}');
}

void vt_otlp_ctx_of(const vt_collector *c, vt_otlp_ctx *x) {
  memcpy(x->trace, c->trace_bytes, 16);
  x->salt = c->span_salt;
  x->remote_parent = c->remote_parent;
}

void vt_otlp_write_head(vt_buf *b, const vt_export_opts *o, uint64_t dropped) {
  const char *service = o->service_name ? o->service_name : "unknown_service";
  attrs a;
  vt_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  a.b = b;
  a.n = 0;
  attr_str(&a, "service.name", service, strlen(service));
  attr_str(&a, "telemetry.sdk.name", "vmtrace", 7);
  attr_str(&a, "telemetry.sdk.language", "lua", 3);
  attr_str(&a, "telemetry.sdk.version", VMTRACE_VERSION, strlen(VMTRACE_VERSION));
  attr_sep(&a); /* spans the collector could not keep */
  vt_buf_puts(b, "{\"key\":\"vmtrace.dropped_spans\",\"value\":{\"intValue\":\"");
  vt_buf_put_u64(b, dropped);
  vt_buf_puts(b, "\"}}");
  if (o->resource && cJSON_IsObject(o->resource)) {
    const cJSON *it;
    for (it = o->resource->child; it; it = it->next) {
      const char *k = it->string ? it->string : "";
      if (!strcmp(k, "service.name") || !strncmp(k, "telemetry.sdk.", 14) ||
          !strcmp(k, "vmtrace.dropped_spans"))
        continue;
      attr_sep(&a);
      stored_key_value(b, it);
    }
  }
  vt_buf_puts(b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"vmtrace\",\"version\":\"" VMTRACE_VERSION
                 "\"},\"spans\":[");
}

void vt_otlp_write_tail(vt_buf *b) { vt_buf_puts(b, "\n]}]}]}\n"); }

int vt_export_otlp(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  vt_otlp_ctx x;
  size_t i;
  vt_otlp_ctx_of(c, &x);
  vt_otlp_write_head(b, o, c->dropped);
  for (i = 0; i < c->ndone && !b->failed; i++) {
    vt_span_view v;
    vt_collector_get(c, c->done[i], &v);
    vt_buf_put(b, i ? ",\n" : "\n", i ? 2 : 1);
    vt_otlp_write_span(b, &x, &v);
  }
  vt_otlp_write_tail(b);
  return b->failed ? VT_ENOMEM : VT_OK;
}
