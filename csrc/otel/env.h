/*
 * env.h: the OpenTelemetry environment variables vmtrace reads
 * (csrc/otel/env.c): resource attributes, the service name, span limits,
 * the TRACEPARENT/TRACESTATE a parent process hands down.
 */
#ifndef VT_ENV_H
#define VT_ENV_H

#include "vmtrace.h"

/* The value of an environment variable, NULL when unset or empty. */
const char *vt_env(const char *name);
/* Add the pairs of a "k=v,k2=v2" list (percent-decoded, spaces trimmed) as
 * keys and string values to the object being built in b. */
void vt_env_pairs(vt_vb *b, const char *raw);
/* The resource attributes: OTEL_RESOURCE_ATTRIBUTES overlaid with `extra`
 * (an object, or NULL), into b as an object. */
void vt_env_resource(vt_vb *b, const vt_value *extra);
/* The service name: `given`, else OTEL_SERVICE_NAME, else the resource's
 * service.name (a string of `resource`), else NULL. The result may point
 * into resource. */
const char *vt_env_service_name(const char *given, const vt_value *resource, char *buf,
                                size_t bufsize);
/* The span limits of the OpenTelemetry SDK specification from the
 * environment (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT, OTEL_ATTRIBUTE_COUNT_LIMIT,
 * OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT,
 * OTEL_SPAN_EVENT_COUNT_LIMIT, OTEL_SPAN_LINK_COUNT_LIMIT), defaults 128,
 * no limit, 128, 128. A malformed value names the variable in *bad. */
void vt_env_limits(vt_limits *l, const char **bad);
/* Which limits a script set (configure{}, otlp.start{}): bits of a mask. */
#define VT_LIMIT_ATTRIBUTE_COUNT 1u
#define VT_LIMIT_ATTRIBUTE_VALUE_LENGTH 2u
#define VT_LIMIT_EVENT_COUNT 4u
#define VT_LIMIT_LINK_COUNT 8u
/* The span limits that apply: those of `given` whose bit is in `mask` win
 * over the environment's, which win over the defaults (vt_env_limits; a
 * malformed variable named in *bad is passed over). */
void vt_limits_resolve(vt_limits *l, const vt_limits *given, unsigned mask, const char **bad);

#endif
