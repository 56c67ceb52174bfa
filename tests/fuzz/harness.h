/* The fuzz harness interface: every target (meson.build lists them) is one
 * harness file defining the four functions below, linked either with the
 * libFuzzer entry (fuzz_main.c, clang) or with the corpus replay test
 * (replay.c, any compiler).  What follows describes the apply target
 * (harness.c); each other harness_<target>.c opens with its own.
 *
 * One store, opened once (no_sync) in a mkdtemp directory under $TMPDIR (or
 * /tmp) with a standard world (staff of every role, programs, households).
 * Each input becomes one or more Raft entries applied at increasing
 * indexes through kyufu_storage_apply_bytes, then
 * kyufu_storage_check_invariants runs; any store error or violation aborts
 * the process (that is the finding).
 *
 * Input format: the first byte selects the mode.
 *   even: the rest is raw CommandBatch bytes, applied as one entry.
 *   odd:  the rest is a program of small opcodes that build valid-ish
 *         commands against the world (docs/testing.md lists them), so the
 *         fuzzer reaches the deep paths of apply, not only the decoder.
 * State carries over between inputs (ids, balances, sessions); the store is
 * recreated when its applied index passes FZ_RESET_INDEX, bounding the time
 * each invariant walk takes. */
#ifndef KYUFU_FUZZ_HARNESS_H
#define KYUFU_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Open the store and build the world.  Call once. */
void fz_init(void);
/* Run one input.  Aborts on a finding. */
void fz_one(const uint8_t *data, size_t size);
/* Counts of result codes so far, one line. */
void fz_report(FILE *fp);
/* Close the store and remove its directory. */
void fz_fini(void);

/* Opcodes of the structured mode (the byte is taken modulo FZ_OP_COUNT). */
enum fz_op
{
    FZ_CREATE_PROGRAM, /* code, budget/10^4, unit/10^3 */
    FZ_OPEN_PROGRAM,   /* code */
    FZ_CLOSE_PROGRAM,  /* code */
    FZ_ADJUST_BUDGET,  /* code, signed delta/10^3 (0x80: INT64_MIN) */
    FZ_REGISTER,       /* household */
    FZ_UPDATE,         /* household, expected version (0..3) */
    FZ_SUBMIT,         /* code, household, amount/10^2 (0: unit) */
    FZ_APPROVE,        /* app ref (last id - n) */
    FZ_REJECT,         /* app ref */
    FZ_CANCEL,         /* app ref */
    FZ_CREATE_BATCH,   /* code, count, app refs... */
    FZ_CONFIRM,        /* batch ref */
    FZ_RETURN,         /* app ref */
    FZ_CREATE_STAFF,   /* staff, roles */
    FZ_SET_ROLES,      /* staff, roles */
    FZ_SET_STATUS,     /* staff, status */
    FZ_ACTOR,          /* actor of the next command */
    FZ_DUPLICATE,      /* repeat the previous command, same key */
    FZ_MUTATE,         /* kind: break the previous command */
    FZ_FLUSH,          /* end the entry */
    FZ_TIME_JUMP,      /* hours */
    FZ_UNKNOWN,        /* a command without a body */
    FZ_SETTLE,         /* even: a recent key (seq - n); odd: an unused one */
    FZ_IDENTITY,       /* kind (12 commands), staff, arg: identity (issue 8) */
    FZ_OP_COUNT
};

#endif /* KYUFU_FUZZ_HARNESS_H */
