/* Rules every command goes through (docs/ledger-rules.md, "Order of checks"):
 * header validation, duplicates (exactly-once), unknown bodies, the actor
 * and its roles, bootstrap, malformed entries, stale indexes, batches of
 * several commands in one entry, session retention. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/storage_limits.h"
#include "cmd.h"

#define OK KYUFU__V1__CODE__OK
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND

static void free_cmd(Kyufu__V1__Command *c)
{
    kyufu__v1__command__free_unpacked(c, NULL);
}

static bool same_result(const Kyufu__V1__CommandResult *a,
                        const Kyufu__V1__CommandResult *b)
{
    size_t na = kyufu__v1__command_result__get_packed_size(a);
    size_t nb = kyufu__v1__command_result__get_packed_size(b);
    if (na != nb) {
        return false;
    }
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
    CHECK(pa != NULL && pb != NULL);
    kyufu__v1__command_result__pack(a, pa);
    kyufu__v1__command_result__pack(b, pb);
    bool eq = memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

/* A valid command on the standard world, to break one header field of. */
static Kyufu__V1__Command *base(struct fx *f)
{
    return c_register_household(f, "clerk", "H-9");
}

/* ---------------------------------------------------------------- header */

static void header_missing(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = base(&f);
    kyufu__v1__command_header__free_unpacked(c->header, NULL);
    c->header = NULL;
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}

static void header_actor(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const char *bad[] = {"", "Clerk", "cl erk", "clerk/1", "clérk",
                         rep('a', KYUFU_ACTOR_BYTES_MAX + 1)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Kyufu__V1__Command *c = base(&f);
        c_str(&c->header->actor, bad[i]);
        fx_reject(&f, c, INVALID);
    }
    /* Well-formed at the limit but unknown: past step 1, denied at 4. */
    Kyufu__V1__Command *c = base(&f);
    c_str(&c->header->actor, rep('z', KYUFU_ACTOR_BYTES_MAX));
    fx_reject(&f, c, DENIED);
    fx_close(&f);
}

static void header_terminal(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = base(&f);
    c_str(&c->header->terminal, rep('t', KYUFU_TERMINAL_BYTES_MAX + 1));
    fx_reject(&f, c, INVALID);
    c = base(&f);
    c_str(&c->header->terminal, "");
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "H-10");
    c_str(&c->header->terminal, rep('t', KYUFU_TERMINAL_BYTES_MAX));
    fx_do(&f, c);
    /* Any bytes up to the limit; the audit keeps them as sent. */
    c = c_register_household(&f, "clerk", "H-11");
    c_str(&c->header->terminal, "窓口端末-03");
    fx_do(&f, c);
    fx_close(&f);
}

static void header_key(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = base(&f);
    kyufu__v1__idempotency_key__free_unpacked(c->header->key, NULL);
    c->header->key = NULL;
    fx_reject(&f, c, INVALID);

    const char *bad[] = {"", rep('c', KYUFU_CLIENT_ID_BYTES_MAX + 1),
                         "client\x01", "client\x7f", "cliént"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = base(&f);
        c_str(&c->header->key->client_id, bad[i]);
        fx_reject(&f, c, INVALID);
    }
    c = base(&f);
    c->header->key->sequence = 0;
    fx_reject(&f, c, INVALID);

    /* Printable ASCII at the limit, spaces included, is a usable key. */
    c = base(&f);
    c_str(&c->header->key->client_id, "front end #7 ~ counter");
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "H-10");
    c_str(&c->header->key->client_id, rep('k', KYUFU_CLIENT_ID_BYTES_MAX));
    fx_do(&f, c);
    fx_close(&f);
}

static void header_time(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = base(&f);
    c->header->time_ms = 0;
    fx_reject(&f, c, INVALID);
    c = base(&f);
    c->header->time_ms = -1;
    fx_reject(&f, c, INVALID);
    c = base(&f);
    c->header->time_ms = INT64_MIN;
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}

/* ---------------------------------------------------- body, actor, roles */

