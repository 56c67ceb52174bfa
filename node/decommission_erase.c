/* The inventory and the erasure of a decommissioned node's files
 * (decommission.h).  Blocking file I/O: kyufud runs it only after its
 * glue and store are closed, when nothing else of the node runs, except
 * that libraft 0.22.1 may finish a truncate in the raft folder a moment
 * after the glue reported closed (docs/raft.md "raft_uv reports closed
 * twice").  A file that vanishes during the walk is listed with its error
 * (it may have been moved, not deleted) and the walk goes on, so the keys
 * and every other file are still erased and the report says the erase is
 * incomplete; a file that appears after the walk stays, its folder is not
 * removed, and the report says so too. */
#include "decommission.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "limits.h"

static int fail(char *errmsg, size_t len, const char *what, const char *path,
                int err)
{
    snprintf(errmsg, len, "%s %s: %s", what, path, strerror(err));
    return -1;
}

static int hash_file(const char *path, uint64_t *size, uint8_t out[32],
                     char *errmsg, size_t errmsg_len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 1 : fail(errmsg, errmsg_len, "open", path, errno);
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(KYUFU_NODE_DECOM_CHUNK_BYTES);
    int rv = -1;
    if (md == NULL || buf == NULL ||
        EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        snprintf(errmsg, errmsg_len, "hash %s: out of memory", path);
        goto out;
    }
    uint64_t total = 0;
    for (;;) {
        ssize_t got = read(fd, buf, KYUFU_NODE_DECOM_CHUNK_BYTES);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            fail(errmsg, errmsg_len, "read", path, errno);
            goto out;
        }
        if (got == 0) {
            break;
        }
        EVP_DigestUpdate(md, buf, (size_t)got);
        total += (uint64_t)got;
    }
    unsigned int n = 0;
    EVP_DigestFinal_ex(md, out, &n);
    *size = total;
    rv = 0;
out:
    free(buf);
    EVP_MD_CTX_free(md);
    close(fd);
    return rv;
}

static int add(struct kyufu_decom_inventory *inv, const char *path,
               enum kyufu_decom_kind kind, bool regular, char *errmsg,
               size_t errmsg_len)
{
    if (inv->n >= KYUFU_NODE_DECOM_FILES_MAX) {
        snprintf(errmsg, errmsg_len, "more than %u files to erase",
                 KYUFU_NODE_DECOM_FILES_MAX);
        return -1;
    }
    if (inv->n == inv->cap) {
        size_t cap = inv->cap == 0 ? 64 : inv->cap * 2;
        struct kyufu_decom_file *f = realloc(inv->files, cap * sizeof *f);
        if (f == NULL) {
            snprintf(errmsg, errmsg_len, "out of memory");
            return -1;
        }
        inv->files = f;
        inv->cap = cap;
    }
    struct kyufu_decom_file *f = &inv->files[inv->n];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (f->path == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    f->kind = kind;
    f->regular = regular;
    int hashed = regular ? hash_file(path, &f->size, f->sha256, errmsg,
                                     errmsg_len)
                         : 0;
    if (hashed > 0) { /* vanished since it was listed: see the top */
        f->regular = false;
        f->size = 0;
        f->error = ENOENT;
    } else if (hashed < 0) {
        free(f->path);
        return -1;
    }
    inv->n++;
    return 0;
}

static int add_dir(struct kyufu_decom_inventory *inv, const char *path,
                   char *errmsg, size_t errmsg_len)
{
    if (inv->n_dirs == inv->cap_dirs) {
        size_t cap = inv->cap_dirs == 0 ? 8 : inv->cap_dirs * 2;
        char **d = realloc(inv->dirs, cap * sizeof *d);
        if (d == NULL) {
            snprintf(errmsg, errmsg_len, "out of memory");
            return -1;
        }
        inv->dirs = d;
        inv->cap_dirs = cap;
    }
    inv->dirs[inv->n_dirs] = strdup(path);
    if (inv->dirs[inv->n_dirs] == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    inv->n_dirs++;
    return 0;
}

static int walk(struct kyufu_decom_inventory *inv, const char *dir,
                enum kyufu_decom_kind kind, unsigned depth, char *errmsg,
                size_t errmsg_len)
{
    if (depth > KYUFU_NODE_DECOM_DEPTH_MAX) {
        snprintf(errmsg, errmsg_len, "%s: more than %u folders deep", dir,
                 KYUFU_NODE_DECOM_DEPTH_MAX);
        return -1;
    }
    if (add_dir(inv, dir, errmsg, errmsg_len) != 0) {
        return -1;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT && depth > 0) {
            return 0; /* vanished since listed: its rmdir fails, said so */
        }
        return fail(errmsg, errmsg_len, "open folder", dir, errno);
    }
    int rv = 0;
    struct dirent *e;
    char path[KYUFU_NODE_PATH_BYTES_MAX * 2];
    while (rv == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path) {
            snprintf(errmsg, errmsg_len, "%s: path too long", dir);
            rv = -1;
            break;
        }
        struct stat st;
        if (lstat(path, &st) != 0) {
            if (errno != ENOENT) {
                rv = fail(errmsg, errmsg_len, "stat", path, errno);
                break;
            }
            /* Vanished since readdir: listed with its error (see the top). */
            rv = add(inv, path, kind, false, errmsg, errmsg_len);
            if (rv == 0) {
                inv->files[inv->n - 1].error = ENOENT;
            }
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            rv = walk(inv, path, kind, depth + 1, errmsg, errmsg_len);
        } else {
            rv = add(inv, path, kind, S_ISREG(st.st_mode), errmsg, errmsg_len);
        }
    }
    if (rv == 0 && errno != 0) {
        rv = fail(errmsg, errmsg_len, "read folder", dir, errno);
    }
    closedir(d);
    return rv;
}

