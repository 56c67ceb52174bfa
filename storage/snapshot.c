/* Snapshots: a consistent view of the whole state serialized as a
 * self-checking stream (docs/snapshot-format.md), and restore from one.
 *
 * Happy path: begin opens a read txn on the loop thread (MDB_NOTLS lets
 * another thread use it) and counts it, so the map does not grow under it;
 * write walks every database in the fixed order and hands out chunks of at
 * most KYUFU_SNAPSHOT_CHUNK_BYTES_MAX, hashing each chunk as it is handed
 * out, the SHA-256 trailer in the last chunk; end releases the txn.  Only one chunk is held
 * at a time: the stream is never built twice in memory.
 *
 * Restore: snapshot_restore.c.
 */
#include <openssl/evp.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "snapshot_format.h"

#define MAGIC KYUFU_SNAP_MAGIC
#define FORMAT_VERSION KYUFU_SNAP_FORMAT_VERSION
#define HEADER_BYTES KYUFU_SNAP_HEADER_BYTES
#define END_MARK KYUFU_SNAP_END_MARK
#define END_BYTES KYUFU_SNAP_END_BYTES
#define TRAILER_BYTES KYUFU_SNAP_TRAILER_BYTES
#define RECORD_HEAD_BYTES KYUFU_SNAP_RECORD_HEAD_BYTES

struct kyufu_storage_snapshot
{
    struct kyufu_storage *s;
    MDB_txn *txn;
    uint64_t index;
    uint64_t term;
};

int kyufu_storage_snapshot_begin(struct kyufu_storage *s,
                                 struct kyufu_storage_snapshot **out)
{
    struct kyufu_storage_snapshot *snap = calloc(1, sizeof *snap);
    int rv;
    if (snap == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    /* Held until the snapshot is counted: the map must not grow between
     * the txn's begin and the count that forbids growth (storage.h). */
    pthread_mutex_lock(&s->snap_lock);
    /* No environment after a failed renew (env.c): the node is stopping. */
    int mrv = s->env != NULL
                  ? mdb_txn_begin(s->env, NULL, MDB_RDONLY, &snap->txn)
                  : EIO;
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_lock;
    }
    rv = kyufu_storage__meta_get_u64(s, snap->txn, KYUFU_META_APPLIED_INDEX,
                                     &snap->index);
    if (rv == 0) {
        rv = kyufu_storage__meta_get_u64(s, snap->txn,
                                         KYUFU_META_APPLIED_TERM, &snap->term);
    }
    if (rv != 0) {
        goto err_after_txn;
    }
    snap->s = s;
    s->snapshots++;
    pthread_mutex_unlock(&s->snap_lock);
    *out = snap;
    return 0;

err_after_txn:
    mdb_txn_abort(snap->txn);
err_after_lock:
    pthread_mutex_unlock(&s->snap_lock);
    free(snap);
    KYUFU_ASSERT(rv != 0);
    return rv;
}

MDB_txn *kyufu_storage__snapshot_txn(struct kyufu_storage_snapshot *snap,
                                    struct kyufu_storage **s)
{
    KYUFU_ASSERT(snap != NULL && snap->txn != NULL);
    *s = snap->s;
    return snap->txn;
}

void kyufu_storage_snapshot_applied(const struct kyufu_storage_snapshot *snap,
                                    uint64_t *index,
                                    uint64_t *term)
{
    if (index != NULL) {
        *index = snap->index;
    }
    if (term != NULL) {
        *term = snap->term;
    }
}

void kyufu_storage_snapshot_end(struct kyufu_storage_snapshot *snap)
{
    if (snap == NULL) {
        return;
    }
    struct kyufu_storage *s = snap->s;
    pthread_mutex_lock(&s->snap_lock);
    KYUFU_ASSERT(s->snapshots > 0);
    mdb_txn_abort(snap->txn);
    s->snapshots--;
    pthread_mutex_unlock(&s->snap_lock);
    free(snap);
}

/* ------------------------------------------------------------ writer */

struct writer
{
    void *(*alloc)(void *arg, size_t size); /* NULL: malloc */
    kyufu_storage_emit_fn emit;
    void *arg;
    size_t cap;
    uint8_t *chunk;
    size_t used;
    EVP_MD_CTX *sha;
    size_t hashed;    /* bytes of chunk already hashed */
    bool hash_closed; /* the digest is final: the trailer is not hashed */
    uint64_t records;
};

/* Hash what the chunk holds past `hashed`: once per chunk, not per record
 * piece (three small updates per record cost more than the hash itself). */
static int hash_chunk(struct writer *w)
{
    if (w->hash_closed || w->chunk == NULL || w->used == w->hashed) {
        return 0;
    }
    if (EVP_DigestUpdate(w->sha, w->chunk + w->hashed,
                         w->used - w->hashed) != 1) {
        return KYUFU_STORAGE_ENOMEM;
    }
    w->hashed = w->used;
    return 0;
}

