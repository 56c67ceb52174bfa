/* A snapshot's stream in an unnamed file: see stream_file.h. */
#include "stream_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "chunk_sink.h"

/* out_write's failure, passed through storage and the sink as-is: only
 * this return is the file system's refusal; any other error is the
 * store's (which also hands out_write a last, partial chunk). */
#define REFUSED 1

static void refused(struct glue_stream_file *f, int err, const char *what)
{
    f->err = err;
    f->what = what;
}

/* chunk_sink's out: write the chunk, keep its buffer for the next. */
static int out_write(struct glue_chunk_sink *k, void *buf, size_t len)
{
    struct glue_stream_file *f = k->arg;
    const uint8_t *p = buf;
    size_t left = len;
    int rv = 0;
    while (left > 0) {
        ssize_t n = write(f->fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            refused(f, n < 0 ? errno : EIO, "write");
            rv = REFUSED;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    f->len += len - left;
    if (k->spare == NULL) {
        k->spare = buf;
    } else {
        raft_free(buf);
    }
    return rv;
}

/* Whether dir's file system has room bytes available: 0, or REFUSED. */
static int check_room(struct glue_stream_file *f, const char *dir,
                      uint64_t room)
{
    struct statvfs v;
    if (statvfs(dir, &v) != 0) {
        refused(f, errno, "statvfs");
        return REFUSED;
    }
    if ((uint64_t)v.f_bavail * v.f_frsize < room) {
        refused(f, ENOSPC, "free space check");
        return REFUSED;
    }
    return 0;
}

int glue__stream_file_write(struct glue_stream_file *f, const char *dir,
                            uint64_t room,
                            struct kyufu_storage_snapshot *snap,
                            const struct glue_stream_key *key,
                            const uint8_t *header, size_t header_len)
{
    struct glue_chunk_sink k = {0};
    int fd;
    int rv;
    f->fd = -1;
    f->map = NULL;
    f->len = 0;
    f->err = 0;
    f->what = NULL;
    if (check_room(f, dir, room) != 0) {
        return KYUFU_STORAGE_EIO;
    }
    /* Unnamed, in dir's file system: nothing is left by a crash; O_EXCL:
     * it can never be linked into a directory. */
    fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        refused(f, errno, "open (O_TMPFILE)");
        return KYUFU_STORAGE_EIO;
    }
    k.key = key;
    k.header = header;
    k.header_len = header_len;
    k.out = out_write;
    k.arg = f;
    f->fd = fd;
    rv = glue__chunk_sink_write(&k, snap);
    if (rv == 0) {
        f->map = mmap(NULL, f->len, PROT_READ, MAP_SHARED, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            refused(f, errno, "mmap");
            rv = REFUSED;
        } else {
            (void)madvise(f->map, f->len, MADV_SEQUENTIAL);
        }
    }
    close(fd); /* the mapping keeps the file */
    f->fd = -1;
    if (rv != 0) {
        glue__stream_file_close(f);
        if (rv == REFUSED) {
            return KYUFU_STORAGE_EIO;
        }
        f->err = 0; /* the store's error, whatever a last write did */
        f->what = NULL;
    }
    return rv;
}

int glue__stream_file_probe(const char *dir, char *errmsg, size_t errmsg_len)
{
    int fd = open(dir, O_TMPFILE | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len,
                 "raft_dir %s cannot hold the unnamed files snapshots are "
                 "written through (open O_TMPFILE: %s); put it on a local "
                 "file system (ext4, xfs, btrfs)",
                 dir, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

void glue__stream_file_close(struct glue_stream_file *f)
{
    if (f->map != NULL) {
        munmap(f->map, f->len);
        f->map = NULL;
    }
    f->len = 0;
}
