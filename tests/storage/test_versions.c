/* Upgrades in the state machine (storage.h "versions", docs/operations.md
 * "Upgrades"): the replicated cluster version, the gate on command types
 * newer than it, and the stop (KYUFU_STORAGE_ENEWER, nothing changed) on an
 * entry or a store this build does not fully know, where a rejection would
 * make an old replica diverge from its upgraded peers.
 *
 * Built twice: against kyufud's storage (command set N) and, with
 * -DKYUFU_NEXT_VERSION, against the test build's (N + 1, which knows
 * Annotate).  Written from storage/storage.h, storage/storage_limits.h and
 * docs/storage.md (the meta key written by hand below). */
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "kyufu_version.h"
#include "storage_limits.h"

#define OK KYUFU__V1__CODE__OK
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define DENIED KYUFU__V1__CODE__PERMISSION_DENIED
#define FAILED KYUFU__V1__CODE__FAILED_PRECONDITION

#ifdef KYUFU_NEXT_VERSION
#define OWN (KYUFU_COMMAND_SET_VERSION + 1u)
#else
#define OWN KYUFU_COMMAND_SET_VERSION
#endif

/* RecordVersions of n voters, ids 1..n, with these versions. */
static Kyufu__V1__Command *c_versions(struct fx *f, const char *actor,
                                      const uint32_t *versions, size_t n)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    Kyufu__V1__RecordVersions *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    kyufu__v1__record_versions__init(r);
    r->voters = calloc(n + 1, sizeof *r->voters);
    CHECK(r->voters != NULL);
    for (size_t i = 0; i < n; i++) {
        r->voters[i] = calloc(1, sizeof *r->voters[i]);
        CHECK(r->voters[i] != NULL);
        kyufu__v1__node_version__init(r->voters[i]);
        r->voters[i]->node_id = i + 1;
        r->voters[i]->command_version = versions[i];
    }
    r->n_voters = n;
    c->body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
    c->record_versions = r;
    return c;
}

static Kyufu__V1__Command *c_annotate(struct fx *f, const char *actor,
                                      const char *text)
{
    Kyufu__V1__Command *c = c_new(f, actor);
    Kyufu__V1__Annotate *a = calloc(1, sizeof *a);
    CHECK(a != NULL);
    kyufu__v1__annotate__init(a);
    c_str(&a->text, text);
    c->body_case = KYUFU__V1__COMMAND__BODY_ANNOTATE;
    c->annotate = a;
    return c;
}

static uint32_t cluster_of(struct fx *f)
{
    uint32_t v = 0;
    CHECK_EQ(kyufu_storage_cluster_version(f->s, &v, NULL), 0);
    return v;
}

/* Apply c (freed) as one entry and require the code; the result has no
 * record (neither RecordVersions nor Annotate makes one). */
static void apply_code(struct fx *f, Kyufu__V1__Command *c,
                       Kyufu__V1__Code want)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    CHECK_CODE(r, want);
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
}

/* Apply c (freed) and require the stop: NEWER, fatal, and nothing of the
 * entry written (applied index and digest as before). */
static void apply_newer(struct fx *f, Kyufu__V1__Command *c)
{
    uint8_t before[32], after[32];
    uint64_t index = 0, term = 0;
    fx_digest(f, before);
    Kyufu__V1__CommandBatch batch = KYUFU__V1__COMMAND_BATCH__INIT;
    batch.n_commands = 1;
    batch.commands = &c;
    struct kyufu_storage_results res = {0};
    char err[256] = "";
    int rv = kyufu_storage_apply(f->s, f->index + 1, f->term, &batch, &res,
                                 err, sizeof err);
    CHECK_EQ(rv, KYUFU_STORAGE_ENEWER);
    CHECK(kyufu_storage_is_fatal(rv));
    CHECK_EQ(res.n, 0);
    kyufu_storage_applied(f->s, &index, &term);
    CHECK_EQ(index, f->index);
    fx_digest(f, after);
    CHECK(memcmp(before, after, 32) == 0);
    kyufu__v1__command__free_unpacked(c, NULL);
}

