/* kyufu-powerfs: a FUSE passthrough filesystem that can lose power.
 *
 *   kyufu-powerfs BACKING_DIR MOUNTPOINT --control SOCKET [--held-max BYTES]
 *
 * Every path under MOUNTPOINT is BACKING_DIR's.  What a process writes to a
 * file is NOT written to the backing file: it is held in memory as a list of
 * extents (offset, bytes), in write order, per file (keyed by the backing
 * inode, so renames and hard links keep it), and read back overlaid on the
 * backing file's bytes.  fsync(2) or fdatasync(2) of the file (any open
 * descriptor of it; msync(2) of a shared mapping reaches us as writes then
 * an fsync) writes the held extents to the backing file in order and forgets
 * them.  close(2) makes nothing durable.  The held bytes of all files
 * together are bounded (--held-max, default HELD_MAX_DEFAULT): a write past
 * the bound fails with ENOSPC and holds nothing, so a writer that never
 * syncs meets a full disk rather than an out-of-memory powerfs.  A write made durable by O_DSYNC,
 * O_SYNC or RWF_DSYNC reaches us as the write and then an fsync, which the
 * kernel sends after the write (generic_write_sync) -- but not for direct
 * I/O submitted with Linux AIO (io_submit, raft_uv's path for its open
 * segments) while the connection has asynchronous direct I/O: that write
 * completes later and the kernel's FUSE never syncs it.  powerfs turns
 * FUSE_CAP_ASYNC_DIO off at init, so such writes complete synchronously and
 * are followed by their fsync.  (Found by this tool: with asynchronous direct
 * I/O every Raft entry was lost at a cut, and the nodes refused to start,
 * "the Raft log ends at 1".)
 *
 * The control socket (a Unix stream socket) takes one line per connection:
 *   "pending\n"  reply: what a cut would drop now
 *   "cut\n"      drop every held extent of every file, then refuse every
 *                operation with EIO until unmounted (fusermount3 -u): the
 *                processes on the mount behave as on a machine that lost
 *                power, and a new mount of BACKING_DIR shows the synced state
 * The reply is one line "files=F extents=E bytes=B" and then one line per
 * file with held extents, "file PATH extents=E bytes=B", and "end".  The cut
 * is also logged on stderr.  An unmount without a cut is a clean shutdown:
 * what is held is written to the backing files first.
 *
 * What is modelled:
 *   - file data written and not fsynced/fdatasynced by the cut is lost, all
 *     of it, whatever the page cache or the order of the writes;
 *   - data fsynced before the cut survives;
 *   - after the cut nothing more reaches the backing directory.
 * What is NOT modelled (a real disk can do worse):
 *   - metadata: create, mkdir, rename, unlink, link, symlink, truncate,
 *     fallocate, chmod and utimens are applied to BACKING_DIR at once, so
 *     they survive a cut as if the directory (and the inode) had been synced
 *     right after; a real file system loses a rename or a create that its
 *     directory's fsync did not cover, and a truncate or a size change that
 *     no fsync covered.  A file created after the last directory fsync is
 *     kept here (with its synced bytes), where a real disk may drop it;
 *   - partial loss: a cut drops every unsynced write; a real disk may keep
 *     any subset of them, in any order (a later write kept, an earlier one
 *     lost), and may tear a sector or a page in the middle;
 *   - fsync of the backing file: the backing directory lives on a real file
 *     system that does not lose power here, so powerfs never syncs it;
 *   - extended attributes, POSIX and flock locks (the kernel keeps locks on
 *     a FUSE mount by itself when the filesystem implements none: they work
 *     between processes on one mount and need no durability), O_DIRECT
 *     (stripped; the kernel still sends such writes straight to us).
 *
 * O_TMPFILE works (powerfs_loop.c: libraft writes its snapshots that way).
 *
 * Concurrency: one request loop (powerfs_loop.c) and the control thread;
 * one mutex around every operation (a test tool: simplicity over speed).
 */
