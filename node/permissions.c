/* The permission table (permissions.h) and the one decision every call
 * goes through (service.c's handle, after authentication).
 *
 * Why each row is what it is (roles per docs/identity.md):
 *   - Ledger writes: the role apply checks again (storage/apply.c
 *     command_def), so a call the table lets through can still be refused
 *     by apply, never the other way round.
 *   - Reads of personal data: households (names, addresses, bank
 *     accounts) and applications (household numbers) for the clerk and the
 *     approver who work on them; staff accounts for the ID administrator;
 *     audit records for the auditor.  Programs and payment batches hold no
 *     personal data but are ledger data: clerk and approver (a clerk
 *     creates batches and returns payments out of them).
 *   - The operator runs the cluster and sees no personal data: every
 *     Cluster method but PowerEvent, nothing of the Ledger but DrillProbe.
 *   - Status is also NODE: peers ask it of each other (power survey, SLA
 *     probes, version round: forward.c kyufu_node__ask_status).  Every
 *     other node-to-node call is a forward, which carries the follower's
 *     STAFF principal, but NodeInternal/ReportRefusals: a follower sends
 *     the refusal records it took to the leader (refusal_report.c), NODE
 *     and nothing else.
 *   - PowerEvent is LOCAL: the UPS hook on the node's own host has no
 *     session, and a call from elsewhere may not stop the node or move
 *     leadership whoever makes it. */
#include "permissions.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "grpc.h"
#include "kyufu/v1/ledger.pb-c.h"

#define ROLE(r) (1u << KYUFU__V1__ROLE__ROLE_##r)
#define ID_ADMIN ROLE(ID_ADMIN)
#define CLERK ROLE(CLERK)
#define APPROVER ROLE(APPROVER)
#define AUDITOR ROLE(AUDITOR)
#define OPERATOR ROLE(OPERATOR)

#define L(name, roles) {"/kyufu.v1.Ledger/" name, (roles), 0}
#define C(name, roles, who) {"/kyufu.v1.Cluster/" name, (roles), (who)}
#define A(name, roles, who) {"/kyufu.v1.Auth/" name, (roles), (who)}

