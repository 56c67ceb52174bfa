/* kyufu-bench-backup: time and peak memory of writing one backup of an
 * existing store (docs/backup.md "Measured"), the node's own code path
 * (kyufu_backup_write on a storage snapshot) without a cluster:
 *
 *   kyufu-bench-backup [--cmk] STORE_DIR PARENT NAME CA CERT KEY KEK_FILE
 *                      [RATE]
 *
 * --cmk: the store was built by kyufu-bench-scale --cmk; the backup carries
 * the bench's cluster master key wrapped, as a keyed node's does.
 *
 * Prints one line: applied index, chunks, bytes, seconds, peak RSS (KiB,
 * getrusage ru_maxrss: the process's high-water mark).  Run by hand,
 * never in a suite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backup_format.h"
#include "bench_cmk.h"
#include "keys.h"

int main(int argc, char **argv)
{
    bool keyed = argc > 1 && strcmp(argv[1], "--cmk") == 0;
    if (keyed) {
        argv[1] = argv[0];
        argv++;
        argc--;
    }
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: %s [--cmk] STORE_DIR PARENT NAME CA CERT KEY "
                        "KEK_FILE [BYTES_PER_S]\n", argv[0]);
        return 2;
    }
    char err[512];
    uint8_t kek[KYUFU_KEYS_KEY_BYTES];
    if (kyufu_keys_kek_read(argv[7], kek, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    struct kyufu_storage_options o = {.path = argv[1], .no_sync = true};
    struct kyufu_storage *s = NULL;
    if (kyufu_storage_open(&o, &s, err, sizeof err) != 0) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    if (keyed)
        kyufu_storage_keys_set(s, kyufu_bench_cmk);
    struct kyufu_storage_snapshot *snap = NULL;
    if (kyufu_storage_snapshot_begin(s, &snap) != 0) {
        fprintf(stderr, "snapshot failed\n");
        return 1;
    }
    struct timespec t0, t1, wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct kyufu_backup_write_params p = {
        .parent = argv[2], .name = argv[3], .node = 1, .kek = kek,
        .cmk = keyed ? kyufu_bench_cmk : NULL, .ca_path = argv[4], .cert_path = argv[5],
        .key_path = argv[6], .now_ms = (int64_t)wall.tv_sec * 1000,
        .max_bytes_per_s = argc == 9 ? strtoull(argv[8], NULL, 10) : 0};
    struct kyufu_backup_write_result res;
    int rv = kyufu_backup_write(snap, &p, &res, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kyufu_storage_snapshot_end(snap);
    kyufu_storage_close(s);
    kyufu_storage_crypto_wipe(kek, sizeof kek);
    if (rv != 0) {
        fprintf(stderr, "backup: %s\n", err);
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("index %llu chunks %u bytes %llu seconds %.2f rate %.1f MB/s "
           "peak_rss_kib %ld\n",
           (unsigned long long)res.applied_index, res.n_chunks,
           (unsigned long long)res.bytes, secs, (double)res.bytes / secs / 1e6,
           ru.ru_maxrss);
    return 0;
}
