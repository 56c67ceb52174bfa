/* SettleWrite (docs/ledger-rules.md "SettleWrite", docs/api.md "Settling an
 * unknown outcome"): an applied key answers its first result; an unused key
 * is fenced, and the original arriving later gets the fence and is not
 * applied; the fence is idempotent, survives a snapshot and a restart, is
 * part of the digest; a key the cluster may have forgotten is EXPIRED,
 * never NOT_APPLIED; a settle refused by the actor checks fences nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/storage_limits.h"
#include "cmd.h"

#define OK KYUFU__V1__CODE__OK
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define ABORTED KYUFU__V1__CODE__ABORTED
#define APPLIED KYUFU__V1__WRITE_OUTCOME__WRITE_APPLIED
#define NOT_APPLIED KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED
#define EXPIRED KYUFU__V1__WRITE_OUTCOME__WRITE_EXPIRED

static void free_cmd(Kyufu__V1__Command *c)
{
    kyufu__v1__command__free_unpacked(c, NULL);
}

/* Results equal but for `outcome`, which the APPLIED answer adds. */
static bool same_but_outcome(const Kyufu__V1__CommandResult *a,
                             const Kyufu__V1__CommandResult *b)
{
    Kyufu__V1__CommandResult x = *a;
    Kyufu__V1__CommandResult y = *b;
    x.outcome = 0;
    y.outcome = 0;
    size_t na = kyufu__v1__command_result__get_packed_size(&x);
    size_t nb = kyufu__v1__command_result__get_packed_size(&y);
    if (na != nb) {
        return false;
    }
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
    CHECK(pa != NULL && pb != NULL);
    kyufu__v1__command_result__pack(&x, pa);
    kyufu__v1__command_result__pack(&y, pb);
    bool eq = memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

static bool same_result(const Kyufu__V1__CommandResult *a,
                        const Kyufu__V1__CommandResult *b)
{
    return a->outcome == b->outcome && same_but_outcome(a, b);
}

/* Apply c, requiring that it wrote no record and no audit record (a
 * duplicate: only the applied index moves). */
static Kyufu__V1__CommandResult *apply_silent(struct fx *f,
                                              const Kyufu__V1__Command *c)
{
    struct blob before, after;
    fx_state(f, &before);
    uint64_t count = fx_audit_count(f);
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    fx_state(f, &after);
    CHECK(blob_eq(&before, &after));
    CHECK_EQ(fx_audit_count(f), count);
    blob_free(&before);
    blob_free(&after);
    return r;
}

/* ------------------------------------------------------------- applied */

static void applied_returns_first_result(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__CommandResult *r1 = fx_ok(&f, c_submit(&f, "clerk", "P1",
                                                       "H-1", 0));
    uint64_t key = f.seq;
    f.now_ms += 3600 * 1000; /* an hour later, after the front end's crash */
    Kyufu__V1__Command *s = c_settle(&f, "clerk", key);
    Kyufu__V1__CommandResult *r2 = apply_silent(&f, s);
    CHECK_CODE(r2, OK);
    CHECK_EQ(r2->outcome, APPLIED);
    CHECK_EQ(r1->outcome, 0);
    CHECK(same_but_outcome(r1, r2)); /* record, raft index, audit seq */
    CHECK(r2->record_case == KYUFU__V1__COMMAND_RESULT__RECORD_APPLICATION);
    /* Asking again answers the same. */
    Kyufu__V1__CommandResult *r3 = apply_silent(&f, s);
    CHECK(same_result(r2, r3));
    fx_free(r1);
    fx_free(r2);
    fx_free(r3);
    free_cmd(s);
    fx_close(&f);
}

/* A key consumed by a rejected command was applied (as a rejection): the
 * settle answers APPLIED with that rejection, and a retry stays rejected. */
static void applied_rejection(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    uint64_t id = fx_submitted(&f, "P1", "H-1");
    Kyufu__V1__Command *c = c_approve(&f, "clerk", id); /* lacks the role */
    Kyufu__V1__CommandResult *r1 = fx_apply(&f, c);
    CHECK_CODE(r1, DENIED);
    Kyufu__V1__Command *s = c_settle(&f, "clerk", f.seq);
    Kyufu__V1__CommandResult *r2 = apply_silent(&f, s);
    CHECK_CODE(r2, DENIED);
    CHECK_EQ(r2->outcome, APPLIED);
    CHECK(same_but_outcome(r1, r2));
    fx_free(r1);
    fx_free(r2);
    free_cmd(c);
    free_cmd(s);
    fx_close(&f);
}

/* ---------------------------------------------------------- not applied */

static void unused_key_is_fenced(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    /* The front end built this write, sent it, crashed: it never arrived. */
    Kyufu__V1__Command *orig = c_submit(&f, "clerk", "P1", "H-2", 0);
    uint64_t key = f.seq;

    /* The settle is audited and changes no record (fx_reject checks it). */
    fx_reject(&f, c_settle(&f, "clerk", key), ABORTED);
    Kyufu__V1__Command *s = c_settle(&f, "clerk", key);
    Kyufu__V1__CommandResult *fence = apply_silent(&f, s);
    CHECK_CODE(fence, ABORTED);
    CHECK_EQ(fence->outcome, NOT_APPLIED);
    CHECK_EQ(fence->raft_index, f.index - 1); /* the first settle's entry */
    Kyufu__V1__AuditRecord *a = fx_audit(&f, fence->audit_seq);
    CHECK_STR(a->command, "SettleWrite");
    CHECK_EQ(a->client_seq, key);
    CHECK_EQ(a->outcome, ABORTED);
    kyufu__v1__audit_record__free_unpacked(a, NULL);

    /* The original arrives now (a retry, an old leader's log): refused with
     * the fence, and nothing at all is written. */
    orig->header->time_ms = f.now_ms;
    Kyufu__V1__CommandResult *late = apply_silent(&f, orig);
    CHECK(same_result(late, fence));
    struct kyufu_storage_page page = {0};
    struct kyufu_storage_app_filter hh = {.household_no = "H-2"};
    CHECK(kyufu_storage_list_applications(f.s, &hh, NULL, 10, &page) == 0);
    CHECK_EQ(page.n, 0);
    kyufu_storage_page_free(&page);
    fx_balances(&f, "P1", 100000, 100000, 0, 0);

    /* The same write under a new key is an ordinary command. */
    free_cmd(orig);
    fx_do(&f, c_submit(&f, "clerk", "P1", "H-2", 0));
    fx_free(fence);
    fx_free(late);
    free_cmd(s);
    fx_close(&f);
}

/* Settle and original in one entry: whichever comes first decides. */
static void settle_and_original_in_one_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *o1 = c_submit(&f, "clerk", "P1", "H-1", 0);
    Kyufu__V1__Command *s1 = c_settle(&f, "clerk", f.seq);
    Kyufu__V1__Command *o2 = c_submit(&f, "clerk", "P1", "H-2", 0);
    Kyufu__V1__Command *s2 = c_settle(&f, "clerk", f.seq);
    Kyufu__V1__Command *cmds[] = {s1, o1, o2, s2};
    Kyufu__V1__CommandResult *r[4];
    fx_apply_batch(&f, cmds, 4, r);
    CHECK_CODE(r[0], ABORTED);
    CHECK_EQ(r[0]->outcome, NOT_APPLIED);
    CHECK(same_result(r[0], r[1]));
    CHECK_CODE(r[2], OK);
    CHECK_CODE(r[3], OK);
    CHECK_EQ(r[3]->outcome, APPLIED);
    CHECK(same_but_outcome(r[2], r[3]));
    fx_balances(&f, "P1", 100000, 100000, 0, 0);
    for (int i = 0; i < 4; i++) {
        fx_free(r[i]);
        free_cmd(cmds[i]);
    }
    fx_close(&f);
}

