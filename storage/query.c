/* Queries: single records and pages of lists, each in its own short read
 * transaction (never a long-lived one: it would pin pages and block growth).
 *
 * Lists are in key order; `after` is the last key of the previous page:
 * the string key for programs, households and staff, the decimal id or seq
 * for applications, batches and audit records.  Filtered application lists
 * read an index whose keys end in the id, so every filter pages in id order:
 *   program+status → 'q', program → 'p', status → 's', household → 'h'
 * (a household has few applications, so its other filters are checked on
 * the records). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int begin_read(struct kyufu_storage *s, MDB_txn **txn)
{
    return kyufu_storage__read_begin(s, txn);
}

#define GET_BY(fn, ...)                                                      \
    do {                                                                     \
        MDB_txn *txn;                                                        \
        int rv = begin_read(s, &txn);                                        \
        if (rv != 0) {                                                       \
            return rv;                                                       \
        }                                                                    \
        rv = fn(s, txn, __VA_ARGS__);                                        \
        kyufu_storage__read_end(s, txn);                                     \
        return rv;                                                           \
    } while (0)

int kyufu_storage_get_program(struct kyufu_storage *s,
                              const char *code,
                              Kyufu__V1__Program **out)
{
    if (code == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    GET_BY(kyufu_storage__get_program, code, out);
}

int kyufu_storage_get_household(struct kyufu_storage *s,
                                const char *household_no,
                                Kyufu__V1__Household **out)
{
    if (household_no == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    GET_BY(kyufu_storage__get_household, household_no, out);
}

int kyufu_storage_get_application(struct kyufu_storage *s,
                                  uint64_t id,
                                  Kyufu__V1__Application **out)
{
    GET_BY(kyufu_storage__get_application, id, out);
}

int kyufu_storage_get_batch(struct kyufu_storage *s,
                            uint64_t id,
                            Kyufu__V1__PaymentBatch **out)
{
    GET_BY(kyufu_storage__get_batch, id, out);
}

int kyufu_storage_get_staff(struct kyufu_storage *s,
                            const char *staff_id,
                            Kyufu__V1__StaffAccount **out)
{
    if (staff_id == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    GET_BY(kyufu_storage__get_staff, staff_id, out);
}

/* ------------------------------------------------------------ pages */

void kyufu_storage_page_free(struct kyufu_storage_page *page)
{
    if (page == NULL) {
        return;
    }
    for (size_t i = 0; i < page->n; i++) {
        /* Every item is a protobuf-c message unpacked with the default
         * allocator; its descriptor says how to free it. */
        protobuf_c_message_free_unpacked(page->items[i], NULL);
    }
    free(page->items);
    page->items = NULL;
    page->n = 0;
    page->next[0] = '\0';
}

static size_t clamp(size_t n)
{
    return n < 1 ? 1 : n > KYUFU_LIST_PAGE_SIZE_MAX ? KYUFU_LIST_PAGE_SIZE_MAX
                                                   : n;
}

static int page_init(struct kyufu_storage_page *page, size_t n)
{
    page->n = 0;
    page->next[0] = '\0';
    page->items = calloc(n, sizeof *page->items);
    return page->items == NULL ? KYUFU_STORAGE_ENOMEM : 0;
}

