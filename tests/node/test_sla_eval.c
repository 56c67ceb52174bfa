/* The SLA rules (node/sla_eval.c): each alert fires exactly past its bound,
 * with its severity and subject; nothing fires on a healthy cluster or
 * when an input is unknown (no ledger, no backups). */
#include <stdio.h>
#include <string.h>

#include "../client/check.h"
#include "sla_eval.h"

static struct kyufu_slo slo;
static struct kyufu_sla_alert out[KYUFU_SLA_ALERTS_MAX];

static void healthy(struct kyufu_sla_inputs *in)
{
    memset(in, 0, sizeof *in);
    in->leader = true;
    in->commit_index = 5000;
    in->n_peers = 3;
    for (size_t i = 0; i < 3; i++) {
        in->peers[i].id = i + 1;
        in->peers[i].self = i == 0;
        in->peers[i].heard = true;
        in->peers[i].silent_ms = 100;
        in->peers[i].applied_index = 4990;
    }
}

static size_t eval(const struct kyufu_sla_inputs *in)
{
    return kyufu_sla_evaluate(&slo, in, out, KYUFU_SLA_ALERTS_MAX);
}

int main(void)
{
    const char *text = "[availability]\ntarget_percent = 99.9\nburn_rate_max = 10\n"
                       "[rto]\ntarget_ms = 3000\n[alerts]\nfollower_lag_entries = 100\n"
                       "follower_contact_ms = 500\n";
    CHECK_EQ_INT(kyufu_slo_parse(text, strlen(text), &slo), 0);
    struct kyufu_sla_inputs in;

    healthy(&in);
    CHECK_EQ_INT(eval(&in), 0);
    CHECK_EQ_INT(kyufu_sla_worst(out, 0), KYUFU_SLA_OK);

    /* A follower silent past the bound: warning while a majority is heard. */
    healthy(&in);
    in.peers[2].silent_ms = 500;
    CHECK_EQ_INT(eval(&in), 0); /* at the bound: not yet */
    in.peers[2].silent_ms = 501;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_UNREACHABLE);
    CHECK_EQ_INT(out[0].severity, KYUFU_SLA_WARNING);
    CHECK(strcmp(out[0].subject, "node/3") == 0);
    CHECK(strcmp(kyufu_sla_kind_name(out[0].kind), "node_unreachable") == 0);
    /* Both followers silent: no majority heard -> critical. */
    in.peers[1].silent_ms = 9000;
    CHECK_EQ_INT(eval(&in), 2);
    CHECK_EQ_INT(kyufu_sla_worst(out, 2), KYUFU_SLA_CRITICAL);

    /* Lag past the bound (only for a heard peer). */
    healthy(&in);
    in.peers[1].applied_index = 4900;
    CHECK_EQ_INT(eval(&in), 0);
    in.peers[1].applied_index = 4899;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_LAG);
    CHECK(out[0].value == 101);
    in.peers[1].heard = false;
    CHECK_EQ_INT(eval(&in), 0);

    /* A follower: peer rules are the leader's; no leader past the bound is
     * critical, subject "leader". */
    healthy(&in);
    in.leader = false;
    in.peers[2].silent_ms = 99999;
    in.no_leader_ms = 500;
    CHECK_EQ_INT(eval(&in), 0);
    in.no_leader_ms = 501;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK(strcmp(out[0].subject, "leader") == 0);
    CHECK_EQ_INT(out[0].severity, KYUFU_SLA_CRITICAL);

    /* Availability: budget of December 2026 at 99.9% is 2678400 ms. */
    healthy(&in);
    in.have_ledger = true;
    in.month_from_ms = 1796083200000LL;
    in.month_to_ms = in.month_from_ms + 31LL * 86400000;
    in.month_unavailable_ms = 2678400 * 3 / 4 - 1;
    CHECK_EQ_INT(eval(&in), 0);
    in.month_unavailable_ms = 2678400 * 3 / 4;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_BUDGET);
    CHECK_EQ_INT(out[0].severity, KYUFU_SLA_WARNING);
    in.month_unavailable_ms = 2678400;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].severity, KYUFU_SLA_CRITICAL);
    CHECK(strstr(out[0].summary, "exhausted") != NULL);

    /* Burn rate: the hour's budget is 3600 ms; 10x is 36000 ms. */
    healthy(&in);
    in.have_ledger = true;
    in.month_from_ms = 1796083200000LL;
    in.month_to_ms = in.month_from_ms + 31LL * 86400000;
    in.hour_unavailable_ms = 36000;
    CHECK_EQ_INT(eval(&in), 0);
    in.hour_unavailable_ms = 36001;
    in.month_unavailable_ms = 36001;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_BURN);

    /* RTO over target, held for KYUFU_SLA_RTO_HOLD_MS, subject per term. */
    healthy(&in);
    in.have_ledger = true;
    in.month_from_ms = 1796083200000LL;
    in.month_to_ms = in.month_from_ms + 31LL * 86400000;
    in.have_failover = true;
    in.last_failover_term = 7;
    in.last_rto_ms = 3000;
    CHECK_EQ_INT(eval(&in), 0);
    in.last_rto_ms = 3001;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_RTO);
    CHECK(strcmp(out[0].subject, "term/7") == 0);
    in.last_failover_age_ms = KYUFU_SLA_RTO_HOLD_MS;
    CHECK_EQ_INT(eval(&in), 0);
    /* Without the ledger the availability rules are skipped, not guessed. */
    in.last_failover_age_ms = 0;
    in.have_ledger = false;
    CHECK_EQ_INT(eval(&in), 0);

    /* Backups: skipped while none exist; critical past the interval. */
    healthy(&in);
    in.newest_backup_age_ms = 999999999;
    CHECK_EQ_INT(eval(&in), 0);
    in.have_backup = true;
    in.newest_backup_age_ms = 24ull * 3600000;
    CHECK_EQ_INT(eval(&in), 0);
    in.newest_backup_age_ms++;
    CHECK_EQ_INT(eval(&in), 1);
    CHECK_EQ_INT(out[0].kind, KYUFU_SLA_BACKUP);

    /* The cap is respected. */
    healthy(&in);
    in.peers[1].silent_ms = in.peers[2].silent_ms = 9000;
    CHECK_EQ_INT(kyufu_sla_evaluate(&slo, &in, out, 1), 1);
    puts("sla eval tests: ok");
    return 0;
}
