/* The audit chain.
 *
 *   audit  seq (u64 BE) → AuditRecord (hash set)
 *   meta   audit_seq → last seq;  audit_hash → its hash (32 bytes)
 *
 * hash = SHA-256(prev_hash || encoding of the record with hash empty), with
 * prev_hash 32 zero bytes for seq 1 (docs/ledger-rules.md, "Audit").  The
 * head is kept in meta so an append reads one value, not the last record.
 *
 * With a CMK the whole record, hash included, is sealed (seal.c): actors,
 * objects and messages name people and households.  The chain stays the
 * chain of the plaintext records, so `kyufuctl audit verify` checks the
 * records a client reads through the API as before; without keys, the
 * stored bytes are covered by the state digest, and a changed byte fails
 * authentication here (docs/storage.md "Sealed values").
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int chain_hash(const uint8_t prev[32],
                      const Kyufu__V1__AuditRecord *r,
                      uint8_t out[32])
{
    Kyufu__V1__AuditRecord copy = *r;
    uint8_t *buf;
    size_t len;
    int rv;
    copy.hash.data = NULL;
    copy.hash.len = 0;
    rv = kyufu_storage__pack(&copy.base, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    const uint8_t *parts[2] = {prev, buf};
    const size_t lens[2] = {32, len};
    rv = kyufu_storage__sha256(parts, lens, 2, out);
    free(buf);
    return rv;
}

/* A stored record, sealed or legacy (seal.c): 0 or an error, *r NULL. */
static int unpack(struct kyufu_storage *s,
                  const MDB_val *k,
                  const MDB_val *v,
                  Kyufu__V1__AuditRecord **r)
{
    ProtobufCMessage *m;
    int rv = kyufu_storage__unpack(s, KYUFU_DB_AUDIT, k, v,
                                   &kyufu__v1__audit_record__descriptor, &m);
    *r = (Kyufu__V1__AuditRecord *)m;
    return rv;
}

static int head_hash(struct kyufu_storage *s, MDB_txn *txn, uint8_t out[32])
{
    MDB_val v;
    int rv = kyufu_storage__meta_get(s, txn, KYUFU_META_AUDIT_HASH, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        memset(out, 0, 32);
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 32) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    memcpy(out, v.mv_data, 32);
    return 0;
}

int kyufu_storage__audit_append(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const struct kyufu_storage__audit_in *in,
                                uint64_t *seq)
{
    Kyufu__V1__AuditRecord r = KYUFU__V1__AUDIT_RECORD__INIT;
    uint8_t prev[32];
    uint8_t hash[32];
    uint8_t key[8];
    uint64_t last;
    int rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_AUDIT_SEQ, &last);
    if (rv == 0) {
        rv = head_hash(s, txn, prev);
    }
    if (rv != 0) {
        return rv;
    }
    r.seq = last + 1;
    r.raft_index = in->raft_index;
    r.time_ms = in->time_ms;
    r.actor = (char *)(in->actor != NULL ? in->actor : "");
    r.terminal = (char *)(in->terminal != NULL ? in->terminal : "");
    r.command = (char *)in->command;
    r.object = (char *)(in->object != NULL ? in->object : "");
    r.outcome = in->outcome;
    r.message = (char *)(in->message != NULL ? in->message : "");
    r.client_id = (char *)(in->client_id != NULL ? in->client_id : "");
    r.client_seq = in->client_seq;
    r.objects = (char **)in->objects;
    r.n_objects = in->n_objects;
    r.prev_hash.data = prev;
    r.prev_hash.len = 32;
    rv = chain_hash(prev, &r, hash);
    if (rv != 0) {
        return rv;
    }
    r.hash.data = hash;
    r.hash.len = 32;

    uint8_t *buf;
    size_t len;
    kyufu_storage__put_u64(key, r.seq);
    rv = kyufu_storage__encode(s, KYUFU_DB_AUDIT, key, 8, &r.base, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {8, key};
    MDB_val v = {len, buf};
    /* Append-only: seq is new, so MDB_APPEND keeps pages full. */
    rv = kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_AUDIT], &k, &v, MDB_APPEND));
    free(buf);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__meta_put_u64(s, txn, KYUFU_META_AUDIT_SEQ, r.seq);
    if (rv != 0) {
        return rv;
    }
    MDB_val hk = {strlen(KYUFU_META_AUDIT_HASH), (void *)KYUFU_META_AUDIT_HASH};
    MDB_val hv = {32, hash};
    rv = kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_META], &hk, &hv, 0));
    if (rv == 0) {
        *seq = r.seq;
    }
    return rv;
}

