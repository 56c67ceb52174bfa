/* Verifying one backup completely, and reading its stream for a restore:
 * see backup_format.h and docs/backup.md "Verify".  Blocking (reads every
 * file, restores a temporary store).  The stream is read chunk by chunk
 * (kyufu_backup_reader, a kyufu_storage_source), never held whole: memory
 * is one sealed chunk file and its plaintext, whatever the ledger's size. */
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

/* Every chunk file has the size the manifest gives it: a torn or cut
 * chunk is found by a stat, so that `backup list` and the schedule's scan
 * (no KEK: no chunk is read) do not count such a backup as good. */
static int check_chunk_sizes(const char *dir,
                             const struct kyufu_backup_manifest *m,
                             char *errmsg,
                             size_t errmsg_len)
{
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        char name[32], path[KYUFU_BACKUP_PATH_BYTES_MAX];
        struct stat st;
        kyufu_backup_chunk_name(i, name, sizeof name);
        if (join(path, sizeof path, dir, name, errmsg, errmsg_len) != 0) {
            return -1;
        }
        if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            snprintf(errmsg, errmsg_len, "%s: missing or not a file", name);
            return -1;
        }
        if ((uint64_t)st.st_size != m->chunks[i].bytes) {
            snprintf(errmsg, errmsg_len,
                     "%s: %" PRIu64 " bytes, the manifest says %" PRIu64,
                     name, (uint64_t)st.st_size, m->chunks[i].bytes);
            return -1;
        }
    }
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

_Static_assert(KYUFU_BACKUP_KEY_BYTES == KYUFU_CRYPTO_KEY_BYTES,
               "a backup carries the store's CMK as one backup key");

/* ------------------------------------------------ the stream, chunk by chunk */

struct kyufu_backup_reader
{
    char dir[KYUFU_BACKUP_PATH_BYTES_MAX];
    const struct kyufu_backup_manifest *m; /* the caller's */
    uint8_t bk[KYUFU_BACKUP_KEY_BYTES];
    uint32_t next;   /* the chunk read next */
    uint64_t done;   /* stream bytes handed out */
    uint8_t *plain;  /* the current chunk, decrypted */
    size_t plain_cap;
};

/* kyufu_storage_source read: chunk r->next, checked (size and SHA-256 as
 * listed, tag under its number and last flag) and decrypted; 0 bytes after
 * the last one, whose total must be the manifest's stream_bytes. */
static int reader_read(void *arg, const uint8_t **data, size_t *len,
                       char *errmsg, size_t errmsg_len)
{
    struct kyufu_backup_reader *r = arg;
    const struct kyufu_backup_manifest *m = r->m;
    uint32_t i = r->next;
    if (i == m->n_chunks) {
        if (r->done != m->stream_bytes) {
            snprintf(errmsg, errmsg_len,
                     "the chunks hold %" PRIu64 " stream bytes, the manifest "
                     "says %" PRIu64, r->done, m->stream_bytes);
            return -1;
        }
        *data = r->plain;
        *len = 0;
        return 0;
    }
    char name[32], path[KYUFU_BACKUP_PATH_BYTES_MAX];
    uint8_t *buf = NULL, h[32];
    size_t n = 0;
    kyufu_backup_chunk_name(i, name, sizeof name);
    if (join(path, sizeof path, r->dir, name, errmsg, errmsg_len) != 0 ||
        kyufu_backup_read_file(path, (size_t)m->chunks[i].bytes, &buf, &n,
                               errmsg, errmsg_len) != 0) {
        return -1;
    }
    int rv = -1;
    if (n != m->chunks[i].bytes || n < KYUFU_BACKUP_SEAL_OVERHEAD) {
        snprintf(errmsg, errmsg_len,
                 "%s: %zu bytes, the manifest says %" PRIu64, name, n,
                 m->chunks[i].bytes);
        goto out;
    }
    if (EVP_Digest(buf, n, h, NULL, EVP_sha256(), NULL) != 1 ||
        memcmp(h, m->chunks[i].sha256, 32) != 0) {
        snprintf(errmsg, errmsg_len,
                 "%s: SHA-256 differs from the manifest's", name);
        goto out;
    }
    size_t plain = n - KYUFU_BACKUP_SEAL_OVERHEAD;
    if (plain > r->plain_cap) {
        kyufu_storage_crypto_wipe(r->plain, r->plain_cap);
        free(r->plain);
        r->plain_cap = 0;
        r->plain = malloc(plain > 0 ? plain : 1);
        if (r->plain == NULL) {
            snprintf(errmsg, errmsg_len, "out of memory for %s", name);
            goto out;
        }
        r->plain_cap = plain;
    }
    int crv = kyufu_backup_chunk_open(r->bk, m->id, i, i + 1 == m->n_chunks,
                                      buf, n, r->plain);
    if (crv != 0) {
        snprintf(errmsg, errmsg_len, "%s does not decrypt: %s", name,
                 kyufu_storage_crypto_strerror(crv));
        goto out;
    }
    r->next++;
    r->done += plain;
    *data = r->plain;
    *len = plain;
    rv = 0;
out:
    free(buf); /* ciphertext: nothing to wipe */
    return rv;
}

