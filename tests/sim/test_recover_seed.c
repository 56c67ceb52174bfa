/* raft-glue's offline operations on a stopped node's Raft folder
 * (raft-glue/recover.c, seed.c; docs/restore.md), on real raft_uv files in
 * a temporary folder:
 *
 *  - inspect refuses a folder with no log (CONFIG) and bad arguments;
 *  - seed writes a snapshot at the store's (index, term) with every peer a
 *    voter and sets the term: inspect reads back exactly that; seeding
 *    again, a node not among the peers, no peers, no store or a store at
 *    index 0 are refused;
 *  - recover: refused for a member that is not one (NOTFOUND), when the
 *    log changed since it was shown (STALE), each leaving the log as it
 *    was; then it makes the node the one voter (a configuration at the
 *    next index, with the address recorded for it), and a second recovery
 *    is refused (EXISTS);
 *  - the snapshot's content is the store's own snapshot stream, sealed
 *    (version 2) when the store holds a cluster master key: the stream's
 *    bytes are not in the file, and it opens back to exactly the stream
 *    with the store's key; plaintext (version 1) otherwise; written
 *    through an unnamed file that leaves nothing in the folder;
 *  - an open segment raft_uv would misread (a batch cut by the end of the
 *    file, segment_check.h) is refused (CORRUPT) before raft_uv reads it. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "frame.h"
#include "glue.h"
#include "seal.h"
#include "segment_check.h"
#include "storage.h"

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* An open segment whose one batch (valid header checksum) claims 8 bytes
 * of data the file does not have. */
static void cut_segment(const char *dir)
{
    uint8_t b[48];
    char path[512];
    memset(b, 0, sizeof b);
    put_le(b, 1, 8);       /* format */
    put_le(b + 16, 1, 8);  /* n entries */
    put_le(b + 24, 5, 8);  /* term */
    b[32] = 1;             /* RAFT_COMMAND */
    put_le(b + 36, 8, 4);  /* data length: beyond the file */
    put_le(b + 8, glue__segment_crc(b + 16, 24, 0), 4);
    snprintf(path, sizeof path, "%s/open-1", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    CHECK(fwrite(b, 1, 40, f) == 40);
    CHECK(fclose(f) == 0);
}

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* The snapshot data file (not .meta) in dir, malloc'd into *len bytes. */
static uint8_t *read_snapshot(const char *dir, size_t *len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024] = "";
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "snapshot-", 9) == 0 &&
            strstr(e->d_name, ".meta") == NULL) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    CHECK(path[0] != '\0');
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    CHECK(n > 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)n);
    CHECK(buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* A store at (index, term) whose one record names a canary staff id. */
static struct kyufu_storage *canary_store(const char *path, const uint8_t *cmk,
                                         uint64_t index, uint64_t term)
{
    struct kyufu_storage_options so;
    struct kyufu_storage *s = NULL;
    char err[256];
    memset(&so, 0, sizeof so);
    so.path = path;
    so.no_sync = true;
    CHECK(kyufu_storage_open(&so, &s, err, sizeof err) == 0);
    if (cmk != NULL) {
        kyufu_storage_keys_set(s, cmk);
    }
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__Command *cp = &c;
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    struct kyufu_storage_results res;
    key.client_id = "test-seed";
    key.sequence = 1;
    h.actor = "kanariyama";
    h.terminal = "t";
    h.time_ms = 1765000000000;
    h.key = &key;
    cs.staff_id = "kanariyama";
    cs.display_name = "Kanariyama Hisoka";
    cs.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    b.n_commands = 1;
    b.commands = &cp;
    CHECK(kyufu_storage_apply(s, index, term, &b, &res, err, sizeof err) == 0);
    kyufu_storage_results_free(&res);
    return s;
}

struct sink
{
    uint8_t *buf;
    size_t len;
};

static int sink_emit(void *arg, void *chunk, size_t len)
{
    struct sink *k = arg;
    k->buf = realloc(k->buf, k->len + len);
    CHECK(k->buf != NULL);
    memcpy(k->buf + k->len, chunk, len);
    k->len += len;
    free(chunk);
    return 0;
}

/* The raft folder holds only raft_uv's files. */
static void only_raft_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    CHECK(d != NULL);
    while ((e = readdir(d)) != NULL) {
        CHECK(e->d_name[0] == '.' || strncmp(e->d_name, "snapshot-", 9) == 0 ||
              strncmp(e->d_name, "metadata", 8) == 0);
    }
    closedir(d);
}

