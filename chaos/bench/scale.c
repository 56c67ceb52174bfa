/* kyufu-bench-scale: a city-sized ledger in storage/, and what a snapshot of
 * it costs.
 *
 * Builds a store with N households (default 1,000,000), one application each
 * and half of them approved, applying commands in group-commit batches the
 * way raft-glue does.  Then it takes a snapshot exactly as the node does (the
 * read view opened on the apply thread, the stream written on another thread)
 * while the apply thread goes on applying single-command entries, and
 * compares their latency with the same workload measured just before, in the
 * same run.  Finally it restores the snapshot into a second store and checks
 * that both digests agree.
 *
 * Reports wall time, throughput, snapshot size, anonymous and file-backed
 * RSS (LMDB's map is file-backed; anonymous memory is what the process
 * itself allocates), as one JSON object on stdout.  Method and recorded
 * figures: docs/scale.md.
 *
 *   kyufu-bench-scale --dir DIR [--households N] [--batch B] [--sync]
 *                     [--map-mib M]   (initial LMDB map; it grows from there)
 *                     [--no-snapshot] [--cmk] [--rotate]
 *
 * --cmk gives both stores a (fixed, bench-only) cluster master key, so the
 * records are sealed as with encryption at rest (docs/encryption.md), and
 * every entry carries a 16-byte salt (from its index: the bench stands in
 * for the proposer, which draws it at random).
 *
 * --no-snapshot stops after building (register, submit, approve), times two
 * full state digests (the scrub's cost, docs/scrub.md) and prints
 * only the build's figures and those: the side-by-side benchmark's
 * no-replication ceiling (chaos/bench/side_by_side.py, docs/benchmarks.md)
 * runs it with --sync and the batch size the cluster reached at each load.
 * --rotate (with --cmk and --no-snapshot): then an operator's RotateKeys
 * and Reencrypt steps of 100 values each (the default rate's share of one
 * leader tick), one per entry, until every value is re-sealed: the apply
 * cost of re-encryption without Raft (docs/encryption.md "Rotation").
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "bench_cmk.h"
#include "storage.h"

struct bench
{
    bool cmk;
    struct kyufu_storage *s;
    uint64_t index;
    uint64_t seq;
    int64_t now_ms;
    size_t batch;
    char err[256];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Kilobytes of a /proc/self/status field ("RssAnon", "VmHWM", ...). */
static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static void die(const char *what, int rv, const char *detail)
{
    fprintf(stderr, "kyufu-bench-scale: %s: %s (%s)\n", what,
            kyufu_storage_strerror(rv), detail != NULL ? detail : "");
    exit(1);
}

/* One command slot of a batch: the header and every body the bench uses,
 * with the string storage they point into. */
struct slot
{
    Kyufu__V1__Command cmd;
    Kyufu__V1__CommandHeader header;
    Kyufu__V1__IdempotencyKey key;
    Kyufu__V1__RegisterHousehold reg;
    Kyufu__V1__Household hh;
    Kyufu__V1__BankAccount bank;
    Kyufu__V1__SubmitApplication submit;
    Kyufu__V1__ApproveApplication approve;
    Kyufu__V1__AdjustBudget adjust;
    Kyufu__V1__CreateStaff staff;
    Kyufu__V1__PasswordHash pw;
    Kyufu__V1__BootstrapAdmin boot;
    Kyufu__V1__RecordVersions versions;
    Kyufu__V1__NodeVersion voter;
    Kyufu__V1__NodeVersion *voters[1];
    Kyufu__V1__CreateProgram program;
    Kyufu__V1__OpenProgram open;
    Kyufu__V1__RotateKeys rotate;
    Kyufu__V1__Reencrypt reencrypt;
    char actor[32];
    char hno[32];
    char head[64];
    char addr[96];
    char acct[8];
};

