/* glibc's allocator settings for kyufud (malloc_policy.c).
 *
 * kyufu_node_malloc_policy() fixes the mmap threshold and the trim
 * threshold at the values of node/limits.h: blocks of 4 MiB (a snapshot's
 * or a backup's chunks, an installed snapshot) are mapped and unmapped
 * whole unless the free top of the heap can serve them, and the blocks
 * every applied command allocates (LMDB's nested transaction: a 2 MiB
 * dirty list and a 1 MiB free-page list) come from the heap and stay
 * there between commands; and it caps glibc's arenas
 * (KYUFU_NODE_MALLOC_ARENAS_MAX).  Call it once at start, before any
 * thread.
 * Returns 0, or -1 if glibc refused a setting; under ASan (whose
 * allocator has no such settings) 0 without doing anything. */
#ifndef KYUFU_NODE_MALLOC_POLICY_H
#define KYUFU_NODE_MALLOC_POLICY_H

int kyufu_node_malloc_policy(void);

/* Gives the free pages inside the heap back to the system (malloc_trim):
 * trimming only ever returns the free top of a heap, and the Raft log's
 * entries freed by a compaction leave holes below live blocks, which stay
 * resident until the heap reaches that size again.  Called after each
 * compaction of the Raft log (kyufu_glue_set_compacted_cb), on the loop
 * thread.  Nothing under ASan. */
void kyufu_node_malloc_release(void);

#endif /* KYUFU_NODE_MALLOC_POLICY_H */
