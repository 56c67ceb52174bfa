/* The apply pipeline: one Raft entry → one LMDB write transaction.
 *
 * Happy path: begin the write txn; for each command, check the header (step
 * 1 of docs/ledger-rules.md), look up its idempotency key (step 2), prune a
 * few expired sessions, open a nested txn, check the body, actor and role
 * (steps 3-5), run the command's handler (steps 6-7), commit the nested txn
 * on OK or abort it on a rejection, then append the audit record and the
 * session entry in the outer txn; finally record the applied index and term
 * and commit.  After the commit, the records the batch touched are checked
 * against the invariants (invariants.c); a violation aborts the process.
 *
 * Failure modes: a rejection is a result, not an error.  A store error from
 * a handler (MAP_FULL, I/O, corruption) abandons the whole batch: the outer
 * txn is aborted so nothing of the entry is visible.  MAP_FULL then grows
 * the map and applies the entry again from the start (nothing was committed,
 * so this is not a retried durable write); any other error is returned, and
 * a failed commit is fatal (kyufu_storage_is_fatal).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "kyufu_version.h"
#include "pb_varint.h"

#define ROLE(r) (1u << KYUFU__V1__ROLE__ROLE_##r)
#define CASE(x) KYUFU__V1__COMMAND__BODY_##x

/* since: the command-set version that introduced the type (storage.h
 * "versions"); roles 0: a system command, proposed by the leader itself
 * (no staff account acts; its actor is the node, "kyufu-node-<id>"). */
struct command_def
{
    Kyufu__V1__Command__BodyCase body;
    const char *name;
    /* Any one of these; 0: a node's own command (no client RPC makes one:
     * OpenIncident, RecordVersions): its actor must be a node's,
     * "kyufu-node-N" (check_system). */
    uint32_t roles;
    kyufu_storage__handler handler;
    /* Proposed by kyufud itself (the availability ledger): no actor check,
     * audit record or session entry (docs/sla.md: a heartbeat a second
     * must not grow the audit trail); never reachable from an RPC, as no
     * method of service.c names these bodies. */
    bool system;
    uint32_t since;
    /* Identity (issue 8; apply_identity.c, apply_auth_session.c,
     * apply_access.c): proposed by a node for an account.  The handler
     * checks the actor itself (it is the account, an ID administrator or a
     * node, by command); the key's client id must be a node's ("kyufud-",
     * "kyufu-node-"); no duplicate lookup and no session entry (docs/
     * storage.md "Identity commands and idempotency"); audited as usual. */
    bool identity;
};

/* Version 1 is the command set of the first release that recorded versions:
 * every row below without `.since` is part of it. */
#define V1 .since = 1u
/* Identity (issue 8): command-set version 2. */
#define ID_ROW(x, name, fn)                                                  \
    {CASE(x), name, 0, fn, false, KYUFU_IDENTITY_SINCE, true}

