/* Ledger workload for the simulation: see workload.h.
 *
 * The generator keeps a rough local view (households registered, application
 * ids and their last known status, batches) built only from acknowledged
 * results, so most commands are valid, and mixes in invalid ones and
 * retries of earlier keys.  It does not predict outcomes: storage's tests
 * own the ledger rules; this checks replication (acknowledged = applied
 * once everywhere, identical answers to retries, identical replicas). */
#include "workload.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ROLE_BIT(r) (1u << (r))

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->s == 0) {
        r->s = 1;
    }
    for (int i = 0; i < 4; i++) {
        sim_rng_next(r);
    }
}

uint64_t sim_rng_next(struct sim_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

unsigned sim_rng_range(struct sim_rng *r, unsigned lo, unsigned hi)
{
    assert(lo <= hi);
    return lo + (unsigned)(sim_rng_next(r) % ((uint64_t)hi - lo + 1));
}

bool sim_rng_chance(struct sim_rng *r, unsigned percent)
{
    return sim_rng_range(r, 1, 100) <= percent;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        abort();
    }
    return p;
}

void wl_init(struct workload *w, struct sim_rng *rng)
{
    memset(w, 0, sizeof *w);
    w->rng = rng;
    w->setup_cmd = -1;
    for (unsigned i = 0; i < WL_CLIENTS; i++) {
        w->next_seq[i] = 1;
    }
}

void wl_close(struct workload *w)
{
    for (size_t i = 0; i < w->n_cmds; i++) {
        free(w->cmds[i].bytes);
        free(w->cmds[i].result);
        if (w->cmds[i].first != NULL) {
            kyufu__v1__command_result__free_unpacked(w->cmds[i].first, NULL);
        }
    }
    free(w->cmds);
    free(w->households);
    free(w->apps);
    free(w->batches);
    memset(w, 0, sizeof *w);
}

/* ------------------------------------------------------------ building */

static const char *const programs[2] = {"P1", "P2"};

static size_t add_cmd(struct workload *w, Kyufu__V1__Command *c,
                      const char *actor, int64_t now_ms, int setup_step)
{
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__IdempotencyKey k = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    char client[16];
    bool keyless = c->body_case == KYUFU__V1__COMMAND__BODY_BOOTSTRAP_ADMIN;
    unsigned ci = keyless ? 0 : sim_rng_range(w->rng, 0, WL_CLIENTS - 1);
    struct wl_cmd *m;

    if (keyless) {
        /* Proposed by a node (storage.h "identity"): a node's key. */
        snprintf(client, sizeof client, "kyufud-sim");
        k.sequence = ++w->node_seq;
    } else {
        snprintf(client, sizeof client, "c%u", ci);
        k.sequence = w->next_seq[ci]++;
    }
    k.client_id = client;
    h.actor = (char *)actor;
    h.terminal = "sim";
    h.time_ms = now_ms;
    h.key = &k;
    c->header = &h;

    if (w->n_cmds == w->cap_cmds) {
        w->cap_cmds = w->cap_cmds == 0 ? 256 : 2 * w->cap_cmds;
        w->cmds = xrealloc(w->cmds, w->cap_cmds * sizeof *w->cmds);
    }
    m = &w->cmds[w->n_cmds];
    memset(m, 0, sizeof *m);
    m->len = kyufu__v1__command__get_packed_size(c);
    m->bytes = xrealloc(NULL, m->len + 1);
    kyufu__v1__command__pack(c, m->bytes);
    m->kind = (int)c->body_case;
    m->client = ci;
    m->seq = k.sequence;
    m->setup_step = setup_step;
    m->keyless = keyless;
    c->header = NULL;
    return w->n_cmds++;
}

#define SETUP_STEPS 10

/* The temporary password hash of every account the workload creates: the
 * node makes these (PBKDF2); apply only checks their shape. */
static uint8_t pw_salt[16] = "sim-salt-16bytes";
static uint8_t pw_hash[32] = "sim-hash-of-thirty-two-bytes-xx";

