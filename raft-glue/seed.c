/* Seeding a node of a restored cluster: contract in glue.h
 * (kyufu_glue_seed_store), why a Raft snapshot and not a store with its
 * applied index reset in docs/restore.md.
 *
 * Happy path: the restored store's snapshot stream (canonical: the bytes
 * the backup held) written chunk by chunk to an unnamed file in raft_dir,
 * sealed behind a version-2 header when the store is keyed, as the node's
 * own snapshots are, and mapped read-only (stream_file.h) → offline raft_uv
 * (offline_io.h) → io->load must find nothing (term 0, no snapshot, no
 * entry) → io->snapshot_put with trailing 0 (the install path: no log kept
 * behind it) of {glue header, the mapping} at the store's (index, term)
 * with the peers as voters → run the loop until its callback →
 * io->set_term(term) → close.  The current term is set last: a directory
 * with a term but no snapshot would look like a node that lost its log.
 * raft_uv takes a snapshot as buffers in memory; a file mapping is page
 * cache the kernel can drop, so the seeding process never holds the
 * stream in its own memory (docs/restore.md "Memory").
 *
 * Failure modes: a failed write leaves a partial directory (raft_uv writes
 * the snapshot under a temporary name first); the caller deletes the data
 * folder and seeds again.  The unnamed file disappears with its mapping. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "frame.h"
#include "glue.h"
#include "offline_io.h"
#include "seal.h"
#include "storage_limits.h"
#include "stream_file.h"

#define errf glue__rio_errf

struct put
{
    struct raft_io_snapshot_put req;
    bool done;
    int status;
};

static void put_done(struct raft_io_snapshot_put *req, int status)
{
    struct put *p = req->data;
    p->done = true;
    p->status = status;
}

static int empty(struct glue_rio *x, const char *raft_dir, char *errmsg,
                 size_t errmsg_len)
{
    raft_term term = 0;
    raft_id vote = 0;
    struct raft_snapshot *snap = NULL;
    raft_index start = 0;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    int rv = x->io.load(&x->io, &term, &vote, &snap, &start, &entries, &n);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "%s: %s (%s)", raft_dir, raft_strerror(rv),
             x->io.errmsg);
        return KYUFU_GLUE_ECONFIG;
    }
    bool pristine = term == 0 && snap == NULL && n == 0;
    /* A non-empty directory is refused (kyufu never seeds over a log). */
    glue__rio_free_loaded(snap, entries, n);
    if (!pristine) {
        errf(errmsg, errmsg_len, "%s already holds a Raft log (term %" PRIu64
             "): seed only a new node's empty data folder", raft_dir,
             (uint64_t)term);
        return KYUFU_GLUE_ECONFIG;
    }
    return 0;
}

/* The configuration with every peer a voter; 0, or an error (said). */
static int seed_configuration(struct raft_configuration *conf, uint64_t id,
                              const struct kyufu_glue_peer *peers,
                              size_t n_peers, char *errmsg, size_t errmsg_len)
{
    bool me = false;
    raft_configuration_init(conf);
    for (size_t i = 0; i < n_peers; i++) {
        me |= peers[i].id == id;
        int rv = raft_configuration_add(conf, peers[i].id, peers[i].address,
                                        RAFT_VOTER);
        if (rv != 0) {
            errf(errmsg, errmsg_len, "seed: peer %" PRIu64 " (%s): %s",
                 peers[i].id, peers[i].address, raft_strerror(rv));
            raft_configuration_close(conf);
            return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EINVALID;
        }
    }
    if (!me) {
        errf(errmsg, errmsg_len, "seed: node %" PRIu64 " is not among the peers",
             id);
        raft_configuration_close(conf);
        return KYUFU_GLUE_EINVALID;
    }
    return 0;
}

/* Write the Raft snapshot {bufs[0], bufs[1]} at (index, term) with conf
 * (taken: closed here) into the pristine raft_dir, then the term. */
static int seed_put(const char *raft_dir, uint64_t id, const char *address,
                    struct raft_configuration *conf, uint64_t index,
                    uint64_t term, struct raft_buffer bufs[2], char *errmsg,
                    size_t errmsg_len)
{
    struct raft_snapshot snap;
    struct put put;
    struct glue_rio x;
    memset(&snap, 0, sizeof snap);
    snap.configuration = *conf;
    snap.index = index;
    snap.term = term;
    snap.configuration_index = index;
    snap.bufs = bufs;
    snap.n_bufs = 2;
    int rv = glue__rio_open(&x, raft_dir, id, address, errmsg, errmsg_len);
    if (rv != 0) {
        goto out;
    }
    rv = empty(&x, raft_dir, errmsg, errmsg_len);
    if (rv != 0) {
        goto out;
    }
    memset(&put, 0, sizeof put);
    put.req.data = &put;
    rv = x.io.snapshot_put(&x.io, 0, &put.req, &snap, put_done);
    if (rv == 0) {
        while (!put.done && uv_run(&x.loop, UV_RUN_ONCE) != 0) {
        }
        rv = put.done ? put.status : RAFT_IOERR;
    }
    if (rv == 0) {
        rv = x.io.set_term(&x.io, term);
    }
    if (rv != 0) {
        errf(errmsg, errmsg_len, "seed %s: %s (%s)", raft_dir,
             raft_strerror(rv), x.io.errmsg);
        rv = rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
    }
out:
    glue__rio_close(&x);
    raft_configuration_close(&snap.configuration);
    return rv;
}

