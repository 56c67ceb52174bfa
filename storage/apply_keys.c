/* Data-key rotation (issue 12; docs/encryption.md "Rotation"): the
 * operators' RotateKeys, the leader's Reencrypt steps and the queries the
 * node's status and its re-encryption task read.
 *
 * RotateKeys makes version active + 1 active (meta keys_active) and starts
 * a new KeyRotation record (meta "key_rotation") whose cursor is at the
 * first sealed db.  From the entry that applies it on, every seal (records,
 * and in raft-glue entries, snapshots and backups) uses the new version;
 * the old versions stay readable, their subkeys are derived from the CMK.
 *
 * Reencrypt{version, db, from_key, count} is proposed by the leader (a
 * system command: no audit record, no session entry; the rotation itself
 * is audited).  It applies only when (version, db, from_key) is the
 * replicated cursor, so a proposal repeated by a new leader, or one made
 * before a newer rotation, is rejected and changes nothing.  It looks at
 * up to `count` values of the db from from_key on and re-seals those still
 * under another version or plaintext (a store upgraded to keys) with the
 * entry's nonces (seal.c), so replicas write identical bytes; then the
 * cursor moves to the next key, or the next sealed db, or is done.  Writes
 * go on meanwhile: what they write is under the active version already.
 *
 * From cluster version 6 apply also counts the seals under the active
 * version (meta keys_seals: every entry's payload and every value sealed
 * for it) and, when the count reaches the limit (2^31: docs/encryption.md
 * "Nonces"), rotates by itself in the same entry, audited as RotateKeys by
 * the actor KYUFU_SEAL_LIMIT_ACTOR; the leader's re-encryption then runs
 * as after an operator's rotation.  Every replica counts the same entries
 * the same way, so the count and the rotation are replicated state.
 *
 * Failure modes: a value that fails authentication is CORRUPT (the entry
 * is not applied, as for any handler that meets a damaged record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "storage_limits.h"

#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject

/* The rotation recorded in txn into *out (NULL: never rotated). */
static int load(struct kyufu_storage *s,
                MDB_txn *txn,
                Kyufu__V1__KeyRotation **out)
{
    MDB_val v;
    *out = NULL;
    int rv = kyufu_storage__meta_get(s, txn, KYUFU_META_KEY_ROTATION, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__KeyRotation *r =
        kyufu__v1__key_rotation__unpack(NULL, v.mv_size, v.mv_data);
    if (r == NULL || r->version < 2 || r->db >= KYUFU_DB_COUNT ||
        !kyufu_storage__sealed_db((enum kyufu_storage__db)r->db) ||
        r->next_key.len > KYUFU_SNAPSHOT_KEY_BYTES_MAX) {
        if (r != NULL) {
            kyufu__v1__key_rotation__free_unpacked(r, NULL);
        }
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = r;
    return 0;
}

static int store(struct kyufu_storage *s,
                 MDB_txn *txn,
                 const Kyufu__V1__KeyRotation *r)
{
    MDB_val k = {strlen(KYUFU_META_KEY_ROTATION),
                 (void *)KYUFU_META_KEY_ROTATION};
    uint8_t *buf;
    size_t len;
    int rv = kyufu_storage__pack(&r->base, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val v = {len, buf};
    rv = kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_META], &k, &v, 0));
    free(buf);
    return rv;
}

/* The first sealed db after `db` (KYUFU_DB_COUNT: none). */
static unsigned next_sealed_db(unsigned db)
{
    for (unsigned i = db + 1; i < KYUFU_DB_COUNT; i++) {
        if (kyufu_storage__sealed_db((enum kyufu_storage__db)i)) {
            return i;
        }
    }
    return KYUFU_DB_COUNT;
}

/* Make active + 1 the active version in txn (meta keys_active) and start
 * its KeyRotation record, cursor at the first sealed db.  The seals after
 * this, in this entry too, use the new version (s->keys_active; apply puts
 * the old one back if the entry fails).  *version: the new one. */
static int rotation_start(struct kyufu_storage *s,
                          MDB_txn *txn,
                          uint32_t active,
                          uint64_t index,
                          int64_t now_ms,
                          const char *by,
                          uint32_t *version)
{
    KYUFU_ASSERT(active < UINT32_MAX);
    Kyufu__V1__KeyRotation r = KYUFU__V1__KEY_ROTATION__INIT;
    r.version = active + 1;
    r.db = next_sealed_db(KYUFU_DB_META);
    r.rotated_index = index;
    r.rotated_ms = now_ms;
    r.rotated_by = (char *)by;
    int rv = kyufu_storage__meta_put_u64(s, txn, KYUFU_META_KEYS_ACTIVE,
                                         r.version);
    if (rv == 0) {
        rv = store(s, txn, &r);
    }
    if (rv == 0) {
        s->keys_active = r.version;
        *version = r.version;
    }
    return rv;
}

