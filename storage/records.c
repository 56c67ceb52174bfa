/* Typed records in LMDB: key formats, encoding, the household seam, the
 * record checks done right before a write and right after a read, and the
 * application indexes kept in step with every application write.
 *
 * Values are protobuf encodings (deterministic for a given message, so equal
 * state means equal bytes and equal digests), sealed (seal.c) in the dbs
 * that hold personal data when the store has a CMK: replicas apply an entry
 * with the same salt and index, so they still write equal bytes.  Keys
 * (docs/storage.md):
 *   programs      code                      → Program
 *   households    household_no              → Household (sealed)
 *   applications  id (u64 BE)               → Application (sealed)
 *   app_live      code 0x00 household_no    → id (u64 BE)
 *   app_index     kind-prefixed keys ending in the id (u64 BE) → ""
 *   batches       id (u64 BE)               → PaymentBatch
 *   staff         staff_id                  → StaffAccount (sealed)
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int kyufu_storage__pack(const ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    size_t w = protobuf_c_message_pack(m, buf);
    KYUFU_ASSERT(w == n);
    *out = buf;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------- households
 */

int kyufu_storage__household_encode(struct kyufu_storage *s,
                                    const Kyufu__V1__Household *h,
                                    uint8_t **out,
                                    size_t *len)
{
    return kyufu_storage__encode(s, KYUFU_DB_HOUSEHOLDS, h->household_no,
                                 strlen(h->household_no), &h->base, out, len);
}

int kyufu_storage__household_decode(struct kyufu_storage *s,
                                    const char *no,
                                    const uint8_t *buf,
                                    size_t len,
                                    Kyufu__V1__Household **out)
{
    MDB_val k = {strlen(no), (void *)no};
    MDB_val v = {len, (void *)buf};
    ProtobufCMessage *m;
    int rv = kyufu_storage__unpack(s, KYUFU_DB_HOUSEHOLDS, &k, &v,
                                   &kyufu__v1__household__descriptor, &m);
    *out = (Kyufu__V1__Household *)m;
    return rv;
}

/* ---------------------------------------------------------------- checks */

const char *kyufu_storage__check_program(const Kyufu__V1__Program *p)
{
    if (p->budget < 0 || p->available < 0 || p->reserved < 0 || p->paid < 0) {
        return "program money below zero";
    }
    /* The sum cannot overflow: each term is ≤ budget ≤ 10^13 when it holds;
     * compute in unsigned to stay defined when it does not. */
    uint64_t sum = (uint64_t)p->available + (uint64_t)p->reserved +
                   (uint64_t)p->paid;
    if (sum != (uint64_t)p->budget) {
        return "budget != available + reserved + paid";
    }
    if (p->status < KYUFU__V1__PROGRAM_STATUS__PROGRAM_DRAFT ||
        p->status > KYUFU__V1__PROGRAM_STATUS__PROGRAM_CLOSED) {
        return "program status out of range";
    }
    if (p->code == NULL || p->code[0] == '\0') {
        return "program without code";
    }
    return NULL;
}

const char *kyufu_storage__check_application(const Kyufu__V1__Application *a)
{
    Kyufu__V1__ApplicationStatus st = a->status;
    if (a->id == 0) {
        return "application id 0";
    }
    if (st < KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED ||
        st > KYUFU__V1__APPLICATION_STATUS__APP_RETURNED) {
        return "application status out of range";
    }
    if (a->amount <= 0) {
        return "application amount not positive";
    }
    if ((st == KYUFU__V1__APPLICATION_STATUS__APP_APPROVED ||
         st == KYUFU__V1__APPLICATION_STATUS__APP_PAID ||
         st == KYUFU__V1__APPLICATION_STATUS__APP_RETURNED) &&
        (a->decided_by == NULL || a->submitted_by == NULL ||
         strcmp(a->decided_by, a->submitted_by) == 0)) {
        return "approver is the submitter";
    }
    if ((st == KYUFU__V1__APPLICATION_STATUS__APP_PAID ||
         st == KYUFU__V1__APPLICATION_STATUS__APP_RETURNED) &&
        (a->batch_id == 0 || a->paid_ms <= 0)) {
        return "paid application without batch or time";
    }
    return NULL;
}

