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

/* One record of a scan: sets *item to an unpacked message the page keeps
 * (or NULL to skip) and *stop when the scan is past its range; returns 0
 * or a storage error (ENOTFOUND is reported as ECORRUPT: the scan's
 * indexes are kept by apply). */
typedef int (*scan_pick_fn)(struct kyufu_storage *s, MDB_txn *txn,
                            const MDB_val *k, const MDB_val *v,
                            const void *arg, void **item, bool *stop);

/* Scans table `db` from key `from` (NULL: its first key) in one read
 * transaction, keeping in `page` up to `max` (1..KYUFU_IDENTITY_QUERY_MAX)
 * items that `pick` chooses; on error `page` is freed. */
static int scan_page(struct kyufu_storage *s, enum kyufu_storage__db db,
                     const MDB_val *from, const void *arg, size_t max,
                     struct kyufu_storage_page *page, scan_pick_fn pick)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    bool stop = false;
    KYUFU_ASSERT(max >= 1 && max <= KYUFU_IDENTITY_QUERY_MAX);
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
    if (from != NULL) {
        k = *from;
    }
    for (mrv = mdb_cursor_get(cur, &k, &v,
                              from != NULL ? MDB_SET_RANGE : MDB_FIRST);
         mrv == 0 && page->n < max;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        void *item = NULL;
        rv = pick(s, txn, &k, &v, arg, &item, &stop);
        if (rv != 0) {
            rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
            break;
        }
        if (stop) {
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

/* auth_by_staff: the entries under the prefix staff_id 0x00 (arg, an
 * MDB_val), each the session it names. */
static int pick_of_staff(struct kyufu_storage *s, MDB_txn *txn,
                         const MDB_val *k, const MDB_val *v, const void *arg,
                         void **item, bool *stop)
{
    const MDB_val *prefix = arg;
    (void)v;
    if (k->mv_size != prefix->mv_size + KYUFU_SHA256_BYTES ||
        memcmp(k->mv_data, prefix->mv_data, prefix->mv_size) != 0) {
        *stop = true; /* the next account's */
        return 0;
    }
    Kyufu__V1__AuthSession *a = NULL;
    int rv = kyufu_storage__get_auth_session(
        s, txn, (const uint8_t *)k->mv_data + prefix->mv_size,
        KYUFU_SHA256_BYTES, &a);
    *item = a;
    return rv;
}

int kyufu_storage_list_staff_sessions(struct kyufu_storage *s,
                                      const char *staff_id,
                                      struct kyufu_storage_page *page)
{
    uint8_t key[KYUFU_STAFF_ID_BYTES_MAX + 1];
    if (staff_id == NULL || !kyufu_storage__valid_staff_id(staff_id)) {
        return KYUFU_STORAGE_EINVALID;
    }
    size_t n = strlen(staff_id);
    memcpy(key, staff_id, n);
    key[n] = 0;
    MDB_val prefix = {n + 1, key};
    /* One past the bound apply keeps, to see it broken. */
    int rv = scan_page(s, KYUFU_DB_AUTH_BY_STAFF, &prefix, &prefix,
                       KYUFU_AUTH_SESSIONS_PER_STAFF_MAX + 1, page,
                       pick_of_staff);
    if (rv == 0 && page->n > KYUFU_AUTH_SESSIONS_PER_STAFF_MAX) {
        kyufu_storage_page_free(page);
        rv = KYUFU_STORAGE_ECORRUPT;
    }
    return rv;
}

static int pick_expired(struct kyufu_storage *s, MDB_txn *txn,
                        const MDB_val *k, const MDB_val *v, const void *arg,
                        void **item, bool *stop)
{
    int64_t now_ms = *(const int64_t *)arg;
    (void)v;
    (void)stop;
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
    return scan_page(s, KYUFU_DB_AUTH_SESSION, NULL, &now_ms, clamp_max(max),
                     page, pick_expired);
}

static int pick_purgeable(struct kyufu_storage *s, MDB_txn *txn,
                          const MDB_val *k, const MDB_val *v, const void *arg,
                          void **item, bool *stop)
{
    int64_t disabled_before_ms = *(const int64_t *)arg;
    (void)stop;
    Kyufu__V1__Credential *cr =
        (Kyufu__V1__Credential *)kyufu_storage__unpack_or_null(
            s, KYUFU_DB_CREDENTIAL, k, v, &kyufu__v1__credential__descriptor);
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
    return scan_page(s, KYUFU_DB_CREDENTIAL, NULL, &disabled_before_ms,
                     clamp_max(max), page, pick_purgeable);
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
