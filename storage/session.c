/* Client sessions: the first result of each idempotency key.
 *
 *   sessions        client_id 0x00 seq (u64 BE)             → time_ms (u64 BE)
 * [|| owner] || CommandResult (sealed with a CMK) session_expiry  time_ms (u64
 * BE) client_id 0x00 seq      → "" session_floor   client_id → highest seq
 * pruned (u64 BE)
 *
 * The floor is what lets SettleWrite tell "never applied" from "applied and
 * forgotten": a key with no entry and a sequence above its client's floor
 * was never applied, because an applied key keeps its entry until pruning
 * removes it, and pruning raises the floor first.  Floors are never removed:
 * one row per client id that ever had an entry pruned, far smaller than the
 * audit trail those entries also left.
 *
 * The expiry index is ordered by the command's stamped time, so pruning
 * reads from its start and stops at the first entry still retained; at most
 * KYUFU_SESSION_PRUNE_PER_COMMAND_MAX go per command, so apply time stays
 * bounded however many expire at once.  Everything is judged by stamped
 * times: all replicas prune the same entries at the same index.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SESSION_KEY_MAX (KYUFU_CLIENT_ID_BYTES_MAX + 1 + 8)
#define EXPIRY_KEY_MAX (8 + SESSION_KEY_MAX)

static size_t session_key(uint8_t *key, const char *client_id, uint64_t seq)
{
    size_t n = strlen(client_id);
    KYUFU_ASSERT(n >= 1 && n <= KYUFU_CLIENT_ID_BYTES_MAX);
    memcpy(key, client_id, n);
    key[n] = 0;
    kyufu_storage__put_u64(key + n + 1, seq);
    return n + 9;
}

#define OWNER_FLAG ((uint64_t)1 << 63)

static bool expired(uint64_t time_ms, int64_t now_ms)
{
    /* time_ms + retention <= now, without overflow: times are > 0. */
    return now_ms > 0 && (int64_t)time_ms <= now_ms - KYUFU_SESSION_RETENTION_MS;
}

/* The parts of a stored value; CORRUPT when it does not parse. */
static int parse_value(const MDB_val *v, uint64_t *time_ms, MDB_val *result,
                       struct kyufu_storage__key_owner *owner)
{
    const uint8_t *p = v->mv_data;
    size_t n = v->mv_size;
    struct kyufu_storage__key_owner local;
    if (owner == NULL) {
        owner = &local;
    }
    memset(owner, 0, sizeof *owner);
    if (n < 8) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    uint64_t word = kyufu_storage__get_u64(p);
    *time_ms = word & ~OWNER_FLAG;
    p += 8, n -= 8;
    if ((word & OWNER_FLAG) != 0) {
        if (n < 1 || p[0] == 0 || p[0] > KYUFU_ACTOR_BYTES_MAX ||
            n < 1u + p[0] + 32u) {
            return KYUFU_STORAGE_ECORRUPT;
        }
        size_t alen = p[0];
        owner->has_owner = true;
        memcpy(owner->actor, p + 1, alen);
        owner->actor[alen] = '\0';
        memcpy(owner->digest, p + 1 + alen, 32);
        p += 1 + alen + 32, n -= 1 + alen + 32;
    }
    result->mv_data = (void *)p;
    result->mv_size = n;
    return 0;
}

int kyufu_storage__session_result_offset(const MDB_val *v, size_t *offset)
{
    uint64_t time_ms;
    MDB_val result;
    int rv = parse_value(v, &time_ms, &result, NULL);
    if (rv == 0) {
        *offset = v->mv_size - result.mv_size;
    }
    return rv;
}

