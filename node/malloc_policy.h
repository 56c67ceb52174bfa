/* glibc's allocator settings for kyufud (malloc_policy.c).
 *
 * kyufu_node_malloc_policy() fixes the mmap threshold and the trim
 * threshold at the values of node/limits.h: blocks of 4 MiB (a snapshot's
 * or a backup's chunks, an installed snapshot) are mapped and unmapped
 * whole, and the blocks every applied command allocates (LMDB's nested
 * transaction: a 2 MiB dirty list and a 1 MiB free-page list) come from
 * the heap and stay there between commands.  Call it once at start,
 * before any thread.  Returns 0, or -1 if glibc refused a setting (under
 * ASan the calls are stubs that return 0 and do nothing). */
#ifndef KYUFU_NODE_MALLOC_POLICY_H
#define KYUFU_NODE_MALLOC_POLICY_H

int kyufu_node_malloc_policy(void);

#endif /* KYUFU_NODE_MALLOC_POLICY_H */
