/* Every limit and guard of the ledger at its edge: exactly at the limit
 * (accepted), one under and one over (whichever side is wrong: rejected
 * with the documented code and nothing changed).  The tests elsewhere stay
 * far from the edges (a budget 5,000 yen short, a name of 201 bytes next
 * to one of 20), so an off-by-one in a guard (`<` for `<=`, a `+ 1`) passed
 * them; these cases are the ones a boundary mutation must fail
 * (docs/testing.md, "Mutation check").
 *
 * Written from docs/ledger-rules.md, storage/storage.h and
 * storage/storage_limits.h only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "storage_limits.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION
#define EXHAUSTED KYUFU__V1__CODE__RESOURCE_EXHAUSTED
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define AS(x) KYUFU__V1__APPLICATION_STATUS__APP_##x

static Kyufu__V1__ApplicationStatus status_of(struct fx *f, uint64_t id)
{
    Kyufu__V1__Application *a = fx_app(f, id);
    Kyufu__V1__ApplicationStatus st = a->status;
    kyufu__v1__application__free_unpacked(a, NULL);
    return st;
}

/* An open program `code` with unit 10,000 yen and the given budget. */
static void open_program(struct fx *f, const char *code, int64_t budget)
{
    fx_do(f, c_create_program(f, "appr", code, budget));
    fx_do(f, c_open_program(f, "appr", code));
}

/* Submit `amount` (clerk), return the new application's id. */
static uint64_t submit_amount(struct fx *f, const char *program,
                              const char *hh, int64_t amount)
{
    Kyufu__V1__CommandResult *r =
        fx_ok(f, c_submit(f, "clerk", program, hh, amount));
    uint64_t id = r->application->id;
    fx_free(r);
    return id;
}

static int64_t amount_of(struct fx *f, uint64_t id)
{
    Kyufu__V1__Application *a = fx_app(f, id);
    int64_t v = a->amount;
    kyufu__v1__application__free_unpacked(a, NULL);
    return v;
}

/* ------------------------------------------------------------- budget */

/* Approve needs available >= amount: one yen short is refused, exactly
 * enough leaves 0, one yen more leaves 1. */
static void approve_budget_one_yen_short(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    open_program(&f, "SHORT", 9999);
    open_program(&f, "EXACT", 10000);
    open_program(&f, "OVER", 10001);
    uint64_t s = fx_submitted(&f, "SHORT", "H-1");
    uint64_t e = fx_submitted(&f, "EXACT", "H-1");
    uint64_t o = fx_submitted(&f, "OVER", "H-1");
    CHECK_EQ(amount_of(&f, s), 10000);
    fx_reject(&f, c_approve(&f, "appr", s), EXHAUSTED);
    CHECK_EQ(status_of(&f, s), AS(RECEIVED));
    fx_balances(&f, "SHORT", 9999, 9999, 0, 0);
    fx_do(&f, c_approve(&f, "appr", e));
    fx_balances(&f, "EXACT", 10000, 0, 10000, 0);
    fx_do(&f, c_approve(&f, "appr", o));
    fx_balances(&f, "OVER", 10001, 1, 10000, 0);
    /* The same edge reached by spending: 1 yen left, 1-yen application. */
    uint64_t one = submit_amount(&f, "OVER", "H-2", 1);
    uint64_t two = submit_amount(&f, "EXACT", "H-2", 1);
    fx_do(&f, c_approve(&f, "appr", one));
    fx_balances(&f, "OVER", 10001, 0, 10001, 0);
    fx_reject(&f, c_approve(&f, "appr", two), EXHAUSTED);
    /* A 0-yen available program refuses even 1 yen; +1 yen makes it fit. */
    fx_do(&f, c_adjust_budget(&f, "appr", "EXACT", 1, "補正"));
    fx_do(&f, c_approve(&f, "appr", two));
    fx_balances(&f, "EXACT", 10001, 0, 10001, 0);
    fx_close(&f);
}

/* Several approvals in one entry: the second sees the first's reservation;
 * the budget fits the first exactly, so the second is one yen short... of
 * its whole amount. */
