/*
 * file.c: atomic replacement of export files and errno names. A temporary
 * file is made with mkstemp (O_EXCL: a planted file or symlink at its name is
 * never followed) beside the target, named "<target>.vmtrace-tmp-XXXXXX" so
 * that one left by a killed process is recognisable, given the mode of the
 * file it replaces (or the umask's default for a new one), and renamed over
 * the target once complete. rename() replaces a symlink at the target itself,
 * never the file it points to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "io/file.h"

static mode_t default_mode(void) {
  mode_t m = umask(022); /* read it; set it back at once */
  umask(m);
  return 0666 & ~m;
}

int vt_replace_open(vt_replace *r, const char *path) {
  struct stat st, lst;
  size_t n = strlen(path);
  int fd, e, exists = stat(path, &st) == 0;
  memset(r, 0, sizeof *r);
  r->path = path;
  if (exists && !S_ISREG(st.st_mode) && lstat(path, &lst) == 0 && !S_ISLNK(lst.st_mode)) {
    r->f = fopen(path, "wb"); /* /dev/stdout, a fifo: written as it is */
    return r->f ? 0 : (errno ? errno : EIO);
  }
  if (!(r->tmp = vt_malloc(n + sizeof VT_TMP_MARK + 7))) return ENOMEM;
  memcpy(r->tmp, path, n);
  memcpy(r->tmp + n, VT_TMP_MARK "XXXXXX", sizeof VT_TMP_MARK + 6);
  fd = mkstemp(r->tmp);
  if (fd < 0) {
    e = errno;
    vt_free(r->tmp);
    r->tmp = NULL;
    return e ? e : EIO;
  }
  if (fchmod(fd, exists && S_ISREG(st.st_mode) ? (st.st_mode & 07777) : default_mode()) != 0 ||
      !(r->f = fdopen(fd, "wb"))) {
    e = errno;
    close(fd);
    unlink(r->tmp);
    vt_free(r->tmp);
    r->tmp = NULL;
    return e ? e : EIO;
  }
  return 0;
}

int vt_replace_close(vt_replace *r, int ok) {
  int e = 0;
  if (!r->f) return 0;
  if (fclose(r->f) != 0) e = errno ? errno : EIO;
  r->f = NULL;
  if (r->tmp) {
    if (ok && !e && rename(r->tmp, r->path) != 0) e = errno ? errno : EIO;
    if (!ok || e) unlink(r->tmp);
    vt_free(r->tmp);
    r->tmp = NULL;
  }
  return e;
}

const char *vt_errno_name(int e) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *s = strerrorname_np(e);
  return s ? s : "EUNKNOWN";
#else
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOSPC: return "ENOSPC";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case EROFS: return "EROFS";
    case EIO: return "EIO";
    case ENOMEM: return "ENOMEM";
    case EPIPE: return "EPIPE";
    case EINVAL: return "EINVAL";
    default: return "EUNKNOWN";
  }
#endif
}
