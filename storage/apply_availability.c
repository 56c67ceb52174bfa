/* The availability ledger: heartbeats, leader changes, failover intents,
 * drill probes and results (docs/sla.md "Availability ledger").
 *
 * Happy path: every entry that carries a leader-stamped command passes
 * through kyufu_storage__availability_observe before its commands run.  It
 * keeps the newest stamp and its term in the state record.  The leader
 * proposes an AvailabilityHeartbeat every interval, so while writes are
 * possible no two stamps are further apart than about one interval; a gap
 * longer than KYUFU_AVAIL_GAP_INTERVALS intervals becomes a
 * write-unavailability window [last stamp, this stamp).  The first stamped
 * entry of a higher term opens that term's failover record, its RTO the
 * distance between the two stamps (last commit under the old leader, first
 * under the new one).  The new leader's LeaderChange then fills in who took
 * over and the cause it observed, unless a FailoverIntent recorded just
 * before by the old leader (a planned transfer, a power hand-over, a drill)
 * names it.  Every stamp, window and failover also counts in its UTC day's
 * summary, which outlives the detail: heartbeats compact detail older than
 * KYUFU_AVAIL_DETAIL_DAYS (and beyond KYUFU_AVAIL_DETAIL_RECORDS_MAX
 * records) a few records at a time, so the ledger stays bounded.
 *
 * Every time comes from a command header (the leader's clock); apply reads
 * none.  Clocks of two leaders may disagree: an RTO or gap that comes out
 * negative counts as 0 (docs/sla.md, "Limits").
 *
 * Keys of db availability:
 *   "state"                 AvailabilityState (ledger.proto)
 *   'd' u32 BE day          DaySummary  (days since 1970-01-01, UTC)
 *   'f' u64 BE term         Failover    (service.proto)
 *   'w' u64 BE start_ms     UnavailabilityWindow (service.proto)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DAY_MS INT64_C(86400000)

/* ------------------------------------------------------------ helpers */

int64_t kyufu_storage__avail_day(int64_t ms)
{
    return ms >= 0 ? ms / DAY_MS : -((-ms + DAY_MS - 1) / DAY_MS);
}

/* Howard Hinnant's civil_from_days: the proleptic Gregorian date. */
void kyufu_storage__avail_day_name(int64_t day, char out[11])
{
    int64_t z = day + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0 || y > 9999) {
        snprintf(out, 11, "0000-00-00");
        return;
    }
    snprintf(out, 11, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
}

bool kyufu_storage__valid_drill_id(const char *s, size_t min)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n < min || n > KYUFU_AVAIL_DRILL_ID_BYTES_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
              ch == '-')) {
            return false;
        }
    }
    return true;
}

bool kyufu_storage_valid_drill_id(const char *s)
{
    return kyufu_storage__valid_drill_id(s, 1);
}

static int get_msg(struct kyufu_storage *s,
                   MDB_txn *txn,
                   const void *key,
                   size_t klen,
                   const ProtobufCMessageDescriptor *d,
                   ProtobufCMessage **out)
{
    MDB_val k = {klen, (void *)key};
    MDB_val v;
    *out = NULL;
    int mrv = mdb_get(txn, s->dbi[KYUFU_DB_AVAILABILITY], &k, &v);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    *out = protobuf_c_message_unpack(d, NULL, v.mv_size, v.mv_data);
    return *out == NULL ? KYUFU_STORAGE_ECORRUPT : 0;
}

static int put_msg(struct kyufu_storage *s,
                   MDB_txn *txn,
                   const void *key,
                   size_t klen,
                   const ProtobufCMessage *m)
{
    if (klen == 9 && (((const uint8_t *)key)[0] == 'f' ||
                      ((const uint8_t *)key)[0] == 'w')) {
        s->avail_detail_changes++; /* an abort after this only costs a
                                      reader one needless re-read */
    }
    return kyufu_storage__put_msg(s, txn, KYUFU_DB_AVAILABILITY, key, klen, m);
}

