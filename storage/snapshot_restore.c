/* Restore from a snapshot stream (docs/snapshot-format.md) read piece by
 * piece: kyufu_storage_restore_stream, and kyufu_storage_restore for a
 * stream in one buffer (Raft's install path) on top of it, so there is one
 * parser.
 *
 * Happy path: one write txn → empty every database → read the stream,
 * checking each record as it comes (known db, lengths, strictly increasing
 * (db, key) order, the meta records against the header) and appending it →
 * the end mark and the record count → exactly the trailer, then the end of
 * the stream → the SHA-256 trailer → the whole-state check
 * (kyufu_storage__check_state) inside the same txn → commit.  Memory: the
 * source's current piece, one record (≤ 1 MiB) when it straddles two
 * pieces, and LMDB's dirty pages (which it spills to the file beyond its
 * own limit): not the stream.
 *
 * Failure modes: any failure aborts the txn, so the store is as it was,
 * the same outcome as checking the whole stream before writing.  The hash
 * is kept apart from the parse (every byte but the last 32, whatever they
 * are), and a stream found malformed is read to its end before the error
 * is chosen: a damaged stream is named by its trailer ("does not match"),
 * as when the whole stream was checked first, not by whatever the damaged
 * byte looked like.  A full map aborts, grows the map and reads the stream
 * again from its first byte (the source's rewind; without one, a full map
 * is an error).  The source's own errors (a chunk that does not decrypt, a
 * read that failed) stop the restore with the source's message.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snapshot_format.h"

#define HEADER_BYTES KYUFU_SNAP_HEADER_BYTES
#define END_BYTES KYUFU_SNAP_END_BYTES
#define TRAILER_BYTES KYUFU_SNAP_TRAILER_BYTES
#define RECORD_HEAD_BYTES KYUFU_SNAP_RECORD_HEAD_BYTES

/* SHA-256 of every byte fed but the last TRAILER_BYTES, which are held
 * back in tail: at the end of the stream they are its trailer. */
struct tail_hash
{
    EVP_MD_CTX *sha;
    uint8_t tail[TRAILER_BYTES];
    size_t tail_len;
    uint64_t total;
};

static int tail_feed(struct tail_hash *t, const uint8_t *d, size_t n)
{
    t->total += n;
    if (n >= TRAILER_BYTES) {
        if (EVP_DigestUpdate(t->sha, t->tail, t->tail_len) != 1 ||
            EVP_DigestUpdate(t->sha, d, n - TRAILER_BYTES) != 1) {
            return KYUFU_STORAGE_ENOMEM;
        }
        memcpy(t->tail, d + n - TRAILER_BYTES, TRAILER_BYTES);
        t->tail_len = TRAILER_BYTES;
        return 0;
    }
    /* n < 32: the oldest bytes of tail leave it (over ≤ tail_len). */
    size_t over = t->tail_len + n > TRAILER_BYTES
                      ? t->tail_len + n - TRAILER_BYTES
                      : 0;
    if (over > 0 && EVP_DigestUpdate(t->sha, t->tail, over) != 1) {
        return KYUFU_STORAGE_ENOMEM;
    }
    memmove(t->tail, t->tail + over, t->tail_len - over);
    t->tail_len -= over;
    memcpy(t->tail + t->tail_len, d, n);
    t->tail_len += n;
    return 0;
}

/* The stream as the parser reads it. */
struct in
{
    const struct kyufu_storage_source *src;
    const uint8_t *p; /* the rest of the current piece */
    size_t left;
    bool eof;
    bool source_failed; /* errmsg is the source's */
    uint8_t *carry;     /* a record that straddles pieces */
    size_t carry_cap;
    struct tail_hash th;
    char *errmsg;
    size_t errmsg_len;
};

#define IN_SHORT 1 /* take: the stream ended first */

static int refill(struct in *in)
{
    const uint8_t *d = NULL;
    size_t n = 0;
    in->left = 0;
    if (in->src->read(in->src->arg, &d, &n, in->errmsg, in->errmsg_len) !=
        0) {
        in->source_failed = true;
        return KYUFU_STORAGE_EIO;
    }
    if (n == 0) {
        in->eof = true;
        return 0;
    }
    int rv = tail_feed(&in->th, d, n);
    if (rv != 0) {
        return rv;
    }
    in->p = d;
    in->left = n;
    return 0;
}

/* The next n bytes of the stream in *out, valid until the next take: a
 * pointer into the source's piece, or the carry buffer when they straddle
 * pieces.  0, IN_SHORT, or an error. */