/* Decimal continuation; `after` empty or NULL is 0.  Junk is INVALID. */
static int parse_after(const char *after, uint64_t *out)
{
    char *end;
    *out = 0;
    if (after == NULL || after[0] == '\0') {
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(after, &end, 10);
    if (errno != 0 || *end != '\0' || after[0] < '0' || after[0] > '9') {
        return KYUFU_STORAGE_EINVALID;
    }
    *out = v;
    return 0;
}

/* A page of a whole database in key order, each value opened (sealed
 * values, seal.c) and unpacked with `desc`.  numeric: keys are u64 BE and
 * `after`/`next` are decimal. */
static int list_db(struct kyufu_storage *s,
                   enum kyufu_storage__db db,
                   bool numeric,
                   const ProtobufCMessageDescriptor *desc,
                   const char *after,
                   size_t page_size,
                   struct kyufu_storage_page *page)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    uint8_t nkey[8];
    uint64_t from = 0;
    size_t n = clamp(page_size);
    int mrv;
    int rv;

    if (page == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    page->n = 0;
    page->items = NULL;
    page->next[0] = '\0';
    if (numeric && (rv = parse_after(after, &from)) != 0) {
        return rv;
    }
    if (!numeric && after != NULL && strlen(after) > KYUFU_SNAPSHOT_KEY_BYTES_MAX) {
        return KYUFU_STORAGE_EINVALID;
    }
    if ((rv = page_init(page, n)) != 0) {
        return rv;
    }
    if ((rv = begin_read(s, &txn)) != 0) {
        goto err_after_init;
    }
    mrv = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_txn;
    }
    if (numeric) {
        if (from == UINT64_MAX) {
            mrv = MDB_NOTFOUND;
        } else {
            kyufu_storage__put_u64(nkey, from + 1);
            k.mv_size = 8;
            k.mv_data = nkey;
            mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
    } else if (after != NULL && after[0] != '\0') {
        k.mv_size = strlen(after);
        k.mv_data = (void *)after;
        mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrv == 0 && k.mv_size == strlen(after) &&
            memcmp(k.mv_data, after, k.mv_size) == 0) {
            mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    } else {
        mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    for (; mrv == 0; mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (page->n == n) {
            break; /* one more exists: the page has a continuation */
        }
        ProtobufCMessage *m;
        rv = kyufu_storage__unpack(s, db, &k, &v, desc, &m);
        if (rv != 0) {
            goto err_after_cursor;
        }
        page->items[page->n++] = m;
        if (numeric) {
            if (k.mv_size != 8) {
                rv = KYUFU_STORAGE_ECORRUPT;
                goto err_after_cursor;
            }
            snprintf(page->next, sizeof page->next, "%llu",
                     (unsigned long long)kyufu_storage__get_u64(k.mv_data));
        } else {
            if (k.mv_size >= sizeof page->next) {
                rv = KYUFU_STORAGE_ECORRUPT;
                goto err_after_cursor;
            }
            memcpy(page->next, k.mv_data, k.mv_size);
            page->next[k.mv_size] = '\0';
        }
    }
    if (mrv == MDB_NOTFOUND) {
        page->next[0] = '\0'; /* last page */
    } else if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_cursor;
    }
    mdb_cursor_close(cur);
    kyufu_storage__read_end(s, txn);
    return 0;

err_after_cursor:
    mdb_cursor_close(cur);
err_after_txn:
    kyufu_storage__read_end(s, txn);
err_after_init:
    kyufu_storage_page_free(page);
    KYUFU_ASSERT(rv != 0);
    return rv;
}

int kyufu_storage_list_programs(struct kyufu_storage *s,
                                const char *after,
                                size_t page_size,
                                struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_PROGRAMS, false, &kyufu__v1__program__descriptor,
                   after, page_size, page);
}

int kyufu_storage_list_households(struct kyufu_storage *s,
                                  const char *after,
                                  size_t page_size,
                                  struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_HOUSEHOLDS, false,
                   &kyufu__v1__household__descriptor, after, page_size, page);
}

int kyufu_storage_list_batches(struct kyufu_storage *s,
                               const char *after,
                               size_t page_size,
                               struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_BATCHES, true,
                   &kyufu__v1__payment_batch__descriptor, after, page_size,
                   page);
}

int kyufu_storage_list_incidents(struct kyufu_storage *s,
                                 const char *after,
                                 size_t page_size,
                                 struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_INCIDENTS, true,
                   &kyufu__v1__incident__descriptor, after, page_size, page);
}

int kyufu_storage_list_staff(struct kyufu_storage *s,
                             const char *after,
                             size_t page_size,
                             struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_STAFF, false,
                   &kyufu__v1__staff_account__descriptor, after, page_size,
                   page);
}

int kyufu_storage_list_audit(struct kyufu_storage *s,
                             const char *after,
                             size_t page_size,
                             struct kyufu_storage_page *page)
{
    return list_db(s, KYUFU_DB_AUDIT, true,
                   &kyufu__v1__audit_record__descriptor, after, page_size,
                   page);
}

/* ------------------------------------------------------------ applications */

static bool matches(const Kyufu__V1__Application *a,
                    const char *program,
                    const char *household,
                    Kyufu__V1__ApplicationStatus status)
{
    return (program == NULL || strcmp(a->program_code, program) == 0) &&
           (household == NULL || strcmp(a->household_no, household) == 0) &&
           (status == 0 || a->status == status);
}