static void slot_header(struct bench *b, struct slot *sl, const char *actor)
{
    kyufu__v1__command__init(&sl->cmd);
    kyufu__v1__command_header__init(&sl->header);
    kyufu__v1__idempotency_key__init(&sl->key);
    snprintf(sl->actor, sizeof sl->actor, "%s", actor);
    sl->key.client_id = "bench";
    sl->key.sequence = ++b->seq;
    sl->header.actor = sl->actor;
    sl->header.terminal = "bench";
    sl->header.time_ms = b->now_ms;
    sl->header.key = &sl->key;
    sl->cmd.header = &sl->header;
}

/* Apply n prepared slots as one entry; every command must be accepted. */
static void apply_slots(struct bench *b, struct slot *slots, size_t n)
{
    Kyufu__V1__Command **cmds = calloc(n, sizeof *cmds);
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    struct kyufu_storage_results res = {0};
    size_t i;
    int rv;

    if (cmds == NULL) {
        die("alloc", KYUFU_STORAGE_ENOMEM, NULL);
    }
    for (i = 0; i < n; i++) {
        cmds[i] = &slots[i].cmd;
    }
    batch.n_commands = n;
    batch.commands = cmds;
    uint8_t salt[KYUFU_CRYPTO_SALT_BYTES] = {0};
    if (b->cmk) {
        for (i = 0; i < 8; i++) {
            salt[i] = (uint8_t)((b->index + 1) >> (8 * i));
        }
        batch.salt.data = salt;
        batch.salt.len = sizeof salt;
    }
    rv = kyufu_storage_apply(b->s, ++b->index, 1, &batch, &res, b->err,
                             sizeof b->err);
    if (rv != 0) {
        die("apply", rv, b->err);
    }
    for (i = 0; i < res.n; i++) {
        if (res.items[i].code != KYUFU__V1__CODE__OK) {
            Kyufu__V1__CommandResult *r =
                kyufu_storage_result_unpack(&res.items[i]);
            fprintf(stderr, "kyufu-bench-scale: command rejected: %s\n",
                    r != NULL ? r->message : "(out of memory)");
            exit(1);
        }
    }
    kyufu_storage_results_free(&res);
    free(cmds);
    b->now_ms += 1;
}

/* A temporary password hash as the node would make it (apply checks only
 * its shape: 16-byte salt, 32-byte hash). */
static uint8_t bench_salt[16] = "bench-salt-16byt";
static uint8_t bench_hash[32] = "bench-hash-thirty-two-bytes-long";

static void set_pw(struct slot *sl)
{
    kyufu__v1__password_hash__init(&sl->pw);
    sl->pw.iterations = 1000;
    sl->pw.salt.data = bench_salt;
    sl->pw.salt.len = sizeof bench_salt;
    sl->pw.hash.data = bench_hash;
    sl->pw.hash.len = sizeof bench_hash;
}

/* As a cluster starts (storage.h "identity"): the leader records the
 * voters' command-set versions, then proposes BootstrapAdmin (a node's
 * command, a node's key); the ID administrator provisions the others with
 * temporary passwords. */
