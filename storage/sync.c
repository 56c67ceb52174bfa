/* The store's durability point: kyufu_storage_sync and the durable applied
 * index (contract in storage.h, "durability"; design in docs/storage.md,
 * "Crash windows").
 *
 * A store opened `no_sync` (MDB_NOSYNC) commits without flushing; its owner
 * calls kyufu_storage_sync now and then, on any thread.  LMDB's
 * mdb_env_sync(env, 1) is one fdatasync of the data file (mdb.c
 * mdb_env_sync0, without MDB_WRITEMAP): it takes neither the write lock nor
 * a reader slot, so it may run on a work thread while the loop thread
 * commits.  Every commit that returned before the call started is on disk
 * when it returns, meta page included; a commit running meanwhile may or may
 * not be.  Hence the caller passes the applied index it read *before*
 * calling, and that index becomes durable.  A renew of the environment
 * after a restore (env.c) waits for a sync in progress. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

int kyufu_storage_sync(struct kyufu_storage *s,
                       uint64_t upto,
                       char *errmsg,
                       size_t errmsg_len)
{
    KYUFU_ASSERT(s != NULL);
    /* Shared with other syncs, exclusive of a renew (env.c), which closes
     * and opens env on the loop thread. */
    pthread_rwlock_rdlock(&s->env_lock);
    int mrv = s->env != NULL ? mdb_env_sync(s->env, 1) : EIO;
    pthread_rwlock_unlock(&s->env_lock);
    if (mrv != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "sync: %s",
                              mdb_strerror(mrv));
        /* A failed fdatasync may have dropped dirty pages (Linux marks them
         * clean): nothing after the last good sync can be trusted to be on
         * disk, and retrying would report a success that is not one. */
        return KYUFU_STORAGE_EIO;
    }
    kyufu_storage__durable_raise(s, upto);
    return 0;
}

void kyufu_storage__durable_raise(struct kyufu_storage *s, uint64_t upto)
{
    uint64_t cur = atomic_load(&s->durable_index);
    while (cur < upto &&
           !atomic_compare_exchange_weak(&s->durable_index, &cur, upto)) {
    }
}

bool kyufu_storage_syncs_commits(struct kyufu_storage *s)
{
    KYUFU_ASSERT(s != NULL);
    return !s->no_sync;
}

uint64_t kyufu_storage_durable(struct kyufu_storage *s)
{
    KYUFU_ASSERT(s != NULL);
    return atomic_load(&s->durable_index);
}
