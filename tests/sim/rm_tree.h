/* Removing a test's temporary directory tree (the raft-glue tests and
 * kyufu-sim). */
#ifndef KYUFU_TESTS_SIM_RM_TREE_H
#define KYUFU_TESTS_SIM_RM_TREE_H

/* Remove dir and everything below it, depth first, not following links:
 * 0, or -1 (errno set) at the first entry that could not be removed. */
int test_rm_tree(const char *dir);

#endif /* KYUFU_TESTS_SIM_RM_TREE_H */