static void setup_staff_and_program(struct bench *b, int64_t budget)
{
    static const struct
    {
        const char *id;
        uint32_t roles;
    } staff[] = {
        {"clerk", 1u << KYUFU__V1__ROLE__ROLE_CLERK},
        {"approver", 1u << KYUFU__V1__ROLE__ROLE_APPROVER},
    };
    struct slot sl[2];
    size_t i;

    slot_header(b, &sl[0], "kyufu-node-1");
    kyufu__v1__record_versions__init(&sl[0].versions);
    kyufu__v1__node_version__init(&sl[0].voter);
    sl[0].voter.node_id = 1;
    sl[0].voter.command_version = kyufu_storage_command_version();
    sl[0].voters[0] = &sl[0].voter;
    sl[0].versions.voters = sl[0].voters;
    sl[0].versions.n_voters = 1;
    sl[0].cmd.body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
    sl[0].cmd.record_versions = &sl[0].versions;
    apply_slots(b, sl, 1);

    slot_header(b, &sl[0], "kyufu-node-1");
    sl[0].key.client_id = "kyufud-bench";
    set_pw(&sl[0]);
    kyufu__v1__bootstrap_admin__init(&sl[0].boot);
    sl[0].boot.staff_id = "admin";
    sl[0].boot.display_name = "admin";
    sl[0].boot.password = &sl[0].pw;
    sl[0].cmd.body_case = KYUFU__V1__COMMAND__BODY_BOOTSTRAP_ADMIN;
    sl[0].cmd.bootstrap_admin = &sl[0].boot;
    apply_slots(b, sl, 1);

    for (i = 0; i < sizeof staff / sizeof staff[0]; i++) {
        slot_header(b, &sl[0], "admin");
        set_pw(&sl[0]);
        kyufu__v1__create_staff__init(&sl[0].staff);
        sl[0].staff.staff_id = (char *)staff[i].id;
        sl[0].staff.display_name = (char *)staff[i].id;
        sl[0].staff.roles_mask = staff[i].roles;
        sl[0].staff.temporary_password = &sl[0].pw;
        sl[0].cmd.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
        sl[0].cmd.create_staff = &sl[0].staff;
        apply_slots(b, sl, 1);
    }
    slot_header(b, &sl[0], "approver");
    kyufu__v1__create_program__init(&sl[0].program);
    sl[0].program.code = "P2026";
    sl[0].program.name = "2026 price relief benefit";
    sl[0].program.fiscal_year = 2026;
    sl[0].program.unit_amount = 30000;
    sl[0].program.budget = budget;
    sl[0].program.window_start_ms = 1;
    sl[0].program.window_end_ms = INT64_MAX;
    sl[0].cmd.body_case = KYUFU__V1__COMMAND__BODY_CREATE_PROGRAM;
    sl[0].cmd.create_program = &sl[0].program;
    slot_header(b, &sl[1], "approver");
    kyufu__v1__open_program__init(&sl[1].open);
    sl[1].open.code = "P2026";
    sl[1].cmd.body_case = KYUFU__V1__COMMAND__BODY_OPEN_PROGRAM;
    sl[1].cmd.open_program = &sl[1].open;
    apply_slots(b, sl, 2);
}

static void fill_register(struct bench *b, struct slot *sl, size_t i)
{
    slot_header(b, sl, "clerk");
    kyufu__v1__register_household__init(&sl->reg);
    kyufu__v1__household__init(&sl->hh);
    kyufu__v1__bank_account__init(&sl->bank);
    snprintf(sl->hno, sizeof sl->hno, "H%08zu", i);
    snprintf(sl->head, sizeof sl->head, "Householder %zu", i);
    snprintf(sl->addr, sizeof sl->addr, "%zu-%zu Chuo, Kyufu City",
             i % 97 + 1, i % 31 + 1);
    snprintf(sl->acct, sizeof sl->acct, "%07zu", i % 10000000);
    sl->bank.bank_code = "0001";
    sl->bank.branch_code = "123";
    sl->bank.account_type = "ordinary";
    sl->bank.account_no = sl->acct;
    sl->bank.holder_kana = "KYUFU TARO";
    sl->hh.household_no = sl->hno;
    sl->hh.head_name = sl->head;
    sl->hh.address = sl->addr;
    sl->hh.bank = &sl->bank;
    sl->reg.household = &sl->hh;
    sl->cmd.body_case = KYUFU__V1__COMMAND__BODY_REGISTER_HOUSEHOLD;
    sl->cmd.register_household = &sl->reg;
}

static void fill_submit(struct bench *b, struct slot *sl, size_t i)
{
    slot_header(b, sl, "clerk");
    kyufu__v1__submit_application__init(&sl->submit);
    snprintf(sl->hno, sizeof sl->hno, "H%08zu", i);
    sl->submit.program_code = "P2026";
    sl->submit.household_no = sl->hno;
    sl->submit.channel = KYUFU__V1__CHANNEL__CHANNEL_ONLINE;
    sl->cmd.body_case = KYUFU__V1__COMMAND__BODY_SUBMIT_APPLICATION;
    sl->cmd.submit_application = &sl->submit;
}

