/*
 * replay.c: runs a fuzz harness (fuzz_ops.c, fuzz_reader.c or
 * fuzz_traceparent.c) on the files named on the command line, without
 * libFuzzer: the regression tests for what the fuzzers once found, and
 * tests on their seed corpora. One TAP line per file: `not ok` when the run
 * broke a property the harness checks (the first one is named) or checked
 * none; a crash is a failure too, which the sanitizers (make asan, make
 * valgrind) make loud.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define VT_FUZZ_NO_IMPL
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  int i, failed = 0;
  vt_fuzz_set_abort(0);
  for (i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
      char reason[512];
      unsigned long checks = 0;
      int violated;
      vt_fuzz_check_failed(NULL, 0, NULL); /* start counting afresh */
      LLVMFuzzerTestOneInput(buf, (size_t)n);
      violated = vt_fuzz_check_failed(reason, sizeof reason, &checks);
      if (violated) {
        printf("not ok %d - replays %s\n# %d properties violated; the first: %s\n", i, argv[i],
               violated, reason);
        failed = 1;
      } else if (!checks) {
        printf("not ok %d - replays %s\n# no property was checked\n", i, argv[i]);
        failed = 1;
      } else {
        printf("ok %d - replays %s (%lu properties held)\n", i, argv[i], checks);
      }
    } else {
      printf("not ok %d - cannot read %s\n", i, argv[i]);
      failed = 1;
    }
    fflush(stdout);
    free(buf);
    if (f) fclose(f);
  }
  printf("1..%d\n", argc - 1);
  return failed;
}
