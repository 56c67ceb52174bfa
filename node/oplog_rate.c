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
    const uint64_t window = KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS;
    struct kyufu_node_oplog_reason *r = NULL;
    struct kyufu_node_oplog_reason *oldest = &o->reason[0];
    *flush = 0;
    if (now_ms - o->window_start_ms >= window) {
        o->window_start_ms = now_ms;
        o->window_records = 0;
    }
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
    uint64_t carry = 0;
    if (r == NULL) {
        /* A new reason takes a free slot or the oldest one, whose count
         * (refusals left out) goes to the overflow. */
        r = oldest;
        o->overflow += r->suppressed;
        memset(r, 0, sizeof *r);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->code = code;
        r->window_start_ms = now_ms;
    } else if (now_ms - r->window_start_ms >= window) {
        carry = r->suppressed;
        r->window_start_ms = now_ms;
        r->recorded = 0;
        r->suppressed = 0;
    }
    if (carry > 0) {
        if (o->window_records < KYUFU_NODE_OPLOG_REFUSALS_TOTAL) {
            o->window_records++;
            *flush = carry;
        } else {
            o->overflow += carry;
        }
    }
    if (r->recorded >= KYUFU_NODE_OPLOG_REFUSALS_BURST ||
        o->window_records >= KYUFU_NODE_OPLOG_REFUSALS_TOTAL) {
        r->suppressed++;
        o->refusals_suppressed++;
        return false;
    }
    r->recorded++;
    o->window_records++;
    return true;
}