static void fill_approve(struct bench *b, struct slot *sl, size_t i)
{
    slot_header(b, sl, "approver");
    kyufu__v1__approve_application__init(&sl->approve);
    sl->approve.id = (uint64_t)i + 1;
    sl->cmd.body_case = KYUFU__V1__COMMAND__BODY_APPROVE_APPLICATION;
    sl->cmd.approve_application = &sl->approve;
}

static void fill_adjust(struct bench *b, struct slot *sl, size_t i)
{
    (void)i;
    slot_header(b, sl, "approver");
    kyufu__v1__adjust_budget__init(&sl->adjust);
    sl->adjust.code = "P2026";
    sl->adjust.delta = 1;
    sl->adjust.reason = "bench";
    sl->cmd.body_case = KYUFU__V1__COMMAND__BODY_ADJUST_BUDGET;
    sl->cmd.adjust_budget = &sl->adjust;
}

typedef void (*fill_fn)(struct bench *, struct slot *, size_t);

/* --rotate: an operator rotates, then Reencrypt steps at the cursor until
 * done; returns seconds taken by the steps, *values and *steps their
 * counts. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rotate_all(struct bench *b, uint64_t *values, size_t *steps,
                         double *cpu)
{
    struct slot sl;
    slot_header(b, &sl, "admin");
    set_pw(&sl);
    kyufu__v1__create_staff__init(&sl.staff);
    sl.staff.staff_id = "oper";
    sl.staff.display_name = "oper";
    sl.staff.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_OPERATOR;
    sl.staff.temporary_password = &sl.pw;
    sl.cmd.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    sl.cmd.create_staff = &sl.staff;
    apply_slots(b, &sl, 1);
    slot_header(b, &sl, "oper");
    kyufu__v1__rotate_keys__init(&sl.rotate);
    sl.cmd.body_case = KYUFU__V1__COMMAND__BODY_ROTATE_KEYS;
    sl.cmd.rotate_keys = &sl.rotate;
    apply_slots(b, &sl, 1);
    double t0 = now_s();
    double c0 = cpu_s();
    *steps = 0;
    for (;;) {
        Kyufu__V1__KeyRotation *r = NULL;
        int rv = kyufu_storage_key_rotation(b->s, &r, NULL);
        if (rv != 0) {
            die("key rotation", rv, NULL);
        }
        if (r->done) {
            *values = r->resealed;
            kyufu__v1__key_rotation__free_unpacked(r, NULL);
            break;
        }
        slot_header(b, &sl, "kyufu-node-1");
        kyufu__v1__reencrypt__init(&sl.reencrypt);
        sl.reencrypt.version = r->version;
        sl.reencrypt.db = r->db;
        sl.reencrypt.from_key = r->next_key;
        sl.reencrypt.count = 100;
        sl.cmd.body_case = KYUFU__V1__COMMAND__BODY_REENCRYPT;
        sl.cmd.reencrypt = &sl.reencrypt;
        apply_slots(b, &sl, 1);
        kyufu__v1__key_rotation__free_unpacked(r, NULL);
        (*steps)++;
    }
    *cpu = cpu_s() - c0;
    return now_s() - t0;
}

/* Apply `count` commands built by fill, `b->batch` per entry; returns
 * seconds taken. */
static double phase(struct bench *b, fill_fn fill, size_t count)
{
    struct slot *slots = calloc(b->batch, sizeof *slots);
    double t0 = now_s();
    size_t done = 0;
    if (slots == NULL) {
        die("alloc", KYUFU_STORAGE_ENOMEM, NULL);
    }
    while (done < count) {
        size_t n = count - done < b->batch ? count - done : b->batch;
        size_t i;
        for (i = 0; i < n; i++) {
            fill(b, &slots[i], done + i);
        }
        apply_slots(b, slots, n);
        done += n;
    }
    free(slots);
    return now_s() - t0;
}

/* ------------------------------------------------ snapshot on a thread */

struct chunks
{
    size_t n, cap, bytes;
    void **base;
    size_t *len;
};

