/* Which peers the Raft transport dials: dial_policy.h. */
#include "dial_policy.h"

#include <assert.h>

static bool in_conf(const struct raft_configuration *conf, raft_id id)
{
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == id) {
            return true;
        }
    }
    return false;
}

static bool seen(const struct glue_dial_policy *p, raft_id id)
{
    for (unsigned i = 0; i < KYUFU_GLUE_MEMBERS_SEEN_MAX; i++) {
        if (p->seen[i] == id) {
            return true;
        }
    }
    return false;
}

static void remember(struct glue_dial_policy *p, raft_id id)
{
    if (seen(p, id)) {
        return;
    }
    for (unsigned i = 0; i < KYUFU_GLUE_MEMBERS_SEEN_MAX; i++) {
        if (p->seen[i] == 0) {
            p->seen[i] = id;
            return;
        }
    }
    p->seen[p->next] = id;
    p->next = (p->next + 1) % KYUFU_GLUE_MEMBERS_SEEN_MAX;
}

bool glue__dial_ok(struct glue_dial_policy *p,
                   const struct raft_configuration *conf,
                   raft_id id)
{
    assert(p != NULL && conf != NULL);
    assert(id > 0);
    if (in_conf(conf, id)) {
        remember(p, id);
        return true;
    }
    if (conf->n == 0 || !seen(p, id)) {
        return true;
    }
    p->n_skipped++;
    return false;
}