int kyufu_decom_add_tree(struct kyufu_decom_inventory *inv, const char *root,
                         enum kyufu_decom_kind kind, const char *key_sub,
                         char *errmsg, size_t errmsg_len)
{
    struct stat st;
    if (lstat(root, &st) != 0) {
        return errno == ENOENT ? 0 : fail(errmsg, errmsg_len, "stat", root, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errmsg, errmsg_len, "%s: not a folder", root);
        return -1;
    }
    size_t first = inv->n;
    if (walk(inv, root, kind, 0, errmsg, errmsg_len) != 0) {
        return -1;
    }
    if (key_sub != NULL) {
        char prefix[KYUFU_NODE_PATH_BYTES_MAX * 2];
        int n = snprintf(prefix, sizeof prefix, "%s/%s/", root, key_sub);
        if (n < 0 || (size_t)n >= sizeof prefix) {
            snprintf(errmsg, errmsg_len, "%s: path too long", root);
            return -1;
        }
        for (size_t i = first; i < inv->n; i++) {
            if (strncmp(inv->files[i].path, prefix, (size_t)n) == 0) {
                inv->files[i].kind = KYUFU_DECOM_KEY;
            }
        }
    }
    return 0;
}

int kyufu_decom_add_file(struct kyufu_decom_inventory *inv, const char *path,
                         enum kyufu_decom_kind kind, char *errmsg,
                         size_t errmsg_len)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return errno == ENOENT ? 0 : fail(errmsg, errmsg_len, "stat", path, errno);
    }
    return add(inv, path, kind, S_ISREG(st.st_mode), errmsg, errmsg_len);
}

/* Overwrite f's `size` bytes with random ones and fsync: the bytes the
 * inventory hashed, not what the file may have grown to (nothing writes
 * it any more: the node's store and glue are closed). */