static size_t key64(uint8_t key[9], char kind, uint64_t v)
{
    key[0] = (uint8_t)kind;
    kyufu_storage__put_u64(key + 1, v);
    return 9;
}

/* The state record; absent reads as all zero.  Free with state_free. */
int kyufu_storage__avail_state_get(struct kyufu_storage *s,
                                   MDB_txn *txn,
                                   Kyufu__V1__AvailabilityState **out)
{
    int rv = get_msg(s, txn, KYUFU_AVAIL_STATE_KEY,
                     strlen(KYUFU_AVAIL_STATE_KEY),
                     &kyufu__v1__availability_state__descriptor,
                     (ProtobufCMessage **)out);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        *out = kyufu__v1__availability_state__unpack(NULL, 0,
                                                     (const uint8_t *)"");
        rv = *out == NULL ? KYUFU_STORAGE_ENOMEM : 0;
    }
    return rv;
}

static int state_put(struct kyufu_storage *s,
                     MDB_txn *txn,
                     const Kyufu__V1__AvailabilityState *st)
{
    KYUFU_ASSERT(st->first_ms <= st->last_ms || st->last_ms == 0);
    return put_msg(s, txn, KYUFU_AVAIL_STATE_KEY,
                   strlen(KYUFU_AVAIL_STATE_KEY), &st->base);
}

static void state_free(Kyufu__V1__AvailabilityState *st)
{
    if (st != NULL) {
        kyufu__v1__availability_state__free_unpacked(st, NULL);
    }
}