static void approve_budget_edge_in_one_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    open_program(&f, "TWO", 19999);
    uint64_t a = fx_submitted(&f, "TWO", "H-1");
    uint64_t b = fx_submitted(&f, "TWO", "H-2");
    Kyufu__V1__Command *cmds[2] = {c_approve(&f, "appr", a),
                                   c_approve(&f, "appr2", b)};
    Kyufu__V1__CommandResult *res[2];
    fx_apply_batch(&f, cmds, 2, res);
    CHECK_CODE(res[0], KYUFU__V1__CODE__OK);
    CHECK_CODE(res[1], EXHAUSTED);
    fx_balances(&f, "TWO", 19999, 9999, 10000, 0);
    for (int i = 0; i < 2; i++) {
        fx_free(res[i]);
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
    fx_invariants(&f);
    fx_close(&f);
}

/* AdjustBudget may take available down to exactly 0, not to -1. */
static void adjust_budget_to_zero_not_below(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t a = fx_approved(&f, "P1", "H-1"); /* 10,000 reserved */
    fx_balances(&f, "P1", 100000, 90000, 10000, 0);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -90001, "減額"), FAILED);
    fx_balances(&f, "P1", 100000, 90000, 10000, 0);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -90000, "減額"));
    fx_balances(&f, "P1", 10000, 0, 10000, 0);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -1, "減額"), FAILED);
    /* Paid money counts the same: pay it, then the edge is unchanged. */
    uint64_t batch = fx_batch_of(&f, "P1", &a, 1);
    fx_do(&f, c_confirm(&f, "appr2", batch));
    fx_balances(&f, "P1", 10000, 0, 0, 10000);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -1, "減額"), FAILED);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", 1, "補正"));
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -1, "減額"));
    fx_balances(&f, "P1", 10000, 0, 0, 10000);
    fx_close(&f);
}

/* |delta| <= 10^13, nonzero. */
static void adjust_budget_delta_limits(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    open_program(&f, "BIG", 0);
    fx_reject(&f, c_adjust_budget(&f, "appr", "BIG", 0, "x"), INVALID);
    fx_reject(&f,
              c_adjust_budget(&f, "appr", "BIG", KYUFU_BUDGET_YEN_MAX + 1, "x"),
              INVALID);
    fx_reject(&f,
              c_adjust_budget(&f, "appr", "BIG", -KYUFU_BUDGET_YEN_MAX - 1,
                              "x"),
              INVALID);
    fx_reject(&f, c_adjust_budget(&f, "appr", "BIG", INT64_MAX, "x"), INVALID);
    fx_reject(&f, c_adjust_budget(&f, "appr", "BIG", INT64_MIN, "x"), INVALID);
    fx_do(&f, c_adjust_budget(&f, "appr", "BIG", KYUFU_BUDGET_YEN_MAX, "x"));
    fx_balances(&f, "BIG", KYUFU_BUDGET_YEN_MAX, KYUFU_BUDGET_YEN_MAX, 0, 0);
    fx_do(&f, c_adjust_budget(&f, "appr", "BIG", -KYUFU_BUDGET_YEN_MAX, "x"));
    fx_balances(&f, "BIG", 0, 0, 0, 0);
    fx_do(&f, c_adjust_budget(&f, "appr", "BIG", 1, "x"));
    fx_do(&f, c_adjust_budget(&f, "appr", "BIG", -1, "x"));
    fx_reject(&f, c_adjust_budget(&f, "appr", "BIG", -1, "x"), FAILED);
    fx_close(&f);
}

/* Pay, cancel and return move exactly the application's amount, down to a
 * program with nothing available. */
static void pay_cancel_return_at_zero_available(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    open_program(&f, "Z", 20000);
    uint64_t a = fx_approved(&f, "Z", "H-1");
    uint64_t b = fx_approved(&f, "Z", "H-2");
    fx_balances(&f, "Z", 20000, 0, 20000, 0);
    uint64_t batch = fx_batch_of(&f, "Z", &a, 1);
    fx_do(&f, c_confirm(&f, "appr2", batch));
    fx_balances(&f, "Z", 20000, 0, 10000, 10000);
    fx_do(&f, c_cancel(&f, "clerk", b, "取下げ"));
    fx_balances(&f, "Z", 20000, 10000, 0, 10000);
    fx_do(&f, c_return(&f, "clerk", a, "口座解約"));
    fx_balances(&f, "Z", 20000, 20000, 0, 0);
    /* Everything is back: exactly the budget can be approved again. */
    uint64_t c = fx_submitted(&f, "Z", "H-3");
    uint64_t d = fx_submitted(&f, "Z", "H-4");
    fx_do(&f, c_approve(&f, "appr", c));
    fx_do(&f, c_approve(&f, "appr", d));
    fx_balances(&f, "Z", 20000, 0, 20000, 0);
    fx_close(&f);
}

