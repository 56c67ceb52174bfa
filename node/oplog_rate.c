/* The rate bound of refusal records (oplog.h): apart from the node so the
 * tests drive it with their own clock. */
#include <string.h>
#include <stdio.h>

#include "limits.h"
#include "oplog.h"

bool kyufu_node__oplog_admit(struct kyufu_node_oplog *o,
                             const char *method,
                             int code,
                             uint64_t now_ms,
                             uint64_t *flush)
{
    struct kyufu_node_oplog_reason *r = NULL;
    struct kyufu_node_oplog_reason *oldest = &o->reason[0];
    *flush = 0;
    for (size_t i = 0; i < KYUFU_NODE_OPLOG_REASONS; i++) {
        struct kyufu_node_oplog_reason *x = &o->reason[i];
        if (x->method[0] != '\0' && x->code == code &&
            strncmp(x->method, method, sizeof x->method - 1) == 0) {
            r = x;
            break;
        }
        if (x->method[0] == '\0' ||
            (oldest->method[0] != '\0' &&
             x->window_start_ms < oldest->window_start_ms)) {
            oldest = x;
        }
    }
    if (r == NULL) {
        /* A new reason takes a free slot or the oldest one; an oldest with
         * refusals left out hands its count over first. */
        r = oldest;
        *flush = r->suppressed;
        memset(r, 0, sizeof *r);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->code = code;
        r->window_start_ms = now_ms;
    } else if (now_ms - r->window_start_ms >=
               KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS) {
        *flush = r->suppressed;
        r->window_start_ms = now_ms;
        r->recorded = 0;
        r->suppressed = 0;
    }
    if (r->recorded >= KYUFU_NODE_OPLOG_REFUSALS_BURST) {
        r->suppressed++;
        o->refusals_suppressed++;
        return false;
    }
    r->recorded++;
    return true;
}
