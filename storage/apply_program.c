/* Program commands: CreateProgram, OpenProgram, CloseProgram, AdjustBudget
 * (docs/ledger-rules.md).  Steps 1-5 were done by apply.c; each handler does
 * its field checks (step 6), then existence, state and money (step 7). */
#include <string.h>

#include "internal.h"

#define PS(x) KYUFU__V1__PROGRAM_STATUS__PROGRAM_##x
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject

static int finish(struct kyufu_storage__cmd *c,
                  const Kyufu__V1__Program *old,
                  const Kyufu__V1__Program *p)
{
    if (old != NULL) {
        KYUFU_ASSERT(kyufu_storage__program_transition_ok(old->status,
                                                          p->status));
    }
    int rv = kyufu_storage__put_program(c->s, c->txn, p);
    if (rv == 0) {
        rv = kyufu_storage__touch_program(c, p->code);
    }
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 10, &p->base);
    }
    return rv;
}

/* Load the program named by code: 0 with *out, or 0 with a rejection. */
static int load(struct kyufu_storage__cmd *c,
                const char *code,
                Kyufu__V1__Program **out)
{
    *out = NULL;
    if (!kyufu_storage__valid_program_code(code)) {
        return REJECT(c, INVALID, "code must be 1..32 of [A-Za-z0-9_-]");
    }
    int rv = kyufu_storage__get_program(c->s, c->txn, code, out);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no program %s", code);
    }
    return rv;
}

int kyufu_storage__create_program(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CreateProgram *b = c->cmd->create_program;
    Kyufu__V1__Program *old = NULL;
    if (!kyufu_storage__valid_program_code(b->code)) {
        return REJECT(c, INVALID, "code must be 1..32 of [A-Za-z0-9_-]");
    }
    if (!kyufu_storage__valid_text(b->name, 1, KYUFU_NAME_BYTES_MAX)) {
        return REJECT(c, INVALID, "name must be 1..200 bytes of text");
    }
    if (b->fiscal_year < KYUFU_FISCAL_YEAR_MIN ||
        b->fiscal_year > KYUFU_FISCAL_YEAR_MAX) {
        return REJECT(c, INVALID, "fiscal_year must be 2000..2100");
    }
    if (b->unit_amount < 1 || b->unit_amount > KYUFU_UNIT_AMOUNT_YEN_MAX) {
        return REJECT(c, INVALID, "unit_amount must be 1..10^10 yen");
    }
    if (b->budget < 0 || b->budget > KYUFU_BUDGET_YEN_MAX) {
        return REJECT(c, INVALID, "budget must be 0..10^13 yen");
    }
    if (b->window_start_ms <= 0 || b->window_end_ms <= 0 ||
        b->window_start_ms >= b->window_end_ms) {
        return REJECT(c, INVALID, "window must have 0 < start < end");
    }
    int rv = kyufu_storage__get_program(c->s, c->txn, b->code, &old);
    if (rv == 0) {
        kyufu__v1__program__free_unpacked(old, NULL);
        return REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS,
                      "program %s exists", b->code);
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    Kyufu__V1__Program p = KYUFU__V1__PROGRAM__INIT;
    p.code = b->code;
    p.name = b->name;
    p.fiscal_year = b->fiscal_year;
    p.unit_amount = b->unit_amount;
    p.budget = b->budget;
    p.available = b->budget;
    p.window_start_ms = b->window_start_ms;
    p.window_end_ms = b->window_end_ms;
    p.status = PS(DRAFT);
    p.created_ms = c->now_ms;
    p.created_by = (char *)c->actor;
    return finish(c, NULL, &p);
}

static int set_status(struct kyufu_storage__cmd *c,
                      const char *code,
                      Kyufu__V1__ProgramStatus from,
                      Kyufu__V1__ProgramStatus to)
{
    Kyufu__V1__Program *old;
    int rv = load(c, code, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    if (old->status != from) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "program %s is not %s", code,
                    from == PS(DRAFT) ? "a draft" : "open");
    } else {
        Kyufu__V1__Program p = *old;
        p.status = to;
        rv = finish(c, old, &p);
    }
    kyufu__v1__program__free_unpacked(old, NULL);
    return rv;
}

int kyufu_storage__open_program(struct kyufu_storage__cmd *c)
{
    return set_status(c, c->cmd->open_program->code, PS(DRAFT), PS(OPEN));
}

int kyufu_storage__close_program(struct kyufu_storage__cmd *c)
{
    return set_status(c, c->cmd->close_program->code, PS(OPEN), PS(CLOSED));
}

int kyufu_storage__adjust_budget(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__AdjustBudget *b = c->cmd->adjust_budget;
    Kyufu__V1__Program *old;
    int64_t budget;
    int64_t available;
    int rv;
    if (!kyufu_storage__valid_program_code(b->code)) {
        return REJECT(c, INVALID, "code must be 1..32 of [A-Za-z0-9_-]");
    }
    if (b->delta == 0 || b->delta > KYUFU_BUDGET_YEN_MAX ||
        b->delta < -KYUFU_BUDGET_YEN_MAX) {
        return REJECT(c, INVALID, "delta must be nonzero, |delta| <= 10^13");
    }
    if (!kyufu_storage__valid_text(b->reason, 1, KYUFU_REASON_BYTES_MAX)) {
        return REJECT(c, INVALID, "reason must be 1..400 bytes of text");
    }
    rv = load(c, b->code, &old);
    if (rv != 0 || old == NULL) {
        return rv;
    }
    if (old->status == PS(CLOSED)) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "program %s is closed", b->code);
    } else if (!kyufu_storage__add_ok(old->budget, b->delta, &budget) ||
               !kyufu_storage__add_ok(old->available, b->delta, &available)) {
        rv = REJECT(c, INVALID, "budget overflows");
    } else if (available < 0) {
        rv = REJECT(c, KYUFU__V1__CODE__FAILED_PRECONDITION,
                    "budget would fall below what is reserved and paid");
    } else {
        Kyufu__V1__Program p = *old;
        p.budget = budget;
        p.available = available;
        rv = finish(c, old, &p);
    }
    kyufu__v1__program__free_unpacked(old, NULL);
    return rv;
}
