/* The permission table, exhaustively (issue 8 item 5; node/permissions.h).
 *
 * Every method of every service kyufud serves (taken from the generated
 * protobuf-c service descriptors, not from the table) is called by every
 * kind of caller: nobody, each single role, a setup-only session holding
 * every role, and a peer node; from another host and from this host.  The
 * answers are compared with the matrix below, written out by hand from
 * docs/identity.md: a changed row of node/permissions.c fails here, and so
 * does a method added to service.proto without a row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../count_check.h"
#include "grpc.h"
#include "kyufu/v1/ledger.pb-c.h"
#include "kyufu/v1/service.pb-c.h"
#include "permissions.h"


/* The callers, in the order of the matrix's columns. */
enum caller {
    NOBODY,
    ID_ADMIN,
    CLERK,
    APPROVER,
    AUDITOR,
    OPERATOR,
    SETUP, /* a setup-only session, holding every role */
    NODE,
    N_CALLERS
};
static const char *const caller_name[N_CALLERS] = {
    "nobody", "id_admin", "clerk", "approver", "auditor", "operator",
    "setup-only", "node",
};

/* y: allowed; U: UNAUTHENTICATED; n: PERMISSION_DENIED.  `local`: the same
 * callers from this node's own host; NULL when it is the same as remote.
 *                           columns: nobody admin clerk approver auditor
 *                                    operator setup node */
