/* Test helper for the ledger state machine (see cmd.h for the contract). */
#include "cmd.h"
#include "sink.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------- runner */

char t_dir[64];
static int fx_count; /* stores opened in this case, names their subdir */

void t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    /* _exit: the failure is the report; leak checks would only add noise. */
    _exit(1);
}

void t_check_eq(const char *file, int line, const char *ea, const char *eb,
                long long a, long long b)
{
    if (a != b) {
        t_fail(file, line, "%s == %s (%lld != %lld)", ea, eb, a, b);
    }
}

void t_check_str(const char *file, int line, const char *ea, const char *a,
                 const char *b)
{
    if (a == NULL || b == NULL || strcmp(a, b) != 0) {
        t_fail(file, line, "%s is \"%s\", want \"%s\"", ea, a ? a : "(null)",
               b ? b : "(null)");
    }
}

void t_check_code(const char *file, int line,
                  const Kyufu__V1__CommandResult *res, Kyufu__V1__Code want)
{
    if (res == NULL) {
        t_fail(file, line, "no result");
    }
    if (res->code != want) {
        t_fail(file, line, "code %d (\"%s\" on %s), want %d", (int)res->code,
               res->message, res->object, (int)want);
    }
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int t_main(int argc, char **argv, const struct t_case *cases, size_t n)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int failed = 0;
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (filter != NULL && strstr(cases[i].name, filter) == NULL) {
            continue;
        }
        snprintf(t_dir, sizeof t_dir, "/tmp/kyufu-test-XXXXXX");
        if (mkdtemp(t_dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            fx_count = 0;
            cases[i].fn();
            exit(0); /* exit, not _exit: LeakSanitizer runs at exit */
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) {
        }
        rm_rf(t_dir);
        ran++;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            if (WIFSIGNALED(status)) {
                printf("FAIL %s (signal %d)\n", cases[i].name,
                       WTERMSIG(status));
            } else {
                printf("FAIL %s (exit %d)\n", cases[i].name,
                       WEXITSTATUS(status));
            }
        }
        fflush(stdout);
    }
    printf("%d run, %d failed\n", ran, failed);
    if (ran == 0) {
        printf("no case matches \"%s\"\n", filter ? filter : "");
        return 1;
    }
    return failed ? 1 : 0;
}

/* -------------------------------------------------------------- fixture */

static void fx_open_dir(struct fx *f)
{
    struct kyufu_storage_options o = {
        .path = f->dir,
        .map_size_bytes = (size_t)64 << 20,
        .map_size_bytes_max = (size_t)1 << 30,
        .no_sync = !f->sync,
        .seal_limit = f->seal_limit,
    };
    char err[256] = "";
    int rv = kyufu_storage_open(&o, &f->s, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "open %s: %s: %s", f->dir,
               kyufu_storage_strerror(rv), err);
    }
    if (f->cmk) {
        kyufu_storage_keys_set(f->s, FX_CMK);
        CHECK(kyufu_storage_keys_active(f->s) >= 1);
    } else {
        CHECK_EQ(kyufu_storage_keys_active(f->s), 0);
    }
}

const uint8_t FX_CMK[32] = {
    0x6b, 0x79, 0x75, 0x66, 0x75, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20,
    0x63, 0x6d, 0x6b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
};

void fx_salt(unsigned seed, uint64_t index, uint8_t out[16])
{
    /* splitmix64 of (seed, index): distinct salts for distinct inputs in
     * practice, the same for the same. */
    uint64_t x = ((uint64_t)seed << 40) ^ index;
    for (int half = 0; half < 2; half++) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        for (int i = 0; i < 8; i++) {
            out[half * 8 + i] = (uint8_t)(z >> (8 * i));
        }
    }
}

void fx_open_keyed(struct fx *f, bool cmk)
{
    memset(f, 0, sizeof *f);
    f->cmk = cmk;
    CHECK(t_dir[0] != '\0');
    snprintf(f->dir, sizeof f->dir, "%s/s%d", t_dir, fx_count++);
    f->term = 1;
    f->now_ms = FX_T0_MS;
    snprintf(f->client_id, sizeof f->client_id, "test-client");
    fx_open_dir(f);
    uint64_t index = 99, term = 99;
    kyufu_storage_applied(f->s, &index, &term);
    CHECK_EQ(index, 0);
    CHECK_EQ(term, 0);
}

bool fx_env_cmk(void)
{
    const char *env = getenv("KYUFU_TEST_CMK");
    return env != NULL && env[0] != '\0';
}

void fx_open(struct fx *f)
{
    fx_open_keyed(f, fx_env_cmk());
}

void fx_reopen(struct fx *f)
{
    if (f->s != NULL) {
        kyufu_storage_close(f->s);
        f->s = NULL;
    }
    fx_open_dir(f);
}

void fx_close(struct fx *f)
{
    if (f->s != NULL) {
        kyufu_storage_close(f->s);
        f->s = NULL;
    }
}

void fx_restore_from(struct fx *to, struct fx *from)
{
    struct t_sink k = {0};
    struct kyufu_storage_snapshot *snap;
    char err[256] = "";
    CHECK(kyufu_storage_snapshot_begin(from->s, &snap) == 0);
    CHECK(kyufu_storage_snapshot_write(snap, NULL, t_sink_emit, &k) == 0);
    kyufu_storage_snapshot_end(snap);
    CHECK(kyufu_storage_restore(to->s, k.buf, k.len, err, sizeof err) == 0);
    free(k.buf);
    to->index = from->index;
}

