/* Application commands: SubmitApplication, ApproveApplication,
 * RejectApplication, CancelApplication, ReturnPayment.  Money moves between
 * the program's available, reserved and paid in the same nested txn as the
 * application's status (invariant 1); the live index is kept by
 * kyufu_storage__put_application (invariant 2). */
#include <string.h>

#include "internal.h"

#define AS(x) KYUFU__V1__APPLICATION_STATUS__APP_##x
#define PS(x) KYUFU__V1__PROGRAM_STATUS__PROGRAM_##x
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define REJECT kyufu_storage__reject

static int store(struct kyufu_storage__cmd *c,
                 const Kyufu__V1__Application *old,
                 const Kyufu__V1__Application *a)
{
    int rv = kyufu_storage__put_application(c->s, c->txn, old, a);
    if (rv == 0) {
        rv = kyufu_storage__touch_app(c, a->id);
    }
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 12, &a->base);
    }
    return rv;
}

/* The program of an existing application: its absence is corruption. */
static int program_of(struct kyufu_storage__cmd *c,
                      const Kyufu__V1__Application *a,
                      Kyufu__V1__Program **out)
{
    int rv = kyufu_storage__get_program(c->s, c->txn, a->program_code, out);
    return rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
}

static int put_program(struct kyufu_storage__cmd *c, const Kyufu__V1__Program *p)
{
    int rv = kyufu_storage__put_program(c->s, c->txn, p);
    if (rv == 0) {
        rv = kyufu_storage__touch_program(c, p->code);
    }
    return rv;
}

/* Field check of the id, then existence.  0 with *out or a rejection. */
static int load(struct kyufu_storage__cmd *c,
                uint64_t id,
                Kyufu__V1__Application **out)
{
    *out = NULL;
    int rv = kyufu_storage__get_application(c->s, c->txn, id, out);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no application %llu",
                      (unsigned long long)id);
    }
    return rv;
}

static bool reason_ok(const char *r)
{
    return kyufu_storage__valid_text(r, 1, KYUFU_REASON_BYTES_MAX);
}

int kyufu_storage__submit_application(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__SubmitApplication *b = c->cmd->submit_application;
    Kyufu__V1__Program *p = NULL;
    Kyufu__V1__Household *h = NULL;
    uint64_t live = 0;
    uint64_t id = 0;
    int64_t amount;
    int rv;
    if (!kyufu_storage__valid_program_code(b->program_code)) {
        return REJECT(c, INVALID, "program_code must be 1..32 of [A-Za-z0-9_-]");
    }
    if (!kyufu_storage__valid_household_no(b->household_no)) {
        return REJECT(c, INVALID, "household_no must be 1..32 of [A-Za-z0-9-]");
    }
    if (b->channel < KYUFU__V1__CHANNEL__CHANNEL_COUNTER ||
        b->channel > KYUFU__V1__CHANNEL__CHANNEL_MAIL) {
        return REJECT(c, INVALID, "channel must be counter, online or mail");
    }
    if (b->amount < 0) {
        return REJECT(c, INVALID, "amount must be >= 0");
    }
    rv = kyufu_storage__get_program(c->s, c->txn, b->program_code, &p);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no program %s",
                      b->program_code);
    }
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__get_household(c->s, c->txn, b->household_no, &h);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        rv = REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no household %s",
                    b->household_no);
        goto out;
    }
    if (rv != 0) {
        goto out;
    }
    /* unit_amount ≤ 10^10, so ×10 cannot overflow. */
    amount = b->amount == 0 ? p->unit_amount : b->amount;
    if (amount > p->unit_amount * KYUFU_AMOUNT_UNIT_MULTIPLE_MAX) {
        rv = REJECT(c, INVALID, "amount must be at most 10 x unit_amount");
        goto out;
    }
    if (p->status != PS(OPEN)) {
        rv = REJECT(c, PRECONDITION, "program %s is not open", p->code);
        goto out;
    }
    if (c->now_ms < p->window_start_ms || c->now_ms >= p->window_end_ms) {
        rv = REJECT(c, PRECONDITION, "outside the application window of %s",
                    p->code);
        goto out;
    }
    rv = kyufu_storage__get_live(c->s, c->txn, b->program_code,
                                 b->household_no, &live);
    if (rv != 0) {
        goto out;
    }
    if (live != 0) {
        rv = REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS,
                    "household %s already has application %llu in %s",
                    b->household_no, (unsigned long long)live, p->code);
        goto out;
    }
    rv = kyufu_storage__meta_get_u64(c->s, c->txn, KYUFU_META_NEXT_APP_ID, &id);
    if (rv != 0) {
        goto out;
    }
    id = id == 0 ? 1 : id;
    rv = kyufu_storage__meta_put_u64(c->s, c->txn, KYUFU_META_NEXT_APP_ID,
                                     id + 1);
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__Application a = KYUFU__V1__APPLICATION__INIT;
    a.id = id;
    a.program_code = b->program_code;
    a.household_no = b->household_no;
    a.channel = b->channel;
    a.amount = amount;
    a.status = AS(RECEIVED);
    a.submitted_by = (char *)c->actor;
    a.submitted_ms = c->now_ms;
    kyufu_storage__set_object(c, "application/%llu", (unsigned long long)id);
    rv = store(c, NULL, &a);
out:
    if (h != NULL) {
        kyufu__v1__household__free_unpacked(h, NULL);
    }
    kyufu__v1__program__free_unpacked(p, NULL);
    return rv;
}

