/* A node's deferred snapshot through raft_uv's wrapped snapshot_put
 * (raft-glue/snapshot_io.h), with a stand-in for raft_uv's put:
 *
 *  - written: the put gets two buffers, the FSM's header and the mapped
 *    stream, which is storage's; its callback reaches raft's with 0;
 *  - refused by the file system (a Raft directory gone, too little room):
 *    raft's callback gets RAFT_IOERR, the refusal is counted with its
 *    errno, the FSM is not stopped (no fatal hook, fatal_rv 0), the real
 *    put is never called, and no snapshot is taken again until a quarter
 *    period has been applied (RAFT_BUSY, counted as held); then one is. */
#include <errno.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "check.h"
#include "fsm.h"
#include "rm_tree.h"
#include "snapshot_io.h"
#include "storage.h"
#include "test_store.h"

static char dir[64];
static unsigned n_fatal;
static unsigned n_real_puts;
static struct raft_buffer put_bufs[2]; /* copies of what the real put got */
static unsigned put_n;
static int raft_status;
static bool raft_called;

static void on_fatal(void *arg, int rv, const char *what)
{
    (void)arg;
    (void)rv;
    (void)what;
    n_fatal++;
}

/* raft_uv's put: copy the buffers and answer (on the loop thread, from
 * after_work: what the wrapper needs of it). */
static int real_put(struct raft_io *io, unsigned trailing,
                    struct raft_io_snapshot_put *req,
                    const struct raft_snapshot *snap,
                    raft_io_snapshot_put_cb cb)
{
    (void)io;
    CHECK(trailing > 0);
    n_real_puts++;
    put_n = snap->n_bufs;
    for (unsigned i = 0; i < snap->n_bufs && i < 2; i++) {
        put_bufs[i].len = snap->bufs[i].len;
        put_bufs[i].base = malloc(snap->bufs[i].len);
        CHECK(put_bufs[i].base != NULL);
        memcpy(put_bufs[i].base, snap->bufs[i].base, snap->bufs[i].len);
    }
    cb(req, 0);
    return 0;
}

static void raft_cb(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    raft_status = status;
    raft_called = true;
}

struct node
{
    struct kyufu_storage *s;
    struct raft_fsm fsm;
    struct kyufu_fsm st;
    struct raft_fixture f;
    struct glue_snapshot_io sio;
    uv_loop_t loop;
};

static void node_open(struct node *n, const char *name, const char *raft_dir)
{
    struct kyufu_fsm_hooks hooks = {NULL, NULL, on_fatal};
    uint64_t idx, term;
    memset(n, 0, sizeof *n);
    n->s = test_store_open(dir, name, NULL);
    test_store_fill(n->s, 20);
    kyufu_storage_applied(n->s, &idx, &term);
    kyufu_fsm_init(&n->fsm, &n->st, n->s, KYUFU_FSM_SNAPSHOT_DEFERRED,
                   &hooks);
    CHECK(raft_fixture_init(&n->f) == 0);
    CHECK(raft_fixture_grow(&n->f, &n->fsm) == 0);
    n->st.raft = raft_fixture_get(&n->f, 0);
    n->st.raft->last_applied = idx;
    CHECK(uv_loop_init(&n->loop) == 0);
    n->sio.io.snapshot_put = real_put;
    glue__snapshot_io_wrap(&n->sio, &n->st, &n->loop, raft_dir);
}

static void node_close(struct node *n)
{
    uv_loop_close(&n->loop);
    raft_fixture_close(&n->f);
    kyufu_fsm_wipe_keys(&n->st);
    kyufu_storage_close(n->s);
}

/* fsm->snapshot, then the wrapped put of its header at the store's index,
 * run to raft's callback; finalize.  Returns fsm->snapshot's code. */
static int take(struct node *n)
{
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    int rv = n->fsm.snapshot(&n->fsm, &bufs, &n_bufs);
    if (rv != 0) {
        return rv;
    }
    memset(&snap, 0, sizeof snap);
    snap.index = n->st.raft->last_applied;
    snap.term = 1;
    snap.bufs = bufs;
    snap.n_bufs = n_bufs;
    raft_called = false;
    put_n = 0;
    CHECK(n->sio.io.snapshot_put(&n->sio.io, 8, &req, &snap, raft_cb) == 0);
    while (!raft_called) {
        CHECK(uv_run(&n->loop, UV_RUN_ONCE) >= 0);
    }
    CHECK(n->fsm.snapshot_finalize(&n->fsm, &bufs, &n_bufs) == 0);
    return 0;
}

static void test_written(void)
{
    struct node n;
    node_open(&n, "written", dir);
    CHECK(take(&n) == 0);
    CHECK(raft_status == 0 && n_real_puts == 1 && put_n == 2);
    /* The header (version 1, plaintext) and storage's stream. */
    CHECK(put_bufs[0].len == 40 && memcmp(put_bufs[0].base, "KYFS", 4) == 0);
    size_t want_len;
    uint8_t *want = test_store_stream(n.s, &want_len);
    CHECK(put_bufs[1].len == want_len &&
          memcmp(put_bufs[1].base, want, want_len) == 0);
    free(want);
    CHECK(n.sio.n_failed == 0 && n.sio.n_file_failed == 0 && n_fatal == 0);
    for (unsigned i = 0; i < 2; i++) {
        free(put_bufs[i].base);
    }
    node_close(&n);
    printf("written: ok\n");
}

static void test_refused(void)
{
    char gone[96];
    struct node n;
    snprintf(gone, sizeof gone, "%s/gone", dir);
    node_open(&n, "refused", gone);
    uint64_t at = n.st.raft->last_applied;
    n_real_puts = 0;
    CHECK(take(&n) == 0);
    CHECK(raft_status == RAFT_IOERR && n_real_puts == 0);
    CHECK(n.sio.n_file_failed == 1 && n.sio.n_failed == 1 &&
          n.sio.file_err == ENOENT);
    CHECK(n_fatal == 0 && n.st.fatal_rv == 0);
    CHECK(n.st.snapshot_hold_until > at);

    /* Held: not again until the hold's index is applied. */
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    CHECK(n.fsm.snapshot(&n.fsm, &bufs, &n_bufs) == RAFT_BUSY);
    CHECK(n.st.n_snapshots_held == 1);

    /* Past it, with the directory back: taken and written. */
    CHECK(mkdir(gone, 0700) == 0);
    n.st.raft->last_applied = n.st.snapshot_hold_until;
    CHECK(take(&n) == 0);
    CHECK(raft_status == 0 && n_real_puts == 1 && put_n == 2);
    CHECK(n.sio.n_file_failed == 1 && n_fatal == 0);
    for (unsigned i = 0; i < 2; i++) {
        free(put_bufs[i].base);
    }
    node_close(&n);
    printf("refused: ok\n");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kyufu-test-snapshot-io-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    test_written();
    test_refused();
    test_rm_tree(dir);
    return 0;
}
