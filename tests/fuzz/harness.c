/* Fuzz harness: see harness.h for the contract and the input format. */
#include "harness.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/cmd.h"

/* Commands in one entry before it is applied on its own. */
#define FZ_ENTRY_COMMANDS_MAX 16u
/* Commands one structured input may build: keeps each run fast. */
#define FZ_INPUT_COMMANDS_MAX 64u
/* Recreate the store past this index: bounds the invariant walk. */
#define FZ_RESET_INDEX 20000u
/* Verify the whole audit chain every so many inputs (it is O(chain)). */
#define FZ_AUDIT_VERIFY_EVERY 1024u

static struct
{
    struct fx f;
    uint64_t max_app;   /* highest application id seen in a result */
    uint64_t max_batch; /* highest batch id seen in a result */
    unsigned inputs;
    bool open;
    uint64_t codes[17]; /* results by Code, for fz_report */
} g;

/* Structured mode state of one input. */
struct run
{
    const uint8_t *p;
    size_t n;
    size_t i;
    Kyufu__V1__Command *pending[FZ_ENTRY_COMMANDS_MAX];
    size_t npending;
    Kyufu__V1__Command *last; /* last command built (owned by pending) */
    size_t built;
    const char *actor; /* override for the next command, or NULL */
};

static const char *const codes[] = {"P1", "P2", "P3", "P 4"};
static const char *const households[] = {"H-1", "H-2", "H-3",
                                         "H-4", "H-5", "H_6"};
static const char *const staff[] = {"admin", "admin2", "clerk", "clerk2",
                                    "appr",  "appr2",  "both",  "aud",
                                    "newbie", "Bad Id"};
static const char *const actors[] = {"admin", "admin2", "clerk", "clerk2",
                                     "appr",  "appr2",  "both",  "aud",
                                     "newbie", "ghost"};

#define PICK(table, byte) ((table)[(byte) % (sizeof(table) / sizeof((table)[0]))])

static _Noreturn void finding(const char *what, const char *detail)
{
    fprintf(stderr, "FUZZ FINDING: %s: %s (input %u, index %" PRIu64 ")\n",
            what, detail, g.inputs, g.f.index);
    fflush(stderr);
    abort();
}

static uint8_t next(struct run *r)
{
    return r->i < r->n ? r->p[r->i++] : 0;
}

static void check_store(bool full)
{
    char err[256] = "";
    int rv = kyufu_storage_check_invariants(g.f.s, err, sizeof err);
    if (rv != 0) {
        finding("check_invariants", err);
    }
    if (full) {
        uint64_t count = 0;
        rv = kyufu_storage_audit_verify(g.f.s, &count, err, sizeof err);
        if (rv != 0) {
            finding("audit_verify", err);
        }
    }
}

/* Apply bytes as one entry; returns the number of results. */
static size_t apply_entry(const uint8_t *buf, size_t len)
{
    struct kyufu_storage_results res = {0};
    char err[256] = "";
    g.f.index++;
    int rv = kyufu_storage_apply_bytes(g.f.s, g.f.index, g.f.term, buf, len,
                                       &res, err, sizeof err);
    if (rv == KYUFU_STORAGE_ENEWER) {
        /* Bytes with a field or command type this build does not know: the
         * node would stop with the entry unapplied (storage.h "versions").
         * Check that nothing was, and go on as if it never came. */
        uint64_t index = 0, term = 0;
        kyufu_storage_applied(g.f.s, &index, &term);
        if (index != g.f.index - 1 || res.n != 0) {
            finding("apply_bytes", "NEWER but the entry was applied");
        }
        g.f.index--;
        return 0;
    }
    if (rv != 0) {
        finding(kyufu_storage_strerror(rv), err);
    }
    size_t n = res.n;
    for (size_t i = 0; i < res.n; i++) {
        Kyufu__V1__CommandResult *r =
            kyufu_storage_result_unpack(&res.items[i]);
        if (r == NULL) {
            finding("result", "NULL item, or bytes that do not unpack");
        }
        if (r->code != res.items[i].code ||
            r->record_case != res.items[i].record) {
            finding("result", "code or record case beside the bytes differ");
        }
        if (r->raft_index > g.f.index || r->raft_index == 0) {
            finding("result", "raft_index is not an applied entry");
        }
        g.codes[(unsigned)r->code < 17u ? (unsigned)r->code : 16u]++;
        /* ABORTED is a settled key's fence and nothing else; an outcome is
         * set only on a fence or on a settle's APPLIED answer. */
        if ((r->code == KYUFU__V1__CODE__ABORTED) !=
            (r->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED ||
             r->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_EXPIRED)) {
            finding("result", "ABORTED without a fence, or a fence without it");
        }
        if (r->code == KYUFU__V1__CODE__OK &&
            r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION &&
            r->application->id > g.max_app) {
            g.max_app = r->application->id;
        }
        if (r->code == KYUFU__V1__CODE__OK &&
            r->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_BATCH &&
            r->batch->id > g.max_batch) {
            g.max_batch = r->batch->id;
        }
        kyufu__v1__command_result__free_unpacked(r, NULL);
    }
    kyufu_storage_results_free(&res);
    return n;
}

