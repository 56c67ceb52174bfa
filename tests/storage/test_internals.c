/* Internals of storage/: persistence, schema check, applied index in the
 * same txn, STALE, map growth up to MAP_FULL, session pruning, the lock,
 * malformed entries, tampered records, durability, the SHA-256 helper.
 * Snapshots and the streaming restore: test_storage_snapshots.c (the same
 * fixture, internals_fx.c).
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

#include "internals_fx.h"

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
    static const struct fx_test tests[] = {
        {"persistence", test_persistence},
        {"schema_mismatch", test_schema_mismatch},
        {"locked", test_locked},
        {"truncated_file", test_truncated_file},
        {"applied_and_stale", test_applied_and_stale},
        {"malformed_bytes", test_malformed_bytes},
        {"map_growth", test_map_growth},
        {"sessions", test_sessions},
        {"session_floor", test_session_floor},
        {"list_pages", test_list_pages},
        {"audit_tamper", test_audit_tamper},
        {"identity_tamper", test_identity_tamper},
        {"pending_tamper", test_pending_tamper},
        {"durable", test_durable},
        {"durable_syncing", test_durable_syncing},
        {"sha256", test_sha256},
    };

    return fx_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
