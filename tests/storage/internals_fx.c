/* The storage-internals tests' fixture: see internals_fx.h. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internals_fx.h"


char fx_root[64];
int fx_n_dirs;

/* ------------------------------------------------------------ fixture */


void fx_open_opts(struct fx *f, size_t map, size_t max)
{
    char err[256] = "";
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/s%d", fx_root, fx_n_dirs++);
    f->o.path = f->dir;
    f->o.no_sync = true;
    f->o.map_size_bytes = map;
    f->o.map_size_bytes_max = max;
    f->now = T0;
    int rv = kyufu_storage_open(&f->o, &f->s, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "open: %s\n", err);
    }
    CHECK(rv == 0);
}

void fx_open(struct fx *f)
{
    fx_open_opts(f, 0, 0);
}

void fx_reopen(struct fx *f)
{
    char err[256] = "";
    kyufu_storage_close(f->s);
    f->s = NULL;
    CHECK_RV(kyufu_storage_open(&f->o, &f->s, err, sizeof err), 0);
}

/* A command with a header; body set by the caller.  All fields are
 * borrowed string literals or static storage; free with cmd_free. */
Kyufu__V1__Command *cmd_new(struct fx *f, const char *actor)
{
    Kyufu__V1__Command *c = calloc(1, sizeof *c);
    Kyufu__V1__CommandHeader *h = calloc(1, sizeof *h);
    Kyufu__V1__IdempotencyKey *k = calloc(1, sizeof *k);
    CHECK(c && h && k);
    kyufu__v1__command__init(c);
    kyufu__v1__command_header__init(h);
    kyufu__v1__idempotency_key__init(k);
    h->actor = (char *)actor;
    h->terminal = (char *)"t1";
    h->time_ms = f->now;
    f->now += 1000;
    k->client_id = (char *)"test-client";
    k->sequence = ++f->seq;
    h->key = k;
    c->header = h;
    return c;
}

void cmd_free(Kyufu__V1__Command *c)
{
    free(c->header->key);
    free(c->header);
    free(c->create_program); /* any member of the body union */
    free(c);
}

Kyufu__V1__Command *c_staff(struct fx *f, const char *actor,
                                   const char *id, uint32_t roles)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__CreateStaff *b = calloc(1, sizeof *b);
    kyufu__v1__create_staff__init(b);
    b->staff_id = (char *)id;
    b->display_name = (char *)"Staff";
    b->roles_mask = roles;
    c->body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c->create_staff = b;
    return c;
}

static Kyufu__V1__BankAccount bank = {
    PROTOBUF_C_MESSAGE_INIT(&kyufu__v1__bank_account__descriptor),
    (char *)"0001", (char *)"123", (char *)"ordinary", (char *)"1234567",
    (char *)"ヤマダ タロウ"};

Kyufu__V1__Command *c_household(struct fx *f, const char *actor,
                                       const char *no, const char *address)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__RegisterHousehold *b = calloc(1, sizeof *b);
    Kyufu__V1__Household *h = calloc(1, sizeof *h);
    kyufu__v1__register_household__init(b);
    kyufu__v1__household__init(h);
    h->household_no = (char *)no;
    h->head_name = (char *)"山田 太郎";
    h->address = (char *)address;
    h->bank = &bank;
    b->household = h;
    c->body_case = KYUFU__V1__COMMAND__BODY_REGISTER_HOUSEHOLD;
    c->register_household = b;
    return c;
}

void c_household_free(Kyufu__V1__Command *c)
{
    free(c->register_household->household);
    cmd_free(c);
}

Kyufu__V1__Command *c_program(struct fx *f, const char *actor,
                                     const char *code)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__CreateProgram *b = calloc(1, sizeof *b);
    kyufu__v1__create_program__init(b);
    b->code = (char *)code;
    b->name = (char *)"Program";
    b->fiscal_year = 2026;
    b->unit_amount = 10000;
    b->budget = 100000;
    b->window_start_ms = 1;
    b->window_end_ms = (int64_t)4e12;
    c->body_case = KYUFU__V1__COMMAND__BODY_CREATE_PROGRAM;
    c->create_program = b;
    return c;
}

Kyufu__V1__Command *c_by_code(struct fx *f, const char *actor,
                                     Kyufu__V1__Command__BodyCase bc,
                                     const char *code)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__OpenProgram *b = calloc(1, sizeof *b);
    kyufu__v1__open_program__init(b);
    if (bc == KYUFU__V1__COMMAND__BODY_CLOSE_PROGRAM) {
        b->base.descriptor = &kyufu__v1__close_program__descriptor;
    }
    b->code = (char *)code;
    c->body_case = bc;
    c->open_program = b;
    return c;
}

Kyufu__V1__Command *c_submit(struct fx *f, const char *actor,
                                    const char *program, const char *hh)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__SubmitApplication *b = calloc(1, sizeof *b);
    kyufu__v1__submit_application__init(b);
    b->program_code = (char *)program;
    b->household_no = (char *)hh;
    b->channel = KYUFU__V1__CHANNEL__CHANNEL_COUNTER;
    c->body_case = KYUFU__V1__COMMAND__BODY_SUBMIT_APPLICATION;
    c->submit_application = b;
    return c;
}

Kyufu__V1__Command *c_approve(struct fx *f, const char *actor,
                                     uint64_t id)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__ApproveApplication *b = calloc(1, sizeof *b);
    kyufu__v1__approve_application__init(b);
    b->id = id;
    c->body_case = KYUFU__V1__COMMAND__BODY_APPROVE_APPLICATION;
    c->approve_application = b;
    return c;
}

static uint64_t batch_ids[4];

