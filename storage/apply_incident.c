/* SLA incidents (docs/sla.md "Alerts and incidents"): OpenIncident and
 * CloseIncident.
 *
 * OpenIncident is the leader's own command (the SLA evaluator proposes it
 * when an alert fires; no client RPC makes one), so the pipeline skips the
 * actor check for it (command_def.roles 0).  It is idempotent on (alert,
 * subject): while an incident for them is open, another OpenIncident
 * answers that one and writes nothing, so a breach seen by a leader again
 * and again, or by the next leader after a failover, opens one incident.
 *
 * CloseIncident is an operator's (ROLE_OPERATOR): it records the cause and
 * the fix, once; closing a closed incident is FAILED_PRECONDITION.
 *
 * Records: KYUFU_DB_INCIDENTS, key the 8-byte big-endian id, value the
 * packed Incident; ids from meta next_incident_id, from 1.  The open-incident
 * lookup scans the table: incidents are rare (one per breach, a few a
 * month), so the scan stays small, and there is no second index to keep in
 * step. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject
#define IS(x) KYUFU__V1__INCIDENT_STATE__INCIDENT_##x

/* CommandResult.incident (ledger.proto). */
enum { RESULT_INCIDENT = 90 };

static bool valid_alert(const char *s)
{
    return kyufu_storage__valid_staff_id(s) && strlen(s) <= 32; /* [a-z0-9._-] */
}

static bool valid_severity(const char *s)
{
    return s != NULL && (strcmp(s, "warning") == 0 || strcmp(s, "critical") == 0);
}

/* Checked before every write and after every read. */
static const char *check_incident(const Kyufu__V1__Incident *i)
{
    if (i->id == 0) {
        return "id 0";
    }
    if (!valid_alert(i->alert) ||
        !kyufu_storage__valid_printable(i->subject, 1, 64) ||
        !valid_severity(i->severity) ||
        !kyufu_storage__valid_text(i->summary, 0, KYUFU_REASON_BYTES_MAX)) {
        return "bad alert, subject, severity or summary";
    }
    if (i->state == IS(OPEN)) {
        if (i->closed_ms != 0 || (i->cause != NULL && i->cause[0] != '\0')) {
            return "open incident with a closing";
        }
    } else if (i->state == IS(CLOSED)) {
        if (i->closed_ms < i->opened_ms || i->cause == NULL ||
            i->cause[0] == '\0' || i->fix == NULL || i->fix[0] == '\0') {
            return "closed incident without its closing";
        }
    } else {
        return "bad state";
    }
    return NULL;
}

static int put_incident(struct kyufu_storage__cmd *c,
                        const Kyufu__V1__Incident *i)
{
    const char *why = check_incident(i);
    if (why != NULL) {
        kyufu_storage__panic(__FILE__, __LINE__, "incident %llu: %s",
                             (unsigned long long)i->id, why);
    }
    uint8_t key[8];
    uint8_t *buf;
    size_t len;
    kyufu_storage__put_u64(key, i->id);
    int rv = kyufu_storage__pack(&i->base, &buf, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {8, key};
    MDB_val v = {len, buf};
    rv = kyufu_storage__mdb_error(
        mdb_put(c->txn, c->s->dbi[KYUFU_DB_INCIDENTS], &k, &v, 0));
    free(buf);
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, RESULT_INCIDENT, &i->base);
    }
    return rv;
}

static int decode(const MDB_val *v, Kyufu__V1__Incident **out)
{
    Kyufu__V1__Incident *i =
        kyufu__v1__incident__unpack(NULL, v->mv_size, v->mv_data);
    if (i == NULL || check_incident(i) != NULL) {
        if (i != NULL) {
            kyufu__v1__incident__free_unpacked(i, NULL);
        }
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = i;
    return 0;
}

/* The open incident for (alert, subject), or NOTFOUND. */
static int find_open(struct kyufu_storage__cmd *c, const char *alert,
                     const char *subject, Kyufu__V1__Incident **out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrv = mdb_cursor_open(c->txn, c->s->dbi[KYUFU_DB_INCIDENTS], &cur);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    int rv = KYUFU_STORAGE_ENOTFOUND;
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_LAST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        Kyufu__V1__Incident *i = NULL;
        rv = decode(&v, &i);
        if (rv != 0) {
            break;
        }
        if (i->state == IS(OPEN) && strcmp(i->alert, alert) == 0 &&
            strcmp(i->subject, subject) == 0) {
            *out = i;
            break;
        }
        kyufu__v1__incident__free_unpacked(i, NULL);
        rv = KYUFU_STORAGE_ENOTFOUND;
    }
    if (mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = kyufu_storage__mdb_error(mrv);
    }
    mdb_cursor_close(cur);
    return rv;
}

