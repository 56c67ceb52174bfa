/* Loop stall detector: see stall.h.  The timer's handle lives in struct
 * kyufu_node and is closed with the node's other handles (node.c). */
#include "stall.h"

#include "limits.h"
#include "log.h"
#include "work_pool.h"

static void on_tick(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    uint64_t now = uv_hrtime();
    uint64_t gap_ms = (now - n->stall_last_ns) / 1000000u;
    uint64_t apply_ms =
        n->glue != NULL ? kyufu_glue_take_apply_max_ms(n->glue) : 0;
    n->stall_last_ns = now;
    kyufu_node__work_probe(n);
    if (gap_ms >= KYUFU_NODE_STALL_TICK_MS + KYUFU_NODE_STALL_WARN_MS) {
        n->stalls++;
        kyufu_log(KYUFU_LOG_WARN, "event loop stalled",
                  KYUFU_LOG_U("late_ms", gap_ms - KYUFU_NODE_STALL_TICK_MS),
                  KYUFU_LOG_U("slowest_apply_ms", apply_ms));
    }
}

void kyufu_node__stall_start(struct kyufu_node *n)
{
    n->stall_timer.data = n;
    n->stall_last_ns = uv_hrtime();
    uv_timer_start(&n->stall_timer, on_tick, KYUFU_NODE_STALL_TICK_MS,
                   KYUFU_NODE_STALL_TICK_MS);
}