static int emit(void *arg, void *chunk, size_t len)
{
    struct chunks *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        void **base = realloc(c->base, cap * sizeof *base);
        size_t *lens = realloc(c->len, cap * sizeof *lens);
        if (base == NULL || lens == NULL) {
            free(chunk);
            return -1;
        }
        c->base = base;
        c->len = lens;
        c->cap = cap;
    }
    c->base[c->n] = chunk;
    c->len[c->n] = len;
    c->n++;
    c->bytes += len;
    return 0;
}

struct writer
{
    struct kyufu_storage_snapshot *snap;
    struct chunks chunks;
    int rv;
    double seconds;
    double cpu_seconds; /* the writer thread's own user + system time */
    atomic_bool done;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct timespec c0, c1;
    double t0 = now_s();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    w->rv = kyufu_storage_snapshot_write(w->snap, NULL, emit, &w->chunks);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    w->seconds = now_s() - t0;
    w->cpu_seconds = (double)(c1.tv_sec - c0.tv_sec) +
                     (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
    atomic_store(&w->done, true);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct lat
{
    size_t n;
    double p50_ms, p99_ms, max_ms;
};

/* Single-command entries, one at a time, until `stop` is set (or `count`
 * done when stop is NULL), at most `cap` of them. */
static struct lat single_applies(struct bench *b, atomic_bool *stop,
                                 size_t count, size_t cap)
{
    double *ms = calloc(cap, sizeof *ms);
    struct slot sl;
    struct lat l = {0};
    size_t n = 0;
    if (ms == NULL) {
        die("alloc", KYUFU_STORAGE_ENOMEM, NULL);
    }
    while (n < cap && (stop != NULL ? !atomic_load(stop) : n < count)) {
        double t0 = now_s();
        fill_adjust(b, &sl, n);
        apply_slots(b, &sl, 1);
        ms[n++] = (now_s() - t0) * 1e3;
    }
    if (n > 0) {
        qsort(ms, n, sizeof *ms, cmp_double);
        l.n = n;
        l.p50_ms = ms[n / 2];
        l.p99_ms = ms[(n * 99) / 100];
        l.max_ms = ms[n - 1];
    }
    free(ms);
    return l;
}

static void print_lat(const char *name, struct lat l)
{
    printf("  \"%s\": {\"entries\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
           "\"max_ms\": %.3f},\n",
           name, l.n, l.p50_ms, l.p99_ms, l.max_ms);
}

static void hex(const uint8_t *d, char *out)
{
    static const char x[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 32; i++) {
        out[2 * i] = x[d[i] >> 4];
        out[2 * i + 1] = x[d[i] & 15];
    }
    out[64] = '\0';
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"households", required_argument, NULL, 'n'},
        {"batch", required_argument, NULL, 'b'},
        {"sync", no_argument, NULL, 's'},
        {"map-mib", required_argument, NULL, 'm'},
        {"no-snapshot", no_argument, NULL, 'x'},
        {"cmk", no_argument, NULL, 'k'},
        {"stream-out", required_argument, NULL, 'o'},
        {"rotate", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    /* --stream-out FILE: the snapshot stream, written to FILE for the
     * restore timing of docs/restore.md (kyufud --seed reads it). */
    const char *stream_out = NULL;
    size_t households = 1000000;
    bool sync = false;
    bool no_snapshot = false;
    bool rotate = false;
    struct bench b = {.batch = 1000, .now_ms = 1775001600000};
    struct kyufu_storage_options o = {0};
    struct kyufu_storage *copy;
    struct writer w = {0};
    pthread_t th;
    char path[512], path2[512], hexa[65], hexb[65];
    uint8_t da[32], db[32];
    uint64_t ia, ib;
    double t_reg, t_sub, t_app, t_restore, t0;
    long anon_before, anon_peak, anon_after;
    struct lat base, during;
    uint8_t *joined;
    size_t i, off;
    int c, rv;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
            case 'd': dir = optarg; break;
            case 'n': households = strtoul(optarg, NULL, 10); break;
            case 'b': b.batch = strtoul(optarg, NULL, 10); break;
            case 's': sync = true; break;
            case 'x': no_snapshot = true; break;
            case 'k': b.cmk = true; break;
            case 'o': stream_out = optarg; break;
            case 'r': rotate = true; break;
            case 'm': o.map_size_bytes = strtoul(optarg, NULL, 10) << 20; break;
            default:
                fprintf(stderr, "usage: %s --dir DIR [--households N] "
                                "[--batch B] [--sync] [--map-mib M] [--no-snapshot] "
                                "[--cmk] [--stream-out FILE] [--rotate]\n", argv[0]);
                return 2;
        }
    }
    if (dir == NULL || households == 0 || b.batch == 0 || b.batch > 4096 ||
        (rotate && (!b.cmk || !no_snapshot))) {
        fprintf(stderr, "kyufu-bench-scale: --dir is required; households "
                        "> 0; batch 1..4096; --rotate with --cmk --no-snapshot\n");
        return 2;
    }
    snprintf(path, sizeof path, "%s/a", dir);
    snprintf(path2, sizeof path2, "%s/b", dir);
    o.path = path;
    o.no_sync = !sync;
    rv = kyufu_storage_open(&o, &b.s, b.err, sizeof b.err);
    if (rv != 0) {
        die("open", rv, b.err);
    }
    if (b.cmk) {
        kyufu_storage_keys_set(b.s, kyufu_bench_cmk);
    }