/* ------------------------------------------------------------ amounts */

/* amount: 0 means the unit, 1..10 x unit accepted, -1 and 10 x unit + 1
 * refused; the int64 extremes are refused without overflow. */
static void submit_amount_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    open_program(&f, "AMT", KYUFU_BUDGET_YEN_MAX);
    const char *hh[] = {"H-1", "H-2", "H-3", "H-4"};
    int64_t ok[] = {0, 1, 10 * 10000, 10000};
    int64_t want[] = {10000, 1, 100000, 10000};
    int64_t bad[] = {-1, 10 * 10000 + 1, INT64_MAX, INT64_MIN};
    for (int i = 0; i < 4; i++) {
        fx_reject(&f, c_submit(&f, "clerk", "AMT", hh[i], bad[i]), INVALID);
    }
    for (int i = 0; i < 4; i++) {
        Kyufu__V1__CommandResult *r =
            fx_ok(&f, c_submit(&f, "clerk", "AMT", hh[i], ok[i]));
        CHECK_EQ(r->application->amount, want[i]);
        fx_free(r);
    }
    fx_close(&f);
}

/* unit_amount 1..10^10, budget 0..10^13, fiscal_year 2000..2100. */
static void create_program_number_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c;
    struct
    {
        int64_t unit, budget;
        int32_t year;
        bool ok;
    } rows[] = {
        {0, 0, 2026, false},
        {1, 0, 2026, true},
        {KYUFU_UNIT_AMOUNT_YEN_MAX, 0, 2026, true},
        {KYUFU_UNIT_AMOUNT_YEN_MAX + 1, 0, 2026, false},
        {-1, 0, 2026, false},
        {10000, -1, 2026, false},
        {10000, KYUFU_BUDGET_YEN_MAX, 2026, true},
        {10000, KYUFU_BUDGET_YEN_MAX + 1, 2026, false},
        {10000, INT64_MAX, 2026, false},
        {10000, 0, KYUFU_FISCAL_YEAR_MIN - 1, false},
        {10000, 0, KYUFU_FISCAL_YEAR_MIN, true},
        {10000, 0, KYUFU_FISCAL_YEAR_MAX, true},
        {10000, 0, KYUFU_FISCAL_YEAR_MAX + 1, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char code[16];
        snprintf(code, sizeof code, "N%zu", i);
        c = c_create_program(&f, "appr", code, rows[i].budget);
        c->create_program->unit_amount = rows[i].unit;
        c->create_program->fiscal_year = rows[i].year;
        if (rows[i].ok) {
            fx_do(&f, c);
        } else {
            fx_reject(&f, c, INVALID);
        }
    }
    /* The largest unit: 10 x 10^10 is still representable and accepted. */
    fx_do(&f, c_open_program(&f, "appr", "N2"));
    fx_do(&f, c_adjust_budget(&f, "appr", "N2", KYUFU_BUDGET_YEN_MAX, "x"));
    Kyufu__V1__CommandResult *r = fx_ok(
        &f, c_submit(&f, "clerk", "N2", "H-1", 10 * KYUFU_UNIT_AMOUNT_YEN_MAX));
    CHECK_EQ(r->application->amount, 10 * KYUFU_UNIT_AMOUNT_YEN_MAX);
    fx_free(r);
    fx_reject(&f,
              c_submit(&f, "clerk", "N2", "H-2",
                       10 * KYUFU_UNIT_AMOUNT_YEN_MAX + 1),
              INVALID);
    fx_close(&f);
}

/* ------------------------------------------------------------- window */

/* The window is [start, end): start accepted, start - 1 and end refused,
 * end - 1 accepted.  At creation 0 < start < end: start = end - 1 is the
 * narrowest window, start = end and start = 0 are refused. */
