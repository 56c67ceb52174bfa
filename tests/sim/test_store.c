/* See test_store.h. */
#include "test_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sink.h" /* tests/storage */
#include "staff_batch.h"

struct kyufu_storage *test_store_open(const char *dir,
                                      const char *name,
                                      const uint8_t *cmk)
{
    char path[128];
    char err[256] = "";
    struct kyufu_storage_options o;
    struct kyufu_storage *s;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    memset(&o, 0, sizeof o);
    o.path = path;
    o.map_size_bytes = (size_t)64 << 20;
    o.no_sync = true;
    if (kyufu_storage_open(&o, &s, err, sizeof err) != 0) {
        fprintf(stderr, "open %s: %s\n", path, err);
        exit(1);
    }
    if (cmk != NULL) {
        kyufu_storage_keys_set(s, cmk);
    }
    return s;
}

void test_store_digest(struct kyufu_storage *s, uint8_t d[32], uint64_t *idx)
{
    CHECK(kyufu_storage_digest(s, d, idx) == 0);
}

void test_store_fill(struct kyufu_storage *s, unsigned n)
{
    char err[256];
    for (unsigned i = 0; i < n; i++) {
        char id[32];
        size_t len;
        struct kyufu_storage_results res;
        snprintf(id, sizeof id, i == 0 ? "admin" : "canary-staff-%03u", i);
        uint8_t *b = test_staff_batch("test-seal", "admin", id, i + 1, &len);
        CHECK(kyufu_storage_apply_bytes(s, i + 1, 1, b, len, &res, err,
                                        sizeof err) == 0);
        kyufu_storage_results_free(&res);
        free(b);
    }
}

uint8_t *test_store_stream(struct kyufu_storage *s, size_t *len)
{
    struct kyufu_storage_snapshot *snap;
    struct t_sink k;
    memset(&k, 0, sizeof k);
    CHECK(kyufu_storage_snapshot_begin(s, &snap) == 0);
    CHECK(kyufu_storage_snapshot_write(snap, NULL, t_sink_emit, &k) == 0);
    kyufu_storage_snapshot_end(snap);
    *len = k.len;
    return k.buf;
}