const char *kyufu_storage__check_batch(const Kyufu__V1__PaymentBatch *b)
{
    if (b->id == 0 || b->n_application_ids == 0 || b->total_amount <= 0) {
        return "empty batch";
    }
    if (b->status == KYUFU__V1__BATCH_STATUS__BATCH_CONFIRMED) {
        if (b->confirmed_by == NULL || b->created_by == NULL ||
            strcmp(b->confirmed_by, b->created_by) == 0) {
            return "batch confirmed by its creator";
        }
    } else if (b->status != KYUFU__V1__BATCH_STATUS__BATCH_CREATED) {
        return "batch status out of range";
    }
    return NULL;
}

const char *kyufu_storage__check_staff(const Kyufu__V1__StaffAccount *a)
{
    /* A purged account keeps no roles (identity, PurgeStaff). */
    bool purged = a->status == KYUFU__V1__STAFF_STATUS__STAFF_PURGED;
    if (!purged && !kyufu_storage__valid_roles(a->roles_mask)) {
        return "staff roles invalid";
    }
    if (a->status < KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE ||
        a->status > KYUFU__V1__STAFF_STATUS__STAFF_PURGED) {
        return "staff status out of range";
    }
    if (a->status == KYUFU__V1__STAFF_STATUS__STAFF_PURGED &&
        (a->roles_mask != 0 ||
         (a->display_name != NULL && a->display_name[0] != '\0'))) {
        return "purged staff keeps a name or roles";
    }
    return NULL;
}

/* ---------------------------------------------------------------- generic */

static int get_raw(struct kyufu_storage *s,
                   MDB_txn *txn,
                   enum kyufu_storage__db db,
                   const void *key,
                   size_t klen,
                   MDB_val *v)
{
    MDB_val k = {klen, (void *)key};
    if (klen == 0 || klen > KYUFU_SNAPSHOT_KEY_BYTES_MAX) {
        return KYUFU_STORAGE_ENOTFOUND;
    }
    return kyufu_storage__mdb_error(mdb_get(txn, s->dbi[db], &k, v));
}

int kyufu_storage__put_msg(struct kyufu_storage *s,
                           MDB_txn *txn,
                           enum kyufu_storage__db db,
                           const void *key,
                           size_t klen,
                           const ProtobufCMessage *m)
{
    uint8_t *buf;
    size_t len;
    int rv = kyufu_storage__encode(s, db, key, klen, m, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {klen, (void *)key};
    MDB_val v = {len, buf};
    rv = kyufu_storage__mdb_error(mdb_put(txn, s->dbi[db], &k, &v, 0));
    free(buf);
    return rv;
}

static void id_key(uint8_t key[8], uint64_t id)
{
    kyufu_storage__put_u64(key, id);
}

/* get_raw, then open (sealed values) and unpack: 0, NOTFOUND, CORRUPT. */
static int get_msg(struct kyufu_storage *s,
                   MDB_txn *txn,
                   enum kyufu_storage__db db,
                   const void *key,
                   size_t klen,
                   const ProtobufCMessageDescriptor *desc,
                   ProtobufCMessage **out)
{
    MDB_val v;
    MDB_val k = {klen, (void *)key};
    int rv = get_raw(s, txn, db, key, klen, &v);
    if (rv != 0) {
        return rv;
    }
    return kyufu_storage__unpack(s, db, &k, &v, desc, out);
}

#define GET_CHECKED(type, db, key, klen, desc, check, out)                   \
    do {                                                                     \
        ProtobufCMessage *m_;                                                \
        int rv_ = get_msg(s, txn, (db), (key), (klen), (desc), &m_);         \
        if (rv_ != 0) {                                                      \
            return rv_;                                                      \
        }                                                                    \
        type *r_ = (type *)m_;                                               \
        const char *why_ = check(r_);                                        \
        if (why_ != NULL) {                                                  \
            kyufu_storage__panic(__FILE__, __LINE__, "read back: %s", why_); \
        }                                                                    \
        *(out) = r_;                                                         \
    } while (0)

/* ---------------------------------------------------------------- programs */

int kyufu_storage__get_program(struct kyufu_storage *s,
                               MDB_txn *txn,
                               const char *code,
                               Kyufu__V1__Program **out)
{
    GET_CHECKED(Kyufu__V1__Program, KYUFU_DB_PROGRAMS, code, strlen(code),
                &kyufu__v1__program__descriptor, kyufu_storage__check_program,
                out);
    return 0;
}

int kyufu_storage__put_program(struct kyufu_storage *s,
                               MDB_txn *txn,
                               const Kyufu__V1__Program *p)
{
    const char *why = kyufu_storage__check_program(p);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "program %s: %s", p->code,
                             why);
    }
    return kyufu_storage__put_msg(s, txn, KYUFU_DB_PROGRAMS, p->code,
                                  strlen(p->code), &p->base);
}