static void flush(struct run *r)
{
    if (r->npending == 0) {
        return;
    }
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    batch.n_commands = r->npending;
    batch.commands = r->pending;
    size_t len = kyufu__v1__command_batch__get_packed_size(&batch);
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL) {
        finding("malloc", "batch buffer");
    }
    kyufu__v1__command_batch__pack(&batch, buf);
    size_t n = apply_entry(buf, len);
    if (n != r->npending) {
        finding("apply_bytes", "a well-formed batch lost commands");
    }
    free(buf);
    for (size_t i = 0; i < r->npending; i++) {
        kyufu__v1__command__free_unpacked(r->pending[i], NULL);
        r->pending[i] = NULL;
    }
    r->npending = 0;
    r->last = NULL;
}

static void push(struct run *r, Kyufu__V1__Command *c)
{
    if (r->npending == FZ_ENTRY_COMMANDS_MAX) {
        flush(r);
    }
    r->pending[r->npending++] = c;
    r->last = c;
    r->built++;
    r->actor = NULL;
}

static const char *actor(struct run *r, const char *dflt)
{
    return r->actor != NULL ? r->actor : dflt;
}

static uint64_t ref(uint64_t max, uint8_t byte)
{
    uint64_t back = byte % 6u;
    return back <= max ? max - back : back;
}

static Kyufu__V1__Command *copy_cmd(const Kyufu__V1__Command *c)
{
    size_t len = kyufu__v1__command__get_packed_size(c);
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL) {
        finding("malloc", "copy");
    }
    kyufu__v1__command__pack(c, buf);
    Kyufu__V1__Command *copy = kyufu__v1__command__unpack(NULL, len, buf);
    free(buf);
    if (copy == NULL) {
        finding("protobuf", "a packed command does not unpack");
    }
    return copy;
}

static void drop_body(Kyufu__V1__Command *c)
{
    if (c->body_case != KYUFU__V1__COMMAND__BODY__NOT_SET) {
        protobuf_c_message_free_unpacked(
            (ProtobufCMessage *)c->create_program, NULL);
        c->create_program = NULL;
        c->body_case = KYUFU__V1__COMMAND__BODY__NOT_SET;
    }
}

static void mutate(Kyufu__V1__Command *c, uint8_t kind)
{
    Kyufu__V1__CommandHeader *h = c->header;
    unsigned which = kind % 8u;
    if (h->key == NULL && (which == 2 || which == 3 || which >= 6)) {
        return; /* an earlier mutation (2) dropped the key these change */
    }
    switch (which) {
    case 0:
        h->time_ms = kind & 0x80 ? -1 : 0;
        break;
    case 1:
        c_str(&h->actor, kind & 0x80 ? "" : "Admin");
        break;
    case 2:
        kyufu__v1__idempotency_key__free_unpacked(h->key, NULL);
        h->key = NULL;
        break;
    case 3:
        h->key->sequence = 0;
        break;
    case 4:
        drop_body(c);
        break;
    case 5:
        c_str(&h->terminal, rep('t', 65));
        break;
    case 6:
        c_str(&h->key->client_id, kind & 0x80 ? "\x01" : "other-client");
        break;
    default:
        /* A key already used earlier in this store. */
        h->key->sequence = 1u + kind / 8u;
        break;
    }
}

/* One opcode and the argument bytes it reads (0 past the end). */
static Kyufu__V1__Command *identity_cmd(struct run *r, struct fx *f);

