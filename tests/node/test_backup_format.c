/* The backup format (node/backup_format.h, docs/backup.md): chunk and key
 * sealing bound to their place, the manifest's strict parser, and a whole
 * backup written from a store's snapshot and verified, with the failures
 * verify must name (a re-signed manifest over a tampered chunk: the tag;
 * a wrong KEK; a failed write leaves nothing). */
#include <dirent.h>
#include <stdbool.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "../count_check.h"
#include "backup_format.h"
#include "backup_retention.h"


static const uint8_t id[KYUFU_BACKUP_ID_BYTES] = {1, 2, 3};
static const uint8_t id2[KYUFU_BACKUP_ID_BYTES] = {1, 2, 4};

static void test_chunks(void)
{
    uint8_t bk[32], in[1000], sealed[1000 + KYUFU_BACKUP_SEAL_OVERHEAD],
        out[1000];
    RAND_bytes(bk, sizeof bk);
    RAND_bytes(in, sizeof in);
    CHECKF(kyufu_backup_chunk_seal(bk, id, 7, false, in, sizeof in, sealed) == 0,
          "seal");
    CHECKF(kyufu_backup_chunk_open(bk, id, 7, false, sealed, sizeof sealed,
                                  out) == 0 &&
              memcmp(in, out, sizeof in) == 0,
          "round trip");
    CHECKF(kyufu_backup_chunk_open(bk, id, 8, false, sealed, sizeof sealed,
                                  out) == KYUFU_CRYPTO_EAUTH,
          "another position");
    CHECKF(kyufu_backup_chunk_open(bk, id, 7, true, sealed, sizeof sealed,
                                  out) == KYUFU_CRYPTO_EAUTH,
          "last flag");
    CHECKF(kyufu_backup_chunk_open(bk, id2, 7, false, sealed, sizeof sealed,
                                  out) == KYUFU_CRYPTO_EAUTH,
          "another backup");
    CHECKF(kyufu_backup_chunk_open(bk, id, 7, false, sealed, 27, out) ==
              KYUFU_CRYPTO_EINVALID,
          "shorter than nonce and tag");
    for (size_t at = 0; at < sizeof sealed; at += 97) {
        sealed[at] ^= 0x80;
        CHECKF(kyufu_backup_chunk_open(bk, id, 7, false, sealed, sizeof sealed,
                                      out) == KYUFU_CRYPTO_EAUTH,
              "flipped byte %zu", at);
        sealed[at] ^= 0x80;
    }
    /* Two seals of one piece differ (random nonces). */
    uint8_t again[sizeof sealed];
    kyufu_backup_chunk_seal(bk, id, 7, false, in, sizeof in, again);
    CHECKF(memcmp(again, sealed, sizeof sealed) != 0, "nonce repeated");
}

static void test_keys(void)
{
    uint8_t kek[32], kek2[32], key[32], w[KYUFU_BACKUP_WRAPPED_BYTES], out[32];
    RAND_bytes(kek, 32);
    RAND_bytes(kek2, 32);
    RAND_bytes(key, 32);
    CHECKF(kyufu_backup_key_wrap(kek, id, KYUFU_BACKUP_KEY_BK, key, w) == 0,
          "wrap");
    CHECKF(kyufu_backup_key_unwrap(kek, id, KYUFU_BACKUP_KEY_BK, w, out) == 0 &&
              memcmp(out, key, 32) == 0,
          "unwrap");
    CHECKF(kyufu_backup_key_unwrap(kek2, id, KYUFU_BACKUP_KEY_BK, w, out) ==
              KYUFU_CRYPTO_EAUTH,
          "wrong KEK");
    CHECKF(kyufu_backup_key_unwrap(kek, id, KYUFU_BACKUP_KEY_CMK, w, out) ==
              KYUFU_CRYPTO_EAUTH,
          "BK taken for the CMK");
    CHECKF(kyufu_backup_key_unwrap(kek, id2, KYUFU_BACKUP_KEY_BK, w, out) ==
              KYUFU_CRYPTO_EAUTH,
          "another backup's key");
}