static void unknown_command(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_new(&f, "clerk");
    uint64_t seq = fx_audit_count(&f) + 1;
    fx_reject(&f, c, INVALID);
    Kyufu__V1__AuditRecord *a = fx_audit(&f, seq);
    CHECK_STR(a->command, "Unknown");
    CHECK_STR(a->object, "");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    fx_close(&f);
}

static void actor_unknown(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_register_household(&f, "ghost", "H-9"), DENIED);
    fx_reject(&f, c_create_staff(&f, "ghost", "ghost", R_ADMIN), DENIED);
    fx_close(&f);
}

static void actor_inactive(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_set_status(&f, "admin", "clerk",
                           KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED));
    fx_reject(&f, c_register_household(&f, "clerk", "H-9"), DENIED);
    /* A suspended ID administrator manages no one. */
    fx_do(&f, c_set_status(&f, "admin2", "admin",
                           KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED));
    fx_reject(&f, c_set_status(&f, "admin", "clerk",
                               KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE),
              DENIED);
    fx_do(&f, c_set_status(&f, "admin2", "clerk",
                           KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE));
    fx_do(&f, c_register_household(&f, "clerk", "H-9"));
    fx_do(&f, c_set_status(&f, "admin2", "appr",
                           KYUFU__V1__STAFF_STATUS__STAFF_DISABLED));
    fx_reject(&f, c_open_program(&f, "appr", "P1"), DENIED);
    fx_close(&f);
}

/* Every command kind, valid on the standard world apart from its actor. */
enum
{
    K_CREATE_PROGRAM,
    K_OPEN_PROGRAM,
    K_CLOSE_PROGRAM,
    K_ADJUST_BUDGET,
    K_REGISTER_HOUSEHOLD,
    K_UPDATE_HOUSEHOLD,
    K_SUBMIT,
    K_APPROVE,
    K_REJECT,
    K_CANCEL,
    K_CREATE_BATCH,
    K_CONFIRM,
    K_RETURN,
    K_CREATE_STAFF,
    K_SET_ROLES,
    K_SET_STATUS,
    K_COUNT
};

/* Objects the kinds refer to; made by roles_prepare. */
struct world_ids
{
    uint64_t received, approved, batch, paid;
};

static Kyufu__V1__Command *build(struct fx *f, int kind, const char *actor,
                                 const struct world_ids *w)
{
    switch (kind) {
    case K_CREATE_PROGRAM:
        return c_create_program(f, actor, "P9", 1000);
    case K_OPEN_PROGRAM:
        return c_open_program(f, actor, "P2");
    case K_CLOSE_PROGRAM:
        return c_close_program(f, actor, "P1");
    case K_ADJUST_BUDGET:
        return c_adjust_budget(f, actor, "P1", 1000, "補正予算");
    case K_REGISTER_HOUSEHOLD:
        return c_register_household(f, actor, "H-9");
    case K_UPDATE_HOUSEHOLD:
        return c_update_household(f, actor, "H-1", 1);
    case K_SUBMIT:
        return c_submit(f, actor, "P1", "H-4", 0);
    case K_APPROVE:
        return c_approve(f, actor, w->received);
    case K_REJECT:
        return c_reject(f, actor, w->received, "要件を満たさない");
    case K_CANCEL:
        return c_cancel(f, actor, w->received, "取下げ");
    case K_CREATE_BATCH:
        return c_create_batch(f, actor, "P1", 20260415, &w->approved, 1);
    case K_CONFIRM:
        return c_confirm(f, actor, w->batch);
    case K_RETURN:
        return c_return(f, actor, w->paid, "口座解約");
    case K_CREATE_STAFF:
        return c_create_staff(f, actor, "newbie", R_CLERK);
    case K_SET_ROLES:
        return c_set_roles(f, actor, "clerk2", R_CLERK | R_AUDITOR);
    default:
        return c_set_status(f, actor, "clerk2",
                            KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED);
    }
}

