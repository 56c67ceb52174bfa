/* The six ledger invariants (docs/ledger-rules.md "Invariants asserted
 * after every apply"), one test group each, named
 * invariant_N_... .  Each is written so that it FAILS when the check that
 * enforces the invariant in storage/ is removed (docs/testing.md says how to
 * show it): the forbidden command must come back rejected with the
 * documented code, and the test recomputes the invariant itself from the
 * stored records rather than trusting kyufu_storage_check_invariants. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cmd.h"

#define OK KYUFU__V1__CODE__OK
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define EXHAUSTED KYUFU__V1__CODE__RESOURCE_EXHAUSTED

#define S_APPROVED KYUFU__V1__APPLICATION_STATUS__APP_APPROVED
#define S_PAID KYUFU__V1__APPLICATION_STATUS__APP_PAID
#define S_REJECTED KYUFU__V1__APPLICATION_STATUS__APP_REJECTED
#define S_CANCELLED KYUFU__V1__APPLICATION_STATUS__APP_CANCELLED

/* Every application, in id order (page through the list). */
struct apps
{
    size_t n;
    Kyufu__V1__Application **a;
};

static void all_apps(struct fx *f, struct apps *out)
{
    out->n = 0;
    out->a = NULL;
    char after[128] = "";
    struct kyufu_storage_app_filter any = {0};
    for (;;) {
        struct kyufu_storage_page page = {0};
        CHECK_EQ(kyufu_storage_list_applications(f->s, &any, after, 1000,
                                                 &page),
                 0);
        Kyufu__V1__Application **grown =
            realloc(out->a, (out->n + page.n + 1) * sizeof *grown);
        CHECK(grown != NULL);
        out->a = grown;
        for (size_t i = 0; i < page.n; i++) {
            out->a[out->n++] = page.items[i];
            page.items[i] = NULL;
        }
        snprintf(after, sizeof after, "%s", page.next);
        page.n = 0;
        kyufu_storage_page_free(&page);
        if (after[0] == '\0') {
            break;
        }
    }
}

static void apps_free(struct apps *x)
{
    for (size_t i = 0; i < x->n; i++) {
        kyufu__v1__application__free_unpacked(x->a[i], NULL);
    }
    free(x->a);
}

/* Invariant 1 recomputed: budget = available + reserved + paid, all >= 0,
 * reserved = sum over APPROVED, paid = sum over PAID. */
static void recompute_balances(struct fx *f, const char *code)
{
    Kyufu__V1__Program *p = fx_program(f, code);
    struct apps x;
    all_apps(f, &x);
    int64_t reserved = 0, paid = 0;
    for (size_t i = 0; i < x.n; i++) {
        if (strcmp(x.a[i]->program_code, code) != 0) {
            continue;
        }
        if (x.a[i]->status == S_APPROVED) {
            reserved += x.a[i]->amount;
        } else if (x.a[i]->status == S_PAID) {
            paid += x.a[i]->amount;
        }
    }
    CHECK(p->available >= 0);
    CHECK(p->reserved >= 0);
    CHECK(p->paid >= 0);
    CHECK_EQ(p->budget, p->available + p->reserved + p->paid);
    CHECK_EQ(p->reserved, reserved);
    CHECK_EQ(p->paid, paid);
    apps_free(&x);
    kyufu__v1__program__free_unpacked(p, NULL);
}

/* Invariant 2 recomputed: live applications per (program, household). */
static void recompute_one_live(struct fx *f)
{
    struct apps x;
    all_apps(f, &x);
    for (size_t i = 0; i < x.n; i++) {
        const Kyufu__V1__Application *a = x.a[i];
        if (a->status == S_REJECTED || a->status == S_CANCELLED) {
            continue;
        }
        for (size_t j = i + 1; j < x.n; j++) {
            const Kyufu__V1__Application *b = x.a[j];
            if (b->status == S_REJECTED || b->status == S_CANCELLED) {
                continue;
            }
            if (strcmp(a->program_code, b->program_code) == 0 &&
                strcmp(a->household_no, b->household_no) == 0) {
                t_fail(__FILE__, __LINE__,
                       "applications %llu and %llu are both live",
                       (unsigned long long)a->id, (unsigned long long)b->id);
            }
        }
    }
    apps_free(&x);
}

/* -------------------------------------------------------------- 1 */

