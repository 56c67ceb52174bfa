/* The availability ledger (docs/sla.md "Availability ledger"): heartbeats
 * leave no audit record; a gap becomes a window; the first entry of a new
 * term opens a failover whose RTO is the distance between the last stamp
 * of the old term and the first of the new; the cause comes from an intent
 * recorded just before, else from what the new leader observed; detail
 * older than the keep compacts into day summaries that the report still
 * counts; two replicas applying the same entries agree byte for byte, and
 * a snapshot carries the ledger; hostile ranges are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/storage_limits.h"
#include "cmd.h"
#include "sink.h"

#define OK KYUFU__V1__CODE__OK
#define DAY_MS INT64_C(86400000)
#define CRASH KYUFU__V1__FAILOVER_CAUSE__CAUSE_CRASH
#define PLANNED KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED
#define PARTITION KYUFU__V1__FAILOVER_CAUSE__CAUSE_PARTITION
#define DRILL_CRASH KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_CRASH
#define UNKNOWN KYUFU__V1__FAILOVER_CAUSE__CAUSE_UNKNOWN

/* A command of kyufud's own at time t (the fixture's clock is set to t). */
static Kyufu__V1__Command *sys_new(struct fx *f, int64_t t)
{
    f->now_ms = t;
    Kyufu__V1__Command *c = c_new(f, "kyufud");
    c_str(&c->header->key->client_id, "kyufud-1");
    return c;
}

static Kyufu__V1__CommandResult *apply_free(struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    kyufu__v1__command__free_unpacked(c, NULL);
    return r;
}

static Kyufu__V1__Code heartbeat(struct fx *f, int64_t t, uint64_t leader,
                                 uint64_t interval)
{
    Kyufu__V1__Command *c = sys_new(f, t);
    c->body_case = KYUFU__V1__COMMAND__BODY_AVAILABILITY_HEARTBEAT;
    c->availability_heartbeat = calloc(1, sizeof *c->availability_heartbeat);
    CHECK(c->availability_heartbeat != NULL);
    kyufu__v1__availability_heartbeat__init(c->availability_heartbeat);
    c->availability_heartbeat->leader_id = leader;
    c->availability_heartbeat->interval_ms = interval;
    Kyufu__V1__CommandResult *r = apply_free(f, c);
    Kyufu__V1__Code code = r->code;
    CHECK_EQ(r->audit_seq, 0);
    fx_free(r);
    return code;
}

static Kyufu__V1__Code leader_change(struct fx *f, int64_t t, uint64_t leader,
                                     uint64_t term, uint64_t cause)
{
    Kyufu__V1__Command *c = sys_new(f, t);
    c->body_case = KYUFU__V1__COMMAND__BODY_LEADER_CHANGE;
    c->leader_change = calloc(1, sizeof *c->leader_change);
    CHECK(c->leader_change != NULL);
    kyufu__v1__leader_change__init(c->leader_change);
    c->leader_change->new_leader_id = leader;
    c->leader_change->term = term;
    c->leader_change->observed_cause = cause;
    Kyufu__V1__CommandResult *r = apply_free(f, c);
    Kyufu__V1__Code code = r->code;
    fx_free(r);
    return code;
}

static Kyufu__V1__Code intent(struct fx *f, int64_t t, uint64_t cause,
                              const char *drill_id)
{
    Kyufu__V1__Command *c = sys_new(f, t);
    c->body_case = KYUFU__V1__COMMAND__BODY_FAILOVER_INTENT;
    c->failover_intent = calloc(1, sizeof *c->failover_intent);
    CHECK(c->failover_intent != NULL);
    kyufu__v1__failover_intent__init(c->failover_intent);
    c->failover_intent->cause = cause;
    c->failover_intent->leader_id = 1;
    c_str(&c->failover_intent->drill_id, drill_id);
    Kyufu__V1__CommandResult *r = apply_free(f, c);
    Kyufu__V1__Code code = r->code;
    fx_free(r);
    return code;
}