static int take(struct in *in, size_t n, const uint8_t **out)
{
    int rv;
    while (in->left == 0 && !in->eof) {
        if ((rv = refill(in)) != 0) {
            return rv;
        }
    }
    if (in->left >= n) {
        *out = in->p;
        in->p += n;
        in->left -= n;
        return 0;
    }
    if (n > in->carry_cap) {
        uint8_t *c = realloc(in->carry, n);
        if (c == NULL) {
            return KYUFU_STORAGE_ENOMEM;
        }
        in->carry = c;
        in->carry_cap = n;
    }
    for (size_t got = 0; got < n;) {
        if (in->left == 0) {
            if (in->eof) {
                return IN_SHORT;
            }
            if ((rv = refill(in)) != 0) {
                return rv;
            }
            continue;
        }
        size_t k = n - got < in->left ? n - got : in->left;
        memcpy(in->carry + got, in->p, k);
        in->p += k;
        in->left -= k;
        got += k;
    }
    *out = in->carry;
    return 0;
}

/* Read to the end of the stream, so that its trailer is known. */
static int drain(struct in *in)
{
    in->left = 0;
    while (!in->eof) {
        int rv = refill(in);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* At the end of the stream: its length, then its trailer. */
static int check_trailer(struct in *in)
{
    uint8_t hash[32];
    unsigned hlen = 0;
    KYUFU_ASSERT(in->eof);
    if (in->th.total < HEADER_BYTES + END_BYTES + TRAILER_BYTES) {
        kyufu_storage__errmsg(in->errmsg, in->errmsg_len,
                              "snapshot too short (%llu bytes)",
                              (unsigned long long)in->th.total);
        return KYUFU_STORAGE_ECORRUPT;
    }
    if (EVP_DigestFinal_ex(in->th.sha, hash, &hlen) != 1 || hlen != 32) {
        return KYUFU_STORAGE_ENOMEM;
    }
    if (memcmp(hash, in->th.tail, 32) != 0) {
        kyufu_storage__errmsg(in->errmsg, in->errmsg_len,
                              "snapshot SHA-256 trailer does not match");
        return KYUFU_STORAGE_ECORRUPT;
    }
    return 0;
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : (al > bl) - (al < bl);
}

/* Whether the record's key is the meta key `name`. */
static bool meta_is(const uint8_t *k, uint32_t klen, const char *name)
{
    return klen == strlen(name) && memcmp(k, name, klen) == 0;
}

/* Read the stream up to the end of its trailer, checking every record and
 * appending it in txn; *index and *term: the header's.  0, CORRUPT (errmsg
 * says what), an LMDB error (MAP_FULL: grow and read again), or the
 * source's error. */
static int load(struct kyufu_storage *s, MDB_txn *txn, struct in *in,
                uint64_t *index, uint64_t *term)
{
    const uint8_t *b;
    uint8_t prev_key[KYUFU_SNAPSHOT_KEY_BYTES_MAX];
    size_t prev_klen = 0;
    int prev_db = -1;
    uint64_t n = 0;
    bool meta_index_seen = false;
    bool meta_term_seen = false;
    bool schema_seen = false;
    int rv;

#define BAD(...)                                                             \
    do {                                                                     \
        kyufu_storage__errmsg(in->errmsg, in->errmsg_len, __VA_ARGS__);      \
        return KYUFU_STORAGE_ECORRUPT;                                       \
    } while (0)
/* Take n bytes; a stream that ends first is CORRUPT with this message. */
#define TAKE(len, ...)                                                       \
    do {                                                                     \
        rv = take(in, (len), &b);                                            \
        if (rv == IN_SHORT) {                                                \
            BAD(__VA_ARGS__);                                                \
        }                                                                    \
        if (rv != 0) {                                                       \
            return rv;                                                       \
        }                                                                    \
    } while (0)

    TAKE(HEADER_BYTES, "snapshot too short");
    if (memcmp(b, KYUFU_SNAP_MAGIC, 8) != 0) {
        BAD("not a kyufu snapshot (bad magic)");
    }
    if (kyufu_storage__get_u32(b + 8) != KYUFU_SNAP_FORMAT_VERSION) {
        BAD("snapshot format version %u unsupported",
            kyufu_storage__get_u32(b + 8));
    }
    if (kyufu_storage__get_u32(b + 12) != KYUFU_STORAGE_SCHEMA_VERSION) {
        BAD("snapshot schema version %u, this build reads %u",
            kyufu_storage__get_u32(b + 12), KYUFU_STORAGE_SCHEMA_VERSION);
    }
    *index = kyufu_storage__get_u64(b + 16);
    *term = kyufu_storage__get_u64(b + 24);
    for (;;) {
        TAKE(1, "snapshot ends without its end mark");
        if (*b == KYUFU_SNAP_END_MARK) {
            break;
        }
        unsigned db = b[0];
        TAKE(RECORD_HEAD_BYTES - 1, "record %llu: truncated header",
             (unsigned long long)n);
        uint32_t klen = kyufu_storage__get_u32(b);
        uint32_t vlen = kyufu_storage__get_u32(b + 4);
        if (db >= KYUFU_DB_COUNT) {
            BAD("record %llu: unknown db %u", (unsigned long long)n, db);
        }
        if (klen == 0 || klen > KYUFU_SNAPSHOT_KEY_BYTES_MAX ||
            vlen > KYUFU_SNAPSHOT_VALUE_BYTES_MAX) {
            BAD("record %llu: bad lengths", (unsigned long long)n);
        }
        TAKE((size_t)klen + vlen, "record %llu: truncated",
             (unsigned long long)n);
        if ((int)db < prev_db ||
            ((int)db == prev_db &&
             key_cmp(prev_key, prev_klen, b, klen) >= 0)) {
            BAD("record %llu: out of order", (unsigned long long)n);
        }
        if (db == KYUFU_DB_META) {
            const uint8_t *v = b + klen;
            if (meta_is(b, klen, KYUFU_META_APPLIED_INDEX)) {
                if (vlen != 8 || kyufu_storage__get_u64(v) != *index) {
                    BAD("meta applied index differs from the header");
                }
                meta_index_seen = true;
            }
            if (meta_is(b, klen, KYUFU_META_APPLIED_TERM)) {
                if (vlen != 8 || kyufu_storage__get_u64(v) != *term) {
                    BAD("meta applied term differs from the header");
                }
                meta_term_seen = true;
            }
            if (meta_is(b, klen, KYUFU_META_SCHEMA)) {
                if (vlen != 8 ||
                    kyufu_storage__get_u64(v) != KYUFU_STORAGE_SCHEMA_VERSION) {
                    BAD("meta schema version differs");
                }
                schema_seen = true;
            }
        }
        MDB_val k = {klen, (void *)b};
        MDB_val v = {vlen, (void *)(b + klen)};
        /* Sorted (checked above): append keeps pages full. */
        int mrv = mdb_put(txn, s->dbi[db], &k, &v, MDB_APPEND);
        if (mrv != 0) {
            return kyufu_storage__mdb_error(mrv);
        }
        memcpy(prev_key, b, klen);
        prev_klen = klen;
        prev_db = (int)db;
        n++;
    }
    TAKE(END_BYTES - 1 + TRAILER_BYTES, "snapshot ends inside its end mark");
    if (kyufu_storage__get_u64(b) != n) {
        BAD("record count %llu, stream has %llu",
            (unsigned long long)kyufu_storage__get_u64(b),
            (unsigned long long)n);
    }
    while (in->left == 0 && !in->eof) {
        if ((rv = refill(in)) != 0) {
            return rv;
        }
    }
    if (in->left > 0) {
        BAD("bytes after the end mark");
    }
    /* The header's index and term are those of the meta records, or both
     * 0 in a store that applied nothing (found by the snapshot fuzz target:
     * a term without its record was restored, then written back as 0). */
    if (!schema_seen || (*index > 0 && !meta_index_seen) ||
        (*index > 0 && !meta_term_seen) || (!meta_term_seen && *term != 0)) {
        BAD("snapshot lacks its meta records");
    }
    return 0;
#undef TAKE
#undef BAD
}

/* Replace every database with the stream's records in one write
 * transaction, then check the resulting state (invariants 1-5, the audit
 * chain) inside that same transaction: a stream that is well formed but
 * describes a broken ledger is refused (CORRUPT, errmsg) and the store
 * stays as it was. */
static int replace_all(struct kyufu_storage *s, struct in *in,
                       uint64_t *index, uint64_t *term, char *errmsg,
                       size_t errmsg_len)
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
    rv = mrv != 0 ? kyufu_storage__mdb_error(mrv)
                  : load(s, txn, in, index, term);
    if (rv == KYUFU_STORAGE_ECORRUPT) {
        /* Malformed: a damaged stream is named by its trailer. */
        int drv = drain(in);
        if (drv != 0) {
            rv = drv;
        } else {
            int trv = check_trailer(in);
            rv = trv != 0 ? trv : rv;
        }
    } else if (rv == 0) {
        rv = check_trailer(in);
    }
    if (rv != 0) {
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

int kyufu_storage_restore_stream(struct kyufu_storage *s,
                                 const struct kyufu_storage_source *src,
                                 char *errmsg,
                                 size_t errmsg_len)
{
    struct in in;
    uint64_t index = 0, term = 0;
    int rv;
    KYUFU_ASSERT(s != NULL && src != NULL && src->read != NULL);
    rv = kyufu_storage__env_gone(s, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    memset(&in, 0, sizeof in);
    in.src = src;
    in.errmsg = errmsg;
    in.errmsg_len = errmsg_len;
    in.th.sha = EVP_MD_CTX_new();
    if (in.th.sha == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    for (;;) {
        in.p = NULL;
        in.left = 0;
        in.eof = false;
        in.th.tail_len = 0;
        in.th.total = 0;
        if (EVP_DigestInit_ex(in.th.sha, EVP_sha256(), NULL) != 1) {
            rv = KYUFU_STORAGE_ENOMEM;
            break;
        }
        rv = replace_all(s, &in, &index, &term, errmsg, errmsg_len);
        if (rv != KYUFU_STORAGE_EMAP_FULL) {
            break;
        }
        rv = kyufu_storage__grow(s);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "map full restoring a snapshot of at least "
                                  "%llu bytes",
                                  (unsigned long long)in.th.total);
            break;
        }
        if (src->rewind == NULL) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "map full restoring a snapshot, and its "
                                  "source cannot be read again");
            rv = KYUFU_STORAGE_EMAP_FULL;
            break;
        }
        if (src->rewind(src->arg, errmsg, errmsg_len) != 0) {
            in.source_failed = true;
            rv = KYUFU_STORAGE_EIO;
            break;
        }
    }
    EVP_MD_CTX_free(in.th.sha);
    free(in.carry);
    /* Committed or aborted, the transaction may have dirtied up to the
     * whole store's pages, which LMDB keeps in the heap until its
     * environment closes (env.c). */
    char why[200] = "";
    int rrv = kyufu_storage__env_renew(s, why, sizeof why);
    if (rrv != 0) {
        /* After the restore's own message, if it failed. */
        size_t used = rv != 0 && errmsg != NULL ? strnlen(errmsg, errmsg_len)
                                                : 0;
        if (errmsg != NULL && used + 1 < errmsg_len) {
            kyufu_storage__errmsg(errmsg + used, errmsg_len - used,
                                  "%sreopen the store after a restore: %s",
                                  used > 0 ? "; then " : "", why);
        }
        return rrv;
    }
    if (rv == 0) {
        s->applied_index = index;
        s->applied_term = term;
        s->avail_detail_changes++; /* the ledger may be another one now */
        return 0;
    }
    if (rv != KYUFU_STORAGE_ECORRUPT && rv != KYUFU_STORAGE_ENEWER &&
        !in.source_failed && rv != KYUFU_STORAGE_EMAP_FULL) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "restore: %s",
                              kyufu_storage_strerror(rv));
    }
    return rv; /* errmsg says which check, or the source's failure */
}

/* ------------------------------------------------- one buffer (Raft) */

struct buf_source
{
    const uint8_t *buf;
    size_t len;
    bool read;
};

static int buf_read(void *arg, const uint8_t **data, size_t *len,
                    char *errmsg, size_t errmsg_len)
{
    struct buf_source *b = arg;
    (void)errmsg;
    (void)errmsg_len;
    *data = b->buf;
    *len = b->read ? 0 : b->len;
    b->read = true;
    return 0;
}

static int buf_rewind(void *arg, char *errmsg, size_t errmsg_len)
{
    struct buf_source *b = arg;
    (void)errmsg;
    (void)errmsg_len;
    b->read = false;
    return 0;
}

int kyufu_storage_restore(struct kyufu_storage *s,
                          const uint8_t *buf,
                          size_t len,
                          char *errmsg,
                          size_t errmsg_len)
{
    struct buf_source b = {.buf = buf, .len = buf != NULL ? len : 0};
    struct kyufu_storage_source src = {
        .read = buf_read, .rewind = buf_rewind, .arg = &b};
    return kyufu_storage_restore_stream(s, &src, errmsg, errmsg_len);
}