static const struct kyufu_node_permission table[] = {
    /* Ledger writes: programs and decisions are the approver's, the
     * households, applications, batches and returns the clerk's. */
    L("CreateProgram", APPROVER),
    L("OpenProgram", APPROVER),
    L("CloseProgram", APPROVER),
    L("AdjustBudget", APPROVER),
    L("RegisterHousehold", CLERK),
    L("UpdateHousehold", CLERK),
    L("SubmitApplication", CLERK),
    L("ApproveApplication", APPROVER),
    L("RejectApplication", APPROVER),
    L("CancelApplication", CLERK | APPROVER),
    L("CreatePaymentBatch", CLERK),
    L("ConfirmPaymentBatch", APPROVER),
    L("ReturnPayment", CLERK),
    L("CreateStaff", ID_ADMIN),
    L("SetStaffRoles", ID_ADMIN),
    L("SetStaffStatus", ID_ADMIN),
    /* Anyone who writes ledger or account commands settles their own keys
     * (apply's SettleWrite row). */
    L("SettleWrite", ID_ADMIN | CLERK | APPROVER),
    L("DrillProbe", OPERATOR),
    /* Test build only (kyufud-next; apply's Annotate row). */
    L("Annotate", ID_ADMIN | CLERK | APPROVER),
    /* Ledger reads. */
    L("GetProgram", CLERK | APPROVER),
    L("GetHousehold", CLERK | APPROVER),
    L("GetApplication", CLERK | APPROVER),
    L("GetPaymentBatch", CLERK | APPROVER),
    L("GetStaff", ID_ADMIN),
    L("ListPrograms", CLERK | APPROVER),
    L("ListHouseholds", CLERK | APPROVER),
    L("ListApplications", CLERK | APPROVER),
    L("ListPaymentBatches", CLERK | APPROVER),
    L("ListStaff", ID_ADMIN),
    L("ListAudit", AUDITOR),
    L("VerifyAudit", AUDITOR),
    /* Cluster. */
    C("Status", OPERATOR, KYUFU_PERM_NODE),
    C("TransferLeadership", OPERATOR, 0),
    C("PowerEvent", 0, KYUFU_PERM_LOCAL),
    C("GetAvailability", OPERATOR, 0),
    C("ListIncidents", OPERATOR, 0),
    C("CloseIncident", OPERATOR, 0),
    C("AddNode", OPERATOR, 0),
    C("RemoveNode", OPERATOR, 0),
    C("Drill", OPERATOR, 0), /* DRILL_RESULT (writes_lost) included */
    C("CreateBackup", OPERATOR, 0), /* issue 12, h/backup */
    /* Decommissioning (docs/decommission.md): apply checks the two. */
    C("RequestDecommission", OPERATOR, 0),
    C("ApproveDecommission", OPERATOR, 0),
    C("GetDecommission", OPERATOR, 0),
    C("EraseNode", OPERATOR, 0),
    /* Data-key rotation (docs/encryption.md "Rotation"). */
    C("RotateKeys", OPERATOR, 0),
    C("GetKeyStatus", OPERATOR, 0),
    /* Auth. */
    A("SignIn", 0, KYUFU_PERM_PUBLIC),
    A("SignOut", 0, KYUFU_PERM_SIGNED_IN),
    A("WhoAmI", 0, KYUFU_PERM_SIGNED_IN),
    A("ChangePassword", 0, KYUFU_PERM_SIGNED_IN),
    A("EnrollTotp", 0, KYUFU_PERM_SIGNED_IN),
    A("ConfirmTotp", 0, KYUFU_PERM_SIGNED_IN),
    A("ResetPassword", ID_ADMIN, 0),
    A("UnlockStaff", ID_ADMIN, 0),
    A("ResetTotp", ID_ADMIN, 0),
    /* Follower refusals (issue 8 item 7): a member node's own call only
     * (refusal_report.c also checks it is a member); no account may. */
    {"/kyufu.v1.NodeInternal/ReportRefusals", 0, KYUFU_PERM_NODE},
    /* Encryption keys (issue 12): a joining node's own call only
     * (service_keys.c also checks it is in the configuration). */
    {"/kyufu.v1.NodeInternal/FetchClusterKey", 0, KYUFU_PERM_NODE},
    /* Scrub (issue 13): a member node's own call only (scrub.c also
     * checks it is in the configuration). */
    {"/kyufu.v1.NodeInternal/ScrubDigests", 0, KYUFU_PERM_NODE},
};

#undef L
#undef C
#undef A

enum { N_ROWS = sizeof table / sizeof table[0] };

const struct kyufu_node_permission *kyufu_node__permission(const char *path)
{
    if (path == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < N_ROWS; i++) {
        if (strcmp(table[i].path, path) == 0) {
            return &table[i];
        }
    }
    return NULL;
}

size_t kyufu_node__permissions_count(void)
{
    return N_ROWS;
}

const struct kyufu_node_permission *kyufu_node__permission_at(size_t i)
{
    assert(i < N_ROWS);
    return &table[i];
}

const char *kyufu_node__roles_text(uint32_t roles, char *buf, size_t len)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {ID_ADMIN, "ID administrator"}, {CLERK, "clerk"},
        {APPROVER, "approver"},         {AUDITOR, "auditor"},
        {OPERATOR, "operator"},
    };
    assert(len > 0);
    buf[0] = '\0';
    size_t used = 0;
    size_t left = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((roles & names[i].bit) != 0) {
            left++;
        }
    }
    if (left == 0) {
        snprintf(buf, len, "no role");
        return buf;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0] && used < len; i++) {
        if ((roles & names[i].bit) == 0) {
            continue;
        }
        left--;
        int w = snprintf(buf + used, len - used, "%s%s", names[i].name,
                         left == 0 ? "" : left == 1 ? " or " : ", ");
        if (w < 0) {
            break;
        }
        used += (size_t)w;
    }
    return buf;
}

