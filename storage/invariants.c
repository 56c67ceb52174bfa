/* The SPEC invariants, checked from state.
 *
 * After every committed batch, kyufu_storage__check_touched looks at the
 * records the batch touched (each in O(log n)): invariant 1's identity on
 * each program, invariant 2 through the live index, 3 and 4 on each
 * application and batch, 5 on the audit records the batch appended.  A
 * violation aborts the process: it is a bug, and a replica that goes on
 * would spread it.
 *
 * kyufu_storage_check_invariants walks everything (tests, chaos checkers):
 * it also sums reserved and paid per program from the applications and
 * checks the live index both ways.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AS(x) KYUFU__V1__APPLICATION_STATUS__APP_##x

/* Checks of one application against the rest of the state; NULL if fine. */
static const char *check_app_links(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   const Kyufu__V1__Application *a)
{
    uint64_t live = 0;
    const char *why = kyufu_storage__check_application(a);
    if (why != NULL) {
        return why;
    }
    if (kyufu_storage__get_live(s, txn, a->program_code, a->household_no,
                                &live) != 0) {
        return "live index unreadable";
    }
    if (kyufu_storage__app_is_live(a->status) ? live != a->id
                                              : live == a->id) {
        return "live index disagrees with the application";
    }
    if (a->status == AS(PAID) || a->status == AS(RETURNED)) {
        Kyufu__V1__PaymentBatch *b = NULL;
        bool ok = kyufu_storage__get_batch(s, txn, a->batch_id, &b) == 0 &&
                  b->status == KYUFU__V1__BATCH_STATUS__BATCH_CONFIRMED;
        if (b != NULL) {
            kyufu__v1__payment_batch__free_unpacked(b, NULL);
        }
        if (!ok) {
            return "paid application without a confirmed batch";
        }
    }
    return NULL;
}

void kyufu_storage__check_touched(struct kyufu_storage *s,
                                  const struct kyufu_storage__touched *t,
                                  uint64_t audit_seq_before)
{
    MDB_txn *txn;
    char msg[200];
    /* The reserved slot: a reader table full of snapshots cannot fail it. */
    int rv = kyufu_storage__read_begin(s, &txn);
    KYUFU_ASSERT(rv == 0);
    for (size_t i = 0; i < t->n_programs; i++) {
        Kyufu__V1__Program *p = NULL;
        /* get_program checks the budget identity on read-back. */
        KYUFU_ASSERT(kyufu_storage__get_program(s, txn, t->programs[i], &p) ==
                     0);
        kyufu__v1__program__free_unpacked(p, NULL);
    }
    for (size_t i = 0; i < t->n_apps; i++) {
        Kyufu__V1__Application *a = NULL;
        KYUFU_ASSERT(kyufu_storage__get_application(s, txn, t->apps[i], &a) ==
                     0);
        const char *why = check_app_links(s, txn, a);
        if (why != NULL) {
            kyufu_storage__panic(__FILE__, __LINE__, "application %llu: %s",
                                 (unsigned long long)a->id, why);
        }
        kyufu__v1__application__free_unpacked(a, NULL);
    }
    for (size_t i = 0; i < t->n_batches; i++) {
        Kyufu__V1__PaymentBatch *b = NULL;
        KYUFU_ASSERT(kyufu_storage__get_batch(s, txn, t->batches[i], &b) == 0);
        kyufu__v1__payment_batch__free_unpacked(b, NULL);
    }
    if (kyufu_storage__audit_verify_range(s, txn, audit_seq_before, NULL, msg,
                                          sizeof msg) != 0) {
        kyufu_storage__panic(__FILE__, __LINE__, "audit chain: %s", msg);
    }
    kyufu_storage__read_end(s, txn);
}

static int walk(struct kyufu_storage *s, MDB_txn *txn, char *errmsg, size_t len);

int kyufu_storage__check_state(struct kyufu_storage *s,
                               MDB_txn *txn,
                               char *errmsg,
                               size_t errmsg_len)
{
    return walk(s, txn, errmsg, errmsg_len);
}

/* Per-program sums gathered from the applications. */
struct sums
{
    char code[KYUFU_PROGRAM_CODE_BYTES_MAX + 1];
    int64_t reserved;
    int64_t paid;
};

static int cmp_sums(const void *a, const void *b)
{
    return strcmp(((const struct sums *)a)->code,
                  ((const struct sums *)b)->code);
}

