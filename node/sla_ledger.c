/* The availability ledger's figures for the SLA evaluator and /metrics
 * (sla.h, docs/sla.md "Alerts and incidents", docs/metrics.md "SLA"): this
 * month's unavailability against the SLO's budget, the last hour's (burn
 * rate), the month's failovers by cause and the newest failover's RTO, all
 * from this node's own store, the replicated state every node holds.
 *
 * Cheap by caching: kyufu_storage_availability walks the kept detail, so
 * it runs only when the store says a failover or window record changed
 * (kyufu_storage_availability_changes), the month turned, or
 * KYUFU_NODE_SLA_LEDGER_REFRESH_MS passed; every other call (each 250 ms
 * tick, each scrape) returns the cached figures.  Maintenance is excluded
 * the way the report (client/ctl_sla_report.c) excludes it: the part of
 * each window inside a planned window. */
#include "sla.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth_node.h"
#include "availability.h"
#include "log.h"
#include "node.h"
#include "storage.h"
#include "storage_limits.h"

#define HOUR_MS INT64_C(3600000)

static const char *const cause_names[KYUFU_NODE_SLA_CAUSES] = {
    "unknown", "crash",       "planned",       "partition",
    "power",   "drill_crash", "drill_planned",
};

_Static_assert(KYUFU__V1__FAILOVER_CAUSE__CAUSE_DRILL_PLANNED + 1 ==
                   KYUFU_NODE_SLA_CAUSES,
               "one name per FailoverCause (api/kyufu/v1/service.proto)");

const char *kyufu_node__sla_cause_name(uint64_t cause)
{
    return cause < KYUFU_NODE_SLA_CAUSES ? cause_names[cause] : "unknown";
}

/* [from, to) of the UTC month holding now_ms, and its name. */
static int month_of(int64_t now_ms, char name[8], int64_t *from, int64_t *to)
{
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        return -1;
    }
    snprintf(name, 8, "%04u-%02u", (unsigned)(tm.tm_year + 1900) % 10000u,
             (unsigned)(tm.tm_mon + 1) % 100u);
    return kyufu_slo_month_range(name, from, to);
}

static uint64_t clip(int64_t a, int64_t b, int64_t from, int64_t to)
{
    if (a < from) {
        a = from;
    }
    if (b > to) {
        b = to;
    }
    return b > a ? (uint64_t)(b - a) : 0;
}

/* The newest failover of r (highest term) into l, when newer than l's. */
static void take_newest(struct kyufu_node_sla_ledger *l,
                        const Kyufu__V1__AvailabilityReport *r)
{
    for (size_t i = 0; i < r->n_failovers; i++) {
        const Kyufu__V1__Failover *f = r->failovers[i];
        if (!l->have_failover || f->term > l->last_term) {
            l->have_failover = true;
            l->last_term = f->term;
            l->last_rto_ms = f->rto_ms;
            l->last_cause = (uint64_t)f->cause;
            l->last_first_commit_ms = f->first_commit_new_ms;
        }
    }
}

static uint64_t hour_windows(const Kyufu__V1__AvailabilityReport *r,
                             int64_t now_ms)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < r->n_windows; i++) {
        sum += clip(r->windows[i]->start_ms, r->windows[i]->end_ms,
                    now_ms - HOUR_MS, now_ms);
    }
    return sum;
}