#define FUSE_USE_VERSION 35

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "powerfs_extents.h"
#include "powerfs_loop.h"

/* One backing inode with an open descriptor or held extents. */
struct pnode {
    ino_t ino;
    dev_t dev;
    int open;          /* open file handles of ours on it */
    bool gone;         /* unlinked (last link) while open */
    char *path;        /* last path seen, for the report */
    char *tmp;         /* O_TMPFILE: its hidden name (see tmpfile_rewrite) */
    struct powerfs_extents ext;
    struct pnode *next;
};

/* One open file: fi->fh points to it. */
struct pfile {
    int fd;            /* on the backing file, O_RDWR when allowed */
    struct pnode *node;
};

/* 1 GiB: far above what a test node holds between two syncs (kyufud syncs
 * each Raft append, and its store at each commit or every 100 ms), far
 * below the test machines' memory. */
#define HELD_MAX_DEFAULT ((uint64_t)1 << 30)

static uint64_t held_max = HELD_MAX_DEFAULT;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int backing_fd = -1;   /* BACKING_DIR, O_PATH|O_DIRECTORY */
static bool cut;              /* power lost: every operation fails */
static struct pnode *nodes;

/* "/a/b" -> "a/b", "/" -> "." (for the *at() calls on backing_fd). */
static const char *rel(const char *path)
{
    assert(path != NULL && path[0] == '/');
    return path[1] == '\0' ? "." : path + 1;
}

static struct pnode *node_find(dev_t dev, ino_t ino)
{
    for (struct pnode *n = nodes; n != NULL; n = n->next) {
        if (n->ino == ino && n->dev == dev) {
            return n;
        }
    }
    return NULL;
}

