/* CreatePaymentBatch, ConfirmPaymentBatch, ReturnPayment
 * (docs/ledger-rules.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED

static void create_batch_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t a1 = fx_approved(&f, "P1", "H-1");
    Kyufu__V1__CommandResult *s =
        fx_ok(&f, c_submit(&f, "clerk", "P1", "H-2", 25000));
    uint64_t a2 = s->application->id;
    fx_free(s);
    fx_do(&f, c_approve(&f, "appr", a2));
    fx_balances(&f, "P1", 100000, 65000, 35000, 0);
    uint64_t ids[2] = {a2, a1};
    Kyufu__V1__Command *c = c_create_batch(&f, "clerk2", "P1", 20240229, ids, 2);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "batch/1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_BATCH);
    const Kyufu__V1__PaymentBatch *b = r->batch;
    CHECK_EQ(b->id, 1);
    CHECK_STR(b->program_code, "P1");
    CHECK_EQ(b->transfer_date, 20240229); /* a leap day */
    CHECK_EQ(b->n_application_ids, 2);
    CHECK_EQ(b->application_ids[0], a2);
    CHECK_EQ(b->application_ids[1], a1);
    CHECK_EQ(b->total_amount, 35000);
    CHECK_EQ(b->status, KYUFU__V1__BATCH_STATUS__BATCH_CREATED);
    CHECK_STR(b->created_by, "clerk2");
    CHECK_EQ(b->created_ms, t);
    CHECK_STR(b->confirmed_by, "");
    Kyufu__V1__PaymentBatch *stored = fx_batch(&f, 1);
    CHECK_EQ(stored->total_amount, 35000);
    CHECK_EQ(stored->n_application_ids, 2);
    CHECK_EQ(stored->status, KYUFU__V1__BATCH_STATUS__BATCH_CREATED);
    kyufu__v1__payment_batch__free_unpacked(stored, NULL);
    fx_free(r);
    for (int i = 0; i < 2; i++) {
        Kyufu__V1__Application *a = fx_app(&f, ids[i]);
        CHECK_EQ(a->batch_id, 1);
        CHECK_EQ(a->status, KYUFU__V1__APPLICATION_STATUS__APP_APPROVED);
        kyufu__v1__application__free_unpacked(a, NULL);
    }
    fx_balances(&f, "P1", 100000, 65000, 35000, 0); /* still reserved */
    /* Batch ids count on. */
    uint64_t a3 = fx_approved(&f, "P1", "H-3");
    CHECK_EQ(fx_batch_of(&f, "P1", &a3, 1), 2);
    fx_close(&f);
}

static void create_batch_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_create_program(&f, "appr", "P2", 100000));
    fx_do(&f, c_open_program(&f, "appr", "P2"));
    uint64_t ok = fx_approved(&f, "P1", "H-1");
    uint64_t received = fx_submitted(&f, "P1", "H-2");
    uint64_t other = fx_approved(&f, "P2", "H-1");
    uint64_t batched = fx_approved(&f, "P1", "H-3");
    fx_batch_of(&f, "P1", &batched, 1);
    uint64_t paid = fx_paid(&f, "P1", "H-4");

    uint64_t l1[] = {ok, 999};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l1, 2),
              NOTFOUND);
    uint64_t l2[] = {ok, other};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l2, 2),
              INVALID);
    uint64_t l3[] = {ok, received};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l3, 2), FAILED);
    uint64_t l4[] = {batched, ok};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l4, 2), FAILED);
    uint64_t l5[] = {paid};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l5, 1), FAILED);
    uint64_t l6[] = {ok, ok};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l6, 2),
              INVALID);
    uint64_t l7[] = {0};
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, l7, 1),
              INVALID);
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, NULL, 0),
              INVALID);
    /* 1001 ids: over the list limit whatever they name. */
    uint64_t *many = calloc(1001, sizeof *many);
    CHECK(many != NULL);
    for (size_t i = 0; i < 1001; i++) {
        many[i] = i + 1;
    }
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, many, 1001),
              INVALID);
    free(many);
    const int32_t dates[] = {0,        -1,       20260230, 20250229, 21000229,
                             19991231, 21010101, 20261301, 20260100, 20260431,
                             2026041,  202604150};
    for (size_t i = 0; i < sizeof dates / sizeof dates[0]; i++) {
        fx_reject(&f, c_create_batch(&f, "clerk", "P1", dates[i], &ok, 1),
                  INVALID);
    }
    fx_reject(&f, c_create_batch(&f, "clerk", "", 20260415, &ok, 1), INVALID);
    fx_reject(&f, c_create_batch(&f, "clerk", "P 1", 20260415, &ok, 1),
              INVALID);
    /* The boundaries of the date range are fine. */
    fx_do(&f, c_create_batch(&f, "clerk", "P1", 21001231, &ok, 1));
    fx_close(&f);
}

