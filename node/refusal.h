/* Connections the node turns away (node/refusal.c): every refusal the API
 * server reports (too many connections, from one address, outside the
 * allow-list, failed or stalled TLS handshakes, and an open connection
 * closed because a CRL reload revoked its certificate: "connection closed")
 * is logged as a warning with
 * the peer address, the certificate subject it presented and the reason,
 * rate-limited per kind so that a flood cannot flood the log: at most
 * KYUFU_NODE_REFUSAL_LOG_BURST lines per kind per
 * KYUFU_NODE_REFUSAL_LOG_WINDOW_MS, then one line with the number left
 * out when the next window opens.  Each refusal also becomes an access
 * record of the operation log (oplog.h), bounded alike.  Loop thread only. */
#ifndef KYUFU_NODE_REFUSAL_H
#define KYUFU_NODE_REFUSAL_H

#include <stdint.h>

#include "grpc.h"

struct kyufu_node_refusal_count
{
    uint64_t window_start_ms;
    unsigned logged;          /* lines in the current window */
    unsigned long suppressed; /* refusals not logged since */
    unsigned long total;
};

struct kyufu_node_refusals
{
    uv_loop_t *loop;
    struct kyufu_node_refusal_count kind[KYUFU_API_REFUSAL_KINDS];
};

/* The API server's on_refusal; data is a struct kyufu_node_refusals. */
void kyufu_node__refusal(void *data, const struct kyufu_api_refusal *r);

#endif /* KYUFU_NODE_REFUSAL_H */