static int reader_rewind(void *arg, char *errmsg, size_t errmsg_len)
{
    struct kyufu_backup_reader *r = arg;
    (void)errmsg;
    (void)errmsg_len;
    r->next = 0;
    r->done = 0;
    return 0;
}

void kyufu_backup_reader_source(struct kyufu_backup_reader *r,
                                struct kyufu_storage_source *src)
{
    src->read = reader_read;
    src->rewind = reader_rewind;
    src->arg = r;
}

void kyufu_backup_reader_close(struct kyufu_backup_reader *r)
{
    if (r == NULL) {
        return;
    }
    kyufu_storage_crypto_wipe(r->plain, r->plain_cap);
    free(r->plain);
    kyufu_storage_crypto_wipe(r->bk, sizeof r->bk);
    free(r);
}

/* A reader of dir's chunks under bk (copied), the manifest borrowed. */
static int reader_new(const char *dir, const struct kyufu_backup_manifest *m,
                      const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                      struct kyufu_backup_reader **out, char *errmsg,
                      size_t errmsg_len)
{
    uint64_t want = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        want += m->chunks[i].bytes - KYUFU_BACKUP_SEAL_OVERHEAD;
    }
    if (want != m->stream_bytes || want == 0) {
        snprintf(errmsg, errmsg_len,
                 "manifest is malformed: stream_bytes %" PRIu64
                 " is not the chunks' %" PRIu64,
                 m->stream_bytes, want);
        return -1;
    }
    struct kyufu_backup_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    if (snprintf(r->dir, sizeof r->dir, "%s", dir) >= (int)sizeof r->dir) {
        snprintf(errmsg, errmsg_len, "path too long: %s", dir);
        free(r);
        return -1;
    }
    r->m = m;
    memcpy(r->bk, bk, sizeof r->bk);
    *out = r;
    return 0;
}

/* Restore the stream, read chunk by chunk, into a temporary store and
 * compare its digest.  cmk (the backup's CMK, or NULL when the backup has
 * none) is handed to the temporary store before the restore, so that
 * sealed values read; the store wipes its copy when closed, the caller
 * wipes cmk. */
static int check_digest(const struct kyufu_backup_manifest *m,
                        const uint8_t *cmk,
                        struct kyufu_backup_reader *reader,
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
    struct kyufu_storage_source src;
    int rv = -1;
    char why[512];
    uint8_t digest[32];
    uint64_t at = 0, index = 0, term = 0;
    if (kyufu_storage_open(&o, &s, why, sizeof why) != 0) {
        snprintf(errmsg, errmsg_len, "cannot open a temporary store: %s",
                 why);
        goto cleanup;
    }
    if (cmk != NULL) {
        kyufu_storage_keys_set(s, cmk);
    }
    kyufu_backup_reader_source(reader, &src);
    int srv = kyufu_storage_restore_stream(s, &src, why, sizeof why);
    if (srv == KYUFU_STORAGE_EIO) {
        snprintf(errmsg, errmsg_len, "%s", why); /* a chunk, named */
        goto cleanup;
    }
    if (srv != 0) {
        snprintf(errmsg, errmsg_len,
                 "the decrypted snapshot stream does not restore: %s", why);
        goto cleanup;
    }
    srv = kyufu_storage_digest(s, digest, &at);
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

/* Everything but the chunks and the digest: with kek, a reader of the
 * stream into *reader and the CMK (when the backup has one) into cmk. */
static int open_backup(const char *dir,
                       const char *ca_path,
                       const uint8_t *kek,
                       struct kyufu_backup_verify_result *res,
                       struct kyufu_backup_reader **reader,
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
    if (check_chunk_sizes(dir, &res->m, errmsg, errmsg_len) != 0) {
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
    rv = reader_new(dir, &res->m, bk, reader, errmsg, errmsg_len);
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
    struct kyufu_backup_reader *reader = NULL;
    uint8_t cmk[KYUFU_BACKUP_KEY_BYTES];
    int rv = open_backup(dir, ca_path, kek, res, &reader, cmk, errmsg,
                         errmsg_len);
    if (rv != 0 || kek == NULL) {
        kyufu_storage_crypto_wipe(cmk, sizeof cmk);
        return rv;
    }
    rv = check_digest(&res->m, res->m.has_cmk ? cmk : NULL, reader,
                      tmp_parent, errmsg, errmsg_len);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    kyufu_backup_reader_close(reader);
    if (rv != 0) {
        kyufu_backup_manifest_free(&res->m);
    }
    return rv;
}

int kyufu_backup_open(const char *dir,
                      const char *ca_path,
                      const uint8_t *kek,
                      struct kyufu_backup_verify_result *res,
                      struct kyufu_backup_reader **reader,
                      uint8_t cmk[KYUFU_BACKUP_KEY_BYTES],
                      char *errmsg,
                      size_t errmsg_len)
{
    *reader = NULL;
    if (kek == NULL) {
        snprintf(errmsg, errmsg_len, "a backup KEK is needed to read it");
        return -1;
    }
    return open_backup(dir, ca_path, kek, res, reader, cmk, errmsg,
                       errmsg_len);
}