/* ---------------------------------------------------------------- households */

int kyufu_storage__get_household(struct kyufu_storage *s,
                                 MDB_txn *txn,
                                 const char *no,
                                 Kyufu__V1__Household **out)
{
    MDB_val v;
    int rv = get_raw(s, txn, KYUFU_DB_HOUSEHOLDS, no, strlen(no), &v);
    if (rv != 0) {
        return rv;
    }
    return kyufu_storage__household_decode(s, no, v.mv_data, v.mv_size, out);
}

int kyufu_storage__put_household(struct kyufu_storage *s,
                                 MDB_txn *txn,
                                 const Kyufu__V1__Household *h)
{
    uint8_t *buf;
    size_t len;
    KYUFU_ASSERT(kyufu_storage__valid_household_no(h->household_no));
    KYUFU_ASSERT(h->version > 0);
    int rv = kyufu_storage__household_encode(s, h, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {strlen(h->household_no), h->household_no};
    MDB_val v = {len, buf};
    rv = kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_HOUSEHOLDS], &k, &v, 0));
    free(buf);
    return rv;
}

/* ---------------------------------------------------------------- batches */

int kyufu_storage__get_batch(struct kyufu_storage *s,
                             MDB_txn *txn,
                             uint64_t id,
                             Kyufu__V1__PaymentBatch **out)
{
    uint8_t key[8];
    id_key(key, id);
    GET_CHECKED(Kyufu__V1__PaymentBatch, KYUFU_DB_BATCHES, key, 8,
                &kyufu__v1__payment_batch__descriptor,
                kyufu_storage__check_batch, out);
    return 0;
}

int kyufu_storage__put_batch(struct kyufu_storage *s,
                             MDB_txn *txn,
                             const Kyufu__V1__PaymentBatch *b)
{
    uint8_t key[8];
    const char *why = kyufu_storage__check_batch(b);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "batch %llu: %s",
                             (unsigned long long)b->id, why);
    }
    id_key(key, b->id);
    return kyufu_storage__put_msg(s, txn, KYUFU_DB_BATCHES, key, 8, &b->base);
}

/* ---------------------------------------------------------------- staff */

int kyufu_storage__get_staff(struct kyufu_storage *s,
                             MDB_txn *txn,
                             const char *id,
                             Kyufu__V1__StaffAccount **out)
{
    GET_CHECKED(Kyufu__V1__StaffAccount, KYUFU_DB_STAFF, id, strlen(id),
                &kyufu__v1__staff_account__descriptor,
                kyufu_storage__check_staff, out);
    return 0;
}