int kyufu_storage__audit_verify_range(struct kyufu_storage *s,
                                      MDB_txn *txn,
                                      uint64_t after,
                                      uint64_t *count,
                                      char *errmsg,
                                      size_t errmsg_len)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    uint8_t key[8];
    uint8_t prev[32];
    uint8_t hash[32];
    uint8_t head[32];
    uint64_t last;
    uint64_t expect = after + 1;
    uint64_t n = 0;
    int rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_AUDIT_SEQ, &last);
    if (rv == 0) {
        rv = head_hash(s, txn, head);
    }
    if (rv != 0) {
        return rv;
    }
    memset(prev, 0, sizeof prev);
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AUDIT], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (after > 0) {
        /* Start from the record `after`, whose hash links the next one. */
        kyufu_storage__put_u64(key, after);
        k.mv_size = 8;
        k.mv_data = key;
        mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        Kyufu__V1__AuditRecord *r = NULL;
        if (mrv == 0) {
            unpack(s, &k, &v, &r);
        }
        if (r == NULL || r->hash.len != 32) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "audit record %llu missing or unreadable",
                                  (unsigned long long)after);
            if (r != NULL) {
                kyufu__v1__audit_record__free_unpacked(r, NULL);
            }
            rv = KYUFU_STORAGE_ECORRUPT;
            goto out;
        }
        memcpy(prev, r->hash.data, 32);
        kyufu__v1__audit_record__free_unpacked(r, NULL);
        mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    } else {
        mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; mrv == 0; mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT), expect++) {
        Kyufu__V1__AuditRecord *r = NULL;
        const char *why = NULL;
        if (k.mv_size != 8 || kyufu_storage__get_u64(k.mv_data) != expect) {
            why = "sequence gap";
        } else if (unpack(s, &k, &v, &r) != 0) {
            why = "undecodable or failed authentication";
        } else if (r->seq != expect) {
            why = "seq differs from key";
        } else if (r->prev_hash.len != 32 ||
                   memcmp(r->prev_hash.data, prev, 32) != 0) {
            why = "prev_hash does not link";
        } else if (chain_hash(prev, r, hash) != 0 || r->hash.len != 32 ||
                   memcmp(r->hash.data, hash, 32) != 0) {
            why = "hash mismatch";
        }
        if (r != NULL) {
            kyufu__v1__audit_record__free_unpacked(r, NULL);
        }
        if (why != NULL) {
            kyufu_storage__errmsg(errmsg, errmsg_len, "audit seq %llu: %s",
                                  (unsigned long long)expect, why);
            rv = KYUFU_STORAGE_ECORRUPT;
            goto out;
        }
        memcpy(prev, hash, 32);
        n++;
    }
    if (mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
        goto out;
    }
    if (expect - 1 != last || (last > 0 && memcmp(prev, head, 32) != 0)) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "audit head %llu does not match the chain end "
                              "%llu",
                              (unsigned long long)last,
                              (unsigned long long)(expect - 1));
        rv = KYUFU_STORAGE_ECORRUPT;
    }
out:
    mdb_cursor_close(cur);
    if (count != NULL) {
        *count = n;
    }
    return rv;
}

int kyufu_storage_audit_verify(struct kyufu_storage *s,
                               uint64_t *count,
                               char *errmsg,
                               size_t errmsg_len)
{
    MDB_txn *txn;
    int rv0 = kyufu_storage__read_begin(s, &txn);
    if (rv0 != 0) {
        return rv0;
    }
    int rv = kyufu_storage__audit_verify_range(s, txn, 0, count, errmsg,
                                               errmsg_len);
    kyufu_storage__read_end(s, txn);
    return rv;
}

int kyufu_storage_snapshot_audit_verify(struct kyufu_storage_snapshot *snap,
                                        uint64_t *count,
                                        char *errmsg,
                                        size_t errmsg_len)
{
    struct kyufu_storage *s;
    MDB_txn *txn = kyufu_storage__snapshot_txn(snap, &s);
    return kyufu_storage__audit_verify_range(s, txn, 0, count, errmsg,
                                             errmsg_len);
}

int kyufu_storage_audit_head(struct kyufu_storage *s,
                             uint64_t *seq,
                             uint8_t hash[32])
{
    MDB_txn *txn;
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_AUDIT_SEQ, seq);
    if (rv == 0) {
        rv = head_hash(s, txn, hash);
    }
    kyufu_storage__read_end(s, txn);
    return rv;
}