/* Read the figures afresh into *l.  0, or -1 with errmsg. */
static int read_ledger(struct kyufu_node *n,
                       int64_t now_ms,
                       struct kyufu_node_sla_ledger *l,
                       char *errmsg,
                       size_t len)
{
    Kyufu__V1__AvailabilityReport *r = NULL, *before = NULL;
    memset(l, 0, sizeof *l);
    l->changes = kyufu_storage_availability_changes(n->storage);
    if (month_of(now_ms, l->month, &l->month_from_ms, &l->month_to_ms) != 0) {
        snprintf(errmsg, len, "the clock is outside the years 2000..2999");
        return -1;
    }
    if (kyufu_storage_availability(n->storage, l->month_from_ms, l->month_to_ms,
                                   &r, errmsg, len) != 0) {
        return -1;
    }
    l->have = r->observed_ms > 0;
    l->observed_ms = r->observed_ms;
    l->unavailable_ms = r->unavailable_ms;
    uint64_t excluded = 0;
    for (size_t i = 0; i < r->n_windows; i++) {
        const Kyufu__V1__UnavailabilityWindow *w = r->windows[i];
        int64_t a =
            w->start_ms < l->month_from_ms ? l->month_from_ms : w->start_ms;
        int64_t b = w->end_ms > l->month_to_ms ? l->month_to_ms : w->end_ms;
        if (b > a && n->config->has_slo) {
            excluded += kyufu_slo_maintenance_ms(&n->config->slo, a, b);
        }
    }
    l->counted_ms =
        r->unavailable_ms -
        (excluded > r->unavailable_ms ? r->unavailable_ms : excluded);
    for (size_t i = 0; i < r->n_failovers; i++) {
        uint64_t c = (uint64_t)r->failovers[i]->cause;
        l->failovers[c < KYUFU_NODE_SLA_CAUSES ? c : 0]++;
    }
    l->truncated = r->n_failovers >= KYUFU_AVAIL_REPORT_ITEMS_MAX ||
                   r->n_windows >= KYUFU_AVAIL_REPORT_ITEMS_MAX;
    take_newest(l, r);
    l->hour_unavailable_ms = hour_windows(r, now_ms);
    if (now_ms - HOUR_MS < l->month_from_ms) {
        /* The first hour of a month: the last hour began in the one
         * before. */
        if (kyufu_storage_availability(n->storage, now_ms - HOUR_MS,
                                       l->month_from_ms, &before, errmsg,
                                       len) != 0) {
            kyufu_storage_availability_free(r);
            return -1;
        }
        l->hour_unavailable_ms += hour_windows(before, now_ms);
        take_newest(l, before);
        kyufu_storage_availability_free(before);
    }
    kyufu_storage_availability_free(r);
    l->read = true;
    l->read_at = uv_now(&n->loop);
    return 0;
}

const struct kyufu_node_sla_ledger *kyufu_node__sla_ledger(struct kyufu_node *n)
{
    struct kyufu_node_sla_ledger *l = &n->sla.ledger;
    if (n->storage == NULL) {
        return NULL;
    }
    /* The identity clock: the ledger's times are the leaders' stamps,
     * which come from it (a held wall clock step must not move the month
     * or the last hour against them). */
    int64_t now_ms = kyufu_node__auth_now_ms(n);
    uint64_t now = uv_now(&n->loop);
    if (n->sla.ledger_failing &&
        now - l->read_at < KYUFU_NODE_SLA_LEDGER_REFRESH_MS) {
        return NULL; /* tried again only after the refresh interval */
    }
    if (l->read && !n->sla.ledger_failing &&
        l->changes == kyufu_storage_availability_changes(n->storage) &&
        now_ms >= l->month_from_ms && now_ms < l->month_to_ms &&
        now - l->read_at < KYUFU_NODE_SLA_LEDGER_REFRESH_MS) {
        return l;
    }
    char err[160] = "";
    struct kyufu_node_sla_ledger fresh;
    if (read_ledger(n, now_ms, &fresh, err, sizeof err) != 0) {
        if (!n->sla.ledger_failing) {
            kyufu_log(KYUFU_LOG_ERROR, "SLA ledger read failed",
                      KYUFU_LOG_S("error", err));
        }
        n->sla.ledger_failing = true;
        l->read = false;
        l->read_at = now;
        return NULL;
    }
    n->sla.ledger_failing = false;
    *l = fresh;
    return l;
}