static void test_names(void)
{
    CHECKF(kyufu_backup_name_ok("daily-2026-12-06_0200.b1"), "plain");
    CHECKF(!kyufu_backup_name_ok(""), "empty");
    CHECKF(!kyufu_backup_name_ok(".hidden"), "dot");
    CHECKF(!kyufu_backup_name_ok(".."), "dotdot");
    CHECKF(!kyufu_backup_name_ok("a/b"), "slash");
    CHECKF(!kyufu_backup_name_ok("a b"), "blank");
    CHECKF(!kyufu_backup_name_ok("\xe3\x81\x82"), "non-ASCII");
    char long_name[80];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    CHECKF(!kyufu_backup_name_ok(long_name), "too long");
}

static void test_manifest(void)
{
    struct kyufu_backup_chunk chunks[2] = {{4194332, {9}}, {100, {8}}};
    struct kyufu_backup_manifest m = {
        .node = 2, .applied_index = 1234, .applied_term = 3,
        .created_ms = 1765000000000, .stream_bytes = 4194304 + 72,
        .chunks = chunks, .n_chunks = 2, .has_cmk = true};
    memcpy(m.id, id, sizeof m.id);
    memset(m.cluster_id, 0xab, 32);
    memset(m.state_digest, 0xcd, 32);
    memset(m.bk_wrapped, 0x11, sizeof m.bk_wrapped);
    memset(m.cmk_wrapped, 0x22, sizeof m.cmk_wrapped);
    memset(m.cert_sha256, 0x33, 32);
    char *json = NULL, err[256];
    size_t len = 0;
    CHECKF(kyufu_backup_manifest_json(&m, &json, &len) == 0, "json");
    struct kyufu_backup_manifest p;
    CHECKF(kyufu_backup_manifest_parse(json, len, &p, err, sizeof err) == 0,
          "parse: %s", err);
    CHECKF(p.node == 2 && p.applied_index == 1234 && p.applied_term == 3 &&
              p.created_ms == m.created_ms && p.n_chunks == 2 &&
              p.chunks[0].bytes == 4194332 && p.chunks[1].sha256[0] == 8 &&
              p.has_cmk && memcmp(p.id, m.id, sizeof m.id) == 0 &&
              memcmp(p.cmk_wrapped, m.cmk_wrapped, sizeof m.cmk_wrapped) == 0 &&
              memcmp(p.state_digest, m.state_digest, 32) == 0,
          "round trip");
    kyufu_backup_manifest_free(&p);

    /* Hostile manifests: each refused with a reason. */
    struct { const char *from, *to; } edits[] = {
        {"\"version\": 1", "\"version\": 2"},
        {"\"node\": 2", "\"node\": 0"},
        {"\"node\": 2", "\"node\": \"2\""},
        {"\"node\": 2", "\"node\": -2"},
        {"\"applied_term\": 3", "\"applied_term\": 3, \"extra\": 1"},
        {"\"applied_term\": 3", "\"applied_term\": 3, \"node\": 5"},
        {"\"backup_id\": \"01", "\"backup_id\": \"0"},
        {"\"backup_id\": \"01", "\"backup_id\": \"0G"},
        {"\"backup_id\": \"01", "\"backup_id\": \"0A"},
        {"chunk-000001.bin", "chunk-000002.bin"},
        {"chunk-000001.bin", "../etc/passwd"},
        {"\"bytes\": 100", "\"bytes\": 27"},
        {"\"bytes\": 100", "\"bytes\": 99999999999"},
        {", \"sha256\"", ", \"sha\""},
        {"\"cmk_wrapped\": \"", "\"cmk_wrapped\": 7, \"x\": \""},
        {"{\"format\"", "[{\"format\""},
        {"\"chunks\": [", "\"chunks\": [], \"c\": ["},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        char *at = strstr(json, edits[i].from);
        CHECKF(at != NULL, "edit %zu: '%s' not in the manifest", i,
              edits[i].from);
        if (at == NULL) {
            continue;
        }
        size_t flen = strlen(edits[i].from), tlen = strlen(edits[i].to);
        char *bad = malloc(len + tlen + 1);
        memcpy(bad, json, (size_t)(at - json));
        memcpy(bad + (at - json), edits[i].to, tlen);
        strcpy(bad + (at - json) + tlen, at + flen);
        err[0] = '\0';
        CHECKF(kyufu_backup_manifest_parse(bad, strlen(bad), &p, err,
                                          sizeof err) != 0 &&
                  err[0] != '\0',
              "edit %zu (%s) accepted", i, edits[i].to);
        free(bad);
    }
    CHECKF(kyufu_backup_manifest_parse("", 0, &p, err, sizeof err) != 0,
          "empty");
    CHECKF(kyufu_backup_manifest_parse("{}", 2, &p, err, sizeof err) != 0,
          "no keys");
    free(json);
}

