/*
 * console.h: the console exporter (csrc/io/console.c): one line on a file
 * descriptor for each finished span of a sampled trace.
 */
#ifndef VT_CONSOLE_H
#define VT_CONSOLE_H

#include "vmtrace.h"

typedef struct vt_console vt_console;
/* Write each span of `c` that finishes from now on as one line to fd (which
 * stays open: stderr). NULL when out of memory. */
vt_console *vt_console_open(vt_collector *c, int fd);
/* Stop and free (NULL: nothing). */
void vt_console_close(vt_console *k);

#endif