static void store_seed(bool keyed)
{
    char tmpl[] = "/tmp/kyufu-seed-store-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char err[512], path[600], raft[600];
    CHECK(dir != NULL);
    uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES];
    memset(cmk, 0x3c, sizeof cmk);
    struct kyufu_glue_peer peers[3] = {
        { 1, "127.0.0.1:7001", NULL },
        { 2, "127.0.0.1:7002", NULL },
        { 3, "127.0.0.1:7003", NULL },
    };
    snprintf(raft, sizeof raft, "%s/raft", dir);
    CHECK(mkdir(raft, 0700) == 0);

    /* A store that applied nothing: refused, nothing written. */
    snprintf(path, sizeof path, "%s/empty", dir);
    struct kyufu_storage_options so;
    struct kyufu_storage *e = NULL;
    memset(&so, 0, sizeof so);
    so.path = path;
    so.no_sync = true;
    CHECK(kyufu_storage_open(&so, &e, err, sizeof err) == 0);
    CHECK(kyufu_glue_seed_store(raft, 2, "127.0.0.1:7002", peers, 3, e, err,
                                sizeof err) == KYUFU_GLUE_EINVALID);
    kyufu_storage_close(e);

    snprintf(path, sizeof path, "%s/ledger", dir);
    struct kyufu_storage *s = canary_store(path, keyed ? cmk : NULL, 1, 2);
    CHECK(kyufu_glue_seed_store(raft, 2, "127.0.0.1:7002", peers, 3, s, err,
                                sizeof err) == 0);
    only_raft_files(raft);
    struct kyufu_glue_log_info info;
    CHECK(kyufu_glue_log_inspect(raft, 2, "127.0.0.1:7002", &info, err,
                                 sizeof err) == 0);
    CHECK(info.term == 2 && info.snapshot_index == 1 &&
          info.snapshot_term == 2 && info.n_members == 3);

    struct sink want = { NULL, 0 };
    struct kyufu_storage_snapshot *snap = NULL;
    CHECK(kyufu_storage_snapshot_begin(s, &snap) == 0);
    CHECK(kyufu_storage_snapshot_write(snap, NULL, sink_emit, &want) == 0);
    kyufu_storage_snapshot_end(snap);
    CHECK(memmem(want.buf, want.len, "kanariyama", 10) != NULL);

    size_t len;
    uint8_t *buf = read_snapshot(raft, &len);
    struct glue_snapshot_header h;
    CHECK(glue__snapshot_header_read(buf, len, &h));
    CHECK(h.raft_index == 1 && h.storage_index == 1 && h.storage_term == 2);
    size_t hl = glue__snapshot_header_size(&h);
    size_t plain = len - hl;
    if (keyed) {
        CHECK(h.key_version != 0);
        CHECK(memmem(buf, len, "kanariyama", 10) == NULL);
        struct glue_stream_key k;
        memset(&k, 0, sizeof k);
        /* The store's cluster version (its own state) decides the
         * format: 3 (the snapshot's own key) from the nonce bound's. */
        CHECK(h.own_key == glue__snapshot_own_key(s));
        CHECK(glue__snapshot_header_key(s, &h, &k) == 0);
        CHECK(glue__snapshot_open(&k, buf, len, hl, &plain, err,
                                  sizeof err) == 0);
        glue__stream_key_wipe(&k);
    } else {
        CHECK(h.key_version == 0);
    }
    CHECK(plain == want.len && memcmp(buf + hl, want.buf, plain) == 0);
    /* Seeding again: refused (the folder holds a log now). */
    CHECK(kyufu_glue_seed_store(raft, 2, "127.0.0.1:7002", peers, 3, s, err,
                                sizeof err) == KYUFU_GLUE_ECONFIG);
    only_raft_files(raft);
    free(buf);
    free(want.buf);
    kyufu_storage_close(s);
    rm_rf(dir);
}