static void op(struct run *r, struct fx *f, uint8_t code)
{
    switch ((enum fz_op)(code % FZ_OP_COUNT)) {
    case FZ_CREATE_PROGRAM: {
        const char *p = PICK(codes, next(r));
        int64_t budget = (int64_t)next(r) * 10000;
        Kyufu__V1__Command *cmd = c_create_program(f, actor(r, "appr"), p,
                                                   budget);
        cmd->create_program->unit_amount = (int64_t)(next(r) % 16) * 1000;
        push(r, cmd);
        break;
    }
    case FZ_OPEN_PROGRAM:
        push(r, c_open_program(f, actor(r, "appr"), PICK(codes, next(r))));
        break;
    case FZ_CLOSE_PROGRAM:
        push(r, c_close_program(f, actor(r, "appr"), PICK(codes, next(r))));
        break;
    case FZ_ADJUST_BUDGET: {
        const char *p = PICK(codes, next(r));
        uint8_t d = next(r);
        int64_t delta = d == 0x80 ? INT64_MIN : (int64_t)(int8_t)d * 1000;
        push(r, c_adjust_budget(f, actor(r, "appr"), p, delta,
                                d == 0 ? "" : "補正"));
        break;
    }
    case FZ_REGISTER:
        push(r, c_register_household(f, actor(r, "clerk"),
                                     PICK(households, next(r))));
        break;
    case FZ_UPDATE:
        push(r, c_update_household(f, actor(r, "clerk"),
                                   PICK(households, next(r)),
                                   next(r) & 3u)); /* 0: refused; stale */
        break;
    case FZ_SUBMIT: {
        const char *p = PICK(codes, next(r));
        const char *h = PICK(households, next(r));
        uint8_t amount = next(r);
        Kyufu__V1__Command *cmd =
            c_submit(f, actor(r, "clerk"), p, h,
                     (int64_t)(amount % 8 == 0 ? 0 : amount) * 100);
        cmd->submit_application->channel =
            (Kyufu__V1__Channel)(1 + amount % 4);
        push(r, cmd);
        break;
    }
    case FZ_APPROVE:
        push(r, c_approve(f, actor(r, "appr"), ref(g.max_app, next(r))));
        break;
    case FZ_REJECT:
        push(r, c_reject(f, actor(r, "appr"), ref(g.max_app, next(r)),
                         "要件"));
        break;
    case FZ_CANCEL: {
        uint8_t x = next(r);
        push(r, c_cancel(f, actor(r, x & 0x80 ? "appr2" : "clerk"),
                         ref(g.max_app, x), "取下げ"));
        break;
    }
    case FZ_CREATE_BATCH: {
        uint8_t x = next(r);
        uint64_t ids[4];
        size_t n = 1u + x % 4u;
        for (size_t i = 0; i < n; i++) {
            ids[i] = ref(g.max_app, next(r));
        }
        push(r, c_create_batch(f, actor(r, "clerk"), PICK(codes, x / 4u),
                               x & 0x80 ? 20260230 : 20260415, ids, n));
        break;
    }
    case FZ_CONFIRM:
        push(r, c_confirm(f, actor(r, "appr2"), ref(g.max_batch, next(r))));
        break;
    case FZ_RETURN:
        push(r, c_return(f, actor(r, "clerk"), ref(g.max_app, next(r)),
                         "返戻"));
        break;
    case FZ_CREATE_STAFF: {
        const char *id = PICK(staff, next(r));
        push(r, c_create_staff(f, actor(r, "admin"), id, next(r) & 0x3fu));
        break;
    }
    case FZ_SET_ROLES: {
        const char *id = PICK(staff, next(r));
        push(r, c_set_roles(f, actor(r, "admin"), id, next(r) & 0x3fu));
        break;
    }
    case FZ_SET_STATUS: {
        const char *id = PICK(staff, next(r));
        push(r, c_set_status(f, actor(r, "admin"), id,
                             (Kyufu__V1__StaffStatus)(next(r) % 5u)));
        break;
    }
    case FZ_ACTOR:
        r->actor = PICK(actors, next(r));
        break;
    case FZ_DUPLICATE:
        if (r->last != NULL) {
            push(r, copy_cmd(r->last));
        }
        break;
    case FZ_MUTATE: {
        uint8_t kind = next(r);
        if (r->last != NULL) {
            mutate(r->last, kind);
        }
        break;
    }
    case FZ_FLUSH:
        flush(r);
        break;
    case FZ_TIME_JUMP:
        f->now_ms += (int64_t)next(r) * 3600 * 1000;
        break;
    case FZ_UNKNOWN:
        push(r, c_new(f, actor(r, "clerk")));
        break;
    case FZ_SETTLE: {
        /* A recent key (applied, pending in this entry, or settled) or one
         * of the next few the following commands will take (fenced). */
        uint8_t b = next(r);
        uint64_t back = (b >> 1) % 4u;
        uint64_t seq = (b & 1u) != 0     ? f->seq + 1 + back
                       : f->seq > back ? f->seq - back
                                         : 1;
        push(r, c_settle(f, actor(r, "clerk"), seq));
        break;
    }
    case FZ_IDENTITY:
        push(r, identity_cmd(r, f));
        break;
    case FZ_OP_COUNT:
        break;
    }
}

