/* The SLA rules (sla_eval.h has them in words).  Pure functions. */
#include "sla_eval.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *kyufu_sla_kind_name(enum kyufu_sla_kind k)
{
    switch (k) {
#define KYUFU_SLA__NAME(name, text)                                          \
    case KYUFU_SLA_##name:                                                   \
        return text;
        KYUFU_SLA_ALERT_KINDS(KYUFU_SLA__NAME)
#undef KYUFU_SLA__NAME
    default:
        return "unknown";
    }
}

const char *kyufu_sla_severity_name(enum kyufu_sla_severity s)
{
    return s == KYUFU_SLA_CRITICAL  ? "critical"
           : s == KYUFU_SLA_WARNING ? "warning"
                                    : "ok";
}

struct out
{
    struct kyufu_sla_alert *a;
    size_t n, cap;
};

static void add(struct out *o, enum kyufu_sla_kind kind,
                enum kyufu_sla_severity sev, const char *subject, double value,
                double threshold, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void add(struct out *o, enum kyufu_sla_kind kind,
                enum kyufu_sla_severity sev, const char *subject, double value,
                double threshold, const char *fmt, ...)
{
    if (o->n == o->cap) {
        return;
    }
    struct kyufu_sla_alert *a = &o->a[o->n++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->severity = sev;
    snprintf(a->subject, sizeof a->subject, "%s", subject);
    a->value = value;
    a->threshold = threshold;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->summary, sizeof a->summary, fmt, ap);
    va_end(ap);
}

static void availability(const struct kyufu_slo *slo,
                         const struct kyufu_sla_inputs *in, struct out *o)
{
    if (!in->have_ledger) {
        return;
    }
    uint64_t budget = kyufu_slo_budget_ms(slo, in->month_from_ms,
                                          in->month_to_ms);
    uint64_t used = in->month_unavailable_ms;
    if (budget > 0 && used >= budget) {
        add(o, KYUFU_SLA_BUDGET, KYUFU_SLA_CRITICAL, "cluster", (double)used,
            (double)budget,
            "availability budget exhausted: %llu ms unavailable this month, "
            "budget %llu ms",
            (unsigned long long)used, (unsigned long long)budget);
    } else if (budget > 0 &&
               used * 1000 >= budget * KYUFU_SLA_BUDGET_WARN_PERMILLE) {
        add(o, KYUFU_SLA_BUDGET, KYUFU_SLA_WARNING, "cluster", (double)used,
            (double)budget,
            "availability budget %u%% used: %llu ms unavailable this month, "
            "budget %llu ms",
            (unsigned)(used * 100 / budget), (unsigned long long)used,
            (unsigned long long)budget);
    }
    /* Burn rate: the hour's unavailability against the hour's share of
     * the budget (1 - target of 3600 s). */
    uint64_t hour_budget = kyufu_slo_budget_ms(slo, 0, 3600000);
    if (hour_budget > 0) {
        double rate = (double)in->hour_unavailable_ms / (double)hour_budget;
        if (rate > (double)slo->burn_rate_max) {
            add(o, KYUFU_SLA_BURN, KYUFU_SLA_CRITICAL, "cluster", rate,
                (double)slo->burn_rate_max,
                "budget burning %.1fx too fast: %llu ms unavailable in the "
                "last hour (bound %ux)",
                rate, (unsigned long long)in->hour_unavailable_ms,
                slo->burn_rate_max);
        }
    }
    if (in->have_failover && in->last_rto_ms > slo->rto_target_ms &&
        in->last_failover_age_ms < KYUFU_SLA_RTO_HOLD_MS) {
        char subject[32];
        snprintf(subject, sizeof subject, "term/%llu",
                 (unsigned long long)in->last_failover_term);
        add(o, KYUFU_SLA_RTO, KYUFU_SLA_CRITICAL, subject,
            (double)in->last_rto_ms, (double)slo->rto_target_ms,
            "failover to term %llu took %llu ms, RTO target %llu ms",
            (unsigned long long)in->last_failover_term,
            (unsigned long long)in->last_rto_ms,
            (unsigned long long)slo->rto_target_ms);
    }
}

static void peers(const struct kyufu_slo *slo,
                  const struct kyufu_sla_inputs *in, struct out *o)
{
    if (!in->leader) {
        if (in->no_leader_ms > slo->follower_contact_ms) {
            add(o, KYUFU_SLA_UNREACHABLE, KYUFU_SLA_CRITICAL, "leader",
                (double)in->no_leader_ms, (double)slo->follower_contact_ms,
                "no leader known for %llu ms (bound %u ms)",
                (unsigned long long)in->no_leader_ms, slo->follower_contact_ms);
        }
        return;
    }
    size_t heard = 0;
    for (size_t i = 0; i < in->n_peers; i++) {
        const struct kyufu_sla_peer *p = &in->peers[i];
        heard += p->self || p->silent_ms <= slo->follower_contact_ms;
    }
    bool quorum = heard * 2 > in->n_peers;
    for (size_t i = 0; i < in->n_peers; i++) {
        const struct kyufu_sla_peer *p = &in->peers[i];
        char subject[32];
        snprintf(subject, sizeof subject, "node/%llu",
                 (unsigned long long)p->id);
        if (p->self) {
            continue;
        }
        if (p->silent_ms > slo->follower_contact_ms) {
            add(o, KYUFU_SLA_UNREACHABLE,
                quorum ? KYUFU_SLA_WARNING : KYUFU_SLA_CRITICAL, subject,
                (double)p->silent_ms, (double)slo->follower_contact_ms,
                "node %llu not heard from for %llu ms (bound %u ms)%s",
                (unsigned long long)p->id, (unsigned long long)p->silent_ms,
                slo->follower_contact_ms,
                quorum ? "" : "; fewer than a majority heard");
            continue;
        }
        if (p->heard && in->commit_index > p->applied_index &&
            in->commit_index - p->applied_index > slo->follower_lag_entries) {
            uint64_t lag = in->commit_index - p->applied_index;
            add(o, KYUFU_SLA_LAG, KYUFU_SLA_WARNING, subject, (double)lag,
                (double)slo->follower_lag_entries,
                "node %llu is %llu entries behind the commit index (bound "
                "%llu)",
                (unsigned long long)p->id, (unsigned long long)lag,
                (unsigned long long)slo->follower_lag_entries);
        }
    }
}

static void backup(const struct kyufu_slo *slo,
                   const struct kyufu_sla_inputs *in, struct out *o)
{
    uint64_t bound = (uint64_t)slo->backup_interval_hours * 3600000u;
    if (in->have_backup && in->newest_backup_age_ms > bound) {
        add(o, KYUFU_SLA_BACKUP, KYUFU_SLA_CRITICAL, "cluster",
            (double)in->newest_backup_age_ms, (double)bound,
            "newest good backup is %llu s old, interval %u h",
            (unsigned long long)(in->newest_backup_age_ms / 1000),
            slo->backup_interval_hours);
    }
}

size_t kyufu_sla_evaluate(const struct kyufu_slo *slo,
                          const struct kyufu_sla_inputs *in,
                          struct kyufu_sla_alert *out,
                          size_t cap)
{
    assert(in->n_peers <= KYUFU_SLA_PEERS_MAX);
    struct out o = {out, 0, cap};
    availability(slo, in, &o);
    peers(slo, in, &o);
    backup(slo, in, &o);
    return o.n;
}

enum kyufu_sla_severity kyufu_sla_worst(const struct kyufu_sla_alert *alerts,
                                        size_t n)
{
    enum kyufu_sla_severity w = KYUFU_SLA_OK;
    for (size_t i = 0; i < n; i++) {
        w = alerts[i].severity > w ? alerts[i].severity : w;
    }
    return w;
}
