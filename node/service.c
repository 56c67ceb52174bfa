/* The method table and the common entry point of every call: who is
 * calling (auth.h: no or a bad token -> UNAUTHENTICATED), may they
 * (permissions.h: PERMISSION_DENIED naming the method and the role), then
 * unpack the request (invalid protobuf -> INVALID_ARGUMENT) and hand it to
 * its kind.  This is the one place calls are authorized: no handler runs
 * for a call the table refuses. */
#include "service.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "auth_node.h"
#include "decommission.h"
#include "limits.h"
#include "log.h"
#include "oplog.h"
#include "permissions.h"

/* Writes: one typed row per method.  WRITE_DEF(Rpc, rpc, field, CASE)
 * makes rpc_write for the request Kyufu__V1__<Rpc>Request (descriptor
 * kyufu__v1__<rpc>_request__descriptor) whose command becomes
 * Command.<field>, body case KYUFU__V1__COMMAND__BODY_<CASE>.  The
 * accessors assign between typed pointers, so a request whose command is
 * not of <field>'s type does not compile (-Werror); the case is checked
 * against <field>'s number when the table is built (kyufu_node__methods).
 * No field is looked up by name and nothing is written through an
 * offset. */
#define WRITE_DEF(Rpc, rpc, field, CASE_)                                     \
    static const Kyufu__V1__RequestHeader *rpc##_header(                      \
        const ProtobufCMessage *m)                                           \
    {                                                                        \
        assert(m->descriptor == &kyufu__v1__##rpc##_request__descriptor);    \
        return ((const Kyufu__V1__##Rpc##Request *)m)->header;               \
    }                                                                        \
    static bool rpc##_body(const ProtobufCMessage *m,                         \
                           Kyufu__V1__Command *cmd)                          \
    {                                                                        \
        assert(m->descriptor == &kyufu__v1__##rpc##_request__descriptor);    \
        const Kyufu__V1__##Rpc##Request *r =                                 \
            (const Kyufu__V1__##Rpc##Request *)m;                            \
        if (r->command == NULL) {                                            \
            return false;                                                    \
        }                                                                    \
        cmd->body_case = KYUFU__V1__COMMAND__BODY_##CASE_;                   \
        cmd->field = r->command;                                             \
        return true;                                                         \
    }                                                                        \
    static const struct kyufu_node_write_def rpc##_write = {                 \
        &kyufu__v1__##rpc##_request__descriptor,                             \
        KYUFU__V1__COMMAND__BODY_##CASE_, #field, rpc##_header, rpc##_body}

WRITE_DEF(CreateProgram, create_program, create_program, CREATE_PROGRAM);
WRITE_DEF(OpenProgram, open_program, open_program, OPEN_PROGRAM);
WRITE_DEF(CloseProgram, close_program, close_program, CLOSE_PROGRAM);
WRITE_DEF(AdjustBudget, adjust_budget, adjust_budget, ADJUST_BUDGET);
WRITE_DEF(RegisterHousehold, register_household, register_household,
          REGISTER_HOUSEHOLD);
/* API contract (issue 14 item 4): the RPC's body is the masked update. */
WRITE_DEF(UpdateHousehold, update_household, update_household_fields,
          UPDATE_HOUSEHOLD_FIELDS);
WRITE_DEF(SubmitApplication, submit_application, submit_application,
          SUBMIT_APPLICATION);
WRITE_DEF(ApproveApplication, approve_application, approve_application,
          APPROVE_APPLICATION);
WRITE_DEF(RejectApplication, reject_application, reject_application,
          REJECT_APPLICATION);
WRITE_DEF(CancelApplication, cancel_application, cancel_application,
          CANCEL_APPLICATION);
WRITE_DEF(CreatePaymentBatch, create_payment_batch, create_payment_batch,
          CREATE_PAYMENT_BATCH);
WRITE_DEF(ConfirmPaymentBatch, confirm_payment_batch, confirm_payment_batch,
          CONFIRM_PAYMENT_BATCH);
WRITE_DEF(ReturnPayment, return_payment, return_payment, RETURN_PAYMENT);
WRITE_DEF(CreateStaff, create_staff, create_staff, CREATE_STAFF);
WRITE_DEF(SetStaffRoles, set_staff_roles, set_staff_roles, SET_STAFF_ROLES);
WRITE_DEF(SetStaffStatus, set_staff_status, set_staff_status, SET_STAFF_STATUS);
WRITE_DEF(CloseIncident, close_incident, close_incident, CLOSE_INCIDENT);
WRITE_DEF(DrillProbe, drill_probe, drill_probe, DRILL_PROBE);
/* Decommissioning (docs/decommission.md). */
WRITE_DEF(RequestDecommission, request_decommission, request_decommission,
          REQUEST_DECOMMISSION);
WRITE_DEF(ApproveDecommission, approve_decommission, approve_decommission,
          APPROVE_DECOMMISSION);
/* Data-key rotation (docs/encryption.md "Rotation"). */
WRITE_DEF(RotateKeys, rotate_keys, rotate_keys, ROTATE_KEYS);
#ifdef KYUFU_NEXT_VERSION
WRITE_DEF(Annotate, annotate, annotate, ANNOTATE);
#endif
#undef WRITE_DEF

#define LEDGER "/kyufu.v1.Ledger/"
#define W(name, rpc)                                                         \
    {LEDGER name, KYUFU_NODE_WRITE, &kyufu__v1__##rpc##_request__descriptor, \
     &rpc##_write, NULL}
#define AUTH "/kyufu.v1.Auth/"
#define A(name, desc)                                                        \
    {AUTH name, KYUFU_NODE_AUTH, &kyufu__v1__##desc##__descriptor, NULL, NULL}
#define R(name, desc, fn)                                                    \
    {LEDGER name, KYUFU_NODE_READ, &kyufu__v1__##desc##__descriptor, NULL,   \
     kyufu_node__##fn}

static const struct kyufu_node_method table[] = {
    W("CreateProgram", create_program),
    W("OpenProgram", open_program),
    W("CloseProgram", close_program),
    W("AdjustBudget", adjust_budget),
    W("RegisterHousehold", register_household),
    W("UpdateHousehold", update_household),
    W("SubmitApplication", submit_application),
    W("ApproveApplication", approve_application),
    W("RejectApplication", reject_application),
    W("CancelApplication", cancel_application),
    W("CreatePaymentBatch", create_payment_batch),
    W("ConfirmPaymentBatch", confirm_payment_batch),
    W("ReturnPayment", return_payment),
    W("CreateStaff", create_staff),
    W("SetStaffRoles", set_staff_roles),
    W("SetStaffStatus", set_staff_status),
    {LEDGER "SettleWrite", KYUFU_NODE_SETTLE,
     &kyufu__v1__settle_write_request__descriptor, NULL, NULL},
#ifdef KYUFU_NEXT_VERSION
    /* Upgrades: the test build's extra command (docs/operations.md
     * "Upgrades"); kyufud answers UNIMPLEMENTED. */
    W("Annotate", annotate),
#endif
    R("GetProgram", get_program_request, get_program),
    R("GetHousehold", get_household_request, get_household),
    R("GetApplication", get_application_request, get_application),
    R("GetPaymentBatch", get_payment_batch_request, get_batch),
    R("GetStaff", get_staff_request, get_staff),
    R("ListPrograms", list_request, list_programs),
    R("ListHouseholds", list_request, list_households),
    R("ListApplications", list_applications_request, list_applications),
    R("ListPaymentBatches", list_request, list_batches),
    R("ListStaff", list_request, list_staff),
    R("ListAudit", list_request, list_audit),
    R("VerifyAudit", verify_audit_request, verify_audit),
    {"/kyufu.v1.Cluster/Status", KYUFU_NODE_STATUS,
     &kyufu__v1__status_request__descriptor, NULL, NULL},
    {"/kyufu.v1.Cluster/TransferLeadership", KYUFU_NODE_TRANSFER,
     &kyufu__v1__transfer_leadership_request__descriptor, NULL, NULL},
    {"/kyufu.v1.Cluster/PowerEvent", KYUFU_NODE_POWER_EVENT,
     &kyufu__v1__power_event_request__descriptor, NULL, NULL},
    /* SLA incidents (docs/sla.md): a read and an operator's write. */
    {"/kyufu.v1.Cluster/ListIncidents", KYUFU_NODE_READ,
     &kyufu__v1__list_incidents_request__descriptor, NULL,
     kyufu_node__list_incidents},
    {"/kyufu.v1.Cluster/CloseIncident", KYUFU_NODE_WRITE,
     &kyufu__v1__close_incident_request__descriptor, &close_incident_write,
     NULL},
    /* Membership (service_membership.c). */
    {"/kyufu.v1.Cluster/AddNode", KYUFU_NODE_ADD_NODE,
     &kyufu__v1__add_node_request__descriptor, NULL, NULL},
    {"/kyufu.v1.Cluster/RemoveNode", KYUFU_NODE_REMOVE_NODE,
     &kyufu__v1__remove_node_request__descriptor, NULL, NULL},
    /* SLA: availability ledger and drills (slacore). */
    W("DrillProbe", drill_probe),
    {"/kyufu.v1.Cluster/GetAvailability", KYUFU_NODE_GET_AVAILABILITY,
     &kyufu__v1__get_availability_request__descriptor, NULL, NULL},
    {"/kyufu.v1.Cluster/Drill", KYUFU_NODE_DRILL,
     &kyufu__v1__drill_request__descriptor, NULL, NULL},
    /* Backups (issue 12, h/backup; service_backup.c). */
    {"/kyufu.v1.Cluster/CreateBackup", KYUFU_NODE_CREATE_BACKUP,
     &kyufu__v1__create_backup_request__descriptor, NULL, NULL},
    /* Identity (issue 8): the Auth service (auth_service.c). */
    A("SignIn", sign_in_request),
    A("SignOut", sign_out_request),
    A("WhoAmI", who_am_irequest),
    A("ChangePassword", change_password_request),
    A("EnrollTotp", enroll_totp_request),
    A("ConfirmTotp", confirm_totp_request),
    A("ResetPassword", reset_password_request),
    A("UnlockStaff", unlock_staff_request),
    A("ResetTotp", reset_totp_request),
    /* Decommissioning (decommission.c, docs/decommission.md): two
     * operators' writes, the read, and the erasure of the node called. */
    {"/kyufu.v1.Cluster/RequestDecommission", KYUFU_NODE_WRITE,
     &kyufu__v1__request_decommission_request__descriptor,
     &request_decommission_write, NULL},
    {"/kyufu.v1.Cluster/ApproveDecommission", KYUFU_NODE_WRITE,
     &kyufu__v1__approve_decommission_request__descriptor,
     &approve_decommission_write, NULL},
    {"/kyufu.v1.Cluster/GetDecommission", KYUFU_NODE_READ,
     &kyufu__v1__get_decommission_request__descriptor, NULL,
     kyufu_node__get_decommission},
    {"/kyufu.v1.Cluster/EraseNode", KYUFU_NODE_ERASE_NODE,
     &kyufu__v1__erase_node_request__descriptor, NULL, NULL},
    /* Data-key rotation (keys_rotate.c, docs/encryption.md "Rotation"):
     * an operator's write, and the status of the node called (its own
     * store: the census must count each replica's values, so it is never
     * forwarded to the leader as reads are). */
    {"/kyufu.v1.Cluster/RotateKeys", KYUFU_NODE_WRITE,
     &kyufu__v1__rotate_keys_request__descriptor, &rotate_keys_write, NULL},
    {"/kyufu.v1.Cluster/GetKeyStatus", KYUFU_NODE_KEY_STATUS,
     &kyufu__v1__get_key_status_request__descriptor, NULL, NULL},
    /* Follower refusals (issue 8 item 7): node to node only. */
    {"/kyufu.v1.NodeInternal/ReportRefusals", KYUFU_NODE_REPORT_REFUSALS,
     &kyufu__v1__report_refusals_request__descriptor, NULL, NULL},
    /* Encryption keys (issue 12): a joining node's cluster key. */
    {"/kyufu.v1.NodeInternal/FetchClusterKey", KYUFU_NODE_FETCH_CLUSTER_KEY,
     &kyufu__v1__fetch_cluster_key_request__descriptor, NULL, NULL},
    /* Scrub (issue 13): a voter's last state digests. */
    {"/kyufu.v1.NodeInternal/ScrubDigests", KYUFU_NODE_SCRUB_DIGESTS,
     &kyufu__v1__scrub_digests_request__descriptor, NULL, NULL},
};
#undef A
#undef AUTH
#undef W
#undef R
#undef LEDGER

enum { N_METHODS = sizeof table / sizeof table[0] };
_Static_assert(N_METHODS <= KYUFU_NODE_METRICS_METHODS_MAX,
               "the metrics count every method of the table");

size_t kyufu_node__methods_count(void)
{
    return N_METHODS;
}

const char *kyufu_node__method_path(size_t i)
{
    assert(i < N_METHODS);
    return table[i].path;
}

int kyufu_node__method_index(const char *path)
{
    for (size_t i = 0; i < N_METHODS; i++) {
        if (strcmp(table[i].path, path) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* What a row of the API server's table carries: the node and the method. */
struct bound
{
    struct kyufu_node *node;
    const struct kyufu_node_method *method;
};

/* The calls a node answers about itself (its Status, availability, power
 * event): never forwarded to the leader. */
static bool node_local(const struct kyufu_node_call *c)
{
    switch (c->method->kind) {
    case KYUFU_NODE_STATUS:
    case KYUFU_NODE_POWER_EVENT:
    case KYUFU_NODE_GET_AVAILABILITY:
    case KYUFU_NODE_ERASE_NODE:
        return true;
    default:
        return false;
    }
}

static int authorize(struct kyufu_node_call *c, unsigned waited);
static void serve(struct kyufu_node_call *c);

/* A node-local call on a follower that lags a sign-in waits for its apply
 * to catch up: KYUFU_NODE_AUTH_LAG_WAIT_MS at a time, at most
 * KYUFU_NODE_AUTH_LAG_WAITS times, then the session is refused as
 * unknown.  The call stays valid while it waits, cancelled or not (grpc.h). */
struct lag_wait
{
    uv_timer_t timer; /* first: the handle is the struct */
    struct kyufu_node_call *c;
    unsigned waited;
};

static void lag_wait_closed(uv_handle_t *h)
{
    free(h->data);
}

static void lag_wait_fire(uv_timer_t *t)
{
    struct lag_wait *w = t->data;
    struct kyufu_node_call *c = w->c;
    unsigned waited = w->waited + 1;
    uv_close((uv_handle_t *)&w->timer, lag_wait_closed);
    struct kyufu_node *n = c->node;
    if (!kyufu_node__taking_calls(n)) {
        kyufu_node__call_unavailable(c, "node is stopping");
        return;
    }
    if (authorize(c, waited) == 0) {
        serve(c);
    }
}

static int lag_wait(struct kyufu_node_call *c, unsigned waited)
{
    struct lag_wait *w = malloc(sizeof *w);
    if (w == NULL) {
        return -1;
    }
    w->c = c;
    w->waited = waited;
    int rv = uv_timer_init(&c->node->loop, &w->timer);
    assert(rv == 0); /* cannot fail for a timer */
    (void)rv;
    w->timer.data = w;
    uv_timer_start(&w->timer, lag_wait_fire, KYUFU_NODE_AUTH_LAG_WAIT_MS, 0);
    return 0;
}

/* Authenticate the caller into c->principal and check the permission
 * table.  0 to go on; -1 when the call was answered (refused) or is on
 * its way (forwarded, or waiting for this follower to apply a sign-in).
 * `waited`: how many lag waits this call has had.  A method
 * that needs no session (PUBLIC, or LOCAL from this host) goes on as
 * nobody when the token it carries is bad: a stale token must not keep
 * anyone from signing in again. */
static int authorize(struct kyufu_node_call *c, unsigned waited)
{
    struct kyufu_node *n = c->node;
    const struct kyufu_grpc_call *call = c->call;
    const char *path = c->method->path;
    const struct kyufu_node_permission *row = kyufu_node__permission(path);
    assert(row != NULL); /* kyufu_node__methods checked every row */
    bool own_host =
        (row->who & KYUFU_PERM_LOCAL) != 0 &&
        kyufu_node__from_own_host(n->config->api_address, call->peer_address);
    bool open = (row->who & KYUFU_PERM_PUBLIC) != 0 || own_host;
    char msg[256];
    msg[0] = '\0';
    const char *leader_api = "";
    int code = kyufu_node__authenticate(n, call, &c->principal, msg,
                                        sizeof msg);
    if ((code == KYUFU_GRPC_UNAUTHENTICATED ||
         code == KYUFU_GRPC_UNAVAILABLE) && c->principal.unknown_here &&
        !open) {
        /* A session this node does not hold may be one it has not applied
         * yet.  On a follower that knows the leader, for a call not
         * forwarded already: */
        bool follower = kyufu_node__forward_leader(c, &leader_api) != 0;
        if (follower && !node_local(c)) {
            /* The leader, which answered the sign-in, checks the session
             * (auth.c). */
            kyufu_node__forward(c);
            return -1;
        }
        /* Or this node waits for its own apply: a follower serving the
         * call itself, a leader still applying its log, a node knowing no
         * leader yet (UNAVAILABLE, auth.h); then it answers. */
        if ((follower || code == KYUFU_GRPC_UNAVAILABLE) &&
            waited < KYUFU_NODE_AUTH_LAG_WAITS && lag_wait(c, waited) == 0) {
            return -1; /* pending: lag_wait_fire goes on */
        }
    }
    if (code != KYUFU_GRPC_OK && open) {
        memset(&c->principal, 0, sizeof c->principal);
        c->principal.kind = KYUFU_PRINCIPAL_NONE;
        code = KYUFU_GRPC_OK;
    }
    if (code == KYUFU_GRPC_OK) {
        code = kyufu_node__permit(path, &c->principal, own_host, msg,
                                  sizeof msg);
    }
    if (code == KYUFU_GRPC_OK) {
        return 0;
    }
    if (code != KYUFU_GRPC_UNAUTHENTICATED &&
        code != KYUFU_GRPC_PERMISSION_DENIED) {
        /* The session could not be read (a store error: UNAVAILABLE; a
         * fatal one has already asked the node to stop): not a refusal. */
        kyufu_node__call_done(c, code, msg, NULL, 0);
        return -1;
    }
    if ((row->who & KYUFU_PERM_LOCAL) != 0) {
        /* Any terminal holds a client certificate: an event that stops the
         * node or moves leadership is taken only from this host, where
         * upsmon's NOTIFYCMD runs (docs/power.md).  Worth a warning. */
        kyufu_log(KYUFU_LOG_WARN, "power event refused: not from this host",
                  KYUFU_LOG_S("peer", call->peer_address),
                  KYUFU_LOG_S("subject", call->peer_identity));
    }
    kyufu_log(KYUFU_LOG_DEBUG, "call refused", KYUFU_LOG_S("method", path),
              KYUFU_LOG_S("status", kyufu_grpc_status_name(code)),
              KYUFU_LOG_S("peer", call->peer_address),
              KYUFU_LOG_S("subject", call->peer_identity),
              KYUFU_LOG_S("staff_id",
                          c->principal.kind == KYUFU_PRINCIPAL_STAFF
                              ? c->principal.staff_id
                              : ""));
    kyufu_node__oplog_refused(n, call, &c->principal, code, msg);
    kyufu_node__call_done(c, code, msg, NULL, 0);
    return -1;
}

static void handle(void *data, struct kyufu_grpc_call *call)
{
    const struct bound *b = data;
    struct kyufu_node *n = b->node;
    const struct kyufu_node_method *m = b->method;

    struct kyufu_node_call *c = kyufu_node__call_new(n, call);
    if (c == NULL) {
        return; /* answered */
    }
    c->method = m;
    c->method_index = (int)(m - table);
    if (authorize(c, 0) == 0) {
        serve(c);
    }
}

/* An authorized call: its request checked and unpacked, then its kind's
 * handler. */
static void serve(struct kyufu_node_call *c)
{
    const struct kyufu_node_method *m = c->method;
    const struct kyufu_grpc_call *call = c->call;
    {
        char msg[160];
        if (kyufu_pb_check_known(m->request, call->request,
                                 call->request_len, msg, sizeof msg) != 0) {
            kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL,
                                  0);
            return;
        }
    }
    c->request = protobuf_c_message_unpack(m->request, NULL,
                                           call->request_len,
                                           call->request_len > 0
                                               ? call->request
                                               : (const uint8_t *)"");
    if (c->request == NULL) {
        char msg[160];
        snprintf(msg, sizeof msg, "request is not a valid %s",
                 m->request->name);
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    switch (m->kind) {
    case KYUFU_NODE_WRITE:
        kyufu_node__write(c);
        return;
    case KYUFU_NODE_READ:
        kyufu_node__read(c);
        return;
    case KYUFU_NODE_STATUS:
        kyufu_node__status(c);
        return;
    case KYUFU_NODE_TRANSFER:
        kyufu_node__transfer(c);
        return;
    case KYUFU_NODE_POWER_EVENT:
        kyufu_node__power_event_call(c);
        return;
    case KYUFU_NODE_SETTLE:
        kyufu_node__settle(c);
        return;
    case KYUFU_NODE_ADD_NODE:
        kyufu_node__add_node(c);
        return;
    case KYUFU_NODE_REMOVE_NODE:
        kyufu_node__remove_node(c);
        return;
    case KYUFU_NODE_GET_AVAILABILITY:
        kyufu_node__get_availability(c);
        return;
    case KYUFU_NODE_DRILL:
        kyufu_node__drill(c);
        return;
    case KYUFU_NODE_CREATE_BACKUP:
        kyufu_node__create_backup(c);
        return;
    case KYUFU_NODE_AUTH:
        kyufu_node__auth_call(c);
        return;
    case KYUFU_NODE_REPORT_REFUSALS:
        kyufu_node__report_refusals(c);
        return;
    case KYUFU_NODE_FETCH_CLUSTER_KEY:
        kyufu_node__fetch_cluster_key(c);
        return;
    case KYUFU_NODE_SCRUB_DIGESTS:
        kyufu_node__scrub_digests(c);
        return;
    case KYUFU_NODE_ERASE_NODE:
        kyufu_node__erase_node(c);
        return;
    case KYUFU_NODE_KEY_STATUS:
        kyufu_node__get_key_status(c);
        return;
    }
    assert(false);
}

/* A WRITE row has a typed row for its own request whose body case is the
 * number of the Command member it fills (by name: every member of the
 * oneof has the union's offset, so an offset would not tell them apart);
 * no other kind has one. */
static bool write_row_ok(const struct kyufu_node_method *m)
{
    const struct kyufu_node_write_def *w = m->write;
    if (m->kind != KYUFU_NODE_WRITE) {
        return w == NULL;
    }
    if (w == NULL || w->request != m->request) {
        return false;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &kyufu__v1__command__descriptor, (unsigned)w->body_case);
    return f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE &&
           (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
           f->quantifier_offset == offsetof(Kyufu__V1__Command, body_case) &&
           strcmp(f->name, w->field) == 0;
}

int kyufu_node__methods(struct kyufu_node *n)
{
    assert(n->methods == NULL);
    /* One block: the API server's rows, then what each row points to. */
    n->methods = calloc(N_METHODS, sizeof *n->methods + sizeof(struct bound));
    if (n->methods == NULL) {
        return -1;
    }
    struct bound *bound = (struct bound *)(n->methods + N_METHODS);
    for (size_t i = 0; i < N_METHODS; i++) {
        if (kyufu_node__permission(table[i].path) == NULL) {
            /* A method served without a permission row would be refused
             * to everyone; a build that has one is wrong: stop at once. */
            kyufu_log(KYUFU_LOG_ERROR, "method without a permission row",
                      KYUFU_LOG_S("method", table[i].path));
            abort();
        }
        bound[i].node = n;
        bound[i].method = &table[i];
        n->methods[i].path = table[i].path;
        n->methods[i].handler = handle;
        n->methods[i].data = &bound[i];
        if (!write_row_ok(&table[i])) {
            /* A WRITE_DEF pairing a body case with another member: the
             * build is wrong (the compiler checked the types only). */
            kyufu_log(KYUFU_LOG_ERROR, "write row does not match Command",
                      KYUFU_LOG_S("method", table[i].path));
            abort();
        }
    }
    n->n_methods = N_METHODS;
    return 0;
}

void kyufu_node__methods_free(struct kyufu_node *n)
{
    free(n->methods);
    n->methods = NULL;
    n->n_methods = 0;
}