static size_t setup_cmd(struct workload *w, int step, int64_t now_ms)
{
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__PasswordHash pw = KYUFU__V1__PASSWORD_HASH__INIT;
    pw.iterations = 1000;
    pw.salt.data = pw_salt;
    pw.salt.len = sizeof pw_salt;
    pw.hash.data = pw_hash;
    pw.hash.len = sizeof pw_hash;
    /* Step 0: the leader records the voters' command-set versions (the
     * identity rules need cluster version 2); step 1: the first ID
     * administrator, as the node proposes it from bootstrap-admin. */
    if (step == 0) {
        Kyufu__V1__NodeVersion v[3];
        Kyufu__V1__NodeVersion *vp[3];
        Kyufu__V1__RecordVersions rv = KYUFU__V1__RECORD_VERSIONS__INIT;
        for (unsigned i = 0; i < 3; i++) {
            kyufu__v1__node_version__init(&v[i]);
            v[i].node_id = i + 1;
            v[i].command_version = kyufu_storage_command_version();
            vp[i] = &v[i];
        }
        rv.voters = vp;
        rv.n_voters = 3;
        c.body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
        c.record_versions = &rv;
        return add_cmd(w, &c, "kyufu-node-1", now_ms, step);
    }
    if (step == 1) {
        Kyufu__V1__BootstrapAdmin ba = KYUFU__V1__BOOTSTRAP_ADMIN__INIT;
        ba.staff_id = "admin";
        ba.display_name = "admin";
        ba.password = &pw;
        c.body_case = KYUFU__V1__COMMAND__BODY_BOOTSTRAP_ADMIN;
        c.bootstrap_admin = &ba;
        return add_cmd(w, &c, "kyufu-node-1", now_ms, step);
    }
    step--; /* the steps below are numbered as before the identity rules */
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    Kyufu__V1__CreateProgram cp = KYUFU__V1__CREATE_PROGRAM__INIT;
    Kyufu__V1__OpenProgram op = KYUFU__V1__OPEN_PROGRAM__INIT;
    static const char *const staff[5] = {"admin", "clerk1", "clerk2",
                                         "appr1", "appr2"};
    static const unsigned roles[5] = {
        ROLE_BIT(KYUFU__V1__ROLE__ROLE_ID_ADMIN),
        ROLE_BIT(KYUFU__V1__ROLE__ROLE_CLERK),
        ROLE_BIT(KYUFU__V1__ROLE__ROLE_CLERK),
        ROLE_BIT(KYUFU__V1__ROLE__ROLE_APPROVER),
        ROLE_BIT(KYUFU__V1__ROLE__ROLE_APPROVER)};

    if (step < 5) {
        cs.staff_id = (char *)staff[step];
        cs.display_name = (char *)staff[step];
        cs.roles_mask = roles[step];
        cs.temporary_password = &pw;
        c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
        c.create_staff = &cs;
        return add_cmd(w, &c, "admin", now_ms, step + 1);
    }
    if (step == 5 || step == 7) {
        int p = step == 5 ? 0 : 1;
        cp.code = (char *)programs[p];
        cp.name = p == 0 ? "Energy relief" : "Small grant";
        cp.fiscal_year = 2026;
        cp.unit_amount = p == 0 ? 10000 : 30000;
        cp.budget = p == 0 ? 1000000000 : 200000; /* P2 runs out */
        cp.window_start_ms = 1;
        cp.window_end_ms = (int64_t)4e12;
        c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_PROGRAM;
        c.create_program = &cp;
        return add_cmd(w, &c, "appr1", now_ms, step + 1);
    }
    op.code = (char *)programs[step == 6 ? 0 : 1];
    c.body_case = KYUFU__V1__COMMAND__BODY_OPEN_PROGRAM;
    c.open_program = &op;
    return add_cmd(w, &c, "appr1", now_ms, step + 1);
}

static struct wl_app *pick_app(struct workload *w, int status)
{
    size_t n = 0;
    if (w->n_apps == 0) {
        return NULL;
    }
    /* A few probes for one in the wanted state, else any. */
    for (int i = 0; i < 8; i++) {
        struct wl_app *a =
            &w->apps[sim_rng_range(w->rng, 0, (unsigned)w->n_apps - 1)];
        if (status == 0 || a->status == status) {
            return a;
        }
        n++;
    }
    return &w->apps[sim_rng_range(w->rng, 0, (unsigned)w->n_apps - 1)];
}