static void invariant_1_approve_beyond_available(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -75000, "減額")); /* 25,000 */
    uint64_t a = fx_approved(&f, "P1", "H-1");
    uint64_t b = fx_approved(&f, "P1", "H-2");
    uint64_t c = fx_submitted(&f, "P1", "H-3");
    fx_balances(&f, "P1", 25000, 5000, 20000, 0);
    fx_reject(&f, c_approve(&f, "appr", c), EXHAUSTED);
    fx_balances(&f, "P1", 25000, 5000, 20000, 0);
    recompute_balances(&f, "P1");
    /* Pay one, return it, cancel the other: money flows back. */
    uint64_t batch = fx_batch_of(&f, "P1", &a, 1);
    fx_do(&f, c_confirm(&f, "appr2", batch));
    fx_balances(&f, "P1", 25000, 5000, 10000, 10000);
    recompute_balances(&f, "P1");
    fx_do(&f, c_return(&f, "clerk", a, "返戻"));
    fx_do(&f, c_cancel(&f, "clerk", b, "取下げ"));
    fx_balances(&f, "P1", 25000, 25000, 0, 0);
    fx_do(&f, c_approve(&f, "appr", c));
    recompute_balances(&f, "P1");
    fx_close(&f);
}

/* Approvals in one entry see each other's reservations. */
static void invariant_1_approvals_in_one_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_adjust_budget(&f, "appr", "P1", -85000, "減額")); /* 15,000 */
    uint64_t a = fx_submitted(&f, "P1", "H-1");
    uint64_t b = fx_submitted(&f, "P1", "H-2");
    Kyufu__V1__Command *cmds[2] = {c_approve(&f, "appr", a),
                                   c_approve(&f, "appr", b)};
    Kyufu__V1__CommandResult *r[2];
    fx_apply_batch(&f, cmds, 2, r);
    CHECK_CODE(r[0], OK);
    CHECK_CODE(r[1], EXHAUSTED);
    for (int i = 0; i < 2; i++) {
        fx_free(r[i]);
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
    fx_balances(&f, "P1", 15000, 5000, 10000, 0);
    recompute_balances(&f, "P1");
    fx_invariants(&f);
    fx_close(&f);
}

static void invariant_1_budget_cut_below_committed(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_paid(&f, "P1", "H-1");
    fx_approved(&f, "P1", "H-2");
    fx_reject(&f, c_adjust_budget(&f, "appr", "P1", -80001, "減額"), FAILED);
    fx_balances(&f, "P1", 100000, 80000, 10000, 10000);
    recompute_balances(&f, "P1");
    fx_close(&f);
}

/* -------------------------------------------------------------- 2 */

static void invariant_2_second_live_application(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_submitted(&f, "P1", "H-1");
    fx_reject(&f, c_submit(&f, "clerk2", "P1", "H-1", 0), EXISTS);
    fx_do(&f, c_approve(&f, "appr", id));
    fx_reject(&f, c_submit(&f, "clerk2", "P1", "H-1", 5000), EXISTS);
    uint64_t b = fx_batch_of(&f, "P1", &id, 1);
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_reject(&f, c_submit(&f, "clerk2", "P1", "H-1", 0), EXISTS);
    fx_do(&f, c_return(&f, "clerk", id, "返戻"));
    /* RETURNED is live: the household was paid once. */
    fx_reject(&f, c_submit(&f, "clerk2", "P1", "H-1", 0), EXISTS);
    recompute_one_live(&f);
    fx_close(&f);
}

/* Two submissions for one pair inside one entry: the second sees the
 * first's uncommitted write. */
static void invariant_2_two_in_one_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *cmds[2] = {c_submit(&f, "clerk", "P1", "H-1", 0),
                                   c_submit(&f, "clerk2", "P1", "H-1", 0)};
    Kyufu__V1__CommandResult *r[2];
    fx_apply_batch(&f, cmds, 2, r);
    CHECK_CODE(r[0], OK);
    CHECK_CODE(r[1], EXISTS);
    for (int i = 0; i < 2; i++) {
        fx_free(r[i]);
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
    recompute_one_live(&f);
    fx_invariants(&f);
    fx_close(&f);
}

/* -------------------------------------------------------------- 3 */

