/* SubmitApplication, ApproveApplication, RejectApplication,
 * CancelApplication (docs/ledger-rules.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define EXHAUSTED KYUFU__V1__CODE__RESOURCE_EXHAUSTED

static Kyufu__V1__ApplicationStatus status_of(struct fx *f, uint64_t id)
{
    Kyufu__V1__Application *a = fx_app(f, id);
    Kyufu__V1__ApplicationStatus st = a->status;
    kyufu__v1__application__free_unpacked(a, NULL);
    return st;
}

static bool same_app(const Kyufu__V1__Application *a,
                     const Kyufu__V1__Application *b)
{
    uint8_t pa[2048], pb[2048];
    size_t na = kyufu__v1__application__get_packed_size(a);
    size_t nb = kyufu__v1__application__get_packed_size(b);
    CHECK(na <= sizeof pa && nb <= sizeof pb);
    kyufu__v1__application__pack(a, pa);
    kyufu__v1__application__pack(b, pb);
    return na == nb && memcmp(pa, pb, na) == 0;
}

static void submit_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_submit(&f, "clerk", "P1", "H-1", 0);
    c->submit_application->channel = KYUFU__V1__CHANNEL__CHANNEL_ONLINE;
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "application/1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION);
    const Kyufu__V1__Application *a = r->application;
    CHECK_EQ(a->id, 1);
    CHECK_STR(a->program_code, "P1");
    CHECK_STR(a->household_no, "H-1");
    CHECK_EQ(a->channel, KYUFU__V1__CHANNEL__CHANNEL_ONLINE);
    CHECK_EQ(a->amount, 10000); /* 0 resolves to the unit amount */
    CHECK_EQ(a->status, KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED);
    CHECK_STR(a->submitted_by, "clerk");
    CHECK_EQ(a->submitted_ms, t);
    CHECK_STR(a->decided_by, "");
    CHECK_EQ(a->batch_id, 0);
    CHECK_EQ(a->paid_ms, 0);
    Kyufu__V1__Application *stored = fx_app(&f, 1);
    CHECK(same_app(a, stored));
    kyufu__v1__application__free_unpacked(stored, NULL);
    fx_free(r);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);

    /* Ids run across programs; explicit amounts up to 10 units. */
    fx_do(&f, c_create_program(&f, "appr", "P2", 1000000));
    fx_do(&f, c_open_program(&f, "appr", "P2"));
    c = c_submit(&f, "clerk", "P2", "H-1", 100000);
    c->submit_application->channel = KYUFU__V1__CHANNEL__CHANNEL_MAIL;
    r = fx_ok(&f, c);
    CHECK_STR(r->object, "application/2");
    CHECK_EQ(r->application->id, 2);
    CHECK_EQ(r->application->amount, 100000);
    fx_free(r);
    r = fx_ok(&f, c_submit(&f, "clerk", "P1", "H-2", 1));
    CHECK_EQ(r->application->id, 3);
    CHECK_EQ(r->application->amount, 1);
    fx_free(r);
    fx_close(&f);
}

static void submit_bad_fields(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const int64_t amounts[] = {-1, 100001, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof amounts / sizeof amounts[0]; i++) {
        fx_reject(&f, c_submit(&f, "clerk", "P1", "H-1", amounts[i]),
                  INVALID);
    }
    const int channels[] = {KYUFU__V1__CHANNEL__CHANNEL_UNSPECIFIED, 4, 99,
                            -1};
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++) {
        Kyufu__V1__Command *c = c_submit(&f, "clerk", "P1", "H-1", 0);
        c->submit_application->channel = (Kyufu__V1__Channel)channels[i];
        fx_reject(&f, c, INVALID);
    }
    fx_reject(&f, c_submit(&f, "clerk", "", "H-1", 0), INVALID);
    fx_reject(&f, c_submit(&f, "clerk", "P 1", "H-1", 0), INVALID);
    fx_reject(&f, c_submit(&f, "clerk", "P1", "", 0), INVALID);
    fx_reject(&f, c_submit(&f, "clerk", "P1", "H_1", 0), INVALID);
    fx_reject(&f, c_submit(&f, "clerk", "P1", rep('1', 33), 0), INVALID);
    fx_close(&f);
}