static void versions_of_this_build(void)
{
    struct fx f;
    fx_open(&f);
    CHECK_EQ(kyufu_storage_command_version(), OWN);
    CHECK_EQ(kyufu_storage_command_since(
                 KYUFU__V1__COMMAND__BODY_CREATE_PROGRAM), 1);
    CHECK_EQ(kyufu_storage_command_since(
                 KYUFU__V1__COMMAND__BODY_SETTLE_WRITE), 1);
    CHECK_EQ(kyufu_storage_command_since(
                 KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS), 1);
#ifdef KYUFU_NEXT_VERSION
    CHECK_EQ(kyufu_storage_command_since(KYUFU__V1__COMMAND__BODY_ANNOTATE),
             OWN);
#else
    /* The test command never ships in kyufud's command set. */
    CHECK_EQ(kyufu_storage_command_since(KYUFU__V1__COMMAND__BODY_ANNOTATE),
             0);
#endif
    CHECK_EQ(kyufu_storage_command_since(KYUFU__V1__COMMAND__BODY__NOT_SET),
             0);
    /* A new store: none recorded, read as 1. */
    Kyufu__V1__RecordVersions *voters = (void *)1;
    uint32_t v = 0;
    CHECK_EQ(kyufu_storage_cluster_version(f.s, &v, &voters), 0);
    CHECK_EQ(v, 1);
    CHECK(voters == NULL);
    fx_close(&f);
}

static void record_versions_rules(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    const uint32_t ones[3] = {1, 1, 1};
    /* Only a node proposes it: a staff account, even an administrator,
     * is refused and nothing changes. */
    fx_reject(&f, c_versions(&f, "admin", ones, 3), DENIED);
    /* Malformed lists. */
    fx_reject(&f, c_versions(&f, "kyufu-node-1", ones, 0), INVALID);
    uint32_t many[KYUFU_VOTERS_MAX + 1];
    for (size_t i = 0; i <= KYUFU_VOTERS_MAX; i++) {
        many[i] = 1;
    }
    fx_reject(&f, c_versions(&f, "kyufu-node-1", many, KYUFU_VOTERS_MAX + 1),
              INVALID);
    Kyufu__V1__Command *c = c_versions(&f, "kyufu-node-1", ones, 3);
    c->record_versions->voters[1]->node_id = 1; /* twice */
    fx_reject(&f, c, INVALID);
    c = c_versions(&f, "kyufu-node-1", ones, 3);
    c->record_versions->voters[0]->node_id = 5; /* out of order */
    fx_reject(&f, c, INVALID);
    c = c_versions(&f, "kyufu-node-1", ones, 3);
    c->record_versions->voters[2]->node_id = 0;
    fx_reject(&f, c, INVALID);
    c = c_versions(&f, "kyufu-node-1", ones, 3);
    c->record_versions->voters[2]->command_version = 0;
    fx_reject(&f, c, INVALID);
    CHECK_EQ(cluster_of(&f), 1);

    /* The limit itself is accepted; then the list a leader records. */
    apply_code(&f, c_versions(&f, "kyufu-node-1", many, KYUFU_VOTERS_MAX), OK);
    uint64_t audits = fx_audit_count(&f);
    apply_code(&f, c_versions(&f, "kyufu-node-2", ones, 3), OK);
    CHECK_EQ(fx_audit_count(&f), audits + 1);
    Kyufu__V1__AuditRecord *a = fx_audit(&f, audits + 1);
    CHECK_STR(a->command, "RecordVersions");
    CHECK_STR(a->actor, "kyufu-node-2");
    CHECK_STR(a->object, "cluster/version");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    Kyufu__V1__RecordVersions *voters = NULL;
    uint32_t v = 0;
    CHECK_EQ(kyufu_storage_cluster_version(f.s, &v, &voters), 0);
    CHECK_EQ(v, 1);
    CHECK(voters != NULL);
    CHECK_EQ(voters->n_voters, 3);
    CHECK_EQ(voters->voters[2]->node_id, 3);
    CHECK_EQ(voters->voters[2]->command_version, 1);
    kyufu__v1__record_versions__free_unpacked(voters, NULL);
    fx_invariants(&f);
    fx_close(&f);
}

