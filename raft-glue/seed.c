/* Seeding a node of a restored cluster: contract in glue.h
 * (kyufu_glue_seed), why a Raft snapshot and not a store with its applied
 * index reset in docs/restore.md.
 *
 * Happy path: offline raft_uv (offline_io.h) → io->load must find nothing
 * (term 0, no snapshot, no entry) → (a keyed store: the stream sealed in
 * chunks behind a version-2 header, seal.h) → io->snapshot_put with trailing 0 (the
 * install path: no log kept behind it) of {glue header, stream} at
 * (index, term) with the peers as voters → run the loop until its callback
 * → io->set_term(term) → close.  The current term is set last: a directory
 * with a term but no snapshot would look like a node that lost its log.
 *
 * Failure modes: a failed write leaves a partial directory (raft_uv writes
 * the snapshot under a temporary name first); the caller deletes the data
 * folder and seeds again. */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "frame.h"
#include "glue.h"
#include "offline_io.h"
#include "seal.h"
#include "storage_limits.h"

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

/* The stream sealed in chunks after header h (seal.h), malloc'd into
 * *out (*out_len bytes).  0, or KYUFU_GLUE_ENOMEM. */
static int seal_stream(const struct kyufu_storage *store,
                       struct glue_snapshot_header *h, uint8_t *header,
                       const uint8_t *stream, size_t len, uint8_t **out,
                       size_t *out_len)
{
    struct glue_stream_key k;
    memset(&k, 0, sizeof k);
    if (glue__stream_key_load(store, kyufu_storage_keys_active(store), &k) != 0 ||
        RAND_bytes(h->id, sizeof h->id) != 1) {
        glue__stream_key_wipe(&k);
        return KYUFU_GLUE_ENOMEM;
    }
    h->key_version = k.version;
    glue__snapshot_header_write(header, h);
    size_t header_len = glue__snapshot_header_size(h);
    size_t total = 0;
    for (size_t off = 0; off < len; off += KYUFU_SNAPSHOT_CHUNK_BYTES_MAX) {
        size_t n = len - off < KYUFU_SNAPSHOT_CHUNK_BYTES_MAX
                       ? len - off
                       : KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
        total += glue__chunk_sealed_size(n);
    }
    uint8_t *buf = malloc(total);
    int rv = buf == NULL ? KYUFU_GLUE_ENOMEM : 0;
    size_t at = 0;
    uint64_t number = 0;
    for (size_t off = 0; rv == 0 && off < len;
         off += KYUFU_SNAPSHOT_CHUNK_BYTES_MAX, number++) {
        size_t n = len - off < KYUFU_SNAPSHOT_CHUNK_BYTES_MAX
                       ? len - off
                       : KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
        if (glue__chunk_seal(&k, header, header_len, number, off + n == len,
                             stream + off, n, buf + at) != 0) {
            rv = KYUFU_GLUE_ENOMEM;
        }
        at += glue__chunk_sealed_size(n);
    }
    glue__stream_key_wipe(&k);
    if (rv != 0) {
        free(buf);
        return rv;
    }
    assert(at == total);
    *out = buf;
    *out_len = total;
    return 0;
}

int kyufu_glue_seed(const char *raft_dir,
                    uint64_t id,
                    const char *address,
                    const struct kyufu_glue_peer *peers,
                    size_t n_peers,
                    uint64_t index,
                    uint64_t term,
                    const uint8_t *stream,
                    size_t len,
                    const struct kyufu_storage *store,
                    char *errmsg,
                    size_t errmsg_len)
{
    uint8_t header2[GLUE_SNAPSHOT2_HEADER_BYTES];
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    struct raft_snapshot snap;
    struct raft_buffer bufs[2];
    struct glue_snapshot_header h;
    uint8_t header[GLUE_SNAPSHOT_HEADER_BYTES];
    struct put put;
    struct glue_rio x;
    bool me = false;
    int rv;

    if (raft_dir == NULL || address == NULL || peers == NULL || stream == NULL ||
        id == 0 || index == 0 || term == 0 || n_peers == 0 || len == 0) {
        errf(errmsg, errmsg_len, "seed: raft_dir, address, peers, a stream, "
             "id, index and term > 0 needed");
        return KYUFU_GLUE_EINVALID;
    }
    memset(&snap, 0, sizeof snap);
    raft_configuration_init(&snap.configuration);
    for (size_t i = 0; i < n_peers; i++) {
        me |= peers[i].id == id;
        rv = raft_configuration_add(&snap.configuration, peers[i].id,
                                    peers[i].address, RAFT_VOTER);
        if (rv != 0) {
            errf(errmsg, errmsg_len, "seed: peer %" PRIu64 " (%s): %s",
                 peers[i].id, peers[i].address, raft_strerror(rv));
            raft_configuration_close(&snap.configuration);
            return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_EINVALID;
        }
    }
    if (!me) {
        errf(errmsg, errmsg_len, "seed: node %" PRIu64 " is not among the peers",
             id);
        raft_configuration_close(&snap.configuration);
        return KYUFU_GLUE_EINVALID;
    }
    memset(&h, 0, sizeof h);
    h.raft_index = index;
    h.storage_index = index;
    h.storage_term = term;
    glue__snapshot_header_write(header, &h);
    bufs[0].base = header;
    bufs[0].len = sizeof header;
    bufs[1].base = (void *)stream; /* raft_uv only reads it */
    bufs[1].len = len;
    if (store != NULL && kyufu_storage_keys_present(store)) {
        rv = seal_stream(store, &h, header2, stream, len, &sealed, &sealed_len);
        if (rv != 0) {
            errf(errmsg, errmsg_len, "seed: cannot seal the snapshot");
            raft_configuration_close(&snap.configuration);
            return rv;
        }
        bufs[0].base = header2;
        bufs[0].len = glue__snapshot_header_size(&h);
        bufs[1].base = sealed;
        bufs[1].len = sealed_len;
    }
    snap.index = index;
    snap.term = term;
    snap.configuration_index = index;
    snap.bufs = bufs;
    snap.n_bufs = 2;

    assert(me && snap.configuration.n == n_peers && snap.n_bufs == 2);
    assert(snap.configuration_index == snap.index);
    rv = glue__rio_open(&x, raft_dir, id, address, errmsg, errmsg_len);
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
    free(sealed);
    return rv;
}
