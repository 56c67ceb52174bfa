/* The data-directory lock: one kyufud per data directory.
 *
 * flock(2) on DATA/LOCK, taken without waiting.  The lock is released by the
 * kernel when the process dies, however it dies, so a crashed node never
 * leaves a stale lock behind.  The holder's pid is written into the file
 * only to name it in the error of a second process. */
#ifndef KYUFU_NODE_LOCK_H
#define KYUFU_NODE_LOCK_H

#include <stddef.h>

/* Create data_dir (mode 0700) if missing, then lock data_dir/LOCK.  Returns
 * the lock's file descriptor (>= 0), or -1 with the reason in errmsg. */
int kyufu_node_lock(const char *data_dir, char *errmsg, size_t errmsg_len);

/* Release the lock taken by kyufu_node_lock. */
void kyufu_node_unlock(int fd);

#endif /* KYUFU_NODE_LOCK_H */