static void invariant_3_confirm_twice(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_approved(&f, "P1", "H-1");
    uint64_t b = fx_batch_of(&f, "P1", &id, 1);
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_reject(&f, c_confirm(&f, "appr2", b), FAILED);
    fx_balances(&f, "P1", 100000, 90000, 0, 10000);
    /* Returned, then the batch confirmed again: still no second payment. */
    fx_do(&f, c_return(&f, "clerk", id, "返戻"));
    fx_reject(&f, c_confirm(&f, "appr", b), FAILED);
    Kyufu__V1__Application *a = fx_app(&f, id);
    CHECK_EQ(a->status, KYUFU__V1__APPLICATION_STATUS__APP_RETURNED);
    kyufu__v1__application__free_unpacked(a, NULL);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    /* Nor can the returned application be batched again. */
    fx_reject(&f, c_create_batch(&f, "clerk", "P1", 20260501, &id, 1), FAILED);
    recompute_balances(&f, "P1");
    fx_close(&f);
}

static void invariant_3_application_in_two_batches(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_approved(&f, "P1", "H-1");
    uint64_t other = fx_approved(&f, "P1", "H-2");
    uint64_t b = fx_batch_of(&f, "P1", &id, 1);
    uint64_t both[2] = {other, id};
    fx_reject(&f, c_create_batch(&f, "clerk2", "P1", 20260501, both, 2),
              FAILED);
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_reject(&f, c_create_batch(&f, "clerk2", "P1", 20260501, &id, 1),
              FAILED);
    /* And inside one entry. */
    Kyufu__V1__Command *cmds[2] = {
        c_create_batch(&f, "clerk", "P1", 20260501, &other, 1),
        c_create_batch(&f, "clerk2", "P1", 20260502, &other, 1)};
    Kyufu__V1__CommandResult *r[2];
    fx_apply_batch(&f, cmds, 2, r);
    CHECK_CODE(r[0], OK);
    CHECK_CODE(r[1], FAILED);
    for (int i = 0; i < 2; i++) {
        fx_free(r[i]);
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
    fx_balances(&f, "P1", 100000, 80000, 10000, 10000);
    recompute_balances(&f, "P1");
    fx_invariants(&f);
    fx_close(&f);
}

/* A client retries a confirm across a failover (new leader, new entry,
 * new time, same key): paid once. */
static void invariant_3_retry_across_failover(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_approved(&f, "P1", "H-1");
    uint64_t b = fx_batch_of(&f, "P1", &id, 1);
    Kyufu__V1__Command *c = c_confirm(&f, "appr", b);
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, OK);
    fx_reopen(&f);
    f.term++;
    c->header->time_ms = f.now_ms;
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c);
    CHECK_CODE(r2, OK);
    CHECK_EQ(r2->raft_index, r1->raft_index);
    CHECK_EQ(r2->audit_seq, r1->audit_seq);
    fx_balances(&f, "P1", 100000, 90000, 0, 10000);
    recompute_balances(&f, "P1");
    fx_free(r1);
    fx_free(r2);
    kyufu__v1__command__free_unpacked(c, NULL);
    fx_close(&f);
}

/* -------------------------------------------------------------- 4 */

static void invariant_4_segregation_of_duties(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__CommandResult *r =
        fx_ok(&f, c_submit(&f, "both", "P1", "H-1", 0));
    uint64_t own = r->application->id;
    fx_free(r);
    fx_reject(&f, c_approve(&f, "both", own), DENIED);
    fx_reject(&f, c_reject(&f, "both", own, "自己"), DENIED);
    fx_do(&f, c_approve(&f, "appr", own));
    Kyufu__V1__Application *a = fx_app(&f, own);
    CHECK(strcmp(a->decided_by, a->submitted_by) != 0);
    kyufu__v1__application__free_unpacked(a, NULL);
    r = fx_ok(&f, c_create_batch(&f, "both", "P1", 20260415, &own, 1));
    uint64_t b = r->batch->id;
    fx_free(r);
    fx_reject(&f, c_confirm(&f, "both", b), DENIED);
    fx_do(&f, c_confirm(&f, "appr", b));
    fx_close(&f);
}

