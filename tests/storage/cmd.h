/* Test helper for the ledger state machine: a tiny test runner, a store
 * fixture, builders for Command protobufs and the assertions every command
 * test makes (an accepted command's result and audit record; a rejected
 * command's code and the proof that it changed nothing but its audit record).
 *
 * Written from storage/storage.h and docs/ledger-rules.md only; it never
 * looks inside storage/.
 *
 * Runner contract: t_main runs each case in a forked child, so a case that
 * fails a CHECK, aborts (storage's own invariant assertions) or crashes is
 * reported and the next case still runs.  The parent makes one mkdtemp
 * directory under /tmp per case (t_dir) before the fork and removes it after
 * the child ends, whatever the child did.  A CHECK that fails prints the
 * expression and ends the child with exit status 1: it never returns. */
#ifndef KYUFU_TEST_CMD_H
#define KYUFU_TEST_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kyufu/v1/ledger.pb-c.h"
#include "storage.h"

/* ------------------------------------------------------------- runner */

struct t_case
{
    const char *name;
    void (*fn)(void);
};
#define T_CASE(fn) {#fn, fn}

/* Run every case whose name contains argv[1] (all when absent).  Returns
 * the process exit status: 0 all passed, 1 some failed. */
int t_main(int argc, char **argv, const struct t_case *cases, size_t n);

/* The current case's private directory (valid in the child). */
extern char t_dir[];

_Noreturn void t_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define CHECK(cond)                                                          \
    ((cond) ? (void)0 : t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond))
#define CHECK_EQ(a, b)                                                       \
    t_check_eq(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))
#define CHECK_STR(a, b) t_check_str(__FILE__, __LINE__, #a, (a), (b))
/* Result code, with the result's message in the failure text. */
#define CHECK_CODE(res, want) t_check_code(__FILE__, __LINE__, (res), (want))

void t_check_eq(const char *file, int line, const char *ea, const char *eb,
                long long a, long long b);
void t_check_str(const char *file, int line, const char *ea, const char *a,
                 const char *b);
void t_check_code(const char *file, int line,
                  const Kyufu__V1__CommandResult *res, Kyufu__V1__Code want);

/* -------------------------------------------------------------- fixture */

struct fx
{
    char dir[128];
    struct kyufu_storage *s;
    uint64_t index;     /* last Raft index handed to apply */
    uint64_t term;
    uint64_t seq;       /* last idempotency sequence handed out */
    int64_t now_ms;     /* time stamped into the next built command */
    char client_id[32];
    bool sync;          /* open without no_sync (set, then fx_reopen) */
    /* Encryption at rest: the store gets FX_CMK after each open when
     * cmk is set (fx_open sets it when the environment has KYUFU_TEST_CMK,
     * so a whole command test runs again over sealed values).  Every entry
     * carries the salt fx_salt(salt_seed, index) unless salt_empty. */
    bool cmk;
    bool salt_empty;
    unsigned salt_seed;
    uint64_t seal_limit; /* options.seal_limit (set, then fx_reopen) */
};

/* The test cluster master key (32 bytes) and an entry's salt: 16 bytes
 * from (seed, index), so two fixtures applying the same entries with the
 * same seed write the same bytes. */
extern const uint8_t FX_CMK[32];
void fx_salt(unsigned seed, uint64_t index, uint8_t out[16]);

/* 2026-04-01T00:00:00Z: the default "now" of a fixture. */
#define FX_T0_MS ((int64_t)1775001600000)

/* Open a new empty store in a fresh subdirectory of t_dir (no_sync). */
void fx_open(struct fx *f);
/* As fx_open, with the CMK (true) or without (false) whatever the
 * environment says. */
void fx_open_keyed(struct fx *f, bool cmk);
/* Whether the environment asks for sealed stores (KYUFU_TEST_CMK set). */
bool fx_env_cmk(void);
/* Close (when open) and open f->dir again (a restart). */
void fx_reopen(struct fx *f);
/* Close the store; the directory goes with t_dir. */
void fx_close(struct fx *f);
/* Snapshot FROM and restore the stream into TO (open, empty): TO then holds
 * FROM's state, and FROM's index. */