/* ---------------------------------------------- a whole backup, on disk */

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

static X509 *new_cert(EVP_PKEY *key, EVP_PKEY *signer, X509 *issuer,
                      const char *cn, const char *uri)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), issuer == NULL ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer)
                                           : name);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(
        NULL, &ctx, NID_basic_constraints,
        issuer == NULL ? "critical,CA:TRUE" : "CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (uri != NULL) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, uri);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, signer, EVP_sha256());
    return x;
}

static void write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *f = fopen(path, "w");
    if (cert != NULL) {
        PEM_write_X509(f, cert);
    } else {
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    }
    fclose(f);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") != 0 &&
                                     strcmp(e->d_name, "..") != 0);
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

/* Apply the bootstrap CreateStaff "admin" at index 1: on a keyed store
 * its record is sealed. */
static void add_admin(struct kyufu_storage *s)
{
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__Command *cp = &c;
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    struct kyufu_storage_results res;
    char err[256] = "";
    key.client_id = "test-backup";
    key.sequence = 1;
    h.actor = "admin";
    h.terminal = "t";
    h.time_ms = 1765000000000;
    h.key = &key;
    cs.staff_id = "admin";
    cs.display_name = "Administrator";
    cs.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    b.n_commands = 1;
    b.commands = &cp;
    CHECKF(kyufu_storage_apply(s, 1, 1, &b, &res, err, sizeof err) == 0,
          "apply: %s", err);
    kyufu_storage_results_free(&res);
}

/* The mount point above path: its highest ancestor (resolved) on the same
 * mount (statx's mount ids; no parsing of the mount table here, the
 * module under test does that). */
static bool mount_point_of(const char *path, char *out, size_t len)
{
    struct statx sx;
    uint64_t mnt;
    char real[PATH_MAX];
    if (realpath(path, real) == NULL ||
        statx(AT_FDCWD, real, 0, STATX_MNT_ID, &sx) != 0 ||
        !(sx.stx_mask & STATX_MNT_ID) ||
        snprintf(out, len, "%s", real) >= (int)len) {
        return false;
    }
    mnt = sx.stx_mnt_id;
    while (strcmp(out, "/") != 0) {
        char up[PATH_MAX];
        char *slash = strrchr(out, '/');
        snprintf(up, sizeof up, "%.*s", slash == out ? 1 : (int)(slash - out),
                 out);
        if (statx(AT_FDCWD, up, 0, STATX_MNT_ID, &sx) != 0 ||
            sx.stx_mnt_id != mnt) {
            break;
        }
        snprintf(out, len, "%s", up);
    }
    return true;
}

