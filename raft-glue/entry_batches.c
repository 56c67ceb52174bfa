/* Loaded entries, one batch each: see entry_batches.h. */
#include "entry_batches.h"

#include <stdlib.h>
#include <string.h>

int glue__entry_batches_unshare(struct raft_entry *entries, size_t n)
{
    void **copies;
    size_t i;
    if (n == 0) {
        return 0;
    }
    copies = calloc(n, sizeof *copies);
    if (copies == NULL) {
        return RAFT_NOMEM;
    }
    /* Copy first, so that a failure leaves the entries as they were. */
    for (i = 0; i < n; i++) {
        size_t len = entries[i].buf.len;
        copies[i] = raft_malloc(len > 0 ? len : 1);
        if (copies[i] == NULL) {
            while (i-- > 0) {
                raft_free(copies[i]);
            }
            free(copies);
            return RAFT_NOMEM;
        }
        if (len > 0) {
            memcpy(copies[i], entries[i].buf.base, len);
        }
    }
    /* A batch's entries are consecutive (one segment, or one batch of it);
     * an entry without a batch owned its buffer. */
    for (i = 0; i < n; i++) {
        void *batch = entries[i].batch;
        if (batch == NULL) {
            raft_free(entries[i].buf.base);
        } else if (i == 0 || batch != entries[i - 1].batch) {
            raft_free(batch);
        }
    }
    /* No batch: raft then frees each payload on its own when its count
     * drops (log.c destroyEntry, logRelease), as it does for every entry
     * it copies itself (entryCopy), without scanning the log for other
     * users of a batch (isBatchReferenced: a scan per entry, quadratic in
     * the loaded log if each had a batch of its own). */
    for (i = 0; i < n; i++) {
        entries[i].buf.base = copies[i];
        entries[i].batch = NULL;
    }
    free(copies);
    return 0;
}

void glue__rio_free_loaded(struct raft_snapshot *snap,
                           struct raft_entry *entries,
                           size_t n)
{
    if (snap != NULL) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++) {
            raft_free(snap->bufs[i].base);
        }
        raft_free(snap->bufs);
        raft_free(snap);
    }
    if (entries != NULL) {
        void *batch = NULL;
        for (size_t i = 0; i < n; i++) {
            if (entries[i].batch == NULL) {
                raft_free(entries[i].buf.base); /* its own (entry_batches.h) */
            } else if (entries[i].batch != batch) {
                batch = entries[i].batch;
                raft_free(batch);
            }
        }
        raft_free(entries);
    }
}