/* Every voter knows more than this build: its peers apply the entry, so
 * this replica must not reject it; it stops with nothing written. */
static void newer_cluster_stops_unapplied(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    const uint32_t above[3] = {OWN + 1, OWN + 1, OWN + 1};
    apply_newer(&f, c_versions(&f, "kyufu-node-1", above, 3));
    /* One voter at this build's version: the cluster stays here. */
    const uint32_t mixed[3] = {OWN + 1, OWN, OWN + 1};
    apply_code(&f, c_versions(&f, "kyufu-node-1", mixed, 3), OK);
    CHECK_EQ(cluster_of(&f), OWN);
    fx_close(&f);
}

#ifndef KYUFU_NEXT_VERSION
/* A command type protobuf knows but this build's command set does not
 * (kyufud meeting the test build's Annotate): the stop, not the
 * "unknown command" rejection that made replicas diverge. */
static void unknown_type_stops_unapplied(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    apply_newer(&f, c_annotate(&f, "admin", "hello"));
    /* A command without a body stays a rejection: every build agrees. */
    Kyufu__V1__Command *c = c_new(&f, "admin");
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}
#else
/* The rolling upgrade as the state machine sees it. */
static void new_type_gated_by_cluster_version(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    /* Before the cluster version rises, every replica that knows the type
     * rejects it alike. */
    fx_reject(&f, c_annotate(&f, "admin", "too early"), FAILED);
    const uint32_t two_of_three[3] = {OWN, OWN, OWN - 1};
    apply_code(&f, c_versions(&f, "kyufu-node-1", two_of_three, 3), OK);
    CHECK_EQ(cluster_of(&f), OWN - 1);
    fx_reject(&f, c_annotate(&f, "admin", "still early"), FAILED);
    const uint32_t all[3] = {OWN, OWN, OWN};
    apply_code(&f, c_versions(&f, "kyufu-node-3", all, 3), OK);
    CHECK_EQ(cluster_of(&f), OWN);
    uint64_t audits = fx_audit_count(&f);
    apply_code(&f, c_annotate(&f, "clerk", "after the upgrade"), OK);
    CHECK_EQ(fx_audit_count(&f), audits + 1);
    Kyufu__V1__AuditRecord *a = fx_audit(&f, audits + 1);
    CHECK_STR(a->command, "Annotate");
    CHECK_STR(a->object, "annotation");
    kyufu__v1__audit_record__free_unpacked(a, NULL);
    fx_reject(&f, c_annotate(&f, "clerk", ""), INVALID);
    fx_reject(&f, c_annotate(&f, "clerk", rep('a', KYUFU_ANNOTATION_BYTES_MAX + 1)),
              INVALID);
    apply_code(&f, c_annotate(&f, "clerk", rep('a', KYUFU_ANNOTATION_BYTES_MAX)),
               OK);
    /* Never lowered: a downgraded voter's report does not take it back. */
    const uint32_t old[3] = {OWN - 1, OWN - 1, OWN - 1};
    apply_code(&f, c_versions(&f, "kyufu-node-1", old, 3), OK);
    CHECK_EQ(cluster_of(&f), OWN);
    fx_close(&f);
}
#endif

