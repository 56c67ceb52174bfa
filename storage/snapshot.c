/* Snapshots: a consistent view of the whole state serialized as a
 * self-checking stream (docs/snapshot-format.md), and restore from one.
 *
 * Happy path: begin opens a read txn on the loop thread (MDB_NOTLS lets
 * another thread use it) and counts it, so the map does not grow under it;
 * write walks every database in the fixed order and hands out chunks of at
 * most KYUFU_SNAPSHOT_CHUNK_BYTES_MAX, hashing as it goes, the SHA-256
 * trailer in the last chunk; end releases the txn.  Only one chunk is held
 * at a time: the stream is never built twice in memory.
 *
 * Restore checks the whole stream (trailer hash, magic, versions, every
 * length, key order, the record count, the meta index against the header)
 * before it touches the store; then it empties every database and writes
 * the records in one write txn, growing the map on MAP_FULL like apply.
 * A bad stream returns CORRUPT and changes nothing.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAGIC "KYUFUSN1"
#define FORMAT_VERSION 1u
#define HEADER_BYTES (8 + 4 + 4 + 8 + 8)
#define END_MARK 0xFFu
#define END_BYTES (1 + 8)
#define TRAILER_BYTES 32
#define RECORD_HEAD_BYTES (1 + 4 + 4)

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
    int mrv = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &snap->txn);
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
    void *(*alloc)(size_t);
    kyufu_storage_emit_fn emit;
    void *arg;
    size_t cap;
    uint8_t *chunk;
    size_t used;
    EVP_MD_CTX *sha;
    uint64_t records;
};

static int flush(struct writer *w)
{
    if (w->chunk == NULL || w->used == 0) {
        return 0;
    }
    uint8_t *chunk = w->chunk;
    size_t used = w->used;
    w->chunk = NULL;
    w->used = 0;
    return w->emit(w->arg, chunk, used); /* emit owns the chunk now */
}

