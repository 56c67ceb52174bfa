/* kyufu-powerfs's request loop: libfuse's own (one thread: every operation
 * takes powerfs's one mutex anyway), with one request rewritten first.
 *
 * libraft writes each snapshot with open(dir, O_TMPFILE), fills and fsyncs
 * the file, then gives it a name with linkat(2).  The kernel's FUSE sends
 * O_TMPFILE as FUSE_TMPFILE, which libfuse 3.14 (Debian 12) does not know:
 * it answers ENOSYS and the kernel turns that into EOPNOTSUPP, so raft_uv
 * could take no snapshot on a powerfs mount.  FUSE_TMPFILE carries the
 * same arguments as FUSE_CREATE (struct fuse_create_in and a name, "/" for
 * a tmpfile) and takes the same answer (entry and open), so the loop turns
 * it into a FUSE_CREATE of a hidden name (TMP_PREFIX, a counter) in the
 * same directory and lets libfuse serve that.  The kernel marks the answered
 * inode as a tmpfile (d_tmpfile: no name, link count 0); the later
 * FUSE_LINK names it, and powerfs.c then removes the hidden name
 * (pf_link), or removes it at the last close if no link came (pf_release).
 * Held writes and fsync work on it as on any file: libraft fsyncs the
 * snapshot before linkat, so a cut after the link keeps it whole. */
#include "powerfs_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FUSE_TMPFILE -> FUSE_CREATE of a hidden name, in place (the buffer is
 * libfuse's, a request's maximum size: far more than a name needs).  Any
 * other request, or one not shaped as expected, is left as it is. */
static void tmpfile_rewrite(struct fuse_buf *buf, size_t cap)
{
    static unsigned long counter;
    struct fuse_in_header *h = buf->mem;
    if ((buf->flags & FUSE_BUF_IS_FD) != 0 ||
        buf->size < sizeof *h + sizeof(struct fuse_create_in) ||
        h->opcode != FUSE_TMPFILE || h->total_extlen != 0) {
        return;
    }
    char name[64];
    int n = snprintf(name, sizeof name, "%s%ld-%lu", TMP_PREFIX,
                     (long)getpid(), ++counter);
    size_t at = sizeof *h + sizeof(struct fuse_create_in);
    if (n <= 0 || at + (size_t)n + 1 > cap) {
        return;
    }
    /* The open flags without O_TMPFILE (which holds O_DIRECTORY): a new
     * file of that name, which no one else can have made. */
    struct fuse_create_in *in = (struct fuse_create_in *)(h + 1);
    in->flags = (in->flags & ~(uint32_t)O_TMPFILE) | O_CREAT | O_EXCL;
    memcpy((char *)buf->mem + at, name, (size_t)n + 1);
    buf->size = at + (size_t)n + 1;
    h->len = (uint32_t)buf->size;
    h->opcode = FUSE_CREATE;
}

static int remove_tmp(const char *path, const struct stat *st, int type,
                      struct FTW *ftw)
{
    (void)st;
    if (type == FTW_F &&
        strncmp(path + ftw->base, TMP_PREFIX, sizeof TMP_PREFIX - 1) == 0 &&
        unlink(path) != 0) {
        fprintf(stderr, "kyufu-powerfs: cannot remove %s: %s\n", path,
                strerror(errno));
    }
    return 0;
}

void powerfs_tmp_sweep(const char *backing)
{
    if (nftw(backing, remove_tmp, 16, FTW_PHYS) != 0) {
        fprintf(stderr, "kyufu-powerfs: cannot walk %s: %s\n", backing,
                strerror(errno));
    }
}

int powerfs_loop(struct fuse *f)
{
    struct fuse_session *se = fuse_get_session(f);
    struct fuse_buf buf;
    memset(&buf, 0, sizeof buf);
    int rv = 0;
    while (!fuse_session_exited(se)) {
        int got = fuse_session_receive_buf(se, &buf);
        if (got == -EINTR) {
            continue;
        }
        if (got <= 0) {
            if (got < 0 && got != -ENODEV) { /* ENODEV: unmounted */
                fprintf(stderr, "kyufu-powerfs: reading /dev/fuse: %s\n",
                        strerror(-got));
                rv = 1;
            }
            break;
        }
        /* libfuse's buffer holds its session's largest request (a write
         * of max_write bytes, at least a page, and its headers). */
        tmpfile_rewrite(&buf, 4096);
        fuse_session_process_buf(se, &buf);
    }
    free(buf.mem);
    fuse_session_reset(se);
    return rv;
}
