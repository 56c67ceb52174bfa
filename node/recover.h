/* kyufud --recover FILE [--yes]: quorum-loss recovery of a stopped node
 * (docs/restore.md "Quorum-loss recovery").
 *
 * The node's data folder is locked (a running kyufud holds the lock:
 * refused), its Raft log read, and a statement printed to `out`: the last
 * index and term this node has, the configuration it had, and what is lost
 * (entries the other members stored after that index).  Without `yes` the
 * operator must then type the line "recover node ID" on `in`; anything else
 * (or end of input) changes nothing.  Then raft-glue's kyufu_glue_recover
 * makes this node the one voter of a new configuration; kyufud --config
 * starts it as a one-voter cluster, and new nodes join with kyufuctl node
 * new / cluster add-node.
 *
 * Returns kyufud's exit status: 0 recovered; 1 refused or failed with
 * nothing changed (locked, no log, not a voter, already recovered, not
 * confirmed, the log changed meanwhile) or an I/O error while writing;
 * 4 a log raft_uv refuses to load. */
#ifndef KYUFU_NODE_RECOVER_H
#define KYUFU_NODE_RECOVER_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

int kyufu_node_recover(const struct kyufu_config *c, bool yes, FILE *in, FILE *out);

#endif /* KYUFU_NODE_RECOVER_H */