static void *xcalloc(size_t size);

void fx_identity(struct fx *f)
{
    fx_version(f, FX_IDENTITY_VERSION);
}

void fx_version(struct fx *f, uint32_t version)
{
    Kyufu__V1__Command *c = c_new(f, "kyufu-node-1");
    Kyufu__V1__RecordVersions *r = xcalloc(sizeof *r);
    kyufu__v1__record_versions__init(r);
    r->voters = xcalloc(3 * sizeof *r->voters);
    for (size_t i = 0; i < 3; i++) {
        r->voters[i] = xcalloc(sizeof *r->voters[i]);
        kyufu__v1__node_version__init(r->voters[i]);
        r->voters[i]->node_id = i + 1;
        r->voters[i]->command_version = version;
    }
    r->n_voters = 3;
    c->body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
    c->record_versions = r;
    Kyufu__V1__CommandResult *res = fx_apply(f, c);
    CHECK_CODE(res, KYUFU__V1__CODE__OK);
    fx_free(res);
    kyufu__v1__command__free_unpacked(c, NULL);
    uint32_t v = 0;
    CHECK_EQ(kyufu_storage_cluster_version(f->s, &v, NULL), 0);
    CHECK_EQ(v, version);
}

static void world_rest(struct fx *f)
{
    fx_do(f, c_create_staff(f, "admin", "clerk", R_CLERK));
    fx_do(f, c_create_staff(f, "admin", "clerk2", R_CLERK));
    fx_do(f, c_create_staff(f, "admin", "appr", R_APPROVER));
    fx_do(f, c_create_staff(f, "admin", "appr2", R_APPROVER));
    fx_do(f, c_create_staff(f, "admin", "both", R_CLERK | R_APPROVER));
    fx_do(f, c_create_staff(f, "admin", "aud", R_AUDITOR));
    fx_do(f, c_create_program(f, "appr", "P1", 100000));
    fx_do(f, c_open_program(f, "appr", "P1"));
    fx_do(f, c_register_household(f, "clerk", "H-1"));
    fx_do(f, c_register_household(f, "clerk", "H-2"));
    fx_do(f, c_register_household(f, "clerk", "H-3"));
    fx_do(f, c_register_household(f, "clerk", "H-4"));
}


void fx_world(struct fx *f)
{
    fx_identity(f);
    fx_do(f, c_bootstrap(f, "admin", "admin"));
    /* The only ID administrator grants the role alone (its audit record
     * says so, so not through fx_ok's exact audit check). */
    Kyufu__V1__Command *c = c_create_staff(f, "admin", "admin2", R_ADMIN);
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    CHECK_CODE(r, KYUFU__V1__CODE__OK);
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
    world_rest(f);
}

void fx_world_v1(struct fx *f)
{
    fx_do(f, c_create_staff(f, "admin", "admin", R_ADMIN));
    fx_do(f, c_create_staff(f, "admin", "admin2", R_ADMIN));
    world_rest(f);
}

/* ------------------------------------------------------------ builders */

static void *xcalloc(size_t size)
{
    void *p = calloc(1, size);
    CHECK(p != NULL);
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    CHECK(p != NULL);
    return p;
}

void c_str(char **field, const char *value)
{
    if (*field != NULL && *field != protobuf_c_empty_string) {
        free(*field);
    }
    *field = xstrdup(value);
}

Kyufu__V1__Command *c_new(struct fx *f, const char *actor)
{
    Kyufu__V1__Command *c = xcalloc(sizeof *c);
    kyufu__v1__command__init(c);
    c->header = xcalloc(sizeof *c->header);
    kyufu__v1__command_header__init(c->header);
    c_str(&c->header->actor, actor);
    c_str(&c->header->terminal, "term-1");
    c->header->time_ms = f->now_ms;
    f->now_ms += 1000;
    c->header->key = xcalloc(sizeof *c->header->key);
    kyufu__v1__idempotency_key__init(c->header->key);
    c_str(&c->header->key->client_id, f->client_id);
    c->header->key->sequence = ++f->seq;
    return c;
}

/* Allocate and init a body message of type T into c's oneof. */
#define BODY(c, field, T, init, CASE)                                        \
    do {                                                                     \
        (c)->body_case = KYUFU__V1__COMMAND__BODY_##CASE;                    \
        (c)->field = xcalloc(sizeof(T));                                     \
        init((c)->field);                                                    \
    } while (0)

Kyufu__V1__Command *c_settle(struct fx *f, const char *actor, uint64_t seq)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    f->seq--; /* c_new took one; a settle names an existing key */
    c->header->key->sequence = seq;
    BODY(c, settle_write, Kyufu__V1__SettleWrite,
         kyufu__v1__settle_write__init, SETTLE_WRITE);
    return c;
}

Kyufu__V1__Command *c_create_program(struct fx *f, const char *actor,
                                     const char *code, int64_t budget)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, create_program, Kyufu__V1__CreateProgram,
         kyufu__v1__create_program__init, CREATE_PROGRAM);
    Kyufu__V1__CreateProgram *b = c->create_program;
    c_str(&b->code, code);
    c_str(&b->name, "子育て世帯臨時給付金");
    b->fiscal_year = 2026;
    b->unit_amount = 10000;
    b->budget = budget;
    b->window_start_ms = 1;
    b->window_end_ms = (int64_t)4000000000000;
    return c;
}