static Kyufu__V1__AvailabilityReport *report(struct fx *f, int64_t from,
                                             int64_t to)
{
    Kyufu__V1__AvailabilityReport *r = NULL;
    char err[256] = "";
    int rv = kyufu_storage_availability(f->s, from, to, &r, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "report: %s", err);
    }
    return r;
}

/* Heartbeats every second of term 1 from t0 for n seconds (leader 1). */
static int64_t beat(struct fx *f, int64_t t0, int n, uint64_t leader)
{
    for (int i = 0; i < n; i++) {
        CHECK_EQ(heartbeat(f, t0 + i * 1000, leader, 1000), OK);
    }
    return t0 + (n - 1) * 1000;
}

static void heartbeats_leave_no_window_and_no_audit(void)
{
    struct fx f;
    fx_open(&f);
    f.term = 1;
    int64_t last = beat(&f, FX_T0_MS, 10, 1);
    CHECK_EQ(fx_audit_count(&f), 0);
    Kyufu__V1__AvailabilityReport *r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_failovers, 0);
    CHECK_EQ(r->n_windows, 0);
    CHECK_EQ(r->unavailable_ms, 0);
    CHECK_EQ(r->observed_ms, last - FX_T0_MS);
    CHECK_EQ(r->heartbeat_interval_ms, 1000);
    CHECK_EQ(r->n_days, 1);
    CHECK_STR(r->days[0]->day, "2026-04-01");
    CHECK_EQ(r->days[0]->heartbeats, 10);
    kyufu_storage_availability_free(r);
    /* A late heartbeat within tolerance is jitter, not a window. */
    CHECK_EQ(heartbeat(&f, last + 2000, 1, 1000), OK);
    r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_windows, 0);
    kyufu_storage_availability_free(r);
    fx_close(&f);
}

static void crash_failover_has_rto_window_and_cause(void)
{
    struct fx f;
    fx_open(&f);
    f.term = 1;
    int64_t last = beat(&f, FX_T0_MS, 5, 1);
    CHECK_EQ(leader_change(&f, last + 1, 1, 1, UNKNOWN), OK); /* first leader */
    /* The old leader dies; the new one (term 3) commits 2,500 ms later. */
    f.term = 3;
    int64_t first = last + 1 + 2500;
    CHECK_EQ(leader_change(&f, first, 2, 3, CRASH), OK);
    CHECK_EQ(heartbeat(&f, first + 1000, 2, 1000), OK);
    Kyufu__V1__AvailabilityReport *r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_failovers, 1);
    Kyufu__V1__Failover *fo = r->failovers[0];
    CHECK_EQ(fo->term, 3);
    CHECK_EQ(fo->old_leader_id, 1);
    CHECK_EQ(fo->new_leader_id, 2);
    CHECK_EQ(fo->cause, CRASH);
    CHECK_EQ(fo->last_commit_old_ms, last + 1);
    CHECK_EQ(fo->first_commit_new_ms, first);
    CHECK_EQ(fo->rto_ms, 2500);
    CHECK_EQ(r->n_windows, 1);
    CHECK_EQ(r->windows[0]->start_ms, last + 1);
    CHECK_EQ(r->windows[0]->end_ms, first);
    CHECK_EQ(r->windows[0]->cause, CRASH);
    CHECK_EQ(r->unavailable_ms, 2500);
    CHECK_EQ(r->days[0]->failovers, 1);
    CHECK_EQ(r->days[0]->max_rto_ms, 2500);
    CHECK_EQ(r->days[0]->unavailable_ms, 2500);
    kyufu_storage_availability_free(r);
    /* A range that only clips the window counts the overlap. */
    r = report(&f, last + 1 + 1000, first + 10);
    CHECK_EQ(r->unavailable_ms, 1500);
    CHECK_EQ(r->n_failovers, 1);
    kyufu_storage_availability_free(r);
    /* A second LeaderChange of the term changes nothing. */
    CHECK_EQ(leader_change(&f, first + 1500, 3, 3, PARTITION), OK);
    r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->failovers[0]->new_leader_id, 2);
    CHECK_EQ(r->failovers[0]->cause, CRASH);
    kyufu_storage_availability_free(r);
    /* One proposed in a term that ended is refused. */
    CHECK_EQ(leader_change(&f, first + 1600, 1, 2, CRASH),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    fx_close(&f);
}