static void node_free(struct pnode *n)
{
    struct pnode **pp = &nodes;
    while (*pp != n) {
        assert(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = n->next;
    powerfs_extents_clear(&n->ext);
    free(n->path);
    free(n->tmp);
    free(n);
}

/* Free n if nothing holds it: no open handle, and no held data (or the file
 * is gone, so its data can never be read or synced). */
static void node_maybe_free(struct pnode *n)
{
    if (n->open == 0 && (n->gone || n->ext.n == 0)) {
        node_free(n);
    }
}

static void node_set_path(struct pnode *n, const char *path)
{
    char *p = strdup(path);
    if (p != NULL) {
        free(n->path);
        n->path = p;
    }
}

/* The node of the file at path if that path is its last link (NULL if
 * none): an unlink or a rename over it will take the file's held data. */
static struct pnode *last_link(const char *path)
{
    struct stat st;
    if (fstatat(backing_fd, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || st.st_nlink > 1) {
        return NULL;
    }
    return node_find(st.st_dev, st.st_ino);
}

/* After a successful unlink or rename over n's last link. */
static void unlinked(struct pnode *n)
{
    if (n != NULL) {
        n->gone = true;
        node_maybe_free(n);
    }
}

static void size_overlay(struct stat *st)
{
    if (!S_ISREG(st->st_mode)) {
        return;
    }
    struct pnode *n = node_find(st->st_dev, st->st_ino);
    if (n != NULL && n->ext.end > (uint64_t)st->st_size) {
        st->st_size = (off_t)n->ext.end;
        st->st_blocks = (blkcnt_t)((n->ext.end + 511) / 512);
    }
}

#define LOCKED_OR_EIO()                \
    do {                               \
        pthread_mutex_lock(&mu);       \
        if (cut) {                     \
            pthread_mutex_unlock(&mu); \
            return -EIO;               \
        }                              \
    } while (0)

static int ret_errno(int rv)
{
    int e = errno;
    pthread_mutex_unlock(&mu);
    return rv < 0 ? -e : 0;
}

static void *pf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    /* Synchronous direct I/O: see the header (O_DSYNC, RWF_DSYNC). */
    conn->want &= ~(unsigned)FUSE_CAP_ASYNC_DIO;
    /* Every request in memory, so tmpfile_rewrite can read it. */
    conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
    cfg->use_ino = 1;
    cfg->hard_remove = 1; /* no .fuse_hidden files in the directories */
    cfg->nullpath_ok = 1;
    return NULL;
}

static int pf_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int rv = fi != NULL ? fstat(((struct pfile *)fi->fh)->fd, st)
                        : fstatat(backing_fd, rel(path), st,
                                  AT_SYMLINK_NOFOLLOW);
    if (rv == 0) {
        size_overlay(st);
    }
    return ret_errno(rv);
}

static int pf_readlink(const char *path, char *buf, size_t size)
{
    LOCKED_OR_EIO();
    ssize_t n = readlinkat(backing_fd, rel(path), buf, size - 1);
    if (n >= 0) {
        buf[n] = '\0';
    }
    return ret_errno(n < 0 ? -1 : 0);
}

static int pf_mkdir(const char *path, mode_t mode)
{
    LOCKED_OR_EIO();
    return ret_errno(mkdirat(backing_fd, rel(path), mode));
}

static int pf_unlink(const char *path)
{
    LOCKED_OR_EIO();
    struct pnode *n = last_link(path);
    int rv = unlinkat(backing_fd, rel(path), 0);
    if (rv == 0) {
        unlinked(n);
    }
    return ret_errno(rv);
}

static int pf_rmdir(const char *path)
{
    LOCKED_OR_EIO();
    return ret_errno(unlinkat(backing_fd, rel(path), AT_REMOVEDIR));
}

static int pf_symlink(const char *target, const char *path)
{
    LOCKED_OR_EIO();
    return ret_errno(symlinkat(target, backing_fd, rel(path)));
}

static int pf_rename(const char *from, const char *to, unsigned int flags)
{
    LOCKED_OR_EIO();
    /* RENAME_EXCHANGE keeps both files; RENAME_NOREPLACE replaces none. */
    struct pnode *over = flags == 0 ? last_link(to) : NULL;
    int rv = renameat2(backing_fd, rel(from), backing_fd, rel(to), flags);
    if (rv == 0) {
        unlinked(over);
    }
    struct stat st;
    if (rv == 0 && fstatat(backing_fd, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        struct pnode *n = node_find(st.st_dev, st.st_ino);
        if (n != NULL) {
            node_set_path(n, to);
        }
    }
    return ret_errno(rv);
}

/* linkat(2) of an O_TMPFILE file gives it its first name: the hidden name
 * it had here goes (tmpfile_rewrite). */
static int pf_link(const char *from, const char *to)
{
    LOCKED_OR_EIO();
    int rv = linkat(backing_fd, rel(from), backing_fd, rel(to), 0);
    struct stat st;
    if (rv == 0 && fstatat(backing_fd, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        struct pnode *n = node_find(st.st_dev, st.st_ino);
        if (n != NULL && n->tmp != NULL && strcmp(n->tmp, from) == 0) {
            (void)unlinkat(backing_fd, rel(n->tmp), 0);
            free(n->tmp);
            n->tmp = NULL;
            node_set_path(n, to);
        }
    }
    return ret_errno(rv);
}

static int pf_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int rv = fi != NULL ? fchmod(((struct pfile *)fi->fh)->fd, mode)
                        : fchmodat(backing_fd, rel(path), mode, 0);
    return ret_errno(rv);
}

static int pf_chown(const char *path, uid_t uid, gid_t gid,
                    struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int rv = fi != NULL ? fchown(((struct pfile *)fi->fh)->fd, uid, gid)
                        : fchownat(backing_fd, rel(path), uid, gid,
                                   AT_SYMLINK_NOFOLLOW);
    return ret_errno(rv);
}

/* The held extents of the file at fd, clipped to size (the truncate itself
 * is applied to the backing file at once: see the header). */
static void clip(int fd, off_t size)
{
    struct stat st;
    if (fstat(fd, &st) == 0) {
        struct pnode *n = node_find(st.st_dev, st.st_ino);
        if (n != NULL) {
            powerfs_extents_truncate(&n->ext, (uint64_t)size);
        }
    }
}

static int pf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int fd = fi != NULL ? ((struct pfile *)fi->fh)->fd
                        : openat(backing_fd, rel(path),
                                 O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return ret_errno(-1);
    }
    int rv = ftruncate(fd, size);
    if (rv == 0) {
        clip(fd, size);
    }
    int e = errno;
    if (fi == NULL) {
        close(fd);
    }
    errno = e;
    return ret_errno(rv);
}

static int pf_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int rv = fi != NULL ? futimens(((struct pfile *)fi->fh)->fd, tv)
                        : utimensat(backing_fd, rel(path), tv,
                                    AT_SYMLINK_NOFOLLOW);
    return ret_errno(rv);
}

