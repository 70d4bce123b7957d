// libFuzzer's driver, for an executable whose `main` is its own (SwiftPM names an executable
// module's entry point itself, so libFuzzer's `main` cannot be the one that runs).
#include <stddef.h>
#include <stdint.h>

typedef int (*LLVMFuzzerCallback)(const uint8_t *data, size_t size);

/// Runs libFuzzer with the command line given; defined by libFuzzer (-sanitize=fuzzer).
int LLVMFuzzerRunDriver(int *argc, char ***argv, LLVMFuzzerCallback callback);
