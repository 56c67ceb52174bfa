/* Data-key rotation (storage/apply_keys.c, docs/encryption.md "Rotation"):
 * RotateKeys makes the next version active at once and old values stay
 * readable; Reencrypt steps re-seal every sealed db under it, only at the
 * replicated cursor; replicas (and one restored from a snapshot half-way)
 * stay byte-identical; the cursor survives a restart; a tampered value is
 * detected before and after re-encryption; plaintext values of a store
 * upgraded to keys are sealed; the refusals change nothing.  From cluster
 * version 6 apply counts the seals under the active version and rotates
 * by itself at the limit (a low one here), replicas alike.
 *
 * Commands go through the public API (cmd.h); the census
 * (kyufu_storage_key_census) is the proof of which version every stored
 * value is under.  The byte flips look inside through internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "internal.h"

/* ------------------------------------------------------------ helpers */

/* A keyed (or not) store with the standard world, cluster version 5 and an
 * operator, "oper". */
static void world(struct fx *f, bool cmk)
{
    fx_open_keyed(f, cmk);
    fx_world(f);
    fx_version(f, KYUFU_KEY_ROTATION_SINCE);
    fx_free(fx_apply_ok(f, c_create_staff(f, "admin", "oper", R_OPERATOR)));
}

static Kyufu__V1__Command *c_rotate(struct fx *f, const char *actor,
                                    uint32_t version)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    c->body_case = KYUFU__V1__COMMAND__BODY_ROTATE_KEYS;
    c->rotate_keys = calloc(1, sizeof *c->rotate_keys);
    CHECK(c->rotate_keys != NULL);
    kyufu__v1__rotate_keys__init(c->rotate_keys);
    c->rotate_keys->version = version;
    return c;
}

static Kyufu__V1__Command *c_reencrypt(struct fx *f, uint32_t version,
                                       uint32_t db, const uint8_t *key,
                                       size_t klen, uint32_t count)
{
    Kyufu__V1__Command *c = c_new(f, "kyufu-node-1");
    c->body_case = KYUFU__V1__COMMAND__BODY_REENCRYPT;
    c->reencrypt = calloc(1, sizeof *c->reencrypt);
    CHECK(c->reencrypt != NULL);
    kyufu__v1__reencrypt__init(c->reencrypt);
    c->reencrypt->version = version;
    c->reencrypt->db = db;
    c->reencrypt->count = count;
    if (klen > 0) {
        c->reencrypt->from_key.data = malloc(klen);
        CHECK(c->reencrypt->from_key.data != NULL);
        memcpy(c->reencrypt->from_key.data, key, klen);
        c->reencrypt->from_key.len = klen;
    }
    return c;
}

/* Apply c (freed) and return its result code. */
static Kyufu__V1__Code apply_code(struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    Kyufu__V1__Code code = r->code;
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
    return code;
}

static Kyufu__V1__KeyRotation *rotation(struct fx *f)
{
    Kyufu__V1__KeyRotation *r = NULL;
    CHECK_EQ(kyufu_storage_key_rotation(f->s, &r, NULL), 0);
    return r;
}

/* The next step at the replicated cursor, as the leader proposes it; false
 * when re-encryption is done. */
static bool step(struct fx *f, uint32_t count)
{
    Kyufu__V1__KeyRotation *r = rotation(f);
    bool done = r->done;
    if (!done) {
        CHECK_EQ(apply_code(f, c_reencrypt(f, r->version, r->db,
                                           r->next_key.data, r->next_key.len,
                                           count)),
                 KYUFU__V1__CODE__OK);
    }
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    return !done;
}

/* Steps until done; how many. */
static size_t drive(struct fx *f, uint32_t count)
{
    size_t n = 0;
    while (step(f, count)) {
        CHECK(++n < 100000);
    }
    return n;
}

/* Stored values of the sealed dbs under `version` (0: plaintext). */
static uint64_t census(struct fx *f, uint32_t version)
{
    struct kyufu_storage_key_census c;
    CHECK_EQ(kyufu_storage_key_census(f->s, &c), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < c.n; i++) {
        if (c.items[i].version == version) {
            n = c.items[i].values;
        }
    }
    kyufu_storage_key_census_free(&c);
    return n;
}

