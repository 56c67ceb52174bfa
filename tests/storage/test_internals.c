/* Internals of storage/: persistence, schema check, applied index in the
 * same txn, STALE, digest and snapshot round trips, corrupt snapshots, map
 * growth up to MAP_FULL, session pruning, the lock, malformed entries, the SHA-256 helper.
 *
 * The per-command ledger rules are tested in test_commands*.c; this file
 * looks inside (internal.h) where the public API cannot show an effect. */
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

#include "internal.h"
#include "sink.h"

static char root[64];
static int n_dirs;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)
#define CHECK_RV(expr, want)                                                 \
    do {                                                                     \
        int rv_ = (expr);                                                    \
        if (rv_ != (want)) {                                                 \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d\n", __FILE__,      \
                    __LINE__, #expr, rv_, kyufu_storage_strerror(rv_),       \
                    (want));                                                 \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define T0 ((int64_t)1775001600000) /* 2026-04-01T00:00:00Z */

/* ------------------------------------------------------------ fixture */

struct fx
{
    char dir[128];
    struct kyufu_storage *s;
    uint64_t index;
    uint64_t seq;
    int64_t now;
    struct kyufu_storage_options o;
};

static void fx_open_opts(struct fx *f, size_t map, size_t max)
{
    char err[256] = "";
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/s%d", root, n_dirs++);
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

static void fx_open(struct fx *f)
{
    fx_open_opts(f, 0, 0);
}

static void fx_reopen(struct fx *f)
{
    char err[256] = "";
    kyufu_storage_close(f->s);
    f->s = NULL;
    CHECK_RV(kyufu_storage_open(&f->o, &f->s, err, sizeof err), 0);
}

/* A command with a header; body set by the caller.  All fields are
 * borrowed string literals or static storage; free with cmd_free. */
static Kyufu__V1__Command *cmd_new(struct fx *f, const char *actor)
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

static void cmd_free(Kyufu__V1__Command *c)
{
    free(c->header->key);
    free(c->header);
    free(c->create_program); /* any member of the body union */
    free(c);
}

static Kyufu__V1__Command *c_staff(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_household(struct fx *f, const char *actor,
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

static void c_household_free(Kyufu__V1__Command *c)
{
    free(c->register_household->household);
    cmd_free(c);
}

static Kyufu__V1__Command *c_program(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_by_code(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_submit(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_approve(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_batch(struct fx *f, const char *actor,
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

static Kyufu__V1__Command *c_confirm(struct fx *f, const char *actor,
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
static int apply_n(struct fx *f, Kyufu__V1__Command **cmds, size_t n,
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
static uint64_t apply1(struct fx *f, Kyufu__V1__Command *c,
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

#define OK KYUFU__V1__CODE__OK

/* Staff root (admin), clerk, appr, appr2; program P1 open; households H-1..n;
 * application 1 of H-1 approved, batched and paid. */
static void world(struct fx *f, int households)
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

static void digest(struct fx *f, uint8_t d[32])
{
    uint64_t idx;
    CHECK_RV(kyufu_storage_digest(f->s, d, &idx), 0);
    CHECK(idx == f->index);
}

static void invariants(struct fx *f)
{
    char err[256] = "";
    int rv = kyufu_storage_check_invariants(f->s, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "invariants: %s\n", err);
    }
    CHECK(rv == 0);
}

/* Snapshot into one buffer. */
static void snapshot(struct fx *f, struct t_sink *k)
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

/* ------------------------------------------------------------ cases */

static void test_persistence(void)
{
    struct fx f;
    Kyufu__V1__StaffAccount *a = NULL;
    uint64_t idx;
    uint64_t term;
    fx_open(&f);
    kyufu_storage_applied(f.s, &idx, &term);
    CHECK(idx == 0 && term == 0);
    apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
    fx_reopen(&f);
    kyufu_storage_applied(f.s, &idx, &term);
    CHECK(idx == 1 && term == 1);
    CHECK_RV(kyufu_storage_get_staff(f.s, "root", &a), 0);
    CHECK(a->status == KYUFU__V1__STAFF_STATUS__STAFF_ACTIVE);
    kyufu__v1__staff_account__free_unpacked(a, NULL);
    kyufu_storage_close(f.s);
}

static void test_schema_mismatch(void)
{
    struct fx f;
    MDB_txn *txn;
    char err[256] = "";
    fx_open(&f);
    CHECK(mdb_txn_begin(f.s->env, NULL, 0, &txn) == 0);
    CHECK_RV(kyufu_storage__meta_put_u64(f.s, txn, KYUFU_META_SCHEMA, 99), 0);
    CHECK(mdb_txn_commit(txn) == 0);
    kyufu_storage_close(f.s);
    f.s = NULL;
    CHECK_RV(kyufu_storage_open(&f.o, &f.s, err, sizeof err),
             KYUFU_STORAGE_ESCHEMA);
    CHECK(f.s == NULL && strstr(err, "99") != NULL);
}

/* A data.mdb cut short behind LMDB's back (a damaged disk, the chaos fault
 * corrupt-store) is refused as CORRUPT at open, with a message naming
 * it, never read: LMDB's first read past the end was a SIGBUS. */
static void test_truncated_file(void)
{
    static const double keep[] = {0.5, 0.9};
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        struct fx f;
        char err[256] = "";
        char path[192];
        struct stat st;
        fx_open(&f);
        apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
        kyufu_storage_close(f.s);
        f.s = NULL;
        snprintf(path, sizeof path, "%s/data.mdb", f.dir);
        CHECK(stat(path, &st) == 0 && st.st_size > 4 * 4096);
        CHECK(truncate(path, (off_t)((double)st.st_size * keep[k])) == 0);
        CHECK_RV(kyufu_storage_open(&f.o, &f.s, err, sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
        CHECK(f.s == NULL && strstr(err, "data.mdb is truncated") != NULL);
        /* Refused again, and nothing changed the file. */
        CHECK_RV(kyufu_storage_open(&f.o, &f.s, err, sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
        struct stat after;
        CHECK(stat(path, &after) == 0 &&
              after.st_size == (off_t)((double)st.st_size * keep[k]));
    }
}

static void test_locked(void)
{
    struct fx f;
    struct kyufu_storage *other = NULL;
    fx_open(&f);
    CHECK_RV(kyufu_storage_open(&f.o, &other, NULL, 0), KYUFU_STORAGE_ELOCKED);
    kyufu_storage_close(f.s);
    CHECK_RV(kyufu_storage_open(&f.o, &other, NULL, 0), 0);
    kyufu_storage_close(other);
}

/* The applied index and the effects commit together; an old index is STALE
 * and changes nothing. */
static void test_applied_and_stale(void)
{
    struct fx f;
    uint8_t d1[32];
    uint8_t d2[32];
    uint64_t idx;
    uint64_t term;
    char err[128];
    fx_open(&f);
    world(&f, 2);
    CHECK_RV(kyufu_storage_apply_noop(f.s, f.index + 5, 7, err, sizeof err), 0);
    f.index += 5;
    fx_reopen(&f);
    kyufu_storage_applied(f.s, &idx, &term);
    CHECK(idx == f.index && term == 7);
    digest(&f, d1);
    Kyufu__V1__Command *c = c_staff(&f, "root", "late", 1u << 2);
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    b.n_commands = 1;
    b.commands = &c;
    CHECK_RV(kyufu_storage_apply(f.s, f.index, 7, &b, NULL, err, sizeof err),
             KYUFU_STORAGE_ESTALE);
    CHECK_RV(kyufu_storage_apply(f.s, 1, 1, &b, NULL, err, sizeof err),
             KYUFU_STORAGE_ESTALE);
    CHECK_RV(kyufu_storage_apply_noop(f.s, f.index, 7, err, sizeof err),
             KYUFU_STORAGE_ESTALE);
    cmd_free(c);
    digest(&f, d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    invariants(&f);
    kyufu_storage_close(f.s);
}

/* Malformed entry bytes: applied as an empty batch, index advances. */
static void test_malformed_bytes(void)
{
    struct fx f;
    struct kyufu_storage_results r = {0};
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01};
    uint64_t idx;
    fx_open(&f);
    CHECK_RV(kyufu_storage_apply_bytes(f.s, 3, 1, junk, sizeof junk, &r, NULL,
                                       0),
             0);
    CHECK(r.n == 0);
    kyufu_storage_applied(f.s, &idx, NULL);
    CHECK(idx == 3);
    kyufu_storage_close(f.s);
}

/* Snapshot → restore: equal digests and records, many small chunks, each
 * within the limit; the restored store then applies like the source. */
static void test_snapshot_roundtrip(void)
{
    struct fx a;
    struct fx b;
    struct t_sink k;
    uint8_t da[32];
    uint8_t db[32];
    char err[256] = "";
    fx_open(&a);
    world(&a, 12);
    a.s->snapshot_chunk_bytes = 256;
    snapshot(&a, &k);
    CHECK(k.chunks > 4 && k.max_chunk <= 256);

    fx_open(&b);
    apply1(&b, c_staff(&b, "other", "other", 1u << 1), OK); /* replaced */
    int rv = kyufu_storage_restore(b.s, k.buf, k.len, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "restore: %s\n", err);
    }
    CHECK(rv == 0);
    b.index = a.index;
    digest(&a, da);
    digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    invariants(&b);
    Kyufu__V1__StaffAccount *st = NULL;
    CHECK_RV(kyufu_storage_get_staff(b.s, "other", &st),
             KYUFU_STORAGE_ENOTFOUND);
    uint64_t idx;
    kyufu_storage_applied(b.s, &idx, NULL);
    CHECK(idx == a.index);

    /* Same next entry on both: still equal (the restored one reached this
     * state by another history). */
    b.seq = a.seq;
    b.now = a.now;
    apply1(&a, c_submit(&a, "clerk", "P1", "H-3"), OK);
    apply1(&b, c_submit(&b, "clerk", "P1", "H-3"), OK);
    digest(&a, da);
    digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    /* And survives a restart. */
    fx_reopen(&b);
    digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    free(k.buf);
    kyufu_storage_close(a.s);
    kyufu_storage_close(b.s);
}

/* Any flipped byte or truncation is refused and the target is unchanged. */
static void test_corrupt_snapshot(void)
{
    struct fx a;
    struct fx b;
    struct t_sink k;
    uint8_t before[32];
    uint8_t after[32];
    char err[256];
    fx_open(&a);
    world(&a, 3);
    snapshot(&a, &k);
    fx_open(&b);
    apply1(&b, c_staff(&b, "other", "other", 1u << 1), OK);
    digest(&b, before);
    size_t spots[] = {0, 9, 13, 20, 40, k.len / 2, k.len - 40, k.len - 1};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        k.buf[spots[i]] ^= 0x01;
        CHECK_RV(kyufu_storage_restore(b.s, k.buf, k.len, err, sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
        k.buf[spots[i]] ^= 0x01;
    }
    size_t cuts[] = {0, 1, 31, 32, 100, k.len - 33, k.len - 32, k.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_RV(kyufu_storage_restore(b.s, k.buf, cuts[i], err, sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
    }
    digest(&b, after);
    CHECK(memcmp(before, after, 32) == 0);
    uint64_t idx;
    kyufu_storage_applied(b.s, &idx, NULL);
    CHECK(idx == b.index);
    /* The intact stream still restores. */
    CHECK_RV(kyufu_storage_restore(b.s, k.buf, k.len, err, sizeof err), 0);
    free(k.buf);
    kyufu_storage_close(a.s);
    kyufu_storage_close(b.s);
}

/* A stream served in pieces of `piece` bytes, each copied into a buffer
 * the next read overwrites (restore must not keep a pointer into a piece);
 * it fails with its own message at byte fail_at (0: never). */
struct piece_source
{
    const uint8_t *buf;
    size_t len;
    size_t off;
    size_t piece;
    size_t fail_at;
    uint8_t *copy;
    int rewinds;
};

static int piece_read(void *arg, const uint8_t **data, size_t *len,
                      char *errmsg, size_t errmsg_len)
{
    struct piece_source *p = arg;
    if (p->fail_at != 0 && p->off >= p->fail_at) {
        snprintf(errmsg, errmsg_len, "chunk 3 does not decrypt");
        return -1;
    }
    size_t n = p->len - p->off < p->piece ? p->len - p->off : p->piece;
    memset(p->copy, 0xEE, p->piece); /* the previous piece is gone */
    memcpy(p->copy, p->buf + p->off, n);
    p->off += n;
    *data = p->copy;
    *len = n;
    return 0;
}

static int piece_rewind(void *arg, char *errmsg, size_t errmsg_len)
{
    struct piece_source *p = arg;
    (void)errmsg;
    (void)errmsg_len;
    p->off = 0;
    p->rewinds++;
    return 0;
}

static int restore_pieces(struct fx *f, const uint8_t *buf, size_t len,
                          size_t piece, size_t fail_at, bool rewind,
                          int *rewinds, char *err, size_t err_len)
{
    struct piece_source p = {.buf = buf, .len = len, .piece = piece,
                             .fail_at = fail_at, .copy = malloc(piece)};
    CHECK(p.copy != NULL);
    struct kyufu_storage_source src = {
        .read = piece_read, .rewind = rewind ? piece_rewind : NULL, .arg = &p};
    int rv = kyufu_storage_restore_stream(f->s, &src, err, err_len);
    free(p.copy);
    if (rewinds != NULL) {
        *rewinds = p.rewinds;
    }
    return rv;
}

/* The stream read piece by piece (records straddling pieces of any size)
 * restores the state the one-buffer restore does: the same digest and
 * applied index. */
static void test_snapshot_stream(void)
{
    struct fx a;
    struct t_sink k;
    uint8_t da[32];
    uint8_t db[32];
    char err[256] = "";
    fx_open(&a);
    world(&a, 12);
    snapshot(&a, &k);
    digest(&a, da);
    size_t pieces[] = {1, 7, 32, 33, 1000, k.len - 1, k.len, k.len + 5};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        struct fx b;
        fx_open(&b);
        apply1(&b, c_staff(&b, "other", "other", 1u << 1), OK); /* replaced */
        int rv = restore_pieces(&b, k.buf, k.len, pieces[i], 0, true, NULL,
                                err, sizeof err);
        if (rv != 0) {
            fprintf(stderr, "restore in %zu-byte pieces: %s\n", pieces[i],
                    err);
        }
        CHECK(rv == 0);
        b.index = a.index;
        digest(&b, db);
        CHECK(memcmp(da, db, 32) == 0);
        invariants(&b);
        kyufu_storage_close(b.s);
    }
    free(k.buf);
    kyufu_storage_close(a.s);
}

/* Read piece by piece, a flipped byte or a cut stream is refused as a
 * damaged one (its trailer), a source that fails is refused with its own
 * message, and the target is unchanged each time. */
static void test_snapshot_stream_refused(void)
{
    struct fx a;
    struct fx b;
    struct t_sink k;
    uint8_t before[32];
    uint8_t after[32];
    char err[256];
    fx_open(&a);
    world(&a, 3);
    snapshot(&a, &k);
    fx_open(&b);
    apply1(&b, c_staff(&b, "other", "other", 1u << 1), OK);
    digest(&b, before);
    size_t spots[] = {0, 9, 13, 20, 40, 41, k.len / 2, k.len - 42,
                      k.len - 40, k.len - 1};
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        k.buf[spots[i]] ^= 0x01;
        CHECK_RV(restore_pieces(&b, k.buf, k.len, 7, 0, true, NULL, err,
                                sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
        CHECK(strstr(err, "trailer does not match") != NULL);
        k.buf[spots[i]] ^= 0x01;
    }
    size_t cuts[] = {0, 1, 31, 32, 100, k.len - 33, k.len - 32, k.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK_RV(restore_pieces(&b, k.buf, cuts[i], 7, 0, true, NULL, err,
                                sizeof err),
                 KYUFU_STORAGE_ECORRUPT);
        CHECK(strstr(err, "trailer does not match") != NULL ||
              strstr(err, "too short") != NULL);
    }
    /* Extra bytes after an intact stream: its last 32 bytes are not the
     * trailer any more. */
    uint8_t *longer = malloc(k.len + 3);
    CHECK(longer != NULL);
    memcpy(longer, k.buf, k.len);
    memset(longer + k.len, 0, 3);
    CHECK_RV(restore_pieces(&b, longer, k.len + 3, 7, 0, true, NULL, err,
                            sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    free(longer);
    CHECK_RV(restore_pieces(&b, k.buf, k.len, 64, k.len / 2, true, NULL, err,
                            sizeof err),
             KYUFU_STORAGE_EIO);
    CHECK(strcmp(err, "chunk 3 does not decrypt") == 0);
    digest(&b, after);
    CHECK(memcmp(before, after, 32) == 0);
    uint64_t idx;
    kyufu_storage_applied(b.s, &idx, NULL);
    CHECK(idx == b.index);
    /* The intact stream still restores. */
    CHECK_RV(restore_pieces(&b, k.buf, k.len, 7, 0, true, NULL, err,
                            sizeof err),
             0);
    free(k.buf);
    kyufu_storage_close(a.s);
    kyufu_storage_close(b.s);
}

/* A stream larger than the target's map: the restore grows the map and
 * reads the stream again from the start (rewind); a source that cannot
 * rewind gets MAP_FULL and an unchanged store. */
static void test_snapshot_stream_map_full(void)
{
    struct fx a;
    struct fx b;
    struct t_sink k;
    uint8_t da[32];
    uint8_t db[32];
    char err[256] = "";
    int rewinds = 0;
    fx_open(&a);
    world(&a, 300);
    snapshot(&a, &k);
    digest(&a, da);
    CHECK(k.len > 128 * 1024);

    fx_open_opts(&b, 64 * 1024, 64 * 1024 * 1024);
    size_t initial = b.s->map_size_bytes;
    CHECK_RV(restore_pieces(&b, k.buf, k.len, 4096, 0, false, NULL, err,
                            sizeof err),
             KYUFU_STORAGE_EMAP_FULL);
    CHECK(strstr(err, "cannot be read again") != NULL);
    uint64_t idx = 1;
    kyufu_storage_applied(b.s, &idx, NULL);
    CHECK(idx == 0);

    int rv = restore_pieces(&b, k.buf, k.len, 4096, 0, true, &rewinds, err,
                            sizeof err);
    if (rv != 0) {
        fprintf(stderr, "restore: %s\n", err);
    }
    CHECK(rv == 0);
    CHECK(rewinds >= 1 && b.s->map_size_bytes > initial);
    b.index = a.index;
    digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    free(k.buf);
    kyufu_storage_close(a.s);
    kyufu_storage_close(b.s);
}

/* A tiny map grows (doubling) until the ceiling, then apply returns the
 * fatal MAP_FULL with nothing of that entry applied. */
static void test_map_growth(void)
{
    struct fx f;
    char no[16];
    char addr[401];
    int rv = 0;
    uint64_t last_ok = 0;
    memset(addr, 'a', 400);
    addr[400] = '\0';
    fx_open_opts(&f, 64 * 1024, 1024 * 1024);
    size_t initial = f.s->map_size_bytes;
    apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
    apply1(&f, c_staff(&f, "root", "clerk", 1u << 2), OK);
    for (int i = 0; i < 100000 && rv == 0; i++) {
        Kyufu__V1__Command *cmds[8];
        for (int j = 0; j < 8; j++) {
            snprintf(no, sizeof no, "H-%d", i * 8 + j);
            cmds[j] = c_household(&f, "clerk", no, addr);
        }
        rv = apply_n(&f, cmds, 8, NULL);
        for (int j = 0; j < 8; j++) {
            c_household_free(cmds[j]);
        }
        if (rv == 0) {
            last_ok = f.index;
        }
    }
    CHECK_RV(rv, KYUFU_STORAGE_EMAP_FULL);
    CHECK(kyufu_storage_is_fatal(rv));
    CHECK(f.s->grow_count >= 2);
    CHECK(f.s->map_size_bytes > initial);
    CHECK(f.s->map_size_bytes == f.s->map_size_bytes_max);
    uint64_t idx;
    kyufu_storage_applied(f.s, &idx, NULL);
    CHECK(idx == last_ok);
    invariants(&f);
    fx_reopen(&f);
    kyufu_storage_applied(f.s, &idx, NULL);
    CHECK(idx == last_ok);
    invariants(&f);
    kyufu_storage_close(f.s);
}

static size_t entries(struct fx *f, enum kyufu_storage__db db)
{
    MDB_txn *txn;
    MDB_stat st;
    CHECK(mdb_txn_begin(f->s->env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_stat(txn, f->s->dbi[db], &st) == 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Duplicates get the first result and write nothing; after the retention a
 * retry is new; expired sessions go at most 8 per command. */
static void test_sessions(void)
{
    struct fx f;
    struct kyufu_storage_results r1;
    struct kyufu_storage_results r2;
    fx_open(&f);
    apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
    Kyufu__V1__Command *c = c_staff(&f, "root", "clerk", 1u << 2);
    CHECK_RV(apply_n(&f, &c, 1, &r1), 0);
    size_t audit = entries(&f, KYUFU_DB_AUDIT);
    c->header->time_ms += 60000; /* a retry a minute later */
    CHECK_RV(apply_n(&f, &c, 1, &r2), 0);
    Kyufu__V1__CommandResult *u1 = kyufu_storage_result_unpack(&r1.items[0]);
    Kyufu__V1__CommandResult *u2 = kyufu_storage_result_unpack(&r2.items[0]);
    CHECK(u1 != NULL && u2 != NULL);
    CHECK(u2->code == OK);
    CHECK(u2->audit_seq == u1->audit_seq);
    CHECK(u2->raft_index == u1->raft_index);
    CHECK(u2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_STAFF);
    /* The duplicate's answer is the first one, byte for byte. */
    CHECK(r2.items[0].len == r1.items[0].len &&
          memcmp(r2.items[0].bytes, r1.items[0].bytes, r1.items[0].len) == 0);
    CHECK(entries(&f, KYUFU_DB_AUDIT) == audit);
    kyufu__v1__command_result__free_unpacked(u2, NULL);
    kyufu_storage_results_free(&r2);
    /* After the retention the same key is a new command: now a duplicate
     * account, so ALREADY_EXISTS, with its own audit record. */
    c->header->time_ms = T0 + 1000 + KYUFU_SESSION_RETENTION_MS;
    CHECK_RV(apply_n(&f, &c, 1, &r2), 0);
    u2 = kyufu_storage_result_unpack(&r2.items[0]);
    CHECK(u2 != NULL);
    CHECK(u2->code == KYUFU__V1__CODE__ALREADY_EXISTS);
    CHECK(r2.items[0].code == KYUFU__V1__CODE__ALREADY_EXISTS);
    CHECK(u2->audit_seq > u1->audit_seq);
    kyufu__v1__command_result__free_unpacked(u1, NULL);
    kyufu__v1__command_result__free_unpacked(u2, NULL);
    kyufu_storage_results_free(&r1);
    kyufu_storage_results_free(&r2);
    cmd_free(c);

    /* 40 sessions at one time, then commands after their retention. */
    for (int i = 0; i < 40; i++) {
        apply1(&f, c_staff(&f, "root", "root", 1u << 1),
               KYUFU__V1__CODE__ALREADY_EXISTS);
    }
    size_t n = entries(&f, KYUFU_DB_SESSIONS);
    CHECK(n == entries(&f, KYUFU_DB_SESSION_EXPIRY));
    f.now += KYUFU_SESSION_RETENTION_MS + 60000;
    apply1(&f, c_staff(&f, "root", "x1", 1u << 2), OK);
    size_t m = entries(&f, KYUFU_DB_SESSIONS);
    CHECK(m == n + 1 - KYUFU_SESSION_PRUNE_PER_COMMAND_MAX);
    CHECK(m == entries(&f, KYUFU_DB_SESSION_EXPIRY));
    for (int i = 0; i < 10; i++) {
        apply1(&f, c_staff(&f, "root", "root", 1u << 1),
               KYUFU__V1__CODE__ALREADY_EXISTS);
    }
    /* Everything older than the retention is gone; the 11 new remain, and
     * the clerk key re-applied after its retention (a new entry, newer). */
    CHECK(entries(&f, KYUFU_DB_SESSIONS) == 12);
    CHECK(entries(&f, KYUFU_DB_SESSION_EXPIRY) == 12);
    invariants(&f);
    kyufu_storage_close(f.s);
}

/* Pruning raises the client's floor (the highest sequence it pruned); the
 * floor is replicated state: in the digest and in a snapshot. */
static void test_session_floor(void)
{
    struct fx f;
    struct fx g;
    struct t_sink k;
    uint8_t d0[32];
    uint8_t d1[32];
    char err[256] = "";
    fx_open(&f);
    apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
    for (int i = 0; i < 5; i++) {
        apply1(&f, c_staff(&f, "root", "root", 1u << 1),
               KYUFU__V1__CODE__ALREADY_EXISTS);
    }
    uint64_t last = f.seq;
    CHECK(entries(&f, KYUFU_DB_SESSION_FLOOR) == 0);
    f.now += KYUFU_SESSION_RETENTION_MS + 60000;
    apply1(&f, c_staff(&f, "root", "x1", 1u << 2), OK);
    CHECK(entries(&f, KYUFU_DB_SESSIONS) == 1);
    CHECK(entries(&f, KYUFU_DB_SESSION_FLOOR) == 1);

    MDB_txn *txn;
    MDB_val key = {strlen("test-client"), (void *)"test-client"};
    MDB_val val;
    CHECK(mdb_txn_begin(f.s->env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_get(txn, f.s->dbi[KYUFU_DB_SESSION_FLOOR], &key, &val) == 0);
    CHECK(val.mv_size == 8 && kyufu_storage__get_u64(val.mv_data) == last);
    mdb_txn_abort(txn);

    digest(&f, d0);
    snapshot(&f, &k);
    fx_open(&g);
    CHECK_RV(kyufu_storage_restore(g.s, k.buf, k.len, err, sizeof err), 0);
    g.index = f.index;
    CHECK(entries(&g, KYUFU_DB_SESSION_FLOOR) == 1);
    digest(&g, d1);
    CHECK(memcmp(d0, d1, 32) == 0);

    /* A floor that differs is a different state. */
    uint8_t v8[8];
    kyufu_storage__put_u64(v8, last + 1);
    val.mv_size = 8;
    val.mv_data = v8;
    CHECK(mdb_txn_begin(g.s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, g.s->dbi[KYUFU_DB_SESSION_FLOOR], &key, &val, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    digest(&g, d1);
    CHECK(memcmp(d0, d1, 32) != 0);
    free(k.buf);
    kyufu_storage_close(f.s);
    kyufu_storage_close(g.s);
}

/* Filtered lists page through the indexes in id order. */
static void test_list_pages(void)
{
    struct fx f;
    struct kyufu_storage_page p;
    struct kyufu_storage_app_filter flt = {0};
    char no[16];
    fx_open(&f);
    world(&f, 2);
    for (int i = 3; i <= 7; i++) {
        snprintf(no, sizeof no, "H-%d", i);
        apply1(&f, c_household(&f, "clerk", no, "Osaka"), OK);
        apply1(&f, c_submit(&f, "clerk", "P1", no), OK);
    }
    /* apps: 1 PAID, 2..7 RECEIVED */
    flt.program_code = "P1";
    flt.status = KYUFU__V1__APPLICATION_STATUS__APP_RECEIVED;
    CHECK_RV(kyufu_storage_list_applications(f.s, &flt, NULL, 4, &p), 0);
    CHECK(p.n == 4 && strcmp(p.next, "5") == 0);
    CHECK(((Kyufu__V1__Application *)p.items[0])->id == 2);
    kyufu_storage_page_free(&p);
    CHECK_RV(kyufu_storage_list_applications(f.s, &flt, "5", 4, &p), 0);
    CHECK(p.n == 2 && p.next[0] == '\0');
    CHECK(((Kyufu__V1__Application *)p.items[1])->id == 7);
    kyufu_storage_page_free(&p);
    flt.status = KYUFU__V1__APPLICATION_STATUS__APP_PAID;
    CHECK_RV(kyufu_storage_list_applications(f.s, &flt, NULL, 10, &p), 0);
    CHECK(p.n == 1 && ((Kyufu__V1__Application *)p.items[0])->id == 1);
    kyufu_storage_page_free(&p);
    flt.program_code = NULL;
    flt.status = 0;
    flt.household_no = "H-4";
    CHECK_RV(kyufu_storage_list_applications(f.s, &flt, NULL, 10, &p), 0);
    CHECK(p.n == 1 && ((Kyufu__V1__Application *)p.items[0])->id == 4);
    kyufu_storage_page_free(&p);
    CHECK_RV(kyufu_storage_list_households(f.s, "H-3", 2, &p), 0);
    CHECK(p.n == 2 && strcmp(p.next, "H-5") == 0);
    kyufu_storage_page_free(&p);
    CHECK_RV(kyufu_storage_list_audit(f.s, NULL, 1000000, &p), 0);
    CHECK(p.n == f.seq && p.next[0] == '\0');
    kyufu_storage_page_free(&p);
    CHECK_RV(kyufu_storage_list_audit(f.s, "x", 1, &p), KYUFU_STORAGE_EINVALID);
    invariants(&f);
    uint64_t count = 0;
    CHECK_RV(kyufu_storage_audit_verify(f.s, &count, NULL, 0), 0);
    CHECK(count == f.seq);
    kyufu_storage_close(f.s);
}

/* A tampered audit record is found by verify and by the invariant walk. */
static void test_audit_tamper(void)
{
    struct fx f;
    MDB_txn *txn;
    MDB_val k;
    MDB_val v;
    uint8_t key[8];
    char err[256] = "";
    fx_open(&f);
    world(&f, 1);
    CHECK(mdb_txn_begin(f.s->env, NULL, 0, &txn) == 0);
    kyufu_storage__put_u64(key, 3);
    k.mv_size = 8;
    k.mv_data = key;
    CHECK(mdb_get(txn, f.s->dbi[KYUFU_DB_AUDIT], &k, &v) == 0);
    Kyufu__V1__AuditRecord *r =
        kyufu__v1__audit_record__unpack(NULL, v.mv_size, v.mv_data);
    CHECK(r != NULL);
    Kyufu__V1__AuditRecord t = *r;
    t.actor = (char *)"mallory";
    uint8_t *buf;
    size_t len;
    CHECK_RV(kyufu_storage__pack(&t.base, &buf, &len), 0);
    v.mv_size = len;
    v.mv_data = buf;
    CHECK(mdb_put(txn, f.s->dbi[KYUFU_DB_AUDIT], &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    free(buf);
    kyufu__v1__audit_record__free_unpacked(r, NULL);
    CHECK_RV(kyufu_storage_audit_verify(f.s, NULL, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "seq 3") != NULL);
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    kyufu_storage_close(f.s);
}

/* Identity dbs (identity.c): a session or credential of no account, or a
 * session missing from its account index, is found by the whole-state
 * check, and a snapshot carrying one is refused by restore. */
static void put_raw_msg(struct fx *f, enum kyufu_storage__db db,
                        const void *key, size_t klen,
                        const ProtobufCMessage *m)
{
    MDB_txn *txn;
    uint8_t *buf;
    size_t len;
    CHECK_RV(kyufu_storage__pack(m, &buf, &len), 0);
    MDB_val k = {klen, (void *)key};
    MDB_val v = {len, buf};
    CHECK(mdb_txn_begin(f->s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, f->s->dbi[db], &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    free(buf);
}

static void test_identity_tamper(void)
{
    struct fx f, g;
    char err[256] = "";
    uint8_t tok[32], cert[32];
    memset(tok, 0xA1, sizeof tok);
    memset(cert, 0xC3, sizeof cert);
    fx_open(&f);
    world(&f, 1);
    invariants(&f);

    /* A session of an account that does not exist. */
    Kyufu__V1__AuthSession a = KYUFU__V1__AUTH_SESSION__INIT;
    a.token_hash.data = tok;
    a.token_hash.len = 32;
    a.staff_id = (char *)"ghost";
    a.cert_sha256.data = cert;
    a.cert_sha256.len = 32;
    a.terminal = (char *)"t";
    a.created_ms = 1000;
    a.last_used_ms = 1000;
    a.idle_ms = 60000;
    a.absolute_ms = 60000;
    a.id = 1;
    put_raw_msg(&f, KYUFU_DB_AUTH_SESSION, tok, 32, &a.base);
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "no account") != NULL);
    struct t_sink k;
    snapshot(&f, &k);
    fx_open(&g);
    CHECK_RV(kyufu_storage_restore(g.s, k.buf, k.len, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "session") != NULL);
    free(k.buf);
    kyufu_storage_close(g.s);

    /* Of an existing account, but with no credential and no index entry. */
    a.staff_id = (char *)"clerk";
    put_raw_msg(&f, KYUFU_DB_AUTH_SESSION, tok, 32, &a.base);
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    Kyufu__V1__PasswordHash pw = KYUFU__V1__PASSWORD_HASH__INIT;
    pw.iterations = 1000;
    pw.salt.data = cert;
    pw.salt.len = 16;
    pw.hash.data = tok;
    pw.hash.len = 32;
    Kyufu__V1__Credential cr = KYUFU__V1__CREDENTIAL__INIT;
    cr.staff_id = (char *)"clerk";
    cr.password = &pw;
    cr.password_set_ms = 1000;
    put_raw_msg(&f, KYUFU_DB_CREDENTIAL, "clerk", 5, &cr.base);
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "index") != NULL);
    /* With its index entry the state is whole again. */
    uint8_t ik[6 + 32];
    memcpy(ik, "clerk", 6); /* with its 0x00 */
    memcpy(ik + 6, tok, 32);
    MDB_txn *txn;
    MDB_val key = {sizeof ik, ik};
    MDB_val empty = {0, (void *)""};
    CHECK(mdb_txn_begin(f.s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, f.s->dbi[KYUFU_DB_AUTH_BY_STAFF], &key, &empty, 0) ==
          0);
    CHECK(mdb_txn_commit(txn) == 0);
    invariants(&f);
    /* A credential of no account. */
    cr.staff_id = (char *)"ghost";
    put_raw_msg(&f, KYUFU_DB_CREDENTIAL, "ghost", 5, &cr.base);
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "credential ghost") != NULL);
    /* An account's session list reads its index entries only: a dangling
     * entry of the next account ("clerka") is not its, one of its own is
     * corrupt state. */
    struct kyufu_storage_page page = {0};
    uint8_t other[7 + 32];
    memcpy(other, "clerka", 7);
    memset(other + 7, 0x11, 32);
    MDB_val okey = {sizeof other, other};
    CHECK(mdb_txn_begin(f.s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, f.s->dbi[KYUFU_DB_AUTH_BY_STAFF], &okey, &empty, 0) ==
          0);
    CHECK(mdb_txn_commit(txn) == 0);
    CHECK_RV(kyufu_storage_list_staff_sessions(f.s, "clerk", &page), 0);
    CHECK(page.n == 1);
    kyufu_storage_page_free(&page);
    memset(ik + 6, 0x22, 32);
    CHECK(mdb_txn_begin(f.s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_put(txn, f.s->dbi[KYUFU_DB_AUTH_BY_STAFF], &key, &empty, 0) ==
          0);
    CHECK(mdb_txn_commit(txn) == 0);
    CHECK_RV(kyufu_storage_list_staff_sessions(f.s, "clerk", &page),
             KYUFU_STORAGE_ECORRUPT);
    kyufu_storage_close(f.s);
}

/* Pending two-administrator requests (apply_admin_pair.c): a row of every
 * kind with its parameter passes the whole-state check; an unknown kind, a
 * key cut after its 0x00, a status that is none, a parameter where the
 * kind has none, or a value without its administrator is corrupt state. */
static void put_pending(struct fx *f, const char *key, size_t klen,
                        uint32_t param, const char *by)
{
    /* The only row: the table emptied first. */
    uint8_t val[12 + 64];
    size_t blen = strlen(by);
    CHECK(blen <= 64);
    kyufu_storage__put_u32(val, param);
    kyufu_storage__put_u64(val + 4, 1000);
    memcpy(val + 12, by, blen);
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key};
    MDB_val v = {12 + blen, val};
    CHECK(mdb_txn_begin(f->s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_drop(txn, f->s->dbi[KYUFU_DB_ADMIN_GRANT], 0) == 0);
    CHECK(mdb_put(txn, f->s->dbi[KYUFU_DB_ADMIN_GRANT], &k, &v, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
}

static void test_pending_tamper(void)
{
    static const struct {
        const char *key;
        size_t klen;
        uint32_t param;
        const char *by;
        bool ok;
    } rows[] = {
        {"clerk", 5, 1u << 2, "root", true},           /* a grant */
        {"clerk\0R", 7, 1u << 3, "root", true},        /* roles */
        {"clerk\0S", 7, KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED, "root", true},
        {"clerk\0P", 7, 0, "root", true},              /* password */
        {"clerk\0U", 7, 0, "root", true},              /* unlock */
        {"clerk\0T", 7, 0, "root", true},              /* TOTP */
        {"clerk\0Z", 7, 0, "root", false},             /* unknown kind */
        {"clerk\0", 6, 0, "root", false},              /* kind cut off */
        {"clerk\0PP", 8, 0, "root", false},            /* one byte more */
        {"clerk\0S", 7, 99, "root", false},            /* no such status */
        {"clerk\0S", 7, KYUFU__V1__STAFF_STATUS__STAFF_PURGED, "root", false},
        {"clerk\0P", 7, 1, "root", false},             /* P has no param */
        {"clerk", 5, 1u << 31, "root", false},          /* no such role */
        {"clerk\0U", 7, 0, "", false},                 /* no administrator */
        {"\0U", 2, 0, "root", false},                   /* no target */
    };
    struct fx f;
    char err[256] = "";
    fx_open(&f);
    world(&f, 1);
    invariants(&f);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        put_pending(&f, rows[i].key, rows[i].klen, rows[i].param, rows[i].by);
        int rv = kyufu_storage_check_invariants(f.s, err, sizeof err);
        if (rows[i].ok != (rv == 0)) {
            fprintf(stderr, "row %zu: rv %d (%s)\n", i, rv, err);
        }
        CHECK(rows[i].ok ? rv == 0 : rv == KYUFU_STORAGE_ECORRUPT);
        CHECK(rows[i].ok || strstr(err, "admin_grant") != NULL);
    }
    kyufu_storage_close(f.s);
}

/* The digest and audit check of a snapshot see the state at its begin,
 * whatever is applied afterwards (the node runs them on a work thread while
 * the loop applies), and equal the store's own at that point. */
static void test_snapshot_reads(void)
{
    struct fx f;
    struct kyufu_storage_snapshot *snap;
    uint8_t d_then[32];
    uint8_t d_snap[32];
    uint8_t d_now[32];
    uint64_t at = 0;
    uint64_t n_then = 0;
    uint64_t n_snap = 0;
    uint64_t n_now = 0;
    char err[256] = "";
    fx_open(&f);
    world(&f, 3);
    digest(&f, d_then);
    CHECK_RV(kyufu_storage_audit_verify(f.s, &n_then, err, sizeof err), 0);
    CHECK_RV(kyufu_storage_snapshot_begin(f.s, &snap), 0);
    uint64_t then = f.index;
    apply1(&f, c_submit(&f, "clerk", "P1", "H-3"), OK);
    digest(&f, d_now);
    CHECK(memcmp(d_then, d_now, 32) != 0);
    CHECK_RV(kyufu_storage_snapshot_digest(snap, d_snap, &at), 0);
    CHECK(at == then);
    CHECK(memcmp(d_snap, d_then, 32) == 0);
    CHECK_RV(kyufu_storage_snapshot_audit_verify(snap, &n_snap, err,
                                                 sizeof err),
             0);
    CHECK_RV(kyufu_storage_audit_verify(f.s, &n_now, err, sizeof err), 0);
    CHECK(n_snap == n_then && n_now == n_then + 1);
    kyufu_storage_snapshot_end(snap);
    kyufu_storage_close(f.s);
}

/* LMDB's reader table full is load, not damage: snapshot begin returns
 * READERS_FULL, which is not fatal, while the loop thread's reads (queries
 * and apply's post-commit checks) keep their reserved slot and work; a
 * snapshot begins again once one ended.  LMDB rounds the table up to its
 * lock file's page, so it holds at least KYUFU_MAX_READERS slots. */
#define READERS_TRY_MAX 1024u
static void test_readers_full(void)
{
    struct fx f;
    struct kyufu_storage_snapshot **snaps;
    struct kyufu_storage_snapshot *extra = NULL;
    Kyufu__V1__StaffAccount *staff = NULL;
    size_t n = 0;
    int rv = 0;
    snaps = calloc(READERS_TRY_MAX, sizeof *snaps);
    CHECK(snaps != NULL);
    fx_open(&f);
    apply1(&f, c_staff(&f, "root", "root", 1u << 1), OK);
    while (n < READERS_TRY_MAX) {
        rv = kyufu_storage_snapshot_begin(f.s, &snaps[n]);
        if (rv != 0) {
            break;
        }
        n++;
    }
    CHECK_RV(rv, KYUFU_STORAGE_EREADERS_FULL);
    CHECK(!kyufu_storage_is_fatal(rv));
    /* One slot is the loop thread's own. */
    CHECK(n >= KYUFU_MAX_READERS - 1);
    CHECK_RV(kyufu_storage_get_staff(f.s, "root", &staff), 0);
    kyufu__v1__staff_account__free_unpacked(staff, NULL);
    /* Applies (their read-back checks included) go on. */
    apply1(&f, c_staff(&f, "root", "clerk", 1u << 2), OK);
    char err[256] = "";
    CHECK_RV(kyufu_storage_check_invariants(f.s, err, sizeof err), 0);
    CHECK_RV(kyufu_storage_snapshot_begin(f.s, &extra),
             KYUFU_STORAGE_EREADERS_FULL);
    kyufu_storage_snapshot_end(snaps[--n]);
    CHECK_RV(kyufu_storage_snapshot_begin(f.s, &extra), 0);
    kyufu_storage_snapshot_end(extra);
    CHECK_RV(kyufu_storage_get_staff(f.s, "clerk", &staff), 0);
    kyufu__v1__staff_account__free_unpacked(staff, NULL);
    while (n > 0) {
        kyufu_storage_snapshot_end(snaps[--n]);
    }
    free(snaps);
    kyufu_storage_close(f.s);
}

/* Snapshots begin, are read and end on another thread (the node's work
 * threads) while this one applies; the snapshot sees its own point. */
struct snap_thread
{
    struct kyufu_storage *s;
    int rv;
    uint64_t at;
    uint8_t digest[32];
};

static void *snap_thread_main(void *arg)
{
    struct snap_thread *t = arg;
    struct kyufu_storage_snapshot *snap;
    for (int i = 0; i < 200; i++) {
        t->rv = kyufu_storage_snapshot_begin(t->s, &snap);
        if (t->rv != 0) {
            return NULL;
        }
        t->rv = kyufu_storage_snapshot_digest(snap, t->digest, &t->at);
        kyufu_storage_snapshot_end(snap);
        if (t->rv != 0) {
            return NULL;
        }
    }
    return NULL;
}

static void test_snapshot_other_thread(void)
{
    struct fx f;
    struct snap_thread t;
    pthread_t th;
    char no[16];
    fx_open(&f);
    world(&f, 2);
    memset(&t, 0, sizeof t);
    t.s = f.s;
    CHECK(pthread_create(&th, NULL, snap_thread_main, &t) == 0);
    for (int i = 0; i < 200; i++) {
        snprintf(no, sizeof no, "T-%d", i);
        apply1(&f, c_household(&f, "clerk", no, "addr"), OK);
    }
    CHECK(pthread_join(th, NULL) == 0);
    CHECK_RV(t.rv, 0);
    CHECK(t.at > 0 && t.at <= f.index);
    kyufu_storage_close(f.s);
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
    nftw(root, rm, 16, FTW_DEPTH | FTW_PHYS);
}

struct test
{
    const char *name;
    void (*fn)(void);
};

/* kyufu_storage_sync (storage.h "durability"): a no_sync store's durable
 * index moves only with a sync, to the index the caller read before it,
 * never down; syncs on another thread while this one commits succeed;
 * open counts what it found as durable. */
struct sync_thread
{
    struct kyufu_storage *s;
    atomic_int stop;
    atomic_uint n;
    int rv;
};

static void *sync_thread_main(void *arg)
{
    struct sync_thread *t = arg;
    char err[128];
    while (!atomic_load(&t->stop) && t->rv == 0) {
        t->rv = kyufu_storage_sync(t->s, 0, err, sizeof err);
        atomic_fetch_add(&t->n, 1);
    }
    return NULL;
}

static void test_durable(void)
{
    struct fx f;
    struct sync_thread t;
    pthread_t th;
    uint64_t applied;
    char err[128];
    fx_open(&f);
    CHECK(kyufu_storage_durable(f.s) == 0);
    world(&f, 2);
    kyufu_storage_applied(f.s, &applied, NULL);
    CHECK(applied > 0);
    CHECK(kyufu_storage_durable(f.s) == 0); /* committed, not flushed */
    CHECK_RV(kyufu_storage_sync(f.s, applied, err, sizeof err), 0);
    CHECK(kyufu_storage_durable(f.s) == applied);
    CHECK_RV(kyufu_storage_sync(f.s, 1, err, sizeof err), 0);
    CHECK(kyufu_storage_durable(f.s) == applied); /* never down */

    memset(&t, 0, sizeof t);
    t.s = f.s;
    CHECK(pthread_create(&th, NULL, sync_thread_main, &t) == 0);
    for (int i = 0; i < 50; i++) { /* commits while the other flushes */
        char no[16];
        snprintf(no, sizeof no, "S-%d", i);
        apply1(&f, c_household(&f, "clerk", no, "Osaka"), OK);
    }
    /* A loaded machine may not have run the thread yet: let it sync at
     * least once before it is told to stop. */
    while (atomic_load(&t.n) == 0) {
        sched_yield();
    }
    atomic_store(&t.stop, 1);
    CHECK(pthread_join(th, NULL) == 0);
    CHECK(t.rv == 0 && atomic_load(&t.n) > 0);
    CHECK(kyufu_storage_durable(f.s) == applied); /* upto 0 moved nothing */
    invariants(&f);

    fx_reopen(&f);
    kyufu_storage_applied(f.s, &applied, NULL);
    CHECK(kyufu_storage_durable(f.s) == applied); /* open flushed */
    CHECK(!kyufu_storage_syncs_commits(f.s));
    kyufu_storage_close(f.s);
}

/* A store whose commits flush (no no_sync, [storage] flush = commit): the
 * durable index follows the commits by itself, one behind (a commit's
 * flush covers the previous commit's meta page, not its own), so nothing
 * needs to sync it periodically (raft-glue/store_sync.c). */
static void test_durable_syncing(void)
{
    struct fx f;
    uint64_t before, applied;
    fx_open(&f);
    f.o.no_sync = false;
    fx_reopen(&f);
    CHECK(kyufu_storage_syncs_commits(f.s));
    CHECK(kyufu_storage_durable(f.s) == 0);
    world(&f, 2);
    for (int i = 0; i < 3; i++) {
        char no[16];
        kyufu_storage_applied(f.s, &before, NULL);
        snprintf(no, sizeof no, "Y-%d", i);
        apply1(&f, c_household(&f, "clerk", no, "Osaka"), OK);
        kyufu_storage_applied(f.s, &applied, NULL);
        CHECK(applied > before);
        CHECK(kyufu_storage_durable(f.s) == before);
    }
    fx_reopen(&f);
    CHECK(kyufu_storage_durable(f.s) == applied); /* open flushed */
    kyufu_storage_close(f.s);
}

/* kyufu_storage__sha256 (the audit chain's and the command digest's hash):
 * FIPS 180-2's known answers, whatever way the message is cut into parts,
 * an empty part given as NULL. */
static void test_sha256(void)
{
    static const uint8_t abc[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const uint8_t empty[32] = {
        0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
        0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
        0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    uint8_t out[32];
    const uint8_t *whole[1] = {(const uint8_t *)"abc"};
    const size_t whole_len[1] = {3};
    CHECK(kyufu_storage__sha256(whole, whole_len, 1, out) == 0);
    CHECK(memcmp(out, abc, 32) == 0);
    const uint8_t *cut[3] = {(const uint8_t *)"a", NULL, (const uint8_t *)"bc"};
    const size_t cut_len[3] = {1, 0, 2};
    memset(out, 0, sizeof out);
    CHECK(kyufu_storage__sha256(cut, cut_len, 3, out) == 0);
    CHECK(memcmp(out, abc, 32) == 0);
    CHECK(kyufu_storage__sha256(cut, cut_len, 0, out) == 0);
    CHECK(memcmp(out, empty, 32) == 0);
}

int main(int argc, char **argv)
{
    static const struct test tests[] = {
        {"persistence", test_persistence},
        {"schema_mismatch", test_schema_mismatch},
        {"locked", test_locked},
        {"truncated_file", test_truncated_file},
        {"applied_and_stale", test_applied_and_stale},
        {"malformed_bytes", test_malformed_bytes},
        {"snapshot_roundtrip", test_snapshot_roundtrip},
        {"corrupt_snapshot", test_corrupt_snapshot},
        {"snapshot_stream", test_snapshot_stream},
        {"snapshot_stream_refused", test_snapshot_stream_refused},
        {"snapshot_stream_map_full", test_snapshot_stream_map_full},
        {"map_growth", test_map_growth},
        {"sessions", test_sessions},
        {"session_floor", test_session_floor},
        {"list_pages", test_list_pages},
        {"audit_tamper", test_audit_tamper},
        {"identity_tamper", test_identity_tamper},
        {"pending_tamper", test_pending_tamper},
        {"snapshot_reads", test_snapshot_reads},
        {"readers_full", test_readers_full},
        {"snapshot_other_thread", test_snapshot_other_thread},
        {"durable", test_durable},
        {"durable_syncing", test_durable_syncing},
        {"sha256", test_sha256},
    };
    snprintf(root, sizeof root, "/tmp/kyufu-storage-XXXXXX");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    atexit(cleanup); /* also after a failed CHECK (exit(1)) */
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        if (argc > 1 && strstr(tests[i].name, argv[1]) == NULL) {
            continue;
        }
        fprintf(stderr, "--- %s\n", tests[i].name);
        tests[i].fn();
    }
    fprintf(stderr, "all passed\n");
    return 0;
}
