/* Writes the seed corpus of the fuzz target into a directory:
 *   fuzz_gen_corpus tests/fuzz/corpus
 * Structured seeds (first byte odd) walk the ledger's main paths with the
 * opcodes of harness.h; raw seeds (first byte even) are well-formed
 * CommandBatch encodings, plus a few broken ones.  Deterministic: the same
 * files every run, so regenerating shows up in git only when this changes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../storage/cmd.h"
#include "harness.h"

static const char *out_dir;
static int nseeds;

static void write_seed(const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%02d-%s", out_dir, nseeds++, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || fwrite(p, 1, n, fp) != n || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

#define STRUCTURED(name, ...)                                                \
    do {                                                                     \
        const uint8_t prog_[] = {1, __VA_ARGS__};                            \
        write_seed(name, prog_, sizeof prog_);                               \
    } while (0)

/* A raw seed: 0x00 then the batch encoding of cmds (freed here). */
static void raw(const char *name, Kyufu__V1__Command **cmds, size_t n)
{
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    batch.n_commands = n;
    batch.commands = cmds;
    size_t len = kyufu__v1__command_batch__get_packed_size(&batch);
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL) {
        exit(1);
    }
    buf[0] = 0;
    kyufu__v1__command_batch__pack(&batch, buf + 1);
    write_seed(name, buf, len + 1);
    free(buf);
    for (size_t i = 0; i < n; i++) {
        kyufu__v1__command__free_unpacked(cmds[i], NULL);
    }
}