int kyufu_storage__rotate_keys(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__RotateKeys *b = c->cmd->rotate_keys;
    struct kyufu_storage *s = c->s;
    uint32_t active = 0;
    if (!s->has_cmk) {
        return REJECT(c, PRECONDITION,
                      "encryption at rest is off: there are no data keys "
                      "to rotate");
    }
    int rv = kyufu_storage__keys_active_read(s, c->txn, &active);
    if (rv != 0) {
        return rv;
    }
    if (active == UINT32_MAX) {
        return REJECT(c, PRECONDITION, "no key version after %u", active);
    }
    if (b->version != 0 && b->version != active + 1) {
        return REJECT(c, PRECONDITION,
                      "key version %u is active: the next is %u, not %u",
                      active, active + 1, b->version);
    }
    uint32_t version;
    rv = rotation_start(s, c->txn, active, c->index, c->now_ms, c->actor,
                        &version);
    if (rv != 0) {
        return rv;
    }
    kyufu_storage__set_object(c, "keys/%u", version);
    return 0;
}

/* Meta keys_seals: the version seals are counted for, then the count, 8
 * bytes each; absent: none counted yet. */
static int seals_read(struct kyufu_storage *s,
                      MDB_txn *txn,
                      uint32_t *version,
                      uint64_t *count)
{
    MDB_val v;
    *version = 0;
    *count = 0;
    int rv = kyufu_storage__meta_get(s, txn, KYUFU_META_KEYS_SEALS, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 16 ||
        kyufu_storage__get_u64(v.mv_data) > UINT32_MAX) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    *version = (uint32_t)kyufu_storage__get_u64(v.mv_data);
    *count = kyufu_storage__get_u64((const uint8_t *)v.mv_data + 8);
    return 0;
}

static int seals_write(struct kyufu_storage *s,
                       MDB_txn *txn,
                       uint32_t version,
                       uint64_t count)
{
    uint8_t buf[16];
    kyufu_storage__put_u64(buf, version);
    kyufu_storage__put_u64(buf + 8, count);
    MDB_val k = {strlen(KYUFU_META_KEYS_SEALS), (void *)KYUFU_META_KEYS_SEALS};
    MDB_val v = {sizeof buf, buf};
    return kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_META], &k, &v, 0));
}

int kyufu_storage__seals_count(struct kyufu_storage *s,
                               MDB_txn *txn,
                               uint64_t index,
                               int64_t now_ms)
{
    uint32_t cluster, version;
    uint64_t count;
    int rv = kyufu_storage__cluster_version_get(s, txn, &cluster);
    if (rv != 0 || cluster < KYUFU_SEAL_COUNT_SINCE) {
        return rv;
    }
    rv = seals_read(s, txn, &version, &count);
    if (rv != 0) {
        return rv;
    }
    if (version == 0) {
        /* The first count (the cluster just reached version 6, or a new
         * cluster): the seals under the active version before it were not
         * counted; each entry since the version became active sealed at
         * least its payload, so start there. */
        Kyufu__V1__KeyRotation *r = NULL;
        rv = load(s, txn, &r);
        if (rv != 0) {
            return rv;
        }
        uint64_t since = r != NULL && r->version == s->keys_active
                             ? r->rotated_index
                             : 0;
        if (r != NULL) {
            kyufu__v1__key_rotation__free_unpacked(r, NULL);
        }
        version = s->keys_active;
        count = index > since ? index - since - 1 : 0;
    } else if (version != s->keys_active) {
        /* A rotation in this entry: its seals before the rotation are
         * counted for the new version too; counting too many only rotates
         * sooner. */
        version = s->keys_active;
        count = 0;
    }
    /* The entry's payload (sealed once by its proposer) and every value
     * apply sealed for it, against one limit although they are under two
     * subkeys (stream and enc): each subkey sees at most this many. */
    count += (uint64_t)s->seal.seq + 1u;
    if (count < s->seal_limit || version == UINT32_MAX) {
        return seals_write(s, txn, version, count);
    }
    uint32_t next;
    rv = rotation_start(s, txn, version, index, now_ms,
                        KYUFU_SEAL_LIMIT_ACTOR, &next);
    if (rv != 0) {
        return rv;
    }
    char object[24], why[160];
    snprintf(object, sizeof object, "keys/%u", next);
    snprintf(why, sizeof why,
             "automatic: %llu seals under key version %u reached the "
             "limit of %llu",
             (unsigned long long)count, version,
             (unsigned long long)s->seal_limit);
    struct kyufu_storage__audit_in audit = {
        .raft_index = index,
        .time_ms = now_ms,
        .actor = KYUFU_SEAL_LIMIT_ACTOR,
        .command = "RotateKeys",
        .object = object,
        .outcome = KYUFU__V1__CODE__OK,
        .message = why,
    };
    uint64_t seq;
    rv = kyufu_storage__audit_append(s, txn, &audit, &seq);
    if (rv != 0) {
        return rv;
    }
    /* The audit record just appended: sealed under the new version. */
    return seals_write(s, txn, next, 1u);
}

