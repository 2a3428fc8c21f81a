/*
 * replay.c: runs a fuzz harness (fuzz_ops.c or fuzz_reader.c) on the files
 * named on the command line, without libFuzzer: the regression tests for
 * what the fuzzers once found, and a smoke test of their seed corpora. One
 * TAP line per file; a crash is a failure the harness's aborts or the
 * sanitizers (make asan, make valgrind) make loud.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  int i, failed = 0;
  for (i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    uint8_t *buf = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
      LLVMFuzzerTestOneInput(buf, (size_t)n);
      printf("ok %d - replays %s\n", i, argv[i]);
    } else {
      printf("not ok %d - cannot read %s\n", i, argv[i]);
      failed = 1;
    }
    free(buf);
    if (f) fclose(f);
  }
  printf("1..%d\n", argc - 1);
  return failed;
}
