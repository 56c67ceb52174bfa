/* Writing one backup from an open storage snapshot: see backup_format.h
 * and docs/backup.md.  Runs on a work thread (blocking I/O, sleeps for
 * the throttle). */
/* renameat2, RENAME_NOREPLACE: _GNU_SOURCE (project-wide) */
#include "backup_format.h"
#include "backup_retention.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* The throttle's step: one write() of at most this much, then a sleep
 * if ahead of the rate, so the disk and the network see a steady stream
 * (at most max_bytes_per_s / 256 KiB writes per second, plus one fsync
 * per file), not 4 MiB bursts. */
#define WRITE_SLICE ((size_t)256 << 10)

struct writer
{
    const struct kyufu_backup_write_params *p;
    struct kyufu_backup_manifest *m;
    int dirfd;
    uint8_t bk[KYUFU_BACKUP_KEY_BYTES];
    uint8_t *pending; /* the last piece emitted, not yet written */
    size_t pending_len;
    uint32_t cap; /* of m->chunks */
    uint64_t bytes;
    struct timespec start;
    char *errmsg;
    size_t errmsg_len;
};

static void throttle(const struct writer *w);

/* Write buf as dirfd/name (new, 0600) and fsync it, in writes of at most
 * WRITE_SLICE bytes; with w, each counted in w->bytes and throttled.  0,
 * or -1 with errmsg. */
