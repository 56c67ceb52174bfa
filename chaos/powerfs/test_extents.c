/* powerfs_extents: the held writes of one file (powerfs_extents.h).
 * Deterministic, no FUSE: a later write wins where two overlap, a covered
 * extent is freed (a page rewritten in place holds one extent), truncate
 * clips, flush writes in order and forgets, out-of-range reads see
 * nothing. */
#include "powerfs_extents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h" /* tests/client/check.h: CHECK, a failure exits 1 */

static void overlay_order(void)
{
    struct powerfs_extents e = {0};
    char buf[16];
    CHECK(powerfs_extents_add(&e, "aaaaaaaa", 8, 0) == 0);
    CHECK(powerfs_extents_add(&e, "bbbb", 4, 2) == 0);
    CHECK(powerfs_extents_add(&e, "cc", 2, 5) == 0);
    memset(buf, '.', sizeof buf);
    powerfs_extents_overlay(&e, buf, 10, 0);
    CHECK(memcmp(buf, "aabbbcca..", 10) == 0);
    /* A window inside: offsets are relative to the window. */
    memset(buf, '.', sizeof buf);
    powerfs_extents_overlay(&e, buf, 3, 4);
    CHECK(memcmp(buf, "bcc", 3) == 0);
    /* A window past the end sees nothing held. */
    memset(buf, '.', sizeof buf);
    powerfs_extents_overlay(&e, buf, 4, 100);
    CHECK(memcmp(buf, "....", 4) == 0);
    CHECK(e.n == 3 && e.bytes == 14 && e.end == 8);
    powerfs_extents_clear(&e);
    CHECK(e.n == 0 && e.bytes == 0 && e.end == 0 && e.v == NULL);
}

static void covered_freed(void)
{
    struct powerfs_extents e = {0};
    char page[4096];
    for (int i = 0; i < 1000; i++) {
        memset(page, 'a' + i % 26, sizeof page);
        CHECK(powerfs_extents_add(&e, page, sizeof page, 8192) == 0);
    }
    CHECK(e.n == 1 && e.bytes == 4096 && e.end == 12288);
    /* Partly overlapped extents are kept (the later wins on reads). */
    CHECK(powerfs_extents_add(&e, "zz", 2, 8191) == 0);
    CHECK(e.n == 2 && e.bytes == 4098);
    /* Empty writes hold nothing. */
    CHECK(powerfs_extents_add(&e, "", 0, 0) == 0 && e.n == 2);
    powerfs_extents_clear(&e);
}

static void truncate_clips(void)
{
    struct powerfs_extents e = {0};
    CHECK(powerfs_extents_add(&e, "0123456789", 10, 0) == 0);
    CHECK(powerfs_extents_add(&e, "abcdef", 6, 20) == 0);
    powerfs_extents_truncate(&e, 22);
    CHECK(e.n == 2 && e.bytes == 12 && e.end == 22);
    powerfs_extents_truncate(&e, 5);
    CHECK(e.n == 1 && e.bytes == 5 && e.end == 5);
    char buf[8];
    memset(buf, '.', sizeof buf);
    powerfs_extents_overlay(&e, buf, 8, 0);
    CHECK(memcmp(buf, "01234...", 8) == 0);
    powerfs_extents_truncate(&e, 0);
    CHECK(e.n == 0 && e.end == 0);
    powerfs_extents_clear(&e);
}

static void flush_in_order(void)
{
    char path[] = "/tmp/kyufu-powerfs-extents-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    struct powerfs_extents e = {0};
    CHECK(powerfs_extents_add(&e, "aaaa", 4, 0) == 0);
    CHECK(powerfs_extents_add(&e, "bb", 2, 1) == 0);
    CHECK(powerfs_extents_add(&e, "c", 1, 9) == 0);
    CHECK(powerfs_extents_flush(&e, fd) == 0);
    CHECK(e.n == 0 && e.bytes == 0 && e.end == 0);
    char buf[16] = {0};
    CHECK(pread(fd, buf, sizeof buf, 0) == 10);
    CHECK(memcmp(buf, "abba\0\0\0\0\0c", 10) == 0);
    /* A failed write keeps what was not written. */
    CHECK(powerfs_extents_add(&e, "x", 1, 0) == 0);
    close(fd);
    CHECK(powerfs_extents_flush(&e, fd) == -1);
    CHECK(e.n == 1 && e.bytes == 1);
    powerfs_extents_clear(&e);
}

int main(void)
{
    overlay_order();
    covered_freed();
    truncate_clips();
    flush_in_order();
    printf("ok\n");
    return 0;
}