Kyufu__V1__Command *c_open_program(struct fx *f, const char *actor,
                                   const char *code)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, open_program, Kyufu__V1__OpenProgram,
         kyufu__v1__open_program__init, OPEN_PROGRAM);
    c_str(&c->open_program->code, code);
    return c;
}

Kyufu__V1__Command *c_close_program(struct fx *f, const char *actor,
                                    const char *code)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, close_program, Kyufu__V1__CloseProgram,
         kyufu__v1__close_program__init, CLOSE_PROGRAM);
    c_str(&c->close_program->code, code);
    return c;
}

Kyufu__V1__Command *c_adjust_budget(struct fx *f, const char *actor,
                                    const char *code, int64_t delta,
                                    const char *reason)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, adjust_budget, Kyufu__V1__AdjustBudget,
         kyufu__v1__adjust_budget__init, ADJUST_BUDGET);
    c_str(&c->adjust_budget->code, code);
    c->adjust_budget->delta = delta;
    c_str(&c->adjust_budget->reason, reason);
    return c;
}

static Kyufu__V1__Household *new_household(const char *no)
{
    Kyufu__V1__Household *h = xcalloc(sizeof *h);
    kyufu__v1__household__init(h);
    c_str(&h->household_no, no);
    c_str(&h->head_name, "山田 太郎");
    h->n_member_names = 2;
    h->member_names = xcalloc(2 * sizeof(char *));
    h->member_names[0] = xstrdup("山田 花子");
    h->member_names[1] = xstrdup("山田 一郎");
    c_str(&h->address, "東京都千代田区千代田1-1");
    h->bank = xcalloc(sizeof *h->bank);
    kyufu__v1__bank_account__init(h->bank);
    c_str(&h->bank->bank_code, "0001");
    c_str(&h->bank->branch_code, "123");
    c_str(&h->bank->account_type, "ordinary");
    c_str(&h->bank->account_no, "1234567");
    c_str(&h->bank->holder_kana, "ヤマダ タロウ");
    return h;
}

Kyufu__V1__Command *c_register_household(struct fx *f, const char *actor,
                                         const char *no)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, register_household, Kyufu__V1__RegisterHousehold,
         kyufu__v1__register_household__init, REGISTER_HOUSEHOLD);
    c->register_household->household = new_household(no);
    return c;
}

Kyufu__V1__Command *c_update_household(struct fx *f, const char *actor,
                                       const char *no, uint64_t expected)
{
    static const char *const all[] = {"head_name", "member_names", "address",
                                      "bank"};
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, update_household_fields, Kyufu__V1__UpdateHousehold,
         kyufu__v1__update_household__init, UPDATE_HOUSEHOLD_FIELDS);
    Kyufu__V1__UpdateHousehold *u = c->update_household_fields;
    u->household = new_household(no);
    u->expected_version = expected;
    c_mask(u, sizeof all / sizeof all[0], all);
    return c;
}

void c_mask(Kyufu__V1__UpdateHousehold *u, size_t n, const char *const *paths)
{
    for (size_t i = 0; i < u->n_update_mask; i++) {
        free(u->update_mask[i]);
    }
    free(u->update_mask);
    u->update_mask = calloc(n + 1, sizeof(char *));
    CHECK(u->update_mask != NULL);
    for (size_t i = 0; i < n; i++) {
        u->update_mask[i] = strdup(paths[i]);
        CHECK(u->update_mask[i] != NULL);
    }
    u->n_update_mask = n;
}

Kyufu__V1__Command *c_update_household_legacy(struct fx *f, const char *actor,
                                              const char *no)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, update_household, Kyufu__V1__UpdateHousehold,
         kyufu__v1__update_household__init, UPDATE_HOUSEHOLD);
    c->update_household->household = new_household(no);
    return c;
}

Kyufu__V1__Command *c_submit(struct fx *f, const char *actor,
                             const char *program, const char *household,
                             int64_t amount)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, submit_application, Kyufu__V1__SubmitApplication,
         kyufu__v1__submit_application__init, SUBMIT_APPLICATION);
    c_str(&c->submit_application->program_code, program);
    c_str(&c->submit_application->household_no, household);
    c->submit_application->channel = KYUFU__V1__CHANNEL__CHANNEL_COUNTER;
    c->submit_application->amount = amount;
    return c;
}

Kyufu__V1__Command *c_approve(struct fx *f, const char *actor, uint64_t id)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, approve_application, Kyufu__V1__ApproveApplication,
         kyufu__v1__approve_application__init, APPROVE_APPLICATION);
    c->approve_application->id = id;
    return c;
}

Kyufu__V1__Command *c_reject(struct fx *f, const char *actor, uint64_t id,
                             const char *reason)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, reject_application, Kyufu__V1__RejectApplication,
         kyufu__v1__reject_application__init, REJECT_APPLICATION);
    c->reject_application->id = id;
    c_str(&c->reject_application->reason, reason);
    return c;
}

Kyufu__V1__Command *c_cancel(struct fx *f, const char *actor, uint64_t id,
                             const char *reason)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, cancel_application, Kyufu__V1__CancelApplication,
         kyufu__v1__cancel_application__init, CANCEL_APPLICATION);
    c->cancel_application->id = id;
    c_str(&c->cancel_application->reason, reason);
    return c;
}

