/*
 * otel.h: OpenTelemetry and W3C ids, without a collector: trace ids, the
 * traceparent and tracestate headers, exported span ids and their inverse,
 * the sampling decision, hex. Pure functions over bytes (csrc/otel/otel.c).
 */
#ifndef VT_OTEL_H
#define VT_OTEL_H

#include "vmtrace.h"

/* A new trace id: 16 bytes of a uuid v7, its text "trace_<uuid>", and a
 * random salt for the exported span ids. */
void vt_trace_id_new(unsigned char bytes[16], char text[48], uint64_t *salt);
/* "trace_<uuid>" of 16 bytes. */
void vt_trace_id_text(const unsigned char bytes[16], char text[48]);
/* The 16 bytes of a trace id written as "trace_<uuid>", a uuid or 32 hex
 * digits (either case); 0 when it is none of them or all zero. */
int vt_trace_id_parse(const char *s, size_t len, unsigned char bytes[16]);
/* The 16 bytes of a trace id that names none ("trace_x", from a file another
 * tool wrote): a hash of its text laid out as a uuid v8, so never all zero;
 * the same text always gives the same bytes. */
void vt_trace_id_derive(const char *s, size_t len, unsigned char bytes[16]);

/* Lowercase hex: 2n digits of n bytes; 16 digits of a 64-bit id. */
void vt_hex(const unsigned char *p, size_t n, char *out);
void vt_hex64(uint64_t v, char out[17]);
/* n hex digits (either case) at s into *out; 0 when not hex. */
int vt_unhex64(const char *s, size_t n, uint64_t *out);

/* "00-<trace>-<span>-<flags>" (55 chars + NUL). */
void vt_traceparent_format(const unsigned char trace[16], uint64_t span,
                           unsigned flags, char out[56]);
/* Is s a tracestate header value the W3C grammar allows (at most 32
 * list-members, each key once)? */
int vt_tracestate_valid(const char *s, size_t len);
/* The tracestate to keep and pass on: s as received when valid and at most
 * VT_TRACESTATE_MAX (512) characters; a longer valid one loses whole entries,
 * those over 128 characters first, then from the end, until it fits (W3C).
 * 1, or 0 with out "" for an invalid header. */
int vt_tracestate_keep(const char *s, size_t len, char out[VT_TRACESTATE_MAX + 1]);

/* The local id behind an exported span id, given the salt. */
vt_id vt_otel_local_id(uint64_t salt, uint64_t span_id);
/* The salt behind one (local id, exported id) pair. */
uint64_t vt_otel_salt_of(vt_id id, uint64_t span_id);

/* Is a trace with this id sampled at `ratio` (0..1)? */
int vt_trace_sampled(const unsigned char trace[16], double ratio);

#endif
