/* libFuzzer entry for every target: each input goes through the target's
 * harness (harness.h; meson.build pairs this file with one harness per
 * fuzz_<target> binary); a finding aborts, which libFuzzer reports as a
 * crash with the input. */
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