/* One identity command (storage.h "identity"): kind, staff, an argument
 * byte (seed, token, step offset, flags).  TOTP steps follow the stamped
 * time (30 s), so replays and fresh steps both come up. */
static Kyufu__V1__Command *identity_cmd(struct run *r, struct fx *f)
{
    uint8_t kind = next(r) % 12u;
    const char *id = PICK(staff, next(r));
    uint8_t x = next(r);
    uint64_t step = (uint64_t)(f->now_ms / 30000) + (x % 3u);
    const char *node = "kyufu-node-1";
    Kyufu__V1__Command *c;
    switch (kind) {
    case 0:
        c = c_set_password(f, actor(r, id), id, x, (x & 1u) != 0);
        break;
    case 1:
        c = c_open(f, id, x % 8u, (x & 0x80u) ? 0 : step);
        break;
    case 2:
        c = c_failed(f, actor(r, id), id, "password");
        break;
    case 3:
        c = c_close(f, actor(r, (x & 1u) ? node : id), x % 8u);
        break;
    case 4:
        c = c_touch(f, actor(r, node), x % 8u, f->now_ms);
        break;
    case 5:
        c = c_enroll(f, id, x);
        break;
    case 6:
        c = c_confirm_totp(f, id, step);
        break;
    case 7:
        c = c_unlock(f, actor(r, "admin"), id);
        break;
    case 8:
        c = c_reset_totp(f, actor(r, "admin"), id);
        break;
    case 9:
        c = c_purge(f, actor(r, node), id);
        break;
    case 10:
        c = c_bootstrap(f, actor(r, node), id);
        break;
    default:
        c = c_access(f, actor(r, "aud"), x % 4u);
        break;
    }
    if (r->actor != NULL) {
        c_str(&c->header->actor, r->actor);
    }
    return c;
}

static void run_structured(const uint8_t *p, size_t n)
{
    struct run r = {.p = p, .n = n};
    while (r.i < r.n && r.built < FZ_INPUT_COMMANDS_MAX) {
        op(&r, &g.f, next(&r));
    }
    flush(&r);
}

static void world(void)
{
    fx_open(&g.f);
    fx_world(&g.f);
    fx_do(&g.f, c_create_program(&g.f, "appr", "P2", 1000000));
    fx_do(&g.f, c_create_program(&g.f, "appr", "P3", 30000));
    fx_do(&g.f, c_open_program(&g.f, "appr", "P3"));
    g.max_app = 0;
    g.max_batch = 0;
    g.open = true;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
                  struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void fz_init(void)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0' || strlen(tmp) > 32) {
        tmp = "/tmp";
    }
    snprintf(t_dir, 64, "%s/kyufu-fuzz-XXXXXX", tmp);
    if (mkdtemp(t_dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    world();
}

void fz_fini(void)
{
    if (g.open) {
        check_store(true);
        fx_close(&g.f);
        g.open = false;
    }
    nftw(t_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void fz_report(FILE *fp)
{
    static const char *const names[17] = {
        [0] = "OK", [3] = "INVALID_ARGUMENT", [5] = "NOT_FOUND",
        [6] = "ALREADY_EXISTS", [7] = "PERMISSION_DENIED",
        [8] = "RESOURCE_EXHAUSTED", [9] = "FAILED_PRECONDITION",
        [10] = "ABORTED",
        [13] = "INTERNAL", [16] = "other"};
    fprintf(fp, "results by code:");
    for (unsigned i = 0; i < 17; i++) {
        if (g.codes[i] != 0) {
            fprintf(fp, " %s=%" PRIu64, names[i] ? names[i] : "?",
                    g.codes[i]);
        }
    }
    fprintf(fp, " (applied index %" PRIu64 ")\n", g.f.index);
}

void fz_one(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return;
    }
    g.inputs++;
    if (g.f.index > FZ_RESET_INDEX) {
        check_store(true);
        fx_close(&g.f);
        nftw(g.f.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        world();
    }
    if ((data[0] & 1u) == 0) {
        apply_entry(data + 1, size - 1);
    } else {
        run_structured(data + 1, size - 1);
    }
    check_store(g.inputs % FZ_AUDIT_VERIFY_EVERY == 0);
}
