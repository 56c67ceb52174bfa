/* Rate-limited log of refused connections: see refusal.h. */
#include "refusal.h"

#include <assert.h>
#include <stddef.h>

#include "limits.h"
#include "log.h"
#include "node.h"

void kyufu_node__refusal(void *data, const struct kyufu_api_refusal *r)
{
    struct kyufu_node_refusals *rf = data;
    assert(rf != NULL && rf->loop != NULL);
    assert((unsigned)r->kind < sizeof rf->kind / sizeof rf->kind[0]);
    uint64_t now = uv_now(rf->loop);
    struct kyufu_node_refusal_count *k = &rf->kind[r->kind];
    k->total++;
    /* The operation log too (oplog.h: its own bound per reason). */
    struct kyufu_node *n =
        (struct kyufu_node *)((char *)rf - offsetof(struct kyufu_node, refusals));
    kyufu_node__oplog_connection(n, kyufu_api_refusal_name(r->kind), r->peer,
                                 r->subject, r->detail);
    if (now - k->window_start_ms >= KYUFU_NODE_REFUSAL_LOG_WINDOW_MS) {
        if (k->suppressed > 0) {
            kyufu_log(KYUFU_LOG_WARN, "connections refused, not logged",
                      KYUFU_LOG_S("reason", kyufu_api_refusal_name(r->kind)),
                      KYUFU_LOG_U("count", k->suppressed),
                      KYUFU_LOG_U("total", k->total - 1));
        }
        k->window_start_ms = now;
        k->logged = 0;
        k->suppressed = 0;
    }
    if (k->logged >= KYUFU_NODE_REFUSAL_LOG_BURST) {
        k->suppressed++;
        return;
    }
    k->logged++;
    if (r->kind == KYUFU_API_REFUSED_REVOKED) {
        /* A connection that was open, closed at a CRL reload. */
        kyufu_log(KYUFU_LOG_WARN, "connection closed",
                  KYUFU_LOG_S("reason", kyufu_api_refusal_name(r->kind)),
                  KYUFU_LOG_S("peer", r->peer), KYUFU_LOG_S("subject", r->subject),
                  KYUFU_LOG_S("detail", r->detail));
        return;
    }
    kyufu_log(KYUFU_LOG_WARN, "connection refused",
              KYUFU_LOG_S("reason", kyufu_api_refusal_name(r->kind)),
              KYUFU_LOG_S("peer", r->peer), KYUFU_LOG_S("subject", r->subject),
              KYUFU_LOG_S("detail", r->detail));
}