/* Opens the backing file read-write when it can (a later fsync through a
 * read-only descriptor must still write the held extents), without
 * O_DIRECT or O_APPEND (we write at the kernel's offsets, in buffered
 * I/O); the kernel enforces the caller's own access mode.  O_NOFOLLOW
 * always: the kernel resolves the mount's symlinks itself and sends us the
 * target's path, so a symlink here was swapped into BACKING_DIR behind the
 * kernel's back, and following it could leave BACKING_DIR. */
static int open_common(const char *path, int flags, mode_t mode, bool create,
                       struct fuse_file_info *fi)
{
    int f = (flags & ~(O_ACCMODE | O_DIRECT | O_APPEND)) | O_NOFOLLOW |
            O_CLOEXEC;
    int fd = openat(backing_fd, rel(path), f | O_RDWR, mode);
    if (fd < 0 && (errno == EACCES || errno == EISDIR || errno == EROFS)) {
        fd = openat(backing_fd, rel(path), f | (flags & O_ACCMODE), mode);
    }
    if (fd < 0) {
        return ret_errno(-1);
    }
    struct stat st;
    struct pfile *pf = malloc(sizeof *pf);
    if (pf == NULL || fstat(fd, &st) != 0) {
        goto err;
    }
    pf->fd = fd;
    pf->node = node_find(st.st_dev, st.st_ino);
    if (pf->node == NULL) {
        pf->node = calloc(1, sizeof *pf->node);
        if (pf->node == NULL) {
            goto err;
        }
        pf->node->ino = st.st_ino;
        pf->node->dev = st.st_dev;
        pf->node->next = nodes;
        nodes = pf->node;
    }
    pf->node->open++;
    node_set_path(pf->node, path);
    if ((flags & O_TRUNC) != 0) {
        powerfs_extents_truncate(&pf->node->ext, 0);
    }
    (void)create;
    fi->fh = (uint64_t)(uintptr_t)pf;
    pthread_mutex_unlock(&mu);
    return 0;

err:
    free(pf);
    close(fd);
    pthread_mutex_unlock(&mu);
    return -ENOMEM;
}

static int pf_open(const char *path, struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    return open_common(path, fi->flags, 0, false, fi);
}

static bool tmp_name(const char *path)
{
    const char *base = strrchr(path, '/');
    return strncmp(base != NULL ? base + 1 : path, TMP_PREFIX,
                   sizeof TMP_PREFIX - 1) == 0;
}

static int pf_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int rv = open_common(path, fi->flags | O_CREAT, mode, true, fi);
    if (rv == 0 && tmp_name(path)) {
        struct pnode *n = ((struct pfile *)fi->fh)->node;
        free(n->tmp);
        n->tmp = strdup(path); /* NULL: the name stays, hidden (readdir) */
    }
    return rv;
}

