/* kyufud internals shared by the files of node/ (not a library: the daemon
 * is the only user).
 *
 * A struct kyufu_node owns the libuv loop's handles, the data-directory
 * lock, the store, the raft glue, the API server and the forwarding clients.
 * Everything runs on the loop thread.
 *
 * Lifecycle (node.c):
 *   start:  lock DATA/LOCK -> open DATA/ledger -> glue init (DATA/raft),
 *           bootstrap when pristine -> glue start -> API server listening.
 *   stop (SIGTERM/SIGINT, or a fatal error):
 *           leader? transfer leadership (bounded) -> close API server ->
 *           close forwarding clients -> close glue -> close store -> unlock;
 *           the loop then has no handle left and uv_loop_close returns 0.
 */
#ifndef KYUFU_NODE_NODE_H
#define KYUFU_NODE_NODE_H

#include "config.h"

/* Run the node described by `config` on a fresh loop until it stops.
 * Returns the process exit status (0 clean stop, 1 failure). */
int kyufu_node_run(const struct kyufu_config *config);

#endif /* KYUFU_NODE_NODE_H */
