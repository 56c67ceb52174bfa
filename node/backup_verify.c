/* Verifying one backup completely: see backup_format.h and docs/backup.md
 * "Verify".  Blocking (reads every file, restores a temporary store). */
#include "backup_format.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

static int join(char *out,
                size_t len,
                const char *dir,
                const char *name,
                char *errmsg,
                size_t errmsg_len)
{
    int n = snprintf(out, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) {
        snprintf(errmsg, errmsg_len, "path too long: %s/%s", dir, name);
        return -1;
    }
    return 0;
}

/* Count chunk-* entries in dir (a file not listed is an error) and sum
 * the sizes of every regular file. */
static int scan_dir(const char *dir,
                    uint32_t *n_chunk_files,
                    uint64_t *bytes,
                    char *errmsg,
                    size_t errmsg_len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(errmsg, errmsg_len, "%s: %s", dir, strerror(errno));
        return -1;
    }
    *n_chunk_files = 0;
    *bytes = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[KYUFU_BACKUP_PATH_BYTES_MAX];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (strncmp(e->d_name, "chunk-", 6) == 0) {
            (*n_chunk_files)++;
        }
        if (join(path, sizeof path, dir, e->d_name, errmsg, errmsg_len) ==
                0 &&
            lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            *bytes += (uint64_t)st.st_size;
        }
    }
    closedir(d);
    return 0;
}

/* Remove the temporary store's directory (flat: LMDB's files). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                (void)unlinkat(dirfd(d), e->d_name, 0);
            }
        }
        closedir(d);
    }
    (void)rmdir(dir);
}

/* Restore the stream into a temporary store and compare its digest. */
static int check_digest(const struct kyufu_backup_manifest *m,
                        const uint8_t *stream,
                        size_t len,
                        const uint8_t *cmk,
                        const char *tmp_parent,
                        char *errmsg,
                        size_t errmsg_len)
{
    char tmp[KYUFU_BACKUP_PATH_BYTES_MAX];
    if (tmp_parent == NULL) {
        tmp_parent = getenv("TMPDIR");
    }
    if (tmp_parent == NULL || tmp_parent[0] == '\0') {
        tmp_parent = "/tmp";
    }
    int n = snprintf(tmp, sizeof tmp, "%s/kyufu-backup-verify-XXXXXX",
                     tmp_parent);
    if (n < 0 || (size_t)n >= sizeof tmp || mkdtemp(tmp) == NULL) {
        snprintf(errmsg, errmsg_len,
                 "cannot make a temporary directory under %s", tmp_parent);
        return -1;
    }
    struct kyufu_storage_options o = {.path = tmp, .no_sync = true};
    struct kyufu_storage *s = NULL;
    int rv = -1;
    char why[256];
    uint8_t digest[32];
    uint64_t at = 0, index = 0, term = 0;
    if (kyufu_storage_open(&o, &s, why, sizeof why) != 0) {
        snprintf(errmsg, errmsg_len, "cannot open a temporary store: %s",
                 why);
        goto cleanup;
    }
    /* Sealed records (encryption at rest) decode only under the backup's
     * CMK: the restore checks the ledger's invariants on their content. */
    if (cmk != NULL) {
        kyufu_storage_keys_set(s, cmk);
    }
    if (kyufu_storage_restore(s, stream, len, why, sizeof why) != 0) {
        snprintf(errmsg, errmsg_len,
                 "the decrypted snapshot stream does not restore: %s", why);
        goto cleanup;
    }
    int srv = kyufu_storage_digest(s, digest, &at);
    kyufu_storage_applied(s, &index, &term);
    if (srv != 0) {
        snprintf(errmsg, errmsg_len, "state digest of the restored copy: %s",
                 kyufu_storage_strerror(srv));
        goto cleanup;
    }
    if (index != m->applied_index || term != m->applied_term) {
        snprintf(errmsg, errmsg_len,
                 "the stream is at index %" PRIu64 " term %" PRIu64
                 ", the manifest says %" PRIu64 " term %" PRIu64,
                 index, term, m->applied_index, m->applied_term);
        goto cleanup;
    }
    if (memcmp(digest, m->state_digest, 32) != 0) {
        snprintf(errmsg, errmsg_len,
                 "state digest of the restored stream differs from the "
                 "manifest's");
        goto cleanup;
    }
    rv = 0;
cleanup:
    if (s != NULL) {
        kyufu_storage_close(s);
    }
    remove_tree(tmp);
    return rv;
}