static int walk(struct kyufu_storage *s,
                MDB_txn *txn,
                char *errmsg,
                size_t len)
{
    MDB_cursor *cur = NULL;
    MDB_val k;
    MDB_val v;
    struct sums *sums = NULL;
    size_t n_sums = 0;
    MDB_stat st;
    int rv = 0;
    int mrv;

    /* Programs: identity (on read) and collect codes, in key order. */
    mrv = mdb_stat(txn, s->dbi[KYUFU_DB_PROGRAMS], &st);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    sums = calloc(st.ms_entries + 1, sizeof *sums);
    if (sums == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    mdb_cursor_open(txn, s->dbi[KYUFU_DB_PROGRAMS], &cur);
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__Program *p =
            kyufu__v1__program__unpack(NULL, v.mv_size, v.mv_data);
        const char *why = p == NULL ? "undecodable"
                                    : kyufu_storage__check_program(p);
        if (why == NULL && (k.mv_size != strlen(p->code) ||
                            memcmp(k.mv_data, p->code, k.mv_size) != 0)) {
            why = "key differs from code";
        }
        if (why != NULL) {
            kyufu_storage__errmsg(errmsg, len, "program %.*s: %s",
                                  (int)k.mv_size, (char *)k.mv_data, why);
            rv = KYUFU_STORAGE_ECORRUPT;
        } else if (n_sums < st.ms_entries) {
            snprintf(sums[n_sums++].code, sizeof sums[0].code, "%s", p->code);
        }
        if (p != NULL) {
            kyufu__v1__program__free_unpacked(p, NULL);
        }
        if (rv != 0) {
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* Applications: record checks, links, sums. */
    mdb_cursor_open(txn, s->dbi[KYUFU_DB_APPLICATIONS], &cur);
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__Application *a =
            (Kyufu__V1__Application *)kyufu_storage__unpack_or_null(
                s, KYUFU_DB_APPLICATIONS, &k, &v,
                &kyufu__v1__application__descriptor);
        const char *why = a == NULL ? "undecodable"
                                    : check_app_links(s, txn, a);
        struct sums key;
        struct sums *hit = NULL;
        if (why == NULL) {
            snprintf(key.code, sizeof key.code, "%s", a->program_code);
            hit = bsearch(&key, sums, n_sums, sizeof *sums, cmp_sums);
            if (hit == NULL) {
                why = "application of an unknown program";
            } else if (a->status == AS(APPROVED)) {
                hit->reserved += a->amount;
            } else if (a->status == AS(PAID)) {
                hit->paid += a->amount;
            }
        }
        if (why != NULL) {
            kyufu_storage__errmsg(errmsg, len, "application %llu: %s",
                                  (unsigned long long)(k.mv_size == 8
                                      ? kyufu_storage__get_u64(k.mv_data)
                                      : 0),
                                  why);
            rv = KYUFU_STORAGE_ECORRUPT;
        }
        if (a != NULL) {
            kyufu__v1__application__free_unpacked(a, NULL);
        }
        if (rv != 0) {
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;

    for (size_t i = 0; i < n_sums; i++) {
        Kyufu__V1__Program *p = NULL;
        rv = kyufu_storage__get_program(s, txn, sums[i].code, &p);
        if (rv != 0) {
            goto out;
        }
        bool ok = p->reserved == sums[i].reserved && p->paid == sums[i].paid;
        if (!ok) {
            kyufu_storage__errmsg(errmsg, len,
                                  "program %s: reserved %lld paid %lld, "
                                  "applications say %lld and %lld",
                                  p->code, (long long)p->reserved,
                                  (long long)p->paid,
                                  (long long)sums[i].reserved,
                                  (long long)sums[i].paid);
            rv = KYUFU_STORAGE_ECORRUPT;
        }
        kyufu__v1__program__free_unpacked(p, NULL);
        if (rv != 0) {
            goto out;
        }
    }

    /* Live index: every entry names a live application of that pair. */
    mdb_cursor_open(txn, s->dbi[KYUFU_DB_APP_LIVE], &cur);
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__Application *a = NULL;
        uint8_t lkey[KYUFU_PROGRAM_CODE_BYTES_MAX + 1 +
                     KYUFU_HOUSEHOLD_NO_BYTES_MAX];
        bool ok = v.mv_size == 8 &&
                  kyufu_storage__get_application(
                      s, txn, kyufu_storage__get_u64(v.mv_data), &a) == 0 &&
                  kyufu_storage__app_is_live(a->status);
        if (ok) {
            size_t l = kyufu_storage__live_key(lkey, sizeof lkey,
                                               a->program_code,
                                               a->household_no);
            ok = l == k.mv_size && memcmp(lkey, k.mv_data, l) == 0;
        }
        if (a != NULL) {
            kyufu__v1__application__free_unpacked(a, NULL);
        }
        if (!ok) {
            kyufu_storage__errmsg(errmsg, len,
                                  "live index entry names no live "
                                  "application of its pair");
            rv = KYUFU_STORAGE_ECORRUPT;
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* Batches: record checks (confirmer ≠ creator). */
    mdb_cursor_open(txn, s->dbi[KYUFU_DB_BATCHES], &cur);
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__PaymentBatch *b =
            kyufu__v1__payment_batch__unpack(NULL, v.mv_size, v.mv_data);
        const char *why = b == NULL ? "undecodable"
                                    : kyufu_storage__check_batch(b);
        if (b != NULL) {
            kyufu__v1__payment_batch__free_unpacked(b, NULL);
        }
        if (why != NULL) {
            kyufu_storage__errmsg(errmsg, len, "batch: %s", why);
            rv = KYUFU_STORAGE_ECORRUPT;
            goto out;
        }
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* Identity: credentials, sign-in sessions, their index, grants. */
    rv = kyufu_storage__check_identity(s, txn, errmsg, len);
    if (rv != 0) {
        goto out;
    }
    rv = kyufu_storage__audit_verify_range(s, txn, 0, NULL, errmsg, len);
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    free(sums);
    return rv;
}

int kyufu_storage_check_invariants(struct kyufu_storage *s,
                                   char *errmsg,
                                   size_t errmsg_len)
{
    MDB_txn *txn;
    int rv0 = kyufu_storage__read_begin(s, &txn);
    if (rv0 != 0) {
        return rv0;
    }
    int rv = walk(s, txn, errmsg, errmsg_len);
    kyufu_storage__read_end(s, txn);
    return rv;
}
