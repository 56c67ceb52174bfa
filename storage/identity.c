/* Identity records (issue 8; docs/identity.md, docs/storage.md):
 *
 *   credential      staff_id                 → Credential
 *   auth_session    token_hash (32)          → AuthSession
 *   auth_by_staff   staff_id 0x00 token_hash → ""   (an account's sessions)
 *
 * Typed get/put with record checks (before a write, after a read), the
 * session index kept in step by put/del, closing every session of an
 * account, and the whole-state check of these databases.  No secret is
 * ever formatted into a message here: checks name the field, never its
 * bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INDEX_KEY_MAX (KYUFU_STAFF_ID_BYTES_MAX + 1 + KYUFU_SHA256_BYTES)

bool kyufu_storage__is_node_name(const char *s)
{
    return s != NULL && (strncmp(s, "kyufu-node-", 11) == 0 ||
                         strncmp(s, "kyufud-", 7) == 0);
}

const char *kyufu_storage__check_password_hash(const Kyufu__V1__PasswordHash *h)
{
    if (h == NULL) {
        return "password hash missing";
    }
    if (h->iterations == 0 || h->iterations > KYUFU_PW_ITERATIONS_MAX) {
        return "password hash iterations out of range";
    }
    if (h->salt.len < KYUFU_PW_SALT_BYTES_MIN ||
        h->salt.len > KYUFU_PW_SALT_BYTES_MAX) {
        return "password salt must be 16..64 bytes";
    }
    if (h->hash.len != KYUFU_PW_HASH_BYTES) {
        return "password hash must be 32 bytes";
    }
    return NULL;
}

const char *kyufu_storage__check_credential(const Kyufu__V1__Credential *cr)
{
    if (!kyufu_storage__valid_staff_id(cr->staff_id)) {
        return "credential staff_id invalid";
    }
    if (cr->password != NULL &&
        kyufu_storage__check_password_hash(cr->password) != NULL) {
        return "credential password invalid";
    }
    if (cr->n_previous > KYUFU_PW_HISTORY_MAX) {
        return "credential history too long";
    }
    for (size_t i = 0; i < cr->n_previous; i++) {
        if (kyufu_storage__check_password_hash(cr->previous[i]) != NULL) {
            return "credential history entry invalid";
        }
    }
    if (cr->totp_secret.len != 0 &&
        (cr->totp_secret.len < KYUFU_TOTP_SECRET_BYTES_MIN ||
         cr->totp_secret.len > KYUFU_TOTP_SECRET_BYTES_MAX)) {
        return "credential TOTP secret length invalid";
    }
    if (cr->totp_confirmed && cr->totp_secret.len == 0) {
        return "credential confirmed without a TOTP secret";
    }
    if (cr->locked_until_ms < 0 || cr->disabled_ms < 0 ||
        cr->password_set_ms < 0) {
        return "credential time negative";
    }
    return NULL;
}

const char *kyufu_storage__check_auth_session(const Kyufu__V1__AuthSession *a)
{
    if (a->token_hash.len != KYUFU_SHA256_BYTES) {
        return "session token hash must be 32 bytes";
    }
    if (!kyufu_storage__valid_staff_id(a->staff_id)) {
        return "session staff_id invalid";
    }
    if (a->cert_sha256.len != KYUFU_SHA256_BYTES) {
        return "session certificate hash must be 32 bytes";
    }
    if (!kyufu_storage__valid_text(a->terminal, 0, KYUFU_TERMINAL_BYTES_MAX)) {
        return "session terminal invalid";
    }
    if (a->created_ms <= 0 || a->last_used_ms < a->created_ms ||
        a->idle_ms <= 0 || a->absolute_ms <= 0 || a->id == 0) {
        return "session times or id invalid";
    }
    return NULL;
}

/* ------------------------------------------------------------ credential */

