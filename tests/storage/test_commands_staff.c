/* CreateStaff, SetStaffRoles, SetStaffStatus (docs/ledger-rules.md,
 * "Roles" and "Commands"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED

#define ACTIVE KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE
#define SUSPENDED KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED
#define DISABLED KYUFU__V1__STAFF_STATUS__STAFF_DISABLED

/* Role sets the docs forbid: empty, bits outside 0x3e, ID_ADMIN with CLERK
 * or APPROVER. */
static const uint32_t bad_roles[] = {
    0,
    1u,
    1u << 6,
    R_CLERK | (1u << 6),
    0x80000000u,
    0xffffffffu,
    R_ADMIN | R_CLERK,
    R_ADMIN | R_APPROVER,
    0x3eu,
};

static void create_staff_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c =
        c_create_staff(&f, "admin", "hanako.sato-2", R_CLERK | R_AUDITOR);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "staff/hanako.sato-2");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    CHECK_STR(r->staff->staff_id, "hanako.sato-2");
    CHECK_STR(r->staff->display_name, "職員 一");
    CHECK_EQ(r->staff->roles_mask, R_CLERK | R_AUDITOR);
    CHECK_EQ(r->staff->status, ACTIVE);
    CHECK_EQ(r->staff->created_ms, t);
    CHECK_STR(r->staff->created_by, "admin");
    fx_free(r);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "hanako.sato-2");
    CHECK_EQ(s->roles_mask, R_CLERK | R_AUDITOR);
    CHECK_EQ(s->status, ACTIVE);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    /* Allowed sets and sizes at their limits. */
    fx_do(&f, c_create_staff(&f, "admin", rep('x', 64), R_OPERATOR));
    /* Two ID administrators exist: each ID-admin grant takes both. */
    fx_reject(&f, c_create_staff(&f, "admin", "adm3", R_ADMIN | R_AUDITOR),
              KYUFU__V1__CODE__FAILED_PRECONDITION);
    fx_free(fx_apply_ok(&f, c_create_staff(&f, "admin2", "adm3",
                                           R_ADMIN | R_AUDITOR)));
    fx_reject(&f, c_create_staff(&f, "admin", "adm4", R_ADMIN | R_OPERATOR),
              KYUFU__V1__CODE__FAILED_PRECONDITION);
    fx_free(fx_apply_ok(&f, c_create_staff(&f, "adm3", "adm4",
                                           R_ADMIN | R_OPERATOR)));
    c = c_create_staff(&f, "admin", "long.name", R_APPROVER);
    c_str(&c->create_staff->display_name, rep('d', 200));
    fx_do(&f, c);
    /* The new account acts at once. */
    fx_do(&f, c_register_household(&f, "hanako.sato-2", "H-9"));
    fx_close(&f);
}

static void create_staff_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_create_staff(&f, "admin", "clerk", R_CLERK), EXISTS);
    const char *ids[] = {"",      "Bob",   "bo b", "bo/b", "böb",
                         "bob\n", rep('x', 65)};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        fx_reject(&f, c_create_staff(&f, "admin", ids[i], R_CLERK), INVALID);
    }
    for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
        fx_reject(&f, c_create_staff(&f, "admin", "bob", bad_roles[i]),
                  INVALID);
    }
    const char *names[] = {"", rep('d', 201), "a\x1b[31m", "\xff"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        Kyufu__V1__Command *c = c_create_staff(&f, "admin", "bob", R_CLERK);
        c_str(&c->create_staff->display_name, names[i]);
        fx_reject(&f, c, INVALID);
    }
    fx_close(&f);
}

static void set_roles_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_set_roles(&f, "admin", "clerk2", R_APPROVER);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "staff/clerk2");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    CHECK_EQ(r->staff->roles_mask, R_APPROVER);
    CHECK_EQ(r->staff->updated_ms, t);
    fx_free(r);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "clerk2");
    CHECK_EQ(s->roles_mask, R_APPROVER);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    /* The new roles are in force: clerk2 lost CLERK, gained APPROVER. */
    fx_reject(&f, c_register_household(&f, "clerk2", "H-9"), DENIED);
    fx_do(&f, c_create_program(&f, "clerk2", "P2", 100));
    /* One ID administrator may change another's roles. */
    fx_do(&f, c_set_roles(&f, "admin2", "admin", R_ADMIN | R_AUDITOR));
    fx_close(&f);
}

static void set_roles_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_set_roles(&f, "admin", "nobody", R_CLERK), NOTFOUND);
    fx_reject(&f, c_set_roles(&f, "admin", "", R_CLERK), INVALID);
    fx_reject(&f, c_set_roles(&f, "admin", "Nobody", R_CLERK), INVALID);
    for (size_t i = 0; i < sizeof bad_roles / sizeof bad_roles[0]; i++) {
        fx_reject(&f, c_set_roles(&f, "admin", "clerk", bad_roles[i]),
                  INVALID);
    }
    /* Nobody changes their own roles, not even to fewer. */
    fx_reject(&f, c_set_roles(&f, "admin", "admin", R_ADMIN | R_AUDITOR),
              DENIED);
    fx_reject(&f, c_set_roles(&f, "admin", "admin", R_ADMIN), DENIED);
    fx_close(&f);
}

static void set_status_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_set_status(&f, "admin", "clerk", SUSPENDED);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "staff/clerk");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    CHECK_EQ(r->staff->status, SUSPENDED);
    CHECK_EQ(r->staff->updated_ms, t);
    CHECK_EQ(r->staff->roles_mask, R_CLERK);
    fx_free(r);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "clerk");
    CHECK_EQ(s->status, SUSPENDED);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    fx_do(&f, c_set_status(&f, "admin", "clerk", ACTIVE));
    fx_do(&f, c_set_status(&f, "admin", "clerk", DISABLED));
    s = fx_staff(&f, "clerk");
    CHECK_EQ(s->status, DISABLED);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    fx_close(&f);
}

static void set_status_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_set_status(&f, "admin", "nobody", SUSPENDED), NOTFOUND);
    const int bad[] = {KYUFU__V1__STAFF_STATUS__STAFF_STATUS_UNSPECIFIED, 4,
                       -1, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_reject(&f,
                  c_set_status(&f, "admin", "clerk",
                               (Kyufu__V1__StaffStatus)bad[i]),
                  INVALID);
    }
    fx_reject(&f, c_set_status(&f, "admin", "admin", SUSPENDED), DENIED);
    fx_reject(&f, c_set_status(&f, "admin", "admin", DISABLED), DENIED);
    /* DISABLED is final. */
    fx_do(&f, c_set_status(&f, "admin", "clerk2", DISABLED));
    fx_reject(&f, c_set_status(&f, "admin", "clerk2", ACTIVE), FAILED);
    fx_reject(&f, c_set_status(&f, "admin", "clerk2", SUSPENDED), FAILED);
    fx_reject(&f, c_set_status(&f, "admin", "clerk2", DISABLED), FAILED);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(create_staff_ok),
        T_CASE(create_staff_rejections),
        T_CASE(set_roles_ok),
        T_CASE(set_roles_rejections),
        T_CASE(set_status_ok),
        T_CASE(set_status_rejections),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