void fx_restore_from(struct fx *to, struct fx *from);

/* Role masks (1 << Role). */
#define R_ADMIN (1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN)
#define R_CLERK (1u << KYUFU__V1__ROLE__ROLE_CLERK)
#define R_APPROVER (1u << KYUFU__V1__ROLE__ROLE_APPROVER)
#define R_AUDITOR (1u << KYUFU__V1__ROLE__ROLE_AUDITOR)
#define R_OPERATOR (1u << KYUFU__V1__ROLE__ROLE_OPERATOR)

/* The command-set version with the identity rules (storage.h "identity"). */
#define FX_IDENTITY_VERSION 2u
/* Raise the cluster version to FX_IDENTITY_VERSION (a RecordVersions of
 * three voters by kyufu-node-1): the identity rules hold from then on. */
void fx_identity(struct fx *f);
/* The command-set version with the two-administrator rule for changes to
 * an ID administrator (apply_admin_pair.c). */
#define FX_ADMIN_PAIR_VERSION 3u
/* Raise the cluster version to `version` the same way. */
void fx_version(struct fx *f, uint32_t version);

/* The standard world, built through commands that must all succeed, under
 * the identity rules (fx_identity first):
 *   staff admin (ID_ADMIN, BootstrapAdmin), admin2 (ID_ADMIN, granted by
 *   the only ID administrator), clerk, clerk2
 *   (CLERK), appr, appr2 (APPROVER), both (CLERK|APPROVER), aud (AUDITOR);
 *   program P1 OPEN, unit 10,000 yen, budget 100,000, window [1, 4e12);
 *   households H-1 .. H-4. */
void fx_world(struct fx *f);
/* The same world under the rules of command-set version 1 (cluster
 * version 1: the first ID administrator made by CreateStaff on an empty
 * table), as a cluster still upgrading runs them. */
void fx_world_v1(struct fx *f);

/* ------------------------------------------------------------ builders
 *
 * Each returns a heap Command (free with kyufu__v1__command__free_unpacked
 * (c, NULL); every string and submessage is malloc'ed so that works) with a
 * header: actor, terminal "term-1", time f->now_ms, key (f->client_id,
 * ++f->seq).  Building advances f->now_ms by 1000.  Tests change fields
 * afterwards; c_str replaces a string field. */
void c_str(char **field, const char *value);
Kyufu__V1__Command *c_new(struct fx *f, const char *actor);

Kyufu__V1__Command *c_create_program(struct fx *f, const char *actor,
                                     const char *code, int64_t budget);
Kyufu__V1__Command *c_open_program(struct fx *f, const char *actor,
                                   const char *code);
Kyufu__V1__Command *c_close_program(struct fx *f, const char *actor,
                                    const char *code);
Kyufu__V1__Command *c_adjust_budget(struct fx *f, const char *actor,
                                    const char *code, int64_t delta,
                                    const char *reason);
/* A valid household no with two members and a bank account. */
Kyufu__V1__Command *c_register_household(struct fx *f, const char *actor,
                                         const char *no);
/* UpdateHousehold as this version proposes it (update_household_fields):
 * the household of c_register_household, every top-level path in the mask
 * (head_name, member_names, address, bank), the given expected version. */
Kyufu__V1__Command *c_update_household(struct fx *f, const char *actor,
                                       const char *no, uint64_t expected);
/* Replace u's update mask by the n paths given (copied). */
void c_mask(Kyufu__V1__UpdateHousehold *u, size_t n, const char *const *paths);
/* The legacy body (update_household: whole record, no mask, no version),
 * as an entry from an older version carries it. */
Kyufu__V1__Command *c_update_household_legacy(struct fx *f, const char *actor,
                                              const char *no);
Kyufu__V1__Command *c_submit(struct fx *f, const char *actor,
                             const char *program, const char *household,
                             int64_t amount);
Kyufu__V1__Command *c_approve(struct fx *f, const char *actor, uint64_t id);
Kyufu__V1__Command *c_reject(struct fx *f, const char *actor, uint64_t id,
                             const char *reason);