int kyufu_storage__get_credential(struct kyufu_storage *s,
                                  MDB_txn *txn,
                                  const char *staff_id,
                                  Kyufu__V1__Credential **out)
{
    size_t n = strlen(staff_id);
    MDB_val k = {n, (void *)staff_id};
    MDB_val v;
    *out = NULL;
    if (n == 0 || n > KYUFU_STAFF_ID_BYTES_MAX) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_CREDENTIAL], &k, &v);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    Kyufu__V1__Credential *cr =
        (Kyufu__V1__Credential *)kyufu_storage__unpack_or_null(
            s, KYUFU_DB_CREDENTIAL, &k, &v, &kyufu__v1__credential__descriptor);
    if (cr == NULL) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    const char *why = kyufu_storage__check_credential(cr);
    if (why != NULL || strcmp(cr->staff_id, staff_id) != 0) {
        kyufu__v1__credential__free_unpacked(cr, NULL);
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = cr;
    return 0;
}

int kyufu_storage__put_credential(struct kyufu_storage *s,
                                  MDB_txn *txn,
                                  const Kyufu__V1__Credential *cr)
{
    const char *why = kyufu_storage__check_credential(cr);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "credential %s: %s",
                             cr->staff_id, why);
    }
    return kyufu_storage__put_msg(s, txn, KYUFU_DB_CREDENTIAL, cr->staff_id,
                                  strlen(cr->staff_id), &cr->base);
}

int kyufu_storage__del_credential(struct kyufu_storage *s,
                                  MDB_txn *txn,
                                  const char *staff_id)
{
    MDB_val k = {strlen(staff_id), (void *)staff_id};
    int mrv = mdb_del(txn, s->dbi[KYUFU_DB_CREDENTIAL], &k, NULL);
    return mrv == MDB_NOTFOUND ? 0 : kyufu_storage__mdb_error(mrv);
}

int kyufu_storage__new_credential(struct kyufu_storage__cmd *c,
                                  const char *staff_id,
                                  const Kyufu__V1__PasswordHash *temporary)
{
    Kyufu__V1__Credential cr = KYUFU__V1__CREDENTIAL__INIT;
    cr.staff_id = (char *)staff_id;
    cr.password = (Kyufu__V1__PasswordHash *)temporary;
    cr.password_set_ms = c->now_ms;
    cr.must_change = true;
    return kyufu_storage__put_credential(c->s, c->txn, &cr);
}

/* ------------------------------------------------------------ sessions */

static size_t index_key(uint8_t *key, const char *staff_id,
                        const uint8_t token_hash[32])
{
    size_t n = strlen(staff_id);
    KYUFU_ASSERT(n >= 1 && n <= KYUFU_STAFF_ID_BYTES_MAX);
    memcpy(key, staff_id, n);
    key[n] = 0;
    memcpy(key + n + 1, token_hash, KYUFU_SHA256_BYTES);
    return n + 1 + KYUFU_SHA256_BYTES;
}

int kyufu_storage__get_auth_session(struct kyufu_storage *s,
                                    MDB_txn *txn,
                                    const uint8_t *token_hash,
                                    size_t len,
                                    Kyufu__V1__AuthSession **out)
{
    MDB_val k = {len, (void *)token_hash};
    MDB_val v;
    *out = NULL;
    if (len != KYUFU_SHA256_BYTES) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_AUTH_SESSION], &k, &v);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    Kyufu__V1__AuthSession *a =
        (Kyufu__V1__AuthSession *)kyufu_storage__unpack_or_null(
            s, KYUFU_DB_AUTH_SESSION, &k, &v,
            &kyufu__v1__auth_session__descriptor);
    if (a == NULL) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    if (kyufu_storage__check_auth_session(a) != NULL ||
        memcmp(a->token_hash.data, token_hash, len) != 0) {
        kyufu__v1__auth_session__free_unpacked(a, NULL);
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = a;
    return 0;
}

int kyufu_storage__put_auth_session(struct kyufu_storage *s,
                                    MDB_txn *txn,
                                    const Kyufu__V1__AuthSession *a)
{
    uint8_t key[INDEX_KEY_MAX];
    const char *why = kyufu_storage__check_auth_session(a);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "session %llu: %s",
                             (unsigned long long)a->id, why);
    }
    int rv = kyufu_storage__put_msg(s, txn, KYUFU_DB_AUTH_SESSION,
                                    a->token_hash.data, a->token_hash.len,
                                    &a->base);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {index_key(key, a->staff_id, a->token_hash.data), key};
    MDB_val empty = {0, (void *)""};
    return kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &k, &empty, 0));
}