static int pf_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    (void)path;
    LOCKED_OR_EIO();
    struct pfile *pf = (struct pfile *)fi->fh;
    struct stat st;
    if (fstat(pf->fd, &st) != 0) {
        return ret_errno(-1);
    }
    uint64_t end = (uint64_t)st.st_size > pf->node->ext.end
                       ? (uint64_t)st.st_size : pf->node->ext.end;
    if ((uint64_t)off >= end) {
        pthread_mutex_unlock(&mu);
        return 0;
    }
    if ((uint64_t)off + size > end) {
        size = (size_t)(end - (uint64_t)off);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(pf->fd, buf + got, size - got, off + (off_t)got);
        if (n < 0) {
            return ret_errno(-1);
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    memset(buf + got, 0, size - got); /* held bytes past the backing end */
    powerfs_extents_overlay(&pf->node->ext, buf, size, (uint64_t)off);
    pthread_mutex_unlock(&mu);
    return (int)size;
}

static int pf_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)path;
    LOCKED_OR_EIO();
    struct pfile *pf = (struct pfile *)fi->fh;
    uint64_t held = 0;
    for (struct pnode *n = nodes; n != NULL; n = n->next) {
        held += n->ext.bytes;
    }
    if (held > held_max || size > held_max - held) {
        static bool said;
        if (!said) {
            said = true;
            fprintf(stderr, "kyufu-powerfs: %llu bytes held unsynced, "
                    "--held-max %llu: writes fail with ENOSPC until a sync\n",
                    (unsigned long long)held, (unsigned long long)held_max);
        }
        pthread_mutex_unlock(&mu);
        return -ENOSPC;
    }
    if (powerfs_extents_add(&pf->node->ext, buf, size, (uint64_t)off) != 0) {
        pthread_mutex_unlock(&mu);
        return -ENOMEM;
    }
    pthread_mutex_unlock(&mu);
    return (int)size;
}

static int pf_statfs(const char *path, struct statvfs *sv)
{
    (void)path;
    LOCKED_OR_EIO();
    return ret_errno(fstatvfs(backing_fd, sv));
}

static int pf_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    pthread_mutex_lock(&mu);
    struct pfile *pf = (struct pfile *)fi->fh;
    close(pf->fd);
    assert(pf->node->open > 0);
    pf->node->open--;
    if (!cut && pf->node->open == 0 && pf->node->tmp != NULL) {
        /* An O_TMPFILE file closed before any linkat(2): it is gone. */
        (void)unlinkat(backing_fd, rel(pf->node->tmp), 0);
        free(pf->node->tmp);
        pf->node->tmp = NULL;
        pf->node->gone = true;
    }
    if (!cut) {
        node_maybe_free(pf->node);
    }
    free(pf);
    pthread_mutex_unlock(&mu);
    return 0;
}

static int pf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    LOCKED_OR_EIO();
    struct pfile *pf = (struct pfile *)fi->fh;
    int rv = powerfs_extents_flush(&pf->node->ext, pf->fd);
    int e = errno;
    pthread_mutex_unlock(&mu);
    return rv == 0 ? 0 : -e;
}

static int pf_opendir(const char *path, struct fuse_file_info *fi)
{
    LOCKED_OR_EIO();
    int fd = openat(backing_fd, rel(path),
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return ret_errno(-1);
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        pthread_mutex_unlock(&mu);
        return -e;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    pthread_mutex_unlock(&mu);
    return 0;
}

static int pf_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
                      off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)path;
    (void)off;
    (void)flags;
    LOCKED_OR_EIO();
    DIR *d = (DIR *)(uintptr_t)fi->fh;
    rewinddir(d);
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        memset(&st, 0, sizeof st);
        st.st_ino = de->d_ino;
        st.st_mode = (mode_t)DTTOIF(de->d_type);
        if (tmp_name(de->d_name)) {
            continue; /* an O_TMPFILE file has no name to list */
        }
        if (fill(buf, de->d_name, &st, 0, 0) != 0) {
            break;
        }
    }
    return ret_errno(errno != 0 ? -1 : 0);
}