static void invariant_4_no_self_privilege_change(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* An ID administrator cannot make itself an approver (that set is
     * invalid anyway) nor add any role, nor touch its own status. */
    fx_reject(&f, c_set_roles(&f, "admin", "admin", R_ADMIN | R_AUDITOR),
              DENIED);
    fx_reject(&f, c_set_roles(&f, "admin", "admin", R_ADMIN | R_OPERATOR),
              DENIED);
    fx_reject(&f, c_set_status(&f, "admin", "admin",
                               KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE),
              DENIED);
    /* Suspended, it cannot reactivate itself. */
    fx_do(&f, c_set_status(&f, "admin2", "admin",
                           KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED));
    fx_reject(&f, c_set_status(&f, "admin", "admin",
                               KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE),
              DENIED);
    Kyufu__V1__StaffAccount *s = fx_staff(&f, "admin");
    CHECK_EQ(s->roles_mask, R_ADMIN);
    CHECK_EQ(s->status, KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED);
    kyufu__v1__staff_account__free_unpacked(s, NULL);
    /* Nor can a clerk or approver grant themselves anything. */
    fx_reject(&f, c_set_roles(&f, "clerk", "clerk", R_CLERK | R_APPROVER),
              DENIED);
    fx_reject(&f, c_set_roles(&f, "appr", "appr", R_ADMIN), DENIED);
    fx_close(&f);
}

/* -------------------------------------------------------------- 5 */

static void sha256_link(const uint8_t prev[32], const Kyufu__V1__AuditRecord *a,
                        uint8_t out[32])
{
    Kyufu__V1__AuditRecord copy = *a;
    copy.hash.len = 0;
    copy.hash.data = NULL;
    size_t n = kyufu__v1__audit_record__get_packed_size(&copy);
    uint8_t *buf = malloc(n + 1);
    CHECK(buf != NULL);
    kyufu__v1__audit_record__pack(&copy, buf);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned len = 0;
    CHECK(ctx != NULL);
    CHECK(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    CHECK(EVP_DigestUpdate(ctx, prev, 32) == 1);
    CHECK(EVP_DigestUpdate(ctx, buf, n) == 1);
    CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1);
    CHECK_EQ(len, 32);
    EVP_MD_CTX_free(ctx);
    free(buf);
}

static void invariant_5_audit_record_per_command(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f); /* RecordVersions and 14 accepted commands */
    uint64_t expected = 15;
    CHECK_EQ(fx_audit_count(&f), expected);
    /* Accepted, rejected at each step, duplicated, malformed. */
    fx_do(&f, c_submit(&f, "clerk", "P1", "H-1", 0));
    expected++;
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", "H-9");
    c->header->time_ms = 0; /* step 1 */
    fx_reject(&f, c, INVALID);
    expected++;
    fx_reject(&f, c_new(&f, "clerk"), INVALID); /* step 3 */
    expected++;
    fx_reject(&f, c_register_household(&f, "ghost", "H-9"), DENIED); /* 4 */
    expected++;
    fx_reject(&f, c_approve(&f, "clerk", 1), DENIED); /* step 5 */
    expected++;
    fx_reject(&f, c_approve(&f, "appr", 0), INVALID); /* step 6 */
    expected++;
    fx_reject(&f, c_approve(&f, "appr", 99), KYUFU__V1__CODE__NOT_FOUND);
    expected++;
    c = c_approve(&f, "appr", 1);
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    expected++;
    Kyufu__V1__CommandResult *r2 = fx_apply(&f, c); /* duplicate: none */
    CHECK_EQ(r2->audit_seq, r1->audit_seq);
    fx_free(r1);
    fx_free(r2);
    kyufu__v1__command__free_unpacked(c, NULL);
    struct kyufu_storage_results res = {0};
    const uint8_t junk[] = {0x0a, 0x7f, 0x01};
    char err[128];
    f.index++;
    CHECK_EQ(kyufu_storage_apply_bytes(f.s, f.index, f.term, junk, sizeof junk,
                                       &res, err, sizeof err),
             0);
    kyufu_storage_results_free(&res);
    CHECK_EQ(fx_audit_count(&f), expected);

    /* The chain, recomputed here from the docs' definition. */
    uint8_t prev[32] = {0};
    uint64_t last_index = 0;
    for (uint64_t seq = 1; seq <= expected; seq++) {
        Kyufu__V1__AuditRecord *a = fx_audit(&f, seq);
        CHECK_EQ(a->prev_hash.len, 32);
        CHECK(memcmp(a->prev_hash.data, prev, 32) == 0);
        uint8_t h[32];
        sha256_link(prev, a, h);
        CHECK_EQ(a->hash.len, 32);
        CHECK(memcmp(a->hash.data, h, 32) == 0);
        memcpy(prev, h, 32);
        CHECK(a->raft_index >= last_index);
        last_index = a->raft_index;
        CHECK(a->command[0] != '\0');
        kyufu__v1__audit_record__free_unpacked(a, NULL);
    }
    /* Nothing past the last record. */
    char after[32];
    snprintf(after, sizeof after, "%llu", (unsigned long long)expected);
    struct kyufu_storage_page page = {0};
    CHECK_EQ(kyufu_storage_list_audit(f.s, after, 10, &page), 0);
    CHECK_EQ(page.n, 0);
    kyufu_storage_page_free(&page);
    fx_close(&f);
}