static void roles_prepare(struct fx *f, struct world_ids *w)
{
    fx_world(f);
    fx_do(f, c_create_program(f, "appr", "P2", 1000));
    /* H-1 paid through batch 1; H-2 approved, in unconfirmed batch 2; H-3
     * approved, in no batch; H-5 received.  All submitted by clerk. */
    w->paid = fx_paid(f, "P1", "H-1");
    uint64_t in_batch = fx_approved(f, "P1", "H-2");
    w->batch = fx_batch_of(f, "P1", &in_batch, 1);
    w->approved = fx_approved(f, "P1", "H-3");
    fx_do(f, c_register_household(f, "clerk", "H-5"));
    w->received = fx_submitted(f, "P1", "H-5");
}

/* Docs "Roles" table: which actors lack the role of each kind.  aud holds
 * only AUDITOR, admin only ID_ADMIN, clerk only CLERK, appr only APPROVER. */
static void role_missing(void)
{
    static const char *const lacking[K_COUNT][4] = {
        [K_CREATE_PROGRAM] = {"clerk", "admin", "aud", NULL},
        [K_OPEN_PROGRAM] = {"clerk", "admin", "aud", NULL},
        [K_CLOSE_PROGRAM] = {"clerk", "admin", "aud", NULL},
        [K_ADJUST_BUDGET] = {"clerk", "admin", "aud", NULL},
        [K_REGISTER_HOUSEHOLD] = {"appr", "admin", "aud", NULL},
        [K_UPDATE_HOUSEHOLD] = {"appr", "admin", "aud", NULL},
        [K_SUBMIT] = {"appr", "admin", "aud", NULL},
        [K_APPROVE] = {"clerk", "admin", "aud", NULL},
        [K_REJECT] = {"clerk", "admin", "aud", NULL},
        [K_CANCEL] = {"admin", "aud", NULL, NULL},
        [K_CREATE_BATCH] = {"appr", "admin", "aud", NULL},
        [K_CONFIRM] = {"clerk", "admin", "aud", NULL},
        [K_RETURN] = {"appr", "admin", "aud", NULL},
        [K_CREATE_STAFF] = {"clerk", "appr", "aud", "both"},
        [K_SET_ROLES] = {"clerk", "appr", "aud", "both"},
        [K_SET_STATUS] = {"clerk", "appr", "aud", "both"},
    };
    struct fx f;
    fx_open(&f);
    struct world_ids w;
    roles_prepare(&f, &w);
    for (int k = 0; k < K_COUNT; k++) {
        for (int i = 0; i < 4 && lacking[k][i] != NULL; i++) {
            fx_reject(&f, build(&f, k, lacking[k][i], &w), DENIED);
        }
    }
    fx_close(&f);
}

/* The same commands with the right role succeed (so role_missing proves the
 * role check, not some other rejection). */
static void role_present(void)
{
    static const char *const holder[K_COUNT] = {
        [K_CREATE_PROGRAM] = "appr", [K_OPEN_PROGRAM] = "appr",
        [K_CLOSE_PROGRAM] = "appr",  [K_ADJUST_BUDGET] = "appr",
        [K_REGISTER_HOUSEHOLD] = "clerk", [K_UPDATE_HOUSEHOLD] = "clerk",
        [K_SUBMIT] = "clerk",        [K_APPROVE] = "appr",
        [K_REJECT] = "appr",         [K_CANCEL] = "clerk",
        [K_CREATE_BATCH] = "clerk",  [K_CONFIRM] = "appr2",
        [K_RETURN] = "clerk",        [K_CREATE_STAFF] = "admin",
        [K_SET_ROLES] = "admin",     [K_SET_STATUS] = "admin",
    };
    for (int k = 0; k < K_COUNT; k++) {
        struct fx f;
        fx_open(&f);
        struct world_ids w;
        roles_prepare(&f, &w);
        fx_do(&f, build(&f, k, holder[k], &w));
        fx_close(&f);
    }
    /* CancelApplication is open to approvers too. */
    struct fx f;
    fx_open(&f);
    struct world_ids w;
    roles_prepare(&f, &w);
    fx_do(&f, build(&f, K_CANCEL, "appr", &w));
    fx_close(&f);
}