static int pf_releasedir(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

/* Directory entries are applied at once (header: not modelled). */
static int pf_fsyncdir(const char *path, int datasync,
                       struct fuse_file_info *fi)
{
    (void)path;
    (void)datasync;
    (void)fi;
    LOCKED_OR_EIO();
    pthread_mutex_unlock(&mu);
    return 0;
}

static int pf_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    (void)path;
    LOCKED_OR_EIO();
    struct pfile *pf = (struct pfile *)fi->fh;
    return ret_errno(fallocate(pf->fd, mode, off, len));
}

/* Unmounted without a cut: a clean shutdown, where the kernel would write
 * its page cache back; what is still held goes to the backing files (by
 * the last path seen). */
static void pf_destroy(void *private_data)
{
    (void)private_data;
    pthread_mutex_lock(&mu);
    while (nodes != NULL) {
        struct pnode *n = nodes;
        if (!cut && n->ext.n > 0 && n->path != NULL) {
            int fd = openat(backing_fd, rel(n->path),
                            O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0 || powerfs_extents_flush(&n->ext, fd) != 0) {
                fprintf(stderr, "kyufu-powerfs: unmount: %s not written "
                        "back: %s\n", n->path, strerror(errno));
            }
            if (fd >= 0) {
                close(fd);
            }
        }
        node_free(n);
    }
    pthread_mutex_unlock(&mu);
}

static const struct fuse_operations ops = {
    .init = pf_init,
    .destroy = pf_destroy,
    .getattr = pf_getattr,
    .readlink = pf_readlink,
    .mkdir = pf_mkdir,
    .unlink = pf_unlink,
    .rmdir = pf_rmdir,
    .symlink = pf_symlink,
    .rename = pf_rename,
    .link = pf_link,
    .chmod = pf_chmod,
    .chown = pf_chown,
    .truncate = pf_truncate,
    .utimens = pf_utimens,
    .open = pf_open,
    .create = pf_create,
    .read = pf_read,
    .write = pf_write,
    .statfs = pf_statfs,
    .release = pf_release,
    .fsync = pf_fsync,
    .opendir = pf_opendir,
    .readdir = pf_readdir,
    .releasedir = pf_releasedir,
    .fsyncdir = pf_fsyncdir,
    .fallocate = pf_fallocate,
};

/* ------------------------------------------------------------ control */

/* The report of what is held (what a cut drops), in a malloc'ed string
 * (NULL out of memory); with do_cut, drops it and cuts the power.  Built
 * under the lock and sent after it: a control client that does not read
 * its reply must not hold the mutex every file operation waits on. */
static char *report(bool do_cut)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    pthread_mutex_lock(&mu);
    uint64_t files = 0, extents = 0, bytes = 0;
    for (struct pnode *n = nodes; n != NULL; n = n->next) {
        if (n->ext.n > 0) {
            files++;
            extents += n->ext.n;
            bytes += n->ext.bytes;
        }
    }
    if (f != NULL) {
        fprintf(f, "files=%llu extents=%llu bytes=%llu\n",
                (unsigned long long)files, (unsigned long long)extents,
                (unsigned long long)bytes);
    }
    for (struct pnode *n = nodes; n != NULL; n = n->next) {
        if (n->ext.n > 0 && f != NULL) {
            fprintf(f, "file %s extents=%zu bytes=%llu\n",
                    n->path != NULL ? n->path : "?", n->ext.n,
                    (unsigned long long)n->ext.bytes);
        }
        if (do_cut) {
            powerfs_extents_clear(&n->ext);
        }
    }
    if (do_cut && !cut) {
        cut = true;
        fprintf(stderr, "kyufu-powerfs: power cut: dropped %llu bytes in "
                "%llu extents of %llu files\n", (unsigned long long)bytes,
                (unsigned long long)extents, (unsigned long long)files);
    }
    pthread_mutex_unlock(&mu);
    if (f == NULL) {
        return NULL;
    }
    fputs("end\n", f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Sends text whole, or gives up (a client gone or not reading: no
 * SIGPIPE, and SO_SNDTIMEO bounds the wait). */
static void send_all(int c, const char *text)
{
    size_t len = strlen(text);
    for (size_t done = 0; done < len;) {
        ssize_t n = send(c, text + done, len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        done += (size_t)n;
    }
}

static void *control_main(void *arg)
{
    int ls = (int)(intptr_t)arg;
    for (;;) {
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            fprintf(stderr, "kyufu-powerfs: control accept: %s\n",
                    strerror(errno));
            return NULL;
        }
        /* A client that sends nothing or reads nothing does not hold the
         * control thread forever. */
        struct timeval tv = {.tv_sec = 5};
        (void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        char line[64];
        size_t got = 0;
        while (got < sizeof line - 1) {
            ssize_t n = read(c, line + got, 1);
            if (n <= 0 || line[got] == '\n') {
                break;
            }
            got++;
        }
        line[got] = '\0';
        bool is_cut = strcmp(line, "cut") == 0;
        if (is_cut || strcmp(line, "pending") == 0) {
            char *text = report(is_cut);
            send_all(c, text != NULL ? text : "error: out of memory\n");
            free(text);
        } else {
            send_all(c, "error: unknown command (want \"cut\" or "
                        "\"pending\")\n");
        }
        close(c);
    }
}

static int control_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "kyufu-powerfs: control socket path longer than "
                "%zu bytes: %s\n", sizeof sa.sun_path - 1, path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s, 8) != 0) {
        fprintf(stderr, "kyufu-powerfs: control socket %s: %s\n", path,
                strerror(errno));
        if (s >= 0) {
            close(s);
        }
        return -1;
    }
    return s;
}

