/* GetAvailability's report, read from the availability ledger in one short
 * read transaction (keys: apply_availability.c; meaning: docs/sla.md).
 *
 * The report is assembled from the records as read (each unpacked and owned
 * here), packed once and unpacked again, so the caller gets one message it
 * frees with free_unpacked whatever it holds.
 *
 * unavailable_ms: for days whose detail was compacted away (ending by
 * detail_floor_ms), the day summaries' unavailable time of the days the
 * range touches (whole days: their detail is gone); after them, the
 * windows kept in detail, clipped to the range. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DAY_MS INT64_C(86400000)

struct items
{
    ProtobufCMessage **v;
    size_t n, cap;
};

static int items_push(struct items *it, ProtobufCMessage *m)
{
    if (it->n == it->cap) {
        size_t cap = it->cap == 0 ? 16 : it->cap * 2;
        void *p = realloc(it->v, cap * sizeof *it->v);
        if (p == NULL) {
            return KYUFU_STORAGE_ENOMEM;
        }
        it->v = p;
        it->cap = cap;
    }
    it->v[it->n++] = m;
    return 0;
}

static void items_free(struct items *it)
{
    for (size_t i = 0; i < it->n; i++) {
        protobuf_c_message_free_unpacked(it->v[i], NULL);
    }
    free(it->v);
}

/* Every record of `kind` (9-byte keys) in key order, unpacked with `d`;
 * keep(m) says which to return.  At most KYUFU_AVAIL_REPORT_ITEMS_MAX. */
static int scan(struct kyufu_storage *s,
                MDB_txn *txn,
                char kind,
                const ProtobufCMessageDescriptor *d,
                bool (*keep)(const ProtobufCMessage *m, int64_t from, int64_t to),
                int64_t from,
                int64_t to,
                struct items *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t first = (uint8_t)kind;
    int rv = 0;
    int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AVAILABILITY], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    k.mv_size = 1;
    k.mv_data = &first;
    mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrv == 0 && ((const uint8_t *)k.mv_data)[0] == first &&
           out->n < KYUFU_AVAIL_REPORT_ITEMS_MAX) {
        ProtobufCMessage *m =
            protobuf_c_message_unpack(d, NULL, v.mv_size, v.mv_data);
        if (m == NULL) {
            rv = KYUFU_STORAGE_ECORRUPT;
            break;
        }
        if (keep(m, from, to)) {
            rv = items_push(out, m);
            if (rv != 0) {
                protobuf_c_message_free_unpacked(m, NULL);
                break;
            }
        } else {
            protobuf_c_message_free_unpacked(m, NULL);
        }
        mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    return rv;
}

static bool keep_failover(const ProtobufCMessage *m, int64_t from, int64_t to)
{
    const Kyufu__V1__Failover *f = (const Kyufu__V1__Failover *)m;
    return f->first_commit_new_ms >= from && f->first_commit_new_ms < to;
}

static bool keep_window(const ProtobufCMessage *m, int64_t from, int64_t to)
{
    const Kyufu__V1__UnavailabilityWindow *w =
        (const Kyufu__V1__UnavailabilityWindow *)m;
    return w->end_ms > from && w->start_ms < to;
}

static int day_get(struct kyufu_storage *s,
                   MDB_txn *txn,
                   int64_t day,
                   Kyufu__V1__DaySummary **out)
{
    uint8_t key[5];
    MDB_val k = {sizeof key, key};
    MDB_val v;
    *out = NULL;
    if (day < 0 || day > UINT32_MAX) {
        return 0;
    }
    key[0] = 'd';
    kyufu_storage__put_u32(key + 1, (uint32_t)day);
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_AVAILABILITY], &k, &v);
    if (mrv == MDB_NOTFOUND) {
        return 0;
    }
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    *out = kyufu__v1__day_summary__unpack(NULL, v.mv_size, v.mv_data);
    return *out == NULL ? KYUFU_STORAGE_ECORRUPT : 0;
}