/* Decrypt every chunk into one malloc'd stream buffer (*out, *out_len). */
static int read_stream(const char *dir,
                       const struct kyufu_backup_manifest *m,
                       const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                       uint8_t **out,
                       size_t *out_len,
                       char *errmsg,
                       size_t errmsg_len)
{
    uint64_t want = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        want += m->chunks[i].bytes - KYUFU_BACKUP_SEAL_OVERHEAD;
    }
    if (want != m->stream_bytes || want == 0 || want > SIZE_MAX / 2) {
        snprintf(errmsg, errmsg_len,
                 "manifest is malformed: stream_bytes %" PRIu64
                 " is not the chunks' %" PRIu64,
                 m->stream_bytes, want);
        return -1;
    }
    uint8_t *stream = malloc((size_t)want);
    if (stream == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory for %" PRIu64 " bytes",
                 want);
        return -1;
    }
    int rv = -1;
    size_t off = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        char name[32], path[KYUFU_BACKUP_PATH_BYTES_MAX];
        uint8_t *buf = NULL, h[32];
        size_t len = 0;
        kyufu_backup_chunk_name(i, name, sizeof name);
        if (join(path, sizeof path, dir, name, errmsg, errmsg_len) != 0 ||
            kyufu_backup_read_file(path, (size_t)m->chunks[i].bytes, &buf,
                                   &len, errmsg, errmsg_len) != 0) {
            goto cleanup;
        }
        if (len != m->chunks[i].bytes) {
            snprintf(errmsg, errmsg_len,
                     "%s: %zu bytes, the manifest says %" PRIu64, name, len,
                     m->chunks[i].bytes);
            free(buf);
            goto cleanup;
        }
        if (EVP_Digest(buf, len, h, NULL, EVP_sha256(), NULL) != 1 ||
            memcmp(h, m->chunks[i].sha256, 32) != 0) {
            snprintf(errmsg, errmsg_len,
                     "%s: SHA-256 differs from the manifest's", name);
            free(buf);
            goto cleanup;
        }
        int crv = kyufu_backup_chunk_open(bk, m->id, i, i + 1 == m->n_chunks,
                                          buf, len, stream + off);
        free(buf);
        if (crv != 0) {
            snprintf(errmsg, errmsg_len, "%s does not decrypt: %s", name,
                     kyufu_storage_crypto_strerror(crv));
            goto cleanup;
        }
        off += len - KYUFU_BACKUP_SEAL_OVERHEAD;
    }
    *out = stream;
    *out_len = off;
    stream = NULL;
    rv = 0;
cleanup:
    if (stream != NULL) {
        kyufu_storage_crypto_wipe(stream, (size_t)want);
        free(stream);
    }
    return rv;
}

/* Everything but the digest: with kek, the decrypted stream into
 * *stream / *stream_len and the CMK (when the backup has one) into cmk. */