static size_t new_cmd(struct workload *w, int64_t now_ms)
{
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__RegisterHousehold rh = KYUFU__V1__REGISTER_HOUSEHOLD__INIT;
    Kyufu__V1__Household hh = KYUFU__V1__HOUSEHOLD__INIT;
    Kyufu__V1__BankAccount bank = KYUFU__V1__BANK_ACCOUNT__INIT;
    Kyufu__V1__SubmitApplication sa = KYUFU__V1__SUBMIT_APPLICATION__INIT;
    Kyufu__V1__ApproveApplication aa = KYUFU__V1__APPROVE_APPLICATION__INIT;
    Kyufu__V1__RejectApplication ra = KYUFU__V1__REJECT_APPLICATION__INIT;
    Kyufu__V1__CancelApplication ca = KYUFU__V1__CANCEL_APPLICATION__INIT;
    Kyufu__V1__CreatePaymentBatch cb = KYUFU__V1__CREATE_PAYMENT_BATCH__INIT;
    Kyufu__V1__ConfirmPaymentBatch cf = KYUFU__V1__CONFIRM_PAYMENT_BATCH__INIT;
    Kyufu__V1__ReturnPayment rp = KYUFU__V1__RETURN_PAYMENT__INIT;
    Kyufu__V1__AdjustBudget ab = KYUFU__V1__ADJUST_BUDGET__INIT;
    char hno[16];
    char *members[2] = {"Hanako", "Taro"};
    uint64_t ids[3];
    const char *clerk = sim_rng_chance(w->rng, 50) ? "clerk1" : "clerk2";
    const char *appr = sim_rng_chance(w->rng, 50) ? "appr1" : "appr2";
    unsigned roll = sim_rng_range(w->rng, 1, 100);
    struct wl_app *a;

    if (roll <= 25 || w->n_households == 0) {
        snprintf(hno, sizeof hno, "H-%u", w->next_household++);
        bank.bank_code = "0001";
        bank.branch_code = "001";
        bank.account_type = "ordinary";
        bank.account_no = "1234567";
        bank.holder_kana = "YAMADA";
        hh.household_no = hno;
        hh.head_name = "Yamada";
        hh.n_member_names = 2;
        hh.member_names = members;
        hh.address = "1-1 Chiyoda";
        hh.bank = &bank;
        rh.household = &hh;
        c.body_case = KYUFU__V1__COMMAND__BODY_REGISTER_HOUSEHOLD;
        c.register_household = &rh;
        return add_cmd(w, &c, clerk, now_ms, -1);
    }
    if (roll <= 50) {
        sa.program_code = (char *)programs[sim_rng_chance(w->rng, 70) ? 0 : 1];
        sa.household_no = w->households[sim_rng_range(
            w->rng, 0, (unsigned)w->n_households - 1)];
        sa.channel = KYUFU__V1__CHANNEL__CHANNEL_COUNTER;
        sa.amount = 0;
        c.body_case = KYUFU__V1__COMMAND__BODY_SUBMIT_APPLICATION;
        c.submit_application = &sa;
        return add_cmd(w, &c, clerk, now_ms, -1);
    }
    if (roll <= 64 && (a = pick_app(w, KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED)) != NULL) {
        aa.id = a->id;
        c.body_case = KYUFU__V1__COMMAND__BODY_APPROVE_APPLICATION;
        c.approve_application = &aa;
        return add_cmd(w, &c, appr, now_ms, -1);
    }
    if (roll <= 68 && (a = pick_app(w, KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED)) != NULL) {
        ra.id = a->id;
        ra.reason = "incomplete";
        c.body_case = KYUFU__V1__COMMAND__BODY_REJECT_APPLICATION;
        c.reject_application = &ra;
        return add_cmd(w, &c, appr, now_ms, -1);
    }
    if (roll <= 72 && (a = pick_app(w, 0)) != NULL) {
        ca.id = a->id;
        ca.reason = "withdrawn";
        c.body_case = KYUFU__V1__COMMAND__BODY_CANCEL_APPLICATION;
        c.cancel_application = &ca;
        return add_cmd(w, &c, clerk, now_ms, -1);
    }
    if (roll <= 80 && w->n_apps > 0) {
        size_t n = 0;
        for (int i = 0; i < 12 && n < 3; i++) {
            a = pick_app(w, KYUFU__V1__APPLICATION_STATUS__APP_APPROVED);
            if (a->program == 0 &&
                a->status == KYUFU__V1__APPLICATION_STATUS__APP_APPROVED) {
                bool dup = false;
                for (size_t j = 0; j < n; j++) {
                    dup = dup || ids[j] == a->id;
                }
                if (!dup) {
                    ids[n++] = a->id;
                }
            }
        }
        if (n > 0) {
            cb.program_code = "P1";
            cb.transfer_date = 20260401;
            cb.n_application_ids = n;
            cb.application_ids = ids;
            c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_PAYMENT_BATCH;
            c.create_payment_batch = &cb;
            return add_cmd(w, &c, clerk, now_ms, -1);
        }
    }
    if (roll <= 86 && w->n_batches > 0) {
        cf.id = w->batches[sim_rng_range(w->rng, 0,
                                         (unsigned)w->n_batches - 1)];
        c.body_case = KYUFU__V1__COMMAND__BODY_CONFIRM_PAYMENT_BATCH;
        c.confirm_payment_batch = &cf;
        return add_cmd(w, &c, appr, now_ms, -1);
    }
    if (roll <= 89 && (a = pick_app(w, KYUFU__V1__APPLICATION_STATUS__APP_PAID)) != NULL) {
        rp.application_id = a->id;
        rp.reason = "account closed";
        c.body_case = KYUFU__V1__COMMAND__BODY_RETURN_PAYMENT;
        c.return_payment = &rp;
        return add_cmd(w, &c, clerk, now_ms, -1);
    }
    if (roll <= 92) {
        ab.code = (char *)programs[sim_rng_range(w->rng, 0, 1)];
        ab.delta = sim_rng_chance(w->rng, 60) ? 50000 : -40000;
        ab.reason = "council decision";
        c.body_case = KYUFU__V1__COMMAND__BODY_ADJUST_BUDGET;
        c.adjust_budget = &ab;
        return add_cmd(w, &c, appr, now_ms, -1);
    }
    /* Invalid on purpose: wrong role, unknown id, out-of-range amount. */
    switch (sim_rng_range(w->rng, 0, 2)) {
        case 0:
            aa.id = w->n_apps > 0 ? w->apps[0].id : 1;
            c.body_case = KYUFU__V1__COMMAND__BODY_APPROVE_APPLICATION;
            c.approve_application = &aa;
            return add_cmd(w, &c, clerk, now_ms, -1); /* not an approver */
        case 1:
            aa.id = 999999999;
            c.body_case = KYUFU__V1__COMMAND__BODY_APPROVE_APPLICATION;
            c.approve_application = &aa;
            return add_cmd(w, &c, appr, now_ms, -1);
        default:
            sa.program_code = "P1";
            sa.household_no = w->households[0];
            sa.channel = KYUFU__V1__CHANNEL__CHANNEL_MAIL;
            sa.amount = (int64_t)1e15;
            c.body_case = KYUFU__V1__COMMAND__BODY_SUBMIT_APPLICATION;
            c.submit_application = &sa;
            return add_cmd(w, &c, clerk, now_ms, -1);
    }
}

