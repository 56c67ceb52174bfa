/* raft-glue/conf_track.h on a hand-built struct raft (libraft 0.22.1's
 * public fields): when a snapshot may be taken, and the repair of a
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

int main(void)
{
    struct raft r;
    raft_index index = 0;

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
