/* Loop stall detector (node-internal): logs when the loop thread was
 * blocked, with the slowest FSM apply (LMDB transaction) in that window, so
 * a leader that stepped down "by itself" (docs/scale.md) says why.  A
 * timer ticks every KYUFU_NODE_STALL_TICK_MS; a tick later than
 * KYUFU_NODE_STALL_WARN_MS past its due time is a stall: "event loop
 * stalled" with the late milliseconds.  A stalled process that was not
 * scheduled at all (CPU starvation) shows the same way. */
#ifndef KYUFU_NODE_STALL_H
#define KYUFU_NODE_STALL_H

#include "node.h"

/* Start the timer (after the glue exists; safe before). */
void kyufu_node__stall_start(struct kyufu_node *n);

#endif /* KYUFU_NODE_STALL_H */