static int open_backup(const char *dir,
                       const char *ca_path,
                       const uint8_t *kek,
                       struct kyufu_backup_verify_result *res,
                       uint8_t **stream,
                       size_t *stream_len,
                       uint8_t cmk[KYUFU_BACKUP_KEY_BYTES],
                       char *errmsg,
                       size_t errmsg_len)
{
    char path[KYUFU_BACKUP_PATH_BYTES_MAX];
    uint8_t *json = NULL, *sig = NULL, *cert = NULL;
    size_t json_len = 0, sig_len = 0, cert_len = 0;
    uint8_t cert_hash[32], ca_hash[32], bk[KYUFU_BACKUP_KEY_BYTES];
    uint64_t node = 0;
    uint32_t n_files = 0;
    bool parsed = false;
    int rv = -1;
    memset(res, 0, sizeof *res);

    if (join(path, sizeof path, dir, KYUFU_BACKUP_MANIFEST, errmsg,
             errmsg_len) != 0 ||
        kyufu_backup_read_file(path, KYUFU_BACKUP_MANIFEST_BYTES_MAX, &json,
                               &json_len, errmsg, errmsg_len) != 0 ||
        join(path, sizeof path, dir, KYUFU_BACKUP_SIGNATURE, errmsg,
             errmsg_len) != 0 ||
        kyufu_backup_read_file(path, KYUFU_BACKUP_SMALL_FILE_BYTES_MAX, &sig,
                               &sig_len, errmsg, errmsg_len) != 0 ||
        join(path, sizeof path, dir, KYUFU_BACKUP_CERT, errmsg,
             errmsg_len) != 0 ||
        kyufu_backup_read_file(path, KYUFU_BACKUP_SMALL_FILE_BYTES_MAX, &cert,
                               &cert_len, errmsg, errmsg_len) != 0) {
        goto cleanup;
    }
    if (kyufu_backup_check_signature(ca_path, cert, cert_len, json, json_len,
                                     sig, sig_len, &node, cert_hash, errmsg,
                                     errmsg_len) != 0) {
        goto cleanup;
    }
    /* Only bytes that verified are parsed. */
    if (kyufu_backup_manifest_parse((const char *)json, json_len, &res->m,
                                    errmsg, errmsg_len) != 0) {
        goto cleanup;
    }
    parsed = true;
    if (res->m.node != node) {
        snprintf(errmsg, errmsg_len,
                 "%s names node %" PRIu64 ", the manifest node %" PRIu64,
                 KYUFU_BACKUP_CERT, node, res->m.node);
        goto cleanup;
    }
    if (memcmp(cert_hash, res->m.cert_sha256, 32) != 0) {
        snprintf(errmsg, errmsg_len,
                 "%s is not the certificate the manifest names",
                 KYUFU_BACKUP_CERT);
        goto cleanup;
    }
    if (kyufu_backup_cert_file_sha256(ca_path, ca_hash, errmsg,
                                      errmsg_len) != 0) {
        goto cleanup;
    }
    if (memcmp(ca_hash, res->m.cluster_id, 32) != 0) {
        snprintf(errmsg, errmsg_len,
                 "backup is of another cluster (cluster_id is not the "
                 "SHA-256 of %s)",
                 ca_path);
        goto cleanup;
    }
    if (scan_dir(dir, &n_files, &res->bytes, errmsg, errmsg_len) != 0) {
        goto cleanup;
    }
    if (n_files != res->m.n_chunks) {
        snprintf(errmsg, errmsg_len,
                 "%s holds %" PRIu32 " chunk files, the manifest lists %" PRIu32,
                 dir, n_files, res->m.n_chunks);
        goto cleanup;
    }
    if (kek == NULL) {
        rv = 0;
        goto cleanup;
    }
    if (kyufu_backup_key_unwrap(kek, res->m.id, KYUFU_BACKUP_KEY_BK,
                                res->m.bk_wrapped, bk) != 0 ||
        (res->m.has_cmk &&
         kyufu_backup_key_unwrap(kek, res->m.id, KYUFU_BACKUP_KEY_CMK,
                                 res->m.cmk_wrapped, cmk) != 0)) {
        snprintf(errmsg, errmsg_len,
                 "backup key does not unwrap: wrong --kek, or the manifest "
                 "was altered");
        goto cleanup;
    }
    rv = read_stream(dir, &res->m, bk, stream, stream_len, errmsg,
                     errmsg_len);
cleanup:
    kyufu_storage_crypto_wipe(bk, sizeof bk);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_BACKUP_KEY_BYTES);
    }
    if (rv != 0 && parsed) {
        kyufu_backup_manifest_free(&res->m);
    }
    free(json);
    free(sig);
    free(cert);
    return rv;
}

int kyufu_backup_verify(const char *dir,
                        const char *ca_path,
                        const uint8_t *kek,
                        const char *tmp_parent,
                        struct kyufu_backup_verify_result *res,
                        char *errmsg,
                        size_t errmsg_len)
{
    uint8_t *stream = NULL, cmk[KYUFU_BACKUP_KEY_BYTES];
    size_t len = 0;
    int rv = open_backup(dir, ca_path, kek, res, &stream, &len, cmk, errmsg,
                         errmsg_len);
    if (rv != 0 || kek == NULL) {
        kyufu_storage_crypto_wipe(cmk, sizeof cmk);
        return rv;
    }
    rv = check_digest(&res->m, stream, len, res->m.has_cmk ? cmk : NULL,
                      tmp_parent, errmsg, errmsg_len);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    kyufu_storage_crypto_wipe(stream, len);
    free(stream);
    if (rv != 0) {
        kyufu_backup_manifest_free(&res->m);
    }
    return rv;
}

int kyufu_backup_load(const char *dir,
                      const char *ca_path,
                      const uint8_t *kek,
                      struct kyufu_backup_verify_result *res,
                      uint8_t **stream,
                      size_t *stream_len,
                      uint8_t cmk[KYUFU_BACKUP_KEY_BYTES],
                      char *errmsg,
                      size_t errmsg_len)
{
    *stream = NULL;
    *stream_len = 0;
    return open_backup(dir, ca_path, kek, res, stream, stream_len, cmk,
                       errmsg, errmsg_len);
}