Kyufu__V1__Command *c_batch(struct fx *f, const char *actor,
                                   const char *program, size_t n)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__CreatePaymentBatch *b = calloc(1, sizeof *b);
    kyufu__v1__create_payment_batch__init(b);
    b->program_code = (char *)program;
    b->transfer_date = 20260415;
    b->n_application_ids = n;
    b->application_ids = batch_ids;
    c->body_case = KYUFU__V1__COMMAND__BODY_CREATE_PAYMENT_BATCH;
    c->create_payment_batch = b;
    return c;
}

Kyufu__V1__Command *c_confirm(struct fx *f, const char *actor,
                                     uint64_t id)
{
    Kyufu__V1__Command *c = cmd_new(f, actor);
    Kyufu__V1__ConfirmPaymentBatch *b = calloc(1, sizeof *b);
    kyufu__v1__confirm_payment_batch__init(b);
    b->id = id;
    c->body_case = KYUFU__V1__COMMAND__BODY_CONFIRM_PAYMENT_BATCH;
    c->confirm_payment_batch = b;
    return c;
}

/* Apply commands as one entry; returns apply's rv; results freed unless
 * out is given (then the caller frees). */
int apply_n(struct fx *f, Kyufu__V1__Command **cmds, size_t n,
                   struct kyufu_storage_results *out)
{
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    struct kyufu_storage_results r = {0};
    char err[256] = "";
    batch.n_commands = n;
    batch.commands = cmds;
    int rv = kyufu_storage_apply(f->s, f->index + 1, 1, &batch, &r, err,
                                 sizeof err);
    if (rv == 0) {
        f->index++;
        CHECK(r.n == n);
    } else {
        CHECK(r.n == 0);
    }
    if (out != NULL) {
        *out = r;
    } else {
        kyufu_storage_results_free(&r);
    }
    return rv;
}

/* Apply one command (and free it); require `code`; return the audit seq. */
uint64_t apply1(struct fx *f, Kyufu__V1__Command *c,
                       Kyufu__V1__Code code)
{
    struct kyufu_storage_results r;
    CHECK_RV(apply_n(f, &c, 1, &r), 0);
    Kyufu__V1__CommandResult *r0 = kyufu_storage_result_unpack(&r.items[0]);
    CHECK(r0 != NULL);
    if (r0->code != code) {
        fprintf(stderr, "result %d (%s), want %d\n", r0->code, r0->message,
                code);
    }
    CHECK(r0->code == code);
    uint64_t seq = r0->audit_seq;
    kyufu__v1__command_result__free_unpacked(r0, NULL);
    kyufu_storage_results_free(&r);
    if (c->body_case == KYUFU__V1__COMMAND__BODY_REGISTER_HOUSEHOLD) {
        c_household_free(c);
    } else {
        cmd_free(c);
    }
    return seq;
}


/* Staff root (admin), clerk, appr, appr2; program P1 open; households H-1..n;
 * application 1 of H-1 approved, batched and paid. */
void world(struct fx *f, int households)
{
    char no[16];
    apply1(f, c_staff(f, "root", "root", 1u << 1), OK);
    apply1(f, c_staff(f, "root", "clerk", 1u << 2), OK);
    apply1(f, c_staff(f, "root", "appr", 1u << 3), OK);
    apply1(f, c_staff(f, "root", "appr2", 1u << 3), OK);
    apply1(f, c_program(f, "appr", "P1"), OK);
    apply1(f, c_by_code(f, "appr", KYUFU__V1__COMMAND__BODY_OPEN_PROGRAM, "P1"),
           OK);
    for (int i = 1; i <= households; i++) {
        snprintf(no, sizeof no, "H-%d", i);
        apply1(f, c_household(f, "clerk", no, "Tokyo"), OK);
    }
    apply1(f, c_submit(f, "clerk", "P1", "H-1"), OK);
    apply1(f, c_approve(f, "appr", 1), OK);
    batch_ids[0] = 1;
    apply1(f, c_batch(f, "clerk", "P1", 1), OK);
    apply1(f, c_confirm(f, "appr", 1), OK);
    if (households >= 2) {
        apply1(f, c_submit(f, "clerk", "P1", "H-2"), OK);
    }
}

void digest(struct fx *f, uint8_t d[32])
{
    uint64_t idx;
    CHECK_RV(kyufu_storage_digest(f->s, d, &idx), 0);
    CHECK(idx == f->index);
}

void invariants(struct fx *f)
{
    char err[256] = "";
    int rv = kyufu_storage_check_invariants(f->s, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "invariants: %s\n", err);
    }
    CHECK(rv == 0);
}

/* Snapshot into one buffer. */
void snapshot(struct fx *f, struct t_sink *k)
{
    struct kyufu_storage_snapshot *snap;
    uint64_t idx;
    uint64_t term;
    memset(k, 0, sizeof *k);
    CHECK_RV(kyufu_storage_snapshot_begin(f->s, &snap), 0);
    kyufu_storage_snapshot_applied(snap, &idx, &term);
    CHECK(idx == f->index && term == 1);
    CHECK_RV(kyufu_storage_snapshot_write(snap, NULL, t_sink_emit, k), 0);
    kyufu_storage_snapshot_end(snap);
}

/* ------------------------------------------------------------ runner */

static int rm(const char *path, const struct stat *sb, int flag,
              struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    nftw(fx_root, rm, 16, FTW_DEPTH | FTW_PHYS);
}


int fx_run(int argc, char **argv, const struct fx_test *tests, size_t n)
{
    snprintf(fx_root, sizeof fx_root, "/tmp/kyufu-storage-XXXXXX");
    if (mkdtemp(fx_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup); /* also after a failed CHECK (exit(1)) */
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) {
            continue;
        }
        fprintf(stderr, "--- %s\n", tests[i].name);
        tests[i].fn();
    }
    fprintf(stderr, "all passed\n");
    return 0;
}