int kyufu_storage_availability(struct kyufu_storage *s,
                               int64_t from_ms,
                               int64_t to_ms,
                               Kyufu__V1__AvailabilityReport **out,
                               char *errmsg,
                               size_t errmsg_len)
{
    struct items failovers = {0}, windows = {0}, days = {0};
    int64_t summarized_until = from_ms; /* windows count from here on */
    Kyufu__V1__AvailabilityState *st = NULL;
    Kyufu__V1__AvailabilityReport r = KYUFU__V1__AVAILABILITY_REPORT__INIT;
    MDB_txn *txn = NULL;
    uint8_t *buf = NULL;
    char (*names)[11] = NULL;
    int rv;

    KYUFU_ASSERT(s != NULL && out != NULL);
    *out = NULL;
    if (from_ms < 0 || to_ms <= from_ms ||
        to_ms - from_ms > KYUFU_AVAIL_QUERY_DAYS_MAX * DAY_MS) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "the range must have 0 <= from_ms < to_ms and "
                              "span at most %d days",
                              KYUFU_AVAIL_QUERY_DAYS_MAX);
        return KYUFU_STORAGE_EINVALID;
    }
    rv = kyufu_storage__read_begin(s, &txn);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__avail_state_get(s, txn, &st);
    if (rv == 0) {
        rv = scan(s, txn, 'f', &kyufu__v1__failover__descriptor,
                  keep_failover, from_ms, to_ms, &failovers);
    }
    if (rv == 0) {
        rv = scan(s, txn, 'w', &kyufu__v1__unavailability_window__descriptor,
                  keep_window, from_ms, to_ms, &windows);
    }
    int64_t day0 = kyufu_storage__avail_day(from_ms);
    int64_t day1 = kyufu_storage__avail_day(to_ms - 1);
    size_t n_days = (size_t)(day1 - day0 + 1);
    KYUFU_ASSERT(n_days <= KYUFU_AVAIL_QUERY_DAYS_MAX + 1);
    names = calloc(n_days, sizeof *names);
    if (rv == 0 && names == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
    }
    for (int64_t day = day0; rv == 0 && day <= day1; day++) {
        Kyufu__V1__DaySummary *d = NULL;
        rv = day_get(s, txn, day, &d);
        if (rv == 0 && d == NULL) {
            d = kyufu__v1__day_summary__unpack(NULL, 0, (const uint8_t *)"");
            if (d == NULL) {
                rv = KYUFU_STORAGE_ENOMEM;
                break;
            }
            /* A day with no record: named, all zero (no string of its
             * own, so the name lives in `names` until packed). */
            kyufu_storage__avail_day_name(day, names[day - day0]);
            d->day = names[day - day0];
        }
        if (rv == 0) {
            if ((day + 1) * DAY_MS <= st->detail_floor_ms) {
                /* A compacted day: its summary counts, windows do not. */
                r.unavailable_ms += d->unavailable_ms;
                summarized_until = (day + 1) * DAY_MS;
            }
            rv = items_push(&days, &d->base);
            if (rv != 0) {
                if (d->day == names[day - day0]) {
                    d->day = NULL;
                }
                kyufu__v1__day_summary__free_unpacked(d, NULL);
            }
        }
    }
    kyufu_storage__read_end(s, txn);
    if (rv != 0) {
        goto out;
    }

    r.from_ms = from_ms;
    r.to_ms = to_ms;
    int64_t a = from_ms > st->first_ms ? from_ms : st->first_ms;
    int64_t b = to_ms < st->last_ms ? to_ms : st->last_ms;
    r.observed_ms = st->first_ms > 0 && b > a ? (uint64_t)(b - a) : 0;
    for (size_t i = 0; i < windows.n; i++) {
        const Kyufu__V1__UnavailabilityWindow *w =
            (const Kyufu__V1__UnavailabilityWindow *)windows.v[i];
        int64_t wa = w->start_ms > summarized_until ? w->start_ms
                                                    : summarized_until;
        int64_t wb = w->end_ms < to_ms ? w->end_ms : to_ms;
        if (wb > wa) {
            r.unavailable_ms += (uint64_t)(wb - wa);
        }
    }
    r.failovers = (Kyufu__V1__Failover **)failovers.v;
    r.n_failovers = failovers.n;
    r.windows = (Kyufu__V1__UnavailabilityWindow **)windows.v;
    r.n_windows = windows.n;
    r.days = (Kyufu__V1__DaySummary **)days.v;
    r.n_days = days.n;
    r.heartbeat_interval_ms = st->interval_ms;
    r.writes_lost = st->writes_lost;

    size_t len = protobuf_c_message_get_packed_size(&r.base);
    buf = malloc(len > 0 ? len : 1);
    if (buf == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto out;
    }
    protobuf_c_message_pack(&r.base, buf);
    *out = kyufu__v1__availability_report__unpack(NULL, len, buf);
    if (*out == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
    }

out:
    /* Day records made here point at `names`: not theirs to free. */
    for (size_t i = 0; i < days.n; i++) {
        Kyufu__V1__DaySummary *d = (Kyufu__V1__DaySummary *)days.v[i];
        if (names != NULL && d->day >= names[0] && d->day < names[n_days]) {
            d->day = NULL;
        }
    }
    free(buf);
    free(names);
    items_free(&failovers);
    items_free(&windows);
    items_free(&days);
    if (st != NULL) {
        kyufu__v1__availability_state__free_unpacked(st, NULL);
    }
    return rv;
}

uint64_t kyufu_storage_availability_changes(const struct kyufu_storage *s)
{
    KYUFU_ASSERT(s != NULL);
    return s->avail_detail_changes;
}

void kyufu_storage_last_stamp(const struct kyufu_storage *s, int64_t *ms,
                              uint64_t *term)
{
    KYUFU_ASSERT(s != NULL);
    *ms = s->stamp_last_ms;
    *term = s->stamp_last_term;
}

void kyufu_storage_availability_free(Kyufu__V1__AvailabilityReport *r)
{
    if (r != NULL) {
        kyufu__v1__availability_report__free_unpacked(r, NULL);
    }
}