Kyufu__V1__Command *c_create_batch(struct fx *f, const char *actor,
                                   const char *program, int32_t date,
                                   const uint64_t *ids, size_t n)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, create_payment_batch, Kyufu__V1__CreatePaymentBatch,
         kyufu__v1__create_payment_batch__init, CREATE_PAYMENT_BATCH);
    Kyufu__V1__CreatePaymentBatch *b = c->create_payment_batch;
    c_str(&b->program_code, program);
    b->transfer_date = date;
    if (n > 0) {
        b->application_ids = xcalloc(n * sizeof(uint64_t));
        memcpy(b->application_ids, ids, n * sizeof(uint64_t));
    }
    b->n_application_ids = n;
    return c;
}

Kyufu__V1__Command *c_confirm(struct fx *f, const char *actor, uint64_t id)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, confirm_payment_batch, Kyufu__V1__ConfirmPaymentBatch,
         kyufu__v1__confirm_payment_batch__init, CONFIRM_PAYMENT_BATCH);
    c->confirm_payment_batch->id = id;
    return c;
}

Kyufu__V1__Command *c_return(struct fx *f, const char *actor, uint64_t app,
                             const char *reason)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, return_payment, Kyufu__V1__ReturnPayment,
         kyufu__v1__return_payment__init, RETURN_PAYMENT);
    c->return_payment->application_id = app;
    c_str(&c->return_payment->reason, reason);
    return c;
}

Kyufu__V1__PasswordHash *c_pw_hash(unsigned seed)
{
    Kyufu__V1__PasswordHash *h = xcalloc(sizeof *h);
    kyufu__v1__password_hash__init(h);
    h->iterations = 1000;
    h->salt.len = 16;
    h->salt.data = xcalloc(16);
    h->hash.len = 32;
    h->hash.data = xcalloc(32);
    fx_secret_bytes(seed, 'S', h->salt.data, 16);
    fx_secret_bytes(seed, 'H', h->hash.data, 32);
    return h;
}

void fx_secret_bytes(unsigned seed, char kind, uint8_t *out, size_t n)
{
    /* Bytes that never occur in text: each has the high bit set and they
     * vary, so a scan for them cannot match an ordinary field. */
    uint32_t x = seed * 2654435761u + (uint32_t)kind * 40503u + 1u;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        out[i] = (uint8_t)(0x80u | ((x >> 16) & 0x7fu));
    }
}

Kyufu__V1__Command *c_create_staff(struct fx *f, const char *actor,
                                   const char *id, uint32_t roles)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, create_staff, Kyufu__V1__CreateStaff,
         kyufu__v1__create_staff__init, CREATE_STAFF);
    c_str(&c->create_staff->staff_id, id);
    c_str(&c->create_staff->display_name, "職員 一");
    c->create_staff->roles_mask = roles;
    c->create_staff->temporary_password = c_pw_hash(FX_TEMP_PW_SEED);
    return c;
}

Kyufu__V1__Command *c_id_new(struct fx *f, const char *actor)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    c_str(&c->header->key->client_id, "kyufud-test-1");
    return c;
}

Kyufu__V1__Command *c_bootstrap(struct fx *f, const char *actor,
                                const char *id)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, bootstrap_admin, Kyufu__V1__BootstrapAdmin,
         kyufu__v1__bootstrap_admin__init, BOOTSTRAP_ADMIN);
    c_str(&c->bootstrap_admin->staff_id, id);
    c_str(&c->bootstrap_admin->display_name, "ID administrator");
    c->bootstrap_admin->password = c_pw_hash(FX_TEMP_PW_SEED);
    return c;
}

Kyufu__V1__Command *c_set_roles(struct fx *f, const char *actor,
                                const char *id, uint32_t roles)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, set_staff_roles, Kyufu__V1__SetStaffRoles,
         kyufu__v1__set_staff_roles__init, SET_STAFF_ROLES);
    c_str(&c->set_staff_roles->staff_id, id);
    c->set_staff_roles->roles_mask = roles;
    return c;
}

Kyufu__V1__Command *c_set_status(struct fx *f, const char *actor,
                                 const char *id, Kyufu__V1__StaffStatus st)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    BODY(c, set_staff_status, Kyufu__V1__SetStaffStatus,
         kyufu__v1__set_staff_status__init, SET_STAFF_STATUS);
    c_str(&c->set_staff_status->staff_id, id);
    c->set_staff_status->status = st;
    return c;
}

/* ------------------------------------------------ identity builders */

static void set_bytes(ProtobufCBinaryData *b, unsigned seed, char kind,
                      size_t n)
{
    b->data = xcalloc(n);
    b->len = n;
    fx_secret_bytes(seed, kind, b->data, n);
}

Kyufu__V1__Command *c_set_password(struct fx *f, const char *actor,
                                          const char *id, unsigned seed,
                                          bool temporary)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, set_password, Kyufu__V1__SetPassword,
         kyufu__v1__set_password__init, SET_PASSWORD);
    c_str(&c->set_password->staff_id, id);
    c->set_password->password = c_pw_hash(seed);
    c->set_password->temporary = temporary;
    c->set_password->history = 5;
    return c;
}

