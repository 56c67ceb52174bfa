/* SLA incidents (storage/apply_incident.c, docs/sla.md "Alerts and
 * incidents"): OpenIncident is idempotent on (alert, subject) while the
 * incident is open, needs no staff account (the leader's own command),
 * validates its fields; CloseIncident is an operator's, once, with a cause
 * and a fix; a closed incident lets the next breach open a new one; records
 * survive a restart. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define OK KYUFU__V1__CODE__OK
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define NOT_FOUND KYUFU__V1__CODE__NOT_FOUND
#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define OPEN KYUFU__V1__INCIDENT_STATE__INCIDENT_OPEN
#define CLOSED KYUFU__V1__INCIDENT_STATE__INCIDENT_CLOSED

static Kyufu__V1__Command *c_open_incident(struct fx *f, const char *alert,
                                           const char *subject,
                                           const char *severity)
{
    Kyufu__V1__Command *c = c_new(f, "kyufu-node-1");
    c->body_case = KYUFU__V1__COMMAND__BODY_OPEN_INCIDENT;
    c->open_incident = calloc(1, sizeof *c->open_incident);
    CHECK(c->open_incident != NULL);
    kyufu__v1__open_incident__init(c->open_incident);
    c_str(&c->open_incident->alert, alert);
    c_str(&c->open_incident->subject, subject);
    c_str(&c->open_incident->severity, severity);
    c_str(&c->open_incident->summary, "node 3 not heard from for 1200 ms");
    return c;
}

static Kyufu__V1__Command *c_close_incident(struct fx *f, const char *actor,
                                            uint64_t id, const char *cause,
                                            const char *fix)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    c->body_case = KYUFU__V1__COMMAND__BODY_CLOSE_INCIDENT;
    c->close_incident = calloc(1, sizeof *c->close_incident);
    CHECK(c->close_incident != NULL);
    kyufu__v1__close_incident__init(c->close_incident);
    c->close_incident->id = id;
    c_str(&c->close_incident->cause, cause);
    c_str(&c->close_incident->fix, fix);
    return c;
}

static size_t count_incidents(struct fx *f)
{
    struct kyufu_storage_page page;
    memset(&page, 0, sizeof page);
    CHECK_EQ(kyufu_storage_list_incidents(f->s, "", 1000, &page), 0);
    size_t n = page.n;
    kyufu_storage_page_free(&page);
    return n;
}

static uint64_t opened(struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    kyufu__v1__command__free_unpacked(c, NULL);
    CHECK_CODE(r, OK);
    CHECK(r->incident != NULL);
    CHECK_EQ(r->incident->state, OPEN);
    uint64_t id = r->incident->id;
    fx_free(r);
    return id;
}

static void open_needs_no_staff(void)
{
    struct fx f;
    fx_open(&f);
    /* An empty store: no account exists, yet the leader's command applies. */
    CHECK_EQ(opened(&f, c_open_incident(&f, "node_unreachable", "node/3", "warning")), 1);
    CHECK_EQ(count_incidents(&f), 1);
    fx_close(&f);
}

static void one_breach_one_incident(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    CHECK_EQ(opened(&f, c_open_incident(&f, "node_unreachable", "node/3", "warning")), 1);
    /* Seen again (another tick, another leader, a higher severity): the
     * same incident, no second record. */
    CHECK_EQ(opened(&f, c_open_incident(&f, "node_unreachable", "node/3", "critical")), 1);
    CHECK_EQ(count_incidents(&f), 1);
    /* Another subject, another alert: their own incidents. */
    CHECK_EQ(opened(&f, c_open_incident(&f, "node_unreachable", "node/2", "warning")), 2);
    CHECK_EQ(opened(&f, c_open_incident(&f, "rto", "term/7", "critical")), 3);
    CHECK_EQ(count_incidents(&f), 3);
    fx_reopen(&f);
    CHECK_EQ(count_incidents(&f), 3);
    fx_invariants(&f);
    fx_close(&f);
}

static void operator_closes_once(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_create_staff(&f, "admin", "ops", R_OPERATOR));
    uint64_t id = opened(&f, c_open_incident(&f, "node_unreachable", "node/3", "warning"));
    /* Not an operator, unknown id, empty or oversized fields. */
    fx_reject(&f, c_close_incident(&f, "clerk", id, "c", "f"), DENIED);
    fx_reject(&f, c_close_incident(&f, "ops", 99, "c", "f"), NOT_FOUND);
    fx_reject(&f, c_close_incident(&f, "ops", 0, "c", "f"), INVALID);
    fx_reject(&f, c_close_incident(&f, "ops", id, "", "f"), INVALID);
    fx_reject(&f, c_close_incident(&f, "ops", id, "c", ""), INVALID);
    fx_reject(&f, c_close_incident(&f, "ops", id, rep('x', 401), "f"), INVALID);

    int64_t at = f.now_ms;
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_close_incident(&f, "ops", id, "switch port flapping", "new cable"));
    CHECK(r->incident != NULL);
    CHECK_EQ(r->incident->id, id);
    CHECK_EQ(r->incident->state, CLOSED);
    CHECK_STR(r->incident->cause, "switch port flapping");
    CHECK_STR(r->incident->fix, "new cable");
    CHECK_STR(r->incident->closed_by, "ops");
    CHECK_EQ(r->incident->closed_ms, at);
    CHECK_STR(r->object, "incident/1");
    fx_free(r);
    fx_reject(&f, c_close_incident(&f, "ops", id, "again", "again"), PRECONDITION);
    /* The same breach after the close: a new incident. */
    CHECK_EQ(opened(&f, c_open_incident(&f, "node_unreachable", "node/3", "warning")), 2);
    fx_invariants(&f);
    fx_close(&f);
}

static void open_validates(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_open_incident(&f, "node_unreachable", "node/3", "minor"), INVALID);
    fx_reject(&f, c_open_incident(&f, "Node Down", "node/3", "warning"), INVALID);
    fx_reject(&f, c_open_incident(&f, rep('a', 33), "node/3", "warning"), INVALID);
    fx_reject(&f, c_open_incident(&f, "rto", "", "warning"), INVALID);
    fx_reject(&f, c_open_incident(&f, "rto", rep('s', 65), "warning"), INVALID);
    fx_reject(&f, c_open_incident(&f, "rto", "a\tb", "warning"), INVALID);
    CHECK_EQ(count_incidents(&f), 0);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(open_needs_no_staff),
        T_CASE(one_breach_one_incident),
        T_CASE(operator_closes_once),
        T_CASE(open_validates),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
