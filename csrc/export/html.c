/*
 * html.c: the self-contained HTML report (issue 13). Not written yet.
 */
#include "core/util.h"
#include "export/export.h"

int vt_export_html(const vt_collector *c, const vt_export_opts *o, vt_buf *b) {
  (void)c;
  (void)o;
  (void)b;
  return VT_EINVAL;
}