int64_t fx_password_set_ms(struct fx *f, const char *id)
{
    Kyufu__V1__Credential *cr = NULL;
    CHECK_EQ(kyufu_storage_get_credential(f->s, id, &cr), 0);
    int64_t t = cr->password_set_ms;
    kyufu__v1__credential__free_unpacked(cr, NULL);
    return t;
}

/* OpenSession of token `tok` (bytes from seed tok), TOTP step (0: a
 * setup-only session), the password as it stands. */
Kyufu__V1__Command *c_open(struct fx *f, const char *id, unsigned tok,
                                 uint64_t step)
{
    /* As stored; 1 for an account without a credential (the fuzzer's). */
    Kyufu__V1__Credential *cr = NULL;
    int64_t pset = 1;
    if (kyufu_storage_get_credential(f->s, id, &cr) == 0) {
        pset = cr->password_set_ms;
        kyufu__v1__credential__free_unpacked(cr, NULL);
    }
    Kyufu__V1__Command *c = c_id_new(f, id);
    BODY(c, open_session, Kyufu__V1__OpenSession,
         kyufu__v1__open_session__init, OPEN_SESSION);
    Kyufu__V1__OpenSession *b = c->open_session;
    c_str(&b->staff_id, id);
    set_bytes(&b->token_hash, tok, 'T', 32);
    set_bytes(&b->cert_sha256, tok, 'C', 32);
    c_str(&b->terminal, "窓口-1");
    b->idle_ms = 15 * 60 * 1000;
    b->absolute_ms = 12 * 60 * 60 * 1000;
    b->setup_only = step == 0;
    b->totp_step = step;
    b->password_set_ms = pset;
    return c;
}

Kyufu__V1__Command *c_failed(struct fx *f, const char *actor,
                                    const char *id, const char *reason)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, sign_in_failed, Kyufu__V1__SignInFailed,
         kyufu__v1__sign_in_failed__init, SIGN_IN_FAILED);
    c_str(&c->sign_in_failed->staff_id, id);
    c_str(&c->sign_in_failed->reason, reason);
    c->sign_in_failed->lock_after = 5;
    c->sign_in_failed->lock_ms = 15 * 60 * 1000;
    return c;
}

Kyufu__V1__Command *c_close(struct fx *f, const char *actor,
                                   unsigned tok)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, close_session, Kyufu__V1__CloseSession,
         kyufu__v1__close_session__init, CLOSE_SESSION);
    set_bytes(&c->close_session->token_hash, tok, 'T', 32);
    c_str(&c->close_session->reason, "sign-out");
    return c;
}

Kyufu__V1__Command *c_touch(struct fx *f, const char *actor,
                                   unsigned tok, int64_t used)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, touch_sessions, Kyufu__V1__TouchSessions,
         kyufu__v1__touch_sessions__init, TOUCH_SESSIONS);
    Kyufu__V1__TouchSessions *b = c->touch_sessions;
    b->token_hash = xcalloc(sizeof *b->token_hash);
    b->used_ms = xcalloc(sizeof *b->used_ms);
    set_bytes(&b->token_hash[0], tok, 'T', 32);
    b->n_token_hash = 1;
    b->used_ms[0] = used;
    b->n_used_ms = 1;
    return c;
}

Kyufu__V1__Command *c_enroll(struct fx *f, const char *id,
                                    unsigned seed)
{
    Kyufu__V1__Command *c = c_id_new(f, id);
    BODY(c, enroll_totp, Kyufu__V1__EnrollTotp,
         kyufu__v1__enroll_totp__init, ENROLL_TOTP);
    c_str(&c->enroll_totp->staff_id, id);
    set_bytes(&c->enroll_totp->secret, seed, 'O', 20);
    return c;
}

Kyufu__V1__Command *c_confirm_totp(struct fx *f, const char *id,
                                          uint64_t step)
{
    Kyufu__V1__Command *c = c_id_new(f, id);
    BODY(c, confirm_totp, Kyufu__V1__ConfirmTotp,
         kyufu__v1__confirm_totp__init, CONFIRM_TOTP);
    c_str(&c->confirm_totp->staff_id, id);
    c->confirm_totp->step = step;
    return c;
}

Kyufu__V1__Command *c_unlock(struct fx *f, const char *actor,
                                    const char *id)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, unlock_staff, Kyufu__V1__UnlockStaff,
         kyufu__v1__unlock_staff__init, UNLOCK_STAFF);
    c_str(&c->unlock_staff->staff_id, id);
    return c;
}

Kyufu__V1__Command *c_reset_totp(struct fx *f, const char *actor,
                                        const char *id)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, reset_totp, Kyufu__V1__ResetTotp, kyufu__v1__reset_totp__init,
         RESET_TOTP);
    c_str(&c->reset_totp->staff_id, id);
    return c;
}

Kyufu__V1__Command *c_purge(struct fx *f, const char *actor,
                                   const char *id)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, purge_staff, Kyufu__V1__PurgeStaff, kyufu__v1__purge_staff__init,
         PURGE_STAFF);
    c_str(&c->purge_staff->staff_id, id);
    return c;
}

