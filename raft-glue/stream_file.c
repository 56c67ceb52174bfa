/* A snapshot's stream in an unnamed file: see stream_file.h. */
#include "stream_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "chunk_sink.h"

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
            f->err = n < 0 ? errno : EIO;
            f->what = "write";
            rv = KYUFU_STORAGE_EIO;
            break;
        }
        p += n;
        left -= (size_t)n;
    }
    f->len += len - left;
    if (k->spare == NULL) {
        k->spare = buf;
        k->spare_cap = k->buf_cap;
    } else {
        raft_free(buf);
    }
    return rv;
}

int glue__stream_file_write(struct glue_stream_file *f, const char *dir,
                            struct kyufu_storage_snapshot *snap,
                            const struct glue_stream_key *key,
                            const uint8_t *header, size_t header_len)
{
    struct glue_chunk_sink k = {0};
    int rv;
    f->fd = -1;
    f->map = NULL;
    f->len = 0;
    f->err = 0;
    f->what = NULL;
    /* Unnamed, in dir's file system: nothing is left by a crash. */
    f->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        f->err = errno;
        f->what = "open (O_TMPFILE)";
        return KYUFU_STORAGE_EIO;
    }
    k.key = key;
    k.header = header;
    k.header_len = header_len;
    k.out = out_write;
    k.arg = f;
    rv = glue__chunk_sink_write(&k, snap);
    if (rv == 0) {
        f->map = mmap(NULL, f->len, PROT_READ, MAP_SHARED, f->fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            f->err = errno;
            f->what = "mmap";
            rv = KYUFU_STORAGE_EIO;
        } else {
            (void)madvise(f->map, f->len, MADV_SEQUENTIAL);
        }
    }
    if (rv != 0) {
        glue__stream_file_close(f);
    }
    return rv;
}

int glue__stream_file_probe(const char *dir, char *errmsg, size_t errmsg_len)
{
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
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
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    f->len = 0;
}