static uint64_t census_total(struct fx *f)
{
    struct kyufu_storage_key_census c;
    CHECK_EQ(kyufu_storage_key_census(f->s, &c), 0);
    uint64_t n = 0;
    for (size_t i = 0; i < c.n; i++) {
        n += c.items[i].values;
    }
    kyufu_storage_key_census_free(&c);
    return n;
}

/* Three replicas hold identical bytes (their state digests). */
static void same_digests(struct fx *a, struct fx *b, struct fx *c)
{
    uint8_t da[32], db[32], dc[32];
    fx_digest(a, da);
    fx_digest(b, db);
    fx_digest(c, dc);
    CHECK(memcmp(da, db, 32) == 0);
    CHECK(memcmp(da, dc, 32) == 0);
}

static void check_reads(struct fx *f, size_t households)
{
    struct kyufu_storage_page page;
    CHECK_EQ(kyufu_storage_list_households(f->s, NULL, 1000, &page), 0);
    CHECK_EQ(page.n, households);
    kyufu_storage_page_free(&page);
    uint64_t n = 0;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_audit_verify(f->s, &n, err, sizeof err), 0);
    CHECK(n > 10);
    Kyufu__V1__StaffAccount *a = fx_staff(f, "clerk");
    kyufu__v1__staff_account__free_unpacked(a, NULL);
    fx_invariants(f);
}

/* Flip one byte in the middle of the stored value of (db, key). */
static void flip(struct fx *f, unsigned db, const char *key)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key}, v;
    CHECK(mdb_txn_begin(f->s->env, NULL, 0, &txn) == 0);
    CHECK(mdb_get(txn, f->s->dbi[db], &k, &v) == 0);
    uint8_t *copy = malloc(v.mv_size);
    CHECK(copy != NULL);
    memcpy(copy, v.mv_data, v.mv_size);
    copy[v.mv_size / 2] ^= 0x04;
    MDB_val nv = {v.mv_size, copy};
    CHECK(mdb_put(txn, f->s->dbi[db], &k, &nv, 0) == 0);
    CHECK(mdb_txn_commit(txn) == 0);
    free(copy);
}

static uint32_t stored_version(struct fx *f, unsigned db, const char *key)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key}, v;
    CHECK(mdb_txn_begin(f->s->env, NULL, MDB_RDONLY, &txn) == 0);
    CHECK(mdb_get(txn, f->s->dbi[db], &k, &v) == 0);
    uint32_t version = kyufu_storage__sealed_version(v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    return version;
}

/* ------------------------------------------------------------ cases */

/* New writes use the new version at once; old values read on, also after
 * a restart; the rotation is audited. */
static void rotate_new_writes_old_reads(void)
{
    struct fx f;
    world(&f, true);
    uint64_t total = census_total(&f);
    CHECK(total > 20);
    CHECK_EQ(census(&f, 1), total);
    uint64_t audit0 = fx_audit_count(&f);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    CHECK_EQ(kyufu_storage_keys_active(f.s), 2);
    Kyufu__V1__AuditRecord *a = fx_audit(&f, audit0 + 1);
    CHECK_STR(a->command, "RotateKeys");
    CHECK_STR(a->actor, "oper");
    CHECK_STR(a->object, "keys/2");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK_EQ(r->version, 2);
    CHECK(!r->done);
    CHECK_EQ(r->db, KYUFU_DB_HOUSEHOLDS);
    CHECK_STR(r->rotated_by, "oper");
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    /* The rotation's own audit record and session entry are version 2. */
    CHECK(census(&f, 2) >= 2);
    fx_do(&f, c_register_household(&f, "clerk", "H-NEW"));
    CHECK_EQ(stored_version(&f, KYUFU_DB_HOUSEHOLDS, "H-NEW"), 2);
    CHECK_EQ(stored_version(&f, KYUFU_DB_HOUSEHOLDS, "H-1"), 1);
    fx_do(&f, c_update_household(&f, "clerk", "H-1", 1));
    CHECK_EQ(stored_version(&f, KYUFU_DB_HOUSEHOLDS, "H-1"), 2);
    check_reads(&f, 5);
    fx_reopen(&f);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 2);
    CHECK_EQ(stored_version(&f, KYUFU_DB_HOUSEHOLDS, "H-2"), 1);
    check_reads(&f, 5);
    /* A second rotation names the version it makes. */
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 3)));
    CHECK_EQ(kyufu_storage_keys_active(f.s), 3);
    fx_close(&f);
}

