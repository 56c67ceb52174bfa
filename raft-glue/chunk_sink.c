/* A snapshot's stream into a sink: see chunk_sink.h. */
#include "chunk_sink.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

#include "storage_limits.h"

/* Where storage writes in a buffer of ours: after room for the seal's
 * head when sealing, at its start otherwise. */
static size_t lead(const struct glue_chunk_sink *k)
{
    return k->key != NULL ? GLUE_CHUNK_HEAD_BYTES : 0;
}

/* storage's allocator.  Every buffer has one capacity, the first chunk
 * size storage asks for (its chunk size, every time), with room for the
 * sealed form either way: so the spare fits whatever comes next. */
static void *chunk_alloc(void *arg, size_t len)
{
    struct glue_chunk_sink *k = arg;
    uint8_t *buf;
    if (k->cap == 0) {
        k->cap = len;
    }
    assert(len <= k->cap && k->cap <= KYUFU_SNAPSHOT_CHUNK_BYTES_MAX);
    if (k->spare != NULL) {
        buf = k->spare;
        k->spare = NULL;
    } else {
        buf = raft_malloc(glue__chunk_sealed_size(k->cap));
        if (buf == NULL) {
            return NULL;
        }
    }
    return buf + lead(k);
}

static void *base_of(const struct glue_chunk_sink *k, void *chunk)
{
    return (uint8_t *)chunk - lead(k);
}

static int seal_pending(struct glue_chunk_sink *k, bool last)
{
    if (k->pending == NULL) { /* storage wrote nothing: an empty chunk */
        k->pending = chunk_alloc(k, 0);
        k->pending_len = 0;
        if (k->pending == NULL) {
            return KYUFU_STORAGE_ENOMEM;
        }
    }
    uint8_t *buf = base_of(k, k->pending);
    size_t size = glue__chunk_sealed_size(k->pending_len);
    if (glue__chunk_seal(k->key, k->header, k->header_len, k->number, last,
                         k->pending, k->pending_len, buf) != 0) {
        /* An allocation or OpenSSL failure: the snapshot is retried. */
        return KYUFU_STORAGE_ENOMEM;
    }
    k->pending = NULL;
    k->pending_len = 0;
    k->number++;
    return k->out(k, buf, size);
}

/* storage's emit: owns chunk. */
static int emit(void *arg, void *chunk, size_t len)
{
    struct glue_chunk_sink *k = arg;
    if (k->key == NULL) {
        return k->out(k, chunk, len);
    }
    if (k->pending != NULL) {
        int rv = seal_pending(k, false);
        if (rv != 0) {
            kyufu_storage_crypto_wipe(chunk, len); /* plaintext */
            raft_free(base_of(k, chunk));
            return rv;
        }
    }
    k->pending = chunk;
    k->pending_len = len;
    return 0;
}

int glue__chunk_sink_write(struct glue_chunk_sink *k,
                           struct kyufu_storage_snapshot *snap)
{
    int rv = kyufu_storage_snapshot_write(snap, chunk_alloc, emit, k);
    if (rv == 0 && k->key != NULL) {
        rv = seal_pending(k, true); /* the last chunk goes out */
    }
    if (k->pending != NULL) {
        /* Plaintext of a sealed snapshot: wiped before it goes back. */
        kyufu_storage_crypto_wipe(k->pending, k->pending_len);
        raft_free(base_of(k, k->pending));
        k->pending = NULL;
    }
    raft_free(k->spare);
    k->spare = NULL;
    return rv;
}

int glue__chunk_sink_buffers(struct glue_chunk_sink *k, void *buf, size_t len)
{
    struct glue_chunk_buffers *b = k->arg;
    struct raft_buffer *bufs = raft_realloc(b->bufs, (b->n + 1) * sizeof *bufs);
    if (bufs == NULL) {
        raft_free(buf);
        return KYUFU_STORAGE_ENOMEM;
    }
    b->bufs = bufs;
    b->bufs[b->n].base = buf;
    b->bufs[b->n].len = len;
    b->n++;
    return 0;
}