/* Add to the summary of `day` (creating it). */
static int day_add(struct kyufu_storage *s,
                   MDB_txn *txn,
                   int64_t day,
                   uint64_t unavailable_ms,
                   uint32_t failovers,
                   uint64_t rto_ms,
                   uint64_t heartbeats)
{
    uint8_t key[5];
    char name[11];
    Kyufu__V1__DaySummary *old = NULL;
    Kyufu__V1__DaySummary d = KYUFU__V1__DAY_SUMMARY__INIT;
    if (day < 0 || day > UINT32_MAX) {
        return 0; /* before 1970: no summary (a broken clock) */
    }
    key[0] = 'd';
    kyufu_storage__put_u32(key + 1, (uint32_t)day);
    int rv = get_msg(s, txn, key, sizeof key,
                     &kyufu__v1__day_summary__descriptor,
                     (ProtobufCMessage **)&old);
    if (rv != 0 && rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    kyufu_storage__avail_day_name(day, name);
    d.day = name;
    if (old != NULL) {
        d.unavailable_ms = old->unavailable_ms;
        d.failovers = old->failovers;
        d.max_rto_ms = old->max_rto_ms;
        d.heartbeats = old->heartbeats;
        kyufu__v1__day_summary__free_unpacked(old, NULL);
    }
    d.unavailable_ms += unavailable_ms;
    d.failovers += failovers;
    if (failovers > 0 && rto_ms > d.max_rto_ms) {
        d.max_rto_ms = rto_ms;
    }
    d.heartbeats += heartbeats;
    if (d.unavailable_ms > (uint64_t)DAY_MS) {
        /* Only windows that overlap can sum past a day, and only leaders'
         * clocks that went back make them overlap: an input, not a bug, so
         * clamp rather than stop every replica. */
        d.unavailable_ms = (uint64_t)DAY_MS;
    }
    return put_msg(s, txn, key, sizeof key, &d.base);
}

/* Count [start, end) into the days it touches. */
static int days_add_window(struct kyufu_storage *s,
                           MDB_txn *txn,
                           int64_t start,
                           int64_t end)
{
    KYUFU_ASSERT(start < end);
    for (int64_t day = kyufu_storage__avail_day(start);
         day * DAY_MS < end; day++) {
        int64_t a = start > day * DAY_MS ? start : day * DAY_MS;
        int64_t b = end < (day + 1) * DAY_MS ? end : (day + 1) * DAY_MS;
        int rv = day_add(s, txn, day, (uint64_t)(b - a), 0, 0, 0);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ observe */

int kyufu_storage__availability_observe(struct kyufu_storage *s,
                                        MDB_txn *txn,
                                        uint64_t term,
                                        int64_t first_ms,
                                        int64_t last_ms)
{
    Kyufu__V1__AvailabilityState *st = NULL;
    uint8_t key[9];
    KYUFU_ASSERT(first_ms > 0 && first_ms <= last_ms);
    int rv = kyufu_storage__avail_state_get(s, txn, &st);
    if (rv != 0) {
        return rv;
    }
    char *own_drill_id = st->intent_drill_id;
    bool new_term = st->last_term != 0 && term > st->last_term;
    Kyufu__V1__FailoverCause cause = KYUFU__V1__FAILOVER_CAUSE__CAUSE_UNKNOWN;
    const char *drill_id = "";
    if (new_term && st->intent_cause != 0 && st->intent_term == st->last_term &&
        first_ms - st->intent_ms <= KYUFU_AVAIL_INTENT_MS_MAX) {
        cause = (Kyufu__V1__FailoverCause)st->intent_cause;
        drill_id = st->intent_drill_id;
    }
    if (st->last_ms > 0 && st->interval_ms > 0 &&
        first_ms - st->last_ms >
            (int64_t)(st->interval_ms * KYUFU_AVAIL_GAP_INTERVALS)) {
        Kyufu__V1__UnavailabilityWindow w =
            KYUFU__V1__UNAVAILABILITY_WINDOW__INIT;
        w.start_ms = st->last_ms;
        w.end_ms = first_ms;
        w.cause = cause;
        rv = put_msg(s, txn, key, key64(key, 'w', (uint64_t)w.start_ms),
                     &w.base);
        if (rv == 0) {
            rv = days_add_window(s, txn, w.start_ms, w.end_ms);
        }
        if (rv != 0) {
            goto out;
        }
    }
    if (new_term) {
        Kyufu__V1__Failover f = KYUFU__V1__FAILOVER__INIT;
        f.term = term;
        f.old_leader_id = st->leader_id;
        f.cause = cause;
        f.last_commit_old_ms = st->last_ms;
        f.first_commit_new_ms = first_ms;
        f.rto_ms = first_ms > st->last_ms ? (uint64_t)(first_ms - st->last_ms)
                                          : 0;
        f.drill_id = (char *)drill_id;
        rv = put_msg(s, txn, key, key64(key, 'f', term), &f.base);
        if (rv == 0) {
            rv = day_add(s, txn, kyufu_storage__avail_day(first_ms), 0, 1,
                         f.rto_ms, 0);
        }
        if (rv != 0) {
            goto out;
        }
        /* The intent is spent (or stale): never names a later change. */
        st->intent_cause = 0;
        st->intent_drill_id = (char *)"";
        st->intent_ms = 0;
        st->intent_term = 0;
        st->leader_id = 0; /* until the new leader says who it is */
    }
    if (st->first_ms == 0) {
        st->first_ms = first_ms;
    }
    if (last_ms > st->last_ms || new_term) {
        st->last_ms = last_ms;
    }
    if (st->first_ms > st->last_ms) {
        st->first_ms = st->last_ms; /* a clock that went back: keep order */
    }
    if (term > st->last_term) {
        st->last_term = term;
    }
    rv = state_put(s, txn, st);
out:
    /* free_unpacked frees the string st was read with, not "" set above. */
    st->intent_drill_id = own_drill_id;
    state_free(st);
    return rv;
}

/* ------------------------------------------------------------ compaction */

/* Delete up to `budget` records of `kind` whose time (per `time_of`) is
 * before `floor_ms`, oldest key first; also the oldest one while the db
 * holds more than KYUFU_AVAIL_DETAIL_RECORDS_MAX records.  *floor_out is
 * raised to the time of each record removed for the count bound. */
static int compact_kind(struct kyufu_storage *s,
                        MDB_txn *txn,
                        char kind,
                        int64_t floor_ms,
                        unsigned *budget,
                        int64_t *floor_out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_stat stat;
    uint8_t first = (uint8_t)kind;
    int mrv = mdb_stat(txn, s->dbi[KYUFU_DB_AVAILABILITY], &stat);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    size_t entries = stat.ms_entries;
    mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AVAILABILITY], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    k.mv_size = 1;
    k.mv_data = &first;
    mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrv == 0 && *budget > 0 && k.mv_size == 9 &&
           ((const uint8_t *)k.mv_data)[0] == first) {
        int64_t t;
        if (kind == 'w') {
            /* Windows never overlap: end order is key (start) order. */
            Kyufu__V1__UnavailabilityWindow *w =
                kyufu__v1__unavailability_window__unpack(NULL, v.mv_size,
                                                         v.mv_data);
            if (w == NULL) {
                mdb_cursor_close(cur);
                return KYUFU_STORAGE_ECORRUPT;
            }
            t = w->end_ms;
            kyufu__v1__unavailability_window__free_unpacked(w, NULL);
        } else {
            Kyufu__V1__Failover *f =
                kyufu__v1__failover__unpack(NULL, v.mv_size, v.mv_data);
            if (f == NULL) {
                mdb_cursor_close(cur);
                return KYUFU_STORAGE_ECORRUPT;
            }
            t = f->first_commit_new_ms;
            kyufu__v1__failover__free_unpacked(f, NULL);
        }
        bool over = entries > KYUFU_AVAIL_DETAIL_RECORDS_MAX;
        if (t >= floor_ms && !over) {
            break;
        }
        mrv = mdb_cursor_del(cur, 0);
        if (mrv != 0) {
            break;
        }
        s->avail_detail_changes++;
        entries--;
        (*budget)--;
        if (over && t > *floor_out) {
            *floor_out = t;
        }
        mrv = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (mrv == MDB_NOTFOUND) {
            break;
        }
    }
    mdb_cursor_close(cur);
    return mrv == 0 || mrv == MDB_NOTFOUND ? 0 : kyufu_storage__mdb_error(mrv);
}

static int compact(struct kyufu_storage *s,
                   MDB_txn *txn,
                   Kyufu__V1__AvailabilityState *st,
                   int64_t now_ms)
{
    unsigned budget = KYUFU_AVAIL_COMPACT_PER_ENTRY_MAX;
    int64_t floor_ms = now_ms - KYUFU_AVAIL_DETAIL_DAYS * DAY_MS;
    int64_t raised = st->detail_floor_ms;
    int rv = compact_kind(s, txn, 'f', floor_ms, &budget, &raised);
    if (rv == 0) {
        rv = compact_kind(s, txn, 'w', floor_ms, &budget, &raised);
    }
    if (rv != 0) {
        return rv;
    }
    if (budget > 0 && floor_ms > raised) {
        raised = floor_ms; /* everything older is gone */
    }
    st->detail_floor_ms = raised;
    /* One day summary past its keep per heartbeat: there is one a day. */
    int64_t oldest = kyufu_storage__avail_day(now_ms) - KYUFU_AVAIL_SUMMARY_DAYS;
    if (oldest > 0) {
        MDB_cursor *cur;
        MDB_val k, v;
        uint8_t d = 'd';
        int mrv = mdb_cursor_open(txn, s->dbi[KYUFU_DB_AVAILABILITY], &cur);
        if (mrv != 0) {
            return kyufu_storage__mdb_error(mrv);
        }
        k.mv_size = 1;
        k.mv_data = &d;
        mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrv == 0 && k.mv_size == 5 && ((const uint8_t *)k.mv_data)[0] == 'd' &&
            kyufu_storage__get_u32((const uint8_t *)k.mv_data + 1) <
                (uint64_t)oldest) {
            mrv = mdb_cursor_del(cur, 0);
        }
        mdb_cursor_close(cur);
        if (mrv != 0 && mrv != MDB_NOTFOUND) {
            return kyufu_storage__mdb_error(mrv);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ handlers */

int kyufu_storage__availability_heartbeat(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__AvailabilityHeartbeat *hb = c->cmd->availability_heartbeat;
    Kyufu__V1__AvailabilityState *st = NULL;
    KYUFU_ASSERT(hb != NULL);
    if (hb->interval_ms < KYUFU_AVAIL_INTERVAL_MS_MIN ||
        hb->interval_ms > KYUFU_AVAIL_INTERVAL_MS_MAX || hb->leader_id == 0) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "heartbeat needs a leader_id and an "
                                     "interval_ms in %u..%u",
                                     KYUFU_AVAIL_INTERVAL_MS_MIN,
                                     KYUFU_AVAIL_INTERVAL_MS_MAX);
    }
    int rv = kyufu_storage__avail_state_get(c->s, c->txn, &st);
    if (rv != 0) {
        return rv;
    }
    st->leader_id = hb->leader_id;
    st->interval_ms = hb->interval_ms;
    rv = compact(c->s, c->txn, st, c->now_ms);
    if (rv == 0) {
        rv = state_put(c->s, c->txn, st);
    }
    if (rv == 0) {
        rv = day_add(c->s, c->txn, kyufu_storage__avail_day(c->now_ms), 0, 0,
                     0, 1);
    }
    state_free(st);
    return rv;
}

int kyufu_storage__leader_change(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__LeaderChange *lc = c->cmd->leader_change;
    Kyufu__V1__AvailabilityState *st = NULL;
    Kyufu__V1__Failover *f = NULL;
    uint8_t key[9];
    KYUFU_ASSERT(lc != NULL);
    if (lc->new_leader_id == 0 || lc->term == 0 ||
        (lc->observed_cause != KYUFU__V1__FAILOVER_CAUSE__CAUSE_UNKNOWN &&
         lc->observed_cause != KYUFU__V1__FAILOVER_CAUSE__CAUSE_CRASH &&
         lc->observed_cause != KYUFU__V1__FAILOVER_CAUSE__CAUSE_PARTITION)) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "leader change needs new_leader_id, "
                                     "term and an observed cause of "
                                     "UNKNOWN, CRASH or PARTITION");
    }
    int rv = kyufu_storage__avail_state_get(c->s, c->txn, &st);
    if (rv != 0) {
        return rv;
    }
    if (lc->term != st->last_term) {
        /* Proposed in a term that has since ended: the next leader
         * records its own change. */
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                                   "leader change of term %llu applied in "
                                   "term %llu",
                                   (unsigned long long)lc->term,
                                   (unsigned long long)st->last_term);
        goto out;
    }
    st->leader_id = lc->new_leader_id;
    rv = state_put(c->s, c->txn, st);
    if (rv != 0) {
        goto out;
    }
    kyufu_storage__set_object(c, "failover/%llu", (unsigned long long)lc->term);
    rv = get_msg(c->s, c->txn, key, key64(key, 'f', lc->term),
                 &kyufu__v1__failover__descriptor, (ProtobufCMessage **)&f);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        rv = 0; /* the first leader of the ledger: no failover */
        goto out;
    }
    if (rv != 0) {
        goto out;
    }
    if (f->new_leader_id != 0) {
        goto out; /* recorded already (a second proposal of the term) */
    }
    f->new_leader_id = lc->new_leader_id;
    if (f->cause == KYUFU__V1__FAILOVER_CAUSE__CAUSE_UNKNOWN) {
        f->cause = (Kyufu__V1__FailoverCause)lc->observed_cause;
        /* The window this failover closed carries its cause too. */
        Kyufu__V1__UnavailabilityWindow *w = NULL;
        uint8_t wkey[9];
        size_t wlen = key64(wkey, 'w', (uint64_t)f->last_commit_old_ms);
        rv = get_msg(c->s, c->txn, wkey, wlen,
                     &kyufu__v1__unavailability_window__descriptor,
                     (ProtobufCMessage **)&w);
        if (rv == 0) {
            if (w->end_ms == f->first_commit_new_ms) {
                w->cause = f->cause;
                rv = put_msg(c->s, c->txn, wkey, wlen, &w->base);
            }
            kyufu__v1__unavailability_window__free_unpacked(w, NULL);
        } else if (rv == KYUFU_STORAGE_ENOTFOUND) {
            rv = 0;
        }
        if (rv != 0) {
            goto out;
        }
    }
    rv = put_msg(c->s, c->txn, key, sizeof key, &f->base);