static void submit_not_found(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_submit(&f, "clerk", "P404", "H-1", 0), NOTFOUND);
    fx_reject(&f, c_submit(&f, "clerk", "P1", "H-404", 0), NOTFOUND);
    fx_close(&f);
}

static void submit_program_state_and_window(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* A DRAFT program takes no applications, inside its window too. */
    fx_do(&f, c_create_program(&f, "appr", "P3", 100000));
    fx_reject(&f, c_submit(&f, "clerk", "P3", "H-1", 0), FAILED);
    /* Window [start, start + 50000); time only moves forward. */
    Kyufu__V1__Command *c = c_create_program(&f, "appr", "P2", 100000);
    int64_t start = f.now_ms + 100000;
    c->create_program->window_start_ms = start;
    c->create_program->window_end_ms = start + 50000;
    fx_do(&f, c);
    fx_do(&f, c_open_program(&f, "appr", "P2"));
    f.now_ms = start - 1;
    fx_reject(&f, c_submit(&f, "clerk", "P2", "H-1", 0), FAILED);
    f.now_ms = start; /* the start is included */
    fx_do(&f, c_submit(&f, "clerk", "P2", "H-1", 0));
    f.now_ms = start + 49999;
    fx_do(&f, c_submit(&f, "clerk", "P2", "H-2", 0));
    f.now_ms = start + 50000; /* the end is excluded */
    fx_reject(&f, c_submit(&f, "clerk", "P2", "H-3", 0), FAILED);
    /* A CLOSED program takes no applications, inside its window too. */
    fx_do(&f, c_close_program(&f, "appr", "P1"));
    fx_reject(&f, c_submit(&f, "clerk", "P1", "H-3", 0), FAILED);
    fx_close(&f);
}

static void submit_second_live(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t received = fx_submitted(&f, "P1", "H-1");
    uint64_t approved = fx_approved(&f, "P1", "H-2");
    uint64_t paid = fx_paid(&f, "P1", "H-3");
    uint64_t returned = fx_paid(&f, "P1", "H-4");
    fx_do(&f, c_return(&f, "clerk", returned, "口座解約"));
    CHECK_EQ(status_of(&f, received), KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED);
    CHECK_EQ(status_of(&f, approved), KYUFU__V1__APPLICATION_STATUS__APP_APPROVED);
    CHECK_EQ(status_of(&f, paid), KYUFU__V1__APPLICATION_STATUS__APP_PAID);
    CHECK_EQ(status_of(&f, returned), KYUFU__V1__APPLICATION_STATUS__APP_RETURNED);
    const char *hh[] = {"H-1", "H-2", "H-3", "H-4"};
    for (int i = 0; i < 4; i++) {
        fx_reject(&f, c_submit(&f, "clerk2", "P1", hh[i], 0), EXISTS);
    }
    /* Another program is another pair. */
    fx_do(&f, c_create_program(&f, "appr", "P2", 100000));
    fx_do(&f, c_open_program(&f, "appr", "P2"));
    fx_do(&f, c_submit(&f, "clerk", "P2", "H-1", 0));
    fx_close(&f);
}

static void submit_after_rejected_or_cancelled(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t a = fx_submitted(&f, "P1", "H-1");
    fx_do(&f, c_reject(&f, "appr", a, "所得要件"));
    uint64_t b = fx_submitted(&f, "P1", "H-1");
    CHECK(b != a);
    fx_do(&f, c_cancel(&f, "clerk", b, "取下げ"));
    uint64_t c = fx_submitted(&f, "P1", "H-1");
    CHECK(c != b);
    fx_reject(&f, c_submit(&f, "clerk", "P1", "H-1", 0), EXISTS);
    fx_close(&f);
}