/* ------------------------------------------------------------- bootstrap */

static void bootstrap(void)
{
    struct fx f;
    fx_open(&f);
    /* Nothing but the self-made first ID administrator is accepted. */
    fx_reject(&f, c_create_program(&f, "root", "P1", 1000), DENIED);
    fx_reject(&f, c_register_household(&f, "root", "H-1"), DENIED);
    fx_reject(&f, c_create_staff(&f, "root", "alice", R_ADMIN), DENIED);
    fx_reject(&f, c_create_staff(&f, "root", "root", R_CLERK), DENIED);
    fx_reject(&f, c_create_staff(&f, "root", "root", R_ADMIN | R_AUDITOR),
              DENIED);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_create_staff(&f, "root", "root", R_ADMIN));
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    CHECK_STR(r->object, "staff/root");
    CHECK_STR(r->staff->staff_id, "root");
    CHECK_EQ(r->staff->roles_mask, R_ADMIN);
    CHECK_EQ(r->staff->status, KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE);
    fx_free(r);
    /* Bootstrap happens once: a second self-made account is an unknown
     * actor. */
    fx_reject(&f, c_create_staff(&f, "eve", "eve", R_ADMIN), DENIED);
    fx_do(&f, c_create_staff(&f, "root", "alice", R_CLERK));
    fx_close(&f);
}

/* ------------------------------------------------------------ exactly-once */

static void retry_returns_first_result(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_submit(&f, "clerk", "P1", "H-1", 0);
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, OK);
    uint64_t count = fx_audit_count(&f);
    struct blob before, after;
    fx_state(&f, &before);
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK(same_result(r1, r2));
    CHECK_EQ(r2->raft_index, f.index - 1);
    CHECK_EQ(fx_audit_count(&f), count);
    fx_state(&f, &after);
    CHECK(blob_eq(&before, &after));
    /* Re-stamped by a new leader (another time): still the same key. */
    c->header->time_ms += 5000;
    Kyufu__V1__CommandResult *r3 = fx_apply(&f, c);
    CHECK(same_result(r1, r3));
    CHECK_EQ(fx_audit_count(&f), count);
    blob_free(&before);
    blob_free(&after);
    fx_free(r1);
    fx_free(r2);
    fx_free(r3);
    free_cmd(c);
    fx_invariants(&f);
    fx_close(&f);
}

/* A duplicate writes nothing at all: the state digest equals that of a
 * replica which applied an empty entry at the same index. */
static void retry_writes_nothing_digest(void)
{
    struct fx a, b;
    fx_open(&a);
    fx_open(&b);
    fx_world(&a);
    fx_world(&b);
    Kyufu__V1__Command *ca = c_submit(&a, "clerk", "P1", "H-1", 0);
    Kyufu__V1__Command *cb = c_submit(&b, "clerk", "P1", "H-1", 0);
    fx_free(fx_apply(&a, ca));
    fx_free(fx_apply(&b, cb));
    uint8_t da[32], db[32];
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    fx_free(fx_apply(&a, ca)); /* the retry */
    b.index++;
    char err[128];
    CHECK_EQ(kyufu_storage_apply_noop(b.s, b.index, b.term, err, sizeof err),
             0);
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    /* The same for a duplicate of a rejected command. */
    Kyufu__V1__Command *ra = c_approve(&a, "clerk", 1); /* clerk: denied */
    Kyufu__V1__Command *rb = c_approve(&b, "clerk", 1);
    fx_free(fx_apply(&a, ra));
    fx_free(fx_apply(&b, rb));
    fx_free(fx_apply(&a, ra));
    b.index++;
    CHECK_EQ(kyufu_storage_apply_noop(b.s, b.index, b.term, err, sizeof err),
             0);
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    free_cmd(ca);
    free_cmd(cb);
    free_cmd(ra);
    free_cmd(rb);
    fx_close(&a);
    fx_close(&b);
}