out:
    if (f != NULL) {
        kyufu__v1__failover__free_unpacked(f, NULL);
    }
    state_free(st);
    return rv;
}

static bool intent_cause_ok(uint64_t cause)
{
    return cause == KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED ||
           cause == KYUFU__V1__FAILOVER_CAUSE__CAUSE_POWER ||
           cause == KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_CRASH ||
           cause == KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_PLANNED;
}

int kyufu_storage__failover_intent(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__FailoverIntent *in = c->cmd->failover_intent;
    Kyufu__V1__AvailabilityState *st = NULL;
    KYUFU_ASSERT(in != NULL);
    if (!intent_cause_ok(in->cause) ||
        !kyufu_storage__valid_drill_id(in->drill_id, 0) || in->leader_id == 0) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "intent needs a cause of PLANNED, POWER "
                                     "or a drill, a leader_id and a drill_id "
                                     "of 0..%u bytes [A-Za-z0-9._-]",
                                     KYUFU_AVAIL_DRILL_ID_BYTES_MAX);
    }
    int rv = kyufu_storage__avail_state_get(c->s, c->txn, &st);
    if (rv != 0) {
        return rv;
    }
    char *keep = st->intent_drill_id;
    st->intent_cause = in->cause;
    st->intent_drill_id = in->drill_id;
    st->intent_ms = c->now_ms;
    st->intent_term = st->last_term; /* observe ran for this entry */
    rv = state_put(c->s, c->txn, st);
    st->intent_drill_id = keep;
    state_free(st);
    if (rv == 0 && in->drill_id[0] != '\0') {
        kyufu_storage__set_object(c, "drill/%s", in->drill_id);
    }
    return rv;
}

