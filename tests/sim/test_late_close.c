/* libraft 0.22.1's raft_uv fires its close callback a second time when a
 * truncate was running at the close and a snapshot put finished meanwhile:
 * the put's abort path (uv_snapshot.c, uvSnapshotPutAfterWorkAllocateCb)
 * frees the truncate's barrier, so close reports done while the truncate
 * still runs; when it finishes, uvTruncateAfterWorkCb works on `struct uv`
 * and fires close again.  kyufud freed that struct in raft's close
 * callback, and a node died of SIGSEGV in uvMaybeFireCloseCb during a stop
 * (docs/raft.md "raft_uv reports closed twice").
 *
 * Here the real raft_uv, under io_guard (over a bare struct raft: the
 * guard only reads io->data and r->data), is driven into that sequence:
 * entries over several segments, a truncate into a closed one, a snapshot
 * put, then the close, at a few loop turns apart.  What must hold: raft's
 * close callback runs exactly once per close; the late ones are counted by
 * the guard; raft_uv's memory, freed only once the loop is idle (as
 * kyufu_glue_free_closed does), is valid for them (ASan).  Built against
 * 0.22.1 the sequence must be reproduced at least once, or the test no
 * longer covers what it is for. */
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "check.h"
#include "io_guard.h"
#include "rm_tree.h"

#define ENTRIES 40u
#define ENTRY_BYTES 1024u
#define SEGMENT_BYTES 8192u
#define ITERATIONS_MAX 150u
#define HITS_WANTED 3ul

static unsigned n_raft_closed;
static unsigned n_appended;
static unsigned n_failed;

static void raft_closed(struct raft_io *io)
{
    (void)io;
    n_raft_closed++;
}

static void appended(struct raft_io_append *req, int status)
{
    (void)req;
    CHECK(status == 0);
    n_appended++;
}

static void put_done(struct raft_io_snapshot_put *req, int status)
{
    int *out = req->data;
    *out = status;
}

static void on_failed(struct glue_io_guard *g, const char *call, int rv)
{
    (void)g;
    fprintf(stderr, "late-close: %s failed: %s\n", call, raft_strerror(rv));
    n_failed++;
}

/* One close with a truncate and a put in flight; returns the late closes
 * the guard saw. */
static unsigned long one_close(const char *root, unsigned it)
{
    char dir[256];
    uv_loop_t loop;
    struct raft_uv_transport tr;
    struct raft_io io;
    struct raft r;
    struct glue_io_guard guard;
    raft_term term;
    raft_id vote;
    struct raft_snapshot *loaded;
    raft_index start;
    struct raft_entry *loaded_entries;
    size_t n_loaded;
    static struct raft_entry e[ENTRIES];
    static struct raft_io_append reqs[ENTRIES];
    struct raft_snapshot snap;
    struct raft_buffer data;
    struct raft_io_snapshot_put put;
    int put_status = -1;
    unsigned long late;

    snprintf(dir, sizeof dir, "%s/%u", root, it);
    CHECK(mkdir(dir, 0700) == 0);
    CHECK(uv_loop_init(&loop) == 0);
    memset(&tr, 0, sizeof tr);
    tr.version = 1;
    CHECK(raft_uv_tcp_init(&tr, &loop) == 0);
    memset(&io, 0, sizeof io);
    CHECK(raft_uv_init(&io, &loop, dir, &tr) == 0);
    raft_uv_set_segment_size(&io, SEGMENT_BYTES);
    CHECK(io.init(&io, 1, "127.0.0.1:9") == 0);
    CHECK(io.load(&io, &term, &vote, &loaded, &start, &loaded_entries,
                  &n_loaded) == 0);
    CHECK(loaded == NULL && n_loaded == 0);
    memset(&r, 0, sizeof r);
    r.io = &io;
    io.data = &r;
    glue__io_guard_wrap(&guard, &r, on_failed, NULL);

    /* Entries over several segments, some landing between appends. */
    n_appended = 0;
    for (unsigned i = 0; i < ENTRIES; i++) {
        e[i].term = 1;
        e[i].type = RAFT_COMMAND;
        e[i].buf.len = ENTRY_BYTES;
        e[i].buf.base = raft_malloc(ENTRY_BYTES);
        CHECK(e[i].buf.base != NULL);
        memset(e[i].buf.base, (int)i, ENTRY_BYTES);
        e[i].batch = NULL;
        CHECK(io.append(&io, &reqs[i], &e[i], 1, appended) == 0);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    while (n_appended < ENTRIES) {
        uv_run(&loop, UV_RUN_ONCE);
    }

    /* A truncate into an early, closed segment (a follower dropping a
     * deposed leader's entries), a snapshot put (raft's own), the close;
     * a few loop turns apart, varied. */
    CHECK(io.truncate(&io, 5) == 0);
    for (unsigned d = 0; d < it % 6; d++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    memset(&snap, 0, sizeof snap);
    snap.index = 4;
    snap.term = 1;
    raft_configuration_init(&snap.configuration);
    CHECK(raft_configuration_add(&snap.configuration, 1, "127.0.0.1:9",
                                 RAFT_VOTER) == 0);
    snap.configuration_index = 1;
    data.len = 4096;
    data.base = malloc(data.len);
    CHECK(data.base != NULL);
    memset(data.base, 7, data.len);
    snap.bufs = &data;
    snap.n_bufs = 1;
    put.data = &put_status;
    CHECK(io.snapshot_put(&io, 2, &put, &snap, put_done) == 0);
    for (unsigned d = 0; d < (it / 6) % 3; d++) {
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    n_raft_closed = 0;
    io.close(&io, raft_closed);
    uv_run(&loop, UV_RUN_DEFAULT); /* until idle: the late work too */

    CHECK(n_raft_closed == 1);
    CHECK(put_status != -1); /* the put completed (done or cancelled) */
    CHECK(n_failed == 0);
    late = guard.n_late_closes;
    glue__io_guard_close(&guard);
    raft_uv_close(&io);
    raft_uv_tcp_close(&tr);
    CHECK(uv_loop_close(&loop) == 0);
    raft_configuration_close(&snap.configuration);
    free(data.base);
    for (unsigned i = 0; i < ENTRIES; i++) {
        raft_free(e[i].buf.base);
    }
    return late;
}

int main(void)
{
    char root[] = "/tmp/kyufu-late-close-XXXXXX";
    unsigned long hits = 0;
    unsigned it;

    CHECK(mkdtemp(root) != NULL);
    for (it = 0; it < ITERATIONS_MAX && hits < HITS_WANTED; it++) {
        hits += one_close(root, it);
    }
    CHECK(test_rm_tree(root) == 0);
    if (RAFT_VERSION_NUMBER == 2201) {
        CHECK(hits > 0);
    }
    printf("late-close: %lu late close callbacks of raft_uv in %u closes "
           "with a truncate and a put in flight; raft's ran once each\n",
           hits, it);
    return 0;
}
