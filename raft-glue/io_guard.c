/* Durable-write guard: see io_guard.h.  Each wrapper calls the real method
 * and, when it fails, records the failure and reports the first one; the
 * result goes back to raft unchanged (never retried, never hidden). */
#include "io_guard.h"

#include <assert.h>
#include <stddef.h>

static struct glue_io_guard *of(struct raft_io *io)
{
    struct raft *r = io->data;
    assert(r != NULL && r->io == io && r->data != NULL);
    return r->data;
}

static int check(struct glue_io_guard *g, const char *call, int rv)
{
    if (rv != 0) {
        g->n_failed++;
        if (g->n_failed == 1) {
            g->failed(g, call, rv);
        }
    }
    return rv;
}

static int injected(struct glue_io_guard *g, const char *call)
{
    return g->inject != NULL ? g->inject(g, call) : 0;
}

static int set_term(struct raft_io *io, raft_term term)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "set_term");
    return check(g, "set_term", rv != 0 ? rv : g->set_term(io, term));
}

static int set_vote(struct raft_io *io, raft_id server_id)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "set_vote");
    return check(g, "set_vote", rv != 0 ? rv : g->set_vote(io, server_id));
}

static int append(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "append");
    return check(g, "append",
                 rv != 0 ? rv : g->append(io, req, entries, n, cb));
}

static int truncate_(struct raft_io *io, raft_index index)
{
    struct glue_io_guard *g = of(io);
    int rv = injected(g, "truncate");
    return check(g, "truncate", rv != 0 ? rv : g->truncate(io, index));
}

/* Drop a duplicate InstallSnapshot (io_guard.h); reads the raft core's
 * `snapshot.installing` flag (public struct, 0.22.1 layout). */
static void recv(struct raft_io *io, struct raft_message *m)
{
    struct glue_io_guard *g = of(io);
    struct raft *r = io->data;
    if (m->type == RAFT_INSTALL_SNAPSHOT && r->snapshot.installing) {
        g->n_install_dropped++;
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        return;
    }
    g->recv(io, m);
}

static int start(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv_cb)
{
    struct glue_io_guard *g = of(io);
    g->recv = recv_cb;
    return g->start(io, msecs, tick, recv);
}

void glue__io_guard_wrap(struct glue_io_guard *g,
                         struct raft *r,
                         glue_io_guard_failed_cb failed,
                         void *data)
{
    struct raft_io *io = r->io;
    assert(io != NULL && io->data == r && failed != NULL);
    assert(io->set_term != set_term); /* wrapped once */
    g->set_term = io->set_term;
    g->set_vote = io->set_vote;
    g->append = io->append;
    g->truncate = io->truncate;
    g->start = io->start;
    g->recv = NULL;
    g->n_install_dropped = 0;
    g->failed = failed;
    g->inject = NULL;
    g->data = data;
    g->n_failed = 0;
    io->set_term = set_term;
    io->set_vote = set_vote;
    io->append = append;
    io->truncate = truncate_;
    io->start = start;
    r->data = g;
}
