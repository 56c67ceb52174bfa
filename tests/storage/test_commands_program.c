/* CreateProgram, OpenProgram, CloseProgram, AdjustBudget
 * (docs/ledger-rules.md, "Commands" and "Field rules"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION

static bool same_program(const Kyufu__V1__Program *a,
                         const Kyufu__V1__Program *b)
{
    size_t na = kyufu__v1__program__get_packed_size(a);
    size_t nb = kyufu__v1__program__get_packed_size(b);
    uint8_t pa[1024], pb[1024];
    CHECK(na <= sizeof pa && nb <= sizeof pb);
    kyufu__v1__program__pack(a, pa);
    kyufu__v1__program__pack(b, pb);
    return na == nb && memcmp(pa, pb, na) == 0;
}

static Kyufu__V1__ProgramStatus status_of(struct fx *f, const char *code)
{
    Kyufu__V1__Program *p = fx_program(f, code);
    Kyufu__V1__ProgramStatus st = p->status;
    kyufu__v1__program__free_unpacked(p, NULL);
    return st;
}

static void create_program_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_create_program(&f, "appr", "FY2026_child-1",
                                             5000000);
    c->create_program->unit_amount = 50000;
    c->create_program->window_start_ms = 1000;
    c->create_program->window_end_ms = 2000;
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "program/FY2026_child-1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_PROGRAM);
    const Kyufu__V1__Program *p = r->program;
    CHECK_STR(p->code, "FY2026_child-1");
    CHECK_STR(p->name, "子育て世帯臨時給付金");
    CHECK_EQ(p->fiscal_year, 2026);
    CHECK_EQ(p->unit_amount, 50000);
    CHECK_EQ(p->budget, 5000000);
    CHECK_EQ(p->available, 5000000);
    CHECK_EQ(p->reserved, 0);
    CHECK_EQ(p->paid, 0);
    CHECK_EQ(p->window_start_ms, 1000);
    CHECK_EQ(p->window_end_ms, 2000);
    CHECK_EQ(p->status, KYUFU__V1__PROGRAM_STATUS__PROGRAM_DRAFT);
    CHECK_EQ(p->created_ms, t);
    CHECK_STR(p->created_by, "appr");
    Kyufu__V1__Program *stored = fx_program(&f, "FY2026_child-1");
    CHECK(same_program(p, stored));
    kyufu__v1__program__free_unpacked(stored, NULL);
    fx_free(r);
    fx_close(&f);
}

static void create_program_limits_accepted(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* 66 three-byte characters and two ASCII: exactly 200 bytes. */
    char name[256] = "";
    for (int i = 0; i < 66; i++) {
        strcat(name, "あ");
    }
    strcat(name, "ab");
    CHECK_EQ(strlen(name), 200);
    Kyufu__V1__Command *c =
        c_create_program(&f, "appr", rep('Z', 32), (int64_t)10000000000000);
    c_str(&c->create_program->name, name);
    c->create_program->fiscal_year = 2000;
    c->create_program->unit_amount = (int64_t)10000000000;
    fx_do(&f, c);
    c = c_create_program(&f, "appr", "P0", 0); /* a zero budget is allowed */
    c->create_program->fiscal_year = 2100;
    c->create_program->unit_amount = 1;
    fx_do(&f, c);
    fx_balances(&f, "P0", 0, 0, 0, 0);
    fx_close(&f);
}

static void create_program_exists(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_create_program(&f, "appr", "P1", 5), EXISTS);
    fx_close(&f);
}

static void create_program_bad_fields(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const char *codes[] = {"", rep('C', 33), "P 1", "P.1", "Pé", "P/1",
                           "P\n"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        fx_reject(&f, c_create_program(&f, "appr", codes[i], 5), INVALID);
    }
    const char *names[] = {"",       rep('n', 201), "a\nb", "a\tb", "a\x7f",
                           "a\xff",  "\xc0\xaf",    "\xe3\x81", /* cut */
                           "\xed\xa0\x80" /* surrogate */};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        Kyufu__V1__Command *c = c_create_program(&f, "appr", "P2", 5);
        c_str(&c->create_program->name, names[i]);
        fx_reject(&f, c, INVALID);
    }
    const int32_t years[] = {0, 1999, 2101, -2026};
    for (size_t i = 0; i < sizeof years / sizeof years[0]; i++) {
        Kyufu__V1__Command *c = c_create_program(&f, "appr", "P2", 5);
        c->create_program->fiscal_year = years[i];
        fx_reject(&f, c, INVALID);
    }
    const int64_t units[] = {0, -1, (int64_t)10000000001, INT64_MAX,
                             INT64_MIN};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        Kyufu__V1__Command *c = c_create_program(&f, "appr", "P2", 5);
        c->create_program->unit_amount = units[i];
        fx_reject(&f, c, INVALID);
    }
    const int64_t budgets[] = {-1, (int64_t)10000000000001, INT64_MAX,
                               INT64_MIN};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        fx_reject(&f, c_create_program(&f, "appr", "P2", budgets[i]),
                  INVALID);
    }
    const int64_t windows[][2] = {{0, 10}, {10, 10}, {10, 9}, {-5, 10},
                                  {INT64_MIN, INT64_MAX}};
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        Kyufu__V1__Command *c = c_create_program(&f, "appr", "P2", 5);
        c->create_program->window_start_ms = windows[i][0];
        c->create_program->window_end_ms = windows[i][1];
        fx_reject(&f, c, INVALID);
    }
    fx_close(&f);
}