int kyufu_storage_key_seals(struct kyufu_storage *s,
                            struct kyufu_storage_key_seals *out)
{
    MDB_txn *txn;
    memset(out, 0, sizeof *out);
    out->limit = s->seal_limit;
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = seals_read(s, txn, &out->version, &out->count);
    kyufu_storage__read_end(s, txn);
    out->counted = rv == 0 && out->version != 0 &&
                   out->version == s->keys_active;
    return rv;
}

/* Re-seal the value (k, v) of db if it is not under `version` (or is
 * plaintext); *resealed counts it. */
static int reseal_one(struct kyufu_storage__cmd *c,
                      unsigned db,
                      const MDB_val *k,
                      const MDB_val *v,
                      uint32_t version,
                      uint64_t *resealed)
{
    struct kyufu_storage *s = c->s;
    size_t off = 0;
    int rv = 0;
    if (db == KYUFU_DB_SESSIONS) {
        rv = kyufu_storage__session_result_offset(v, &off);
        if (rv != 0) {
            return rv;
        }
    }
    const uint8_t *part = (const uint8_t *)v->mv_data + off;
    size_t plen_stored = v->mv_size - off;
    if (kyufu_storage__is_sealed(part, plen_stored) &&
        kyufu_storage__sealed_version(part, plen_stored) == version) {
        return 0;
    }
    const uint8_t *plain;
    size_t plen;
    uint8_t *owned = NULL;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    rv = kyufu_storage__unseal(s, (enum kyufu_storage__db)db, k->mv_data,
                               k->mv_size, part, plen_stored, &plain, &plen,
                               &owned);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__seal(s, (enum kyufu_storage__db)db, k->mv_data,
                             k->mv_size, plain, plen, &sealed, &slen);
    if (owned != NULL) {
        kyufu_storage_crypto_wipe(owned, plen);
        free(owned);
    }
    if (rv != 0) {
        return rv;
    }
    /* The key and the prefix are copied: the put may move the pages they
     * point into. */
    uint8_t *nv = malloc(off + slen + k->mv_size);
    if (nv == NULL) {
        free(sealed);
        return KYUFU_STORAGE_ENOMEM;
    }
    memcpy(nv, v->mv_data, off);
    memcpy(nv + off, sealed, slen);
    memcpy(nv + off + slen, k->mv_data, k->mv_size);
    free(sealed);
    MDB_val key = {k->mv_size, nv + off + slen};
    MDB_val val = {off + slen, nv};
    rv = kyufu_storage__mdb_error(mdb_put(c->txn, s->dbi[db], &key, &val, 0));
    free(nv);
    if (rv == 0) {
        (*resealed)++;
    }
    return rv;
}

