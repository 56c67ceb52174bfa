/* Identity queries (storage.h "identity"): credentials, sign-in sessions,
 * cleanup lists.  Each in its own short read transaction on the loop
 * thread, as query.c's. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int kyufu_storage_get_credential(struct kyufu_storage *s,
                                 const char *staff_id,
                                 Kyufu__V1__Credential **out)
{
    MDB_txn *txn;
    if (staff_id == NULL || out == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__get_credential(s, txn, staff_id, out);
    kyufu_storage__read_end(s, txn);
    return rv;
}

int kyufu_storage_get_auth_session(struct kyufu_storage *s,
                                   const uint8_t token_hash[32],
                                   Kyufu__V1__AuthSession **out)
{
    MDB_txn *txn;
    if (token_hash == NULL || out == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__get_auth_session(s, txn, token_hash,
                                         KYUFU_SHA256_BYTES, out);
    kyufu_storage__read_end(s, txn);
    return rv;
}

static int page_start(struct kyufu_storage_page *page, size_t cap)
{
    if (page == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    page->n = 0;
    page->next[0] = '\0';
    page->items = calloc(cap, sizeof *page->items);
    return page->items == NULL ? KYUFU_STORAGE_ENOMEM : 0;
}

static size_t clamp_max(size_t max)
{
    return max < 1 ? 1 : max > KYUFU_IDENTITY_QUERY_MAX
                             ? KYUFU_IDENTITY_QUERY_MAX
                             : max;
}

int kyufu_storage_list_staff_sessions(struct kyufu_storage *s,
                                      const char *staff_id,
                                      struct kyufu_storage_page *page)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t key[KYUFU_STAFF_ID_BYTES_MAX + 1];
    if (staff_id == NULL || !kyufu_storage__valid_staff_id(staff_id)) {
        return KYUFU_STORAGE_EINVALID;
    }
    int rv = page_start(page, KYUFU_AUTH_SESSIONS_PER_STAFF_MAX);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        kyufu_storage_page_free(page);
        return rv;
    }
    size_t n = strlen(staff_id);
    memcpy(key, staff_id, n);
    key[n] = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AUTH_BY_STAFF], &cur);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto out;
    }
    k.mv_size = n + 1;
    k.mv_data = key;
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != n + 1 + KYUFU_SHA256_BYTES ||
            memcmp(k.mv_data, key, n + 1) != 0) {
            break;
        }
        if (page->n == KYUFU_AUTH_SESSIONS_PER_STAFF_MAX) {
            rv = KYUFU_STORAGE_ECORRUPT; /* apply keeps the bound */
            break;
        }
        Kyufu__V1__AuthSession *a = NULL;
        rv = kyufu_storage__get_auth_session(
            s, txn, (uint8_t *)k.mv_data + n + 1, KYUFU_SHA256_BYTES, &a);
        if (rv != 0) {
            rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
            break;
        }
        page->items[page->n++] = a;
    }
    if (rv == 0 && mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    mdb_cursor_close(cur);
out:
    kyufu_storage__read_end(s, txn);
    if (rv != 0) {
        kyufu_storage_page_free(page);
    }
    return rv;
}

/* t + span <= now without overflow: the times and spans are > 0
 * (check_auth_session) but unbounded above (a command's time is only > 0,
 * TouchSessions' used_ms too), so the sum is never formed. */
static bool reached(int64_t t, int64_t span, int64_t now)
{
    return now > 0 && t <= now - span;
}

static bool session_expired(const Kyufu__V1__AuthSession *a, int64_t now)
{
    return reached(a->last_used_ms, a->idle_ms, now) ||
           reached(a->created_ms, a->absolute_ms, now);
}

/* One record of a full scan: sets *item to an unpacked message the page
 * keeps (or NULL to skip), returns 0 or a storage error (ENOTFOUND is
 * reported as ECORRUPT: the scan's indexes are kept by apply). */
