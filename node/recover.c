/* kyufud --recover: contract in recover.h.  Happy path: lock the data
 * folder → kyufu_glue_log_inspect → statement → confirmation → 
 * kyufu_glue_recover (which reads the log again and writes only if it is
 * still what was shown) → unlock.  Every refusal before the last step
 * writes nothing (the lock file aside, which a stopped node's folder
 * already has). */
#include "recover.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "glue.h"
#include "lock.h"
#include "node.h"

/* "recover node 18446744073709551615" and a newline, with room. */
#define RECOVER_CONFIRM_LINE_BYTES 64

static void statement(FILE *out,
                      const struct kyufu_config *c,
                      const struct kyufu_glue_log_info *l)
{
    fprintf(out,
            "Quorum-loss recovery of node %" PRIu64 " (data folder %s).\n"
            "Its Raft log ends at index %" PRIu64 ", term %" PRIu64
            " (current term %" PRIu64 "%s).\n"
            "Its latest configuration (index %" PRIu64 ") has:",
            c->id, c->data_dir, l->last_index, l->last_term, l->term,
            l->snapshot_index > 0 ? ", with a snapshot" : "",
            l->configuration_index);
    for (size_t i = 0; i < l->n_members && i < KYUFU_GLUE_RECOVER_MEMBERS_MAX; i++) {
        fprintf(out, " %" PRIu64 " (%s)", l->members[i].id,
                kyufu_glue_role_name(l->members[i].role));
    }
    fprintf(out,
            "\n"
            "After recovery node %" PRIu64 " is the only voter of a new cluster "
            "configuration and runs alone until nodes are added.\n"
            "WHAT MAY BE LOST: every entry after index %" PRIu64 " that the other "
            "members stored and this node never received is gone for good.  A "
            "write the cluster acknowledged was stored by a majority: if this "
            "node was part of the majority until the end, it has every "
            "acknowledged write; if it was cut off before the others stopped, "
            "writes acknowledged after it was cut off are lost.\n"
            "The old members must never run again with their old data "
            "(delete their data folders): they would form a second cluster.\n",
            c->id, l->last_index);
}

/* 0 when the operator typed exactly "recover node ID". */
static int confirmed(FILE *in, FILE *out, uint64_t id)
{
    char want[RECOVER_CONFIRM_LINE_BYTES];
    char line[RECOVER_CONFIRM_LINE_BYTES];
    snprintf(want, sizeof want, "recover node %" PRIu64, id);
    fprintf(out, "To go ahead, type: %s\n> ", want);
    fflush(out);
    if (fgets(line, sizeof line, in) == NULL) {
        return -1;
    }
    size_t n = strcspn(line, "\r\n");
    if (line[n] == '\0' && n == sizeof line - 1) {
        return -1; /* longer than any right answer */
    }
    line[n] = '\0';
    return strcmp(line, want) == 0 ? 0 : -1;
}

int kyufu_node_recover(const struct kyufu_config *c, bool yes, FILE *in, FILE *out)
{
    char errmsg[512];
    char raft_dir[KYUFU_NODE_PATH_BYTES_MAX + 16];
    struct kyufu_glue_log_info info;
    int rv;

    snprintf(raft_dir, sizeof raft_dir, "%s/raft", c->data_dir);
    if (access(raft_dir, F_OK) != 0) {
        /* Checked before the lock, which would create the data folder. */
        fprintf(stderr, "kyufud: --recover: no Raft log at %s: %s; nothing "
                "changed\n", raft_dir, strerror(errno));
        return 1;
    }
    int lock = kyufu_node_lock(c->data_dir, errmsg, sizeof errmsg);
    if (lock < 0) {
        fprintf(stderr, "kyufud: --recover: %s; nothing changed\n", errmsg);
        return 1;
    }
    rv = kyufu_glue_log_inspect(raft_dir, c->id, c->raft_address, &info,
                                errmsg, sizeof errmsg);
    if (rv != 0) {
        fprintf(stderr, "kyufud: --recover: %s; nothing changed\n", errmsg);
        kyufu_node_unlock(lock);
        return rv == KYUFU_GLUE_ECORRUPT ? KYUFU_NODE_EXIT_REFUSED_DATA : 1;
    }
    statement(out, c, &info);
    if (yes) {
        fprintf(out, "Confirmed by --yes.\n");
    } else if (confirmed(in, out, c->id) != 0) {
        fprintf(out, "\n");
        fprintf(stderr, "kyufud: --recover: not confirmed; nothing changed\n");
        kyufu_node_unlock(lock);
        return 1;
    }
    rv = kyufu_glue_recover(raft_dir, c->id, c->raft_address, &info, errmsg,
                            sizeof errmsg);
    kyufu_node_unlock(lock);
    if (rv != 0) {
        fprintf(stderr, "kyufud: --recover: %s%s\n", errmsg,
                rv == KYUFU_GLUE_EIO ? "" : "; nothing changed");
        return rv == KYUFU_GLUE_ECORRUPT ? KYUFU_NODE_EXIT_REFUSED_DATA : 1;
    }
    fprintf(out,
            "Recovered: node %" PRIu64 " is the only voter (configuration at "
            "index %" PRIu64 ").  Next: start kyufud on it, then add nodes "
            "(kyufuctl node new, kyufuctl cluster add-node).\n",
            c->id, info.last_index + 1);
    return fflush(out) == 0 ? 0 : 1;
}