static void application_window_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const int64_t w0 = FX_T0_MS + 1000000, w1 = FX_T0_MS + 2000000;
    Kyufu__V1__Command *c = c_create_program(&f, "appr", "W", 1000000);
    c->create_program->window_start_ms = w0;
    c->create_program->window_end_ms = w1;
    fx_do(&f, c);
    fx_do(&f, c_open_program(&f, "appr", "W"));
    struct
    {
        const char *hh;
        int64_t t;
        bool ok;
    } rows[] = {
        {"H-1", w0 - 1, false}, {"H-1", w0, true},  {"H-2", w1 - 1, true},
        {"H-3", w1, false},     {"H-3", w1 + 1, false},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        c = c_submit(&f, "clerk", "W", rows[i].hh, 0);
        c->header->time_ms = rows[i].t;
        if (rows[i].ok) {
            fx_do(&f, c);
        } else {
            fx_reject(&f, c, FAILED);
        }
    }
    int64_t win[][2] = {{0, 10}, {-1, 10}, {10, 10}, {11, 10}, {1, 0}};
    for (size_t i = 0; i < sizeof win / sizeof win[0]; i++) {
        c = c_create_program(&f, "appr", "BADW", 0);
        c->create_program->window_start_ms = win[i][0];
        c->create_program->window_end_ms = win[i][1];
        fx_reject(&f, c, INVALID);
    }
    c = c_create_program(&f, "appr", "NARROW", 0);
    c->create_program->window_start_ms = 1;
    c->create_program->window_end_ms = 2;
    fx_do(&f, c);
    fx_close(&f);
}

/* ------------------------------------------------------------ strings */

/* A field of exactly max bytes is accepted, max + 1 refused, the empty one
 * refused where min is 1. */
static void program_code_and_name_lengths(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_create_program(&f, "appr", rep('A', KYUFU_PROGRAM_CODE_BYTES_MAX),
                               0));
    fx_reject(&f,
              c_create_program(&f, "appr",
                               rep('B', KYUFU_PROGRAM_CODE_BYTES_MAX + 1), 0),
              INVALID);
    fx_reject(&f, c_create_program(&f, "appr", "", 0), INVALID);
    fx_do(&f, c_create_program(&f, "appr", "C", 0)); /* 1 byte */
    Kyufu__V1__Command *c = c_create_program(&f, "appr", "NAME1", 0);
    c_str(&c->create_program->name, rep('n', KYUFU_NAME_BYTES_MAX));
    fx_do(&f, c);
    c = c_create_program(&f, "appr", "NAME2", 0);
    c_str(&c->create_program->name, rep('n', KYUFU_NAME_BYTES_MAX + 1));
    fx_reject(&f, c, INVALID);
    c = c_create_program(&f, "appr", "NAME3", 0);
    c_str(&c->create_program->name, "");
    fx_reject(&f, c, INVALID);
    /* The same code limit on every command that names a program. */
    fx_reject(&f,
              c_submit(&f, "clerk", rep('A', KYUFU_PROGRAM_CODE_BYTES_MAX + 1),
                       "H-1", 0),
              INVALID);
    fx_reject(&f,
              c_adjust_budget(&f, "appr",
                              rep('A', KYUFU_PROGRAM_CODE_BYTES_MAX + 1), 1,
                              "x"),
              INVALID);
    fx_reject(&f,
              c_open_program(&f, "appr",
                             rep('A', KYUFU_PROGRAM_CODE_BYTES_MAX + 1)),
              INVALID);
    fx_do(&f, c_open_program(&f, "appr", rep('A', KYUFU_PROGRAM_CODE_BYTES_MAX)));
    fx_close(&f);
}

/* Text fields are UTF-8 without control characters: each boundary of the
 * encoding (shortest form, surrogates, U+10FFFF, 0x1f/0x20, 0x7e/0x7f) on
 * both sides, through a program name. */