static int flush(struct writer *w)
{
    if (w->chunk == NULL || w->used == 0) {
        return 0;
    }
    int rv = hash_chunk(w);
    if (rv != 0) {
        return rv;
    }
    uint8_t *chunk = w->chunk;
    size_t used = w->used;
    w->chunk = NULL;
    w->used = 0;
    w->hashed = 0;
    return w->emit(w->arg, chunk, used); /* emit owns the chunk now */
}

/* Bytes put before the digest is closed are hashed (hash_chunk, at each
 * flush and at the close); the trailer after it is not. */
static int put_bytes(struct writer *w, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len > 0) {
        if (w->chunk == NULL) {
            w->chunk = w->alloc != NULL ? w->alloc(w->arg, w->cap)
                                        : malloc(w->cap);
            if (w->chunk == NULL) {
                return KYUFU_STORAGE_ENOMEM;
            }
            w->used = 0;
            w->hashed = 0;
        }
        size_t n = w->cap - w->used < len ? w->cap - w->used : len;
        memcpy(w->chunk + w->used, p, n);
        w->used += n;
        p += n;
        len -= n;
        if (w->used == w->cap) {
            int rv = flush(w);
            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

static int write_record(void *arg, unsigned db, const MDB_val *k,
                        const MDB_val *v)
{
    struct writer *w = arg;
    uint8_t head[RECORD_HEAD_BYTES];
    head[0] = (uint8_t)db;
    kyufu_storage__put_u32(head + 1, (uint32_t)k->mv_size);
    kyufu_storage__put_u32(head + 5, (uint32_t)v->mv_size);
    int rv = put_bytes(w, head, sizeof head);
    if (rv == 0) {
        rv = put_bytes(w, k->mv_data, k->mv_size);
    }
    if (rv == 0) {
        rv = put_bytes(w, v->mv_data, v->mv_size);
    }
    w->records++;
    return rv;
}

int kyufu_storage_snapshot_write(struct kyufu_storage_snapshot *snap,
                                 void *(*alloc)(void *arg, size_t size),
                                 kyufu_storage_emit_fn emit,
                                 void *arg)
{
    struct writer w = {0};
    uint8_t head[HEADER_BYTES];
    uint8_t end[END_BYTES];
    uint8_t trailer[TRAILER_BYTES];
    unsigned len = 0;
    int rv;

    KYUFU_ASSERT(snap != NULL && emit != NULL);
    w.alloc = alloc;
    w.emit = emit;
    w.arg = arg;
    w.cap = snap->s->snapshot_chunk_bytes;
    KYUFU_ASSERT(w.cap >= 1 && w.cap <= KYUFU_SNAPSHOT_CHUNK_BYTES_MAX);
    w.sha = EVP_MD_CTX_new();
    if (w.sha == NULL || EVP_DigestInit_ex(w.sha, EVP_sha256(), NULL) != 1) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto out;
    }
    memcpy(head, MAGIC, 8);
    kyufu_storage__put_u32(head + 8, FORMAT_VERSION);
    kyufu_storage__put_u32(head + 12, KYUFU_STORAGE_SCHEMA_VERSION);
    kyufu_storage__put_u64(head + 16, snap->index);
    kyufu_storage__put_u64(head + 24, snap->term);
    rv = put_bytes(&w, head, sizeof head);
    if (rv == 0) {
        rv = kyufu_storage__walk(snap->s, snap->txn, write_record, &w);
    }
    if (rv == 0) {
        end[0] = END_MARK;
        kyufu_storage__put_u64(end + 1, w.records);
        rv = put_bytes(&w, end, sizeof end);
    }
    if (rv == 0) {
        rv = hash_chunk(&w);
    }
    if (rv == 0 && (EVP_DigestFinal_ex(w.sha, trailer, &len) != 1 ||
                    len != TRAILER_BYTES)) {
        rv = KYUFU_STORAGE_ENOMEM;
    }
    if (rv == 0) {
        w.hash_closed = true;
        rv = put_bytes(&w, trailer, sizeof trailer);
    }
    if (rv == 0) {
        rv = flush(&w);
    }
out:
    if (w.chunk != NULL) {
        /* Stopped early with a chunk not yet emitted.  We cannot free what
         * a foreign allocator made: hand it to emit, whose owner frees it;
         * the caller discards the stream since rv != 0. */
        KYUFU_ASSERT(rv != 0);
        if (alloc == NULL) {
            free(w.chunk);
        } else {
            emit(arg, w.chunk, w.used);
        }
    }
    EVP_MD_CTX_free(w.sha);
    return rv;
}