/* A settle refused at the actor or role checks is audited like any
 * rejection but fences nothing: the original still applies. */
static void refused_settle_fences_nothing(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *orig = c_register_household(&f, "clerk", "H-9");
    uint64_t key = f.seq;
    fx_reject(&f, c_settle(&f, "nobody", key), DENIED);
    fx_reject(&f, c_settle(&f, "aud", key), DENIED); /* no writer role */
    orig->header->time_ms = f.now_ms;
    fx_do(&f, orig);
    Kyufu__V1__Household *h = fx_household(&f, "H-9");
    CHECK(h != NULL);
    kyufu__v1__household__free_unpacked(h, NULL);
    fx_close(&f);
}

/* ------------------------------------------------------------- expired */

/* Once the key's entry is past retention (pruned or not), the cluster cannot
 * tell: EXPIRED, never NOT_APPLIED; the key is fenced all the same. */
static void forgotten_key_is_expired(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f); /* about twenty keys, all older than the next one */
    Kyufu__V1__Command *orig = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    fx_do(&f, orig);
    uint64_t key = f.seq;
    fx_balances(&f, "P1", 100500, 100500, 0, 0);

    /* Past retention: the first command after it prunes only the 8 oldest
     * (the world's), so the key's entry is still there, unpruned. */
    f.now_ms += KYUFU_SESSION_RETENTION_MS + 1000;
    Kyufu__V1__Command *s = c_settle(&f, "appr", key);
    Kyufu__V1__CommandResult *r = fx_apply(&f, s);
    CHECK_CODE(r, ABORTED);
    CHECK_EQ(r->outcome, EXPIRED);
    fx_free(r);
    free_cmd(s);

    /* The original, re-sent now, is refused with that fence instead of
     * being applied a second time. */
    Kyufu__V1__Command *again = c_adjust_budget(&f, "appr", "P1", 500, "補正");
    again->header->key->sequence = key;
    f.seq--;
    r = apply_silent(&f, again);
    CHECK_CODE(r, ABORTED);
    CHECK_EQ(r->outcome, EXPIRED);
    fx_free(r);
    fx_balances(&f, "P1", 100500, 100500, 0, 0);

    /* Far later, with everything pruned: an old key (pruned, so at or below
     * the floor) is EXPIRED, and so is an unused key below the floor; an
     * unused key above it is NOT_APPLIED. */
    f.now_ms += 3 * KYUFU_SESSION_RETENTION_MS;
    for (int i = 0; i < 6; i++) {
        char no[16];
        snprintf(no, sizeof no, "H-%d", 20 + i);
        fx_do(&f, c_register_household(&f, "clerk", no));
    }
    uint64_t high = f.seq;
    s = c_settle(&f, "appr", key);
    r = fx_apply(&f, s);
    CHECK_EQ(r->outcome, EXPIRED);
    fx_free(r);
    free_cmd(s);
    s = c_settle(&f, "appr", 2); /* a world key, pruned long ago */
    r = fx_apply(&f, s);
    CHECK_EQ(r->outcome, EXPIRED);
    fx_free(r);
    free_cmd(s);
    s = c_settle(&f, "appr", high + 100);
    r = fx_apply(&f, s);
    CHECK_EQ(r->outcome, NOT_APPLIED);
    fx_free(r);
    free_cmd(s);
    /* Another client id has its own floor (none): its keys are unused. */
    snprintf(f.client_id, sizeof f.client_id, "other-client");
    s = c_settle(&f, "appr", 2);
    r = fx_apply(&f, s);
    CHECK_EQ(r->outcome, NOT_APPLIED);
    fx_free(r);
    free_cmd(s);
    free_cmd(again);
    fx_invariants(&f);
    fx_close(&f);
}