static int write_file_at(int dirfd,
                         const char *name,
                         const uint8_t *buf,
                         size_t len,
                         struct writer *w,
                         char *errmsg,
                         size_t errmsg_len)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "cannot create %s: %s", name,
                 strerror(errno));
        return -1;
    }
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < WRITE_SLICE ? len - done : WRITE_SLICE;
        ssize_t n = write(fd, buf + done, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            snprintf(errmsg, errmsg_len, "cannot write %s: %s", name,
                     n < 0 ? strerror(errno) : "no progress");
            close(fd);
            return -1;
        }
        done += (size_t)n;
        if (w != NULL) {
            w->bytes += (uint64_t)n;
            throttle(w);
        }
    }
    if (fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot fsync %s: %s", name,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (close(fd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot close %s: %s", name,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static double elapsed_s(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) +
           (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* Sleep until `bytes` written since start is within the rate. */
static void throttle(const struct writer *w)
{
    if (w->p->max_bytes_per_s == 0) {
        return;
    }
    double due = (double)w->bytes / (double)w->p->max_bytes_per_s;
    double ahead = due - elapsed_s(&w->start);
    if (ahead <= 0) {
        return;
    }
    struct timespec ts = {(time_t)ahead,
                          (long)((ahead - (double)(time_t)ahead) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Seal the pending piece as the next chunk and write it. */
static int flush_pending(struct writer *w, bool last)
{
    struct kyufu_backup_manifest *m = w->m;
    if (m->n_chunks == KYUFU_BACKUP_CHUNKS_MAX) {
        snprintf(w->errmsg, w->errmsg_len, "more than %u chunks",
                 KYUFU_BACKUP_CHUNKS_MAX);
        return -1;
    }
    if (m->n_chunks == w->cap) {
        uint32_t cap = w->cap == 0 ? 64 : w->cap * 2;
        struct kyufu_backup_chunk *c = realloc(m->chunks, cap * sizeof *c);
        if (c == NULL) {
            snprintf(w->errmsg, w->errmsg_len, "out of memory");
            return -1;
        }
        m->chunks = c;
        w->cap = cap;
    }
    size_t len = w->pending_len + KYUFU_BACKUP_SEAL_OVERHEAD;
    uint8_t *out = malloc(len);
    if (out == NULL) {
        snprintf(w->errmsg, w->errmsg_len, "out of memory");
        return -1;
    }
    uint32_t n = m->n_chunks;
    int rv = kyufu_backup_chunk_seal(w->bk, m->id, n, last, w->pending,
                                     w->pending_len, out);
    if (rv != 0) {
        snprintf(w->errmsg, w->errmsg_len, "cannot seal chunk %u: %s", n,
                 kyufu_storage_crypto_strerror(rv));
        free(out);
        return -1;
    }
    char name[32];
    kyufu_backup_chunk_name(n, name, sizeof name);
    rv = write_file_at(w->dirfd, name, out, len, w, w->errmsg, w->errmsg_len);
    if (rv == 0 &&
        EVP_Digest(out, len, m->chunks[n].sha256, NULL, EVP_sha256(), NULL) !=
            1) {
        snprintf(w->errmsg, w->errmsg_len, "cannot hash chunk %u", n);
        rv = -1;
    }
    free(out);
    if (rv != 0) {
        return -1;
    }
    m->chunks[n].bytes = len;
    m->n_chunks = n + 1;
    m->stream_bytes += w->pending_len;
    free(w->pending);
    w->pending = NULL;
    w->pending_len = 0;
    return 0;
}

/* The store's emit: keep one piece back, so the last one is known. */
static int on_piece(void *arg, void *chunk, size_t len)
{
    struct writer *w = arg;
    if (w->pending != NULL && flush_pending(w, false) != 0) {
        free(chunk);
        return 1;
    }
    w->pending = chunk;
    w->pending_len = len;
    return 0;
}

/* Remove what a failed backup left in its temporary directory. */
static void remove_partial(int dirfd, const char *tmp, uint32_t n_chunks)
{
    for (uint32_t i = 0; i <= n_chunks; i++) {
        char name[32];
        kyufu_backup_chunk_name(i, name, sizeof name);
        (void)unlinkat(dirfd, name, 0);
    }
    (void)unlinkat(dirfd, KYUFU_BACKUP_MANIFEST, 0);
    (void)unlinkat(dirfd, KYUFU_BACKUP_SIGNATURE, 0);
    (void)unlinkat(dirfd, KYUFU_BACKUP_CERT, 0);
    (void)rmdir(tmp);
}

static int fsync_path(const char *path, char *errmsg, size_t errmsg_len)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot fsync %s: %s", path,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    return 0;
}

/* Sign the manifest and write manifest.json, manifest.sig, node.pem. */
static int write_manifest(struct writer *w, char *errmsg, size_t errmsg_len)
{
    const struct kyufu_backup_write_params *p = w->p;
    char *json = NULL;
    size_t json_len = 0;
    uint8_t *sig = NULL, *cert = NULL;
    size_t sig_len = 0, cert_len = 0;
    int rv = -1;
    if (kyufu_backup_manifest_json(w->m, &json, &json_len) != 0) {
        snprintf(errmsg, errmsg_len, "out of memory for the manifest");
        goto cleanup;
    }
    if (kyufu_backup_sign(p->key_path, (const uint8_t *)json, json_len, &sig,
                          &sig_len, errmsg, errmsg_len) != 0 ||
        kyufu_backup_read_file(p->cert_path, KYUFU_BACKUP_SMALL_FILE_BYTES_MAX,
                               &cert, &cert_len, errmsg, errmsg_len) != 0 ||
        write_file_at(w->dirfd, KYUFU_BACKUP_CERT, cert, cert_len, NULL,
                      errmsg, errmsg_len) != 0 ||
        write_file_at(w->dirfd, KYUFU_BACKUP_SIGNATURE, sig, sig_len, NULL,
                      errmsg, errmsg_len) != 0 ||
        write_file_at(w->dirfd, KYUFU_BACKUP_MANIFEST, (const uint8_t *)json,
                      json_len, NULL, errmsg, errmsg_len) != 0) {
        goto cleanup;
    }
    w->bytes += json_len + sig_len + cert_len;
    rv = 0;
cleanup:
    free(json);
    free(sig);
    free(cert);
    return rv;
}

/* Whether the opened folder tmp is on [backup] require_mount: the mount
 * the check found there, or the one on top there now (an automount that
 * the mkdir triggered replaces the autofs entry the check saw).  Mount
 * ids, not devices: a btrfs subvolume's files report a device of their
 * own, not the one the mount table names. */
static int on_mount(struct writer *w, const struct kyufu_backup_write_params *p,
                    const char *tmp)
{
    struct statx sx;
    char why[256];
    uint64_t now_id = 0;
    if (statx(w->dirfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) != 0) {
        snprintf(w->errmsg, w->errmsg_len,
                 "cannot tell which mount %s is on: %s: no backup written",
                 tmp, strerror(errno));
        return -1;
    }
    if (!(sx.stx_mask & STATX_MNT_ID)) {
        snprintf(w->errmsg, w->errmsg_len,
                 "cannot tell which mount %s is on (the kernel reports no "
                 "mount id: Linux 5.8 or later needed for [backup] "
                 "require_mount): no backup written", tmp);
        return -1;
    }
    if (sx.stx_mnt_id == p->require_mnt_id) {
        return 0;
    }
    int m = kyufu_backup_mount_point(KYUFU_BACKUP_MOUNTINFO, p->require_mount,
                                     &now_id, why, sizeof why);
    if (m == 1 && now_id == sx.stx_mnt_id) {
        return 0;
    }
    snprintf(w->errmsg, w->errmsg_len,
             "%s is on mount %llu, not on [backup] require_mount %s (mount "
             "%llu at the check, %s now): no backup written",
             tmp, (unsigned long long)sx.stx_mnt_id, p->require_mount,
             (unsigned long long)p->require_mnt_id,
             m == 1 ? "another one" : m == 0 ? "none" : why);
    return -1;
}

int kyufu_backup_write(struct kyufu_storage_snapshot *snap,
                       const struct kyufu_backup_write_params *p,
                       struct kyufu_backup_write_result *res,
                       char *errmsg,
                       size_t errmsg_len)
{
    struct kyufu_backup_manifest m;
    memset(&m, 0, sizeof m);
    struct writer w = {.p = p, .m = &m, .dirfd = -1, .errmsg = errmsg,
                       .errmsg_len = errmsg_len};
    char tmp[KYUFU_BACKUP_PATH_BYTES_MAX], final[KYUFU_BACKUP_PATH_BYTES_MAX];
    char idhex[2 * KYUFU_BACKUP_ID_BYTES + 1];
    bool made = false;
    int rv = -1;
    struct stat st;

    errmsg[0] = '\0';
    if (!kyufu_backup_name_ok(p->name)) {
        snprintf(errmsg, errmsg_len,
                 "'%s' is not a backup name (1..%u of A-Z a-z 0-9 . _ -, "
                 "not starting with '.')",
                 p->name, KYUFU_BACKUP_NAME_BYTES_MAX);
        return -1;
    }
    if (RAND_bytes(m.id, sizeof m.id) != 1 ||
        RAND_bytes(w.bk, sizeof w.bk) != 1) {
        snprintf(errmsg, errmsg_len, "the random source failed");
        return -1;
    }
    kyufu_backup_hex(m.id, sizeof m.id, idhex);
    int n1 = snprintf(final, sizeof final, "%s/%s", p->parent, p->name);
    int n2 = snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%s", p->parent, p->name,
                      idhex);
    if (n1 < 0 || (size_t)n1 >= sizeof final || n2 < 0 ||
        (size_t)n2 >= sizeof tmp) {
        snprintf(errmsg, errmsg_len, "backup path too long");
        goto cleanup;
    }
    if (lstat(final, &st) == 0 || errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "%s already exists", final);
        goto cleanup;
    }
    if (mkdir(tmp, 0700) != 0) {
        snprintf(errmsg, errmsg_len, "cannot create %s: %s", tmp,
                 strerror(errno));
        goto cleanup;
    }
    made = true;
    w.dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w.dirfd < 0) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", tmp,
                 strerror(errno));
        goto cleanup;
    }
    /* Every file goes in through dirfd: checking the folder once is enough
     * (a busy mount does not go away under it; a lazy unmount leaves it on
     * the mount, away from the disk beneath). */
    if (p->require_mount != NULL && p->require_mount[0] != '\0' &&
        on_mount(&w, p, tmp) != 0) {
        rv = KYUFU_BACKUP_WRITE_OFF_MOUNT;
        goto cleanup;
    }

    /* What the manifest says besides the chunks. */
    m.node = p->node;
    m.created_ms = p->now_ms;
    if (kyufu_backup_cert_file_sha256(p->ca_path, m.cluster_id, errmsg,
                                      errmsg_len) != 0 ||
        kyufu_backup_cert_file_sha256(p->cert_path, m.cert_sha256, errmsg,
                                      errmsg_len) != 0) {
        goto cleanup;
    }
    if (kyufu_backup_key_wrap(p->kek, m.id, KYUFU_BACKUP_KEY_BK, w.bk,
                              m.bk_wrapped) != 0 ||
        (p->cmk != NULL &&
         kyufu_backup_key_wrap(p->kek, m.id, KYUFU_BACKUP_KEY_CMK, p->cmk,
                               m.cmk_wrapped) != 0)) {
        snprintf(errmsg, errmsg_len, "cannot wrap the backup keys");
        goto cleanup;
    }
    m.has_cmk = p->cmk != NULL;
    kyufu_storage_snapshot_applied(snap, &m.applied_index, &m.applied_term);
    uint64_t digest_at = 0;
    int srv = kyufu_storage_snapshot_digest(snap, m.state_digest, &digest_at);
    if (srv != 0) {
        snprintf(errmsg, errmsg_len, "state digest: %s",
                 kyufu_storage_strerror(srv));
        goto cleanup;
    }
    assert(digest_at == m.applied_index);

    /* The stream, sealed chunk by chunk. */
    clock_gettime(CLOCK_MONOTONIC, &w.start);
    srv = kyufu_storage_snapshot_write(snap, NULL, on_piece, &w);
    if (srv != 0) {
        if (srv != 1) {
            snprintf(errmsg, errmsg_len, "snapshot stream: %s",
                     kyufu_storage_strerror(srv));
        }
        goto cleanup;
    }
    if (w.pending == NULL) {
        snprintf(errmsg, errmsg_len, "the snapshot stream was empty");
        goto cleanup;
    }
    if (flush_pending(&w, true) != 0 ||
        write_manifest(&w, errmsg, errmsg_len) != 0 ||
        fsync(w.dirfd) != 0) {
        if (errmsg[0] == '\0') {
            snprintf(errmsg, errmsg_len, "cannot fsync %s: %s", tmp,
                     strerror(errno));
        }
        goto cleanup;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) != 0) {
        snprintf(errmsg, errmsg_len, "cannot rename %s to %s: %s", tmp,
                 final, strerror(errno));
        goto cleanup;
    }
    made = false;
    if (fsync_path(p->parent, errmsg, errmsg_len) != 0) {
        goto cleanup; /* complete, but maybe not durable: reported */
    }
    res->applied_index = m.applied_index;
    res->applied_term = m.applied_term;
    memcpy(res->state_digest, m.state_digest, 32);
    res->n_chunks = m.n_chunks;
    res->bytes = w.bytes;
    rv = 0;
cleanup:
    if (made) {
        remove_partial(w.dirfd, tmp, m.n_chunks);
    }
    if (w.dirfd >= 0) {
        close(w.dirfd);
    }
    free(w.pending);
    kyufu_storage_crypto_wipe(w.bk, sizeof w.bk);
    kyufu_backup_manifest_free(&m);
    return rv;
}