int kyufu_storage__del_auth_session(struct kyufu_storage *s,
                                    MDB_txn *txn,
                                    const uint8_t token_hash[32])
{
    Kyufu__V1__AuthSession *a = NULL;
    uint8_t key[INDEX_KEY_MAX];
    int rv = kyufu_storage__get_auth_session(s, txn, token_hash,
                                             KYUFU_SHA256_BYTES, &a);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {KYUFU_SHA256_BYTES, (void *)token_hash};
    rv = kyufu_storage__mdb_error(
        mdb_del(txn, s->dbi[KYUFU_DB_AUTH_SESSION], &k, NULL));
    if (rv == 0) {
        MDB_val ik = {index_key(key, a->staff_id, token_hash), key};
        int mrv = mdb_del(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &ik, NULL);
        rv = mrv == MDB_NOTFOUND ? KYUFU_STORAGE_ECORRUPT
                                 : kyufu_storage__mdb_error(mrv);
    }
    kyufu__v1__auth_session__free_unpacked(a, NULL);
    return rv;
}

/* The first index entry of staff_id at or after *pos (a token hash, or
 * NULL for the first): 0 with hash filled, NOTFOUND when none. */
static int next_of_staff(struct kyufu_storage *s, MDB_txn *txn,
                         const char *staff_id, uint8_t hash[32])
{
    uint8_t key[INDEX_KEY_MAX];
    size_t n = strlen(staff_id);
    memcpy(key, staff_id, n);
    key[n] = 0;
    MDB_val k = {n + 1, key};
    MDB_val v;
    MDB_cursor *cur;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    int rv;
    if (mrv == MDB_NOTFOUND) {
        rv = KYUFU_STORAGE_ENOTFOUND;
    } else if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
    } else if (k.mv_size != n + 1 + KYUFU_SHA256_BYTES ||
               memcmp(k.mv_data, key, n + 1) != 0) {
        rv = KYUFU_STORAGE_ENOTFOUND; /* the next account's */
    } else {
        memcpy(hash, (uint8_t *)k.mv_data + n + 1, KYUFU_SHA256_BYTES);
        rv = 0;
    }
    mdb_cursor_close(cur);
    return rv;
}

int kyufu_storage__close_staff_sessions(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        const char *staff_id,
                                        size_t *n)
{
    uint8_t hash[KYUFU_SHA256_BYTES];
    size_t count = 0;
    int rv;
    /* Each pass deletes the first entry: at most the per-account bound. */
    while ((rv = next_of_staff(s, txn, staff_id, hash)) == 0) {
        rv = kyufu_storage__del_auth_session(s, txn, hash);
        if (rv != 0) {
            return rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
        }
        count++;
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    if (n != NULL) {
        *n = count;
    }
    return 0;
}

int kyufu_storage__count_staff_sessions(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        const char *staff_id,
                                        size_t *n)
{
    uint8_t key[INDEX_KEY_MAX];
    size_t len = strlen(staff_id);
    memcpy(key, staff_id, len);
    key[len] = 0;
    MDB_val k = {len + 1, key};
    MDB_val v;
    MDB_cursor *cur;
    *n = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < len + 1 || memcmp(k.mv_data, key, len + 1) != 0) {
            break;
        }
        (*n)++;
    }
    mdb_cursor_close(cur);
    return mrv == 0 || mrv == MDB_NOTFOUND ? 0 : kyufu_storage__mdb_error(mrv);
}

/* ------------------------------------------------------------ whole state */

