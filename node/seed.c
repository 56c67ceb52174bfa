/* kyufud --seed: contract in seed.h.  Happy path: refuse a folder that has
 * a store or a Raft log → lock → open a new store, restore STREAM read
 * piece by piece (a file or a pipe) → digest (compared with the expected
 * one) → kyufu_glue_seed_store (the Raft snapshot from the store, through
 * a file: never the stream in memory) → close, unlock.  With [keys], the CMK (the backup's, or the node's own) is set
 * on the store before the restore; the backup's is stored wrapped for the
 * node after the digest matched, before the Raft snapshot.  A refusal
 * after the store was made removes it. */
#include "seed.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glue.h"
#include "keys.h"
#include "limits.h"
#include "lock.h"
#include "node.h"
#include "small_file.h"
#include "storage.h"
#include "storage_limits.h"

/* The stream, read piece by piece from its file, memory file or pipe
 * (kyufuctl restore writes a backup's chunks into a pipe as it decrypts
 * them): the seed never holds it whole.  A file can be read again (a
 * restore that grew the map), a pipe cannot. */
struct fd_source
{
    int fd;
    const char *path;
    uint8_t *buf;
    size_t cap;
};

static int fd_read(void *arg, const uint8_t **data, size_t *len,
                   char *errmsg, size_t errmsg_len)
{
    struct fd_source *f = arg;
    size_t n = 0;
    while (n < f->cap) {
        ssize_t got = read(f->fd, f->buf + n, f->cap - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            snprintf(errmsg, errmsg_len, "cannot read the stream %s: %s",
                     f->path, strerror(errno));
            return -1;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
    }
    *data = f->buf;
    *len = n;
    return 0;
}

static int fd_rewind(void *arg, char *errmsg, size_t errmsg_len)
{
    struct fd_source *f = arg;
    if (lseek(f->fd, 0, SEEK_SET) != 0) {
        snprintf(errmsg, errmsg_len, "cannot read the stream %s again: %s",
                 f->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Open the stream: a regular file (not empty) or a pipe.  0, or -1
 * (errno). */
static int fd_source_open(struct fd_source *f, const char *path,
                          bool *seekable)
{
    struct stat st;
    memset(f, 0, sizeof *f);
    f->path = path;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        return -1;
    }
    if (fstat(f->fd, &st) != 0 ||
        !(S_ISFIFO(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size > 0))) {
        close(f->fd);
        errno = EINVAL;
        return -1;
    }
    *seekable = S_ISREG(st.st_mode);
    f->cap = KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
    f->buf = malloc(f->cap);
    if (f->buf == NULL) {
        close(f->fd);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static void fd_source_close(struct fd_source *f)
{
    if (f->buf != NULL) {
        kyufu_storage_crypto_wipe(f->buf, f->cap);
        free(f->buf);
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
}

/* The store kyufu_storage_open made where none was (storage/env.c: LMDB's
 * two files and the store's lock file), and its folder if it is then
 * empty (rmdir refuses otherwise). */
static void remove_new_store(const char *dir)
{
    static const char *const files[] = { "data.mdb", "lock.mdb", "kyufu.lock" };
    char p[KYUFU_NODE_PATH_BYTES_MAX + 48];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        (void)unlink(p);
    }
    (void)rmdir(dir);
}

/* The backup's CMK: exactly KYUFU_KEYS_KEY_BYTES from path (a pipe from
 * kyufuctl restore, never a file on disk).  0, or -1 (cmk wiped). */
static int read_cmk(const char *path, uint8_t cmk[KYUFU_KEYS_KEY_BYTES])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(cmk, 1, KYUFU_KEYS_KEY_BYTES, f);
    int extra = fgetc(f);
    fclose(f);
    if (n != KYUFU_KEYS_KEY_BYTES || extra != EOF) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_KEYS_KEY_BYTES);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* The store's CMK: the backup's (cmk_path) or, without one, the node's
 * own wrapped copy ([keys]).  1 a key in cmk, 0 no [keys], -1 refused
 * (said on stderr). */
static int seed_cmk(const struct kyufu_config *c, const char *cmk_path,
                    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                    uint8_t cmk[KYUFU_KEYS_KEY_BYTES])
{
    char errmsg[600];
    if (!c->keys) {
        if (cmk_path != NULL) {
            fprintf(stderr, "kyufud: --seed: a cluster key was given but %s has "
                    "no [keys] section to wrap it with; nothing changed\n", c->path);
            return -1;
        }
        return 0;
    }
    if (kyufu_keys_ca_hash(c->tls_ca, ca_hash, errmsg, sizeof errmsg) != 0) {
        fprintf(stderr, "kyufud: --seed: %s; nothing changed\n", errmsg);
        return -1;
    }
    if (cmk_path != NULL) {
        if (read_cmk(cmk_path, cmk) != 0) {
            fprintf(stderr, "kyufud: --seed: cannot read %u key bytes from %s; "
                    "nothing changed\n", KYUFU_KEYS_KEY_BYTES, cmk_path);
            return -1;
        }
        return 1;
    }
    struct kyufu_keys_source src = {
        .kek_file = c->keys_kek_file[0] != '\0' ? c->keys_kek_file : NULL,
        .passphrase_file =
            c->keys_passphrase_file[0] != '\0' ? c->keys_passphrase_file : NULL,
    };
    if (kyufu_keys_cmk_load(&src, c->keys_cmk_file, c->id, ca_hash, cmk, errmsg,
                            sizeof errmsg) != 0) {
        fprintf(stderr, "kyufud: --seed: %s; nothing changed\n", errmsg);
        return -1;
    }
    return 1;
}

/* Replace the node's wrapped CMK (the fresh one cluster init made) by cmk
 * wrapped under the node's KEK with its binding: written whole under a
 * temporary name, then renamed over.  0, or -1 (said on stderr). */
static int seed_cmk_store(const struct kyufu_config *c,
                          const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                          const uint8_t cmk[KYUFU_KEYS_KEY_BYTES])
{
    char errmsg[600];
    char tmp[KYUFU_NODE_PATH_BYTES_MAX + 16];
    struct kyufu_keys_source src = {
        .kek_file = c->keys_kek_file[0] != '\0' ? c->keys_kek_file : NULL,
        .passphrase_file =
            c->keys_passphrase_file[0] != '\0' ? c->keys_passphrase_file : NULL,
    };
    snprintf(tmp, sizeof tmp, "%s.restore", c->keys_cmk_file);
    (void)unlink(tmp);
    if (kyufu_keys_cmk_store(&src, tmp, c->id, ca_hash, cmk, errmsg,
                             sizeof errmsg) != 0) {
        fprintf(stderr, "kyufud: --seed: %s\n", errmsg);
        return -1;
    }
    if (rename(tmp, c->keys_cmk_file) != 0) {
        fprintf(stderr, "kyufud: --seed: cannot rename %s to %s: %s\n", tmp,
                c->keys_cmk_file, strerror(errno));
        (void)unlink(tmp);
        return -1;
    }
    /* The rename is durable before the store sealed under this CMK is. */
    char dir[KYUFU_NODE_PATH_BYTES_MAX + 1] = ".";
    const char *slash = strrchr(c->keys_cmk_file, '/');
    if (slash != NULL) {
        size_t len = slash == c->keys_cmk_file
                         ? 1
                         : (size_t)(slash - c->keys_cmk_file);
        if (len >= sizeof dir) {
            len = sizeof dir - 1; /* config paths are shorter (limits.h) */
        }
        memcpy(dir, c->keys_cmk_file, len);
        dir[len] = '\0';
    }
    if (kyufu_small_file_sync_dir(dir, errmsg, sizeof errmsg) != 0) {
        fprintf(stderr, "kyufud: --seed: %s\n", errmsg);
        return -1;
    }
    return 0;
}

int kyufu_node_seed(const struct kyufu_config *c, const char *stream_path,
                    const char *digest, const char *cmk_path, FILE *out)
{
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES];
    int have_cmk = 0;
    char errmsg[512];
    char path[KYUFU_NODE_PATH_BYTES_MAX + 32];
    struct fd_source in = {.fd = -1};
    bool seekable = false;
    struct kyufu_storage *s = NULL;
    int status = 1;
    int rv;

    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", c->data_dir,
                 i == 0 ? "ledger/data.mdb" : "raft/metadata1");
        if (access(path, F_OK) == 0) {
            fprintf(stderr, "kyufud: --seed: %s exists: seed only a new node's "
                    "empty data folder; nothing changed\n", path);
            return 1;
        }
    }
    have_cmk = seed_cmk(c, cmk_path, ca_hash, cmk);
    if (have_cmk < 0) {
        return 1;
    }
    if (fd_source_open(&in, stream_path, &seekable) != 0) {
        fprintf(stderr, "kyufud: --seed: cannot read the stream %s: %s; "
                "nothing changed\n", stream_path, strerror(errno));
        return 1;
    }
    int lock = kyufu_node_lock(c->data_dir, errmsg, sizeof errmsg);
    if (lock < 0) {
        fprintf(stderr, "kyufud: --seed: %s; nothing changed\n", errmsg);
        goto out_stream;
    }
    snprintf(path, sizeof path, "%s/ledger", c->data_dir);
    struct kyufu_storage_options so;
    memset(&so, 0, sizeof so);
    so.path = path;
    rv = kyufu_storage_open(&so, &s, errmsg, sizeof errmsg);
    if (rv != 0) {
        fprintf(stderr, "kyufud: --seed: store %s: %s: %s\n", path,
                kyufu_storage_strerror(rv), errmsg);
        goto out_lock;
    }
    if (have_cmk == 1) {
        kyufu_storage_keys_set(s, cmk);
    }
    struct kyufu_storage_source src = {
        .read = fd_read, .rewind = seekable ? fd_rewind : NULL, .arg = &in};
    rv = kyufu_storage_restore_stream(s, &src, errmsg, sizeof errmsg);
    if (rv != 0) {
        /* restore commits only a stream it checked whole: the store is the
         * empty one made above; remove it, so nothing changed. */
        kyufu_storage_close(s);
        s = NULL;
        remove_new_store(path);
        fprintf(stderr, "kyufud: --seed: the stream %s is refused: %s: %s; "
                "nothing changed\n", stream_path, kyufu_storage_strerror(rv),
                errmsg);
        status = rv == KYUFU_STORAGE_ECORRUPT ? KYUFU_NODE_EXIT_REFUSED_DATA : 1;
        goto out_lock;
    }
    uint64_t index, term, at;
    uint8_t got[32];
    kyufu_storage_applied(s, &index, &term);
    rv = kyufu_storage_digest(s, got, &at);
    if (rv != 0 || index == 0 || term == 0) {
        fprintf(stderr, "kyufud: --seed: the stream's state is at index %" PRIu64
                " term %" PRIu64 "%s: a backup is always of a running cluster; "
                "delete %s\n", index, term, rv != 0 ? " (no digest)" : "", path);
        status = KYUFU_NODE_EXIT_REFUSED_DATA;
        goto out_store;
    }
    char hex[65];
    for (int i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    }
    if (digest != NULL && strcmp(digest, hex) != 0) {
        kyufu_storage_close(s);
        s = NULL;
        remove_new_store(path);
        fprintf(stderr, "kyufud: --seed: the stream's state digest %s is not "
                "the expected %s (another backup's stream?); nothing changed\n",
                hex, digest);
        status = KYUFU_NODE_EXIT_REFUSED_DATA;
        goto out_lock;
    }
    if (cmk_path != NULL && seed_cmk_store(c, ca_hash, cmk) != 0) {
        kyufu_storage_close(s);
        s = NULL;
        remove_new_store(path);
        fprintf(stderr, "kyufud: --seed: the cluster key is not stored; "
                "nothing changed\n");
        goto out_lock;
    }
    struct kyufu_glue_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
    for (size_t i = 0; i < c->n_peers; i++) {
        memset(&peers[i], 0, sizeof peers[i]);
        peers[i].id = c->peers[i].id;
        peers[i].address = c->peers[i].raft_address;
    }
    snprintf(path, sizeof path, "%s/raft", c->data_dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "kyufud: --seed: cannot create %s: %s\n", path,
                strerror(errno));
        goto out_store;
    }
    rv = kyufu_glue_seed_store(path, c->id, c->raft_address, peers,
                               c->n_peers, s, errmsg, sizeof errmsg);
    if (rv != 0) {
        fprintf(stderr, "kyufud: --seed: %s: %s; delete %s/ledger and %s before "
                "seeding again\n", kyufu_glue_strerror(rv), errmsg, c->data_dir,
                path);
        goto out_store;
    }
    fprintf(out, "seeded node %" PRIu64 ": applied index %" PRIu64 " term %" PRIu64
            ", state digest %s, %zu voters\n", c->id, index, term, hex, c->n_peers);
    status = fflush(out) == 0 ? 0 : 1;
out_store:
    if (s != NULL) {
        kyufu_storage_close(s);
    }
out_lock:
    kyufu_node_unlock(lock);
out_stream:
    fd_source_close(&in);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    return status;
}