/* Approve and reject: same checks up to the decision. */
static int decide(struct kyufu_storage__cmd *c, uint64_t id, bool approve,
                  const char *reason)
{
    Kyufu__V1__Application *old;
    Kyufu__V1__Program *p = NULL;
    int rv;
    if (id == 0) {
        return REJECT(c, INVALID, "id must be > 0");
    }
    if (!approve && !reason_ok(reason)) {
        return REJECT(c, INVALID, "reason must be 1..400 bytes of text");
    }
    rv = load(c, id, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    if (strcmp(old->submitted_by, c->actor) == 0) {
        rv = REJECT(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                    "the submitter cannot decide their own application");
        goto out;
    }
    if (old->status != AS(RECEIVED)) {
        rv = REJECT(c, PRECONDITION, "application %llu is not received",
                    (unsigned long long)id);
        goto out;
    }
    Kyufu__V1__Application a = *old;
    a.decided_by = (char *)c->actor;
    a.decided_ms = c->now_ms;
    if (!approve) {
        a.status = AS(REJECTED);
        a.reason = (char *)reason;
        rv = store(c, old, &a);
        goto out;
    }
    rv = program_of(c, old, &p);
    if (rv != 0) {
        goto out;
    }
    if (p->status == PS(DRAFT)) {
        rv = REJECT(c, PRECONDITION, "program %s is a draft", p->code);
        goto out;
    }
    if (p->available < old->amount) {
        rv = REJECT(c, KYUFU__V1__CODE__RESOURCE_EXHAUSTED,
                    "budget exhausted: %lld available, %lld needed",
                    (long long)p->available, (long long)old->amount);
        goto out;
    }
    Kyufu__V1__Program np = *p;
    np.available -= old->amount;
    np.reserved += old->amount;
    a.status = AS(APPROVED);
    rv = put_program(c, &np);
    if (rv == 0) {
        rv = store(c, old, &a);
    }
out:
    if (p != NULL) {
        kyufu__v1__program__free_unpacked(p, NULL);
    }
    kyufu__v1__application__free_unpacked(old, NULL);
    return rv;
}

int kyufu_storage__approve_application(struct kyufu_storage__cmd *c)
{
    return decide(c, c->cmd->approve_application->id, true, NULL);
}

int kyufu_storage__reject_application(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__RejectApplication *b = c->cmd->reject_application;
    return decide(c, b->id, false, b->reason);
}

/* Move an application's amount back to its program's available money,
 * from reserved (an approved application) or paid (a returned payment), and
 * store the application as `a`, in the command's nested txn. */
static int release_amount(struct kyufu_storage__cmd *c,
                          const Kyufu__V1__Application *old,
                          bool from_paid,
                          Kyufu__V1__Application *a)
{
    Kyufu__V1__Program *p;
    int rv = program_of(c, old, &p);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Program np = *p;
    if (from_paid) {
        KYUFU_ASSERT(np.paid >= old->amount);
        np.paid -= old->amount;
    } else {
        KYUFU_ASSERT(np.reserved >= old->amount);
        np.reserved -= old->amount;
    }
    np.available += old->amount;
    rv = put_program(c, &np);
    if (rv == 0) {
        rv = store(c, old, a);
    }
    kyufu__v1__program__free_unpacked(p, NULL);
    return rv;
}

int kyufu_storage__cancel_application(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CancelApplication *b = c->cmd->cancel_application;
    Kyufu__V1__Application *old;
    int rv;
    if (b->id == 0) {
        return REJECT(c, INVALID, "id must be > 0");
    }
    if (!reason_ok(b->reason)) {
        return REJECT(c, INVALID, "reason must be 1..400 bytes of text");
    }
    rv = load(c, b->id, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    Kyufu__V1__Application a = *old;
    a.status = AS(CANCELLED);
    a.reason = b->reason;
    if (old->status == AS(RECEIVED)) {
        rv = store(c, old, &a);
    } else if (old->status == AS(APPROVED) && old->batch_id != 0) {
        rv = REJECT(c, PRECONDITION, "application %llu is in batch %llu",
                    (unsigned long long)b->id,
                    (unsigned long long)old->batch_id);
    } else if (old->status == AS(APPROVED)) {
        rv = release_amount(c, old, false, &a);
    } else {
        rv = REJECT(c, PRECONDITION, "application %llu cannot be cancelled",
                    (unsigned long long)b->id);
    }
    kyufu__v1__application__free_unpacked(old, NULL);
    return rv;
}

int kyufu_storage__return_payment(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__ReturnPayment *b = c->cmd->return_payment;
    Kyufu__V1__Application *old;
    int rv;
    if (b->application_id == 0) {
        return REJECT(c, INVALID, "application_id must be > 0");
    }
    if (!reason_ok(b->reason)) {
        return REJECT(c, INVALID, "reason must be 1..400 bytes of text");
    }
    rv = load(c, b->application_id, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    if (old->status != AS(PAID)) {
        rv = REJECT(c, PRECONDITION, "application %llu is not paid",
                    (unsigned long long)b->application_id);
    } else {
        Kyufu__V1__Application a = *old;
        a.status = AS(RETURNED);
        a.reason = b->reason;
        rv = release_amount(c, old, true, &a);
    }
    kyufu__v1__application__free_unpacked(old, NULL);
    return rv;
}