int kyufu_storage__session_get_owned(struct kyufu_storage *s,
                                     MDB_txn *txn,
                                     const char *client_id,
                                     uint64_t seq,
                                     int64_t now_ms,
                                     MDB_val *result,
                                     struct kyufu_storage__key_owner *owner,
                                     uint8_t **owned)
{
    uint8_t key[SESSION_KEY_MAX];
    MDB_val k = {session_key(key, client_id, seq), key};
    MDB_val v;
    uint64_t time_ms;
    if (owned != NULL) {
        *owned = NULL;
    }
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_SESSIONS], &k, &v);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    int rv = parse_value(&v, &time_ms, result, owner);
    if (rv != 0) {
        return rv;
    }
    if (expired(time_ms, now_ms)) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    if (owned != NULL) {
        /* The CommandResult part may be sealed (it carries the record). */
        const uint8_t *plain;
        size_t plen;
        rv = kyufu_storage__unseal(s, KYUFU_DB_SESSIONS, key, k.mv_size,
                                   result->mv_data, result->mv_size, &plain,
                                   &plen, owned);
        if (rv != 0) {
            return rv;
        }
        result->mv_data = (void *)plain;
        result->mv_size = plen;
    }
    return 0;
}

static size_t expiry_key(uint8_t *key, uint64_t time_ms,
                         const uint8_t *skey, size_t slen)
{
    kyufu_storage__put_u64(key, time_ms);
    memcpy(key + 8, skey, slen);
    return 8 + slen;
}

int kyufu_storage__session_put(struct kyufu_storage *s,
                               MDB_txn *txn,
                               const char *client_id,
                               uint64_t seq,
                               int64_t time_ms,
                               const struct kyufu_storage__key_owner *owner,
                               const uint8_t *result,
                               size_t len)
{
    uint8_t key[SESSION_KEY_MAX];
    uint8_t ekey[EXPIRY_KEY_MAX];
    size_t klen = session_key(key, client_id, seq);
    MDB_val k = {klen, key};
    MDB_val old;
    MDB_val v;
    int mrv;
    KYUFU_ASSERT(time_ms > 0);

    /* An expired entry not yet pruned is replaced: drop its expiry key so
     * pruning never removes the new entry early. */
    mrv = mdb_get(txn, s->dbi[KYUFU_DB_SESSIONS], &k, &old);
    if (mrv == 0) {
        KYUFU_ASSERT(old.mv_size >= 8);
        MDB_val ek = {expiry_key(ekey,
                                 kyufu_storage__get_u64(old.mv_data) &
                                     ~OWNER_FLAG,
                                 key, klen),
                      ekey};
        mrv = mdb_del(txn, s->dbi[KYUFU_DB_SESSION_EXPIRY], &ek, NULL);
        if (mrv != 0 && mrv != MDB_NOTFOUND) {
            return kyufu_storage__mdb_error(mrv);
        }
    } else if (mrv != MDB_NOTFOUND) {
        return kyufu_storage__mdb_error(mrv);
    }

    size_t alen = owner != NULL ? strlen(owner->actor) : 0;
    size_t olen = owner != NULL ? 1 + alen + 32 : 0;
    KYUFU_ASSERT(owner == NULL ||
                 (owner->has_owner && alen >= 1 &&
                  alen <= KYUFU_ACTOR_BYTES_MAX));
    /* The CommandResult part carries the record (a Household): sealed
     * when the store has a CMK; time and owner stay readable for pruning
     * and the owner rule. */
    uint8_t *sealed = NULL;
    if (kyufu_storage__seal_on(s, KYUFU_DB_SESSIONS)) {
        int rv = kyufu_storage__seal(s, KYUFU_DB_SESSIONS, key, klen, result,
                                     len, &sealed, &len);
        if (rv != 0) {
            return rv;
        }
        result = sealed;
    }
    v.mv_size = 8 + olen + len;
    mrv = mdb_put(txn, s->dbi[KYUFU_DB_SESSIONS], &k, &v, MDB_RESERVE);
    if (mrv != 0) {
        free(sealed);
        return kyufu_storage__mdb_error(mrv);
    }
    uint8_t *out = v.mv_data;
    kyufu_storage__put_u64(out, (uint64_t)time_ms |
                                    (owner != NULL ? OWNER_FLAG : 0));
    if (owner != NULL) {
        out[8] = (uint8_t)alen;
        memcpy(out + 9, owner->actor, alen);
        memcpy(out + 9 + alen, owner->digest, 32);
    }
    memcpy(out + 8 + olen, result, len);
    free(sealed);

    MDB_val ek = {expiry_key(ekey, (uint64_t)time_ms, key, klen), ekey};
    MDB_val empty = {0, (void *)""};
    return kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_SESSION_EXPIRY], &ek, &empty, 0));
}

