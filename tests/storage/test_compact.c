/* Offline compaction (storage.h kyufu_storage_compact): a store with many
 * updated and deleted records (applications submitted and cancelled,
 * idempotency sessions expired and pruned) compacts to a file no larger,
 * with the same state digest, and keeps working; an open store, a folder
 * with no store and a stale copy from a crashed run are handled.
 *
 *   test_compact [CASE]     the cases (CASE: a substring of their names)
 *   KYUFU_COMPACT_SCALE=N test_compact measure
 *                           the measurement of docs/operations.md with N
 *                           rounds (default 2000), sizes and time printed */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

static uint64_t size_of(const char *dir)
{
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    return (uint64_t)st.st_size;
}

static void ok(struct fx *f, Kyufu__V1__Command *c, uint64_t *app_id)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    CHECK_CODE(r, KYUFU__V1__CODE__OK);
    if (app_id != NULL) {
        CHECK(r->application != NULL);
        *app_id = r->application->id;
    }
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
}

/* `rounds` households registered, an application submitted and cancelled
 * for each, then a day later as many commands again, which prune the
 * expired idempotency sessions of the first ones (deleted records). */
static void churn(struct fx *f, unsigned rounds)
{
    char no[32];
    for (unsigned i = 0; i < rounds; i++) {
        snprintf(no, sizeof no, "C-%u", i);
        ok(f, c_register_household(f, "clerk", no), NULL);
        uint64_t id;
        ok(f, c_submit(f, "clerk", "P1", no, 0), &id);
        ok(f, c_cancel(f, "clerk", id, "withdrawn by the household"), NULL);
    }
    f->now_ms += 25LL * 3600 * 1000; /* past KYUFU_SESSION_RETENTION_MS */
    for (unsigned i = 0; i < rounds; i++) {
        snprintf(no, sizeof no, "C-%u", i);
        uint64_t id;
        ok(f, c_submit(f, "clerk", "P1", no, 0), &id);
        ok(f, c_cancel(f, "clerk", id, "x"), NULL);
    }
}

static void compact_keeps_state(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    churn(&f, 120);
    uint8_t before[32];
    fx_digest(&f, before);
    uint64_t index, term;
    kyufu_storage_applied(f.s, &index, &term);
    uint64_t audit = fx_audit_count(&f);
    fx_close(&f);
    uint64_t size0 = size_of(f.dir);

    struct kyufu_storage_compact_result res;
    char err[256] = "";
    int rv = kyufu_storage_compact(f.dir, &res, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "compact: %s", err);
    }
    CHECK_EQ(res.bytes_before, size0);
    CHECK_EQ(res.bytes_after, size_of(f.dir));
    CHECK(res.bytes_after < res.bytes_before); /* the pruned sessions' pages */
    CHECK(memcmp(res.digest, before, 32) == 0);
    CHECK_EQ(res.applied_index, index);
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s/compact.tmp", f.dir);
    CHECK(access(tmp, F_OK) != 0);

    /* The compacted store is the same ledger and keeps working. */
    fx_reopen(&f);
    uint8_t after[32];
    fx_digest(&f, after);
    CHECK(memcmp(after, before, 32) == 0);
    CHECK_EQ(fx_audit_count(&f), audit);
    fx_invariants(&f);
    ok(&f, c_register_household(&f, "clerk", "after-compact"), NULL);
    fx_close(&f);
}

static void compact_refuses_open_store(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint8_t before[32];
    fx_digest(&f, before);
    struct kyufu_storage_compact_result res;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_compact(f.dir, &res, err, sizeof err), KYUFU_STORAGE_ELOCKED);
    uint8_t after[32];
    fx_digest(&f, after);
    CHECK(memcmp(after, before, 32) == 0);
    fx_close(&f);
}