Kyufu__V1__Command *c_access(struct fx *f, const char *actor,
                                    size_t n_objects)
{
    Kyufu__V1__Command *c = c_id_new(f, actor);
    BODY(c, record_access, Kyufu__V1__RecordAccess,
         kyufu__v1__record_access__init, RECORD_ACCESS);
    Kyufu__V1__RecordAccess *b = c->record_access;
    c_str(&b->method, "/kyufu.v1.Ledger/ListHouseholds");
    b->objects = xcalloc((n_objects + 1) * sizeof *b->objects);
    for (size_t i = 0; i < n_objects; i++) {
        char name[48];
        snprintf(name, sizeof name, "household/H-%zu", i + 1);
        c_str(&b->objects[i], name);
    }
    b->n_objects = n_objects;
    c_str(&b->peer, "127.0.0.1:53412");
    c_str(&b->certificate, "CN=terminal-1");
    b->session = 7;
    return c;
}

const char *c_name(const Kyufu__V1__Command *c)
{
    if (c->body_case == KYUFU__V1__COMMAND__BODY__NOT_SET ||
        c->create_program == NULL) {
        return "Unknown";
    }
    /* Every member of the oneof is a message: its descriptor names it. */
    const ProtobufCMessage *m = (const ProtobufCMessage *)c->create_program;
    return m->descriptor->short_name;
}

/* ------------------------------------------------------------ applying */

/* A result as a caller reads it.  Every result apply makes is checked
 * here against what the node relies on when it relays the bytes unread
 * (node/service_write.c answer_packed): the code and record case given
 * beside them are the bytes' own, and the bytes are the canonical
 * encoding, exactly what protobuf-c packs for the unpacked result. */
static Kyufu__V1__CommandResult *read_result(
    const struct kyufu_storage_result *r)
{
    CHECK(r->bytes != NULL);
    Kyufu__V1__CommandResult *m = kyufu_storage_result_unpack(r);
    CHECK(m != NULL);
    CHECK(m->code == r->code);
    CHECK(m->record_case == r->record);
    size_t n = kyufu__v1__command_result__get_packed_size(m);
    CHECK_EQ(n, r->len);
    uint8_t *buf = xcalloc(n + 1);
    kyufu__v1__command_result__pack(m, buf);
    CHECK(memcmp(buf, r->bytes, n) == 0);
    free(buf);
    return m;
}

void fx_apply_batch(struct fx *f, Kyufu__V1__Command **cmds, size_t n,
                    Kyufu__V1__CommandResult **out)
{
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    uint8_t salt[16];
    batch.n_commands = n;
    batch.commands = cmds;
    struct kyufu_storage_results res = {0};
    char err[256] = "";
    f->index++;
    if (!f->salt_empty) {
        fx_salt(f->salt_seed, f->index, salt);
        batch.salt.data = salt;
        batch.salt.len = sizeof salt;
    }
    int rv = kyufu_storage_apply(f->s, f->index, f->term, &batch, &res, err,
                                 sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "apply at %" PRIu64 ": %s: %s", f->index,
               kyufu_storage_strerror(rv), err);
    }
    CHECK_EQ(res.n, n);
    for (size_t i = 0; i < n; i++) {
        out[i] = read_result(&res.items[i]);
    }
    kyufu_storage_results_free(&res);
    uint64_t index = 0, term = 0;
    kyufu_storage_applied(f->s, &index, &term);
    CHECK_EQ(index, f->index);
    CHECK_EQ(term, f->term);
}

Kyufu__V1__CommandResult *fx_apply(struct fx *f, const Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = NULL;
    Kyufu__V1__Command *one = (Kyufu__V1__Command *)c;
    fx_apply_batch(f, &one, 1, &r);
    return r;
}

void fx_free(Kyufu__V1__CommandResult *r)
{
    if (r != NULL) {
        kyufu__v1__command_result__free_unpacked(r, NULL);
    }
}

static const char *hdr_str(const Kyufu__V1__Command *c, int which)
{
    const Kyufu__V1__CommandHeader *h = c->header;
    if (h == NULL) {
        return "";
    }
    switch (which) {
    case 0:
        return h->actor ? h->actor : "";
    case 1:
        return h->terminal ? h->terminal : "";
    default:
        return h->key && h->key->client_id ? h->key->client_id : "";
    }
}

/* An audit field copied from the header.  For an accepted command it is
 * the header's value.  For a command rejected at step 1 the docs say "with
 * whatever header fields it had"; storage may also record an invalid value
 * made safe: cut to `max` bytes, each byte outside printable ASCII
 * replaced by '?'.  Both are accepted here (see docs/testing.md). */
static void check_hdr_field(const char *file, int line, const char *what,
                            const char *got, const char *sent, size_t max,
                            bool exact)
{
    if (strcmp(got, sent) == 0) {
        return;
    }
    if (!exact) {
        char safe[1024];
        size_t n = strlen(sent);
        if (n > max) {
            n = max;
        }
        CHECK(n < sizeof safe);
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)sent[i];
            safe[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        safe[n] = '\0';
        if (strcmp(got, safe) == 0) {
            return;
        }
    }
    t_fail(file, line, "%s is \"%s\", want \"%s\"", what, got, sent);
}