Kyufu__V1__Command *c_cancel(struct fx *f, const char *actor, uint64_t id,
                             const char *reason);
Kyufu__V1__Command *c_create_batch(struct fx *f, const char *actor,
                                   const char *program, int32_t date,
                                   const uint64_t *ids, size_t n);
Kyufu__V1__Command *c_confirm(struct fx *f, const char *actor, uint64_t id);
Kyufu__V1__Command *c_return(struct fx *f, const char *actor, uint64_t app,
                             const char *reason);
/* CreateStaff with a temporary password hash (c_pw_hash(FX_TEMP_PW_SEED)). */
Kyufu__V1__Command *c_create_staff(struct fx *f, const char *actor,
                                   const char *id, uint32_t roles);
/* Identity (issue 8).  A PasswordHash (iterations 1000, 16-byte salt,
 * 32-byte hash) whose bytes come from fx_secret_bytes(seed, 'S'/'H'), so a
 * test can look for them; heap-allocated (freed with the command). */
#define FX_TEMP_PW_SEED 7u
Kyufu__V1__PasswordHash *c_pw_hash(unsigned seed);
/* n bytes, all with the high bit set (never text), from (seed, kind). */
void fx_secret_bytes(unsigned seed, char kind, uint8_t *out, size_t n);
/* c_new with a node's key client id ("kyufud-test-1"), as the identity
 * commands (100-111) require. */
Kyufu__V1__Command *c_id_new(struct fx *f, const char *actor);
Kyufu__V1__Command *c_bootstrap(struct fx *f, const char *actor,
                                const char *id);
/* The other identity commands (c_id_new headers).  Secret bytes come from
 * fx_secret_bytes: password hashes c_pw_hash(seed); token hash (tok, 'T',
 * 32), certificate hash (tok, 'C', 32); TOTP secret (seed, 'O', 20). */
Kyufu__V1__Command *c_set_password(struct fx *f, const char *actor,
                                   const char *id, unsigned seed,
                                   bool temporary); /* history 5 */
/* The account's credential password_set_ms (it must have one). */
int64_t fx_password_set_ms(struct fx *f, const char *id);
/* OpenSession by the account, token tok, TOTP step (0: setup-only), the
 * password_set_ms as stored (1 when it has no credential); idle 15 min,
 * absolute 12 h. */
Kyufu__V1__Command *c_open(struct fx *f, const char *id, unsigned tok,
                           uint64_t step);
/* SignInFailed with lock_after 5, lock_ms 15 min. */
Kyufu__V1__Command *c_failed(struct fx *f, const char *actor, const char *id,
                             const char *reason);
Kyufu__V1__Command *c_close(struct fx *f, const char *actor, unsigned tok);
Kyufu__V1__Command *c_touch(struct fx *f, const char *actor, unsigned tok,
                            int64_t used);
Kyufu__V1__Command *c_enroll(struct fx *f, const char *id, unsigned seed);
Kyufu__V1__Command *c_confirm_totp(struct fx *f, const char *id,
                                   uint64_t step);
Kyufu__V1__Command *c_unlock(struct fx *f, const char *actor, const char *id);
Kyufu__V1__Command *c_reset_totp(struct fx *f, const char *actor,
                                 const char *id);
Kyufu__V1__Command *c_purge(struct fx *f, const char *actor, const char *id);
/* RecordAccess of ListHouseholds returning household/H-1..H-n. */
Kyufu__V1__Command *c_access(struct fx *f, const char *actor,
                             size_t n_objects);
Kyufu__V1__Command *c_set_roles(struct fx *f, const char *actor,
                                const char *id, uint32_t roles);
Kyufu__V1__Command *c_set_status(struct fx *f, const char *actor,
                                 const char *id, Kyufu__V1__StaffStatus st);

/* SettleWrite of this fixture's key (f->client_id, seq); unlike the other
 * builders it takes no new sequence (it asks about an existing one). */
Kyufu__V1__Command *c_settle(struct fx *f, const char *actor, uint64_t seq);

/* The audit command name the docs expect for c ("Unknown" without body). */
const char *c_name(const Kyufu__V1__Command *c);