static int floor_get(struct kyufu_storage *s, MDB_txn *txn,
                     const void *client_id, size_t len, uint64_t *floor)
{
    MDB_val k = {len, (void *)client_id};
    MDB_val v;
    KYUFU_ASSERT(len >= 1 && len <= KYUFU_CLIENT_ID_BYTES_MAX);
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_SESSION_FLOOR], &k, &v);
    if (mrv == MDB_NOTFOUND) {
        *floor = 0;
        return 0;
    }
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (v.mv_size != 8) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    *floor = kyufu_storage__get_u64(v.mv_data);
    if (*floor == 0) {
        /* Written only for a pruned key (seq > 0): a 0 came from outside
         * (a snapshot, a damaged store), never from apply. */
        return KYUFU_STORAGE_ECORRUPT;
    }
    return 0;
}

/* Raise the floor of the client of session key sk to its seq. */
static int floor_raise(struct kyufu_storage *s, MDB_txn *txn,
                       const uint8_t *sk, size_t slen)
{
    uint64_t floor;
    uint8_t val[8];
    if (slen < 1 + 1 + 8 || sk[slen - 9] != 0) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    size_t idlen = slen - 9;
    uint64_t seq = kyufu_storage__get_u64(sk + slen - 8);
    if (idlen > KYUFU_CLIENT_ID_BYTES_MAX || seq == 0) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    int rv = floor_get(s, txn, sk, idlen, &floor);
    if (rv != 0 || seq <= floor) {
        return rv;
    }
    kyufu_storage__put_u64(val, seq);
    MDB_val k = {idlen, (void *)sk};
    MDB_val v = {8, val};
    return kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_SESSION_FLOOR], &k, &v, 0));
}

int kyufu_storage__session_absent_state(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        const char *client_id,
                                        uint64_t seq,
                                        enum kyufu_storage__key_state *state)
{
    uint8_t key[SESSION_KEY_MAX];
    MDB_val k = {session_key(key, client_id, seq), key};
    MDB_val v;
    uint64_t floor;
    KYUFU_ASSERT(seq > 0);
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_SESSIONS], &k, &v);
    if (mrv == 0) {
        /* Present but read as absent: past retention, not yet pruned. */
        KYUFU_ASSERT(v.mv_size >= 8);
        *state = KYUFU_KEY_EXPIRED;
        return 0;
    }
    if (mrv != MDB_NOTFOUND) {
        return kyufu_storage__mdb_error(mrv);
    }
    int rv = floor_get(s, txn, client_id, strlen(client_id), &floor);
    if (rv != 0) {
        return rv;
    }
    *state = seq <= floor ? KYUFU_KEY_EXPIRED : KYUFU_KEY_NEVER;
    return 0;
}

int kyufu_storage__session_prune(struct kyufu_storage *s,
                                 MDB_txn *txn,
                                 int64_t now_ms)
{
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int rv = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_SESSION_EXPIRY], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (unsigned i = 0; i < KYUFU_SESSION_PRUNE_PER_COMMAND_MAX; i++) {
        mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrv == MDB_NOTFOUND) {
            break;
        }
        if (mrv != 0 || k.mv_size < 8 + 2 + 8) {
            rv = mrv != 0 ? kyufu_storage__mdb_error(mrv)
                          : KYUFU_STORAGE_ECORRUPT;
            break;
        }
        if (!expired(kyufu_storage__get_u64(k.mv_data), now_ms)) {
            break;
        }
        if (k.mv_size - 8 > SESSION_KEY_MAX) {
            rv = KYUFU_STORAGE_ECORRUPT;
            break;
        }
        /* A copy: the writes below may move the cursor's page. */
        uint8_t skey[SESSION_KEY_MAX];
        memcpy(skey, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
        MDB_val sk = {k.mv_size - 8, skey};
        rv = floor_raise(s, txn, skey, sk.mv_size);
        if (rv != 0) {
            break;
        }
        mrv = mdb_del(txn, s->dbi[KYUFU_DB_SESSIONS], &sk, NULL);
        if (mrv != 0 && mrv != MDB_NOTFOUND) {
            rv = kyufu_storage__mdb_error(mrv);
            break;
        }
        mrv = mdb_cursor_del(cur, 0);
        if (mrv != 0) {
            rv = kyufu_storage__mdb_error(mrv);
            break;
        }
    }
    mdb_cursor_close(cur);
    return rv;
}

