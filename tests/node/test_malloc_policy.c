/* kyufud's allocator settings (node/malloc_policy.c) against what they are
 * for, in this process with the real glibc and liblmdb:
 *   - a command's nested LMDB transaction (every applied command opens
 *     one: storage/apply.c) maps nothing, and the heap neither shrinks
 *     after it nor grows for the next one: the write path makes no mmap,
 *     munmap or brk per command (at the old 2 MiB threshold it mapped and
 *     unmapped 2 MiB per command on every node);
 *   - what a command frees at the top of a fresh heap is kept there for
 *     the next one (the trim threshold);
 *   - the free pages inside the heap are given back on release (after a
 *     compaction of the Raft log);
 *   - a snapshot chunk's memory is given back once freed and released
 *     (the resident floor between snapshots: docs/soak.md);
 *   - many threads allocating at once share at most
 *     KYUFU_NODE_MALLOC_ARENAS_MAX arenas (malloc_info's heaps).
 * mallinfo2's hblks/hblkhd are the blocks mapped now, arena the heap's
 * size; RssAnon (/proc/self/status) what is resident.  Not built under ASan, whose allocator is not glibc's. */
#include <lmdb.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../count_check.h"
#include "malloc_policy.h"
#include "../../node/limits.h" /* not <limits.h> */
#include "storage_limits.h"

#define COMMANDS 50 /* in a busy entry; a quiet one carries one */
#define MIB ((size_t)1 << 20)

static char dir[] = "/tmp/kyufu-malloc-policy-XXXXXX";
static uint32_t next; /* the next key */

static void put(MDB_txn *txn, MDB_dbi dbi, uint32_t k)
{
    char value[200];
    memset(value, (int)(k & 0xff), sizeof value);
    MDB_val key = {sizeof k, &k}, val = {sizeof value, value};
    CHECK(mdb_put(txn, dbi, &key, &val, 0) == 0);
}

/* An entry's transaction carrying `n` commands, each in its nested
 * transaction, as the apply of one Raft entry does.  The heap is checked
 * once `warm`: the first entries grow it to where its holes fit the
 * nested transaction's lists. */
static void entry(MDB_env *env, uint32_t n, bool warm)
{
    MDB_txn *txn, *child;
    MDB_dbi dbi;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0) {
        CHECK(!"an entry's transaction begins");
        return;
    }
    if (mdb_dbi_open(txn, NULL, 0, &dbi) != 0) {
        CHECK(!"the main database opens");
        mdb_txn_abort(txn);
        return;
    }
    struct mallinfo2 before = mallinfo2();
    size_t arena = before.arena;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = next++;
        if (mdb_txn_begin(env, txn, 0, &child) != 0) {
            CHECK(!"a command's nested transaction begins");
            break;
        }
        struct mallinfo2 open = mallinfo2();
        CHECKF(open.hblks == before.hblks && open.hblkhd == before.hblkhd,
               "command %u: %zu block(s) of %zu bytes mapped, %zu of %zu before",
               k, open.hblks, open.hblkhd, before.hblks, before.hblkhd);
        /* The entry's dirty pages (4 KiB each) may grow the heap; the
         * nested transaction's lists (3 MiB) must come from free heap. */
        CHECKF(!warm || open.arena < arena + MIB,
               "command %u: the heap grew from %zu to %zu bytes to open it", k,
               arena, open.arena);
        put(child, dbi, k);
        if (k % 3 == 2) {
            mdb_txn_abort(child); /* a rejected command */
        } else {
            CHECK(mdb_txn_commit(child) == 0);
        }
        struct mallinfo2 done = mallinfo2();
        CHECKF(!warm || done.arena + MIB > open.arena,
               "command %u: the heap shrank from %zu to %zu bytes at its end", k,
               open.arena, done.arena);
        arena = done.arena;
    }
    CHECK(mdb_txn_commit(txn) == 0);
}

/* RssAnon of this process, KiB (-1: unreadable). */
static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "RssAnon: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

/* A snapshot chunk's memory is given back once it is freed and the heap
 * released, as after a snapshot: it is mapped, or served from a free
 * hole of the heap (here the one released() left), whose pages go back on
 * release. */
static void chunk(void)
{
    long before = rss_anon_kib();
    size_t bytes = KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
    char *p = malloc(bytes);
    CHECK(p != NULL);
    if (p == NULL) {
        return;
    }
    memset(p, 1, bytes);
    long held = rss_anon_kib();
    /* RssAnon is counted in batches (up to ~256 KiB late): half the
     * chunk is a margin for that, not for a chunk that was never new. */
    CHECKF(held >= before + (long)(bytes >> 11),
           "a snapshot chunk written: %ld KiB resident, %ld before", held, before);
    free(p);
    kyufu_node_malloc_release();
    long after = rss_anon_kib();
    CHECKF(after < before + 1024,
           "a snapshot chunk freed and released: %ld KiB resident, %ld before",
           after, before);
}

/* What one command frees at the top of the heap stays there: on a fresh
 * heap (no holes), the lists' sizes taken from its top, freed, and taken
 * again, without the heap shrinking or growing.  At glibc's default trim
 * threshold (128 KiB) the free shrinks it. */