static void retry_of_rejection_stays_rejected(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_submit(&f, "clerk", "P1", "H-9", 0);
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, NOTFOUND);
    fx_do(&f, c_register_household(&f, "clerk", "H-9"));
    /* Would succeed now, but the key was used: the first answer stands. */
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK(same_result(r1, r2));
    struct kyufu_storage_page page = {0};
    struct kyufu_storage_app_filter flt = {.household_no = "H-9"};
    CHECK_EQ(kyufu_storage_list_applications(f.s, &flt, "", 10, &page), 0);
    CHECK_EQ(page.n, 0);
    kyufu_storage_page_free(&page);
    fx_free(r1);
    fx_free(r2);
    free_cmd(c);
    fx_close(&f);
}

static void retry_in_same_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t count = fx_audit_count(&f);
    Kyufu__V1__Command *c = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    Kyufu__V1__Command *cmds[2] = {c, c};
    Kyufu__V1__CommandResult *r[2];
    fx_apply_batch(&f, cmds, 2, r);
    CHECK_CODE(r[0], OK);
    CHECK(same_result(r[0], r[1]));
    CHECK_EQ(fx_audit_count(&f), count + 1);
    fx_balances(&f, "P1", 100500, 100500, 0, 0);
    fx_free(r[0]);
    fx_free(r[1]);
    free_cmd(c);
    fx_close(&f);
}

static void same_sequence_other_client(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    Kyufu__V1__Command *d = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    d->header->key->sequence = c->header->key->sequence;
    c_str(&d->header->key->client_id, "other-client");
    fx_do(&f, c);
    fx_do(&f, d);
    fx_balances(&f, "P1", 101000, 101000, 0, 0);
    fx_close(&f);
}

/* After the retention a retry is a new command (docs "Client sessions"). */
static void session_expires(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, OK);
    /* Within the retention: duplicate. */
    f.now_ms = c->header->time_ms + KYUFU_SESSION_RETENTION_MS - 1000;
    c->header->time_ms = f.now_ms;
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK(same_result(r1, r2));
    fx_balances(&f, "P1", 100500, 100500, 0, 0);
    /* Past it, and after a later command had the chance to prune. */
    f.now_ms += 2 * KYUFU_SESSION_RETENTION_MS;
    /* Pruning is bounded per command: give it room for every old key. */
    const char *later[] = {"H-9", "H-10", "H-11", "H-12", "H-13"};
    for (size_t i = 0; i < 5; i++) {
        fx_do(&f, c_register_household(&f, "clerk", later[i]));
    }
    c->header->time_ms = f.now_ms;
    Kyufu__V1__CommandResult *r3 = fx_apply(&f, c);
    CHECK_CODE(r3, OK);
    CHECK(r3->audit_seq > r1->audit_seq);
    CHECK_EQ(r3->raft_index, f.index);
    fx_balances(&f, "P1", 101000, 101000, 0, 0);
    fx_free(r1);
    fx_free(r2);
    fx_free(r3);
    free_cmd(c);
    fx_close(&f);
}

/* --------------------------------------------------------------- entries */

static void several_commands_one_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t count = fx_audit_count(&f);
    Kyufu__V1__Command *cmds[3] = {
        c_register_household(&f, "clerk", "H-9"),
        c_submit(&f, "clerk", "P1", "H-9", 0), /* sees the household */
        c_approve(&f, "clerk", 1),             /* rejected: no role */
    };
    Kyufu__V1__CommandResult *r[3];
    fx_apply_batch(&f, cmds, 3, r);
    CHECK_CODE(r[0], OK);
    CHECK_CODE(r[1], OK);
    CHECK_CODE(r[2], DENIED);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(r[i]->raft_index, f.index);
        CHECK_EQ(r[i]->audit_seq, count + 1 + (uint64_t)i);
        Kyufu__V1__AuditRecord *a = fx_audit(&f, count + 1 + (uint64_t)i);
        CHECK_STR(a->command, c_name(cmds[i]));
        CHECK_EQ(a->outcome, r[i]->code);
        CHECK_EQ(a->client_seq, cmds[i]->header->key->sequence);
        kyufu__v1__audit_record__free_unpacked(a, NULL);
        fx_free(r[i]);
        free_cmd(cmds[i]);
    }
    CHECK_EQ(fx_audit_count(&f), count + 3);
    fx_close(&f);
}