    setup_staff_and_program(&b, (int64_t)households * 30000 * 2);
    t_reg = phase(&b, fill_register, households);
    t_sub = phase(&b, fill_submit, households);
    t_app = phase(&b, fill_approve, households / 2);
    if (no_snapshot) {
        size_t cmds = households * 2 + households / 2;
        /* The scrub's cost (docs/scrub.md "Cost"): one full digest of the
         * store as built (its pages in the page cache), timed twice. */
        double t_dig[2];
        double cpu_dig[2];
        for (int k = 0; k < 2; k++) {
            struct timespec c0, c1;
            double ts = now_s();
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
            rv = kyufu_storage_digest(b.s, da, &ia);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
            t_dig[k] = now_s() - ts;
            cpu_dig[k] = (double)(c1.tv_sec - c0.tv_sec) +
                         (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
            if (rv != 0) {
                die("digest", rv, NULL);
            }
        }
        if (rotate) {
            uint64_t values = 0;
            size_t steps = 0;
            double cpu = 0;
            double t_rot = rotate_all(&b, &values, &steps, &cpu);
            printf("{\n  \"households\": %zu, \"reencrypted_values\": %llu, "
                   "\"steps\": %zu,\n  \"reencrypt_s\": %.3f, "
                   "\"reencrypt_cpu_s\": %.3f, \"values_per_cpu_s\": %.1f\n}\n",
                   households, (unsigned long long)values, steps, t_rot, cpu,
                   (double)values / cpu);
            kyufu_storage_close(b.s);
            return 0;
        }
        printf("{\n  \"households\": %zu, \"batch_commands\": %zu, \"sync\": %s,\n"
               "  \"register_s\": %.3f, \"submit_s\": %.3f, \"approve_s\": %.3f,\n"
               "  \"commands\": %zu, \"commands_per_s\": %.1f,\n"
               "  \"digest_s\": [%.3f, %.3f], \"digest_cpu_s\": [%.3f, %.3f]\n}\n",
               households, b.batch, sync ? "true" : "false", t_reg, t_sub, t_app, cmds,
               (double)cmds / (t_reg + t_sub + t_app), t_dig[0], t_dig[1],
               cpu_dig[0], cpu_dig[1]);
        kyufu_storage_close(b.s);
        return 0;
    }

    /* Baseline latency of lone entries, then the same while a snapshot is
     * being written on another thread. */
    base = single_applies(&b, NULL, 2000, 2000);
    anon_before = status_kb("RssAnon");
    rv = kyufu_storage_snapshot_begin(b.s, &w.snap);
    if (rv != 0) {
        die("snapshot_begin", rv, NULL);
    }
    atomic_store(&w.done, false);
    if (pthread_create(&th, NULL, writer_main, &w) != 0) {
        die("pthread_create", KYUFU_STORAGE_ENOMEM, strerror(errno));
    }
    during = single_applies(&b, &w.done, 0, 10000000);
    pthread_join(th, NULL);
    if (w.rv != 0) {
        die("snapshot_write", w.rv, NULL);
    }
    anon_peak = status_kb("RssAnon");
    kyufu_storage_snapshot_applied(w.snap, &ia, &ib);
    kyufu_storage_snapshot_end(w.snap);

    /* Restore from one contiguous buffer, as raft hands it over. */
    joined = malloc(w.chunks.bytes);
    if (joined == NULL) {
        die("alloc", KYUFU_STORAGE_ENOMEM, NULL);
    }
    for (i = 0, off = 0; i < w.chunks.n; i++) {
        memcpy(joined + off, w.chunks.base[i], w.chunks.len[i]);
        off += w.chunks.len[i];
        free(w.chunks.base[i]);
    }
    free(w.chunks.base);
    free(w.chunks.len);
    if (stream_out != NULL) {
        FILE *f = fopen(stream_out, "wb");
        if (f == NULL || fwrite(joined, 1, off, f) != off || fclose(f) != 0) {
            die("stream-out", KYUFU_STORAGE_EIO, stream_out);
        }
    }
    o.path = path2;
    rv = kyufu_storage_open(&o, &copy, b.err, sizeof b.err);
    if (rv != 0) {
        die("open copy", rv, b.err);
    }
    if (b.cmk) {
        kyufu_storage_keys_set(copy, kyufu_bench_cmk);
    }
    t0 = now_s();
    rv = kyufu_storage_restore(copy, joined, off, b.err, sizeof b.err);
    t_restore = now_s() - t0;
    if (rv != 0) {
        die("restore", rv, b.err);
    }
    free(joined);
    anon_after = status_kb("RssAnon");

    /* The copy must equal the source as it was at the snapshot's index:
     * compare against a digest of the copy and re-check invariants. */
    rv = kyufu_storage_digest(copy, db, &ib);
    if (rv != 0 || ib != ia) {
        die("digest copy", rv, "applied index differs from the snapshot's");
    }
    rv = kyufu_storage_check_invariants(copy, b.err, sizeof b.err);
    if (rv != 0) {
        die("invariants of the copy", rv, b.err);
    }
    rv = kyufu_storage_digest(b.s, da, &ia);
    if (rv != 0) {
        die("digest", rv, NULL);
    }
    hex(da, hexa);
    hex(db, hexb);

    printf("{\n  \"households\": %zu,\n  \"batch_commands\": %zu,\n",
           households, b.batch);
    printf("  \"register_s\": %.2f, \"register_per_s\": %.0f,\n", t_reg,
           (double)households / t_reg);
    printf("  \"submit_s\": %.2f, \"approve_s\": %.2f,\n", t_sub, t_app);
    print_lat("lone_entry_before_snapshot", base);
    print_lat("lone_entry_during_snapshot", during);
    printf("  \"snapshot_write_s\": %.2f, \"snapshot_write_cpu_s\": %.2f, "
           "\"snapshot_bytes\": %zu, \"snapshot_chunks\": %zu,\n",
           w.seconds, w.cpu_seconds, w.chunks.bytes, w.chunks.n);
    printf("  \"restore_s\": %.2f,\n", t_restore);
    printf("  \"rss_anon_kb\": {\"before_snapshot\": %ld, "
           "\"after_snapshot_write\": %ld, \"after_restore\": %ld},\n",
           anon_before, anon_peak, anon_after);
    printf("  \"peak_rss_kb\": %ld,\n", status_kb("VmHWM"));
    printf("  \"source_digest_now\": \"%s\",\n  \"copy_digest\": \"%s\"\n}\n",
           hexa, hexb);
    kyufu_storage_close(copy);
    kyufu_storage_close(b.s);
    return 0;
}