static void intent_names_the_cause(void)
{
    struct fx f;
    fx_open(&f);
    f.term = 1;
    int64_t t = beat(&f, FX_T0_MS, 3, 1);
    CHECK_EQ(intent(&f, t + 10, DRILL_CRASH, "round-1"), OK);
    f.term = 2;
    CHECK_EQ(leader_change(&f, t + 900, 2, 2, CRASH), OK);
    /* A planned transfer: the intent wins over the observation. */
    CHECK_EQ(intent(&f, t + 1000, PLANNED, ""), OK);
    f.term = 3;
    CHECK_EQ(leader_change(&f, t + 1200, 3, 3, CRASH), OK);
    /* An intent older than KYUFU_AVAIL_INTENT_MS_MAX says nothing. */
    CHECK_EQ(intent(&f, t + 1300, PLANNED, ""), OK);
    f.term = 4;
    CHECK_EQ(leader_change(&f, t + 1300 + KYUFU_AVAIL_INTENT_MS_MAX + 1, 1, 4,
                           PARTITION),
             OK);
    Kyufu__V1__AvailabilityReport *r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_failovers, 3);
    CHECK_EQ(r->failovers[0]->cause, DRILL_CRASH);
    CHECK_STR(r->failovers[0]->drill_id, "round-1");
    CHECK_EQ(r->failovers[0]->rto_ms, 890);
    CHECK_EQ(r->failovers[1]->cause, PLANNED);
    CHECK_STR(r->failovers[1]->drill_id, "");
    CHECK_EQ(r->failovers[1]->old_leader_id, 2);
    CHECK_EQ(r->failovers[2]->cause, PARTITION);
    kyufu_storage_availability_free(r);
    /* Hostile intents are refused. */
    CHECK_EQ(intent(&f, t + 40000, CRASH, ""), KYUFU__V1__CODE__INVALID_ARGUMENT);
    CHECK_EQ(intent(&f, t + 40000, PLANNED, "a b"),
             KYUFU__V1__CODE__INVALID_ARGUMENT);
    CHECK_EQ(heartbeat(&f, t + 40000, 1, 5), KYUFU__V1__CODE__INVALID_ARGUMENT);
    CHECK_EQ(heartbeat(&f, t + 40000, 0, 1000),
             KYUFU__V1__CODE__INVALID_ARGUMENT);
    CHECK_EQ(leader_change(&f, t + 40000, 1, 4, 99),
             KYUFU__V1__CODE__INVALID_ARGUMENT);
    fx_close(&f);
}

static void old_detail_compacts_into_days(void)
{
    struct fx f;
    fx_open(&f);
    f.term = 1;
    int64_t t = beat(&f, FX_T0_MS, 3, 1);
    f.term = 2;
    CHECK_EQ(leader_change(&f, t + 4000, 2, 2, CRASH), OK);
    /* Heartbeats resume long after: the gap is a (long) window, and the
     * day summaries hold what detail is compacted. */
    int64_t later = FX_T0_MS + (KYUFU_AVAIL_DETAIL_DAYS + 2) * DAY_MS;
    CHECK_EQ(heartbeat(&f, later, 2, 1000), OK);
    CHECK_EQ(heartbeat(&f, later + 1000, 2, 1000), OK);
    Kyufu__V1__AvailabilityReport *r = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_failovers, 0); /* detail gone */
    CHECK_EQ(r->n_days, 1);
    CHECK_EQ(r->days[0]->failovers, 1);
    CHECK_EQ(r->days[0]->max_rto_ms, 4000);
    /* The first day: the 4 s window and the rest of the day down. */
    CHECK_EQ(r->days[0]->unavailable_ms, DAY_MS - (t + 4000 - FX_T0_MS) + 4000);
    CHECK_EQ(r->unavailable_ms, r->days[0]->unavailable_ms);
    CHECK_EQ(r->days[0]->heartbeats, 3);
    kyufu_storage_availability_free(r);
    fx_close(&f);
}

