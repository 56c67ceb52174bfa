/* Decommissioning (storage/apply_decommission.c, docs/decommission.md):
 * two different active operators, the second within
 * KYUFU_DECOMMISSION_PENDING_MS of the first; the requester alone, another
 * role, an unknown id, an expired request, a requester no longer an
 * operator: refused with nothing approved; an approved decommission is
 * final; the record survives a restart and a snapshot; older cluster
 * versions refuse the commands. */
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "../../storage/storage_limits.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define NOT_FOUND KYUFU__V1__CODE__NOT_FOUND
#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define DECOM_VERSION 4u

static Kyufu__V1__Command *c_request(struct fx *f, const char *actor,
                                     const char *statement)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    c->body_case = KYUFU__V1__COMMAND__BODY_REQUEST_DECOMMISSION;
    c->request_decommission = calloc(1, sizeof *c->request_decommission);
    CHECK(c->request_decommission != NULL);
    kyufu__v1__request_decommission__init(c->request_decommission);
    c_str(&c->request_decommission->statement, statement);
    return c;
}

static Kyufu__V1__Command *c_approve_d(struct fx *f, const char *actor,
                                       uint64_t id)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    c->body_case = KYUFU__V1__COMMAND__BODY_APPROVE_DECOMMISSION;
    c->approve_decommission = calloc(1, sizeof *c->approve_decommission);
    CHECK(c->approve_decommission != NULL);
    kyufu__v1__approve_decommission__init(c->approve_decommission);
    c->approve_decommission->id = id;
    return c;
}

/* The world and two operators (and one whose roles change later). */
static void world(struct fx *f)
{
    fx_open(f);
    fx_world(f);
    fx_version(f, DECOM_VERSION);
    fx_do(f, c_create_staff(f, "admin", "op1", R_OPERATOR));
    fx_do(f, c_create_staff(f, "admin", "op2", R_OPERATOR));
    fx_do(f, c_create_staff(f, "admin", "op3", R_OPERATOR | R_CLERK));
}

static uint64_t requested(struct fx *f, const char *actor)
{
    Kyufu__V1__CommandResult *r =
        fx_ok(f, c_request(f, actor, "end of contract 2031: all ledger data"));
    uint64_t id = r->raft_index;
    CHECK(id > 0);
    fx_free(r);
    return id;
}

static Kyufu__V1__Decommission *get(struct fx *f)
{
    Kyufu__V1__Decommission *d = NULL;
    int rv = kyufu_storage_decommission_get(f->s, &d);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        CHECK(d == NULL);
        return NULL;
    }
    CHECK_EQ(rv, 0);
    return d;
}

static void two_operators(void)
{
    struct fx f;
    world(&f);
    CHECK(get(&f) == NULL);
    /* Another role, a bad statement: nothing recorded. */
    fx_reject(&f, c_request(&f, "clerk", "x"), DENIED);
    fx_reject(&f, c_request(&f, "op1", ""), INVALID);
    fx_reject(&f, c_request(&f, "op1", rep('x', 401)), INVALID);
    fx_reject(&f, c_request(&f, "op1", "a\x01z"), INVALID);
    CHECK(get(&f) == NULL);
    int64_t at = f.now_ms;
    uint64_t id = requested(&f, "op1");
    Kyufu__V1__Decommission *d = get(&f);
    CHECK(d != NULL);
    CHECK_EQ(d->id, id);
    CHECK_STR(d->requested_by, "op1");
    CHECK_EQ(d->requested_ms, at);
    CHECK_STR(d->approved_by, "");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    /* Alone, another role, another id, id 0: refused. */
    fx_reject(&f, c_approve_d(&f, "op1", id), PRECONDITION);
    fx_reject(&f, c_approve_d(&f, "clerk", id), DENIED);
    fx_reject(&f, c_approve_d(&f, "admin", id), DENIED);
    fx_reject(&f, c_approve_d(&f, "op2", id + 1), NOT_FOUND);
    fx_reject(&f, c_approve_d(&f, "op2", 0), INVALID);
    /* Another operator's request while one is pending: refused. */
    fx_reject(&f, c_request(&f, "op2", "mine"), PRECONDITION);
    d = get(&f);
    CHECK_STR(d->approved_by, "");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    /* The second operator. */
    int64_t at2 = f.now_ms;
    fx_do(&f, c_approve_d(&f, "op2", id));
    d = get(&f);
    CHECK_STR(d->approved_by, "op2");
    CHECK_EQ(d->approved_ms, at2);
    kyufu__v1__decommission__free_unpacked(d, NULL);
    /* Final: no second approval, no new request. */
    fx_reject(&f, c_approve_d(&f, "op3", id), PRECONDITION);
    fx_reject(&f, c_request(&f, "op1", "again"), PRECONDITION);
    /* It survives a restart and a snapshot. */
    fx_reopen(&f);
    d = get(&f);
    CHECK_STR(d->approved_by, "op2");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    struct fx g;
    fx_open(&g);
    fx_restore_from(&g, &f);
    d = get(&g);
    CHECK(d != NULL);
    CHECK_EQ(d->id, id);
    CHECK_STR(d->approved_by, "op2");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    fx_close(&g);
    fx_invariants(&f);
    fx_close(&f);
}

static void expiry(void)
{
    struct fx f;
    world(&f);
    uint64_t id = requested(&f, "op1");
    /* One millisecond past the window: refused, nothing approved. */
    f.now_ms += KYUFU_DECOMMISSION_PENDING_MS;
    fx_reject(&f, c_approve_d(&f, "op2", id), PRECONDITION);
    Kyufu__V1__Decommission *d = get(&f);
    CHECK_STR(d->approved_by, "");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    /* An expired request is replaced by anyone's new one. */
    uint64_t id2 = requested(&f, "op2");
    CHECK(id2 > id);
    fx_reject(&f, c_approve_d(&f, "op1", id), NOT_FOUND);
    /* Just inside the window: approved. */
    f.now_ms += KYUFU_DECOMMISSION_PENDING_MS - 2000;
    fx_do(&f, c_approve_d(&f, "op1", id2));
    fx_close(&f);
}

static void requester_renews_and_must_still_count(void)
{
    struct fx f;
    world(&f);
    uint64_t id = requested(&f, "op3");
    /* The requester's repeat replaces its own pending request. */
    uint64_t id2 = requested(&f, "op3");
    CHECK(id2 > id);
    fx_reject(&f, c_approve_d(&f, "op1", id), NOT_FOUND);
    /* A requester who is no longer an operator does not count. */
    fx_do(&f, c_set_roles(&f, "admin", "op3", R_CLERK));
    fx_reject(&f, c_approve_d(&f, "op1", id2), PRECONDITION);
    Kyufu__V1__Decommission *d = get(&f);
    CHECK_STR(d->approved_by, "");
    kyufu__v1__decommission__free_unpacked(d, NULL);
    fx_close(&f);
}

static void older_cluster_refuses(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_version(&f, FX_ADMIN_PAIR_VERSION);
    fx_do(&f, c_create_staff(&f, "admin", "op1", R_OPERATOR));
    fx_reject(&f, c_request(&f, "op1", "too early"), PRECONDITION);
    CHECK(get(&f) == NULL);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(two_operators),
        T_CASE(expiry),
        T_CASE(requester_renews_and_must_still_count),
        T_CASE(older_cluster_refuses),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