int main(void)
{
    store_seed(false);
    store_seed(true);

    char tmpl[] = "/tmp/kyufu-recover-seed-XXXXXX";
    char *dir = mkdtemp(tmpl);
    char err[512];
    struct kyufu_glue_log_info info, again;
    CHECK(dir != NULL);

    /* Refusals of inspect. */
    CHECK(kyufu_glue_log_inspect(dir, 1, "127.0.0.1:1", &info, err, sizeof err) ==
          KYUFU_GLUE_ECONFIG);
    CHECK(strstr(err, "no Raft log") != NULL);
    CHECK(kyufu_glue_log_inspect(dir, 0, "127.0.0.1:1", &info, err, sizeof err) ==
          KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_log_inspect(NULL, 1, "127.0.0.1:1", &info, err, sizeof err) ==
          KYUFU_GLUE_EINVALID);

    /* Seed, from a store at index 57, term 3. */
    char stmpl[] = "/tmp/kyufu-recover-seed-store-XXXXXX";
    char *sdir = mkdtemp(stmpl);
    char spath[600];
    CHECK(sdir != NULL);
    snprintf(spath, sizeof spath, "%s/ledger", sdir);
    struct kyufu_storage *s57 = canary_store(spath, NULL, 57, 3);
    struct kyufu_storage_options eo;
    struct kyufu_storage *empty_store = NULL;
    snprintf(spath, sizeof spath, "%s/empty", sdir);
    memset(&eo, 0, sizeof eo);
    eo.path = spath;
    eo.no_sync = true;
    CHECK(kyufu_storage_open(&eo, &empty_store, err, sizeof err) == 0);
    struct kyufu_glue_peer peers[3] = {
        { 1, "127.0.0.1:7001", NULL },
        { 2, "127.0.0.1:7002", NULL },
        { 3, "127.0.0.1:7003 127.0.0.1:8003", NULL },
    };
    CHECK(kyufu_glue_seed_store(dir, 4, "127.0.0.1:7004", peers, 3, s57, err,
                                sizeof err) == KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_seed_store(dir, 1, "127.0.0.1:7001", peers, 3, empty_store,
                                err, sizeof err) == KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_seed_store(dir, 1, "127.0.0.1:7001", peers, 3, NULL, err,
                                sizeof err) == KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_seed_store(dir, 1, "127.0.0.1:7001", peers, 0, s57, err,
                                sizeof err) == KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_log_inspect(dir, 1, "127.0.0.1:7001", &info, err, sizeof err) ==
          KYUFU_GLUE_ECONFIG); /* the refusals wrote nothing */
    CHECK(kyufu_glue_seed_store(dir, 1, "127.0.0.1:7001", peers, 3, s57, err,
                                sizeof err) == 0);
    CHECK(kyufu_glue_log_inspect(dir, 1, "127.0.0.1:7001", &info, err, sizeof err) == 0);
    CHECK(info.term == 3 && info.snapshot_index == 57 && info.snapshot_term == 3);
    CHECK(info.last_index == 57 && info.last_term == 3);
    CHECK(info.configuration_index == 57 && info.n_members == 3);
    for (size_t i = 0; i < 3; i++) {
        CHECK(info.members[i].id == peers[i].id);
        CHECK(info.members[i].role == KYUFU_GLUE_ROLE_VOTER);
        CHECK(strcmp(info.members[i].raft_address, peers[i].address) == 0);
    }
    CHECK(strcmp(info.members[2].api_address, "127.0.0.1:8003") == 0);
    CHECK(kyufu_glue_seed_store(dir, 1, "127.0.0.1:7001", peers, 3, s57, err,
                                sizeof err) == KYUFU_GLUE_ECONFIG);
    CHECK(strstr(err, "already holds a Raft log") != NULL);
    kyufu_storage_close(s57);
    kyufu_storage_close(empty_store);
    rm_rf(sdir);

    /* Recover: refusals change nothing. */
    CHECK(kyufu_glue_recover(dir, 9, "127.0.0.1:7009", &info, err, sizeof err) ==
          KYUFU_GLUE_ENOTFOUND);
    CHECK(strstr(err, "not a member") != NULL);
    struct kyufu_glue_log_info stale = info;
    stale.last_index--;
    CHECK(kyufu_glue_recover(dir, 3, "127.0.0.1:7003", &stale, err, sizeof err) ==
          KYUFU_GLUE_ESTALE);
    CHECK(kyufu_glue_recover(dir, 3, "127.0.0.1:7003", NULL, err, sizeof err) ==
          KYUFU_GLUE_EINVALID);
    CHECK(kyufu_glue_log_inspect(dir, 3, "127.0.0.1:7003", &again, err, sizeof err) == 0);
    CHECK(again.last_index == 57 && again.n_members == 3 &&
          again.configuration_index == 57);

    /* Recover node 3: the one voter, its recorded address kept. */
    CHECK(kyufu_glue_recover(dir, 3, "127.0.0.1:7003", &info, err, sizeof err) == 0);
    CHECK(kyufu_glue_log_inspect(dir, 3, "127.0.0.1:7003", &again, err, sizeof err) == 0);
    CHECK(again.last_index == 58 && again.configuration_index == 58);
    CHECK(again.term == 3 && again.snapshot_index == 57);
    CHECK(again.n_members == 1 && again.members[0].id == 3);
    CHECK(again.members[0].role == KYUFU_GLUE_ROLE_VOTER);
    CHECK(strcmp(again.members[0].raft_address, peers[2].address) == 0);
    CHECK(kyufu_glue_recover(dir, 3, "127.0.0.1:7003", &again, err, sizeof err) ==
          KYUFU_GLUE_EEXISTS);

    rm_rf(dir);

    char tmpl2[] = "/tmp/kyufu-recover-cut-XXXXXX";
    dir = mkdtemp(tmpl2);
    CHECK(dir != NULL);
    cut_segment(dir);
    CHECK(kyufu_glue_log_inspect(dir, 1, "127.0.0.1:7001", &info, err, sizeof err) ==
          KYUFU_GLUE_ECORRUPT);
    CHECK(strstr(err, "open-1") != NULL); /* segment_check's reason */
    CHECK(kyufu_glue_recover(dir, 1, "127.0.0.1:7001", &again, err, sizeof err) ==
          KYUFU_GLUE_ECORRUPT);
    rm_rf(dir);
    printf("recover-seed: ok\n");
    return 0;
}