static void approve_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_submitted(&f, "P1", "H-1");
    Kyufu__V1__Command *c = c_approve(&f, "appr", id);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "application/1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION);
    CHECK_EQ(r->application->status,
             KYUFU__V1__APPLICATION_STATUS__APP_APPROVED);
    CHECK_STR(r->application->decided_by, "appr");
    CHECK_EQ(r->application->decided_ms, t);
    CHECK_STR(r->application->submitted_by, "clerk");
    Kyufu__V1__Application *stored = fx_app(&f, id);
    CHECK(same_app(r->application, stored));
    kyufu__v1__application__free_unpacked(stored, NULL);
    fx_free(r);
    fx_balances(&f, "P1", 100000, 90000, 10000, 0);
    /* Approval still works once the program is CLOSED. */
    uint64_t id2 = fx_submitted(&f, "P1", "H-2");
    fx_do(&f, c_close_program(&f, "appr", "P1"));
    fx_do(&f, c_approve(&f, "appr2", id2));
    fx_balances(&f, "P1", 100000, 80000, 20000, 0);
    fx_close(&f);
}

static void approve_wrong_state(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t approved = fx_approved(&f, "P1", "H-1");
    uint64_t rejected = fx_submitted(&f, "P1", "H-2");
    fx_do(&f, c_reject(&f, "appr", rejected, "要件"));
    uint64_t cancelled = fx_submitted(&f, "P1", "H-3");
    fx_do(&f, c_cancel(&f, "clerk", cancelled, "取下げ"));
    uint64_t paid = fx_paid(&f, "P1", "H-4");
    uint64_t ids[] = {approved, rejected, cancelled, paid};
    for (int i = 0; i < 4; i++) {
        fx_reject(&f, c_approve(&f, "appr2", ids[i]), FAILED);
    }
    fx_do(&f, c_return(&f, "clerk", paid, "口座解約"));
    fx_reject(&f, c_approve(&f, "appr2", paid), FAILED);
    fx_reject(&f, c_approve(&f, "appr2", 999), NOTFOUND);
    fx_reject(&f, c_approve(&f, "appr2", 0), INVALID);
    fx_close(&f);
}

static void approve_budget_exhausted(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t big = fx_submitted(&f, "P1", "H-1");
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -75000, "減額"));
    fx_balances(&f, "P1", 25000, 25000, 0, 0);
    fx_do(&f, c_approve(&f, "appr", big));
    uint64_t a2 = fx_submitted(&f, "P1", "H-2");
    fx_do(&f, c_approve(&f, "appr", a2));
    fx_balances(&f, "P1", 25000, 5000, 20000, 0);
    uint64_t a3 = fx_submitted(&f, "P1", "H-3");
    fx_reject(&f, c_approve(&f, "appr", a3), EXHAUSTED);
    CHECK_EQ(status_of(&f, a3), KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED);
    fx_balances(&f, "P1", 25000, 5000, 20000, 0);
    /* Exactly the available amount is fine. */
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", 5000, "補正"));
    fx_do(&f, c_approve(&f, "appr", a3));
    fx_balances(&f, "P1", 30000, 0, 30000, 0);
    fx_close(&f);
}

static void approve_own_submission(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_submit(&f, "both", "P1", "H-1", 0));
    uint64_t id = r->application->id;
    fx_free(r);
    fx_reject(&f, c_approve(&f, "both", id), DENIED);
    fx_reject(&f, c_reject(&f, "both", id, "自己決裁"), DENIED);
    fx_do(&f, c_approve(&f, "appr", id));
    fx_close(&f);
}