static const struct command_def commands[] = {
    {CASE(CREATE_PROGRAM), "CreateProgram", ROLE(APPROVER),
     kyufu_storage__create_program, false, V1},
    {CASE(OPEN_PROGRAM), "OpenProgram", ROLE(APPROVER),
     kyufu_storage__open_program, false, V1},
    {CASE(CLOSE_PROGRAM), "CloseProgram", ROLE(APPROVER),
     kyufu_storage__close_program, false, V1},
    {CASE(ADJUST_BUDGET), "AdjustBudget", ROLE(APPROVER),
     kyufu_storage__adjust_budget, false, V1},
    {CASE(REGISTER_HOUSEHOLD), "RegisterHousehold", ROLE(CLERK),
     kyufu_storage__register_household, false, V1},
    {CASE(UPDATE_HOUSEHOLD), "UpdateHousehold", ROLE(CLERK),
     kyufu_storage__update_household, false, V1},
    /* API contract (issue 14 item 4): the masked, versioned update; audited
     * under the RPC's name like the legacy body it replaces. */
    {CASE(UPDATE_HOUSEHOLD_FIELDS), "UpdateHousehold", ROLE(CLERK),
     kyufu_storage__update_household_fields, false, V1},
    {CASE(SUBMIT_APPLICATION), "SubmitApplication", ROLE(CLERK),
     kyufu_storage__submit_application, false, V1},
    {CASE(APPROVE_APPLICATION), "ApproveApplication", ROLE(APPROVER),
     kyufu_storage__approve_application, false, V1},
    {CASE(REJECT_APPLICATION), "RejectApplication", ROLE(APPROVER),
     kyufu_storage__reject_application, false, V1},
    {CASE(CANCEL_APPLICATION), "CancelApplication", ROLE(CLERK) | ROLE(APPROVER),
     kyufu_storage__cancel_application, false, V1},
    {CASE(CREATE_PAYMENT_BATCH), "CreatePaymentBatch", ROLE(CLERK),
     kyufu_storage__create_payment_batch, false, V1},
    {CASE(CONFIRM_PAYMENT_BATCH), "ConfirmPaymentBatch", ROLE(APPROVER),
     kyufu_storage__confirm_payment_batch, false, V1},
    {CASE(RETURN_PAYMENT), "ReturnPayment", ROLE(CLERK),
     kyufu_storage__return_payment, false, V1},
    {CASE(CREATE_STAFF), "CreateStaff", ROLE(ID_ADMIN),
     kyufu_storage__create_staff, false, V1},
    {CASE(SET_STAFF_ROLES), "SetStaffRoles", ROLE(ID_ADMIN),
     kyufu_storage__set_staff_roles, false, V1},
    {CASE(SET_STAFF_STATUS), "SetStaffStatus", ROLE(ID_ADMIN),
     kyufu_storage__set_staff_status, false, V1},
    /* Anyone who writes may settle a key of their own (apply_settle.c). */
    {CASE(SETTLE_WRITE), "SettleWrite",
     ROLE(ID_ADMIN) | ROLE(CLERK) | ROLE(APPROVER),
     kyufu_storage__settle_write, false, V1},
    /* SLA incidents (apply_incident.c): opened by the leader, closed by an
     * operator. */
    {CASE(OPEN_INCIDENT), "OpenIncident", 0, kyufu_storage__open_incident,
     false, V1},
    {CASE(CLOSE_INCIDENT), "CloseIncident", ROLE(OPERATOR),
     kyufu_storage__close_incident, false, V1},
    /* The availability ledger (apply_availability.c). */
    {CASE(AVAILABILITY_HEARTBEAT), "AvailabilityHeartbeat", 0,
     kyufu_storage__availability_heartbeat, true, V1},
    {CASE(LEADER_CHANGE), "LeaderChange", 0, kyufu_storage__leader_change,
     true, V1},
    {CASE(FAILOVER_INTENT), "FailoverIntent", 0,
     kyufu_storage__failover_intent, true, V1},
    {CASE(DRILL_RESULT), "DrillResult", 0, kyufu_storage__drill_result, true, V1},
    {CASE(DRILL_PROBE), "DrillProbe", ROLE(OPERATOR),
     kyufu_storage__drill_probe, false, V1},
    /* Upgrades (apply_version.c). */
    {CASE(RECORD_VERSIONS), "RecordVersions", 0,
     kyufu_storage__record_versions, false, V1},
    /* Identity and access (issue 8; docs/identity.md), 100-111. */
    ID_ROW(SET_PASSWORD, "SetPassword", kyufu_storage__set_password),
    ID_ROW(OPEN_SESSION, "OpenSession", kyufu_storage__open_session),
    ID_ROW(SIGN_IN_FAILED, "SignInFailed", kyufu_storage__sign_in_failed),
    ID_ROW(CLOSE_SESSION, "CloseSession", kyufu_storage__close_session),
    ID_ROW(TOUCH_SESSIONS, "TouchSessions", kyufu_storage__touch_sessions),
    ID_ROW(ENROLL_TOTP, "EnrollTotp", kyufu_storage__enroll_totp),
    ID_ROW(CONFIRM_TOTP, "ConfirmTotp", kyufu_storage__confirm_totp),
    ID_ROW(UNLOCK_STAFF, "UnlockStaff", kyufu_storage__unlock_staff),
    ID_ROW(RESET_TOTP, "ResetTotp", kyufu_storage__reset_totp),
    ID_ROW(PURGE_STAFF, "PurgeStaff", kyufu_storage__purge_staff),
    ID_ROW(BOOTSTRAP_ADMIN, "BootstrapAdmin", kyufu_storage__bootstrap_admin),
    ID_ROW(RECORD_ACCESS, "RecordAccess", kyufu_storage__record_access),
    /* Decommissioning (issue 12; apply_decommission.c): two operators. */
    {CASE(REQUEST_DECOMMISSION), "RequestDecommission", ROLE(OPERATOR),
     kyufu_storage__request_decommission, false, KYUFU_DECOMMISSION_SINCE, false},
    {CASE(APPROVE_DECOMMISSION), "ApproveDecommission", ROLE(OPERATOR),
     kyufu_storage__approve_decommission, false, KYUFU_DECOMMISSION_SINCE, false},
    /* Scrub (issue 13; apply_scrub.c): the leader's mark; changes nothing
     * (docs/scrub.md). */
    {CASE(SCRUB_MARK), "ScrubMark", 0, kyufu_storage__scrub_mark, true,
     KYUFU_SCRUB_SINCE, false},
    /* Data-key rotation (issue 12; apply_keys.c): an operator rotates; the
     * leader re-encrypts (a system command: no audit record per step). */
    {CASE(ROTATE_KEYS), "RotateKeys", ROLE(OPERATOR),
     kyufu_storage__rotate_keys, false, KYUFU_KEY_ROTATION_SINCE, false},
    {CASE(REENCRYPT), "Reencrypt", 0, kyufu_storage__reencrypt, true,
     KYUFU_KEY_ROTATION_SINCE, false},
#ifdef KYUFU_NEXT_VERSION
    /* The test build's one extra type (kyufud-next; ledger.proto). */
    {CASE(ANNOTATE), "Annotate", ROLE(ID_ADMIN) | ROLE(CLERK) | ROLE(APPROVER),
     kyufu_storage__annotate, false, .since = KYUFU_COMMAND_SET_VERSION + 1u},
#endif
};

uint32_t kyufu_storage_command_version(void)
{
#ifdef KYUFU_NEXT_VERSION
    return KYUFU_COMMAND_SET_VERSION + 1u;
#else
    return KYUFU_COMMAND_SET_VERSION;
#endif
}

uint32_t kyufu_storage_command_since(Kyufu__V1__Command__BodyCase body)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (commands[i].body == body) {
            KYUFU_ASSERT(commands[i].since >= 1 &&
                         commands[i].since <= kyufu_storage_command_version());
            return commands[i].since;
        }
    }
    return 0;
}

static const struct command_def *find_command(const Kyufu__V1__Command *cmd)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (commands[i].body == cmd->body_case) {
            /* protobuf-c sets the case only with the member; be defensive
             * about a hand-built command with a NULL body. */
            return cmd->create_program != NULL ? &commands[i] : NULL;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ result helpers */

int kyufu_storage__reject(struct kyufu_storage__cmd *c,
                          Kyufu__V1__Code code,
                          const char *fmt,
                          ...)
{
    va_list ap;
    KYUFU_ASSERT(code != KYUFU__V1__CODE__OK);
    c->code = code;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
    return 0;
}

void kyufu_storage__set_object(struct kyufu_storage__cmd *c,
                               const char *fmt,
                               ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->object, sizeof c->object, fmt, ap);
    va_end(ap);
}

