/* libFuzzer target: every input goes through the shared harness (harness.h)
 * into kyufu_storage_apply_bytes, then the invariants are checked; a
 * violation aborts, which libFuzzer reports as a crash with the input. */
#include <stdlib.h>

#include "harness.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fini(void)
{
    fz_fini();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_init();
    atexit(fini);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_one(data, size);
    return 0;
}