/* In one entry: a write before the rotation seals under the old version,
 * one after it under the new; a replica applying the same entry agrees. */
static void rotate_inside_entry(void)
{
    struct fx a, b;
    world(&a, true);
    world(&b, true);
    struct fx *fs[] = {&a, &b};
    for (size_t i = 0; i < 2; i++) {
        struct fx *f = fs[i];
        Kyufu__V1__Command *cmds[3] = {
            c_register_household(f, "clerk", "H-X"),
            c_rotate(f, "oper", 2),
            c_register_household(f, "clerk", "H-Y"),
        };
        Kyufu__V1__CommandResult *res[3];
        fx_apply_batch(f, cmds, 3, res);
        for (size_t j = 0; j < 3; j++) {
            CHECK_CODE(res[j], KYUFU__V1__CODE__OK);
            fx_free(res[j]);
            kyufu__v1__command__free_unpacked(cmds[j], NULL);
        }
        CHECK_EQ(stored_version(f, KYUFU_DB_HOUSEHOLDS, "H-X"), 1);
        CHECK_EQ(stored_version(f, KYUFU_DB_HOUSEHOLDS, "H-Y"), 2);
        CHECK_EQ(kyufu_storage_keys_active(f->s), 2);
    }
    uint8_t da[32], db[32];
    fx_digest(&a, da);
    fx_digest(&b, db);
    CHECK(memcmp(da, db, 32) == 0);
    fx_close(&a);
    fx_close(&b);
}

/* Refusals change nothing but their audit record: another role, a cluster
 * before version 5, a version that is not the next, a store without keys. */
static void rotate_refused(void)
{
    struct fx f;
    fx_open_keyed(&f, true);
    fx_world(&f);
    fx_version(&f, 4);
    fx_free(fx_apply_ok(&f, c_create_staff(&f, "admin", "oper", R_OPERATOR)));
    fx_reject(&f, c_rotate(&f, "oper", 0),
              KYUFU__V1__CODE__FAILED_PRECONDITION); /* cluster version 4 */
    fx_version(&f, 5);
    fx_reject(&f, c_rotate(&f, "clerk", 0),
              KYUFU__V1__CODE__PERMISSION_DENIED);
    fx_reject(&f, c_rotate(&f, "oper", 1),
              KYUFU__V1__CODE__FAILED_PRECONDITION);
    fx_reject(&f, c_rotate(&f, "oper", 3),
              KYUFU__V1__CODE__FAILED_PRECONDITION);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 1);
    Kyufu__V1__KeyRotation *r = NULL;
    CHECK_EQ(kyufu_storage_key_rotation(f.s, &r, NULL),
             KYUFU_STORAGE_ENOTFOUND);
    fx_close(&f);

    world(&f, false);
    fx_reject(&f, c_rotate(&f, "oper", 0),
              KYUFU__V1__CODE__FAILED_PRECONDITION);
    fx_close(&f);
}

/* Re-encryption in small steps through every sealed db: every value ends
 * under version 2 and reads back; the record says done. */
static void reencrypt_everything(void)
{
    struct fx f;
    world(&f, true);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    uint64_t old = census(&f, 1);
    CHECK(old > 20);
    size_t steps = drive(&f, 3);
    CHECK(steps > 7); /* several steps, across the dbs */
    CHECK_EQ(census(&f, 1), 0);
    CHECK_EQ(census(&f, 0), 0);
    CHECK_EQ(census(&f, 2), census_total(&f));
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK(r->done);
    CHECK_EQ(r->resealed, old);
    CHECK(r->done_index > r->rotated_index);
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    check_reads(&f, 4);
    /* Done: a further step is refused and changes nothing. */
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, KYUFU_DB_AUTH_SESSION, NULL, 0,
                                        10)),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    CHECK_EQ(census(&f, 2), census_total(&f));
    fx_close(&f);
}

