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

#endif