/* --------------------------------------------- snapshot, restart, digest */

static void fence_survives_snapshot_and_restart(void)
{
    struct fx a, b;
    uint8_t da[32], db[32], before[32];
    fx_open(&a);
    fx_world(&a);
    Kyufu__V1__Command *orig = c_submit(&a, "clerk", "P1", "H-3", 0);
    uint64_t key = a.seq;
    fx_digest(&a, before);
    Kyufu__V1__Command *s = c_settle(&a, "clerk", key);
    Kyufu__V1__CommandResult *fence = fx_apply(&a, s);
    CHECK_EQ(fence->outcome, NOT_APPLIED);
    fx_digest(&a, da);
    CHECK(memcmp(before, da, 32) != 0);

    fx_open(&b);
    fx_restore_from(&b, &a);
    b.now_ms = a.now_ms;
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    fx_reopen(&b);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);

    /* On the restored store the original is refused with the same fence. */
    orig->header->time_ms = b.now_ms;
    Kyufu__V1__CommandResult *late = apply_silent(&b, orig);
    CHECK(same_result(late, fence));
    struct kyufu_storage_page page = {0};
    struct kyufu_storage_app_filter hh = {.household_no = "H-3"};
    CHECK(kyufu_storage_list_applications(b.s, &hh, NULL, 10, &page) == 0);
    CHECK_EQ(page.n, 0);
    kyufu_storage_page_free(&page);
    fx_free(fence);
    fx_free(late);
    free_cmd(orig);
    free_cmd(s);
    fx_close(&a);
    fx_close(&b);
}

