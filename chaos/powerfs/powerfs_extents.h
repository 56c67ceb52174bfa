/* The writes powerfs holds for one file until it is fsynced (powerfs.c).
 *
 * A list of extents in write order: a later extent wins where two overlap.
 * An extent that a later write covers entirely is freed when the later one
 * is added, so a file rewritten in place (a shared mapping written back page
 * by page, a header rewritten at every commit) holds at most its size.  Not
 * thread-safe: powerfs.c calls under its one mutex. */
#ifndef KYUFU_POWERFS_EXTENTS_H
#define KYUFU_POWERFS_EXTENTS_H

#include <stddef.h>
#include <stdint.h>

struct powerfs_extent {
    uint64_t off;
    size_t len;
    char *data; /* owned, len bytes */
};

struct powerfs_extents {
    struct powerfs_extent *v; /* owned, n used of cap */
    size_t n;
    size_t cap;
    uint64_t bytes; /* sum of the extents' lengths */
    uint64_t end;   /* the largest off + len, 0 with none */
};

/* Holds a copy of buf[0..len) at off.  0, or -1 (out of memory: nothing
 * changed). */
int powerfs_extents_add(struct powerfs_extents *e, const void *buf,
                        size_t len, uint64_t off);

/* Writes the held bytes over buf, which holds the file's [off, off + len)
 * as the backing file has it. */
void powerfs_extents_overlay(const struct powerfs_extents *e, char *buf,
                             size_t len, uint64_t off);

/* Drops what lies at or past size (a truncate). */
void powerfs_extents_truncate(struct powerfs_extents *e, uint64_t size);

/* Writes every extent to fd with pwrite, in order, then drops them.  0, or
 * -1 with errno (the extents not yet written are still held). */
int powerfs_extents_flush(struct powerfs_extents *e, int fd);

/* Drops every extent and frees the list (e stays usable, empty). */
void powerfs_extents_clear(struct powerfs_extents *e);

#endif
