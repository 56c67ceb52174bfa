/* raft-glue/conf_track.h on a hand-built struct raft (libraft 0.22.1's
 * public fields): the cut of received AppendEntries before a configuration
 * entry, when a snapshot may be taken, and the repair of a
 * configuration entry raft marks uncommitted though it is applied (what a
 * restart from a snapshot of the old, unguarded FSM left: chaos seed
 * 2441277703; the end-to-end case is test-glue-uv's test_config_snapshot).
 */
#include <raft.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "conf_track.h"

static void conf(struct raft_configuration *c, unsigned n)
{
    char a[32];
    raft_configuration_init(c);
    for (unsigned i = 1; i <= n; i++) {
        snprintf(a, sizeof a, "127.0.0.1:%u", 7000 + i);
        CHECK(raft_configuration_add(c, i, a,
                                     i == 4 ? RAFT_STANDBY : RAFT_VOTER) == 0);
    }
}

/* A received AppendEntries after prev_log_index `prev` whose entries have
 * these types ('c' command, 'C' configuration), in one batch as raft_uv
 * decodes it. */
static void message(struct raft_message *m, raft_index prev,
                    const char *types)
{
    unsigned n = (unsigned)strlen(types);
    char *batch = raft_malloc(n);
    CHECK(batch != NULL);
    memset(m, 0, sizeof *m);
    m->type = RAFT_APPEND_ENTRIES;
    m->append_entries.prev_log_index = prev;
    m->append_entries.prev_log_term = 2;
    m->append_entries.n_entries = n;
    m->append_entries.entries = raft_calloc(n, sizeof(struct raft_entry));
    CHECK(m->append_entries.entries != NULL);
    for (unsigned i = 0; i < n; i++) {
        struct raft_entry *e = &m->append_entries.entries[i];
        e->term = 2;
        e->type = types[i] == 'C' ? RAFT_CHANGE : RAFT_COMMAND;
        e->buf.base = batch + i;
        e->buf.len = 1;
        e->batch = batch;
    }
}

static void release(struct raft_message *m)
{
    if (m->append_entries.n_entries > 0) {
        raft_free(m->append_entries.entries[0].batch);
        raft_free(m->append_entries.entries);
    }
}

/* Cut a message of `types` after `prev` whose sender's commit index is lc,
 * with uncommitted index u and an install under way or not: the entries
 * raft gets; *commit: the commit index it gets (may be NULL). */
static int run_cut(raft_index u, raft_index prev, const char *types,
                   raft_index lc, bool installing, raft_index *commit)
{
    struct raft r;
    struct raft_message m;
    enum glue_conf_cut c;
    int n;
    memset(&r, 0, sizeof r);
    r.configuration_uncommitted_index = u;
    r.snapshot.installing = installing;
    message(&m, prev, types);
    m.append_entries.leader_commit = lc;
    c = glue__conf_cut(&r, &m);
    n = (int)m.append_entries.n_entries;
    CHECK(c == ((size_t)n == strlen(types) ? GLUE_CONF_KEPT : GLUE_CONF_CUT));
    CHECK(!installing || c == GLUE_CONF_KEPT);
    CHECK(m.append_entries.prev_log_index == prev); /* still anchored */
    CHECK(n > 0 || m.append_entries.entries == NULL);
    if (commit != NULL) {
        *commit = m.append_entries.leader_commit;
    }
    release(&m);
    return n;
}

static int cut(raft_index u, raft_index prev, const char *types)
{
    return run_cut(u, prev, types, 0, false, NULL);
}

static raft_index commit_after(raft_index u, raft_index prev,
                               const char *types, raft_index lc,
                               bool installing)
{
    raft_index commit;
    (void)run_cut(u, prev, types, lc, installing, &commit);
    return commit;
}

