/* Staff roles at the API boundary (docs/api.md "Roles").
 *
 * Clients send and receive roles as a list of Role values; the replicated
 * commands and the store keep the bit mask 1 << Role (roles_mask), as every
 * earlier version wrote it, so the Raft log and the state digest are the
 * same whichever form a client used.  The list is turned into the mask here,
 * on the leader, just before the proposal; the mask is turned back into the
 * list in every answer that carries a StaffAccount.
 *
 * Why the mask is refused from clients: it is the trap issue 14 describes (a
 * front end sending ROLE_CLERK = 2 as a mask grants bit 1, ID_ADMIN).  A
 * request that sets roles_mask, lists no role, lists one twice or lists a
 * value that names no role is INVALID_ARGUMENT before Raft and writes
 * nothing.  Which combinations of roles are allowed is a ledger rule, checked
 * (and audited) by apply as before. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "service.h"

#define ROLE_FIRST KYUFU__V1__ROLE__ROLE_ID_ADMIN
#define ROLE_LAST KYUFU__V1__ROLE__ROLE_OPERATOR

static int to_mask(const Kyufu__V1__Role *list,
                   size_t n,
                   uint32_t mask_in,
                   uint32_t *out,
                   char *why,
                   size_t len)
{
    uint32_t mask = 0;
    if (mask_in != 0) {
        snprintf(why, len, "roles_mask is the stored form and is not "
                           "accepted from clients: send roles as a list "
                           "of Role values (docs/api.md \"Roles\")");
        return -1;
    }
    if (n == 0) {
        snprintf(why, len, "roles must list at least one Role");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int v = (int)list[i];
        if (v < ROLE_FIRST || v > ROLE_LAST) {
            snprintf(why, len, "roles[%zu] = %d is not a role (%d..%d: "
                               "ROLE_ID_ADMIN..ROLE_OPERATOR)",
                     i, v, ROLE_FIRST, ROLE_LAST);
            return -1;
        }
        if ((mask & (1u << v)) != 0) {
            snprintf(why, len, "roles lists %s twice",
                     protobuf_c_enum_descriptor_get_value(
                         &kyufu__v1__role__descriptor, v)->name);
            return -1;
        }
        mask |= 1u << v;
    }
    *out = mask;
    return 0;
}

int kyufu_node__roles_in(Kyufu__V1__Command *cmd, char *why, size_t len)
{
    uint32_t mask = 0;
    switch (cmd->body_case) {
    case KYUFU__V1__COMMAND__BODY_CREATE_STAFF: {
        Kyufu__V1__CreateStaff *b = cmd->create_staff;
        if (to_mask(b->roles, b->n_roles, b->roles_mask, &mask, why, len)) {
            return -1;
        }
        b->roles_mask = mask;
        b->n_roles = 0; /* the array is freed with the request */
        return 0;
    }
    case KYUFU__V1__COMMAND__BODY_SET_STAFF_ROLES: {
        Kyufu__V1__SetStaffRoles *b = cmd->set_staff_roles;
        if (to_mask(b->roles, b->n_roles, b->roles_mask, &mask, why, len)) {
            return -1;
        }
        b->roles_mask = mask;
        b->n_roles = 0;
        return 0;
    }
    default:
        return 0;
    }
}

int kyufu_node__roles_out(Kyufu__V1__StaffAccount *a)
{
    if (a == NULL || a->n_roles > 0) {
        return 0;
    }
    Kyufu__V1__Role *list = malloc((ROLE_LAST + 1) * sizeof *list);
    if (list == NULL) {
        return -1;
    }
    size_t n = 0;
    for (int v = ROLE_FIRST; v <= ROLE_LAST; v++) {
        if ((a->roles_mask & (1u << v)) != 0) {
            list[n++] = (Kyufu__V1__Role)v;
        }
    }
    free(a->roles); /* NULL: n_roles was 0 */
    a->roles = list; /* freed with the record (default allocator) */
    a->n_roles = n;
    a->roles_mask = 0;
    return 0;
}