static void test_whole(void)
{
    char root[] = "/tmp/kyufu-test-backup-XXXXXX";
    if (mkdtemp(root) == NULL) {
        CHECKF(0, "mkdtemp");
        return;
    }
    char ca[300], cert[300], key[300], store[300], parent[300], b1[400],
        err[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", root);
    snprintf(cert, sizeof cert, "%s/node.pem", root);
    snprintf(key, sizeof key, "%s/node.key", root);
    snprintf(store, sizeof store, "%s/store", root);
    snprintf(parent, sizeof parent, "%s/backups", root);
    snprintf(b1, sizeof b1, "%s/b1", parent);
    mkdir(parent, 0700);
    EVP_PKEY *ca_key = new_key(), *node_key = new_key();
    X509 *ca_cert = new_cert(ca_key, ca_key, NULL, "test CA", NULL);
    X509 *node_cert = new_cert(node_key, ca_key, ca_cert, "node 3",
                               "URI:urn:kyufu:node:3");
    write_pem(ca, ca_cert, NULL);
    write_pem(cert, node_cert, NULL);
    write_pem(key, NULL, node_key);

    struct kyufu_storage_options o = {.path = store, .no_sync = true};
    struct kyufu_storage *s = NULL;
    CHECKF(kyufu_storage_open(&o, &s, err, sizeof err) == 0, "open: %s", err);
    uint8_t kek[32], cmk[32], digest[32];
    uint64_t at = 0;
    RAND_bytes(kek, 32);
    RAND_bytes(cmk, 32);
    /* A keyed store with a sealed record (the first administrator): verify
     * restores it under the backup's CMK, as a cluster's backup needs. */
    kyufu_storage_keys_set(s, cmk);
    add_admin(s);
    kyufu_storage_digest(s, digest, &at);
    CHECKF(at == 1, "the store is at index %llu", (unsigned long long)at);
    struct kyufu_storage_snapshot *snap = NULL;
    CHECKF(kyufu_storage_snapshot_begin(s, &snap) == 0, "snapshot");
    struct kyufu_backup_write_params p = {
        .parent = parent, .name = "b1", .node = 3, .kek = kek, .cmk = cmk,
        .ca_path = ca, .cert_path = cert, .key_path = key,
        .now_ms = 1765000000000, .max_bytes_per_s = 0};
    struct kyufu_backup_write_result res;
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) == 0,
          "write: %s", err);
    CHECKF(memcmp(res.state_digest, digest, 32) == 0, "digest");
    /* Again under the same name: refused, nothing added. */
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) != 0 &&
              strstr(err, "already exists") != NULL,
          "second write: %s", err);
    /* [backup] require_mount gone between the check and the write: the
     * folder is made on another mount than the one the check found, and
     * nothing is on top at require_mount now: refused as
     * KYUFU_BACKUP_WRITE_OFF_MOUNT, no temporary left.  The check's own
     * mount: written.  A stale id, but the mount on top at require_mount
     * now holds the folder (an automount the mkdir triggered): written. */
    struct statx sx;
    char top[PATH_MAX];
    CHECKF(statx(AT_FDCWD, parent, 0, STATX_MNT_ID, &sx) == 0 &&
               (sx.stx_mask & STATX_MNT_ID),
          "statx %s", parent);
    CHECKF(mount_point_of(parent, top, sizeof top), "the mount point above %s",
          parent);
    p.name = "b3";
    p.require_mount = "/kyufu-no-such-mount";
    p.require_mnt_id = sx.stx_mnt_id + 1000;
    err[0] = '\0';
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) ==
                   KYUFU_BACKUP_WRITE_OFF_MOUNT &&
               strstr(err, "require_mount") != NULL,
          "write off the mount: %s", err);
    CHECKF(count_entries(parent) == 1, "a write off the mount left %d entries",
          count_entries(parent) - 1);
    p.require_mnt_id = sx.stx_mnt_id;
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) == 0,
          "write on the check's mount: %s", err);
    CHECKF(count_entries(parent) == 2, "b3 written");
    p.name = "b4";
    p.require_mount = top;
    p.require_mnt_id = sx.stx_mnt_id + 1000;
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) == 0,
          "write on the mount now on top at %s: %s", top, err);
    CHECKF(count_entries(parent) == 3, "b4 written");
    p.require_mount = NULL;
    /* A key that cannot sign: refused, no temporary left. */
    p.name = "b2";
    p.key_path = ca; /* a certificate, not a key */
    CHECKF(kyufu_backup_write(snap, &p, &res, err, sizeof err) != 0,
          "write without a key");
    CHECKF(count_entries(parent) == 3, "a failed write left %d entries",
          count_entries(parent) - 3);
    kyufu_storage_snapshot_end(snap);
    kyufu_storage_close(s);

    struct kyufu_backup_verify_result v;
    CHECKF(kyufu_backup_verify(b1, ca, kek, root, &v, err, sizeof err) == 0,
          "verify: %s", err);
    CHECKF(v.m.node == 3 && v.m.has_cmk && v.m.n_chunks >= 1, "manifest");
    uint8_t back[32];
    CHECKF(kyufu_backup_key_unwrap(kek, v.m.id, KYUFU_BACKUP_KEY_CMK,
                                  v.m.cmk_wrapped, back) == 0 &&
              memcmp(back, cmk, 32) == 0,
          "the CMK comes back under the backup KEK");
    kyufu_backup_manifest_free(&v.m);
    /* What a restore gets: a reader of the stream (it restores, read
     * chunk by chunk, to the same digest; and again after a rewind) and
     * the CMK. */
    struct kyufu_backup_reader *reader = NULL;
    uint8_t got_cmk[32];
    CHECKF(kyufu_backup_open(b1, ca, kek, &v, &reader, got_cmk, err,
                            sizeof err) == 0,
          "open: %s", err);
    CHECKF(memcmp(got_cmk, cmk, 32) == 0, "open: CMK");
    struct kyufu_storage_source src;
    kyufu_backup_reader_source(reader, &src);
    for (int round = 0; round < 2; round++) {
        char store2[300];
        snprintf(store2, sizeof store2, "%s/store2-%d", root, round);
        struct kyufu_storage_options o2 = {.path = store2, .no_sync = true};
        struct kyufu_storage *s2 = NULL;
        uint8_t d2[32] = {0};
        uint64_t at2 = 1;
        if (round == 1) {
            CHECKF(src.rewind(src.arg, err, sizeof err) == 0, "rewind");
        }
        if (kyufu_storage_open(&o2, &s2, err, sizeof err) == 0) {
            kyufu_storage_keys_set(s2, got_cmk); /* as kyufud --seed does */
            CHECKF(kyufu_storage_restore_stream(s2, &src, err, sizeof err) == 0,
                  "restore: %s", err);
            kyufu_storage_digest(s2, d2, &at2);
            kyufu_storage_close(s2);
        }
        CHECKF(memcmp(d2, v.m.state_digest, 32) == 0 &&
                  at2 == v.m.applied_index,
              "restored digest (round %d)", round);
    }
    kyufu_backup_reader_close(reader);
    kyufu_backup_manifest_free(&v.m);
    CHECKF(kyufu_backup_open(b1, ca, NULL, &v, &reader, got_cmk, err,
                            sizeof err) != 0 && reader == NULL,
          "open without a KEK: %s", err);
    uint8_t wrong[32];
    RAND_bytes(wrong, 32);
    CHECKF(kyufu_backup_verify(b1, ca, wrong, root, &v, err, sizeof err) != 0 &&
              strstr(err, "does not unwrap") != NULL,
          "wrong KEK: %s", err);

    /* A chunk tampered and the manifest re-hashed and re-signed with the
     * node's key (an attacker holding it): the GCM tag still refuses. */
    char chunk[450], mpath[450], spath[450];
    snprintf(chunk, sizeof chunk, "%s/chunk-000000.bin", b1);
    snprintf(mpath, sizeof mpath, "%s/manifest.json", b1);
    snprintf(spath, sizeof spath, "%s/manifest.sig", b1);
    uint8_t *cb = NULL, *mb = NULL, *sig = NULL;
    size_t cl = 0, ml = 0, sl = 0;
    kyufu_backup_read_file(chunk, 1 << 26, &cb, &cl, err, sizeof err);
    kyufu_backup_read_file(mpath, 1 << 24, &mb, &ml, err, sizeof err);
    uint8_t oldh[32], newh[32];
    char oldx[65], newx[65];
    EVP_Digest(cb, cl, oldh, NULL, EVP_sha256(), NULL);
    cb[cl / 2] ^= 1;
    EVP_Digest(cb, cl, newh, NULL, EVP_sha256(), NULL);
    kyufu_backup_hex(oldh, 32, oldx);
    kyufu_backup_hex(newh, 32, newx);
    char *h = strstr((char *)mb, oldx);
    CHECKF(h != NULL, "chunk hash in the manifest");
    if (h != NULL) {
        memcpy(h, newx, 64);
        FILE *f = fopen(chunk, "w");
        fwrite(cb, 1, cl, f);
        fclose(f);
        f = fopen(mpath, "w");
        fwrite(mb, 1, ml, f);
        fclose(f);
        CHECKF(kyufu_backup_sign(key, mb, ml, &sig, &sl, err, sizeof err) == 0,
              "sign");
        f = fopen(spath, "w");
        fwrite(sig, 1, sl, f);
        fclose(f);
        CHECKF(kyufu_backup_verify(b1, ca, kek, root, &v, err, sizeof err) !=
                      0 &&
                  strstr(err, "does not decrypt") != NULL,
              "tampered chunk with a matching manifest: %s", err);
        /* A chunk cut by one byte: refused without a KEK too (backup list
         * and the schedule's scan read no chunk, only their sizes). */
        f = fopen(chunk, "w");
        fwrite(cb, 1, cl - 1, f);
        fclose(f);
        CHECKF(kyufu_backup_verify(b1, ca, NULL, NULL, &v, err, sizeof err) !=
                      0 &&
                  strstr(err, "the manifest says") != NULL,
              "chunk cut short, no KEK: %s", err);
    }
    free(cb);
    free(mb);
    free(sig);

    X509_free(ca_cert);
    X509_free(node_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(node_key);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECKF(system(cmd) == 0, "cleanup");
}

int main(void)
{
    test_chunks();
    test_keys();
    test_names();
    test_manifest();
    test_whole();
    if (failures != 0) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
