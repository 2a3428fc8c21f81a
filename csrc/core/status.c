/*
 * status.c: the words for every status code of the core, in one place. The
 * binding raises or returns these messages and names; nothing parses them.
 */
#include "util.h"

static const struct {
  const char *name, *message;
} statuses[VT_STATUS_COUNT] = {
    {"OK", "ok"},
    {"ENOTFOUND", "no such open span"},
    {"EEXIST", "already there"},
    {"ENOMEM", "out of memory"},
    {"EINVAL", "invalid argument"},
    {"EIO", "input/output error"},
    {"ELIMIT", "limit reached"},
    {"ENOMOCK", "no mock clock is active (call vmtrace.mock_time first)"},
};

const char *vt_strerror(int status) {
  return status >= 0 && status < VT_STATUS_COUNT ? statuses[status].message
                                                 : "unknown status";
}

const char *vt_status_name(int status) {
  return status >= 0 && status < VT_STATUS_COUNT ? statuses[status].name : "EUNKNOWN";
}