int kyufu_storage__set_record(struct kyufu_storage__cmd *c,
                              int field,
                              const ProtobufCMessage *m)
{
    KYUFU_ASSERT((field >= 10 && field <= 14) || field == 90 ||
                 field == KYUFU_RESULT_DECOMMISSION);
    KYUFU_ASSERT(c->record == NULL);
    c->record_field = field;
    return kyufu_storage__pack(m, &c->record, &c->record_len);
}

static int grow_array(void **items, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) {
        return 0;
    }
    size_t next = *cap == 0 ? 16 : *cap * 2;
    void *p = realloc(*items, next * size);
    if (p == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    *items = p;
    *cap = next;
    return 0;
}

int kyufu_storage__touch_program(struct kyufu_storage__cmd *c, const char *code)
{
    struct kyufu_storage__touched *t = c->touched;
    int rv = grow_array((void **)&t->programs, &t->cap_programs,
                        t->n_programs, sizeof *t->programs);
    if (rv != 0) {
        return rv;
    }
    t->programs[t->n_programs] = strdup(code);
    if (t->programs[t->n_programs] == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    t->n_programs++;
    return 0;
}

int kyufu_storage__touch_app(struct kyufu_storage__cmd *c, uint64_t id)
{
    struct kyufu_storage__touched *t = c->touched;
    int rv = grow_array((void **)&t->apps, &t->cap_apps, t->n_apps,
                        sizeof *t->apps);
    if (rv == 0) {
        t->apps[t->n_apps++] = id;
    }
    return rv;
}

int kyufu_storage__touch_batch(struct kyufu_storage__cmd *c, uint64_t id)
{
    struct kyufu_storage__touched *t = c->touched;
    int rv = grow_array((void **)&t->batches, &t->cap_batches, t->n_batches,
                        sizeof *t->batches);
    if (rv == 0) {
        t->batches[t->n_batches++] = id;
    }
    return rv;
}

static void touched_free(struct kyufu_storage__touched *t)
{
    for (size_t i = 0; i < t->n_programs; i++) {
        free(t->programs[i]);
    }
    free(t->programs);
    free(t->apps);
    free(t->batches);
    memset(t, 0, sizeof *t);
}

/* Back to the counts of `mark` (taken before a command). */
static void touched_truncate(struct kyufu_storage__touched *t,
                             const struct kyufu_storage__touched *mark)
{
    for (size_t i = mark->n_programs; i < t->n_programs; i++) {
        free(t->programs[i]);
    }
    t->n_programs = mark->n_programs;
    t->n_apps = mark->n_apps;
    t->n_batches = mark->n_batches;
}

/* ------------------------------------------------------------ steps 1-5 */

/* Step 1.  Returns NULL when the header is usable, else the reason. */
static const char *check_header(const Kyufu__V1__Command *cmd)
{
    const Kyufu__V1__CommandHeader *h = cmd->header;
    if (h == NULL) {
        return "missing header";
    }
    /* An access record of an unauthenticated call names no actor. */
    bool anonymous = cmd->body_case == CASE(RECORD_ACCESS) &&
                     h->actor != NULL && h->actor[0] == '\0';
    if (!anonymous && !kyufu_storage__valid_staff_id(h->actor)) {
        return "actor must be 1..64 bytes of [a-z0-9._-]";
    }
    if (!kyufu_storage__valid_text(h->terminal, 0, KYUFU_TERMINAL_BYTES_MAX)) {
        return "terminal must be 0..64 bytes of text";
    }
    if (h->key == NULL ||
        !kyufu_storage__valid_printable(h->key->client_id, 1,
                                        KYUFU_CLIENT_ID_BYTES_MAX) ||
        h->key->sequence == 0) {
        return "idempotency key must have a client_id and a sequence > 0";
    }
    if (h->time_ms <= 0) {
        return "time_ms must be > 0";
    }
    return NULL;
}

/* A copy of a field of an unusable header fit for the audit trail:
 * printable ASCII, other bytes as '?', truncated. */
static void sanitize(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    if (kyufu_storage__valid_text(in, 1, cap - 1)) {
        memcpy(out, in, strlen(in) + 1); /* valid text is kept verbatim */
        return;
    }
    if (in != NULL) {
        for (; in[n] != '\0' && n + 1 < cap; n++) {
            out[n] = in[n] >= 0x20 && in[n] <= 0x7e ? in[n] : '?';
        }
    }
    out[n] = '\0';
}

/* The object a command names, known before any check (empty when the body
 * does not name a valid key; records created with a new id get theirs when
 * the handler creates them). */
static void name_object(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Command *m = c->cmd;
    const char *code = NULL;
    const char *kind = NULL;
    uint64_t id = 0;
    switch (m->body_case) {
    case CASE(CREATE_PROGRAM):
        code = m->create_program->code, kind = "program";
        break;
    case CASE(OPEN_PROGRAM):
        code = m->open_program->code, kind = "program";
        break;
    case CASE(CLOSE_PROGRAM):
        code = m->close_program->code, kind = "program";
        break;
    case CASE(ADJUST_BUDGET):
        code = m->adjust_budget->code, kind = "program";
        break;
    case CASE(REGISTER_HOUSEHOLD):
    case CASE(UPDATE_HOUSEHOLD):
    case CASE(UPDATE_HOUSEHOLD_FIELDS): {
        const Kyufu__V1__Household *h =
            m->body_case == CASE(REGISTER_HOUSEHOLD)
                ? m->register_household->household
            : m->body_case == CASE(UPDATE_HOUSEHOLD)
                ? m->update_household->household
                : m->update_household_fields->household;
        if (h != NULL && kyufu_storage__valid_household_no(h->household_no)) {
            kyufu_storage__set_object(c, "household/%s", h->household_no);
        }
        return;
    }
    case CASE(APPROVE_APPLICATION):
        id = m->approve_application->id, kind = "application";
        break;
    case CASE(REJECT_APPLICATION):
        id = m->reject_application->id, kind = "application";
        break;
    case CASE(CANCEL_APPLICATION):
        id = m->cancel_application->id, kind = "application";
        break;
    case CASE(RETURN_PAYMENT):
        id = m->return_payment->application_id, kind = "application";
        break;
    case CASE(CONFIRM_PAYMENT_BATCH):
        id = m->confirm_payment_batch->id, kind = "batch";
        break;
    case CASE(CREATE_STAFF):
    case CASE(SET_STAFF_ROLES):
    case CASE(SET_STAFF_STATUS): {
        const char *sid = m->body_case == CASE(CREATE_STAFF)
                              ? m->create_staff->staff_id
                          : m->body_case == CASE(SET_STAFF_ROLES)
                              ? m->set_staff_roles->staff_id
                              : m->set_staff_status->staff_id;
        if (kyufu_storage__valid_staff_id(sid)) {
            kyufu_storage__set_object(c, "staff/%s", sid);
        }
        return;
    }
    case CASE(SET_PASSWORD):
    case CASE(SIGN_IN_FAILED):
    case CASE(ENROLL_TOTP):
    case CASE(CONFIRM_TOTP):
    case CASE(UNLOCK_STAFF):
    case CASE(RESET_TOTP):
    case CASE(PURGE_STAFF):
    case CASE(BOOTSTRAP_ADMIN):
    case CASE(OPEN_SESSION): {
        /* The account; OpenSession names its session once it has an id. */
        const char *sid =
            m->body_case == CASE(SET_PASSWORD)      ? m->set_password->staff_id
            : m->body_case == CASE(SIGN_IN_FAILED)  ? m->sign_in_failed->staff_id
            : m->body_case == CASE(ENROLL_TOTP)     ? m->enroll_totp->staff_id
            : m->body_case == CASE(CONFIRM_TOTP)    ? m->confirm_totp->staff_id
            : m->body_case == CASE(UNLOCK_STAFF)    ? m->unlock_staff->staff_id
            : m->body_case == CASE(RESET_TOTP)      ? m->reset_totp->staff_id
            : m->body_case == CASE(PURGE_STAFF)     ? m->purge_staff->staff_id
            : m->body_case == CASE(BOOTSTRAP_ADMIN) ? m->bootstrap_admin->staff_id
                                                    : m->open_session->staff_id;
        if (kyufu_storage__valid_staff_id(sid)) {
            kyufu_storage__set_object(c, "staff/%s", sid);
        }
        return;
    }
    default:
        return;
    }
    if (code != NULL && kyufu_storage__valid_program_code(code)) {
        kyufu_storage__set_object(c, "%s/%s", kind, code);
    } else if (code == NULL && id > 0) {
        kyufu_storage__set_object(c, "%s/%llu", kind, (unsigned long long)id);
    }
}

/* Steps 4 and 5 (and the bootstrap rule).  0 with c->code set. */
static int check_actor(struct kyufu_storage__cmd *c,
                       const struct command_def *def)
{
    Kyufu__V1__StaffAccount *actor = NULL;
    MDB_stat st;
    int mrv = mdb_stat(c->txn, c->s->dbi[KYUFU_DB_STAFF], &st);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (st.ms_entries == 0 && c->identity) {
        /* Identity rules: only BootstrapAdmin makes the first account. */
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "no staff account exists yet (the "
                                     "first ID administrator is made by "
                                     "BootstrapAdmin)");
    }
    if (st.ms_entries == 0) {
        /* The rules of version 1 (a cluster still upgrading). */
        const Kyufu__V1__CreateStaff *cs = c->cmd->create_staff;
        if (def->body == CASE(CREATE_STAFF) && cs->staff_id != NULL &&
            strcmp(cs->staff_id, c->actor) == 0 &&
            cs->roles_mask == ROLE(ID_ADMIN)) {
            return 0; /* bootstrap: the first ID administrator */
        }
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "no staff account exists yet");
    }
    int rv = kyufu_storage__get_staff(c->s, c->txn, c->actor, &actor);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "unknown actor %s", c->actor);
    }
    if (rv != 0) {
        return rv;
    }
    if (actor->status != KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE) {
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                   "actor %s is not active", c->actor);
    } else if ((actor->roles_mask & def->roles) == 0) {
        rv = kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                   "actor %s lacks the role for %s", c->actor,
                                   def->name);
    }
    kyufu__v1__staff_account__free_unpacked(actor, NULL);
    return rv;
}

