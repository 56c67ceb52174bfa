/* State machines of the records as checked transition tables.  Every status
 * write goes through one of these (records.c, the handlers); an edge that is
 * not in a table is a bug and aborts.  Self edges are the updates that keep a
 * status (an application gathered into a batch, a program whose money
 * moves, a staff account whose roles change). */
#include "internal.h"

#define A(x) KYUFU__V1__APPLICATION_STATUS__APP_##x
#define P(x) KYUFU__V1__PROGRAM_STATUS__PROGRAM_##x
#define B(x) KYUFU__V1__BATCH_STATUS__BATCH_##x
#define S(x) KYUFU__V1__STAFF_STATUS__STAFF_##x

/* [from][to]; index 0 (UNSPECIFIED) has no edges. */
static const bool app_edges[7][7] = {
    [A(RECEIVED)] = {[A(APPROVED)] = true, [A(REJECTED)] = true,
                     [A(CANCELLED)] = true},
    /* APPROVED → APPROVED: gathered into a batch. */
    [A(APPROVED)] = {[A(APPROVED)] = true, [A(PAID)] = true,
                     [A(CANCELLED)] = true},
    /* No edge leads back to PAID once it was left: paid at most once. */
    [A(PAID)] = {[A(RETURNED)] = true},
};

static const bool program_edges[4][4] = {
    [P(DRAFT)] = {[P(DRAFT)] = true, [P(OPEN)] = true},
    [P(OPEN)] = {[P(OPEN)] = true, [P(CLOSED)] = true},
    [P(CLOSED)] = {[P(CLOSED)] = true},
};

static const bool batch_edges[3][3] = {
    [B(CREATED)] = {[B(CONFIRMED)] = true},
};

static const bool staff_edges[5][5] = {
    [S(ACTIVE)] = {[S(ACTIVE)] = true, [S(SUSPENDED)] = true,
                   [S(DISABLED)] = true},
    [S(SUSPENDED)] = {[S(ACTIVE)] = true, [S(SUSPENDED)] = true,
                      [S(DISABLED)] = true},
    /* DISABLED is final but for the purge; its roles may still be edited
     * (self edge).  Nothing leaves PURGED (identity, PurgeStaff). */
    [S(DISABLED)] = {[S(DISABLED)] = true, [S(PURGED)] = true},
};

#define IN(v, n) ((int)(v) >= 0 && (int)(v) < (n))

bool kyufu_storage__app_transition_ok(Kyufu__V1__ApplicationStatus from,
                                      Kyufu__V1__ApplicationStatus to)
{
    return IN(from, 7) && IN(to, 7) && app_edges[from][to];
}

bool kyufu_storage__program_transition_ok(Kyufu__V1__ProgramStatus from,
                                          Kyufu__V1__ProgramStatus to)
{
    return IN(from, 4) && IN(to, 4) && program_edges[from][to];
}

bool kyufu_storage__batch_transition_ok(Kyufu__V1__BatchStatus from,
                                        Kyufu__V1__BatchStatus to)
{
    return IN(from, 3) && IN(to, 3) && batch_edges[from][to];
}

bool kyufu_storage__staff_transition_ok(Kyufu__V1__StaffStatus from,
                                        Kyufu__V1__StaffStatus to)
{
    return IN(from, 5) && IN(to, 5) && staff_edges[from][to];
}

bool kyufu_storage__app_is_live(Kyufu__V1__ApplicationStatus st)
{
    return st == A(RECEIVED) || st == A(APPROVED) || st == A(PAID) ||
           st == A(RETURNED);
}