static int put_bytes(struct writer *w, const void *data, size_t len, bool hash)
{
    const uint8_t *p = data;
    if (hash && EVP_DigestUpdate(w->sha, data, len) != 1) {
        return KYUFU_STORAGE_ENOMEM;
    }
    while (len > 0) {
        if (w->chunk == NULL) {
            w->chunk = w->alloc(w->cap);
            if (w->chunk == NULL) {
                return KYUFU_STORAGE_ENOMEM;
            }
            w->used = 0;
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
    int rv = put_bytes(w, head, sizeof head, true);
    if (rv == 0) {
        rv = put_bytes(w, k->mv_data, k->mv_size, true);
    }
    if (rv == 0) {
        rv = put_bytes(w, v->mv_data, v->mv_size, true);
    }
    w->records++;
    return rv;
}

int kyufu_storage_snapshot_write(struct kyufu_storage_snapshot *snap,
                                 void *(*alloc)(size_t),
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
    w.alloc = alloc != NULL ? alloc : malloc;
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
    rv = put_bytes(&w, head, sizeof head, true);
    if (rv == 0) {
        rv = kyufu_storage__walk(snap->s, snap->txn, write_record, &w);
    }
    if (rv == 0) {
        end[0] = END_MARK;
        kyufu_storage__put_u64(end + 1, w.records);
        rv = put_bytes(&w, end, sizeof end, true);
    }
    if (rv == 0 && (EVP_DigestFinal_ex(w.sha, trailer, &len) != 1 ||
                    len != TRAILER_BYTES)) {
        rv = KYUFU_STORAGE_ENOMEM;
    }
    if (rv == 0) {
        rv = put_bytes(&w, trailer, sizeof trailer, false);
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

/* ------------------------------------------------------------ restore */

struct parsed
{
    uint64_t index;
    uint64_t term;
    uint64_t records;
    const uint8_t *body; /* first record */
    const uint8_t *end;  /* the end mark */
};

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

/* Check the whole stream; fill *p.  Nothing is written. */
static int parse(const uint8_t *buf, size_t len, struct parsed *p,
                 char *errmsg, size_t errmsg_len)
{
    uint8_t hash[32];
    unsigned hlen = 0;
    const uint8_t *pos;
    const uint8_t *limit;
    int prev_db = -1;
    const uint8_t *prev_key = NULL;
    size_t prev_klen = 0;
    uint64_t n = 0;
    bool meta_index_seen = false;
    bool meta_term_seen = false;
    bool schema_seen = false;

#define BAD(...)                                                             \
    do {                                                                     \
        kyufu_storage__errmsg(errmsg, errmsg_len, __VA_ARGS__);              \
        return KYUFU_STORAGE_ECORRUPT;                                       \
    } while (0)

    if (buf == NULL || len < HEADER_BYTES + END_BYTES + TRAILER_BYTES) {
        BAD("snapshot too short (%zu bytes)", len);
    }
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    int ok = sha != NULL && EVP_DigestInit_ex(sha, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(sha, buf, len - TRAILER_BYTES) == 1 &&
             EVP_DigestFinal_ex(sha, hash, &hlen) == 1 && hlen == 32;
    EVP_MD_CTX_free(sha);
    if (!ok) {
        return KYUFU_STORAGE_ENOMEM;
    }
    if (memcmp(hash, buf + len - TRAILER_BYTES, 32) != 0) {
        BAD("snapshot SHA-256 trailer does not match");
    }
    if (memcmp(buf, MAGIC, 8) != 0) {
        BAD("not a kyufu snapshot (bad magic)");
    }
    if (kyufu_storage__get_u32(buf + 8) != FORMAT_VERSION) {
        BAD("snapshot format version %u unsupported",
            kyufu_storage__get_u32(buf + 8));
    }
    if (kyufu_storage__get_u32(buf + 12) != KYUFU_STORAGE_SCHEMA_VERSION) {
        BAD("snapshot schema version %u, this build reads %u",
            kyufu_storage__get_u32(buf + 12), KYUFU_STORAGE_SCHEMA_VERSION);
    }
    p->index = kyufu_storage__get_u64(buf + 16);
    p->term = kyufu_storage__get_u64(buf + 24);
    pos = buf + HEADER_BYTES;
    limit = buf + len - TRAILER_BYTES;
    p->body = pos;
    for (;;) {
        if (pos >= limit) {
            BAD("snapshot ends without its end mark");
        }
        if (*pos == END_MARK) {
            break;
        }
        if ((size_t)(limit - pos) < RECORD_HEAD_BYTES) {
            BAD("record %llu: truncated header", (unsigned long long)n);
        }
        unsigned db = pos[0];
        uint32_t klen = kyufu_storage__get_u32(pos + 1);
        uint32_t vlen = kyufu_storage__get_u32(pos + 5);
        pos += RECORD_HEAD_BYTES;
        if (db >= KYUFU_DB_COUNT) {
            BAD("record %llu: unknown db %u", (unsigned long long)n, db);
        }
        if (klen == 0 || klen > KYUFU_SNAPSHOT_KEY_BYTES_MAX ||
            vlen > KYUFU_SNAPSHOT_VALUE_BYTES_MAX) {
            BAD("record %llu: bad lengths", (unsigned long long)n);
        }
        if ((size_t)(limit - pos) < (size_t)klen + vlen) {
            BAD("record %llu: truncated", (unsigned long long)n);
        }
        if ((int)db < prev_db ||
            ((int)db == prev_db &&
             key_cmp(prev_key, prev_klen, pos, klen) >= 0)) {
            BAD("record %llu: out of order", (unsigned long long)n);
        }
        if (db == KYUFU_DB_META) {
            const char *ik = KYUFU_META_APPLIED_INDEX;
            const char *sk = KYUFU_META_SCHEMA;
            if (klen == strlen(ik) && memcmp(pos, ik, klen) == 0) {
                if (vlen != 8 ||
                    kyufu_storage__get_u64(pos + klen) != p->index) {
                    BAD("meta applied index differs from the header");
                }
                meta_index_seen = true;
            }
            const char *tk = KYUFU_META_APPLIED_TERM;
            if (klen == strlen(tk) && memcmp(pos, tk, klen) == 0) {
                if (vlen != 8 ||
                    kyufu_storage__get_u64(pos + klen) != p->term) {
                    BAD("meta applied term differs from the header");
                }
                meta_term_seen = true;
            }
            if (klen == strlen(sk) && memcmp(pos, sk, klen) == 0) {
                if (vlen != 8 || kyufu_storage__get_u64(pos + klen) !=
                                     KYUFU_STORAGE_SCHEMA_VERSION) {
                    BAD("meta schema version differs");
                }
                schema_seen = true;
            }
        }
        prev_db = (int)db;
        prev_key = pos;
        prev_klen = klen;
        pos += klen + vlen;
        n++;
    }
    p->end = pos;
    if ((size_t)(limit - pos) != END_BYTES) {
        BAD("bytes after the end mark");
    }
    if (kyufu_storage__get_u64(pos + 1) != n) {
        BAD("record count %llu, stream has %llu",
            (unsigned long long)kyufu_storage__get_u64(pos + 1),
            (unsigned long long)n);
    }
    /* The header's index and term are those of the meta records, or both
     * 0 in a store that applied nothing (found by the snapshot fuzz target:
     * a term without its record was restored, then written back as 0). */
    if (!schema_seen || (p->index > 0 && !meta_index_seen) ||
        (p->index > 0 && !meta_term_seen) ||
        (!meta_term_seen && p->term != 0)) {
        BAD("snapshot lacks its meta records");
    }
    p->records = n;
    return 0;
#undef BAD
}

/* Replace every database with the parsed records in one write transaction,
 * then check the resulting state (invariants 1-5, the audit chain) inside
 * that same transaction: a stream that is well formed but describes a
 * broken ledger is refused (CORRUPT, errmsg) and the store stays as it was. */
static int replace_all(struct kyufu_storage *s, const struct parsed *p,
                       char *errmsg, size_t errmsg_len)
{
    MDB_txn *txn;
    int rv = 0;
    int mrv = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (unsigned db = 0; db < KYUFU_DB_COUNT && mrv == 0; db++) {
        mrv = mdb_drop(txn, s->dbi[db], 0);
    }
    for (const uint8_t *pos = p->body; mrv == 0 && pos < p->end;) {
        unsigned db = pos[0];
        MDB_val k = {kyufu_storage__get_u32(pos + 1), (void *)(pos + 9)};
        MDB_val v = {kyufu_storage__get_u32(pos + 5),
                     (void *)(pos + 9 + k.mv_size)};
        /* Sorted (checked by parse): append keeps pages full. */
        mrv = mdb_put(txn, s->dbi[db], &k, &v, MDB_APPEND);
        pos += RECORD_HEAD_BYTES + k.mv_size + v.mv_size;
    }
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        mdb_txn_abort(txn);
        return rv;
    }
    char why[200];
    rv = kyufu_storage__check_state(s, txn, why, sizeof why);
    if (rv != 0) {
        mdb_txn_abort(txn);
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "snapshot describes a broken ledger: %s", why);
        return KYUFU_STORAGE_ECORRUPT;
    }
    /* A newer cluster's state: this build stops before taking it. */
    struct kyufu_storage__versions versions;
    uint32_t keys_active = 0;
    rv = kyufu_storage__check_cluster_version(s, txn, errmsg, errmsg_len);
    if (rv == 0) {
        rv = kyufu_storage__keys_active_read(s, txn, &keys_active);
    }
    if (rv == 0) {
        rv = kyufu_storage__versions_read(s, txn, &versions);
    }
    if (rv != 0) {
        mdb_txn_abort(txn);
        return rv;
    }
    mrv = mdb_txn_commit(txn);
    if (mrv != 0) {
        free(versions.voters);
        rv = kyufu_storage__mdb_error(mrv);
        return rv == KYUFU_STORAGE_EMAP_FULL ? rv : KYUFU_STORAGE_EIO;
    }
    kyufu_storage__versions_set(s, &versions);
    s->keys_active = keys_active;
    return 0;
}

int kyufu_storage_restore(struct kyufu_storage *s,
                          const uint8_t *buf,
                          size_t len,
                          char *errmsg,
                          size_t errmsg_len)
{
    struct parsed p;
    int rv = parse(buf, len, &p, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    for (;;) {
        rv = replace_all(s, &p, errmsg, errmsg_len);
        if (rv != KYUFU_STORAGE_EMAP_FULL) {
            break;
        }
        rv = kyufu_storage__grow(s);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "map full restoring %zu bytes", len);
            return rv;
        }
    }
    if (rv == KYUFU_STORAGE_ECORRUPT || rv == KYUFU_STORAGE_ENEWER) {
        return rv; /* errmsg says which check */
    }
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "restore: %s",
                              kyufu_storage_strerror(rv));
        return rv;
    }
    s->applied_index = p.index;
    s->applied_term = p.term;
    s->avail_detail_changes++; /* the ledger may be another one now */
    return 0;
}
