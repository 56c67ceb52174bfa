/* The state digest: SHA-256 over every (db, key, value) of every database in
 * the fixed order (db number, then LMDB key order), each framed as
 *   db (1 byte) | key length (u32 BE) | key | value length (u32 BE) | value
 * Values are deterministic protobuf encodings and the meta database holds the
 * applied index and term, so two stores digest equal iff their replicated
 * state is identical, whatever their history or page layout. */
#include <openssl/evp.h>
#include <string.h>

#include "internal.h"

int kyufu_storage__walk(struct kyufu_storage *s,
                        MDB_txn *txn,
                        kyufu_storage__walk_fn fn,
                        void *arg)
{
    int rv = 0;
    for (unsigned db = 0; db < KYUFU_DB_COUNT && rv == 0; db++) {
        MDB_cursor *cur;
        MDB_val k;
        MDB_val v;
        int mrv = mdb_cursor_open(txn, s->dbi[db], &cur);
        if (mrv != 0) {
            return kyufu_storage__mdb_error(mrv);
        }
        for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
             mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            rv = fn(arg, db, &k, &v);
            if (rv != 0) {
                break;
            }
        }
        if (rv == 0 && mrv != MDB_NOTFOUND) {
            rv = kyufu_storage__mdb_error(mrv);
        }
        mdb_cursor_close(cur);
    }
    return rv;
}

static int hash_record(void *arg, unsigned db, const MDB_val *k,
                       const MDB_val *v)
{
    EVP_MD_CTX *ctx = arg;
    uint8_t frame[4];
    uint8_t dbb = (uint8_t)db;
    int ok = EVP_DigestUpdate(ctx, &dbb, 1);
    kyufu_storage__put_u32(frame, (uint32_t)k->mv_size);
    ok &= EVP_DigestUpdate(ctx, frame, 4);
    ok &= EVP_DigestUpdate(ctx, k->mv_data, k->mv_size);
    kyufu_storage__put_u32(frame, (uint32_t)v->mv_size);
    ok &= EVP_DigestUpdate(ctx, frame, 4);
    ok &= EVP_DigestUpdate(ctx, v->mv_data, v->mv_size);
    return ok == 1 ? 0 : KYUFU_STORAGE_ENOMEM;
}

/* The digest of the state `txn` sees. */
static int digest_in(struct kyufu_storage *s,
                     MDB_txn *txn,
                     uint8_t digest[32],
                     uint64_t *applied_index)
{
    unsigned len = 0;
    uint64_t index = 0;
    int rv;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err;
    }
    rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_APPLIED_INDEX, &index);
    if (rv == 0) {
        rv = kyufu_storage__walk(s, txn, hash_record, ctx);
    }
    if (rv != 0) {
        goto err;
    }
    if (EVP_DigestFinal_ex(ctx, digest, &len) != 1 || len != 32) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err;
    }
    EVP_MD_CTX_free(ctx);
    if (applied_index != NULL) {
        *applied_index = index;
    }
    return 0;

err:
    EVP_MD_CTX_free(ctx);
    KYUFU_ASSERT(rv != 0);
    return rv;
}

int kyufu_storage_digest(struct kyufu_storage *s,
                         uint8_t digest[32],
                         uint64_t *applied_index)
{
    MDB_txn *txn;
    int rv0 = kyufu_storage__read_begin(s, &txn);
    if (rv0 != 0) {
        return rv0;
    }
    int rv = digest_in(s, txn, digest, applied_index);
    kyufu_storage__read_end(s, txn);
    return rv;
}

int kyufu_storage_snapshot_digest(struct kyufu_storage_snapshot *snap,
                                  uint8_t digest[32],
                                  uint64_t *applied_index)
{
    struct kyufu_storage *s;
    MDB_txn *txn = kyufu_storage__snapshot_txn(snap, &s);
    return digest_in(s, txn, digest, applied_index);
}
