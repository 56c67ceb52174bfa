/* systemd service notification (node-internal): sd_notify(3) through
 * Debian's libsystemd, for the unit's Type=notify and WatchdogSec=
 * (node/systemd/kyufud.service).
 *
 * Outside systemd (no NOTIFY_SOCKET in the environment) every function here
 * does nothing, as does a build without libsystemd (meson option 'systemd'
 * = disabled): kyufud runs the same from a shell, a test or scripts/run.
 *
 *   READY=1     once the store is open, Raft has started and the API server
 *               listens (kyufu_node__notify_ready, from kyufu_node_run),
 *               so `systemctl start` returns when the node can be called
 *               and a unit ordered After=kyufud.service starts after that;
 *   STOPPING=1  when the node starts its stop, whatever asked for it
 *               (kyufu_node__notify_stopping, from kyufu_node__stop);
 *   WATCHDOG=1  every half of WATCHDOG_USEC, from a timer of the node's
 *               loop, so a loop that stops turning (a deadlock, a stall far
 *               past the stall detector's warning) is killed by systemd and
 *               restarted (Restart=on-failure counts SIGABRT as a failure).
 *               Only when systemd asked for it (WATCHDOG_USEC set, and
 *               WATCHDOG_PID, if set, names this process).
 *
 * A failed send is ignored: readiness is a courtesy to the service
 * manager, never a reason for the node to stop.  sd_notify's send blocks
 * while the manager's socket queue is full (net.unix.max_dgram_qlen): the
 * loop thread then waits for systemd, which reads it as its main loop
 * turns; a test that stands in for systemd must read it as steadily. */
#ifndef KYUFU_NODE_NOTIFY_H
#define KYUFU_NODE_NOTIFY_H

#include "node.h"

/* Initialize the node's watchdog timer (closed by kyufu_node__notify_close).
 * Call once, before the loop runs. */
void kyufu_node__notify_init(struct kyufu_node *n);

/* READY=1 with a STATUS= line naming the node; starts the watchdog pings
 * when systemd asked for them.  Call once, when the node is RUNNING. */
void kyufu_node__notify_ready(struct kyufu_node *n);

/* STOPPING=1 (the watchdog pings go on until the close).  Call at the
 * first stop request. */
void kyufu_node__notify_stopping(struct kyufu_node *n);

/* Close the watchdog timer with the node's other handles. */
void kyufu_node__notify_close(struct kyufu_node *n);

#endif /* KYUFU_NODE_NOTIFY_H */