int kyufu_storage__drill_probe(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__DrillProbe *p = c->cmd->drill_probe;
    KYUFU_ASSERT(p != NULL);
    if (!kyufu_storage__valid_drill_id(p->drill_id, 1)) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "drill_id must be 1..%u bytes "
                                     "[A-Za-z0-9._-]",
                                     KYUFU_AVAIL_DRILL_ID_BYTES_MAX);
    }
    /* The audit record and session entry are the probe's whole effect. */
    kyufu_storage__set_object(c, "drill/%s", p->drill_id);
    return 0;
}

int kyufu_storage__drill_result(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__DrillResult *r = c->cmd->drill_result;
    Kyufu__V1__AvailabilityState *st = NULL;
    KYUFU_ASSERT(r != NULL);
    if (!kyufu_storage__valid_drill_id(r->drill_id, 1) ||
        r->writes_lost > r->writes_acknowledged) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "drill result needs a drill_id and "
                                     "writes_lost <= writes_acknowledged");
    }
    int rv = kyufu_storage__avail_state_get(c->s, c->txn, &st);
    if (rv != 0) {
        return rv;
    }
    if (UINT64_MAX - st->writes_lost < r->writes_lost) {
        st->writes_lost = UINT64_MAX;
    } else {
        st->writes_lost += r->writes_lost;
    }
    rv = state_put(c->s, c->txn, st);
    state_free(st);
    kyufu_storage__set_object(c, "drill/%s", r->drill_id);
    return rv;
}