static void open_close_transitions(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_create_program(&f, "appr", "P2", 1000));
    /* DRAFT: close is not an edge. */
    fx_reject(&f, c_close_program(&f, "appr", "P2"), FAILED);
    Kyufu__V1__CommandResult *r = fx_ok(&f, c_open_program(&f, "appr", "P2"));
    CHECK_STR(r->object, "program/P2");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_PROGRAM);
    CHECK_EQ(r->program->status, KYUFU__V1__PROGRAM_STATUS__PROGRAM_OPEN);
    fx_free(r);
    CHECK_EQ(status_of(&f, "P2"), KYUFU__V1__PROGRAM_STATUS__PROGRAM_OPEN);
    fx_reject(&f, c_open_program(&f, "appr", "P2"), FAILED);
    r = fx_ok(&f, c_close_program(&f, "appr", "P2"));
    CHECK_EQ(r->program->status, KYUFU__V1__PROGRAM_STATUS__PROGRAM_CLOSED);
    fx_free(r);
    CHECK_EQ(status_of(&f, "P2"), KYUFU__V1__PROGRAM_STATUS__PROGRAM_CLOSED);
    fx_reject(&f, c_open_program(&f, "appr", "P2"), FAILED);
    fx_reject(&f, c_close_program(&f, "appr", "P2"), FAILED);
    fx_balances(&f, "P2", 1000, 1000, 0, 0);
    fx_close(&f);
}

static void open_close_unknown_and_bad(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_open_program(&f, "appr", "NOPE"), NOTFOUND);
    fx_reject(&f, c_close_program(&f, "appr", "NOPE"), NOTFOUND);
    fx_reject(&f, c_open_program(&f, "appr", ""), INVALID);
    fx_reject(&f, c_close_program(&f, "appr", rep('P', 33)), INVALID);
    fx_reject(&f, c_open_program(&f, "appr", "P 1"), INVALID);
    fx_close(&f);
}

static void adjust_budget_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_adjust_budget(&f, "appr", "P1", 25000, "補正予算第1号"));
    CHECK_STR(r->object, "program/P1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_PROGRAM);
    CHECK_EQ(r->program->budget, 125000);
    CHECK_EQ(r->program->available, 125000);
    fx_free(r);
    fx_balances(&f, "P1", 125000, 125000, 0, 0);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -5000, "減額"));
    fx_balances(&f, "P1", 120000, 120000, 0, 0);
    /* With money reserved and paid, only `available` can be taken away. */
    fx_paid(&f, "P1", "H-1");
    fx_approved(&f, "P1", "H-2");
    fx_balances(&f, "P1", 120000, 100000, 10000, 10000);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -100000, "全額減額"));
    fx_balances(&f, "P1", 20000, 0, 10000, 10000);
    /* A DRAFT program can be adjusted; the limit is exactly 10^13. */
    fx_do(&f, c_create_program(&f, "appr", "P2", 0));
    fx_do(&f, c_adjust_budget(&f, "appr", "P2", (int64_t)10000000000000,
                              "当初予算"));
    fx_balances(&f, "P2", (int64_t)10000000000000, (int64_t)10000000000000,
                0, 0);
    fx_do(&f, c_adjust_budget(&f, "appr", "P2", -(int64_t)10000000000000,
                              "取消"));
    fx_balances(&f, "P2", 0, 0, 0, 0);
    fx_close(&f);
}

static void adjust_budget_below_committed(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_paid(&f, "P1", "H-1");
    fx_approved(&f, "P1", "H-2");
    fx_balances(&f, "P1", 100000, 80000, 10000, 10000);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -80001, "減額"), FAILED);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -100000, "減額"),
              FAILED);
    fx_balances(&f, "P1", 100000, 80000, 10000, 10000);
    fx_close(&f);
}

static void adjust_budget_bad(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    const int64_t deltas[] = {0, (int64_t)10000000000001,
                              -(int64_t)10000000000001, INT64_MAX, INT64_MIN,
                              INT64_MIN + 1};
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        fx_reject(&f, c_adjust_budget(&f, "appr", "P1", deltas[i], "補正"),
                  INVALID);
    }
    const char *reasons[] = {"", rep('r', 401), "a\x01", "\xff\xfe"};
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        fx_reject(&f, c_adjust_budget(&f, "appr", "P1", 100, reasons[i]),
                  INVALID);
    }
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", 100, rep('r', 400)));
    fx_reject(&f, c_adjust_budget(&f, "appr", "NOPE", 100, "補正"),
              NOTFOUND);
    fx_reject(&f, c_adjust_budget(&f, "appr", "", 100, "補正"), INVALID);
    fx_do(&f, c_close_program(&f, "appr", "P1"));
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", 100, "補正"), FAILED);
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -100, "補正"), FAILED);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(create_program_ok),
        T_CASE(create_program_limits_accepted),
        T_CASE(create_program_exists),
        T_CASE(create_program_bad_fields),
        T_CASE(open_close_transitions),
        T_CASE(open_close_unknown_and_bad),
        T_CASE(adjust_budget_ok),
        T_CASE(adjust_budget_below_committed),
        T_CASE(adjust_budget_bad),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