int kyufu_storage__open_incident(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__OpenIncident *b = c->cmd->open_incident;
    KYUFU_ASSERT(c->cmd->body_case == KYUFU__V1__COMMAND__BODY_OPEN_INCIDENT);
    if (!valid_alert(b->alert)) {
        return REJECT(c, INVALID, "alert must be 1..32 of [a-z0-9._-]");
    }
    if (!kyufu_storage__valid_printable(b->subject, 1, 64)) {
        return REJECT(c, INVALID, "subject must be 1..64 printable bytes");
    }
    if (!valid_severity(b->severity)) {
        return REJECT(c, INVALID, "severity must be warning or critical");
    }
    if (!kyufu_storage__valid_text(b->summary, 0, KYUFU_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "summary must be 0..400 bytes of text");
    }
    Kyufu__V1__Incident *open = NULL;
    int rv = find_open(c, b->alert, b->subject, &open);
    if (rv == 0) {
        /* Already open: answer it, write nothing. */
        kyufu_storage__set_object(c, "incident/%llu",
                                  (unsigned long long)open->id);
        rv = kyufu_storage__set_record(c, RESULT_INCIDENT, &open->base);
        kyufu__v1__incident__free_unpacked(open, NULL);
        return rv;
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    uint64_t id = 0;
    rv = kyufu_storage__meta_get_u64(c->s, c->txn, KYUFU_META_NEXT_INCIDENT_ID,
                                     &id);
    if (rv != 0) {
        return rv;
    }
    id = id == 0 ? 1 : id;
    rv = kyufu_storage__meta_put_u64(c->s, c->txn, KYUFU_META_NEXT_INCIDENT_ID,
                                     id + 1);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Incident i = KYUFU__V1__INCIDENT__INIT;
    i.id = id;
    i.alert = b->alert;
    i.subject = b->subject;
    i.severity = b->severity;
    i.summary = b->summary;
    i.opened_ms = c->now_ms;
    i.state = IS(OPEN);
    kyufu_storage__set_object(c, "incident/%llu", (unsigned long long)id);
    return put_incident(c, &i);
}

int kyufu_storage__close_incident(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CloseIncident *b = c->cmd->close_incident;
    KYUFU_ASSERT(c->cmd->body_case == KYUFU__V1__COMMAND__BODY_CLOSE_INCIDENT);
    if (b->id == 0) {
        return REJECT(c, INVALID, "id must be > 0");
    }
    kyufu_storage__set_object(c, "incident/%llu", (unsigned long long)b->id);
    if (!kyufu_storage__valid_text(b->cause, 1, KYUFU_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "cause must be 1..400 bytes of text");
    }
    if (!kyufu_storage__valid_text(b->fix, 1, KYUFU_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "fix must be 1..400 bytes of text");
    }
    uint8_t key[8];
    kyufu_storage__put_u64(key, b->id);
    MDB_val k = {8, key}, v;
    int mrv = mdb_get(c->txn, c->s->dbi[KYUFU_DB_INCIDENTS], &k, &v);
    if (mrv == MDB_NOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "incident %llu not found",
                      (unsigned long long)b->id);
    }
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    Kyufu__V1__Incident *old = NULL;
    int rv = decode(&v, &old);
    if (rv != 0) {
        return rv;
    }
    if (old->state != IS(OPEN)) {
        kyufu__v1__incident__free_unpacked(old, NULL);
        return REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                      "incident %llu is already closed",
                      (unsigned long long)b->id);
    }
    Kyufu__V1__Incident i = *old;
    i.state = IS(CLOSED);
    i.closed_ms = c->now_ms > old->opened_ms ? c->now_ms : old->opened_ms;
    i.closed_by = (char *)c->actor;
    i.cause = b->cause;
    i.fix = b->fix;
    rv = put_incident(c, &i);
    kyufu__v1__incident__free_unpacked(old, NULL);
    return rv;
}