static void text_encoding_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    static const char *const ok[] = {
        " ", "~", "\xc2\x80",          /* U+0080, the first 2-byte */
        "\xdf\xbf",                      /* U+07FF, the last 2-byte */
        "\xe0\xa0\x80",                  /* U+0800, the first 3-byte */
        "\xed\x9f\xbf", "\xee\x80\x80",   /* U+D7FF, U+E000 */
        "\xef\xbf\xbf",                  /* U+FFFF */
        "\xf0\x90\x80\x80",              /* U+10000, the first 4-byte */
        "\xf4\x8f\xbf\xbf",              /* U+10FFFF, the last */
    };
    static const char *const bad[] = {
        "\x1f", "\x7f", "a\tb",
        "\xc1\xbf",                      /* overlong U+007F */
        "\xe0\x9f\xbf",                  /* overlong U+07FF */
        "\xf0\x8f\xbf\xbf",              /* overlong U+FFFF */
        "\xed\xa0\x80", "\xed\xbf\xbf",   /* U+D800, U+DFFF */
        "\xf4\x90\x80\x80",              /* U+110000 */
        "\xf5\x80\x80\x80", "\xff",
        "\xe3\x81",                      /* truncated */
        "\x80",                          /* lone continuation */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char code[16];
        snprintf(code, sizeof code, "OK%zu", i);
        Kyufu__V1__Command *c = c_create_program(&f, "appr", code, 0);
        c_str(&c->create_program->name, ok[i]);
        fx_do(&f, c);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char code[16];
        snprintf(code, sizeof code, "BAD%zu", i);
        Kyufu__V1__Command *c = c_create_program(&f, "appr", code, 0);
        c_str(&c->create_program->name, bad[i]);
        fx_reject(&f, c, INVALID);
    }
    fx_close(&f);
}

static void household_lengths(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const char *no32 = rep('9', KYUFU_HOUSEHOLD_NO_BYTES_MAX);
    fx_do(&f, c_register_household(&f, "clerk", no32));
    fx_reject(&f,
              c_register_household(&f, "clerk",
                                   rep('8', KYUFU_HOUSEHOLD_NO_BYTES_MAX + 1)),
              INVALID);
    fx_reject(&f, c_register_household(&f, "clerk", ""), INVALID);
    fx_do(&f, c_register_household(&f, "clerk", "1"));

    /* head_name, address, holder_kana, member names: max and max + 1. */
    struct
    {
        int field;
        size_t max;
    } rows[] = {{0, KYUFU_NAME_BYTES_MAX},
                {1, KYUFU_ADDRESS_BYTES_MAX},
                {2, KYUFU_NAME_BYTES_MAX},
                {3, KYUFU_NAME_BYTES_MAX}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            char no[16];
            snprintf(no, sizeof no, "L-%zu-%zu", i, extra);
            Kyufu__V1__Command *c = c_register_household(&f, "clerk", no);
            Kyufu__V1__Household *h = c->register_household->household;
            const char *v = rep('x', rows[i].max + extra);
            switch (rows[i].field) {
            case 0: c_str(&h->head_name, v); break;
            case 1: c_str(&h->address, v); break;
            case 2: c_str(&h->bank->holder_kana, v); break;
            default: c_str(&h->member_names[0], v); break;
            }
            if (extra == 0) {
                fx_do(&f, c);
            } else {
                fx_reject(&f, c, INVALID);
            }
        }
    }

    /* Member names: 32 accepted (and 0), 33 refused. */
    for (size_t n = KYUFU_MEMBER_NAMES_MAX; n <= KYUFU_MEMBER_NAMES_MAX + 1;
         n++) {
        char no[16];
        snprintf(no, sizeof no, "M-%zu", n);
        Kyufu__V1__Command *c = c_register_household(&f, "clerk", no);
        Kyufu__V1__Household *h = c->register_household->household;
        for (size_t k = 0; k < h->n_member_names; k++) {
            free(h->member_names[k]);
        }
        free(h->member_names);
        h->member_names = calloc(n, sizeof *h->member_names);
        CHECK(h->member_names != NULL);
        for (size_t k = 0; k < n; k++) {
            h->member_names[k] = strdup("m");
            CHECK(h->member_names[k] != NULL);
        }
        h->n_member_names = n;
        if (n == KYUFU_MEMBER_NAMES_MAX) {
            fx_do(&f, c);
        } else {
            fx_reject(&f, c, INVALID);
        }
    }
    /* Fixed-width bank fields: one digit short and one over. */
    const char *codes[][2] = {{"123", "bank"},     {"12345", "bank"},
                              {"12", "branch"},    {"1234", "branch"},
                              {"123456", "acct"},  {"12345678", "acct"}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        Kyufu__V1__Command *c = c_register_household(&f, "clerk", "B-1");
        Kyufu__V1__BankAccount *b = c->register_household->household->bank;
        if (codes[i][1][0] == 'b' && codes[i][1][1] == 'a') {
            c_str(&b->bank_code, codes[i][0]);
        } else if (codes[i][1][0] == 'b') {
            c_str(&b->branch_code, codes[i][0]);
        } else {
            c_str(&b->account_no, codes[i][0]);
        }
        fx_reject(&f, c, INVALID);
    }
    fx_close(&f);
}