/* Write the store's stream (sealed when k) to an unnamed file in raft_dir,
 * mapped: 0, or an error (said). */
static int write_store_stream(struct kyufu_storage *store,
                              const char *raft_dir,
                              const struct glue_stream_key *k,
                              const uint8_t *header, size_t header_len,
                              struct glue_stream_file *file, char *errmsg,
                              size_t errmsg_len)
{
    struct kyufu_storage_snapshot *snap = NULL;
    int rv = kyufu_storage_snapshot_begin(store, &snap);
    if (rv == 0) {
        rv = glue__stream_file_write(file, raft_dir, 0, snap, k, header,
                                     header_len);
        kyufu_storage_snapshot_end(snap);
    }
    if (rv != 0) {
        errf(errmsg, errmsg_len, "seed: the store's snapshot stream: %s%s%s%s%s",
             kyufu_storage_strerror(rv), file->err != 0 ? ": " : "",
             file->err != 0 ? file->what : "", file->err != 0 ? ": " : "",
             file->err != 0 ? strerror(file->err) : "");
        return rv == KYUFU_STORAGE_ENOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EIO;
    }
    return 0;
}

int kyufu_glue_seed_store(const char *raft_dir,
                          uint64_t id,
                          const char *address,
                          const struct kyufu_glue_peer *peers,
                          size_t n_peers,
                          struct kyufu_storage *store,
                          char *errmsg,
                          size_t errmsg_len)
{
    uint8_t header[GLUE_SNAPSHOT2_HEADER_BYTES];
    struct raft_configuration conf;
    struct raft_buffer bufs[2];
    struct glue_snapshot_header h;
    struct glue_stream_key k;
    struct glue_stream_file file = {.fd = -1};
    uint64_t index = 0, term = 0;
    int rv;

    if (raft_dir == NULL || address == NULL || peers == NULL ||
        store == NULL || id == 0 || n_peers == 0) {
        errf(errmsg, errmsg_len, "seed: raft_dir, address, peers, a store "
             "and an id > 0 needed");
        return KYUFU_GLUE_EINVALID;
    }
    kyufu_storage_applied(store, &index, &term);
    if (index == 0 || term == 0) {
        errf(errmsg, errmsg_len, "seed: the store is at index %" PRIu64
             " term %" PRIu64 ": nothing to seed", index, term);
        return KYUFU_GLUE_EINVALID;
    }
    rv = seed_configuration(&conf, id, peers, n_peers, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    memset(&k, 0, sizeof k);
    memset(&h, 0, sizeof h);
    h.raft_index = index;
    h.storage_index = index;
    h.storage_term = term;
    bool sealed = kyufu_storage_keys_present(store);
    if (sealed) {
        h.key_version = kyufu_storage_keys_active(store);
        h.own_key = glue__snapshot_own_key(store);
    }
    if (sealed && (RAND_bytes(h.id, sizeof h.id) != 1 ||
                   glue__snapshot_header_key(store, &h, &k) != 0)) {
        errf(errmsg, errmsg_len, "seed: cannot seal the snapshot");
        rv = KYUFU_GLUE_ENOMEM;
        goto out;
    }
    glue__snapshot_header_write(header, &h);
    rv = write_store_stream(store, raft_dir, sealed ? &k : NULL, header,
                            glue__snapshot_header_size(&h), &file, errmsg,
                            errmsg_len);
    if (rv != 0) {
        goto out;
    }
    bufs[0].base = header;
    bufs[0].len = glue__snapshot_header_size(&h);
    bufs[1].base = file.map; /* raft_uv only reads it */
    bufs[1].len = file.len;
    rv = seed_put(raft_dir, id, address, &conf, index, term, bufs, errmsg,
                  errmsg_len);
    conf.n = 0; /* closed by seed_put */
out:
    if (conf.n != 0) {
        raft_configuration_close(&conf);
    }
    glue__stream_file_close(&file);
    glue__stream_key_wipe(&k);
    return rv;
}