typedef int (*scan_pick_fn)(struct kyufu_storage *s, MDB_txn *txn,
                            const MDB_val *k, const MDB_val *v, int64_t t,
                            void **item);

/* Scans table `db` from its first key in one read transaction, keeping in
 * `page` up to clamp_max(max) items that `pick` chooses; on error `page`
 * is freed. */
static int scan_page(struct kyufu_storage *s, enum kyufu_storage__db db,
                     int64_t t,
                     size_t max, struct kyufu_storage_page *page,
                     scan_pick_fn pick)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    max = clamp_max(max);
    int rv = page_start(page, max);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        kyufu_storage_page_free(page);
        return rv;
    }
    int mrv = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto out;
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         mrv == 0 && page->n < max;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        void *item = NULL;
        rv = pick(s, txn, &k, &v, t, &item);
        if (rv != 0) {
            rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
            break;
        }
        if (item != NULL) {
            page->items[page->n++] = item;
        }
    }
    if (rv == 0 && mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    mdb_cursor_close(cur);
out:
    kyufu_storage__read_end(s, txn);
    if (rv != 0) {
        kyufu_storage_page_free(page);
    }
    return rv;
}

static int pick_expired(struct kyufu_storage *s, MDB_txn *txn,
                        const MDB_val *k, const MDB_val *v, int64_t now_ms,
                        void **item)
{
    (void)v;
    Kyufu__V1__AuthSession *a = NULL;
    int rv = kyufu_storage__get_auth_session(s, txn, k->mv_data, k->mv_size,
                                             &a);
    if (rv != 0) {
        return rv;
    }
    if (session_expired(a, now_ms)) {
        *item = a;
    } else {
        kyufu__v1__auth_session__free_unpacked(a, NULL);
    }
    return 0;
}

int kyufu_storage_list_expired_sessions(struct kyufu_storage *s,
                                        int64_t now_ms,
                                        size_t max,
                                        struct kyufu_storage_page *page)
{
    return scan_page(s, KYUFU_DB_AUTH_SESSION, now_ms, max, page,
                     pick_expired);
}

static int pick_purgeable(struct kyufu_storage *s, MDB_txn *txn,
                          const MDB_val *k, const MDB_val *v,
                          int64_t disabled_before_ms, void **item)
{
    (void)k;
    Kyufu__V1__Credential *cr =
        kyufu__v1__credential__unpack(NULL, v->mv_size, v->mv_data);
    if (cr == NULL) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    bool due = cr->disabled_ms != 0 && cr->disabled_ms <= disabled_before_ms;
    Kyufu__V1__StaffAccount *a = NULL;
    int rv = 0;
    if (due) {
        rv = kyufu_storage__get_staff(s, txn, cr->staff_id, &a);
    }
    kyufu__v1__credential__free_unpacked(cr, NULL);
    if (rv != 0) {
        return rv;
    }
    if (a != NULL && a->status == KYUFU__V1__STAFF_STATUS__STAFF_DISABLED) {
        *item = a;
    } else if (a != NULL) {
        kyufu__v1__staff_account__free_unpacked(a, NULL);
    }
    return 0;
}

int kyufu_storage_list_purgeable_staff(struct kyufu_storage *s,
                                       int64_t disabled_before_ms,
                                       size_t max,
                                       struct kyufu_storage_page *page)
{
    return scan_page(s, KYUFU_DB_CREDENTIAL, disabled_before_ms, max, page,
                     pick_purgeable);
}

int kyufu_storage_staff_empty(struct kyufu_storage *s, bool *empty)
{
    MDB_txn *txn;
    MDB_stat st;
    if (empty == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    int rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__mdb_error(mdb_stat(txn, s->dbi[KYUFU_DB_STAFF], &st));
    kyufu_storage__read_end(s, txn);
    if (rv == 0) {
        *empty = st.ms_entries == 0;
    }
    return rv;
}