static size_t put_varint(uint8_t *out, size_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7) {
        out[n++] = (uint8_t)(v | 0x80);
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* A field this build does not know, in the batch, the command or inside
 * its body: a newer build put it there and would apply it; this one
 * stops. */
static void unknown_field_stops_unapplied(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    static const uint8_t field99[] = {0x98, 0x06, 0x01}; /* 99: varint 1 */
    /* Inside the body. */
    Kyufu__V1__Command *c = c_create_program(&f, "appr", "P9", 100000);
    size_t n = kyufu__v1__create_program__get_packed_size(c->create_program);
    uint8_t *buf = calloc(1, n + sizeof field99);
    CHECK(buf != NULL);
    kyufu__v1__create_program__pack(c->create_program, buf);
    memcpy(buf + n, field99, sizeof field99);
    kyufu__v1__create_program__free_unpacked(c->create_program, NULL);
    c->create_program =
        kyufu__v1__create_program__unpack(NULL, n + sizeof field99, buf);
    CHECK(c->create_program != NULL);
    CHECK_EQ(c->create_program->base.n_unknown_fields, 1);
    free(buf);
    apply_newer(&f, c);

    /* In the command itself, as bytes from the log. */
    c = c_create_program(&f, "appr", "P9", 100000);
    size_t cn = kyufu__v1__command__get_packed_size(c);
    /* Batch field 1 (commands), length-delimited: the command + field 99. */
    size_t total = cn + sizeof field99;
    uint8_t *entry = calloc(1, total + 12);
    CHECK(entry != NULL);
    size_t head = 0;
    entry[head++] = 0x0a;
    head += put_varint(entry + head, total);
    kyufu__v1__command__pack(c, entry + head);
    memcpy(entry + head + cn, field99, sizeof field99);
    struct kyufu_storage_results res = {0};
    char err[256] = "";
    uint64_t index = 0, term = 0;
    CHECK_EQ(kyufu_storage_apply_bytes(f.s, f.index + 1, f.term, entry,
                                       head + total, &res, err, sizeof err),
             KYUFU_STORAGE_ENEWER);
    CHECK(strstr(err, "field 99") != NULL);
    kyufu_storage_applied(f.s, &index, &term);
    CHECK_EQ(index, f.index);
    /* In the batch around it. */
    head = 1; /* the command alone, then field 99 of the batch */
    head += put_varint(entry + head, cn);
    kyufu__v1__command__pack(c, entry + head);
    size_t bn = head + cn;
    memcpy(entry + bn, field99, sizeof field99);
    CHECK_EQ(kyufu_storage_apply_bytes(f.s, f.index + 1, f.term, entry,
                                       bn + sizeof field99, &res, err,
                                       sizeof err),
             KYUFU_STORAGE_ENEWER);
    CHECK(strstr(err, "field 99 of CommandBatch") != NULL);
    kyufu_storage_applied(f.s, &index, &term);
    CHECK_EQ(index, f.index);
    free(entry);
    /* The same command without it applies (the stop was the field). */
    fx_do(&f, c);
    fx_close(&f);
}

/* A store whose cluster version is above this build's (the operator
 * started an old binary on an upgraded node's data) does not open. */
static void newer_store_refused_at_open(void)
{
    struct fx f;
    fx_open(&f);
    fx_world_v1(&f);
    fx_close(&f);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ(mdb_env_create(&env), 0);
    CHECK_EQ(mdb_env_set_maxdbs(env, KYUFU_MAX_DBS), 0);
    CHECK_EQ(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    CHECK_EQ(mdb_env_open(env, f.dir, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint8_t be[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)(OWN + 1)};
    MDB_val k = {strlen("cluster_version"), (void *)"cluster_version"};
    MDB_val v = {8, be};
    CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    struct kyufu_storage_options o = {0};
    o.path = f.dir;
    o.no_sync = true;
    struct kyufu_storage *s = NULL;
    char err[256] = "";
    CHECK_EQ(kyufu_storage_open(&o, &s, err, sizeof err),
             KYUFU_STORAGE_ENEWER);
    CHECK(strstr(err, "upgrade this node") != NULL);
    CHECK(s == NULL);

    /* At this build's own version it opens. */
    be[7] = (uint8_t)OWN;
    CHECK_EQ(mdb_env_create(&env), 0);
    CHECK_EQ(mdb_env_set_maxdbs(env, KYUFU_MAX_DBS), 0);
    CHECK_EQ(mdb_env_set_mapsize(env, (size_t)1 << 30), 0);
    CHECK_EQ(mdb_env_open(env, f.dir, 0, 0600), 0);
    CHECK_EQ(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    CHECK_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    CHECK_EQ(kyufu_storage_open(&o, &s, err, sizeof err), 0);
    kyufu_storage_close(s);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(versions_of_this_build),
        T_CASE(record_versions_rules),
        T_CASE(newer_cluster_stops_unapplied),
#ifndef KYUFU_NEXT_VERSION
        T_CASE(unknown_type_stops_unapplied),
#else
        T_CASE(new_type_gated_by_cluster_version),
#endif
        T_CASE(unknown_field_stops_unapplied),
        T_CASE(newer_store_refused_at_open),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