/* reason: 1..400 bytes on Reject, Cancel, Return and AdjustBudget. */
static void reason_lengths(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const char *r400 = rep('r', KYUFU_REASON_BYTES_MAX);
    const char *r401 = rep('r', KYUFU_REASON_BYTES_MAX + 1);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", 1, r401), INVALID);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", 1, ""), INVALID);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", 1, r400));
    uint64_t a = fx_submitted(&f, "P1", "H-1");
    fx_reject(&f, c_reject(&f, "appr", a, r401), INVALID);
    fx_reject(&f, c_reject(&f, "appr", a, ""), INVALID);
    fx_do(&f, c_reject(&f, "appr", a, r400));
    uint64_t b = fx_submitted(&f, "P1", "H-2");
    fx_reject(&f, c_cancel(&f, "clerk", b, r401), INVALID);
    fx_reject(&f, c_cancel(&f, "clerk", b, ""), INVALID);
    fx_do(&f, c_cancel(&f, "clerk", b, r400));
    uint64_t p = fx_paid(&f, "P1", "H-3");
    fx_reject(&f, c_return(&f, "clerk", p, r401), INVALID);
    fx_reject(&f, c_return(&f, "clerk", p, ""), INVALID);
    fx_do(&f, c_return(&f, "clerk", p, r400));
    fx_close(&f);
}

/* staff_id 1..64 (also as the actor), display_name 1..200; header terminal
 * 0..64 and client_id 1..64. */
static void staff_and_header_lengths(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    char id64[KYUFU_STAFF_ID_BYTES_MAX + 1];
    snprintf(id64, sizeof id64, "%s", rep('s', KYUFU_STAFF_ID_BYTES_MAX));
    fx_do(&f, c_create_staff(&f, "admin", id64, R_CLERK));
    fx_reject(&f,
              c_create_staff(&f, "admin", rep('t', KYUFU_STAFF_ID_BYTES_MAX + 1),
                             R_CLERK),
              INVALID);
    fx_reject(&f, c_create_staff(&f, "admin", "", R_CLERK), INVALID);
    Kyufu__V1__Command *c = c_create_staff(&f, "admin", "dn200", R_CLERK);
    c_str(&c->create_staff->display_name, rep('d', KYUFU_NAME_BYTES_MAX));
    fx_do(&f, c);
    c = c_create_staff(&f, "admin", "dn201", R_CLERK);
    c_str(&c->create_staff->display_name, rep('d', KYUFU_NAME_BYTES_MAX + 1));
    fx_reject(&f, c, INVALID);
    /* The 64-byte staff id acts. */
    fx_do(&f, c_register_household(&f, id64, "H-64"));
    fx_reject(&f,
              c_set_roles(&f, "admin", rep('s', KYUFU_STAFF_ID_BYTES_MAX + 1),
                          R_CLERK),
              INVALID);

    c = c_register_household(&f, "clerk", "T-64");
    c_str(&c->header->terminal, rep('t', KYUFU_TERMINAL_BYTES_MAX));
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "T-65");
    c_str(&c->header->terminal, rep('t', KYUFU_TERMINAL_BYTES_MAX + 1));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "T-0");
    c_str(&c->header->terminal, "");
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "C-64");
    c_str(&c->header->key->client_id, rep('c', KYUFU_CLIENT_ID_BYTES_MAX));
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "C-65");
    c_str(&c->header->key->client_id, rep('c', KYUFU_CLIENT_ID_BYTES_MAX + 1));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "C-0");
    c_str(&c->header->key->client_id, "");
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "C-1");
    c_str(&c->header->key->client_id, "c");
    fx_do(&f, c);
    /* time_ms: 1 accepted, 0 refused. */
    c = c_register_household(&f, "clerk", "TM-1");
    c->header->time_ms = 1;
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "TM-0");
    c->header->time_ms = 0;
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}