static void malformed_bytes(void)
{
    struct fx a, b;
    fx_open(&a);
    fx_open(&b);
    fx_world(&a);
    fx_world(&b);
    uint64_t count = fx_audit_count(&a);
    struct blob before, after;
    fx_state(&a, &before);

    /* Garbage, a truncated valid batch, a wrong wire type. */
    Kyufu__V1__Command *c = c_register_household(&a, "clerk", "H-9");
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    batch.n_commands = 1;
    batch.commands = &c;
    size_t n = kyufu__v1__command_batch__get_packed_size(&batch);
    uint8_t *buf = malloc(n);
    CHECK(buf != NULL);
    kyufu__v1__command_batch__pack(&batch, buf);
    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    const uint8_t wire[] = {0x0d, 0x01, 0x02, 0x03, 0x04}; /* field 1 fixed32 */
    struct
    {
        const uint8_t *p;
        size_t n;
    } inputs[] = {{garbage, sizeof garbage}, {buf, n - 3}, {wire, sizeof wire}};
    for (size_t i = 0; i < 3; i++) {
        struct kyufu_storage_results res = {0};
        char err[128];
        a.index++;
        CHECK_EQ(kyufu_storage_apply_bytes(a.s, a.index, a.term, inputs[i].p,
                                           inputs[i].n, &res, err, sizeof err),
                 0);
        CHECK_EQ(res.n, 0);
        kyufu_storage_results_free(&res);
        uint64_t index = 0, term = 0;
        kyufu_storage_applied(a.s, &index, &term);
        CHECK_EQ(index, a.index);
        b.index++;
        CHECK_EQ(kyufu_storage_apply_noop(b.s, b.index, b.term, err,
                                          sizeof err),
                 0);
    }
    fx_state(&a, &after);
    CHECK(blob_eq(&before, &after));
    CHECK_EQ(fx_audit_count(&a), count);
    uint8_t da[32], db[32];
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    /* The intact bytes apply like the struct. */
    struct kyufu_storage_results res = {0};
    char err[128];
    a.index++;
    CHECK_EQ(kyufu_storage_apply_bytes(a.s, a.index, a.term, buf, n, &res, err,
                                       sizeof err),
             0);
    CHECK_EQ(res.n, 1);
    Kyufu__V1__CommandResult *r0 = kyufu_storage_result_unpack(&res.items[0]);
    CHECK(r0 != NULL);
    CHECK_CODE(r0, OK);
    CHECK_STR(r0->object, "household/H-9");
    kyufu__v1__command_result__free_unpacked(r0, NULL);
    kyufu_storage_results_free(&res);
    blob_free(&before);
    blob_free(&after);
    free(buf);
    free_cmd(c);
    fx_invariants(&a);
    fx_close(&a);
    fx_close(&b);
}

static void empty_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    struct kyufu_storage_results res = {0};
    char err[128];
    f.index++;
    const uint8_t none[1] = {0};
    CHECK_EQ(kyufu_storage_apply_bytes(f.s, f.index, f.term, none, 0, &res,
                                       err, sizeof err),
             0);
    CHECK_EQ(res.n, 0);
    kyufu_storage_results_free(&res);
    uint64_t index = 0, term = 0;
    kyufu_storage_applied(f.s, &index, &term);
    CHECK_EQ(index, f.index);
    fx_close(&f);
}

