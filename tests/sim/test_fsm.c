/* raft-glue's FSM adapter alone (internal API), on a raft instance of
 * libraft's fixture that is never started:
 *
 *  - a snapshot asked for while raft's applied index is below the store's
 *    (a restart replaying entries the store already holds) is refused with
 *    RAFT_BUSY and changes nothing; it aborted the node before (the 1M
 *    install drill: store at 57,430, snapshot due at 57,380);
 *  - with raft caught up (here: nothing applied on either side) a snapshot
 *    is taken and finalized. */
#include <ftw.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsm.h"
#include "storage.h"

#define CHECK(x)                                                          \
    do {                                                                  \
        if (!(x)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,        \
                    __LINE__, #x);                                        \
            exit(1);                                                      \
        }                                                                 \
    } while (0)

static int rm_entry(const char *p, const struct stat *st, int f,
                    struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

int main(void)
{
    char dir[64];
    char err[256] = "";
    struct kyufu_storage_options o;
    struct kyufu_storage *s;
    struct kyufu_fsm_hooks hooks;
    struct raft_fixture f;
    struct raft_fsm fsm;
    struct kyufu_fsm state;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    uint64_t index, term;

    snprintf(dir, sizeof dir, "/tmp/kyufu-fsm-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    memset(&o, 0, sizeof o);
    o.path = dir;
    o.no_sync = true;
    CHECK(kyufu_storage_open(&o, &s, err, sizeof err) == 0);
    memset(&hooks, 0, sizeof hooks);
    kyufu_fsm_init(&fsm, &state, s, KYUFU_FSM_SNAPSHOT_INLINE, &hooks);
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    state.raft = raft_fixture_get(&f, 0);
    CHECK(raft_last_applied(state.raft) == 0);

    /* Raft caught up with the store: a snapshot is taken. */
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == 0);
    CHECK(n_bufs >= 1 && state.n_snapshots == 1);
    CHECK(fsm.snapshot_finalize(&fsm, &bufs, &n_bufs) == 0);

    /* The store ahead of raft: refused, nothing held. */
    CHECK(kyufu_storage_apply_noop(s, 3, 1, err, sizeof err) == 0);
    kyufu_storage_applied(s, &index, &term);
    CHECK(index == 3);
    bufs = NULL;
    n_bufs = 0;
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == RAFT_BUSY);
    CHECK(bufs == NULL && n_bufs == 0 && state.snap == NULL);
    CHECK(state.n_snapshots == 1 && state.n_snapshots_refused == 1);
    CHECK(state.fatal_rv == 0);

    raft_fixture_close(&f);
    kyufu_storage_close(s);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("fsm: ok\n");
    return 0;
}