int kyufu_storage__reencrypt(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Reencrypt *b = c->cmd->reencrypt;
    struct kyufu_storage *s = c->s;
    Kyufu__V1__KeyRotation *r = NULL;
    MDB_cursor *cur = NULL;
    uint8_t key[KYUFU_SNAPSHOT_KEY_BYTES_MAX];
    uint8_t *loaded_key = NULL; /* r's own next_key buffer, freed with r */
    int rv;
    if (b->count == 0 || b->count > KYUFU_REENCRYPT_COUNT_MAX) {
        return REJECT(c, INVALID, "count must be 1..%u",
                      (unsigned)KYUFU_REENCRYPT_COUNT_MAX);
    }
    if (!s->has_cmk) {
        return REJECT(c, PRECONDITION, "encryption at rest is off");
    }
    rv = load(s, c->txn, &r);
    if (rv != 0) {
        return rv;
    }
    if (r != NULL) {
        loaded_key = r->next_key.data;
    }
    if (r == NULL || r->done || r->version != b->version ||
        r->version != s->keys_active || r->db != b->db ||
        r->next_key.len != b->from_key.len ||
        (b->from_key.len > 0 &&
         memcmp(r->next_key.data, b->from_key.data, b->from_key.len) != 0)) {
        rv = REJECT(c, PRECONDITION,
                    "not the re-encryption cursor (stale or repeated)");
        goto out;
    }
    unsigned db = r->db;
    uint64_t resealed = 0;
    MDB_val k = {b->from_key.len, b->from_key.data};
    MDB_val v;
    rv = kyufu_storage__mdb_error(mdb_cursor_open(c->txn, s->dbi[db], &cur));
    if (rv != 0) {
        goto out;
    }
    int mrv = mdb_cursor_get(cur, &k, &v, k.mv_size > 0 ? MDB_SET_RANGE
                                                        : MDB_FIRST);
    for (uint32_t i = 0; i < b->count && mrv == 0; i++) {
        KYUFU_ASSERT(k.mv_size <= sizeof key);
        size_t klen = k.mv_size;
        memcpy(key, k.mv_data, klen);
        rv = reseal_one(c, db, &k, &v, r->version, &resealed);
        if (rv != 0) {
            goto out;
        }
        /* A put may have moved the cursor's pages: find the key again. */
        k.mv_size = klen;
        k.mv_data = key;
        mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
        if (mrv == 0) {
            mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    if (mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
        goto out;
    }
    if (mrv == 0) { /* more in this db: the next key is where to go on */
        KYUFU_ASSERT(k.mv_size <= sizeof key);
        memcpy(key, k.mv_data, k.mv_size);
        r->next_key.data = key;
        r->next_key.len = k.mv_size;
    } else {
        r->db = next_sealed_db(db);
        r->next_key.data = NULL;
        r->next_key.len = 0;
        if (r->db == KYUFU_DB_COUNT) {
            r->db = db; /* stays a sealed db; done says the rest */
            r->done = true;
            r->done_index = c->index;
        }
    }
    r->resealed += resealed;
    mdb_cursor_close(cur);
    cur = NULL;
    rv = store(s, c->txn, r);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (r != NULL) {
        r->next_key.data = loaded_key; /* not `key`, of this frame */
        kyufu__v1__key_rotation__free_unpacked(r, NULL);
    }
    return rv;
}

/* ------------------------------------------------------------ queries */

int kyufu_storage_key_rotation(struct kyufu_storage *s,
                               Kyufu__V1__KeyRotation **out,
                               const char **cursor_db)
{
    MDB_txn *txn;
    *out = NULL;
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = load(s, txn, out);
    kyufu_storage__read_end(s, txn);
    if (rv == 0 && *out == NULL) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    if (rv == 0 && cursor_db != NULL) {
        *cursor_db = kyufu_storage__db_names[(*out)->db];
    }
    return rv;
}

/* Count one version in the census (sorted by version, grown as needed). */
static int census_add(struct kyufu_storage_key_census *c, uint32_t version)
{
    size_t i = 0;
    while (i < c->n && c->items[i].version < version) {
        i++;
    }
    if (i < c->n && c->items[i].version == version) {
        c->items[i].values++;
        return 0;
    }
    void *p = realloc(c->items, (c->n + 1) * sizeof *c->items);
    if (p == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    c->items = p;
    memmove(&c->items[i + 1], &c->items[i], (c->n - i) * sizeof *c->items);
    c->items[i].version = version;
    c->items[i].values = 1;
    c->n++;
    return 0;
}

static int census_db(struct kyufu_storage *s,
                     MDB_txn *txn,
                     unsigned db,
                     struct kyufu_storage_key_census *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = kyufu_storage__mdb_error(mdb_cursor_open(txn, s->dbi[db], &cur));
    if (rv != 0) {
        return rv;
    }
    int mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrv == 0 && rv == 0) {
        size_t off = 0;
        if (db == KYUFU_DB_SESSIONS) {
            rv = kyufu_storage__session_result_offset(&v, &off);
        }
        if (rv == 0) {
            const uint8_t *part = (const uint8_t *)v.mv_data + off;
            rv = census_add(out, kyufu_storage__sealed_version(
                                     part, v.mv_size - off));
        }
        mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    return rv;
}

static int census_in(struct kyufu_storage *s,
                     MDB_txn *txn,
                     struct kyufu_storage_key_census *out)
{
    int rv = 0;
    memset(out, 0, sizeof *out);
    for (unsigned db = 0; db < KYUFU_DB_COUNT && rv == 0; db++) {
        if (kyufu_storage__sealed_db((enum kyufu_storage__db)db)) {
            rv = census_db(s, txn, db, out);
        }
    }
    if (rv != 0) {
        kyufu_storage_key_census_free(out);
    }
    return rv;
}

int kyufu_storage_key_census(struct kyufu_storage *s,
                             struct kyufu_storage_key_census *out)
{
    MDB_txn *txn;
    memset(out, 0, sizeof *out);
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = census_in(s, txn, out);
    kyufu_storage__read_end(s, txn);
    return rv;
}

int kyufu_storage_snapshot_key_census(struct kyufu_storage_snapshot *snap,
                                      struct kyufu_storage_key_census *out)
{
    struct kyufu_storage *s;
    MDB_txn *txn = kyufu_storage__snapshot_txn(snap, &s);
    return census_in(s, txn, out);
}

void kyufu_storage_key_census_free(struct kyufu_storage_key_census *c)
{
    free(c->items);
    memset(c, 0, sizeof *c);
}