int kyufu_storage__put_staff(struct kyufu_storage *s,
                             MDB_txn *txn,
                             const Kyufu__V1__StaffAccount *a)
{
    const char *why = kyufu_storage__check_staff(a);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "staff %s: %s", a->staff_id,
                             why);
    }
    return kyufu_storage__put_msg(s, txn, KYUFU_DB_STAFF, a->staff_id,
                                  strlen(a->staff_id), &a->base);
}

/* ---------------------------------------------------------------- applications */

size_t kyufu_storage__live_key(uint8_t *key,
                               size_t cap,
                               const char *program,
                               const char *household)
{
    size_t p = strlen(program);
    size_t h = strlen(household);
    KYUFU_ASSERT(p + 1 + h <= cap);
    memcpy(key, program, p);
    key[p] = 0;
    memcpy(key + p + 1, household, h);
    return p + 1 + h;
}

int kyufu_storage__get_live(struct kyufu_storage *s,
                            MDB_txn *txn,
                            const char *program,
                            const char *household,
                            uint64_t *id)
{
    uint8_t key[KYUFU_PROGRAM_CODE_BYTES_MAX + 1 + KYUFU_HOUSEHOLD_NO_BYTES_MAX];
    MDB_val v;
    *id = 0;
    if (strlen(program) > KYUFU_PROGRAM_CODE_BYTES_MAX ||
        strlen(household) > KYUFU_HOUSEHOLD_NO_BYTES_MAX) {
        return 0;
    }
    size_t klen = kyufu_storage__live_key(key, sizeof key, program, household);
    int rv = get_raw(s, txn, KYUFU_DB_APP_LIVE, key, klen, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 8) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    *id = kyufu_storage__get_u64(v.mv_data);
    return 0;
}

int kyufu_storage__get_application(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   uint64_t id,
                                   Kyufu__V1__Application **out)
{
    uint8_t key[8];
    id_key(key, id);
    GET_CHECKED(Kyufu__V1__Application, KYUFU_DB_APPLICATIONS, key, 8,
                &kyufu__v1__application__descriptor,
                kyufu_storage__check_application, out);
    if ((*out)->id != id) {
        kyufu__v1__application__free_unpacked(*out, NULL);
        *out = NULL;
        return KYUFU_STORAGE_ECORRUPT;
    }
    return 0;
}

/* Index key: kind, then fields, then the id; returns its length. */
static size_t index_key(uint8_t *key,
                        int kind,
                        const char *str,
                        int status,
                        uint64_t id)
{
    size_t n = 0;
    key[n++] = (uint8_t)kind;
    if (str != NULL) {
        size_t l = strlen(str);
        memcpy(key + n, str, l);
        n += l;
        key[n++] = 0;
    }
    if (status >= 0) {
        key[n++] = (uint8_t)status;
    }
    kyufu_storage__put_u64(key + n, id);
    return n + 8;
}

static int index_op(struct kyufu_storage *s,
                    MDB_txn *txn,
                    bool put,
                    int kind,
                    const char *str,
                    int status,
                    uint64_t id)
{
    uint8_t key[2 + KYUFU_PROGRAM_CODE_BYTES_MAX + KYUFU_HOUSEHOLD_NO_BYTES_MAX +
                8];
    size_t klen = index_key(key, kind, str, status, id);
    MDB_val k = {klen, key};
    MDB_val v = {0, (void *)""};
    int mrv = put ? mdb_put(txn, s->dbi[KYUFU_DB_APP_INDEX], &k, &v, 0)
                  : mdb_del(txn, s->dbi[KYUFU_DB_APP_INDEX], &k, NULL);
    KYUFU_ASSERT(mrv != MDB_NOTFOUND); /* an index entry went missing */
    return kyufu_storage__mdb_error(mrv);
}