static int check_credentials(struct kyufu_storage *s, MDB_txn *txn,
                             char *errmsg, size_t len)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_CREDENTIAL], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0 && rv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__Credential *cr =
            (Kyufu__V1__Credential *)kyufu_storage__unpack_or_null(
                s, KYUFU_DB_CREDENTIAL, &k, &v,
                &kyufu__v1__credential__descriptor);
        Kyufu__V1__StaffAccount *a = NULL;
        const char *why = cr == NULL ? "undecodable"
                                     : kyufu_storage__check_credential(cr);
        if (why == NULL && (k.mv_size != strlen(cr->staff_id) ||
                            memcmp(k.mv_data, cr->staff_id, k.mv_size) != 0)) {
            why = "key differs from staff_id";
        }
        if (why == NULL) {
            int grv = kyufu_storage__get_staff(s, txn, cr->staff_id, &a);
            if (grv == KYUFU_STORAGE_ENOTFOUND) {
                why = "credential of no account";
            } else if (grv != 0) {
                rv = grv;
            } else if (a->status ==
                       KYUFU__V1__STAFF_STATUS__STAFF_PURGED) {
                why = "credential of a purged account";
            } else if ((a->status ==
                        KYUFU__V1__STAFF_STATUS__STAFF_DISABLED) !=
                       (cr->disabled_ms != 0)) {
                why = "disabled time disagrees with the account";
            }
        }
        if (why != NULL && rv == 0) {
            kyufu_storage__errmsg(errmsg, len, "credential %.*s: %s",
                                  (int)(k.mv_size < 64 ? k.mv_size : 64),
                                  (char *)k.mv_data, why);
            rv = KYUFU_STORAGE_ECORRUPT;
        }
        if (a != NULL) {
            kyufu__v1__staff_account__free_unpacked(a, NULL);
        }
        if (cr != NULL) {
            kyufu__v1__credential__free_unpacked(cr, NULL);
        }
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND && mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    return rv;
}

static int check_sessions(struct kyufu_storage *s, MDB_txn *txn,
                          char *errmsg, size_t len)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat st_sessions, st_index;
    int rv = 0;
    int mrv = mdb_stat(txn, s->dbi[KYUFU_DB_AUTH_SESSION], &st_sessions);
    if (mrv == 0) {
        mrv = mdb_stat(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &st_index);
    }
    if (mrv == 0) {
        mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AUTH_SESSION], &cur);
    }
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    /* Every session: valid, keyed by its hash, of an active account with a
     * credential, indexed.  With the counts equal, the index holds exactly
     * the sessions' entries. */
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0 && rv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__AuthSession *a =
            (Kyufu__V1__AuthSession *)kyufu_storage__unpack_or_null(
                s, KYUFU_DB_AUTH_SESSION, &k, &v,
                &kyufu__v1__auth_session__descriptor);
        Kyufu__V1__StaffAccount *st = NULL;
        Kyufu__V1__Credential *cr = NULL;
        const char *why = a == NULL ? "undecodable"
                                    : kyufu_storage__check_auth_session(a);
        if (why == NULL && (k.mv_size != a->token_hash.len ||
                            memcmp(k.mv_data, a->token_hash.data,
                                   k.mv_size) != 0)) {
            why = "key differs from token hash";
        }
        if (why == NULL) {
            int grv = kyufu_storage__get_staff(s, txn, a->staff_id, &st);
            if (grv == 0) {
                grv = kyufu_storage__get_credential(s, txn, a->staff_id, &cr);
            }
            if (grv == KYUFU_STORAGE_ENOTFOUND) {
                why = "session of no account or credential";
            } else if (grv != 0) {
                rv = grv;
            } else if (st->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE) {
                why = "session of an account that is not active";
            }
        }
        if (why == NULL && rv == 0) {
            uint8_t key[INDEX_KEY_MAX];
            MDB_val ik = {index_key(key, a->staff_id, a->token_hash.data),
                          key};
            MDB_val iv;
            int grv = mdb_get(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &ik, &iv);
            if (grv == MDB_NOTFOUND || (grv == 0 && iv.mv_size != 0)) {
                why = "session missing from the account index";
            } else if (grv != 0) {
                rv = kyufu_storage__mdb_error(grv);
            }
        }
        if (why != NULL && rv == 0) {
            kyufu_storage__errmsg(errmsg, len, "auth session %llu: %s",
                                  (unsigned long long)(a != NULL ? a->id : 0),
                                  why);
            rv = KYUFU_STORAGE_ECORRUPT;
        }
        if (st != NULL) {
            kyufu__v1__staff_account__free_unpacked(st, NULL);
        }
        if (cr != NULL) {
            kyufu__v1__credential__free_unpacked(cr, NULL);
        }
        if (a != NULL) {
            kyufu__v1__auth_session__free_unpacked(a, NULL);
        }
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND && mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    if (rv == 0 && st_sessions.ms_entries != st_index.ms_entries) {
        kyufu_storage__errmsg(errmsg, len,
                              "session index has %zu entries for %zu "
                              "sessions",
                              (size_t)st_index.ms_entries,
                              (size_t)st_sessions.ms_entries);
        rv = KYUFU_STORAGE_ECORRUPT;
    }
    return rv;
}