static void test_cut(void)
{
    struct raft r;
    struct raft_message m;

    /* No configuration entry, or one first with none uncommitted: kept. */
    CHECK(cut(0, 10, "ccc") == 3);
    CHECK(cut(0, 10, "Ccc") == 3);
    /* After others: cut before it (raft would mark it at index 11). */
    CHECK(cut(0, 10, "cCc") == 1);
    CHECK(cut(0, 10, "ccCC") == 2);
    /* First, then another: cut before the second (raft would mark both
     * at index 11: a new node's first batch starts with the bootstrap
     * configuration and may hold later ones). */
    CHECK(cut(0, 0, "CccCc") == 3);
    CHECK(cut(0, 10, "CC") == 1);
    /* Another uncommitted here (index 12): a new one waits, as a
     * heartbeat that still carries the commit index. */
    CHECK(cut(12, 20, "Cc") == 0);
    CHECK(cut(12, 20, "cCc") == 1);
    /* The uncommitted one itself first (a resend, or its replacement in a
     * conflict: raft rolls back first): kept; after others, cut as any. */
    CHECK(cut(12, 11, "Cc") == 2);
    CHECK(cut(12, 11, "CcC") == 2);
    CHECK(cut(12, 9, "ccCc") == 2);
    /* A restarted leader's commit index may lag u (it starts at its
     * snapshot) while it sends the next configuration entry: past a prev
     * at or above u the message proves u committed, and the cut raises
     * the commit index to u so that raft commits it (else no progress).
     * Not with prev below u (the entries up to u are not proven the
     * sender's), not lowered, not on an uncut message. */
    CHECK(commit_after(12, 20, "cCc", 5, false) == 12);
    CHECK(commit_after(12, 20, "Cc", 5, false) == 12);
    CHECK(commit_after(12, 20, "Cc", 30, false) == 30);
    CHECK(commit_after(12, 9, "ccCc", 5, false) == 5);
    CHECK(commit_after(12, 11, "CcC", 5, false) == 5); /* u first: cut */
    CHECK(commit_after(12, 20, "ccc", 5, false) == 5); /* kept */
    /* During an install raft drops the entries itself: kept. */
    CHECK(commit_after(12, 20, "cCc", 5, true) == 5);
    /* Not AppendEntries, or a heartbeat: untouched. */
    memset(&r, 0, sizeof r);
    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES;
    CHECK(glue__conf_cut(&r, &m) == GLUE_CONF_KEPT);
    m.type = RAFT_REQUEST_VOTE;
    CHECK(glue__conf_cut(&r, &m) == GLUE_CONF_KEPT);
    /* Several batches: left alone (the caller counts it). */
    message(&m, 10, "cC");
    {
        char *other = raft_malloc(1);
        CHECK(other != NULL);
        m.append_entries.entries[1].batch = other;
        CHECK(glue__conf_cut(&r, &m) == GLUE_CONF_UNCUTTABLE);
        CHECK(m.append_entries.n_entries == 2);
        raft_free(other);
    }
    release(&m);
}

int main(void)
{
    struct raft r;
    raft_index index = 0;

    test_cut();

    memset(&r, 0, sizeof r);
    conf(&r.configuration, 4);           /* the entry at 30: 4 joined */
    conf(&r.configuration_committed, 3); /* the one at 29 */
    r.configuration_committed_index = 29;

    /* Nothing uncommitted: a snapshot records the newest configuration. */
    r.last_applied = 85;
    CHECK(glue__conf_snapshot_ok(&r));
    CHECK(glue__conf_repair(&r, &index) == 0);

    /* Uncommitted above the applied index: wait, and nothing to repair
     * (raft commits or rolls it back itself). */
    r.configuration_uncommitted_index = 30;
    r.last_applied = 29;
    CHECK(!glue__conf_snapshot_ok(&r));
    CHECK(glue__conf_repair(&r, &index) == 0);
    CHECK(r.configuration_uncommitted_index == 30 &&
          r.configuration_committed_index == 29 &&
          r.configuration_committed.n == 3);

    /* At or below the applied index: raft will never apply it again.  The
     * repair marks it committed with the configuration in force. */
    r.last_applied = 85;
    CHECK(!glue__conf_snapshot_ok(&r));
    CHECK(glue__conf_repair(&r, &index) == 1);
    CHECK(index == 30);
    CHECK(r.configuration_uncommitted_index == 0);
    CHECK(r.configuration_committed_index == 30);
    CHECK(r.configuration_committed.n == 4);
    for (unsigned i = 0; i < 4; i++) {
        const struct raft_server *a = &r.configuration.servers[i];
        const struct raft_server *b = &r.configuration_committed.servers[i];
        CHECK(a->id == b->id && a->role == b->role);
        CHECK(strcmp(a->address, b->address) == 0);
        CHECK(a->address != b->address); /* its own copy */
    }
    CHECK(glue__conf_snapshot_ok(&r));
    CHECK(glue__conf_repair(&r, &index) == 0); /* once */

    raft_configuration_close(&r.configuration);
    raft_configuration_close(&r.configuration_committed);
    printf("conf-track: ok\n");
    return 0;
}