/* ------------------------------------------------------------ owners */

int kyufu_storage_command_digest(const Kyufu__V1__Command *cmd,
                                 uint8_t digest[32])
{
    uint8_t word[4];
    uint8_t *body = NULL;
    size_t len = 0;
    int rv = 0;
    if (cmd == NULL || digest == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    uint32_t body_case = (uint32_t)cmd->body_case;
    const ProtobufCFieldDescriptor *f =
        body_case != 0 ? protobuf_c_message_descriptor_get_field(
                             cmd->base.descriptor, body_case)
                       : NULL;
    if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
        const ProtobufCMessage *m =
            *(const ProtobufCMessage *const *)((const uint8_t *)cmd +
                                               f->offset);
        /* CreateStaff's temporary password hash is made by the node with a
         * new salt at each attempt: a retry of the same key is the same
         * command without it. */
        Kyufu__V1__CreateStaff staff;
        if (m != NULL &&
            cmd->body_case == KYUFU__V1__COMMAND__BODY_CREATE_STAFF) {
            staff = *cmd->create_staff;
            staff.temporary_password = NULL;
            m = &staff.base;
        }
        if (m != NULL) {
            rv = kyufu_storage__pack(m, &body, &len);
            if (rv != 0) {
                return rv;
            }
        }
    }
    kyufu_storage__put_u32(word, body_case);
    const uint8_t *parts[2] = {word, body};
    const size_t lens[2] = {4, len};
    rv = kyufu_storage__sha256(parts, lens, 2, digest);
    free(body);
    return rv;
}

enum kyufu_storage_key_use
kyufu_storage__owner_verdict(const struct kyufu_storage__key_owner *owner,
                             const char *actor, const uint8_t digest[32],
                             bool settle)
{
    static const uint8_t any[32]; /* a SettleWrite's fence */
    if (!owner->has_owner) {
        return KYUFU_STORAGE_KEY_OWN; /* before the identity rules */
    }
    if (strcmp(owner->actor, actor) != 0) {
        return KYUFU_STORAGE_KEY_OTHER_ACTOR;
    }
    if (!settle && memcmp(owner->digest, any, 32) != 0 &&
        memcmp(owner->digest, digest, 32) != 0) {
        return KYUFU_STORAGE_KEY_OTHER_COMMAND;
    }
    return KYUFU_STORAGE_KEY_OWN;
}

int kyufu_storage_key_use(struct kyufu_storage *s,
                          const char *client_id,
                          uint64_t seq,
                          const char *actor,
                          const uint8_t digest[32],
                          bool settle,
                          int64_t now_ms,
                          enum kyufu_storage_key_use *use)
{
    struct kyufu_storage__key_owner owner;
    MDB_txn *txn;
    MDB_val result;
    if (client_id == NULL || actor == NULL || digest == NULL || use == NULL ||
        seq == 0 || !kyufu_storage__valid_printable(client_id, 1,
                                                    KYUFU_CLIENT_ID_BYTES_MAX)) {
        return KYUFU_STORAGE_EINVALID;
    }
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__session_get_owned(s, txn, client_id, seq, now_ms,
                                          &result, &owner, NULL);
    kyufu_storage__read_end(s, txn);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        *use = KYUFU_STORAGE_KEY_NEW;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    *use = kyufu_storage__owner_verdict(&owner, actor, digest, settle);
    return 0;
}
