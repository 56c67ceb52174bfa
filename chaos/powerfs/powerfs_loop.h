/* kyufu-powerfs's request loop: libfuse's, plus O_TMPFILE (powerfs_loop.c).
 */
#ifndef KYUFU_POWERFS_LOOP_H
#define KYUFU_POWERFS_LOOP_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif
#include <fuse.h>

/* The name an O_TMPFILE file has in the backing directory until its first
 * linkat(2) (or its last close): hidden from readdir, removed by either. */
#define TMP_PREFIX ".powerfs-tmpfile-"

/* Removes every file named TMP_PREFIX* under backing (an O_TMPFILE file
 * still open at a power cut): a real file system frees such an unnamed
 * inode when it recovers, so a new mount must not show or keep it (and
 * its name, pid and counter, could come again). */
void powerfs_tmp_sweep(const char *backing);

/* Serves f's mount until it is unmounted or a signal ends the session;
 * 0 on a clean end, 1 on an error (said on stderr). */
int powerfs_loop(struct fuse *f);

#endif