bool wl_setup_finished(const struct workload *w)
{
    return w->setup_done >= SETUP_STEPS;
}

size_t wl_next(struct workload *w, int64_t now_ms)
{
    if (w->setup_done < SETUP_STEPS) {
        if (w->setup_cmd < 0) {
            w->setup_cmd = (int)setup_cmd(w, w->setup_done, now_ms);
        } else if (w->cmds[w->setup_cmd].n_inflight > 0) {
            return SIZE_MAX; /* wait for its answer */
        } else {
            w->n_retries++;
        }
        return (size_t)w->setup_cmd;
    }
    if (w->n_cmds > 0 && sim_rng_chance(w->rng, 10)) {
        w->n_retries++;
        return sim_rng_range(w->rng, 0, (unsigned)w->n_cmds - 1);
    }
    return new_cmd(w, now_ms);
}

/* ------------------------------------------------------------ results */

static void learn(struct workload *w, const struct wl_cmd *m,
                  const Kyufu__V1__CommandResult *r)
{
    if (r->code != KYUFU__V1__CODE__OK) {
        return;
    }
    switch (m->kind) {
        case KYUFU__V1__COMMAND__BODY_REGISTER_HOUSEHOLD:
            if (r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD) {
                w->households = xrealloc(w->households,
                                         (w->n_households + 1) *
                                             sizeof *w->households);
                snprintf(w->households[w->n_households++], 16, "%s",
                         r->household->household_no);
            }
            break;
        case KYUFU__V1__COMMAND__BODY_CREATE_PAYMENT_BATCH:
            if (r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_BATCH) {
                w->batches = xrealloc(w->batches, (w->n_batches + 1) *
                                                      sizeof *w->batches);
                w->batches[w->n_batches++] = r->batch->id;
                for (size_t i = 0; i < r->batch->n_application_ids; i++) {
                    for (size_t j = 0; j < w->n_apps; j++) {
                        if (w->apps[j].id == r->batch->application_ids[i]) {
                            /* In a batch: no longer a candidate. */
                            w->apps[j].status = 0x100;
                        }
                    }
                }
            }
            break;
        case KYUFU__V1__COMMAND__BODY_CONFIRM_PAYMENT_BATCH:
            if (r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_BATCH) {
                for (size_t i = 0; i < r->batch->n_application_ids; i++) {
                    for (size_t j = 0; j < w->n_apps; j++) {
                        if (w->apps[j].id == r->batch->application_ids[i]) {
                            w->apps[j].status =
                                KYUFU__V1__APPLICATION_STATUS__APP_PAID;
                        }
                    }
                }
            }
            break;
        default:
            if (r->record_case ==
                KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION) {
                const Kyufu__V1__Application *app = r->application;
                size_t j;
                for (j = 0; j < w->n_apps; j++) {
                    if (w->apps[j].id == app->id) {
                        break;
                    }
                }
                if (j == w->n_apps) {
                    w->apps = xrealloc(w->apps,
                                       (w->n_apps + 1) * sizeof *w->apps);
                    w->apps[j].id = app->id;
                    w->apps[j].program =
                        strcmp(app->program_code, "P1") == 0 ? 0 : 1;
                    w->n_apps++;
                }
                w->apps[j].status = (int)app->status;
            }
            break;
    }
}