static int usage(void)
{
    fprintf(stderr, "usage: kyufu-powerfs BACKING_DIR MOUNTPOINT "
            "--control SOCKET [--held-max BYTES]\n"
            "  runs in the foreground; unmount with fusermount3 -u "
            "MOUNTPOINT\n");
    return 2;
}

int main(int argc, char **argv)
{
    if ((argc != 5 && argc != 7) || strcmp(argv[3], "--control") != 0 ||
        argv[1][0] == '\0' || argv[2][0] == '\0' || argv[4][0] == '\0') {
        return usage();
    }
    if (argc == 7) {
        const char *v = argv[6];
        char *end = NULL;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (strcmp(argv[5], "--held-max") != 0 || v[0] < '0' || v[0] > '9' ||
            *end != '\0' || errno != 0 || x == 0) {
            fprintf(stderr, "kyufu-powerfs: --held-max wants a byte count "
                    "from 1 to %llu, not \"%s\"\n", ULLONG_MAX, v);
            return usage();
        }
        held_max = x;
    }
    backing_fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (backing_fd < 0) {
        fprintf(stderr, "kyufu-powerfs: backing directory %s: %s\n",
                argv[1], strerror(errno));
        return 1;
    }
    powerfs_tmp_sweep(argv[1]);
    int ls = control_listen(argv[4]);
    if (ls < 0) {
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, control_main, (void *)(intptr_t)ls) != 0) {
        fprintf(stderr, "kyufu-powerfs: cannot start the control thread\n");
        return 1;
    }
    pthread_detach(th);
    char *fargv[] = {argv[0], "-o", "fsname=kyufu-powerfs,subtype=powerfs",
                     NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse *f = fuse_new(&args, &ops, sizeof ops, NULL);
    int rv = 1;
    if (f == NULL) {
        fprintf(stderr, "kyufu-powerfs: fuse_new failed\n");
    } else if (fuse_mount(f, argv[2]) != 0) {
        fprintf(stderr, "kyufu-powerfs: cannot mount %s\n", argv[2]);
    } else {
        if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
            fprintf(stderr, "kyufu-powerfs: no signal handlers\n");
        } else {
            rv = powerfs_loop(f);
            fuse_remove_signal_handlers(fuse_get_session(f));
        }
        fuse_unmount(f);
    }
    if (f != NULL) {
        fuse_destroy(f);
    }
    fuse_opt_free_args(&args);
    unlink(argv[4]);
    return rv;
}