static void structured_seeds(void)
{
    /* Arguments are table indexes (harness.c): codes P1 P2 P3 "P 4";
     * households H-1..H-5 "H_6"; refs count back from the last id. */
    STRUCTURED("lifecycle", FZ_REGISTER, 4, FZ_SUBMIT, 0, 4, 0, FZ_FLUSH,
               FZ_APPROVE, 0, FZ_FLUSH, FZ_CREATE_BATCH, 0, 0, FZ_FLUSH,
               FZ_CONFIRM, 0, FZ_FLUSH, FZ_RETURN, 0);
    STRUCTURED("lifecycle-one-entry", FZ_SUBMIT, 0, 0, 0, FZ_APPROVE, 0,
               FZ_SUBMIT, 0, 1, 16, FZ_APPROVE, 0, FZ_CREATE_BATCH, 1, 0, 1,
               FZ_CONFIRM, 0);
    STRUCTURED("exhaust-p3", FZ_SUBMIT, 2, 0, 0, FZ_SUBMIT, 2, 1, 0,
               FZ_SUBMIT, 2, 2, 0, FZ_SUBMIT, 2, 3, 0, FZ_FLUSH, FZ_APPROVE,
               3, FZ_APPROVE, 2, FZ_APPROVE, 1, FZ_APPROVE, 0);
    STRUCTURED("second-live", FZ_SUBMIT, 0, 1, 0, FZ_SUBMIT, 0, 1, 0,
               FZ_FLUSH, FZ_REJECT, 0, FZ_SUBMIT, 0, 1, 0);
    STRUCTURED("cancel-approved", FZ_SUBMIT, 0, 2, 0, FZ_APPROVE, 0,
               FZ_CANCEL, 0, FZ_CANCEL, 0x80);
    STRUCTURED("cancel-in-batch", FZ_SUBMIT, 0, 3, 0, FZ_APPROVE, 0,
               FZ_CREATE_BATCH, 0, 0, FZ_CANCEL, 0);
    STRUCTURED("confirm-twice", FZ_SUBMIT, 0, 0, 0, FZ_APPROVE, 0,
               FZ_CREATE_BATCH, 0, 0, FZ_CONFIRM, 0, FZ_FLUSH, FZ_CONFIRM, 0,
               FZ_RETURN, 0, FZ_CONFIRM, 0);
    STRUCTURED("two-batches", FZ_SUBMIT, 0, 1, 0, FZ_APPROVE, 0,
               FZ_CREATE_BATCH, 0, 0, FZ_CREATE_BATCH, 0, 0);
    STRUCTURED("self-approve", FZ_ACTOR, 6, FZ_SUBMIT, 0, 2, 0, FZ_ACTOR, 6,
               FZ_APPROVE, 0, FZ_ACTOR, 6, FZ_CREATE_BATCH, 0, 0, FZ_ACTOR,
               6, FZ_CONFIRM, 0);
    STRUCTURED("program-states", FZ_CREATE_PROGRAM, 1, 10, 3,
               FZ_CREATE_PROGRAM, 3, 10, 3, FZ_OPEN_PROGRAM, 1,
               FZ_OPEN_PROGRAM, 1, FZ_CLOSE_PROGRAM, 1, FZ_CLOSE_PROGRAM, 1,
               FZ_SUBMIT, 1, 0, 0);
    STRUCTURED("budget", FZ_ADJUST_BUDGET, 0, 0x7f, FZ_ADJUST_BUDGET, 0,
               0x80, FZ_ADJUST_BUDGET, 2, 0x81, FZ_ADJUST_BUDGET, 0, 0,
               FZ_ADJUST_BUDGET, 3, 5);
    STRUCTURED("households", FZ_REGISTER, 0, FZ_REGISTER, 4, FZ_REGISTER, 5,
               FZ_UPDATE, 0, 1, FZ_UPDATE, 4, 1, FZ_UPDATE, 4, 1,
               FZ_UPDATE, 5, 0);
    STRUCTURED("staff", FZ_CREATE_STAFF, 8, 4, FZ_CREATE_STAFF, 9, 4,
               FZ_CREATE_STAFF, 8, 6, FZ_SET_ROLES, 8, 8, FZ_SET_ROLES, 0, 2,
               FZ_SET_STATUS, 8, 2, FZ_SET_STATUS, 8, 1, FZ_SET_STATUS, 8, 3,
               FZ_SET_STATUS, 8, 1, FZ_SET_STATUS, 0, 2, FZ_SET_STATUS, 8,
               4);
    STRUCTURED("suspend-clerk", FZ_SET_STATUS, 2, 2, FZ_REGISTER, 4,
               FZ_ACTOR, 1, FZ_SET_STATUS, 2, 1, FZ_REGISTER, 4);
    STRUCTURED("wrong-roles", FZ_ACTOR, 2, FZ_APPROVE, 0, FZ_ACTOR, 4,
               FZ_REGISTER, 4, FZ_ACTOR, 0, FZ_SUBMIT, 0, 0, 0, FZ_ACTOR, 7,
               FZ_CREATE_STAFF, 8, 4, FZ_ACTOR, 9, FZ_OPEN_PROGRAM, 1);
    STRUCTURED("duplicates", FZ_SUBMIT, 0, 4, 0, FZ_DUPLICATE, FZ_FLUSH,
               FZ_APPROVE, 0, FZ_DUPLICATE, FZ_DUPLICATE);
    STRUCTURED("mutations", FZ_REGISTER, 4, FZ_MUTATE, 0, FZ_REGISTER, 4,
               FZ_MUTATE, 1, FZ_REGISTER, 4, FZ_MUTATE, 2, FZ_REGISTER, 4,
               FZ_MUTATE, 3, FZ_REGISTER, 4, FZ_MUTATE, 4, FZ_REGISTER, 4,
               FZ_MUTATE, 5, FZ_REGISTER, 4, FZ_MUTATE, 6, FZ_REGISTER, 4,
               FZ_MUTATE, 7, FZ_REGISTER, 4, FZ_MUTATE, 0x86);
    STRUCTURED("reused-key-other-body", FZ_ADJUST_BUDGET, 0, 1, FZ_MUTATE,
               7, FZ_SUBMIT, 0, 4, 0, FZ_MUTATE, 15);
    STRUCTURED("session-expiry", FZ_ADJUST_BUDGET, 0, 1, FZ_DUPLICATE,
               FZ_FLUSH, FZ_TIME_JUMP, 30, FZ_REGISTER, 4, FZ_REGISTER, 4,
               FZ_REGISTER, 4, FZ_ADJUST_BUDGET, 0, 1);
    STRUCTURED("unknown", FZ_UNKNOWN, FZ_UNKNOWN, FZ_MUTATE, 2);
    STRUCTURED("bad-refs", FZ_APPROVE, 5, FZ_CONFIRM, 5, FZ_RETURN, 3,
               FZ_CREATE_BATCH, 3, 0, 1, 2, 3, FZ_CREATE_BATCH, 0x83, 0, 0,
               0, 0);
    STRUCTURED("channels-amounts", FZ_SUBMIT, 0, 0, 1, FZ_SUBMIT, 0, 1, 255,
               FZ_SUBMIT, 0, 2, 3, FZ_SUBMIT, 3, 5, 8);
    STRUCTURED("long-entry", FZ_REGISTER, 0, FZ_REGISTER, 1, FZ_REGISTER, 2,
               FZ_REGISTER, 3, FZ_UPDATE, 0, 1, FZ_UPDATE, 1, 1, FZ_UPDATE, 2,
               1, FZ_UPDATE, 3, 1, FZ_SUBMIT, 0, 0, 0, FZ_SUBMIT, 0, 1, 0,
               FZ_SUBMIT, 0, 2, 0, FZ_SUBMIT, 0, 3, 0, FZ_APPROVE, 0,
               FZ_APPROVE, 1, FZ_APPROVE, 2, FZ_APPROVE, 3, FZ_CREATE_BATCH,
               3, 0, 1, 2, 3, FZ_CONFIRM, 0);
    /* Settle a fresh key (applied: answered), then the next key before the
     * command that takes it (fenced: that command is ABORTED), then a key
     * after a day (EXPIRED). */
    STRUCTURED("settle", FZ_REGISTER, 4, FZ_SETTLE, 0, FZ_SETTLE, 1,
               FZ_FLUSH, FZ_REGISTER, 3, FZ_SETTLE, 0, FZ_FLUSH,
               FZ_TIME_JUMP, 30, FZ_SETTLE, 2);
    /* Every opcode alone, twice, with different argument bytes. */
    for (uint8_t op = 0; op < FZ_OP_COUNT; op++) {
        char name[32];
        snprintf(name, sizeof name, "op%02u", (unsigned)op);
        uint8_t prog[] = {1, op, 0, 1, 2, op, 3, 0x81, 7};
        write_seed(name, prog, sizeof prog);
    }
    /* After the opcode seeds, so that the earlier names keep their
     * numbers. */
    /* Identity (issue 8): FZ_IDENTITY kind staff arg.  Kinds: 0 password,
     * 1 open (arg 0x80: setup-only), 2 failed, 3 close, 4 touch, 5 enroll,
     * 6 confirm, 7 unlock, 8 reset TOTP, 9 purge, 10 bootstrap, 11 access.
     * Staff 2 is clerk, 8 newbie. */
    STRUCTURED("identity-signin", FZ_IDENTITY, 1, 2, 0x80, FZ_IDENTITY, 0, 2,
               7, FZ_IDENTITY, 5, 2, 3, FZ_IDENTITY, 6, 2, 0, FZ_IDENTITY, 1,
               2, 1, FZ_IDENTITY, 1, 2, 1, FZ_FLUSH, FZ_IDENTITY, 3, 2, 1,
               FZ_IDENTITY, 2, 2, 0, FZ_IDENTITY, 2, 2, 0, FZ_IDENTITY, 2, 2,
               0, FZ_IDENTITY, 2, 2, 0, FZ_IDENTITY, 2, 2, 0, FZ_IDENTITY, 1,
               2, 2, FZ_IDENTITY, 7, 2, 0, FZ_IDENTITY, 1, 2, 2);
    STRUCTURED("identity-admin", FZ_CREATE_STAFF, 8, 4, FZ_IDENTITY, 1, 8,
               0x80, FZ_IDENTITY, 4, 8, 0, FZ_IDENTITY, 8, 8, 0,
               FZ_SET_STATUS, 8, 3, FZ_IDENTITY, 9, 8, 0, FZ_IDENTITY, 10, 8,
               0, FZ_IDENTITY, 11, 7, 3, FZ_SET_ROLES, 2, 2, FZ_ACTOR, 1,
               FZ_SET_ROLES, 2, 2, FZ_IDENTITY, 0, 0, 1);
}

