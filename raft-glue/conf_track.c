/* libraft 0.22.1's committed configuration: see conf_track.h. */
#include "conf_track.h"

#include <assert.h>

bool glue__conf_snapshot_ok(const struct raft *r)
{
    /* No entry uncommitted: the committed configuration is the newest in
     * the log, and it is applied (committed ≤ commit index = applied when
     * raft asks for a snapshot).  With one uncommitted, the committed
     * configuration may lag entries already applied (both cases in
     * conf_track.h), so wait: it is committed or rolled back soon. */
    return r->configuration_uncommitted_index == 0;
}

int glue__conf_repair(struct raft *r, raft_index *index)
{
    struct raft_configuration copy;
    raft_index u = r->configuration_uncommitted_index;
    int rv;
    if (u == 0 || u > raft_last_applied(r)) {
        return 0;
    }
    /* r->configuration is the entry at u (raft sets both together). */
    raft_configuration_init(&copy);
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        rv = raft_configuration_add(&copy, s->id, s->address, s->role);
        if (rv != 0) {
            raft_configuration_close(&copy);
            return RAFT_NOMEM;
        }
    }
    raft_configuration_close(&r->configuration_committed);
    r->configuration_committed = copy;
    r->configuration_committed_index = u;
    r->configuration_uncommitted_index = 0;
    *index = u;
    return 1;
}