/* The audit record for a command just applied as its own entry. */
static void check_audit(const char *file, int line, struct fx *f,
                        const Kyufu__V1__Command *c,
                        const Kyufu__V1__CommandResult *r,
                        uint64_t count_before)
{
    bool exact = r->code == KYUFU__V1__CODE__OK;
    uint64_t count = fx_audit_count(f);
    if (count != count_before + 1) {
        t_fail(file, line, "audit count %" PRIu64 ", want %" PRIu64, count,
               count_before + 1);
    }
    if (r->audit_seq != count) {
        t_fail(file, line, "result audit_seq %" PRIu64 ", want %" PRIu64,
               r->audit_seq, count);
    }
    Kyufu__V1__AuditRecord *a = fx_audit(f, count);
    t_check_eq(file, line, "audit.seq", "count", (long long)a->seq,
               (long long)count);
    t_check_eq(file, line, "audit.raft_index", "index",
               (long long)a->raft_index, (long long)f->index);
    t_check_eq(file, line, "audit.time_ms", "header.time_ms",
               (long long)a->time_ms,
               (long long)(c->header ? c->header->time_ms : 0));
    check_hdr_field(file, line, "audit.actor", a->actor, hdr_str(c, 0), 64,
                    exact);
    check_hdr_field(file, line, "audit.terminal", a->terminal, hdr_str(c, 1),
                    64, exact);
    check_hdr_field(file, line, "audit.client_id", a->client_id,
                    hdr_str(c, 2), 64, exact);
    t_check_eq(file, line, "audit.client_seq", "key.sequence",
               (long long)a->client_seq,
               (long long)(c->header && c->header->key
                               ? c->header->key->sequence
                               : 0));
    t_check_str(file, line, "audit.command", a->command, c_name(c));
    t_check_str(file, line, "audit.object", a->object, r->object);
    t_check_eq(file, line, "audit.outcome", "result.code",
               (long long)a->outcome, (long long)r->code);
    t_check_str(file, line, "audit.message", a->message, r->message);
    t_check_eq(file, line, "audit.prev_hash.len", "32",
               (long long)a->prev_hash.len, 32);
    t_check_eq(file, line, "audit.hash.len", "32", (long long)a->hash.len,
               32);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
}

Kyufu__V1__CommandResult *fx_ok_at(const char *file, int line, struct fx *f,
                                   Kyufu__V1__Command *c)
{
    uint64_t before = fx_audit_count(f);
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    t_check_code(file, line, r, KYUFU__V1__CODE__OK);
    t_check_str(file, line, "result.message", r->message, "");
    t_check_eq(file, line, "result.raft_index", "index",
               (long long)r->raft_index, (long long)f->index);
    if (r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD__NOT_SET) {
        t_fail(file, line, "OK result without a record");
    }
    if (r->object == NULL || r->object[0] == '\0') {
        t_fail(file, line, "OK result without an object");
    }
    check_audit(file, line, f, c, r, before);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_invariants(f);
    return r;
}

Kyufu__V1__CommandResult *fx_apply_ok_at(const char *file, int line,
                                         struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    t_check_code(file, line, r, KYUFU__V1__CODE__OK);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_invariants(f);
    return r;
}

void fx_reject_at(const char *file, int line, struct fx *f,
                  Kyufu__V1__Command *c, Kyufu__V1__Code code)
{
    struct blob before, after;
    fx_state(f, &before);
    uint64_t count = fx_audit_count(f);
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    t_check_code(file, line, r, code);
    if (r->message == NULL || r->message[0] == '\0') {
        t_fail(file, line, "rejection without a message");
    }
    t_check_eq(file, line, "result.raft_index", "index",
               (long long)r->raft_index, (long long)f->index);
    if (r->record_case != KYUFU__V1__COMMAND_RESULT__RECORD__NOT_SET) {
        t_fail(file, line, "rejection carries a record");
    }
    fx_state(f, &after);
    if (!blob_eq(&before, &after)) {
        t_fail(file, line, "rejected command (%s) changed the state",
               r->message);
    }
    blob_free(&before);
    blob_free(&after);
    check_audit(file, line, f, c, r, count);
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_invariants(f);
}

/* ---------------------------------------------------------- observing */

static void blob_put(struct blob *b, const void *p, size_t n)
{
    uint8_t *q = realloc(b->p, b->n + n + 8);
    CHECK(q != NULL);
    b->p = q;
    uint64_t len = n;
    memcpy(b->p + b->n, &len, 8);
    if (n > 0) {
        memcpy(b->p + b->n + 8, p, n);
    }
    b->n += n + 8;
}

typedef int (*list_fn)(struct kyufu_storage *, const char *, size_t,
                       struct kyufu_storage_page *);

static int list_apps(struct kyufu_storage *s, const char *after, size_t n,
                     struct kyufu_storage_page *page)
{
    struct kyufu_storage_app_filter any = {0};
    return kyufu_storage_list_applications(s, &any, after, n, page);
}

static void put_list(struct fx *f, struct blob *b, list_fn fn, int tag)
{
    char after[128] = "";
    blob_put(b, &tag, sizeof tag);
    for (;;) {
        struct kyufu_storage_page page = {0};
        int rv = fn(f->s, after, 1000, &page);
        if (rv != 0) {
            t_fail(__FILE__, __LINE__, "list %d: %s", tag,
                   kyufu_storage_strerror(rv));
        }
        for (size_t i = 0; i < page.n; i++) {
            const ProtobufCMessage *m = page.items[i];
            size_t n = protobuf_c_message_get_packed_size(m);
            uint8_t *buf = xcalloc(n + 1);
            protobuf_c_message_pack(m, buf);
            blob_put(b, buf, n);
            free(buf);
        }
        bool more = page.next[0] != '\0';
        snprintf(after, sizeof after, "%s", page.next);
        kyufu_storage_page_free(&page);
        if (!more) {
            break;
        }
    }
}