static void report_refuses_hostile_ranges(void)
{
    struct fx f;
    Kyufu__V1__AvailabilityReport *r = NULL;
    char err[256];
    fx_open(&f);
    CHECK_EQ(kyufu_storage_availability(f.s, 10, 5, &r, err, sizeof err),
             KYUFU_STORAGE_EINVALID);
    CHECK_EQ(kyufu_storage_availability(f.s, 5, 5, &r, err, sizeof err),
             KYUFU_STORAGE_EINVALID);
    CHECK_EQ(kyufu_storage_availability(f.s, -1, 5, &r, err, sizeof err),
             KYUFU_STORAGE_EINVALID);
    CHECK_EQ(kyufu_storage_availability(f.s, 0, INT64_MAX, &r, err,
                                        sizeof err),
             KYUFU_STORAGE_EINVALID);
    CHECK(r == NULL);
    /* An empty ledger: a range of days, all zero. */
    r = report(&f, FX_T0_MS, FX_T0_MS + 3 * DAY_MS);
    CHECK_EQ(r->n_days, 3);
    CHECK_STR(r->days[2]->day, "2026-04-03");
    CHECK_EQ(r->observed_ms, 0);
    kyufu_storage_availability_free(r);
    fx_close(&f);
}

/* The same scripted history on a replica. */
static void history(struct fx *f)
{
    f->term = 1;
    int64_t t = beat(f, FX_T0_MS, 4, 1);
    CHECK_EQ(intent(f, t + 5, PLANNED, ""), OK);
    f->term = 2;
    CHECK_EQ(leader_change(f, t + 700, 2, 2, UNKNOWN), OK);
    beat(f, t + 1700, 3, 2);
}

static void replicas_agree_and_snapshot_carries_it(void)
{
    struct fx a, b, c;
    uint8_t da[32], db[32], dc[32];
    fx_open(&a);
    fx_open(&b);
    history(&a);
    history(&b);
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    fx_open(&c);
    fx_restore_from(&c, &a);
    fx_reopen(&c);
    fx_digest(&c, dc);
    CHECK(memcmp(da, dc, 32) == 0);
    Kyufu__V1__AvailabilityReport *r = report(&c, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(r->n_failovers, 1);
    CHECK_EQ(r->failovers[0]->cause, PLANNED);
    CHECK_EQ(r->failovers[0]->rto_ms, 695);
    CHECK_EQ(r->heartbeat_interval_ms, 1000);
    kyufu_storage_availability_free(r);
    fx_close(&a);
    fx_close(&b);
    fx_close(&c);
}

static void drill_probe_and_result(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_create_staff(&f, "admin", "op", R_OPERATOR));
    /* A probe is the operator's, audited like any write. */
    Kyufu__V1__Command *p = c_new(&f, "op");
    p->body_case = KYUFU__V1__COMMAND__BODY_DRILL_PROBE;
    p->drill_probe = calloc(1, sizeof *p->drill_probe);
    CHECK(p->drill_probe != NULL);
    kyufu__v1__drill_probe__init(p->drill_probe);
    c_str(&p->drill_probe->drill_id, "d1");
    uint64_t before = fx_audit_count(&f);
    Kyufu__V1__CommandResult *r = apply_free(&f, p);
    CHECK_CODE(r, OK);
    CHECK_STR(r->object, "drill/d1");
    fx_free(r);
    CHECK_EQ(fx_audit_count(&f), before + 1);
    /* A clerk may not probe. */
    p = c_new(&f, "clerk");
    p->body_case = KYUFU__V1__COMMAND__BODY_DRILL_PROBE;
    p->drill_probe = calloc(1, sizeof *p->drill_probe);
    CHECK(p->drill_probe != NULL);
    kyufu__v1__drill_probe__init(p->drill_probe);
    c_str(&p->drill_probe->drill_id, "d1");
    fx_reject(&f, p, KYUFU__V1__CODE__PERMISSION_DENIED);

    Kyufu__V1__Command *d = sys_new(&f, f.now_ms + 1);
    d->body_case = KYUFU__V1__COMMAND__BODY_DRILL_RESULT;
    d->drill_result = calloc(1, sizeof *d->drill_result);
    CHECK(d->drill_result != NULL);
    kyufu__v1__drill_result__init(d->drill_result);
    c_str(&d->drill_result->drill_id, "d1");
    d->drill_result->writes_acknowledged = 10;
    d->drill_result->writes_lost = 2;
    r = apply_free(&f, d);
    CHECK_CODE(r, OK);
    fx_free(r);
    Kyufu__V1__AvailabilityReport *rep = report(&f, FX_T0_MS, FX_T0_MS + DAY_MS);
    CHECK_EQ(rep->writes_lost, 2);
    kyufu_storage_availability_free(rep);
    fx_close(&f);
}