/* ------------------------------------------------------------ applying */

/* Apply `n` commands as one Raft entry at ++f->index (term f->term).  The
 * results are deep copies owned by the caller (free with fx_free).  Checks
 * that apply returned 0 and one result per command. */
void fx_apply_batch(struct fx *f, Kyufu__V1__Command **cmds, size_t n,
                    Kyufu__V1__CommandResult **out);
/* One command as its own entry; c stays the caller's. */
Kyufu__V1__CommandResult *fx_apply(struct fx *f, const Kyufu__V1__Command *c);
void fx_free(Kyufu__V1__CommandResult *r);

/* Apply c (and free it), require OK, and check the result (empty message,
 * raft_index, audit_seq, a record set) and its audit record; returns the
 * result. */
Kyufu__V1__CommandResult *fx_ok_at(const char *file, int line, struct fx *f,
                                   Kyufu__V1__Command *c);
#define fx_ok(f, c) fx_ok_at(__FILE__, __LINE__, (f), (c))
/* As fx_ok, freeing the result. */
#define fx_do(f, c) fx_free(fx_ok((f), (c)))

/* Apply c (and free it), require OK and the whole-state check, nothing
 * more (identity commands: no record, audit checked by the test). */
Kyufu__V1__CommandResult *fx_apply_ok_at(const char *file, int line,
                                         struct fx *f, Kyufu__V1__Command *c);
#define fx_apply_ok(f, c) fx_apply_ok_at(__FILE__, __LINE__, (f), (c))

/* Apply c (and free it), require `code`, and check that it changed nothing
 * but its one audit record: every record of every list is byte-identical,
 * the audit chain grew by one record with the right fields and verifies,
 * and kyufu_storage_check_invariants passes. */
void fx_reject_at(const char *file, int line, struct fx *f,
                  Kyufu__V1__Command *c, Kyufu__V1__Code code);
#define fx_reject(f, c, code) fx_reject_at(__FILE__, __LINE__, (f), (c), (code))

/* ---------------------------------------------------------- observing */

/* All replicated records but the audit trail, packed into one buffer in
 * list order (programs, households, applications, batches, staff). */
struct blob
{
    uint8_t *p;
    size_t n;
};
void fx_state(struct fx *f, struct blob *b);
void blob_free(struct blob *b);
bool blob_eq(const struct blob *a, const struct blob *b);

/* Number of audit records; checks the chain verifies. */
uint64_t fx_audit_count(struct fx *f);
/* The audit record with that seq (owned by the caller). */
Kyufu__V1__AuditRecord *fx_audit(struct fx *f, uint64_t seq);
void fx_digest(struct fx *f, uint8_t d[32]);
void fx_invariants(struct fx *f);

Kyufu__V1__Program *fx_program(struct fx *f, const char *code);
Kyufu__V1__Application *fx_app(struct fx *f, uint64_t id);
Kyufu__V1__PaymentBatch *fx_batch(struct fx *f, uint64_t id);
Kyufu__V1__Household *fx_household(struct fx *f, const char *no);
Kyufu__V1__StaffAccount *fx_staff(struct fx *f, const char *id);

/* Program balances, and budget = available + reserved + paid. */
#define fx_balances(f, code, b, a, r, p)                                     \
    fx_balances_at(__FILE__, __LINE__, (f), (code), (b), (a), (r), (p))
void fx_balances_at(const char *file, int line, struct fx *f,
                    const char *code, int64_t budget, int64_t available,
                    int64_t reserved, int64_t paid);

/* Shortcuts through the standard world; each must succeed. */
uint64_t fx_submitted(struct fx *f, const char *program, const char *hh);
uint64_t fx_approved(struct fx *f, const char *program, const char *hh);
uint64_t fx_batch_of(struct fx *f, const char *program, const uint64_t *ids,
                     size_t n);
/* Approved, batched by clerk, confirmed by appr2: the application is PAID. */
uint64_t fx_paid(struct fx *f, const char *program, const char *hh);

/* A string of n copies of ch (static buffer, n <= 1023). */
const char *rep(char ch, size_t n);

#endif /* KYUFU_TEST_CMD_H */