/* application_ids: 1000 pass the field rules (and fail on existence:
 * NOT_FOUND), 1001 and 0 are INVALID. */
static void batch_size_and_date_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t a = fx_approved(&f, "P1", "H-1");
    uint64_t *ids = calloc(KYUFU_BATCH_APPLICATIONS_MAX + 1, sizeof *ids);
    CHECK(ids != NULL);
    ids[0] = a;
    for (size_t i = 1; i <= KYUFU_BATCH_APPLICATIONS_MAX; i++) {
        ids[i] = 1000000 + i;
    }
    fx_reject(&f,
              c_create_batch(&f, "clerk", "P1", 20260415, ids,
                             KYUFU_BATCH_APPLICATIONS_MAX + 1),
              INVALID);
    fx_reject(&f,
              c_create_batch(&f, "clerk", "P1", 20260415, ids,
                             KYUFU_BATCH_APPLICATIONS_MAX),
              NOTFOUND);
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260415, ids, 0),
              INVALID);
    free(ids);
    /* transfer_date: the first and last days of the fiscal years, leap
     * days, month ends. */
    int32_t ok[] = {20000101, 21001231, 20240229, 20000229, 20260430,
                    20261231, 20260131};
    int32_t bad[] = {19991231, 21010101, 20230229, 21000229, 20260431,
                     20261301, 20260001, 20260100, 20260132, 0, -20260101};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_reject(&f, c_create_batch(&f, "clerk", "P1", bad[i], &a, 1),
                  INVALID);
    }
    /* Each accepted date makes a batch of its own approved application. */
    fx_do(&f, c_create_batch(&f, "clerk", "P1", ok[0], &a, 1));
    for (size_t i = 1; i < sizeof ok / sizeof ok[0]; i++) {
        char no[16];
        snprintf(no, sizeof no, "D-%zu", i);
        fx_do(&f, c_register_household(&f, "clerk", no));
        uint64_t x = fx_approved(&f, "P1", no);
        fx_do(&f, c_create_batch(&f, "clerk", "P1", ok[i], &x, 1));
    }
    fx_close(&f);
}

/* ----------------------------------------------------------- sessions */

/* A retry is a duplicate until retention - 1 ms after the first; from
 * exactly the retention on it is a new command. */
static void session_retention_edge(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, KYUFU__V1__CODE__OK);
    c->header->time_ms = t + KYUFU_SESSION_RETENTION_MS - 1;
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK_EQ(r2->audit_seq, r1->audit_seq);
    fx_balances(&f, "P1", 100500, 100500, 0, 0);
    c->header->time_ms = t + KYUFU_SESSION_RETENTION_MS;
    Kyufu__V1__CommandResult *r3 = fx_apply(&f, c);
    CHECK_CODE(r3, KYUFU__V1__CODE__OK);
    CHECK(r3->audit_seq > r1->audit_seq);
    fx_balances(&f, "P1", 101000, 101000, 0, 0);
    fx_free(r1);
    fx_free(r2);
    fx_free(r3);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_close(&f);
}

/* -------------------------------------------------------------- pages */

static size_t list_audit(struct fx *f, const char *after, size_t page_size,
                         char *next)
{
    struct kyufu_storage_page p;
    CHECK_EQ(kyufu_storage_list_audit(f->s, after, page_size, &p), 0);
    size_t n = p.n;
    snprintf(next, 128, "%s", p.next);
    kyufu_storage_page_free(&p);
    return n;
}

/* page_size is clamped to [1, 1000]; a page that ends exactly at the last
 * item has no continuation, one item short has one. */