static void reject_ok_and_bad(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_submitted(&f, "P1", "H-1");
    fx_reject(&f, c_reject(&f, "appr", id, ""), INVALID);
    fx_reject(&f, c_reject(&f, "appr", id, rep('r', 401)), INVALID);
    fx_reject(&f, c_reject(&f, "appr", id, "理由\n"), INVALID);
    fx_reject(&f, c_reject(&f, "appr", 0, "理由"), INVALID);
    fx_reject(&f, c_reject(&f, "appr", 77, "理由"), NOTFOUND);
    Kyufu__V1__Command *c = c_reject(&f, "appr", id, "所得要件を満たさない");
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "application/1");
    CHECK_EQ(r->application->status,
             KYUFU__V1__APPLICATION_STATUS__APP_REJECTED);
    CHECK_STR(r->application->decided_by, "appr");
    CHECK_EQ(r->application->decided_ms, t);
    CHECK_STR(r->application->reason, "所得要件を満たさない");
    Kyufu__V1__Application *stored = fx_app(&f, id);
    CHECK(same_app(r->application, stored));
    kyufu__v1__application__free_unpacked(stored, NULL);
    fx_free(r);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    fx_reject(&f, c_reject(&f, "appr", id, "再度"), FAILED);
    uint64_t approved = fx_approved(&f, "P1", "H-2");
    fx_reject(&f, c_reject(&f, "appr2", approved, "承認後"), FAILED);
    fx_close(&f);
}

static void cancel_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t received = fx_submitted(&f, "P1", "H-1");
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_cancel(&f, "clerk2", received, "本人取下げ"));
    CHECK_STR(r->object, "application/1");
    CHECK_EQ(r->application->status,
             KYUFU__V1__APPLICATION_STATUS__APP_CANCELLED);
    CHECK_STR(r->application->reason, "本人取下げ");
    fx_free(r);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    /* Cancelling an approval releases its reservation. */
    uint64_t approved = fx_approved(&f, "P1", "H-2");
    fx_balances(&f, "P1", 100000, 90000, 10000, 0);
    r = fx_ok(&f, c_cancel(&f, "appr2", approved, "転出"));
    CHECK_EQ(r->application->status,
             KYUFU__V1__APPLICATION_STATUS__APP_CANCELLED);
    CHECK_STR(r->application->reason, "転出");
    fx_free(r);
    CHECK_EQ(status_of(&f, approved),
             KYUFU__V1__APPLICATION_STATUS__APP_CANCELLED);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    fx_close(&f);
}

static void cancel_wrong_state_and_bad(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t rejected = fx_submitted(&f, "P1", "H-1");
    fx_do(&f, c_reject(&f, "appr", rejected, "要件"));
    uint64_t cancelled = fx_submitted(&f, "P1", "H-1");
    fx_do(&f, c_cancel(&f, "clerk", cancelled, "取下げ"));
    uint64_t paid = fx_paid(&f, "P1", "H-2");
    uint64_t returned = fx_paid(&f, "P1", "H-3");
    fx_do(&f, c_return(&f, "clerk", returned, "口座解約"));
    uint64_t batched = fx_approved(&f, "P1", "H-4");
    fx_batch_of(&f, "P1", &batched, 1);
    uint64_t ids[] = {rejected, cancelled, paid, returned, batched};
    for (int i = 0; i < 5; i++) {
        fx_reject(&f, c_cancel(&f, "clerk", ids[i], "取消"), FAILED);
    }
    uint64_t live = fx_submitted(&f, "P1", "H-1");
    fx_reject(&f, c_cancel(&f, "clerk", live, ""), INVALID);
    fx_reject(&f, c_cancel(&f, "clerk", live, rep('r', 401)), INVALID);
    fx_reject(&f, c_cancel(&f, "clerk", 0, "取消"), INVALID);
    fx_reject(&f, c_cancel(&f, "clerk", 999, "取消"), NOTFOUND);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(submit_ok),
        T_CASE(submit_bad_fields),
        T_CASE(submit_not_found),
        T_CASE(submit_program_state_and_window),
        T_CASE(submit_second_live),
        T_CASE(submit_after_rejected_or_cancelled),
        T_CASE(approve_ok),
        T_CASE(approve_wrong_state),
        T_CASE(approve_budget_exhausted),
        T_CASE(approve_own_submission),
        T_CASE(reject_ok_and_bad),
        T_CASE(cancel_ok),
        T_CASE(cancel_wrong_state_and_bad),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