/* kyufu_storage_availability_changes, the SLA cache's staleness test
 * (node/sla_ledger.c): still while only heartbeats come (no re-read each
 * second), moved by a window, by a failover and by a restore. */
static void changes_mark_detail_only(void)
{
    struct fx f, g;
    struct t_sink k = {0};
    struct kyufu_storage_snapshot *snap;
    char err[256] = "";
    fx_open(&f);
    f.term = 1;
    int64_t last = beat(&f, FX_T0_MS, 5, 1);
    uint64_t c1 = kyufu_storage_availability_changes(f.s);
    CHECK_EQ(heartbeat(&f, last + 1000, 1, 1000), OK);
    CHECK_EQ(kyufu_storage_availability_changes(f.s), c1);
    /* A gap of 5 s in the same term: a window. */
    CHECK_EQ(heartbeat(&f, last + 6000, 1, 1000), OK);
    uint64_t c2 = kyufu_storage_availability_changes(f.s);
    CHECK(c2 != c1);
    CHECK_EQ(heartbeat(&f, last + 7000, 1, 1000), OK);
    CHECK_EQ(kyufu_storage_availability_changes(f.s), c2);
    /* A new term: a failover (and its window). */
    f.term = 2;
    CHECK_EQ(leader_change(&f, last + 9500, 2, 2, CRASH), OK);
    uint64_t c3 = kyufu_storage_availability_changes(f.s);
    CHECK(c3 != c2);
    /* A restore, even of the same bytes, says "read again". */
    CHECK(kyufu_storage_snapshot_begin(f.s, &snap) == 0);
    CHECK(kyufu_storage_snapshot_write(snap, NULL, t_sink_emit, &k) == 0);
    kyufu_storage_snapshot_end(snap);
    fx_open(&g);
    uint64_t g0 = kyufu_storage_availability_changes(g.s);
    CHECK(kyufu_storage_restore(g.s, k.buf, k.len, err, sizeof err) == 0);
    CHECK(kyufu_storage_availability_changes(g.s) != g0);
    free(k.buf);
    fx_close(&g);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(heartbeats_leave_no_window_and_no_audit),
        T_CASE(crash_failover_has_rto_window_and_cause),
        T_CASE(intent_names_the_cause),
        T_CASE(old_detail_compacts_into_days),
        T_CASE(report_refuses_hostile_ranges),
        T_CASE(replicas_agree_and_snapshot_carries_it),
        T_CASE(drill_probe_and_result),
        T_CASE(changes_mark_detail_only),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