static void compact_no_store(void)
{
    char dir[256];
    snprintf(dir, sizeof dir, "%s/empty", t_dir);
    CHECK(mkdir(dir, 0700) == 0);
    struct kyufu_storage_compact_result res;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_compact(dir, &res, err, sizeof err), KYUFU_STORAGE_EINVALID);
    CHECK(strstr(err, "no store") != NULL);
    char p[300];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    CHECK(access(p, F_OK) != 0); /* none created */
    snprintf(p, sizeof p, "%s/missing", t_dir);
    CHECK_EQ(kyufu_storage_compact(p, &res, err, sizeof err), KYUFU_STORAGE_EINVALID);
}

/* A crashed run's compact.tmp (a partial copy) is replaced, not used. */
static void compact_stale_copy(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint8_t before[32];
    fx_digest(&f, before);
    fx_close(&f);
    char p[300];
    snprintf(p, sizeof p, "%s/compact.tmp", f.dir);
    CHECK(mkdir(p, 0700) == 0);
    snprintf(p, sizeof p, "%s/compact.tmp/data.mdb", f.dir);
    FILE *junk = fopen(p, "w");
    CHECK(junk != NULL);
    fputs("half a copy", junk);
    fclose(junk);
    struct kyufu_storage_compact_result res;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_compact(f.dir, &res, err, sizeof err), 0);
    CHECK(memcmp(res.digest, before, 32) == 0);
    snprintf(p, sizeof p, "%s/compact.tmp", f.dir);
    CHECK(access(p, F_OK) != 0);
    fx_reopen(&f);
    uint8_t after[32];
    fx_digest(&f, after);
    CHECK(memcmp(after, before, 32) == 0);
    fx_close(&f);
}

/* Not a check: the figures of docs/operations.md "Compacting the store".
 * Two histories of the same ledger: churn alone (LMDB reuses the freed
 * pages as it goes), and churn while a snapshot is read (as when the
 * leader sends one to a lagging node under write load: the snapshot's read
 * transaction pins every page it can see, so nothing freed meanwhile can be
 * reused and the file grows).  The fixture's map (64 MiB) cannot grow while
 * a snapshot is out, which bounds the second history. */
static void measure_one(unsigned rounds, bool pinned)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    struct kyufu_storage_snapshot *snap = NULL;
    if (pinned) {
        CHECK_EQ(kyufu_storage_snapshot_begin(f.s, &snap), 0);
    }
    churn(&f, rounds);
    if (snap != NULL) {
        kyufu_storage_snapshot_end(snap);
    }
    /* Some writes after the snapshot ended, as a running node makes. */
    ok(&f, c_register_household(&f, "clerk", "after"), NULL);
    fx_close(&f);
    struct kyufu_storage_compact_result res;
    char err[256] = "";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rv = kyufu_storage_compact(f.dir, &res, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK_EQ(rv, 0);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    printf("measure: %u rounds%s, applied index %llu: %llu -> %llu bytes (%.1f%%) in %.0f ms\n",
           rounds, pinned ? " under a snapshot" : "", (unsigned long long)res.applied_index,
           (unsigned long long)res.bytes_before, (unsigned long long)res.bytes_after,
           100.0 * (double)res.bytes_after / (double)res.bytes_before, ms);
    fflush(stdout);
}

static void measure(void)
{
    const char *scale = getenv("KYUFU_COMPACT_SCALE");
    unsigned rounds = scale != NULL ? (unsigned)strtoul(scale, NULL, 10) : 2000;
    measure_one(rounds, false);
    /* Under a snapshot the map cannot grow (storage.h): the fixture's
     * 64 MiB map holds about 200 rounds (1,000 commands) without page reuse. */
    measure_one(rounds < 200 ? rounds : 200, true);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(compact_keeps_state),
        T_CASE(compact_refuses_open_store),
        T_CASE(compact_no_store),
        T_CASE(compact_stale_copy),
    };
    if (argc == 2 && strcmp(argv[1], "measure") == 0) {
        static const struct t_case m[] = { T_CASE(measure) };
        return t_main(argc, argv, m, 1);
    }
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