int kyufu_storage_list_applications(
    struct kyufu_storage *s,
    const struct kyufu_storage_app_filter *filter,
    const char *after,
    size_t page_size,
    struct kyufu_storage_page *page)
{
    const char *program = NULL;
    const char *household = NULL;
    Kyufu__V1__ApplicationStatus status = 0;
    uint8_t prefix[2 + KYUFU_PROGRAM_CODE_BYTES_MAX + 1 + 8];
    uint8_t key[sizeof prefix + 8];
    size_t plen = 0;
    bool by_index = true;
    uint64_t from;
    size_t n = clamp(page_size);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k;
    MDB_val v;
    int mrv;
    int rv;

    if (page == NULL) {
        return KYUFU_STORAGE_EINVALID;
    }
    page->n = 0;
    page->items = NULL;
    page->next[0] = '\0';
    if (filter != NULL) {
        program = filter->program_code != NULL && filter->program_code[0]
                      ? filter->program_code
                      : NULL;
        household = filter->household_no != NULL && filter->household_no[0]
                        ? filter->household_no
                        : NULL;
        status = filter->status;
    }
    if ((program != NULL && strlen(program) > KYUFU_PROGRAM_CODE_BYTES_MAX) ||
        (household != NULL &&
         strlen(household) > KYUFU_HOUSEHOLD_NO_BYTES_MAX) ||
        (int)status < 0 || (int)status > 6) {
        return KYUFU_STORAGE_EINVALID;
    }
    if ((rv = parse_after(after, &from)) != 0) {
        return rv;
    }
    /* Choose the index; its prefix, then the id. */
    if (household != NULL) {
        prefix[plen++] = KYUFU_IDX_HOUSEHOLD;
        memcpy(prefix + plen, household, strlen(household));
        plen += strlen(household);
        prefix[plen++] = 0;
    } else if (program != NULL) {
        prefix[plen++] = status != 0 ? KYUFU_IDX_PROGRAM_STATUS
                                     : KYUFU_IDX_PROGRAM;
        memcpy(prefix + plen, program, strlen(program));
        plen += strlen(program);
        prefix[plen++] = 0;
        if (status != 0) {
            prefix[plen++] = (uint8_t)status;
        }
    } else if (status != 0) {
        prefix[plen++] = KYUFU_IDX_STATUS;
        prefix[plen++] = (uint8_t)status;
    } else {
        by_index = false;
    }
    if ((rv = page_init(page, n)) != 0) {
        return rv;
    }
    if ((rv = begin_read(s, &txn)) != 0) {
        goto err_after_init;
    }
    mrv = mdb_cursor_open(txn, s->dbi[by_index ? KYUFU_DB_APP_INDEX
                                               : KYUFU_DB_APPLICATIONS],
                          &cur);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_txn;
    }
    memcpy(key, prefix, plen);
    kyufu_storage__put_u64(key + plen, from == UINT64_MAX ? from : from + 1);
    k.mv_size = plen + 8;
    k.mv_data = key;
    mrv = from == UINT64_MAX ? MDB_NOTFOUND
                             : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; mrv == 0; mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        Kyufu__V1__Application *a = NULL;
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, prefix, plen) != 0) {
            mrv = MDB_NOTFOUND; /* left the prefix */
            break;
        }
        uint64_t id = kyufu_storage__get_u64((uint8_t *)k.mv_data + plen);
        rv = kyufu_storage__get_application(s, txn, id, &a);
        if (rv != 0) {
            rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
            goto err_after_cursor;
        }
        if (!matches(a, program, household, status)) {
            kyufu__v1__application__free_unpacked(a, NULL);
            continue;
        }
        if (page->n == n) {
            kyufu__v1__application__free_unpacked(a, NULL);
            break; /* a further match exists */
        }
        page->items[page->n++] = a;
        snprintf(page->next, sizeof page->next, "%llu",
                 (unsigned long long)id);
    }
    if (mrv == MDB_NOTFOUND) {
        page->next[0] = '\0';
    } else if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_cursor;
    }
    mdb_cursor_close(cur);
    kyufu_storage__read_end(s, txn);
    return 0;

err_after_cursor:
    mdb_cursor_close(cur);
err_after_txn:
    kyufu_storage__read_end(s, txn);
err_after_init:
    kyufu_storage_page_free(page);
    KYUFU_ASSERT(rv != 0);
    return rv;
}