/* A command type newer than the cluster version: every replica that knows
 * it rejects it alike (the leader refuses it before proposing; this holds
 * should one not).  c->code set when it does. */
static void check_since(struct kyufu_storage__cmd *c,
                        const struct command_def *def)
{
    if (def->since <= c->cluster) {
        return;
    }
    kyufu_storage__reject(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                          "%s needs cluster version %u; the cluster runs "
                          "version %u",
                          def->name, (unsigned)def->since,
                          (unsigned)c->cluster);
}

/* A system command (roles 0) is proposed by a node: its actor names one.
 * No RPC carries one, so this only keeps a hand-made entry out. */
static int check_system(struct kyufu_storage__cmd *c,
                        const struct command_def *def)
{
    static const char prefix[] = "kyufu-node-";
    if (strncmp(c->actor, prefix, sizeof prefix - 1) != 0) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "%s is proposed by a node, not by %s",
                                     def->name, c->actor);
    }
    return 0;
}

/* ------------------------------------------------------------ one command */

/* Encode the result: its scalar fields, then the record (already packed) as
 * the length-delimited oneof field; concatenated encodings merge. */
static int encode_result(const struct kyufu_storage__cmd *c,
                         uint64_t audit_seq,
                         uint8_t **out,
                         size_t *len)
{
    Kyufu__V1__CommandResult r = KYUFU__V1__COMMAND_RESULT__INIT;
    r.code = c->code;
    r.message = (char *)c->message;
    r.object = (char *)c->object;
    r.raft_index = c->index;
    r.audit_seq = audit_seq;
    r.outcome = c->outcome;
    size_t head = protobuf_c_message_get_packed_size(&r.base);
    /* tag (2 bytes for field 90 or 151) + length (at most 10) */
    uint8_t *buf = malloc(head + 12 + c->record_len);
    if (buf == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    protobuf_c_message_pack(&r.base, buf);
    size_t n = head;
    if (c->record != NULL) {
        n += kyufu_pb_varint_put(buf + n, ((uint64_t)c->record_field << 3) | 2);
        n += kyufu_pb_varint_put(buf + n, c->record_len);
        memcpy(buf + n, c->record, c->record_len);
        n += c->record_len;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* The result of a command: `bytes` (taken) with the fields read from `c`. */
static void set_result(struct kyufu_storage_result *out,
                       const struct kyufu_storage__cmd *c,
                       uint8_t *bytes,
                       size_t len)
{
    out->bytes = bytes;
    out->len = len;
    out->code = c->code;
    out->record = c->record != NULL
                      ? (Kyufu__V1__CommandResult__RecordCase)c->record_field
                      : KYUFU__V1__COMMAND_RESULT__RECORD__NOT_SET;
}

Kyufu__V1__CommandResult *kyufu_storage_result_unpack(
    const struct kyufu_storage_result *r)
{
    KYUFU_ASSERT(r != NULL && r->bytes != NULL);
    Kyufu__V1__CommandResult *m =
        kyufu__v1__command_result__unpack(NULL, r->len, r->bytes);
    /* apply wrote these bytes: only memory can fail */
    KYUFU_ASSERT(m == NULL ||
                 (m->code == r->code && m->record_case == r->record));
    return m;
}

/* A duplicate's answer: the first result, kept as stored in the session
 * entry (`stored`, valid in the txn), copied; a SettleWrite asking about an
 * applied key gets it marked WRITE_APPLIED (in the answer only: then
 * re-encoded).  Unpacked once for the fields the caller branches on. */
static int first_result(const MDB_val *stored,
                        bool settle,
                        struct kyufu_storage_result *out)
{
    Kyufu__V1__CommandResult *m =
        kyufu__v1__command_result__unpack(NULL, stored->mv_size,
                                          stored->mv_data);
    if (m == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    bool mark = settle && m->outcome == 0;
    if (mark) {
        m->outcome = KYUFU__V1__WRITE_OUTCOME__WRITE_APPLIED;
    }
    int rv = 0;
    size_t len = mark ? kyufu__v1__command_result__get_packed_size(m)
                      : stored->mv_size;
    uint8_t *bytes = malloc(len > 0 ? len : 1);
    if (bytes == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
    } else {
        if (mark) {
            out->len = kyufu__v1__command_result__pack(m, bytes);
            KYUFU_ASSERT(out->len == len);
        } else { /* the stored bytes as they are: no second encoding */
            memcpy(bytes, stored->mv_data, len);
            out->len = len;
        }
        out->bytes = bytes;
        out->code = m->code;
        out->record = m->record_case;
    }
    kyufu__v1__command_result__free_unpacked(m, NULL);
    return rv;
}

/* A command of kyufud's own (command_def.system): the handler in a nested
 * txn, nothing else.  Its result is not kept (no session entry). */
static int apply_system(struct kyufu_storage__cmd *c,
                        const struct command_def *def,
                        MDB_txn *txn,
                        struct kyufu_storage_result *result)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    KYUFU_ASSERT(def->system && def->roles == 0);
    int rv = kyufu_storage__mdb_error(mdb_txn_begin(c->s->env, txn, 0,
                                                    &c->txn));
    if (rv != 0) {
        return rv;
    }
    rv = def->handler(c);
    if (rv == 0 && c->code == KYUFU__V1__CODE__OK) {
        rv = kyufu_storage__mdb_error(mdb_txn_commit(c->txn));
    } else {
        mdb_txn_abort(c->txn);
    }
    KYUFU_ASSERT(c->record == NULL);
    if (rv == 0) {
        rv = encode_result(c, 0, &bytes, &len);
    }
    if (rv == 0) {
        set_result(result, c, bytes, len);
    }
    return rv;
}

/* Step 2 under the identity rules: the key's owner.  0 with *refused set
 * when the key belongs to another actor or another command (c->code set,
 * nothing returned); otherwise the caller gets the first result. */
static int check_owner(struct kyufu_storage__cmd *c,
                       const struct command_def *def,
                       const struct kyufu_storage__key_owner *owner,
                       const uint8_t digest[32],
                       bool *refused)
{
    bool settle = def != NULL && def->body == CASE(SETTLE_WRITE);
    switch (kyufu_storage__owner_verdict(owner, c->actor, digest, settle)) {
    case KYUFU_STORAGE_KEY_OTHER_ACTOR:
        *refused = true;
        return kyufu_storage__reject(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                     "idempotency key belongs to another "
                                     "account");
    case KYUFU_STORAGE_KEY_OTHER_COMMAND:
        *refused = true;
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "key already used for another command");
    default:
        *refused = false;
        return 0;
    }
}

/* The opened (sealed) result part of a session entry, wiped: it holds the
 * record, personal data. */
static void drop_opened(uint8_t *opened, size_t len)
{
    if (opened != NULL) {
        kyufu_storage_crypto_wipe(opened, len);
        free(opened);
    }
}

static int apply_command(struct kyufu_storage *s,
                         MDB_txn *txn,
                         uint64_t index,
                         const Kyufu__V1__Command *cmd,
                         struct kyufu_storage__touched *touched,
                         struct kyufu_storage_result *result)
{
    struct kyufu_storage__cmd c = {0};
    struct kyufu_storage__audit_in audit = {0};
    const struct command_def *def = find_command(cmd);
    const char *bad_header = check_header(cmd);
    char actor[KYUFU_ACTOR_BYTES_MAX + 1];
    char terminal[KYUFU_TERMINAL_BYTES_MAX + 1];
    char client[KYUFU_CLIENT_ID_BYTES_MAX + 1];
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    MDB_val first;
    const Kyufu__V1__CommandHeader *h = NULL;
    struct kyufu_storage__touched mark;
    struct kyufu_storage__key_owner owner;
    bool keyless = false;   /* an identity command: no session entry */
    bool refused = false;   /* the key is another's: no session entry */
    int rv;

    c.s = s;
    c.index = index;
    c.cmd = cmd;
    c.touched = touched;
    c.code = KYUFU__V1__CODE__OK;
    audit.raft_index = index;
    audit.command = def != NULL ? def->name : "Unknown";

    if (bad_header != NULL) {
        /* Step 1: audited with whatever the header had; no session entry
         * (there is no usable key to keep it under). */
        h = cmd->header;
        sanitize(h != NULL ? h->actor : NULL, actor, sizeof actor);
        sanitize(h != NULL ? h->terminal : NULL, terminal, sizeof terminal);
        sanitize(h != NULL && h->key != NULL ? h->key->client_id : NULL,
                 client, sizeof client);
        audit.time_ms = h != NULL ? h->time_ms : 0;
        audit.actor = actor;
        audit.terminal = terminal;
        audit.client_id = client;
        audit.client_seq = h != NULL && h->key != NULL ? h->key->sequence : 0;
        kyufu_storage__reject(&c, KYUFU__V1__CODE__INVALID_ARGUMENT, "%s",
                              bad_header);
        goto audit;
    }

    h = cmd->header;
    c.actor = h->actor;
    c.now_ms = h->time_ms;
    if (def != NULL && def->system) {
        return apply_system(&c, def, txn, result);
    }
    audit.time_ms = h->time_ms;
    audit.actor = h->actor;
    audit.terminal = h->terminal;
    audit.client_id = h->key->client_id;
    audit.client_seq = h->key->sequence;

    rv = kyufu_storage__cluster_version_get(s, txn, &c.cluster);
    if (rv != 0) {
        return rv;
    }
    c.identity = c.cluster >= KYUFU_IDENTITY_SINCE;
    c.admin_pair = c.cluster >= KYUFU_ADMIN_PAIR_SINCE;
    keyless = def != NULL && def->identity;
    uint8_t digest[32];
    memset(&owner, 0, sizeof owner);
    if (c.identity && !keyless) {
        rv = kyufu_storage_command_digest(cmd, digest);
        if (rv != 0) {
            return rv;
        }
        snprintf(owner.actor, sizeof owner.actor, "%s", h->actor);
        owner.has_owner = true;
        if (def != NULL && def->body == CASE(SETTLE_WRITE)) {
            memset(owner.digest, 0, 32); /* a fence: any command */
        } else {
            memcpy(owner.digest, digest, 32);
        }
    }

    /* Step 2: a duplicate gets the first result and writes nothing
     * (identity: only its owner, and only for the same command). */
    if (!keyless) {
        struct kyufu_storage__key_owner stored;
        uint8_t *opened = NULL; /* the result part, when it was sealed */
        rv = kyufu_storage__session_get_owned(s, txn, h->key->client_id,
                                              h->key->sequence, h->time_ms,
                                              &first, &stored, &opened);
        if (rv == 0 && c.identity) {
            rv = check_owner(&c, def, &stored, digest, &refused);
            if (rv != 0 || refused) {
                drop_opened(opened, first.mv_size);
            }
            if (rv != 0) {
                return rv;
            }
            if (refused) {
                name_object(&c);
                goto audit; /* audited; not returned, nothing stored */
            }
        }
        if (rv == 0) {
            /* Settling a key that was applied: its first result, marked
             * (in the answer only; the stored entry is unchanged). */
            rv = first_result(
                &first, def != NULL && def->body == CASE(SETTLE_WRITE), result);
            drop_opened(opened, first.mv_size);
            return rv;
        }
        if (rv != KYUFU_STORAGE_ENOTFOUND) {
            return rv;
        }
    }
    rv = kyufu_storage__session_prune(s, txn, h->time_ms);
    if (rv != 0) {
        return rv;
    }

    mark = *touched;
    int mrv = mdb_txn_begin(s->env, txn, 0, &c.txn);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    if (def == NULL) { /* step 3 */
        kyufu_storage__reject(&c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                              "unknown command");
        rv = 0;
    } else {
        name_object(&c);
        check_since(&c, def); /* step 3, upgrades */
        rv = 0;
        if (c.code == KYUFU__V1__CODE__OK && def->identity &&
            !kyufu_storage__is_node_name(h->key->client_id)) {
            kyufu_storage__reject(&c, KYUFU__V1__CODE__PERMISSION_DENIED,
                                  "%s is proposed by a node (key client "
                                  "id kyufud-* or kyufu-node-*)",
                                  def->name);
        }
        if (rv == 0 && c.code == KYUFU__V1__CODE__OK && !def->identity) {
            rv = def->roles == 0 ? check_system(&c, def)
                                 : check_actor(&c, def); /* steps 4, 5 */
        }
        if (rv == 0 && c.code == KYUFU__V1__CODE__OK) {
            rv = def->handler(&c); /* steps 6, 7 */
        }
    }
    if (rv != 0) {
        mdb_txn_abort(c.txn);
        goto err;
    }
    if (c.code == KYUFU__V1__CODE__OK || c.keep_on_reject) {
        KYUFU_ASSERT(c.code != KYUFU__V1__CODE__OK || c.message[0] == '\0');
        KYUFU_ASSERT(!c.keep_on_reject || def->identity ||
                     def->body == CASE(CREATE_STAFF) ||
                     def->body == CASE(SET_STAFF_ROLES) ||
                     def->body == CASE(SET_STAFF_STATUS));
        mrv = mdb_txn_commit(c.txn);
        if (mrv != 0) {
            rv = kyufu_storage__mdb_error(mrv);
            goto err;
        }
    } else {
        /* A rejected command changes nothing but audit and session; forget
         * what it touched, as those writes are gone with its txn. */
        mdb_txn_abort(c.txn);
        touched_truncate(touched, &mark);
    }
    if (c.code != KYUFU__V1__CODE__OK) {
        free(c.record);
        c.record = NULL;
        c.record_field = 0;
    }

audit:
    KYUFU_ASSERT(c.outcome == 0 ||
                 (def != NULL && def->body == CASE(SETTLE_WRITE) &&
                  c.code == KYUFU__V1__CODE__ABORTED));
    audit.object = c.object;
    audit.outcome = c.audit_set ? c.audit_code : c.code;
    audit.message = c.audit_set ? c.audit_message : c.message;
    audit.objects = c.audit_objects;
    audit.n_objects = c.n_audit_objects;
    rv = kyufu_storage__audit_append(s, txn, &audit, &seq);
    if (rv != 0) {
        goto err;
    }
    rv = encode_result(&c, seq, &bytes, &len);
    if (rv != 0) {
        goto err;
    }
    /* A SettleWrite stores its fence; one rejected before its handler
     * (actor, role) stores nothing, so it settles nothing.  An identity
     * command stores none (keyless), nor does a key refused as another's
     * (its owner's entry stays). */
    if (bad_header == NULL && !keyless && !refused &&
        (def == NULL || def->body != CASE(SETTLE_WRITE) ||
         c.outcome != KYUFU__V1__WRITE_OUTCOME__WRITE_OUTCOME_UNSPECIFIED)) {
        rv = kyufu_storage__session_put(s, txn, h->key->client_id,
                                        h->key->sequence, h->time_ms,
                                        c.identity ? &owner : NULL, bytes,
                                        len);
        if (rv != 0) {
            goto err_after_encode;
        }
    }
    set_result(result, &c, bytes, len); /* the bytes the session keeps */
    free(c.record);
    return 0;

err_after_encode:
    free(bytes);
err:
    free(c.record);
    KYUFU_ASSERT(rv != 0);
    return rv;
}

/* ------------------------------------------------------------ the batch */

static void results_clear(struct kyufu_storage_results *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i].bytes);
    }
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

