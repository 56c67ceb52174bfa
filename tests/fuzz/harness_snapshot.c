/* Fuzz harness: snapshot restore (storage/snapshot.c), the code that reads
 * a whole ledger sent by a peer.  The first byte selects the mode:
 *   even: the rest is restored as it is (the SHA-256 trailer guards it, so
 *         this mostly exercises the length and trailer checks);
 *   odd:  the rest, with a correct trailer appended, so the fuzzer reaches
 *         the header, record and count checks behind the checksum.
 * Properties: restore never crashes or overreads; a refused stream leaves
 * the store exactly as it was (same digest, same applied index); an
 * accepted one leaves a store whose invariants hold and which snapshots
 * back to the same bytes (restore is the inverse of snapshot_write). */
#include "harness.h"

#include <ftw.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage.h"

static char dir[64];
static struct kyufu_storage *store;
static unsigned long inputs, accepted;

static _Noreturn void finding(const char *what, const char *detail)
{
    fprintf(stderr, "FUZZ FINDING: %s: %s (input %lu)\n", what, detail, inputs);
    abort();
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

void fz_init(void)
{
    char err[256];
    snprintf(dir, sizeof dir, "%s/kyufu-fuzz-snap-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    struct kyufu_storage_options o = {.path = dir, .no_sync = true};
    if (kyufu_storage_open(&o, &store, err, sizeof err) != 0) {
        finding("open", err);
    }
}

struct stream
{
    uint8_t *buf;
    size_t len;
};

static int collect(void *arg, void *chunk, size_t len)
{
    struct stream *s = arg;
    uint8_t *grown = realloc(s->buf, s->len + len);
    if (grown == NULL) {
        free(chunk);
        return -1;
    }
    memcpy(grown + s->len, chunk, len);
    s->buf = grown;
    s->len += len;
    free(chunk);
    return 0;
}

void fz_one(const uint8_t *data, size_t size)
{
    char err[256] = "";
    uint8_t before[32], after[32];
    uint64_t ib, ia;
    inputs++;
    if (size == 0) {
        return;
    }
    size_t n = size - 1;
    uint8_t *buf = malloc(n + SHA256_DIGEST_LENGTH + 1);
    if (buf == NULL) {
        abort();
    }
    memcpy(buf, data + 1, n);
    if (data[0] & 1) {
        SHA256(buf, n, buf + n);
        n += SHA256_DIGEST_LENGTH;
    }
    if (kyufu_storage_digest(store, before, &ib) != 0) {
        finding("digest", "before");
    }
    int rv = kyufu_storage_restore(store, buf, n, err, sizeof err);
    if (rv != 0) {
        /* NEWER: a snapshot of a cluster above this build's command set
         * (docs/operations.md "Upgrades"), refused like a corrupt one. */
        if (rv != KYUFU_STORAGE_ECORRUPT && rv != KYUFU_STORAGE_ENEWER) {
            finding("restore failed other than CORRUPT or NEWER", err);
        }
        if (kyufu_storage_digest(store, after, &ia) != 0 || ia != ib ||
            memcmp(before, after, sizeof before) != 0) {
            finding("a refused snapshot changed the store", err);
        }
        free(buf);
        return;
    }
    accepted++;
    if (kyufu_storage_check_invariants(store, err, sizeof err) != 0) {
        finding("restored state breaks an invariant", err);
    }
    struct kyufu_storage_snapshot *snap;
    struct stream out = {0};
    if (kyufu_storage_snapshot_begin(store, &snap) != 0) {
        finding("snapshot_begin", "");
    }
    rv = kyufu_storage_snapshot_write(snap, NULL, collect, &out);
    kyufu_storage_snapshot_end(snap);
    if (rv != 0) {
        finding("snapshot_write after restore", err);
    }
    if (out.len != n || memcmp(out.buf, buf, n) != 0) {
        size_t at = 0;
        while (at < n && at < out.len && out.buf[at] == buf[at]) {
            at++;
        }
        snprintf(err, sizeof err, "%zu bytes in, %zu out, first difference at %zu", n,
                 out.len, at);
        finding("restore then snapshot does not give the same bytes", err);
    }
    free(out.buf);
    free(buf);
}

void fz_report(FILE *fp)
{
    fprintf(fp, "snapshot: %lu inputs, %lu restored\n", inputs, accepted);
}

void fz_fini(void)
{
    kyufu_storage_close(store);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}