static void page_size_edges(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* More than a full page of audit records: 1,001 more commands. */
    enum { N = KYUFU_LIST_PAGE_SIZE_MAX + 1 };
    Kyufu__V1__Command **cmds = calloc(N, sizeof *cmds);
    Kyufu__V1__CommandResult **res = calloc(N, sizeof *res);
    CHECK(cmds != NULL && res != NULL);
    for (size_t i = 0; i < N; i++) {
        cmds[i] = c_adjust_budget(&f, "appr", "P1", 1, "x");
    }
    fx_apply_batch(&f, cmds, N, res);
    for (size_t i = 0; i < N; i++) {
        CHECK_CODE(res[i], KYUFU__V1__CODE__OK);
        fx_free(res[i]);
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
    free(cmds);
    free(res);
    uint64_t total = fx_audit_count(&f);
    CHECK(total > N);
    char next[128];
    CHECK_EQ(list_audit(&f, NULL, 0, next), 1);
    CHECK(next[0] != '\0');
    CHECK_EQ(list_audit(&f, NULL, 1, next), 1);
    CHECK_EQ(list_audit(&f, NULL, KYUFU_LIST_PAGE_SIZE_MAX - 1, next),
             KYUFU_LIST_PAGE_SIZE_MAX - 1);
    CHECK_EQ(list_audit(&f, NULL, KYUFU_LIST_PAGE_SIZE_MAX, next),
             KYUFU_LIST_PAGE_SIZE_MAX);
    CHECK_EQ(list_audit(&f, NULL, KYUFU_LIST_PAGE_SIZE_MAX + 1, next),
             KYUFU_LIST_PAGE_SIZE_MAX);
    CHECK_EQ(list_audit(&f, NULL, (size_t)-1, next), KYUFU_LIST_PAGE_SIZE_MAX);
    CHECK(next[0] != '\0');
    /* The tail: after total - 3 three remain. */
    char after[32];
    snprintf(after, sizeof after, "%llu", (unsigned long long)(total - 3));
    CHECK_EQ(list_audit(&f, after, 3, next), 3);
    CHECK_STR(next, "");
    CHECK_EQ(list_audit(&f, after, 2, next), 2);
    snprintf(after, sizeof after, "%llu", (unsigned long long)(total - 1));
    CHECK_STR(next, after);
    CHECK_EQ(list_audit(&f, after, 2, next), 1);
    CHECK_STR(next, "");
    snprintf(after, sizeof after, "%llu", (unsigned long long)total);
    CHECK_EQ(list_audit(&f, after, 5, next), 0);
    CHECK_STR(next, "");
    CHECK_EQ(list_audit(&f, "18446744073709551615", 5, next), 0);
    /* Keyed lists: exactly as many staff as the page, then one fewer. */
    struct kyufu_storage_page p;
    CHECK_EQ(kyufu_storage_list_staff(f.s, NULL, 8, &p), 0);
    CHECK_EQ(p.n, 8);
    CHECK_STR(p.next, "");
    kyufu_storage_page_free(&p);
    CHECK_EQ(kyufu_storage_list_staff(f.s, NULL, 7, &p), 0);
    CHECK_EQ(p.n, 7);
    CHECK(p.next[0] != '\0');
    kyufu_storage_page_free(&p);
    /* `after` up to LMDB's 511-byte key is a key; longer is INVALID. */
    CHECK_EQ(kyufu_storage_list_staff(f.s, rep('z', KYUFU_SNAPSHOT_KEY_BYTES_MAX),
                                      5, &p),
             0);
    CHECK_EQ(p.n, 0);
    kyufu_storage_page_free(&p);
    CHECK_EQ(kyufu_storage_list_staff(
                 f.s, rep('z', KYUFU_SNAPSHOT_KEY_BYTES_MAX + 1), 5, &p),
             KYUFU_STORAGE_EINVALID);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(approve_budget_one_yen_short),
        T_CASE(approve_budget_edge_in_one_entry),
        T_CASE(adjust_budget_to_zero_not_below),
        T_CASE(adjust_budget_delta_limits),
        T_CASE(pay_cancel_return_at_zero_available),
        T_CASE(submit_amount_edges),
        T_CASE(create_program_number_edges),
        T_CASE(application_window_edges),
        T_CASE(program_code_and_name_lengths),
        T_CASE(text_encoding_edges),
        T_CASE(household_lengths),
        T_CASE(reason_lengths),
        T_CASE(staff_and_header_lengths),
        T_CASE(batch_size_and_date_edges),
        T_CASE(session_retention_edge),
        T_CASE(page_size_edges),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