void kyufu_storage_results_free(struct kyufu_storage_results *results)
{
    if (results != NULL) {
        results_clear(results);
    }
}

/* The availability ledger sees every entry's leader-stamped times (the
 * first and last of its commands with a usable header time). */
static int observe_times(struct kyufu_storage *s,
                         MDB_txn *txn,
                         uint64_t term,
                         const Kyufu__V1__CommandBatch *batch,
                         int64_t *newest_ms)
{
    int64_t first = 0, last = 0;
    size_t n = batch != NULL ? batch->n_commands : 0;
    for (size_t i = 0; i < n; i++) {
        const Kyufu__V1__CommandHeader *h = batch->commands[i]->header;
        if (h == NULL || h->time_ms <= 0) {
            continue;
        }
        if (first == 0) {
            first = h->time_ms;
        }
        if (h->time_ms > last) {
            last = h->time_ms;
        }
    }
    *newest_ms = last;
    if (first == 0) {
        return 0;
    }
    /* The newest entry's, in log order (not the largest seen: one stamp
     * of a clock that was wrong must not stand for the rest of the term).
     * Set before the txn commits: if it does not, the node stops (a failed
     * apply is fatal), so nobody reads a stamp that was not applied. */
    if (term >= s->stamp_last_term) {
        s->stamp_last_ms = last; /* the batch's largest: >= first */
        s->stamp_last_term = term;
    }
    return kyufu_storage__availability_observe(s, txn, term, first, last);
}

