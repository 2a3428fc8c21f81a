/*
 * file.h: the operating-system side of writing and reading files
 * (csrc/io/file.c): replacing a file atomically, opening what the binding is
 * given, and errno names. Nothing here knows spans.
 */
#ifndef VT_FILE_H
#define VT_FILE_H

#include <stdio.h>

/* A file being replaced: written to a temporary file in the target's
 * directory, renamed over the target when complete. A target that is not a
 * regular file (a device, a fifo) is written directly. */
typedef struct vt_replace {
  FILE *f;
  char *tmp; /* the temporary file's name, or NULL when direct */
  const char *path;
} vt_replace;

/* 0, or an errno value. */
int vt_replace_open(vt_replace *r, const char *path);
/* Close, then rename (ok) or remove (not ok) the temporary file; 0 or an
 * errno value (the first error). */
int vt_replace_close(vt_replace *r, int ok);

/* The prefix of temporary files: "<path>.vmtrace-tmp-". */
#define VT_TMP_MARK ".vmtrace-tmp-"

/* "ENOENT", "ENOSPC", ... of an errno value. */
const char *vt_errno_name(int e);

#endif