static void raw_seeds(void)
{
    struct fx f;
    memset(&f, 0, sizeof f);
    f.now_ms = FX_T0_MS + (int64_t)1000000;
    snprintf(f.client_id, sizeof f.client_id, "raw-seed");
    f.seq = 1000;
    Kyufu__V1__Command *a[4];

    a[0] = c_register_household(&f, "clerk", "H-7");
    a[1] = c_submit(&f, "clerk", "P1", "H-7", 0);
    raw("raw-register-submit", a, 2);
    a[0] = c_create_program(&f, "appr", "P9", 500000);
    a[1] = c_open_program(&f, "appr", "P9");
    a[2] = c_adjust_budget(&f, "appr", "P9", -1000, "減額");
    raw("raw-program", a, 3);
    a[0] = c_approve(&f, "appr", 1);
    raw("raw-approve", a, 1);
    uint64_t ids[2] = {1, 2};
    a[0] = c_create_batch(&f, "clerk", "P1", 20260415, ids, 2);
    a[1] = c_confirm(&f, "appr2", 1);
    raw("raw-batch-confirm", a, 2);
    a[0] = c_return(&f, "clerk", 1, "返戻");
    a[1] = c_cancel(&f, "clerk", 2, "取下げ");
    a[2] = c_reject(&f, "appr", 3, "要件");
    raw("raw-decisions", a, 3);
    a[0] = c_create_staff(&f, "admin", "raw.user", R_CLERK);
    a[1] = c_set_roles(&f, "admin", "raw.user", R_APPROVER);
    a[2] = c_set_status(&f, "admin", "raw.user",
                        KYUFU__V1__STAFF_STATUS__STAFF_SUSPENDED);
    raw("raw-staff", a, 3);
    a[0] = c_close(&f, "clerk", 1);
    a[1] = c_failed(&f, "clerk", "clerk", "password");
    a[2] = c_access(&f, "aud", 2);
    raw("raw-identity", a, 3);
    a[0] = c_new(&f, "clerk");
    raw("raw-unknown", a, 1);
    a[0] = c_update_household(&f, "clerk", "H-1", 1);
    a[1] = c_update_household(&f, "clerk", "H-1", 1);
    a[1]->header->key->sequence = a[0]->header->key->sequence;
    raw("raw-duplicate", a, 2);
    raw("raw-empty-batch", a, 0);

    const uint8_t junk1[] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    write_seed("raw-junk-varint", junk1, sizeof junk1);
    const uint8_t junk2[] = {0, 0x0a, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x61};
    write_seed("raw-nested-headers", junk2, sizeof junk2);
    const uint8_t junk3[] = {0, 0x0d, 0x01, 0x02, 0x03, 0x04};
    write_seed("raw-wrong-wiretype", junk3, sizeof junk3);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s out-dir\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    structured_seeds();
    raw_seeds();
    printf("%d seeds written to %s\n", nseeds, out_dir);
    return 0;
}