/* Two replicas applying the same entries (re-encryption steps interleaved
 * with writes) hold the same bytes; a third restored from a snapshot
 * half-way goes on from the replicated cursor to the same bytes. */
static void reencrypt_replicas_identical(void)
{
    struct fx a, b, c;
    world(&a, true);
    world(&b, true);
    fx_free(fx_apply_ok(&a, c_rotate(&a, "oper", 0)));
    fx_free(fx_apply_ok(&b, c_rotate(&b, "oper", 0)));
    char no[16];
    for (int i = 0; i < 4; i++) {
        CHECK(step(&a, 2));
        CHECK(step(&b, 2));
        snprintf(no, sizeof no, "H-W%d", i);
        fx_do(&a, c_register_household(&a, "clerk", no));
        fx_do(&b, c_register_household(&b, "clerk", no));
    }
    fx_open_keyed(&c, true);
    fx_restore_from(&c, &a);
    c.seq = a.seq;
    c.now_ms = a.now_ms;
    CHECK_EQ(kyufu_storage_keys_active(c.s), 2);
    /* The same entries to all three from here. */
    for (;;) {
        bool sa = step(&a, 5), sb = step(&b, 5), sc = step(&c, 5);
        CHECK(sa == sb && sb == sc);
        if (!sa) {
            break;
        }
    }
    same_digests(&a, &b, &c);
    CHECK_EQ(census(&c, 1), 0);
    check_reads(&c, 8);
    fx_close(&a);
    fx_close(&b);
    fx_close(&c);
}

/* A step that is not at the cursor (repeated, stale, another db or
 * version) or asks for too much is refused and changes nothing. */
static void reencrypt_stale_refused(void)
{
    struct fx f;
    world(&f, true);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, KYUFU_DB_HOUSEHOLDS, NULL, 0,
                                        5)),
             KYUFU__V1__CODE__FAILED_PRECONDITION); /* never rotated */
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    uint64_t v1 = census(&f, 1);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, KYUFU_DB_HOUSEHOLDS, NULL, 0,
                                        2)),
             KYUFU__V1__CODE__OK);
    CHECK_EQ(census(&f, 1), v1 - 2);
    /* The same step again (a new leader repeating it): refused. */
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, KYUFU_DB_HOUSEHOLDS, NULL, 0,
                                        2)),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK_EQ(r->next_key.len, 3);
    CHECK(memcmp(r->next_key.data, "H-3", 3) == 0);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 1, r->db, r->next_key.data,
                                        r->next_key.len, 2)),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, KYUFU_DB_AUDIT,
                                        r->next_key.data, r->next_key.len,
                                        2)),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, r->db, (const uint8_t *)"H-4",
                                        3, 2)),
             KYUFU__V1__CODE__FAILED_PRECONDITION);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, r->db, r->next_key.data,
                                        r->next_key.len, 0)),
             KYUFU__V1__CODE__INVALID_ARGUMENT);
    CHECK_EQ(apply_code(&f, c_reencrypt(&f, 2, r->db, r->next_key.data,
                                        r->next_key.len,
                                        KYUFU_REENCRYPT_COUNT_MAX + 1)),
             KYUFU__V1__CODE__INVALID_ARGUMENT);
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    CHECK_EQ(census(&f, 1), v1 - 2);
    fx_close(&f);
}

/* The cursor is replicated state: a restart goes on where it stopped; a
 * rotation during re-encryption starts it again under the newest. */