static const struct {
    const char *path;
    const char *remote;
    const char *local;
} expected[] = {
    {"/kyufu.v1.Ledger/CreateProgram", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/OpenProgram", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/CloseProgram", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/AdjustBudget", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/RegisterHousehold", "Unynnnnn", NULL},
    {"/kyufu.v1.Ledger/UpdateHousehold", "Unynnnnn", NULL},
    {"/kyufu.v1.Ledger/SubmitApplication", "Unynnnnn", NULL},
    {"/kyufu.v1.Ledger/ApproveApplication", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/RejectApplication", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/CancelApplication", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/CreatePaymentBatch", "Unynnnnn", NULL},
    {"/kyufu.v1.Ledger/ConfirmPaymentBatch", "Unnynnnn", NULL},
    {"/kyufu.v1.Ledger/ReturnPayment", "Unynnnnn", NULL},
    {"/kyufu.v1.Ledger/CreateStaff", "Uynnnnnn", NULL},
    {"/kyufu.v1.Ledger/SetStaffRoles", "Uynnnnnn", NULL},
    {"/kyufu.v1.Ledger/SetStaffStatus", "Uynnnnnn", NULL},
    {"/kyufu.v1.Ledger/SettleWrite", "Uyyynnnn", NULL},
    {"/kyufu.v1.Ledger/DrillProbe", "Unnnnynn", NULL},
    {"/kyufu.v1.Ledger/Annotate", "Uyyynnnn", NULL},
    {"/kyufu.v1.Ledger/GetProgram", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/GetHousehold", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/GetApplication", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/GetPaymentBatch", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/GetStaff", "Uynnnnnn", NULL},
    {"/kyufu.v1.Ledger/ListPrograms", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/ListHouseholds", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/ListApplications", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/ListPaymentBatches", "Unyynnnn", NULL},
    {"/kyufu.v1.Ledger/ListStaff", "Uynnnnnn", NULL},
    {"/kyufu.v1.Ledger/ListAudit", "Unnnynnn", NULL},
    {"/kyufu.v1.Ledger/VerifyAudit", "Unnnynnn", NULL},
    {"/kyufu.v1.Cluster/Status", "Unnnnyny", NULL},
    {"/kyufu.v1.Cluster/TransferLeadership", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/PowerEvent", "nnnnnnnn", "yyyyyyyy"},
    {"/kyufu.v1.Cluster/GetAvailability", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/ListIncidents", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/CloseIncident", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/AddNode", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/RemoveNode", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/Drill", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/CreateBackup", "Unnnnynn", NULL},
    /* Decommissioning (docs/decommission.md): operators only. */
    {"/kyufu.v1.Cluster/RequestDecommission", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/ApproveDecommission", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/GetDecommission", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/EraseNode", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/RotateKeys", "Unnnnynn", NULL},
    {"/kyufu.v1.Cluster/GetKeyStatus", "Unnnnynn", NULL},
    {"/kyufu.v1.Auth/SignIn", "yyyyyyyy", NULL},
    {"/kyufu.v1.Auth/SignOut", "Uyyyyyyn", NULL},
    {"/kyufu.v1.Auth/WhoAmI", "Uyyyyyyn", NULL},
    {"/kyufu.v1.Auth/ChangePassword", "Uyyyyyyn", NULL},
    {"/kyufu.v1.Auth/EnrollTotp", "Uyyyyyyn", NULL},
    {"/kyufu.v1.Auth/ConfirmTotp", "Uyyyyyyn", NULL},
    {"/kyufu.v1.Auth/ResetPassword", "Uynnnnnn", NULL},
    {"/kyufu.v1.Auth/UnlockStaff", "Uynnnnnn", NULL},
    {"/kyufu.v1.Auth/ResetTotp", "Uynnnnnn", NULL},
    /* Follower refusals: a node's own call, nobody else's. */
    {"/kyufu.v1.NodeInternal/ReportRefusals", "Unnnnnny", NULL},
    /* Encryption keys: a node's own call, nobody else's. */
    {"/kyufu.v1.NodeInternal/FetchClusterKey", "Unnnnnny", NULL},
    /* Scrub: a node's own call, nobody else's. */
    {"/kyufu.v1.NodeInternal/ScrubDigests", "Unnnnnny", NULL},
};
enum { N_EXPECTED = sizeof expected / sizeof expected[0] };

#define BIT(r) (1u << KYUFU__V1__ROLE__ROLE_##r)
#define ALL_ROLES                                                            \
    (BIT(ID_ADMIN) | BIT(CLERK) | BIT(APPROVER) | BIT(AUDITOR) |            \
     BIT(OPERATOR))

static struct kyufu_principal principal(enum caller k)
{
    struct kyufu_principal p;
    memset(&p, 0, sizeof p);
    /* A token hash whose hex must never show up in a message. */
    memset(p.token_hash, 0xab, sizeof p.token_hash);
    static const uint32_t role_of[N_CALLERS] = {
        [ID_ADMIN] = BIT(ID_ADMIN), [CLERK] = BIT(CLERK),
        [APPROVER] = BIT(APPROVER), [AUDITOR] = BIT(AUDITOR),
        [OPERATOR] = BIT(OPERATOR), [SETUP] = ALL_ROLES,
    };
    switch (k) {
    case NOBODY:
        p.kind = KYUFU_PRINCIPAL_NONE;
        break;
    case NODE:
        p.kind = KYUFU_PRINCIPAL_NODE;
        p.node_id = 2;
        break;
    default:
        p.kind = KYUFU_PRINCIPAL_STAFF;
        snprintf(p.staff_id, sizeof p.staff_id, "%s.user", caller_name[k]);
        p.roles_mask = role_of[k];
        p.setup_only = k == SETUP;
        p.session_id = 7;
        break;
    }
    return p;
}

static char code_char(int code)
{
    switch (code) {
    case KYUFU_GRPC_OK:
        return 'y';
    case KYUFU_GRPC_UNAUTHENTICATED:
        return 'U';
    case KYUFU_GRPC_PERMISSION_DENIED:
        return 'n';
    default:
        return '?';
    }
}

static int expected_index(const char *path)
{
    for (size_t i = 0; i < N_EXPECTED; i++) {
        if (strcmp(expected[i].path, path) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Every (method, caller, host) against the matrix; refusals say why. */
static void test_matrix(void)
{
    size_t cells = 0;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        CHECKF(strlen(expected[i].remote) == N_CALLERS, "%s: bad matrix row",
              expected[i].path);
        for (int local = 0; local <= 1; local++) {
            const char *want = local && expected[i].local != NULL
                                   ? expected[i].local
                                   : expected[i].remote;
            for (int k = 0; k < N_CALLERS; k++) {
                struct kyufu_principal p = principal((enum caller)k);
                char msg[256];
                int code = kyufu_node__permit(expected[i].path, &p,
                                              local != 0, msg, sizeof msg);
                cells++;
                CHECKF(code_char(code) == want[k],
                      "%s by %s (%s host): got %c, want %c (%s)",
                      expected[i].path, caller_name[k],
                      local ? "own" : "other", code_char(code), want[k], msg);
                if (code == KYUFU_GRPC_OK) {
                    continue;
                }
                CHECKF(strstr(msg, expected[i].path) != NULL,
                      "%s: the refusal names the method: %s",
                      expected[i].path, msg);
                CHECKF(strstr(msg, "abab") == NULL && strstr(msg, "ABAB") ==
                                                          NULL,
                      "%s: the refusal shows the token hash: %s",
                      expected[i].path, msg);
            }
        }
    }
    CHECKF(cells == (size_t)N_EXPECTED * N_CALLERS * 2, "cells %zu", cells);
}

/* The matrix, the table and the services of service.proto name the same
 * methods: none missing, none extra. */
static void test_coverage(void)
{
    const ProtobufCServiceDescriptor *services[] = {
        &kyufu__v1__ledger__descriptor,
        &kyufu__v1__cluster__descriptor,
        &kyufu__v1__auth__descriptor,
        &kyufu__v1__node_internal__descriptor,
    };
    size_t methods = 0;
    for (size_t s = 0; s < sizeof services / sizeof services[0]; s++) {
        for (unsigned m = 0; m < services[s]->n_methods; m++) {
            char path[160];
            snprintf(path, sizeof path, "/%s/%s", services[s]->name,
                     services[s]->methods[m].name);
            methods++;
            CHECKF(kyufu_node__permission(path) != NULL,
                  "%s has no row in node/permissions.c", path);
            CHECKF(expected_index(path) >= 0,
                  "%s is not in this test's matrix", path);
        }
    }
    CHECKF(methods == N_EXPECTED, "services have %zu methods, matrix %d",
          methods, (int)N_EXPECTED);
    CHECKF(kyufu_node__permissions_count() == N_EXPECTED,
          "table has %zu rows, matrix %d", kyufu_node__permissions_count(),
          (int)N_EXPECTED);
    for (size_t i = 0; i < kyufu_node__permissions_count(); i++) {
        const struct kyufu_node_permission *row = kyufu_node__permission_at(i);
        CHECKF(expected_index(row->path) >= 0, "extra row %s", row->path);
        for (size_t j = 0; j < i; j++) {
            CHECKF(strcmp(kyufu_node__permission_at(j)->path, row->path) != 0,
                  "row %s twice", row->path);
        }
    }
}

/* A method that is not in the table is refused to everyone, the most
 * privileged included; grpc.health is never a row (served before it). */
static void test_unknown(void)
{
    const char *paths[] = {
        "/kyufu.v1.Ledger/DropEverything",
        "/kyufu.v1.Ledger/createprogram",
        "/kyufu.v1.Ledger/CreateProgram/",
        "/grpc.health.v1.Health/Check",
        "",
        NULL,
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        for (int k = 0; k < N_CALLERS; k++) {
            struct kyufu_principal p = principal((enum caller)k);
            p.roles_mask = 0xffffffffu;
            p.setup_only = false;
            char msg[256];
            CHECKF(kyufu_node__permit(paths[i], &p, true, msg, sizeof msg) ==
                      KYUFU_GRPC_PERMISSION_DENIED,
                  "%s by %s allowed", paths[i] ? paths[i] : "NULL",
                  caller_name[k]);
        }
    }
}

/* Roles combine as a union; the bit of ROLE_UNSPECIFIED grants nothing. */
static void test_roles(void)
{
    struct kyufu_principal p = principal(CLERK);
    char msg[256];
    p.roles_mask = BIT(CLERK) | BIT(APPROVER);
    CHECKF(kyufu_node__permit("/kyufu.v1.Ledger/ApproveApplication", &p, false,
                             msg, sizeof msg) == KYUFU_GRPC_OK,
          "clerk+approver may approve");
    CHECKF(kyufu_node__permit("/kyufu.v1.Ledger/RegisterHousehold", &p, false,
                             msg, sizeof msg) == KYUFU_GRPC_OK,
          "clerk+approver may register");
    CHECKF(kyufu_node__permit("/kyufu.v1.Ledger/ListAudit", &p, false, msg,
                             sizeof msg) == KYUFU_GRPC_PERMISSION_DENIED,
          "clerk+approver may not read the audit log");
    p.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_UNSPECIFIED;
    for (size_t i = 0; i < N_EXPECTED; i++) {
        int code = kyufu_node__permit(expected[i].path, &p, false, msg,
                                      sizeof msg);
        char want = expected[i].remote[ID_ADMIN] == 'y' &&
                            expected[i].remote[CLERK] == 'y' &&
                            expected[i].remote[AUDITOR] == 'y'
                        ? 'y'
                        : 'n';
        CHECKF(code_char(code) == want, "%s with no real role: %c",
              expected[i].path, code_char(code));
    }
    /* The refusal names the roles that would do. */
    p = principal(AUDITOR);
    kyufu_node__permit("/kyufu.v1.Ledger/CancelApplication", &p, false, msg,
                       sizeof msg);
    CHECKF(strstr(msg, "clerk or approver") != NULL &&
              strstr(msg, "auditor.user") != NULL,
          "message: %s", msg);
    p = principal(OPERATOR);
    kyufu_node__permit("/kyufu.v1.Ledger/SettleWrite", &p, false, msg,
                       sizeof msg);
    CHECKF(strstr(msg, "ID administrator, clerk or approver") != NULL,
          "message: %s", msg);
    /* A short buffer truncates, never overflows. */
    char tiny[8];
    CHECKF(kyufu_node__permit("/kyufu.v1.Ledger/ListAudit", &p, false, tiny,
                             sizeof tiny) == KYUFU_GRPC_PERMISSION_DENIED &&
              strlen(tiny) == sizeof tiny - 1,
          "tiny: %s", tiny);
}

static void test_own_host(void)
{
    static const struct {
        const char *api;
        const char *peer;
        bool want;
    } cases[] = {
        {"127.0.0.2:7001", "127.0.0.1:5000", true},
        {"127.0.0.2:7001", "[::1]:5000", false}, /* not how peers look */
        {"127.0.0.2:7001", "::1:5000", true},
        {"127.0.0.2:7001", "::ffff:127.0.0.1:5000", true},
        {"127.0.0.2:7001", "127.0.0.2:40000", true},
        {"127.0.0.2:7001", "127.0.0.3:40000", false},
        {"127.0.0.2:7001", "127.0.0.22:40000", false},
        {"127.0.0.22:7001", "127.0.0.2:40000", false},
        {"127.0.0.2:7001", "", false},
        {"127.0.0.2:7001", ":5000", false},
        {"127.0.0.2:7001", NULL, false},
        {"127.0.0.2:7001", "127.0.0.1", false},
        {NULL, "127.0.0.3:1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECKF(kyufu_node__from_own_host(cases[i].api, cases[i].peer) ==
                  cases[i].want,
              "own host (%s, %s)", cases[i].api ? cases[i].api : "NULL",
              cases[i].peer ? cases[i].peer : "NULL");
    }
}

int main(void)
{
    test_matrix();
    test_coverage();
    test_unknown();
    test_roles();
    test_own_host();
    if (failures != 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("permissions: %d methods x %d callers x 2 hosts ok\n",
           (int)N_EXPECTED, (int)N_CALLERS);
    return 0;
}