static void top_kept(void)
{
    char *list = malloc((size_t)2 << 20), *pages = malloc((size_t)1 << 20);
    CHECK(list != NULL && pages != NULL);
    if (list == NULL || pages == NULL) {
        free(list);
        free(pages);
        return;
    }
    list[0] = pages[0] = 1;
    struct mallinfo2 held = mallinfo2();
    free(pages);
    free(list);
    struct mallinfo2 freed = mallinfo2();
    CHECKF(freed.arena == held.arena,
           "the heap shrank from %zu to %zu bytes when 3 MiB at its top were freed",
           held.arena, freed.arena);
    list = malloc((size_t)2 << 20);
    pages = malloc((size_t)1 << 20);
    CHECK(list != NULL && pages != NULL);
    struct mallinfo2 again = mallinfo2();
    CHECKF(again.arena == held.arena && again.hblks == held.hblks,
           "taken again: heap %zu bytes (%zu), %zu mapped block(s) (%zu)",
           again.arena, held.arena, again.hblks, held.hblks);
    free(pages);
    free(list);
}

/* The free pages inside the heap go back to the system on release, as
 * after a compaction of the Raft log: 32 MiB of 64 KiB blocks, all freed
 * but the last (which keeps them off the heap's top, so no trim returns
 * them), stay resident until kyufu_node_malloc_release(). */
static void released(void)
{
    enum { N = 512, BLOCK = 64 << 10 };
    static char *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(BLOCK);
        if (b[i] == NULL) {
            CHECK(!"64 KiB blocks allocated");
            while (i-- > 0) {
                free(b[i]);
            }
            return;
        }
        memset(b[i], 1, BLOCK);
    }
    long held = rss_anon_kib();
    for (int i = 0; i < N - 1; i++) {
        free(b[i]);
    }
    long freed = rss_anon_kib();
    kyufu_node_malloc_release();
    long after = rss_anon_kib();
    CHECKF(held > 0 && freed > held - 8 * 1024,
           "the freed blocks left %ld KiB resident of %ld: nothing to release",
           freed, held);
    CHECKF(after < freed - 24 * 1024,
           "released: %ld KiB resident, %ld before (32 MiB freed)", after, freed);
    free(b[N - 1]);
}

/* ------------------------------------------------------------ arenas */

#define THREADS 24
static pthread_barrier_t all_in;

/* Allocates while every other thread holds a block too: without a cap each
 * would get an arena of its own (up to 8 per core). */
static void *allocator(void *arg)
{
    (void)arg;
    void *p = malloc(1000);
    CHECK(p != NULL);
    (void)pthread_barrier_wait(&all_in);
    free(p);
    return NULL;
}

/* malloc_info's XML has one <heap nr="..."> per arena. */
static unsigned arenas(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    CHECK(malloc_info(0, f) == 0);
    CHECK(fclose(f) == 0);
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, "<heap nr=")) != NULL; p++) {
        n++;
    }
    free(text);
    return n;
}

static void arenas_capped(void)
{
    pthread_t t[THREADS];
    CHECK(pthread_barrier_init(&all_in, NULL, THREADS) == 0);
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_create(&t[i], NULL, allocator, NULL) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
    }
    CHECK(pthread_barrier_destroy(&all_in) == 0);
    unsigned n = arenas();
    printf("malloc-policy: %d threads allocating at once: %u arenas (cap %u)\n",
           THREADS, n, KYUFU_NODE_MALLOC_ARENAS_MAX);
    CHECK(n >= 2 && n <= KYUFU_NODE_MALLOC_ARENAS_MAX);
}

static void remove_dir(void)
{
    char path[sizeof dir + 16];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    MDB_env *env = NULL;
    /* meson runs tests with MALLOC_PERTURB_, which writes every block
     * malloc hands out and every block freed: resident pages a kyufud
     * would not touch.  The policy is kyufud's, measured as kyufud runs. */
    (void)mallopt(M_PERTURB, 0);
    if (kyufu_node_malloc_policy() != 0) {
        fprintf(stderr, "malloc-policy: glibc refused the thresholds\n");
        return 1;
    }
    top_kept();
    released();
    arenas_capped();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    int rv = mdb_env_create(&env);
    if (rv == 0) {
        rv = mdb_env_set_mapsize(env, (size_t)64 << 20);
    }
    if (rv == 0) {
        rv = mdb_env_open(env, dir, MDB_NOSYNC, 0600);
    }
    if (rv != 0) {
        fprintf(stderr, "malloc-policy: LMDB in %s: %s\n", dir, mdb_strerror(rv));
        if (env != NULL) {
            mdb_env_close(env);
        }
        remove_dir();
        return 1;
    }
    for (int round = 0; round < 4; round++) {
        entry(env, COMMANDS, round > 0);
        for (int i = 0; i < COMMANDS; i++) {
            entry(env, 1, round > 0);
        }
        chunk();
    }
    mdb_env_close(env);
    remove_dir();
    return count_check_end("malloc-policy");
}