static int status_index(struct kyufu_storage *s,
                        MDB_txn *txn,
                        bool put,
                        const Kyufu__V1__Application *a)
{
    int rv = index_op(s, txn, put, KYUFU_IDX_STATUS, NULL, (int)a->status,
                      a->id);
    if (rv == 0) {
        rv = index_op(s, txn, put, KYUFU_IDX_PROGRAM_STATUS, a->program_code,
                      (int)a->status, a->id);
    }
    return rv;
}

int kyufu_storage__put_application(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   const Kyufu__V1__Application *old,
                                   const Kyufu__V1__Application *app)
{
    uint8_t key[8];
    uint8_t lkey[KYUFU_PROGRAM_CODE_BYTES_MAX + 1 +
                 KYUFU_HOUSEHOLD_NO_BYTES_MAX];
    uint8_t idbuf[8];
    bool was_live;
    bool is_live;
    int rv;
    const char *why = kyufu_storage__check_application(app);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "application %llu: %s",
                             (unsigned long long)app->id, why);
    }
    if (old != NULL) {
        KYUFU_ASSERT(old->id == app->id);
        KYUFU_ASSERT(strcmp(old->program_code, app->program_code) == 0);
        KYUFU_ASSERT(strcmp(old->household_no, app->household_no) == 0);
        KYUFU_ASSERT(old->amount == app->amount);
        if (!kyufu_storage__app_transition_ok(old->status, app->status)) {
            kyufu_storage__panic(__FILE__, __LINE__,
                                 "application %llu: transition %d -> %d",
                                 (unsigned long long)app->id, old->status,
                                 app->status);
        }
    } else {
        KYUFU_ASSERT(app->status ==
                     KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED);
    }
    id_key(key, app->id);
    rv = kyufu_storage__put_msg(s, txn, KYUFU_DB_APPLICATIONS, key, 8, &app->base);
    if (rv != 0) {
        return rv;
    }
    if (old == NULL) {
        rv = index_op(s, txn, true, KYUFU_IDX_PROGRAM, app->program_code, -1,
                      app->id);
        if (rv == 0) {
            rv = index_op(s, txn, true, KYUFU_IDX_HOUSEHOLD,
                          app->household_no, -1, app->id);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (old == NULL || old->status != app->status) {
        if (old != NULL && (rv = status_index(s, txn, false, old)) != 0) {
            return rv;
        }
        if ((rv = status_index(s, txn, true, app)) != 0) {
            return rv;
        }
    }

    /* Invariant 2: the live index holds exactly the live applications. */
    was_live = old != NULL && kyufu_storage__app_is_live(old->status);
    is_live = kyufu_storage__app_is_live(app->status);
    size_t llen = kyufu_storage__live_key(lkey, sizeof lkey,
                                          app->program_code,
                                          app->household_no);
    MDB_val lk = {llen, lkey};
    if (is_live && !was_live) {
        kyufu_storage__put_u64(idbuf, app->id);
        MDB_val lv = {8, idbuf};
        int mrv = mdb_put(txn, s->dbi[KYUFU_DB_APP_LIVE], &lk, &lv,
                          MDB_NOOVERWRITE);
        if (mrv == MDB_KEYEXIST) {
            kyufu_storage__panic(__FILE__, __LINE__,
                                 "second live application for %s/%s",
                                 app->program_code, app->household_no);
        }
        rv = kyufu_storage__mdb_error(mrv);
    } else if (was_live && !is_live) {
        MDB_val lv;
        int mrv = mdb_get(txn, s->dbi[KYUFU_DB_APP_LIVE], &lk, &lv);
        KYUFU_ASSERT(mrv == 0 && lv.mv_size == 8 &&
                     kyufu_storage__get_u64(lv.mv_data) == app->id);
        rv = kyufu_storage__mdb_error(
            mdb_del(txn, s->dbi[KYUFU_DB_APP_LIVE], &lk, NULL));
    }
    return rv;
}