static void reencrypt_resumes(void)
{
    struct fx f;
    world(&f, true);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    CHECK(step(&f, 3)); /* H-1..H-3: the cursor stops inside the db */
    Kyufu__V1__KeyRotation *before = rotation(&f);
    CHECK_EQ(before->db, KYUFU_DB_HOUSEHOLDS);
    CHECK_EQ(before->next_key.len, 3);
    CHECK(memcmp(before->next_key.data, "H-4", 3) == 0);
    fx_reopen(&f);
    Kyufu__V1__KeyRotation *after = rotation(&f);
    CHECK_EQ(after->db, before->db);
    CHECK_EQ(after->resealed, before->resealed);
    CHECK_EQ(after->next_key.len, before->next_key.len);
    CHECK(memcmp(after->next_key.data, before->next_key.data,
                 before->next_key.len) == 0);
    kyufu__v1__key_rotation__free_unpacked(before, NULL);
    kyufu__v1__key_rotation__free_unpacked(after, NULL);
    CHECK(step(&f, 4));
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 3)));
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK_EQ(r->version, 3);
    CHECK_EQ(r->db, KYUFU_DB_HOUSEHOLDS);
    CHECK_EQ(r->next_key.len, 0);
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    drive(&f, 50);
    CHECK_EQ(census(&f, 3), census_total(&f));
    check_reads(&f, 4);
    fx_close(&f);
}

/* A damaged value: the step that meets it fails whole (nothing applied);
 * a re-encrypted value that is damaged later fails authentication. */