static int overwrite(struct kyufu_decom_file *f, uint8_t *buf)
{
    int fd = open(f->path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    struct stat st;
    int err = 0;
    if (fstat(fd, &st) != 0) {
        err = errno;
        goto out;
    }
    /* The larger of the two: a file that grew since is covered whole. */
    uint64_t size = (uint64_t)st.st_size > f->size ? (uint64_t)st.st_size
                                                   : f->size;
    for (uint64_t off = 0; off < size;) {
        size_t chunk = size - off < KYUFU_NODE_DECOM_CHUNK_BYTES
                           ? (size_t)(size - off)
                           : KYUFU_NODE_DECOM_CHUNK_BYTES;
        if (RAND_bytes(buf, (int)chunk) != 1) {
            err = EIO;
            goto out;
        }
        ssize_t put = pwrite(fd, buf, chunk, (off_t)off);
        if (put < 0 && errno == EINTR) {
            continue;
        }
        if (put <= 0) {
            err = put < 0 ? errno : EIO;
            goto out;
        }
        off += (uint64_t)put;
    }
    if (fsync(fd) != 0) {
        err = errno;
    }
out:
    close(fd);
    return err;
}

static void erase_one(struct kyufu_decom_file *f, uint8_t *buf)
{
    if (f->regular) {
        f->error = overwrite(f, buf);
        if (f->error != 0) {
            return; /* kept: the report says it was not erased */
        }
        f->overwritten = true;
    }
    if (unlink(f->path) != 0) {
        f->error = errno;
        return;
    }
    f->removed = true;
}

int kyufu_decom_erase(struct kyufu_decom_inventory *inv)
{
    uint8_t *buf = malloc(KYUFU_NODE_DECOM_CHUNK_BYTES);
    int rv = 0;
    if (buf == NULL) {
        for (size_t i = 0; i < inv->n; i++) {
            inv->files[i].error = ENOMEM;
        }
        inv->dirs_left = inv->n_dirs;
        return -1;
    }
    /* Keys first: once they are gone nothing else is readable. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < inv->n; i++) {
            struct kyufu_decom_file *f = &inv->files[i];
            if ((pass == 0) != (f->kind == KYUFU_DECOM_KEY)) {
                continue;
            }
            if (f->error != 0) {
                /* Vanished during the walk: whatever is at its name now
                 * was never listed, so it is not touched (and the erase
                 * is not complete). */
                rv = -1;
                continue;
            }
            erase_one(f, buf);
            rv |= f->removed ? 0 : -1;
        }
    }
    free(buf);
    /* Children were listed after their parents. */
    inv->dirs_left = 0;
    for (size_t i = inv->n_dirs; i-- > 0;) {
        if (rmdir(inv->dirs[i]) != 0) {
            inv->dirs_left++;
            rv = -1;
        }
    }
    return rv;
}

void kyufu_decom_inventory_free(struct kyufu_decom_inventory *inv)
{
    for (size_t i = 0; i < inv->n; i++) {
        free(inv->files[i].path);
    }
    for (size_t i = 0; i < inv->n_dirs; i++) {
        free(inv->dirs[i]);
    }
    free(inv->files);
    free(inv->dirs);
    memset(inv, 0, sizeof *inv);
}

int kyufu_decom_add_children(struct kyufu_decom_inventory *inv,
                             const char *dir, enum kyufu_decom_kind kind,
                             bool (*want)(const char *path, const void *arg),
                             const void *arg, char *errmsg, size_t errmsg_len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? 0 : fail(errmsg, errmsg_len, "open", dir, errno);
    }
    int rv = 0;
    struct dirent *e;
    while (rv == 0 && (e = readdir(d)) != NULL) {
        char path[KYUFU_NODE_PATH_BYTES_MAX * 2];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        int n = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof path) {
            snprintf(errmsg, errmsg_len, "%s: path too long", dir);
            rv = -1;
        } else if (lstat(path, &st) != 0) {
            if (errno != ENOENT) {
                rv = fail(errmsg, errmsg_len, "stat", path, errno);
            }
        } else if (S_ISDIR(st.st_mode) && (want == NULL || want(path, arg))) {
            rv = kyufu_decom_add_tree(inv, path, kind, NULL, errmsg,
                                      errmsg_len);
        }
    }
    closedir(d);
    return rv;
}