static void stale_index(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint8_t d1[32], d2[32];
    fx_digest(&f, d1);
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", "H-9");
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    batch.n_commands = 1;
    batch.commands = &c;
    struct kyufu_storage_results res = {0};
    char err[128];
    CHECK_EQ(kyufu_storage_apply(f.s, f.index, f.term, &batch, &res, err,
                                 sizeof err),
             KYUFU_STORAGE_ESTALE);
    kyufu_storage_results_free(&res);
    CHECK_EQ(kyufu_storage_apply(f.s, 1, f.term, &batch, &res, err,
                                 sizeof err),
             KYUFU_STORAGE_ESTALE);
    kyufu_storage_results_free(&res);
    CHECK_EQ(kyufu_storage_apply_noop(f.s, f.index, f.term, err, sizeof err),
             KYUFU_STORAGE_ESTALE);
    fx_digest(&f, d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    free_cmd(c);
    fx_close(&f);
}

/* docs "Order of checks": the first failing step decides the code. */
static void order_of_checks(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* 4 before 6: an unknown actor with bad fields is denied. */
    fx_reject(&f, c_create_program(&f, "ghost", "bad code", -1), DENIED);
    /* 5 before 6: a clerk's bad CreateProgram is denied, not invalid. */
    fx_reject(&f, c_create_program(&f, "clerk", "bad code", -1), DENIED);
    /* 6 before 7: bad fields on an unknown program are invalid. */
    fx_reject(&f, c_adjust_budget(&f, "appr", "NOPE", 0, "補正"), INVALID);
    fx_reject(&f, c_submit(&f, "clerk", "NOPE", "H-1", -5), INVALID);

    /* 2 before 3..7: a used key returns its first result to its owner
     * for the same command, and writes nothing. */
    Kyufu__V1__Command *c = c_adjust_budget(&f, "appr", "P1", 100, "補正");
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, OK);
    uint64_t count = fx_audit_count(&f);
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK(same_result(r1, r2));
    CHECK_EQ(fx_audit_count(&f), count);
    fx_free(r2);
    /* Identity rules: another actor, or another command, is refused
     * before anything else (and audited), never given the result. */
    Kyufu__V1__Command *other = c_new(&f, "ghost"); /* no body, no actor */
    other->header->key->sequence = c->header->key->sequence;
    r2 = fx_apply(&f, other);
    CHECK_CODE(r2, DENIED);
    CHECK(r2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD__NOT_SET);
    CHECK_EQ(fx_audit_count(&f), count + 1);
    fx_free(r2);
    c_str(&other->header->actor, "appr");
    r2 = fx_apply(&f, other);
    CHECK_CODE(r2, INVALID);
    CHECK_STR(r2->message, "key already used for another command");
    CHECK_EQ(fx_audit_count(&f), count + 2);
    count += 2;
    /* 1 before 2: a used key with a broken header is not a duplicate. */
    other->header->time_ms = 0;
    Kyufu__V1__CommandResult *r3 = fx_apply(&f, other);
    CHECK_CODE(r3, INVALID);
    CHECK_EQ(fx_audit_count(&f), count + 1);
    fx_balances(&f, "P1", 100100, 100100, 0, 0);
    fx_free(r1);
    fx_free(r2);
    fx_free(r3);
    free_cmd(c);
    free_cmd(other);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(header_missing),
        T_CASE(header_actor),
        T_CASE(header_terminal),
        T_CASE(header_key),
        T_CASE(header_time),
        T_CASE(unknown_command),
        T_CASE(actor_unknown),
        T_CASE(actor_inactive),
        T_CASE(role_missing),
        T_CASE(role_present),
        T_CASE(bootstrap),
        T_CASE(retry_returns_first_result),
        T_CASE(retry_writes_nothing_digest),
        T_CASE(retry_of_rejection_stays_rejected),
        T_CASE(retry_in_same_entry),
        T_CASE(same_sequence_other_client),
        T_CASE(session_expires),
        T_CASE(several_commands_one_entry),
        T_CASE(malformed_bytes),
        T_CASE(empty_entry),
        T_CASE(stale_index),
        T_CASE(order_of_checks),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