/* One attempt at the whole entry.  On any error nothing is committed. */
static int apply_once(struct kyufu_storage *s,
                      uint64_t index,
                      uint64_t term,
                      const Kyufu__V1__CommandBatch *batch,
                      struct kyufu_storage_results *results,
                      struct kyufu_storage__touched *touched,
                      uint64_t *audit_before,
                      struct kyufu_storage__versions *versions,
                      char *errmsg,
                      size_t errmsg_len)
{
    MDB_txn *txn;
    size_t n = batch != NULL ? batch->n_commands : 0;
    int rv;
    int mrv = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "begin: %s",
                              mdb_strerror(mrv));
        goto err;
    }
    rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_AUDIT_SEQ,
                                     audit_before);
    if (rv != 0) {
        goto err_after_begin;
    }
    if (n > 0) {
        results->items = calloc(n, sizeof *results->items);
        if (results->items == NULL) {
            rv = KYUFU_STORAGE_ENOMEM;
            goto err_after_begin;
        }
    }
    int64_t newest_ms = 0;
    rv = observe_times(s, txn, term, batch, &newest_ms);
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "availability: %s",
                              kyufu_storage_strerror(rv));
        goto err_after_begin;
    }
    for (size_t i = 0; i < n; i++) {
        rv = apply_command(s, txn, index, batch->commands[i], touched,
                           &results->items[i]);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len, "command %zu: %s", i,
                                  kyufu_storage_strerror(rv));
            goto err_after_begin;
        }
        results->n = i + 1;
    }
    if (batch != NULL && s->has_cmk) {
        rv = kyufu_storage__seals_count(s, txn, index, newest_ms);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len, "seal count: %s",
                                  kyufu_storage_strerror(rv));
            goto err_after_begin;
        }
    }
    rv = kyufu_storage__meta_put_u64(s, txn, KYUFU_META_APPLIED_INDEX, index);
    if (rv == 0) {
        rv = kyufu_storage__meta_put_u64(s, txn, KYUFU_META_APPLIED_TERM,
                                         term);
    }
    /* The only command that changes the versions: refill their cache. */
    bool versions_changed = false;
    for (size_t i = 0; i < n && rv == 0 && !versions_changed; i++) {
        versions_changed = batch->commands[i]->body_case ==
                           CASE(RECORD_VERSIONS);
    }
    if (rv == 0 && versions_changed) {
        rv = kyufu_storage__versions_read(s, txn, versions);
    }
    if (rv != 0) {
        goto err_after_begin;
    }
    mrv = mdb_txn_commit(txn);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "commit: %s",
                              mdb_strerror(mrv));
        /* A failed commit other than a full map is fatal, never retried. */
        if (rv != KYUFU_STORAGE_EMAP_FULL) {
            rv = KYUFU_STORAGE_EIO;
        }
        goto err;
    }
    return 0;

