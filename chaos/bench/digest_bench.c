/* kyufu-bench-digest: the applied index and state digest of stores whose
 * nodes are stopped (chaos/bench/restore_measure.py checks that the three
 * nodes of a restored cluster hold the backup's ledger):
 *
 *   kyufu-bench-digest STORE_DIR...
 *
 * One line per store: its path, applied index, digest (hex).  Exit 1 when
 * a store does not open or digest.  Run by hand, never in a suite. */
#include <stdio.h>

#include "storage.h"

int main(int argc, char **argv)
{
    int status = argc > 1 ? 0 : 2;
    for (int i = 1; i < argc; i++) {
        char err[512];
        uint8_t d[32];
        uint64_t at = 0;
        struct kyufu_storage_options o = {.path = argv[i], .no_sync = true};
        struct kyufu_storage *s = NULL;
        if (kyufu_storage_open(&o, &s, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], err);
            status = 1;
            continue;
        }
        int rv = kyufu_storage_digest(s, d, &at);
        kyufu_storage_close(s);
        if (rv != 0) {
            fprintf(stderr, "%s: %s\n", argv[i], kyufu_storage_strerror(rv));
            status = 1;
            continue;
        }
        printf("%s %llu ", argv[i], (unsigned long long)at);
        for (int k = 0; k < 32; k++) {
            printf("%02x", d[k]);
        }
        printf("\n");
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE_DIR...\n", argv[0]);
    }
    return status;
}
