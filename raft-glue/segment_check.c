/* Open Raft segments checked before raft_uv loads them: segment_check.h. */
#include "segment_check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "glue_limits.h"

/* raft_uv 0.22.1's constants (src/uv.h, src/uv_encoding.h). */
#define SEGMENT_FORMAT 1u
#define SEGMENT_SIZE_MAX ((size_t)8 << 20)      /* UV__MAX_SEGMENT_SIZE */
#define BATCH_ENTRIES_MAX (SEGMENT_SIZE_MAX / 32u) /* its max_n */
#define ENTRY_TYPE_COMMAND 1u /* RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE */
#define ENTRY_TYPE_CHANGE 3u
/* A file larger than any segment raft_uv writes is not read whole. */
_Static_assert(KYUFU_SEGMENT_SIZE_BYTES <= SEGMENT_SIZE_MAX,
               "kyufu's segments are within raft_uv's bound");

/* The smallest unit a torn write leaves unwritten (a disk sector). */
#define SECTOR_BYTES 512u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_fill(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 24;
        for (int b = 0; b < 8; b++) {
            c = (c & 0x80000000u) != 0 ? (c << 1) ^ 0x04c11db7u : c << 1;
        }
        crc_table[i] = c;
    }
}

uint32_t glue__segment_crc(const void *buf, size_t len, uint32_t init)
{
    const uint8_t *p = buf;
    uint32_t crc = init;
    pthread_once(&crc_once, crc_table_fill);
    while (len-- > 0) {
        crc = (crc << 8) ^ crc_table[((crc >> 24) ^ *p++) & 0xffu];
    }
    return crc;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

enum batch_state {
    BATCH_OK,      /* both checksums hold: *next is the following batch */
    BATCH_DAMAGED, /* raft_uv's RAFT_CORRUPT: it truncates the file here */
    BATCH_CUT,     /* raft_uv's I/O error or RAFT_MALFORMED: it aborts or
                      fails; never written by raft_uv */
};

/* One batch at off, judged as uvLoadEntriesBatch judges it, in its order. */
static enum batch_state batch_at(const uint8_t *buf,
                                 size_t len,
                                 size_t off,
                                 size_t *next)
{
    size_t left = len - off;
    if (left < 16) {
        return BATCH_CUT; /* the two checksums and n */
    }
    uint64_t n = le64(buf + off + 8);
    if (n == 0 || n > BATCH_ENTRIES_MAX) {
        return BATCH_DAMAGED;
    }
    size_t header = 8 + 16 * (size_t)n;
    if (left - 8 < header) {
        return BATCH_CUT;
    }
    const uint8_t *h = buf + off + 8;
    if (glue__segment_crc(h, header, 0) != le32(buf + off)) {
        return BATCH_DAMAGED;
    }
    size_t data = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *e = h + 8 + 16 * i;
        if (e[8] < ENTRY_TYPE_COMMAND || e[8] > ENTRY_TYPE_CHANGE) {
            return BATCH_CUT; /* MALFORMED under a valid checksum */
        }
        data += le32(e + 12);
    }
    if (left - 8 - header < data) {
        return BATCH_CUT;
    }
    if (glue__segment_crc(h + header, data, 0) != le32(buf + off + 4)) {
        return BATCH_DAMAGED;
    }
    *next = off + 8 + header + data;
    return BATCH_OK;
}

/* Whether [from, to) holds a whole sector (aligned in the file) of zeros:
 * one the write never reached, raft_uv's open segments being preallocated
 * with zeros and written once. */
static bool has_unwritten_sector(const uint8_t *buf, size_t from, size_t to)
{
    size_t at = (from + SECTOR_BYTES - 1) / SECTOR_BYTES * SECTOR_BYTES;
    for (; at + SECTOR_BYTES <= to; at += SECTOR_BYTES) {
        size_t i = 0;
        while (i < SECTOR_BYTES && buf[at + i] == 0) {
            i++;
        }
        if (i == SECTOR_BYTES) {
            return true;
        }
    }
    return false;
}

static void errf(char *errmsg, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *errmsg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, len, fmt, ap);
    va_end(ap);
}

int glue__segment_check(const char *name,
                        const uint8_t *buf,
                        size_t len,
                        char *errmsg,
                        size_t errmsg_len)
{
    if (len < 8 || le64(buf) != SEGMENT_FORMAT) {
        return 0; /* empty, never written, or refused by raft_uv itself */
    }
    size_t off = 8;
    for (unsigned batch = 1; off < len; batch++) {
        size_t next = 0;
        switch (batch_at(buf, len, off, &next)) {
        case BATCH_OK:
            off = next;
            continue;
        case BATCH_CUT:
            errf(errmsg, errmsg_len,
                 "open segment %s is cut short or malformed: batch %u at "
                 "byte %zu runs past the end of the file (%zu bytes) or "
                 "names an unknown entry type",
                 name, batch, off, len);
            return -1;
        case BATCH_DAMAGED:
            break;
        }
        /* A torn write is the last one written, and the sectors it did
         * not reach are still zero.  An intact batch after a damaged one,
         * with no unwritten sector between them, is a file damaged in the
         * middle.  (One write may carry several batches, and a power cut
         * may persist its later sectors and not its earlier ones: those
         * leave a zero sector, and raft_uv rightly drops them all, none
         * having been acknowledged.)  Batches start 8-aligned. */
        for (size_t at = off + 8; at + 16 <= len; at += 8) {
            size_t skip;
            if (batch_at(buf, len, at, &skip) == BATCH_OK &&
                !has_unwritten_sector(buf, off, at)) {
                errf(errmsg, errmsg_len,
                     "open segment %s is damaged: batch %u at byte %zu "
                     "fails its checksum but an intact batch follows at "
                     "byte %zu (not a torn write: entries this node "
                     "stored would be dropped)",
                     name, batch, off, at);
                return -1;
            }
        }
        return 0; /* a torn tail: raft_uv truncates it, rightly */
    }
    return 0;
}

static int read_whole(int dfd, const char *name, uint8_t **out, size_t *len,
                      char *errmsg, size_t errmsg_len)
{
    struct stat sb;
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        errf(errmsg, errmsg_len, "open segment %s: %s", name,
             strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    size_t size = (size_t)sb.st_size;
    if (!S_ISREG(sb.st_mode) || size > SEGMENT_SIZE_MAX) {
        errf(errmsg, errmsg_len,
             "open segment %s: not a regular file of at most %zu bytes",
             name, SEGMENT_SIZE_MAX);
        close(fd);
        return -1;
    }
    uint8_t *buf = malloc(size > 0 ? size : 1);
    size_t got = 0;
    while (buf != NULL && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            errf(errmsg, errmsg_len, "open segment %s: read: %s", name,
                 r < 0 ? strerror(errno) : "file shrank while read");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL) {
        errf(errmsg, errmsg_len, "open segment %s: out of memory", name);
        return -1;
    }
    *out = buf;
    *len = size;
    return 0;
}

int glue__segments_check(const char *dir, char *errmsg, size_t errmsg_len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return errno == ENOENT ? 0 : (errf(errmsg, errmsg_len,
                                           "raft folder %s: %s", dir,
                                           strerror(errno)),
                                      -1);
    }
    int rv = 0;
    struct dirent *e;
    while (rv == 0 && (e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "open-", 5) != 0) {
            continue;
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        rv = read_whole(dirfd(d), e->d_name, &buf, &len, errmsg, errmsg_len);
        if (rv == 0) {
            rv = glue__segment_check(e->d_name, buf, len, errmsg,
                                     errmsg_len);
            free(buf);
        }
    }
    closedir(d);
    return rv;
}
