/* Held writes of one file: powerfs_extents.h. */
#include "powerfs_extents.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void recount(struct powerfs_extents *e)
{
    e->bytes = 0;
    e->end = 0;
    for (size_t i = 0; i < e->n; i++) {
        e->bytes += e->v[i].len;
        if (e->v[i].off + e->v[i].len > e->end) {
            e->end = e->v[i].off + e->v[i].len;
        }
    }
}

int powerfs_extents_add(struct powerfs_extents *e, const void *buf,
                        size_t len, uint64_t off)
{
    if (len == 0) {
        return 0;
    }
    char *copy = malloc(len);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, buf, len);
    /* Free the older extents this one covers. */
    size_t kept = 0;
    for (size_t i = 0; i < e->n; i++) {
        struct powerfs_extent *x = &e->v[i];
        if (x->off >= off && x->off + x->len <= off + len) {
            free(x->data);
        } else {
            e->v[kept++] = *x;
        }
    }
    e->n = kept;
    if (e->n == e->cap) {
        size_t cap = e->cap == 0 ? 8 : 2 * e->cap;
        struct powerfs_extent *v = realloc(e->v, cap * sizeof *v);
        if (v == NULL) {
            free(copy);
            recount(e);
            return -1;
        }
        e->v = v;
        e->cap = cap;
    }
    e->v[e->n++] = (struct powerfs_extent){.off = off, .len = len,
                                           .data = copy};
    recount(e);
    return 0;
}

void powerfs_extents_overlay(const struct powerfs_extents *e, char *buf,
                             size_t len, uint64_t off)
{
    for (size_t i = 0; i < e->n; i++) {
        const struct powerfs_extent *x = &e->v[i];
        uint64_t lo = x->off > off ? x->off : off;
        uint64_t hi = x->off + x->len < off + len ? x->off + x->len
                                                  : off + len;
        if (lo < hi) {
            memcpy(buf + (lo - off), x->data + (lo - x->off), hi - lo);
        }
    }
}

void powerfs_extents_truncate(struct powerfs_extents *e, uint64_t size)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->n; i++) {
        struct powerfs_extent x = e->v[i];
        if (x.off >= size) {
            free(x.data);
            continue;
        }
        if (x.off + x.len > size) {
            x.len = (size_t)(size - x.off);
        }
        e->v[kept++] = x;
    }
    e->n = kept;
    recount(e);
}

int powerfs_extents_flush(struct powerfs_extents *e, int fd)
{
    size_t i = 0;
    for (; i < e->n; i++) {
        const struct powerfs_extent *x = &e->v[i];
        size_t done = 0;
        while (done < x->len) {
            ssize_t n = pwrite(fd, x->data + done, x->len - done,
                               (off_t)(x->off + done));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                int err = n < 0 ? errno : EIO;
                /* Keep the extents not written (this one whole). */
                for (size_t j = 0; j < i; j++) {
                    free(e->v[j].data);
                }
                memmove(e->v, e->v + i, (e->n - i) * sizeof *e->v);
                e->n -= i;
                recount(e);
                errno = err;
                return -1;
            }
            done += (size_t)n;
        }
    }
    powerfs_extents_clear(e);
    return 0;
}

void powerfs_extents_clear(struct powerfs_extents *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].data);
    }
    free(e->v);
    *e = (struct powerfs_extents){0};
    assert(e->n == 0 && e->bytes == 0 && e->end == 0);
}