static int check_grants(struct kyufu_storage *s, MDB_txn *txn, char *errmsg,
                        size_t len)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_ADMIN_GRANT], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0 && rv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (!kyufu_storage__pending_valid(k.mv_data, k.mv_size, v.mv_data,
                                          v.mv_size)) {
            kyufu_storage__errmsg(errmsg, len,
                                  "admin_grant: a pending request is "
                                  "malformed");
            rv = KYUFU_STORAGE_ECORRUPT;
        }
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND && mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    return rv;
}

int kyufu_storage__check_identity(struct kyufu_storage *s,
                                  MDB_txn *txn,
                                  char *errmsg,
                                  size_t errmsg_len)
{
    int rv = check_credentials(s, txn, errmsg, errmsg_len);
    if (rv == 0) {
        rv = check_sessions(s, txn, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = check_grants(s, txn, errmsg, errmsg_len);
    }
    return rv;
}

/* ------------------------------------------------------------ helpers */

int kyufu_storage__id_load(struct kyufu_storage__cmd *c,
                           const char *staff_id,
                           Kyufu__V1__StaffAccount **a,
                           Kyufu__V1__Credential **cr)
{
    *a = NULL;
    if (cr != NULL) {
        *cr = NULL;
    }
    int rv = kyufu_storage__get_staff(c->s, c->txn, staff_id, a);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__NOT_FOUND,
                                     "no staff %s", staff_id);
    }
    if (rv != 0 || cr == NULL) {
        return rv;
    }
    rv = kyufu_storage__get_credential(c->s, c->txn, staff_id, cr);
    return rv == KYUFU_STORAGE_ENOTFOUND ? 0 : rv;
}

int kyufu_storage__id_admin_actor(struct kyufu_storage__cmd *c,
                                  const char *target)
{
    Kyufu__V1__StaffAccount *a = NULL;
    if (target != NULL && strcmp(target, c->actor) == 0) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "no one acts on their own account");
    }
    int rv = kyufu_storage__get_staff(c->s, c->txn, c->actor, &a);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "unknown actor %s", c->actor);
    }
    if (rv != 0) {
        return rv;
    }
    if (a->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE) {
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                   "actor %s is not active", c->actor);
    } else if ((a->roles_mask & (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)) == 0) {
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                   "actor %s is not an ID administrator",
                                   c->actor);
    }
    kyufu__v1__staff_account__free_unpacked(a, NULL);
    return rv;
}

int kyufu_storage__id_self(struct kyufu_storage__cmd *c,
                           const char *staff_id,
                           bool node_ok)
{
    if (strcmp(c->actor, staff_id) == 0 ||
        (node_ok && kyufu_storage__is_node_name(c->actor))) {
        return 0;
    }
    return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                 "only the account itself%s may do this",
                                 node_ok ? " or a node" : "");
}

int kyufu_storage__count_id_admins(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   size_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0;
    *n = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_STAFF], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__StaffAccount *a =
            (Kyufu__V1__StaffAccount *)kyufu_storage__unpack_or_null(
                s, KYUFU_DB_STAFF, &k, &v,
                &kyufu__v1__staff_account__descriptor);
        if (a == NULL) {
            rv = KYUFU_STORAGE_ECORRUPT;
            break;
        }
        if (a->status == KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE &&
            (a->roles_mask & (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)) != 0) {
            (*n)++;
        }
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    return rv;
}