err_after_begin:
    mdb_txn_abort(txn);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}

int kyufu_storage_apply(struct kyufu_storage *s,
                        uint64_t index,
                        uint64_t term,
                        const Kyufu__V1__CommandBatch *batch,
                        struct kyufu_storage_results *results,
                        char *errmsg,
                        size_t errmsg_len)
{
    struct kyufu_storage__touched touched = {0};
    struct kyufu_storage__versions versions = {0};
    struct kyufu_storage_results local = {0};
    uint64_t audit_before = 0;
    int rv;

    KYUFU_ASSERT(s != NULL);
    if (results == NULL) {
        results = &local;
    }
    results->n = 0;
    results->items = NULL;
    if (index == 0 || index <= s->applied_index) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "entry %llu is not after applied %llu",
                              (unsigned long long)index,
                              (unsigned long long)s->applied_index);
        return KYUFU_STORAGE_ESTALE;
    }
    /* An entry from a newer command set stops this node, unapplied. */
    rv = kyufu_storage__check_known(batch, index, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__env_gone(s, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    if (s->renew_pending) { /* a restore's, deferred by a snapshot */
        rv = kyufu_storage__env_renew(s, errmsg, errmsg_len);
        if (rv != 0) {
            return rv;
        }
    }
    /* RotateKeys raises the cached active version as it applies (the
     * entry's later seals use it); an entry not committed puts it back. */
    uint32_t keys_before = s->keys_active;
    for (;;) {
        s->keys_active = keys_before;
        rv = kyufu_storage__grow_if_needed(s);
        if (rv != 0) {
            break;
        }
        kyufu_storage__seal_begin(s, index,
                                  batch != NULL ? batch->salt.data : NULL,
                                  batch != NULL ? batch->salt.len : 0);
        rv = apply_once(s, index, term, batch, results, &touched,
                        &audit_before, &versions, errmsg, errmsg_len);
        kyufu_storage__seal_end(s);
        if (rv != KYUFU_STORAGE_EMAP_FULL) {
            break;
        }
        free(versions.voters);
        memset(&versions, 0, sizeof versions);
        results_clear(results);
        touched_free(&touched);
        rv = kyufu_storage__grow(s);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "map full at %zu bytes (ceiling %zu)",
                                  s->map_size_bytes, s->map_size_bytes_max);
            break;
        }
    }
    if (rv == 0) {
        if (!s->no_sync) {
            /* This commit's fdatasync (MDB_NOMETASYNC: data pages only)
             * also flushed the previous commit's meta page, written to the
             * same file: the store reopens at least there (sync.c). */
            kyufu_storage__durable_raise(s, s->applied_index);
        }
        s->applied_index = index;
        s->applied_term = term;
        if (versions.cluster != 0) { /* read: a RecordVersions committed */
            KYUFU_ASSERT(versions.cluster >= s->versions.cluster);
            kyufu_storage__versions_set(s, &versions);
        }
        kyufu_storage__check_touched(s, &touched, audit_before);
    } else {
        s->keys_active = keys_before;
        results_clear(results);
    }
    free(versions.voters); /* NULL unless the entry failed after its read */
    touched_free(&touched);
    if (results == &local) {
        results_clear(&local);
    }
    return rv;
}

int kyufu_storage_apply_bytes(struct kyufu_storage *s,
                              uint64_t index,
                              uint64_t term,
                              const uint8_t *buf,
                              size_t len,
                              struct kyufu_storage_results *results,
                              char *errmsg,
                              size_t errmsg_len)
{
    Kyufu__V1__CommandBatch *batch =
        kyufu__v1__command_batch__unpack(NULL, len, buf);
    /* Malformed bytes: every node sees the same, so apply an empty batch. */
    int rv = kyufu_storage_apply(s, index, term, batch, results, errmsg,
                                 errmsg_len);
    if (batch != NULL) {
        kyufu__v1__command_batch__free_unpacked(batch, NULL);
    }
    return rv;
}

int kyufu_storage_apply_noop(struct kyufu_storage *s,
                             uint64_t index,
                             uint64_t term,
                             char *errmsg,
                             size_t errmsg_len)
{
    struct kyufu_storage_results r = {0};
    int rv = kyufu_storage_apply(s, index, term, NULL, &r, errmsg, errmsg_len);
    KYUFU_ASSERT(r.n == 0);
    return rv;
}