static void failf(struct workload *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void failf(struct workload *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sim: FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    w->n_failures++;
}

void wl_on_result(struct workload *w, size_t i, int status,
                  Kyufu__V1__CommandResult *result)
{
    struct wl_cmd *m = &w->cmds[i];
    assert(m->n_inflight > 0);
    m->n_inflight--;
    if (status != 0) {
        assert(result == NULL);
        w->n_errors++;
        return;
    }
    w->n_acked++;
    m->n_acks++;
    if (m->first == NULL) {
        m->result_len = kyufu__v1__command_result__get_packed_size(result);
        m->result = xrealloc(NULL, m->result_len + 1);
        kyufu__v1__command_result__pack(result, m->result);
        m->first = result;
        if (result->code != KYUFU__V1__CODE__OK) {
            w->n_rejected++;
        }
        learn(w, m, result);
        if (m->setup_step >= 0 && m->setup_step == w->setup_done &&
            (int)i == w->setup_cmd) {
            /* Advance only on OK; a rejection (applied out of order after
             * a failover) gets a fresh command with a new key.  A
             * BootstrapAdmin refused because accounts exist means an
             * earlier one (its answer lost) was applied. */
            if (result->code == KYUFU__V1__CODE__OK ||
                (m->keyless &&
                 result->code == KYUFU__V1__CODE__FAILED_PRECONDITION)) {
                w->setup_done++;
            }
            w->setup_cmd = -1;
        }
        return;
    }
    /* A retry: the same key must give the very same answer (a keyless
     * command is applied again: nothing to compare). */
    if (!m->keyless) {
        size_t len = kyufu__v1__command_result__get_packed_size(result);
        uint8_t *buf = xrealloc(NULL, len + 1);
        kyufu__v1__command_result__pack(result, buf);
        if (len != m->result_len || memcmp(buf, m->result, len) != 0) {
            failf(w, "retry of key c%u/%" PRIu64
                     " answered differently (code %d vs first %d)",
                  m->client, m->seq, result->code, m->first->code);
        }
        free(buf);
    }
    kyufu__v1__command_result__free_unpacked(result, NULL);
}

/* ------------------------------------------------------------- checks */

struct audit_seen
{
    unsigned count;
    uint64_t raft_index;
    uint64_t audit_seq;
    int outcome;
};

unsigned wl_check_replica(struct workload *w, struct kyufu_storage *s,
                          unsigned server)
{
    unsigned before = w->n_failures;
    struct audit_seen *seen[WL_CLIENTS];
    char after[sizeof ((struct kyufu_storage_page *)0)->next] = "";
    int rv;

    for (unsigned c = 0; c < WL_CLIENTS; c++) {
        seen[c] = calloc(w->next_seq[c] + 1, sizeof **seen);
        if (seen[c] == NULL) {
            abort();
        }
    }
    /* Every audit record, counted by idempotency key. */
    for (;;) {
        struct kyufu_storage_page page;
        memset(&page, 0, sizeof page);
        rv = kyufu_storage_list_audit(s, after, 1000, &page);
        if (rv != 0) {
            failf(w, "server %u: list_audit: %s", server,
                  kyufu_storage_strerror(rv));
            break;
        }
        for (size_t i = 0; i < page.n; i++) {
            const Kyufu__V1__AuditRecord *a = page.items[i];
            unsigned c;
            if (strcmp(a->client_id, "kyufud-sim") == 0) {
                continue; /* keyless: not counted per key */
            }
            if (sscanf(a->client_id, "c%u", &c) != 1 || c >= WL_CLIENTS ||
                a->client_seq == 0 || a->client_seq >= w->next_seq[c]) {
                failf(w, "server %u: audit seq %" PRIu64
                         " has a key the workload never made (%s/%" PRIu64 ")",
                      server, a->seq, a->client_id, a->client_seq);
                continue;
            }
            struct audit_seen *e = &seen[c][a->client_seq];
            e->count++;
            e->raft_index = a->raft_index;
            e->audit_seq = a->seq;
            e->outcome = (int)a->outcome;
        }
        snprintf(after, sizeof after, "%s", page.next);
        kyufu_storage_page_free(&page);
        if (after[0] == '\0') {
            break;
        }
    }

    for (size_t i = 0; i < w->n_cmds; i++) {
        struct wl_cmd *m = &w->cmds[i];
        if (m->keyless) {
            continue;
        }
        struct audit_seen *e = &seen[m->client][m->seq];
        if (e->count > 1) {
            failf(w, "server %u: key c%u/%" PRIu64 " applied %u times",
                  server, m->client, m->seq, e->count);
        }
        if (m->first == NULL) {
            continue; /* never acknowledged: may or may not be applied */
        }
        if (e->count != 1) {
            failf(w, "server %u: acknowledged key c%u/%" PRIu64
                     " (index %" PRIu64 ") is not in the audit trail",
                  server, m->client, m->seq, m->first->raft_index);
            continue;
        }
        if (e->raft_index != m->first->raft_index ||
            e->audit_seq != m->first->audit_seq ||
            e->outcome != (int)m->first->code) {
            failf(w, "server %u: key c%u/%" PRIu64
                     " audit (index %" PRIu64 ", seq %" PRIu64
                     ", outcome %d) differs from its acknowledgement "
                     "(index %" PRIu64 ", seq %" PRIu64 ", code %d)",
                  server, m->client, m->seq, e->raft_index, e->audit_seq,
                  e->outcome, m->first->raft_index, m->first->audit_seq,
                  m->first->code);
        }
        if (m->first->code != KYUFU__V1__CODE__OK) {
            continue;
        }
        /* The acknowledged record exists. */
        if (m->first->record_case ==
            KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION) {
            Kyufu__V1__Application *app = NULL;
            rv = kyufu_storage_get_application(s, m->first->application->id,
                                               &app);
            if (rv != 0 || strcmp(app->household_no,
                                  m->first->application->household_no) != 0) {
                failf(w, "server %u: acknowledged application %" PRIu64
                         " missing or different",
                      server, m->first->application->id);
            }
            if (app != NULL) {
                kyufu__v1__application__free_unpacked(app, NULL);
            }
        } else if (m->first->record_case ==
                   KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD) {
            Kyufu__V1__Household *h = NULL;
            rv = kyufu_storage_get_household(
                s, m->first->household->household_no, &h);
            if (rv != 0) {
                failf(w, "server %u: acknowledged household %s missing",
                      server, m->first->household->household_no);
            } else {
                kyufu__v1__household__free_unpacked(h, NULL);
            }
        } else if (m->first->record_case ==
                   KYUFU__V1__COMMAND_RESULT__RECORD_BATCH) {
            Kyufu__V1__PaymentBatch *b = NULL;
            rv = kyufu_storage_get_batch(s, m->first->batch->id, &b);
            if (rv != 0) {
                failf(w, "server %u: acknowledged batch %" PRIu64 " missing",
                      server, m->first->batch->id);
            } else {
                kyufu__v1__payment_batch__free_unpacked(b, NULL);
            }
        }
    }
    for (unsigned c = 0; c < WL_CLIENTS; c++) {
        free(seen[c]);
    }
    return w->n_failures - before;
}
