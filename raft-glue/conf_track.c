/* libraft 0.22.1's committed configuration: see conf_track.h. */
#include "conf_track.h"

#include <assert.h>

/* The position of the first RAFT_CHANGE entry of ae at or after `from`,
 * or n_entries. */
static unsigned next_change(const struct raft_append_entries *ae,
                            unsigned from)
{
    unsigned k;
    for (k = from; k < ae->n_entries; k++) {
        if (ae->entries[k].type == RAFT_CHANGE) {
            break;
        }
    }
    return k;
}

enum glue_conf_cut glue__conf_cut(const struct raft *r, struct raft_message *m)
{
    struct raft_append_entries *ae = &m->append_entries;
    raft_index u = r->configuration_uncommitted_index;
    unsigned k;
    if (m->type != RAFT_APPEND_ENTRIES || ae->n_entries == 0) {
        return GLUE_CONF_KEPT;
    }
    k = next_change(ae, 0);
    if (k == ae->n_entries || r->snapshot.installing) {
        /* No configuration entry; or raft drops the entries of any
         * AppendEntries during an install (recv_append_entries.c), which a
         * cut to none would turn into a heartbeat it answers. */
        return GLUE_CONF_KEPT;
    }
    /* First in the message: raft marks it at its own index, so it may
     * stay, with what follows up to the next one.  With another one
     * uncommitted here (u), it may only sit at or below u: a resend, an
     * entry this log already holds, or a conflicting one (raft truncates
     * there and rolls u back first). */
    if (k == 0 && (u == 0 || ae->prev_log_index + 1 <= u)) {
        k = next_change(ae, 1);
        if (k == ae->n_entries) {
            return GLUE_CONF_KEPT;
        }
    }
    if (ae->entries[0].batch != ae->entries[ae->n_entries - 1].batch) {
        return GLUE_CONF_UNCUTTABLE;
    }
    if (u != 0 && ae->prev_log_index >= u && ae->leader_commit < u) {
        /* The message holds a configuration entry above u, and raft will
         * accept it only if this log matches the sender's up to prev, so
         * u is in the sender's log before that entry.  A leader appends a
         * configuration entry only once every earlier one is committed
         * (client.c: RAFT_CANTCHANGE otherwise), so u is committed.  Say
         * so: a leader restarted with u and that entry uncommitted (its
         * commit index starts at its snapshot) commits nothing until a
         * majority holds its barrier past that entry, and this follower,
         * cutting before it, would never store it: no progress.  raft
         * then commits u here (min(leader_commit, prev + entries kept)),
         * clears it, and takes the entry in a later message. */
        ae->leader_commit = u;
    }
    if (k == 0) {
        /* Nothing before it: a heartbeat that still carries the commit
         * index (which may commit the uncommitted one). */
        raft_free(ae->entries[0].batch);
        raft_free(ae->entries);
        ae->entries = NULL;
    }
    ae->n_entries = k;
    return GLUE_CONF_CUT;
}

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
