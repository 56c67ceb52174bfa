/* systemd service notification: see notify.h.  The watchdog timer lives in
 * struct kyufu_node and is closed with the node's other handles. */
#include "notify.h"

#include <assert.h>
#include <stdio.h>

#include "limits.h"
#include "log.h"

#ifdef KYUFU_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

#ifdef KYUFU_HAVE_LIBSYSTEMD
static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    (void)sd_notify(0, "WATCHDOG=1");
}
#endif

void kyufu_node__notify_init(struct kyufu_node *n)
{
    int rv = uv_timer_init(&n->loop, &n->watchdog_timer);
    assert(rv == 0);
    (void)rv;
    n->watchdog_timer.data = n;
}

void kyufu_node__notify_ready(struct kyufu_node *n)
{
#ifdef KYUFU_HAVE_LIBSYSTEMD
    char status[64 + KYUFU_NODE_ADDRESS_BYTES_MAX];
    snprintf(status, sizeof status, "READY=1\nSTATUS=node %llu serving on %s",
             (unsigned long long)n->config->id, n->config->api_address);
    (void)sd_notify(0, status);
    uint64_t usec = 0;
    /* > 0: WATCHDOG_USEC is set and WATCHDOG_PID (if any) is us. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uint64_t every_ms = usec / 2000u;
        if (every_ms < KYUFU_NODE_WATCHDOG_PING_MS_MIN) {
            every_ms = KYUFU_NODE_WATCHDOG_PING_MS_MIN;
        }
        uv_timer_start(&n->watchdog_timer, on_watchdog, 0, every_ms);
        kyufu_log(KYUFU_LOG_INFO, "systemd watchdog on",
                  KYUFU_LOG_U("ping_ms", every_ms));
    }
#else
    (void)n;
#endif
}

void kyufu_node__notify_stopping(struct kyufu_node *n)
{
    /* The pings go on until the handles close: systemd may still hold the
     * stop to the watchdog while the node hands over and drains. */
    (void)n;
#ifdef KYUFU_HAVE_LIBSYSTEMD
    (void)sd_notify(0, "STOPPING=1");
#endif
}

void kyufu_node__notify_close(struct kyufu_node *n)
{
    uv_close((uv_handle_t *)&n->watchdog_timer, close_noop);
}