static void reencrypt_tamper_detected(void)
{
    struct fx f;
    world(&f, true);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    flip(&f, KYUFU_DB_HOUSEHOLDS, "H-2");
    uint64_t index0 = 0, term0 = 0, index1 = 0;
    kyufu_storage_applied(f.s, &index0, &term0);
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    Kyufu__V1__Command *c = c_reencrypt(&f, 2, KYUFU_DB_HOUSEHOLDS, NULL, 0,
                                        10);
    batch.n_commands = 1;
    batch.commands = &c;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_apply(f.s, f.index + 1, f.term, &batch, NULL, err,
                                 sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    kyufu__v1__command__free_unpacked(c, NULL);
    kyufu_storage_applied(f.s, &index1, &term0);
    CHECK_EQ(index1, index0);
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK_EQ(r->resealed, 0);
    CHECK_EQ(r->next_key.len, 0);
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    fx_close(&f);

    world(&f, true);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    drive(&f, 7);
    CHECK_EQ(stored_version(&f, KYUFU_DB_HOUSEHOLDS, "H-3"), 2);
    flip(&f, KYUFU_DB_HOUSEHOLDS, "H-3");
    Kyufu__V1__Household *h = NULL;
    CHECK_EQ(kyufu_storage_get_household(f.s, "H-3", &h),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(h == NULL);
    fx_close(&f);
}

/* A store written before keys: re-encryption seals its plaintext values
 * (docs/encryption.md "Upgrading a cluster", step 4). */
static void reencrypt_seals_plaintext(void)
{
    struct fx f;
    world(&f, false);
    uint64_t plain = census(&f, 0);
    CHECK(plain > 20);
    f.cmk = true;
    fx_reopen(&f);
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    CHECK(census(&f, 0) > 0);
    drive(&f, 11);
    CHECK_EQ(census(&f, 0), 0);
    CHECK_EQ(census(&f, 2), census_total(&f));
    check_reads(&f, 4);
    fx_close(&f);
}

/* ------------------------------------------------------ the seal limit */

/* The seals counted under the active version (0 when none are). */
static uint64_t seals(struct fx *f)
{
    struct kyufu_storage_key_seals k;
    CHECK_EQ(kyufu_storage_key_seals(f->s, &k), 0);
    CHECK(k.limit > 0);
    if (k.version == 0) {
        CHECK(!k.counted);
        CHECK_EQ(k.count, 0);
        return 0;
    }
    CHECK_EQ(k.version, kyufu_storage_keys_active(f->s));
    CHECK(k.counted);
    return k.count;
}

/* A keyed world at cluster version 6 whose store rotates after `limit`
 * seals. */
static void world_counting(struct fx *f, uint64_t limit)
{
    world(f, true);
    f->seal_limit = limit;
    fx_reopen(f);
    fx_version(f, KYUFU_SEAL_COUNT_SINCE);
}

/* Below cluster version 6 nothing is counted, whatever the limit; from it
 * every entry counts its payload and each value it sealed: a registration
 * (which only adds values) exactly those plus one, a refusal its audit
 * record plus one.  An operator's rotation starts the count again; the
 * count survives a restart. */
static void seals_counted_from_version_6(void)
{
    struct fx f;
    world(&f, true);
    f.seal_limit = 5;
    fx_reopen(&f);
    char no[16];
    for (int i = 0; i < 20; i++) {
        snprintf(no, sizeof no, "H-B%d", i);
        fx_do(&f, c_register_household(&f, "clerk", no));
    }
    CHECK_EQ(seals(&f), 0);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 1);
    f.seal_limit = 0;
    fx_reopen(&f);
    fx_version(&f, KYUFU_SEAL_COUNT_SINCE);
    uint64_t before = seals(&f);
    /* The first count starts at the entries since version 1 was active
     * (each sealed its payload at least), then this entry's own. */
    CHECK(before >= f.index);
    for (int i = 0; i < 3; i++) {
        uint64_t values = census_total(&f);
        before = seals(&f);
        snprintf(no, sizeof no, "H-C%d", i);
        fx_do(&f, c_register_household(&f, "clerk", no));
        uint64_t added = census_total(&f) - values;
        CHECK(added >= 2); /* the household and its audit record at least */
        CHECK_EQ(seals(&f) - before, added + 1);
    }
    before = seals(&f);
    fx_reject(&f, c_rotate(&f, "clerk", 0),
              KYUFU__V1__CODE__PERMISSION_DENIED);
    CHECK(seals(&f) - before >= 2);
    struct kyufu_storage_key_seals k;
    CHECK_EQ(kyufu_storage_key_seals(f.s, &k), 0);
    CHECK_EQ(k.limit, KYUFU_STORAGE_SEAL_LIMIT);
    CHECK(k.counted && k.version == 1);
    before = k.count;
    fx_free(fx_apply_ok(&f, c_rotate(&f, "oper", 0)));
    CHECK_EQ(kyufu_storage_keys_active(f.s), 2);
    CHECK(seals(&f) >= 1 && seals(&f) < before);
    uint64_t now = seals(&f);
    fx_reopen(&f);
    CHECK_EQ(seals(&f), now);
    fx_close(&f);
}

/* Register households until the active version is `version` (apply_code,
 * not fx_do: the entry that reaches the limit appends a second audit
 * record); the count never reaches the limit after an entry.  How many it
 * took. */
static int write_until(struct fx *f, uint32_t version, const char *prefix)
{
    char no[24];
    int i = 0;
    while (kyufu_storage_keys_active(f->s) < version) {
        CHECK(i < 200);
        snprintf(no, sizeof no, "%s%d", prefix, i++);
        CHECK_EQ(apply_code(f, c_register_household(f, "clerk", no)),
                 KYUFU__V1__CODE__OK);
        CHECK(seals(f) < f->seal_limit);
    }
    CHECK_EQ(kyufu_storage_keys_active(f->s), version);
    return i;
}

/* At the limit apply rotates by itself in the entry that reached it, with
 * an audit record by KYUFU_SEAL_LIMIT_ACTOR and the same re-encryption as
 * an operator's rotation; the next limit rotates again. */
static void seal_limit_rotates(void)
{
    struct fx f;
    world_counting(&f, 200);
    int n = write_until(&f, 2, "H-L");
    CHECK(n > 2);
    size_t households = 4 + (size_t)n; /* the world's and these */
    uint64_t last = fx_audit_count(&f);
    Kyufu__V1__AuditRecord *a = fx_audit(&f, last);
    CHECK_STR(a->command, "RotateKeys");
    CHECK_STR(a->actor, KYUFU_SEAL_LIMIT_ACTOR);
    CHECK_STR(a->object, "keys/2");
    CHECK_EQ(a->outcome, KYUFU__V1__CODE__OK);
    CHECK_EQ(a->raft_index, f.index);
    CHECK(strstr(a->message, "reached the limit of 200") != NULL);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    a = fx_audit(&f, last - 1); /* the registration of the same entry */
    CHECK_STR(a->command, "RegisterHousehold");
    CHECK_EQ(a->raft_index, f.index);
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    Kyufu__V1__KeyRotation *r = rotation(&f);
    CHECK_EQ(r->version, 2);
    CHECK(!r->done);
    CHECK_STR(r->rotated_by, KYUFU_SEAL_LIMIT_ACTOR);
    CHECK_EQ(r->rotated_index, f.index);
    kyufu__v1__key_rotation__free_unpacked(r, NULL);
    CHECK(seals(&f) <= 1);
    CHECK(census(&f, 1) > 20);
    /* Re-encryption at the cursor, as after an operator's rotation.  Its
     * steps count too: under a limit this low they would reach the next
     * before the store is re-sealed (each rotation restarts the cursor),
     * so the store runs with the real limit meanwhile. */
    f.seal_limit = 0;
    fx_reopen(&f);
    drive(&f, 7);
    CHECK_EQ(census(&f, 1), 0);
    check_reads(&f, households);
    uint64_t counted = seals(&f);
    CHECK(counted > census(&f, 2)); /* every re-sealed value, and more */
    /* Lowered below what is counted: the next entry rotates. */
    f.seal_limit = 100;
    fx_reopen(&f);
    CHECK_EQ(apply_code(&f, c_register_household(&f, "clerk", "H-N")),
             KYUFU__V1__CODE__OK);
    CHECK_EQ(kyufu_storage_keys_active(f.s), 3);
    write_until(&f, 4, "H-M");
    fx_invariants(&f);
    fx_close(&f);
}

/* Replicas apply the same entries with the same limit: the same count,
 * the rotation at the same index, identical bytes; a replica restored from
 * a snapshot before the limit goes on counting from the snapshot's. */
static void seal_limit_replicas_identical(void)
{
    struct fx a, b, c;
    world_counting(&a, 50);
    world_counting(&b, 50);
    char no[16];
    for (int i = 0; i < 3; i++) {
        snprintf(no, sizeof no, "H-R%d", i);
        fx_do(&a, c_register_household(&a, "clerk", no));
        fx_do(&b, c_register_household(&b, "clerk", no));
    }
    CHECK_EQ(kyufu_storage_keys_active(a.s), 1);
    fx_open_keyed(&c, true);
    c.seal_limit = 50;
    fx_reopen(&c);
    fx_restore_from(&c, &a);
    c.seq = a.seq;
    c.now_ms = a.now_ms;
    CHECK_EQ(seals(&c), seals(&a));
    struct fx *fs[] = {&a, &b, &c};
    uint64_t audit0 = fx_audit_count(&a);
    for (int i = 3; kyufu_storage_keys_active(a.s) < 3; i++) {
        CHECK(i < 200);
        snprintf(no, sizeof no, "H-R%d", i);
        for (size_t j = 0; j < 3; j++) {
            CHECK_EQ(apply_code(fs[j], c_register_household(fs[j], "clerk", no)),
                     KYUFU__V1__CODE__OK);
        }
        CHECK_EQ(kyufu_storage_keys_active(b.s), kyufu_storage_keys_active(a.s));
        CHECK_EQ(kyufu_storage_keys_active(c.s), kyufu_storage_keys_active(a.s));
        CHECK_EQ(seals(&b), seals(&a));
        CHECK_EQ(seals(&c), seals(&a));
    }
    same_digests(&a, &b, &c);
    fx_invariants(&a);
    fx_invariants(&c);
    CHECK(fx_audit_count(&a) > audit0);
    fx_close(&a);
    fx_close(&b);
    fx_close(&c);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(rotate_new_writes_old_reads),
        T_CASE(rotate_inside_entry),
        T_CASE(rotate_refused),
        T_CASE(reencrypt_everything),
        T_CASE(reencrypt_replicas_identical),
        T_CASE(reencrypt_stale_refused),
        T_CASE(reencrypt_resumes),
        T_CASE(reencrypt_tamper_detected),
        T_CASE(reencrypt_seals_plaintext),
        T_CASE(seals_counted_from_version_6),
        T_CASE(seal_limit_rotates),
        T_CASE(seal_limit_replicas_identical),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
