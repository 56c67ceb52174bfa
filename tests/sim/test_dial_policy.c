/* raft-glue's dial policy (dial_policy.h): a removed member is not dialled
 * any more, every other peer is.
 *
 *   - an empty configuration (a node waiting to join) dials anyone;
 *   - a member is dialled and remembered; once a configuration without it
 *     is the latest, it is not dialled (each refusal counted), until it is
 *     a member again;
 *   - an id never seen as a member (a newer configuration's member) is
 *     dialled;
 *   - past KYUFU_GLUE_MEMBERS_SEEN_MAX remembered ids the oldest is
 *     forgotten, and so dialled again.
 *
 * Pure: no loop, no sockets. */
#include <raft.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "dial_policy.h"

/* conf := the ids of ids[] (0-terminated), voters at made-up addresses. */
static void set_conf(struct raft_configuration *conf, const raft_id *ids)
{
    raft_configuration_close(conf);
    raft_configuration_init(conf);
    for (; *ids != 0; ids++) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%llu",
                 (unsigned long long)(7000 + *ids));
        CHECK(raft_configuration_add(conf, *ids, addr, RAFT_VOTER) == 0);
    }
}

int main(void)
{
    struct glue_dial_policy p;
    struct raft_configuration conf;
    memset(&p, 0, sizeof p);
    raft_configuration_init(&conf);

    /* Waiting to join: no configuration yet, the leader's id unknown. */
    CHECK(glue__dial_ok(&p, &conf, 1));
    CHECK(glue__dial_ok(&p, &conf, 9));

    set_conf(&conf, (raft_id[]){1, 2, 3, 0});
    CHECK(glue__dial_ok(&p, &conf, 2));
    CHECK(glue__dial_ok(&p, &conf, 3));
    CHECK(p.n_skipped == 0);

    /* 3 replaced by 4: 3 is not dialled, 4 is, 5 (unknown here) is. */
    set_conf(&conf, (raft_id[]){1, 2, 4, 0});
    CHECK(!glue__dial_ok(&p, &conf, 3));
    CHECK(!glue__dial_ok(&p, &conf, 3));
    CHECK(p.n_skipped == 2);
    CHECK(glue__dial_ok(&p, &conf, 4));
    CHECK(glue__dial_ok(&p, &conf, 5));
    CHECK(p.n_skipped == 2);

    /* 3 added back (the same id, docs/operations.md's repair): dialled. */
    set_conf(&conf, (raft_id[]){1, 2, 3, 4, 0});
    CHECK(glue__dial_ok(&p, &conf, 3));
    CHECK(p.n_skipped == 2);

    /* An empty configuration again dials anyone, removed or not. */
    set_conf(&conf, (raft_id[]){0});
    CHECK(glue__dial_ok(&p, &conf, 2));

    /* Remembering is bounded: 2, 3, 4 (1 was only dialled with no
     * configuration) and then 100.. until full, and one
     * more: the oldest (2) is forgotten and dialled again, 3 is not. */
    raft_id one[2] = {0, 0};
    for (raft_id id = 100; id < 100 + KYUFU_GLUE_MEMBERS_SEEN_MAX - 3; id++) {
        one[0] = id;
        set_conf(&conf, one);
        CHECK(glue__dial_ok(&p, &conf, id));
    }
    set_conf(&conf, (raft_id[]){1, 0});
    CHECK(!glue__dial_ok(&p, &conf, 2));
    CHECK(!glue__dial_ok(&p, &conf, 3));
    set_conf(&conf, (raft_id[]){1000, 0});
    CHECK(glue__dial_ok(&p, &conf, 1000)); /* overwrites 2 */
    set_conf(&conf, (raft_id[]){1, 0});
    CHECK(glue__dial_ok(&p, &conf, 2));
    CHECK(!glue__dial_ok(&p, &conf, 3));

    raft_configuration_close(&conf);
    printf("dial policy: ok\n");
    return 0;
}