int kyufu_node__permit(const char *path,
                       const struct kyufu_principal *p,
                       bool own_host,
                       char *msg,
                       size_t len)
{
    assert(p != NULL && msg != NULL && len > 0);
    const struct kyufu_node_permission *row = kyufu_node__permission(path);
    msg[0] = '\0';
    if (row == NULL) {
        snprintf(msg, len, "%s has no permission row: refused",
                 path != NULL ? path : "(no method)");
        return KYUFU_GRPC_PERMISSION_DENIED;
    }
    if ((row->who & KYUFU_PERM_PUBLIC) != 0) {
        return KYUFU_GRPC_OK;
    }
    if ((row->who & KYUFU_PERM_LOCAL) != 0) {
        if (own_host) {
            return KYUFU_GRPC_OK;
        }
        if (row->roles == 0) {
            snprintf(msg, len,
                     "%s is accepted only from this node's own host "
                     "(loopback or its API address)",
                     path);
            return KYUFU_GRPC_PERMISSION_DENIED;
        }
    }
    bool node_only = row->roles == 0 && row->who == KYUFU_PERM_NODE;
    if (node_only && p->kind != KYUFU_PRINCIPAL_NODE) {
        /* No account may make it; say so rather than "sign in". */
        snprintf(msg, len,
                 "%s is a node's own call (a member node's certificate, no "
                 "session)",
                 path);
        return p->kind == KYUFU_PRINCIPAL_NONE ? KYUFU_GRPC_UNAUTHENTICATED
                                               : KYUFU_GRPC_PERMISSION_DENIED;
    }
    switch (p->kind) {
    case KYUFU_PRINCIPAL_NONE:
        snprintf(msg, len,
                 "%s needs a signed-in session (metadata authorization: "
                 "Bearer <token> from Auth/SignIn)",
                 path);
        return KYUFU_GRPC_UNAUTHENTICATED;
    case KYUFU_PRINCIPAL_NODE:
        if ((row->who & KYUFU_PERM_NODE) != 0) {
            return KYUFU_GRPC_OK;
        }
        snprintf(msg, len,
                 "%s is not for a node's own calls (node %llu, no session)",
                 path, (unsigned long long)p->node_id);
        return KYUFU_GRPC_PERMISSION_DENIED;
    case KYUFU_PRINCIPAL_STAFF:
        break;
    default:
        snprintf(msg, len, "%s: unknown caller", path);
        return KYUFU_GRPC_PERMISSION_DENIED;
    }
    if ((row->who & KYUFU_PERM_SIGNED_IN) != 0) {
        return KYUFU_GRPC_OK;
    }
    if (p->setup_only) {
        snprintf(msg, len,
                 "%s: %s has a setup-only session (change the temporary or "
                 "expired password, confirm TOTP, then sign in again)",
                 path, p->staff_id);
        return KYUFU_GRPC_PERMISSION_DENIED;
    }
    if ((p->roles_mask & row->roles) != 0) {
        return KYUFU_GRPC_OK;
    }
    char roles[96];
    snprintf(msg, len, "%s needs the role %s; %s does not have it", path,
             kyufu_node__roles_text(row->roles, roles, sizeof roles),
             p->staff_id);
    return KYUFU_GRPC_PERMISSION_DENIED;
}

bool kyufu_node__from_own_host(const char *api_address, const char *peer)
{
    char ip[64];
    const char *colon = peer != NULL ? strrchr(peer, ':') : NULL;
    if (colon == NULL || (size_t)(colon - peer) >= sizeof ip) {
        return false;
    }
    memcpy(ip, peer, (size_t)(colon - peer));
    ip[colon - peer] = '\0';
    if (strcmp(ip, "127.0.0.1") == 0 || strcmp(ip, "::1") == 0 ||
        strcmp(ip, "::ffff:127.0.0.1") == 0) {
        return true;
    }
    const char *api = api_address;
    const char *api_colon = api != NULL ? strrchr(api, ':') : NULL;
    return api_colon != NULL && (size_t)(api_colon - api) == strlen(ip) &&
           ip[0] != '\0' && strncmp(api, ip, strlen(ip)) == 0;
}