/* The floor is replicated state: two stores that pruned the same sessions
 * agree, and one that settles a key differently (NOT_APPLIED vs EXPIRED)
 * cannot agree with them on the digest.  Replaying the same entries on a
 * fresh store gives byte-identical results and digest (exactly-once across
 * replay: the fence and the floor are rebuilt, not guessed). */
static void replay_is_identical(void)
{
    struct fx a, b;
    uint8_t da[32], db[32];
    fx_open(&a);
    fx_open(&b);
    fx_world(&a);
    fx_world(&b);
    Kyufu__V1__Command *cmds[6];
    Kyufu__V1__CommandResult *ra[6], *rb[6];
    /* applied, settled-applied, fenced, original-after-fence, expired-later */
    cmds[0] = c_submit(&a, "clerk", "P1", "H-1", 0);
    cmds[1] = c_settle(&a, "clerk", a.seq);
    cmds[2] = c_settle(&a, "clerk", a.seq + 1);
    cmds[3] = c_submit(&a, "clerk", "P1", "H-2", 0); /* takes seq + 1 */
    a.now_ms += 2 * KYUFU_SESSION_RETENTION_MS;
    cmds[4] = c_register_household(&a, "clerk", "H-7");
    cmds[5] = c_settle(&a, "clerk", a.seq - 1);
    for (int i = 0; i < 6; i++) {
        ra[i] = fx_apply(&a, cmds[i]);
        rb[i] = fx_apply(&b, cmds[i]);
        CHECK(same_result(ra[i], rb[i]));
    }
    CHECK_EQ(ra[1]->outcome, APPLIED);
    CHECK_EQ(ra[2]->outcome, NOT_APPLIED);
    CHECK(same_result(ra[2], ra[3]));
    CHECK_EQ(ra[5]->outcome, EXPIRED);
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    for (int i = 0; i < 6; i++) {
        fx_free(ra[i]);
        fx_free(rb[i]);
        free_cmd(cmds[i]);
    }
    fx_invariants(&a);
    fx_close(&a);
    fx_close(&b);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(applied_returns_first_result),
        T_CASE(applied_rejection),
        T_CASE(unused_key_is_fenced),
        T_CASE(settle_and_original_in_one_entry),
        T_CASE(refused_settle_fences_nothing),
        T_CASE(forgotten_key_is_expired),
        T_CASE(fence_survives_snapshot_and_restart),
        T_CASE(replay_is_identical),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
