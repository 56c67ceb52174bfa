/* AppendEntries anchored at this node's snapshot: see append_anchor.h.
 *
 * Entry memory: a received AppendEntries owns one array of entries and one
 * batch buffer shared by all of them; raft frees entries[0].batch and the
 * array after handling the message (legacy.c recvCb).  Dropping entries
 * therefore moves the kept ones to the front of the same array, and a
 * message left with none frees both here, as raft would. */
#include "append_anchor.h"

#include <assert.h>
#include <string.h>

void glue__append_anchor_init(struct glue_append_anchor *a)
{
    memset(a, 0, sizeof *a);
}

void glue__append_anchor_snapshot(struct glue_append_anchor *a,
                                  raft_index index,
                                  raft_term term)
{
    if (index > a->index) {
        assert(term > 0);
        a->index = index;
        a->term = term;
    }
}

static void drop_all(struct raft_append_entries *ae)
{
    if (ae->n_entries > 0) {
        raft_free(ae->entries[0].batch);
        raft_free(ae->entries);
    }
    ae->entries = NULL;
    ae->n_entries = 0;
}

void glue__append_anchor_recv(struct glue_append_anchor *a,
                              struct raft_message *m)
{
    struct raft_append_entries *ae = &m->append_entries;
    raft_index s = a->index;
    raft_index end;

    if (m->type != RAFT_APPEND_ENTRIES || s == 0 || ae->prev_log_index >= s) {
        return;
    }
    end = ae->prev_log_index + ae->n_entries;
    if (ae->n_entries > 0 &&
        ae->entries[0].batch != ae->entries[ae->n_entries - 1].batch) {
        return; /* not one batch: not a layout this knows how to trim */
    }
    if (end >= s) {
        size_t d = (size_t)(s - ae->prev_log_index); /* entries up to s */
        if (ae->entries[d - 1].term != a->term) {
            a->n_conflict++;
            return;
        }
        if (d == ae->n_entries) {
            drop_all(ae);
        } else {
            memmove(ae->entries, ae->entries + d,
                    (ae->n_entries - d) * sizeof *ae->entries);
            ae->n_entries -= (unsigned)d;
        }
        a->n_trimmed++;
    } else {
        drop_all(ae);
        a->n_anchored++;
    }
    ae->prev_log_index = s;
    ae->prev_log_term = a->term;
}
