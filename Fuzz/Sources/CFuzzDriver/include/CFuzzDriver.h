#ifndef ZLABEL_CFUZZDRIVER_H
#define ZLABEL_CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for programs that bring their own `main`. Defined by the fuzzer runtime that
/// `-sanitize=fuzzer` links in; `argc`/`argv` are libFuzzer's command line.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