static void confirm_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t ids[2] = {fx_approved(&f, "P1", "H-1"),
                       fx_approved(&f, "P1", "H-2")};
    uint64_t b = fx_batch_of(&f, "P1", ids, 2);
    fx_balances(&f, "P1", 100000, 80000, 20000, 0);
    Kyufu__V1__Command *c = c_confirm(&f, "appr", b);
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "batch/1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_BATCH);
    CHECK_EQ(r->batch->status, KYUFU__V1__BATCH_STATUS__BATCH_CONFIRMED);
    CHECK_STR(r->batch->confirmed_by, "appr");
    CHECK_EQ(r->batch->confirmed_ms, t);
    CHECK_EQ(r->batch->total_amount, 20000);
    fx_free(r);
    Kyufu__V1__PaymentBatch *stored = fx_batch(&f, b);
    CHECK_EQ(stored->status, KYUFU__V1__BATCH_STATUS__BATCH_CONFIRMED);
    CHECK_STR(stored->confirmed_by, "appr");
    kyufu__v1__payment_batch__free_unpacked(stored, NULL);
    for (int i = 0; i < 2; i++) {
        Kyufu__V1__Application *a = fx_app(&f, ids[i]);
        CHECK_EQ(a->status, KYUFU__V1__APPLICATION_STATUS__APP_PAID);
        CHECK_EQ(a->paid_ms, t);
        CHECK_EQ(a->batch_id, b);
        kyufu__v1__application__free_unpacked(a, NULL);
    }
    fx_balances(&f, "P1", 100000, 80000, 0, 20000);
    fx_close(&f);
}

static void confirm_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_approved(&f, "P1", "H-1");
    uint64_t b = fx_batch_of(&f, "P1", &id, 1);
    fx_reject(&f, c_confirm(&f, "appr", 0), INVALID);
    fx_reject(&f, c_confirm(&f, "appr", 42), NOTFOUND);
    fx_reject(&f, c_confirm(&f, "clerk", b), DENIED); /* no role */
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_reject(&f, c_confirm(&f, "appr2", b), FAILED);
    fx_balances(&f, "P1", 100000, 90000, 0, 10000);
    fx_close(&f);
}

static void confirm_by_creator(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_approved(&f, "P1", "H-1");
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_create_batch(&f, "both", "P1", 20260415, &id, 1));
    uint64_t b = r->batch->id;
    fx_free(r);
    fx_reject(&f, c_confirm(&f, "both", b), DENIED);
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_close(&f);
}

static void return_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_paid(&f, "P1", "H-1");
    fx_balances(&f, "P1", 100000, 90000, 0, 10000);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_return(&f, "clerk2", id, "口座解約により返戻"));
    CHECK_STR(r->object, "application/1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION);
    CHECK_EQ(r->application->status,
             KYUFU__V1__APPLICATION_STATUS__APP_RETURNED);
    CHECK_STR(r->application->reason, "口座解約により返戻");
    fx_free(r);
    Kyufu__V1__Application *a = fx_app(&f, id);
    CHECK_EQ(a->status, KYUFU__V1__APPLICATION_STATUS__APP_RETURNED);
    kyufu__v1__application__free_unpacked(a, NULL);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    fx_close(&f);
}

static void return_rejections(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t received = fx_submitted(&f, "P1", "H-1");
    uint64_t approved = fx_approved(&f, "P1", "H-2");
    uint64_t batched = fx_approved(&f, "P1", "H-3");
    fx_batch_of(&f, "P1", &batched, 1);
    uint64_t paid = fx_paid(&f, "P1", "H-4");
    uint64_t ids[] = {received, approved, batched};
    for (int i = 0; i < 3; i++) {
        fx_reject(&f, c_return(&f, "clerk", ids[i], "返戻"), FAILED);
    }
    fx_reject(&f, c_return(&f, "clerk", paid, ""), INVALID);
    fx_reject(&f, c_return(&f, "clerk", paid, rep('r', 401)), INVALID);
    fx_reject(&f, c_return(&f, "clerk", 0, "返戻"), INVALID);
    fx_reject(&f, c_return(&f, "clerk", 999, "返戻"), NOTFOUND);
    fx_do(&f, c_return(&f, "clerk", paid, "返戻"));
    fx_reject(&f, c_return(&f, "clerk", paid, "返戻"), FAILED);
    fx_balances(&f, "P1", 100000, 80000, 20000, 0);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(create_batch_ok),
        T_CASE(create_batch_rejections),
        T_CASE(confirm_ok),
        T_CASE(confirm_rejections),
        T_CASE(confirm_by_creator),
        T_CASE(return_ok),
        T_CASE(return_rejections),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