void fx_state(struct fx *f, struct blob *b)
{
    b->p = NULL;
    b->n = 0;
    put_list(f, b, kyufu_storage_list_programs, 1);
    put_list(f, b, kyufu_storage_list_households, 2);
    put_list(f, b, list_apps, 3);
    put_list(f, b, kyufu_storage_list_batches, 4);
    put_list(f, b, kyufu_storage_list_staff, 5);
}

void blob_free(struct blob *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

bool blob_eq(const struct blob *a, const struct blob *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n) == 0);
}

uint64_t fx_audit_count(struct fx *f)
{
    uint64_t count = 0;
    char err[256] = "";
    int rv = kyufu_storage_audit_verify(f->s, &count, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "audit chain: %s: %s",
               kyufu_storage_strerror(rv), err);
    }
    return count;
}

Kyufu__V1__AuditRecord *fx_audit(struct fx *f, uint64_t seq)
{
    char after[32];
    snprintf(after, sizeof after, "%" PRIu64, seq - 1);
    struct kyufu_storage_page page = {0};
    CHECK_EQ(kyufu_storage_list_audit(f->s, seq > 1 ? after : "", 1, &page),
             0);
    CHECK_EQ(page.n, 1);
    Kyufu__V1__AuditRecord *a = page.items[0];
    page.items[0] = NULL;
    page.n = 0;
    kyufu_storage_page_free(&page);
    CHECK_EQ(a->seq, seq);
    return a;
}

void fx_digest(struct fx *f, uint8_t d[32])
{
    uint64_t index = 0;
    CHECK_EQ(kyufu_storage_digest(f->s, d, &index), 0);
    CHECK_EQ(index, f->index);
}

void fx_invariants(struct fx *f)
{
    char err[256] = "";
    int rv = kyufu_storage_check_invariants(f->s, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "invariants: %s: %s",
               kyufu_storage_strerror(rv), err);
    }
}

Kyufu__V1__Program *fx_program(struct fx *f, const char *code)
{
    Kyufu__V1__Program *p = NULL;
    CHECK_EQ(kyufu_storage_get_program(f->s, code, &p), 0);
    CHECK(p != NULL);
    return p;
}

Kyufu__V1__Application *fx_app(struct fx *f, uint64_t id)
{
    Kyufu__V1__Application *a = NULL;
    CHECK_EQ(kyufu_storage_get_application(f->s, id, &a), 0);
    CHECK(a != NULL);
    return a;
}

Kyufu__V1__PaymentBatch *fx_batch(struct fx *f, uint64_t id)
{
    Kyufu__V1__PaymentBatch *b = NULL;
    CHECK_EQ(kyufu_storage_get_batch(f->s, id, &b), 0);
    CHECK(b != NULL);
    return b;
}

Kyufu__V1__Household *fx_household(struct fx *f, const char *no)
{
    Kyufu__V1__Household *h = NULL;
    CHECK_EQ(kyufu_storage_get_household(f->s, no, &h), 0);
    CHECK(h != NULL);
    return h;
}

Kyufu__V1__StaffAccount *fx_staff(struct fx *f, const char *id)
{
    Kyufu__V1__StaffAccount *a = NULL;
    CHECK_EQ(kyufu_storage_get_staff(f->s, id, &a), 0);
    CHECK(a != NULL);
    return a;
}

void fx_balances_at(const char *file, int line, struct fx *f,
                    const char *code, int64_t budget, int64_t available,
                    int64_t reserved, int64_t paid)
{
    Kyufu__V1__Program *p = fx_program(f, code);
    t_check_eq(file, line, "budget", "want", p->budget, budget);
    t_check_eq(file, line, "available", "want", p->available, available);
    t_check_eq(file, line, "reserved", "want", p->reserved, reserved);
    t_check_eq(file, line, "paid", "want", p->paid, paid);
    t_check_eq(file, line, "budget", "available + reserved + paid",
               p->budget, p->available + p->reserved + p->paid);
    kyufu__v1__program__free_unpacked(p, NULL);
}

uint64_t fx_submitted(struct fx *f, const char *program, const char *hh)
{
    Kyufu__V1__CommandResult *r = fx_ok(f, c_submit(f, "clerk", program, hh, 0));
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION);
    uint64_t id = r->application->id;
    fx_free(r);
    return id;
}

uint64_t fx_approved(struct fx *f, const char *program, const char *hh)
{
    uint64_t id = fx_submitted(f, program, hh);
    fx_do(f, c_approve(f, "appr", id));
    return id;
}

uint64_t fx_batch_of(struct fx *f, const char *program, const uint64_t *ids,
                     size_t n)
{
    Kyufu__V1__CommandResult *r =
        fx_ok(f, c_create_batch(f, "clerk", program, 20260415, ids, n));
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_BATCH);
    uint64_t id = r->batch->id;
    fx_free(r);
    return id;
}

uint64_t fx_paid(struct fx *f, const char *program, const char *hh)
{
    uint64_t id = fx_approved(f, program, hh);
    uint64_t b = fx_batch_of(f, program, &id, 1);
    fx_do(f, c_confirm(f, "appr2", b));
    return id;
}

const char *rep(char ch, size_t n)
{
    static char bufs[4][1024];
    static unsigned next;
    char *b = bufs[next++ % 4];
    CHECK(n < sizeof bufs[0]);
    memset(b, ch, n);
    b[n] = '\0';
    return b;
}