/* -------------------------------------------------------------- 6 */

static void invariant_6_reopen_keeps_everything(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_paid(&f, "P1", "H-1");
    fx_approved(&f, "P1", "H-2");
    uint8_t d1[32], d2[32];
    fx_digest(&f, d1);
    struct blob before, after;
    fx_state(&f, &before);
    uint64_t count = fx_audit_count(&f);
    fx_reopen(&f);
    uint64_t index = 0, term = 0;
    kyufu_storage_applied(f.s, &index, &term);
    CHECK_EQ(index, f.index);
    CHECK_EQ(term, f.term);
    fx_digest(&f, d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    fx_state(&f, &after);
    CHECK(blob_eq(&before, &after));
    CHECK_EQ(fx_audit_count(&f), count);
    Kyufu__V1__Application *a = fx_app(&f, id);
    CHECK_EQ(a->status, S_PAID);
    kyufu__v1__application__free_unpacked(a, NULL);
    fx_balances(&f, "P1", 100000, 80000, 10000, 10000);
    /* An entry already applied is refused after the restart too. */
    char err[128];
    CHECK_EQ(kyufu_storage_apply_noop(f.s, f.index, f.term, err, sizeof err),
             KYUFU_STORAGE_ESTALE);
    /* Applying goes on at the next index. */
    fx_do(&f, c_register_household(&f, "clerk", "H-9"));
    blob_free(&before);
    blob_free(&after);
    fx_close(&f);
}

/* The process dies (SIGKILL) right after apply returned: everything apply
 * acknowledged is in the store when it is opened again. */
struct ack
{
    char dir[128];
    uint64_t index, seq;
    int64_t now;
    uint8_t digest[32];
};

static void invariant_6_kill_after_ack(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The child owns the store (LMDB environments do not cross fork). */
        struct fx f;
        close(fds[0]);
        fx_open(&f);
        f.sync = true;
        fx_reopen(&f);
        fx_world(&f);
        fx_paid(&f, "P1", "H-1");
        struct ack ack = {"", f.index, f.seq, f.now_ms, {0}};
        snprintf(ack.dir, sizeof ack.dir, "%s", f.dir);
        fx_digest(&f, ack.digest);
        CHECK(write(fds[1], &ack, sizeof ack) == (ssize_t)sizeof ack);
        raise(SIGKILL);
    }
    close(fds[1]);
    struct ack ack;
    CHECK(read(fds[0], &ack, sizeof ack) == (ssize_t)sizeof ack);
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct fx f;
    memset(&f, 0, sizeof f);
    snprintf(f.dir, sizeof f.dir, "%s", ack.dir);
    f.cmk = fx_env_cmk(); /* the child's store was sealed as fx_open chose */
    f.sync = true;
    f.term = 1;
    fx_reopen(&f); /* opens: f.s is NULL */
    f.index = ack.index;
    f.seq = ack.seq;
    f.now_ms = ack.now;
    snprintf(f.client_id, sizeof f.client_id, "test-client");
    uint64_t index = 0, term = 0;
    kyufu_storage_applied(f.s, &index, &term);
    CHECK_EQ(index, ack.index);
    uint8_t d[32];
    fx_digest(&f, d);
    CHECK(memcmp(d, ack.digest, 32) == 0);
    fx_balances(&f, "P1", 100000, 90000, 0, 10000);
    fx_invariants(&f);
    fx_do(&f, c_register_household(&f, "clerk", "H-9"));
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(invariant_1_approve_beyond_available),
        T_CASE(invariant_1_approvals_in_one_entry),
        T_CASE(invariant_1_budget_cut_below_committed),
        T_CASE(invariant_2_second_live_application),
        T_CASE(invariant_2_two_in_one_entry),
        T_CASE(invariant_3_confirm_twice),
        T_CASE(invariant_3_application_in_two_batches),
        T_CASE(invariant_3_retry_across_failover),
        T_CASE(invariant_4_segregation_of_duties),
        T_CASE(invariant_4_no_self_privilege_change),
        T_CASE(invariant_5_audit_record_per_command),
        T_CASE(invariant_6_reopen_keeps_everything),
        T_CASE(invariant_6_kill_after_ack),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
