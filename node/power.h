/* Power awareness (docs/power.md): the UPS's state, where it comes from,
 * and what the node does about it.
 *
 *   power_nut.c  the watcher: NUT's libupsclient on a thread of its own
 *                (the only file that includes upsclient.h), results handed
 *                to the loop through a uv_async.
 *   power.c      the policy, on the loop thread: hand-over on battery,
 *                clean stop on low battery, alerts on lost contact.
 */
#ifndef KYUFU_NODE_POWER_H
#define KYUFU_NODE_POWER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

enum kyufu_power_state {
    KYUFU_POWER_NONE = 0,    /* nothing known: treated as mains */
    KYUFU_POWER_ONLINE,      /* OL */
    KYUFU_POWER_ON_BATTERY,  /* OB */
    KYUFU_POWER_LOW_BATTERY, /* OB LB, or FSD */
};

/* "none" | "online" | "on_battery" | "low_battery" (static). */
const char *kyufu_power_state_name(enum kyufu_power_state s);
/* The inverse (for peers' NodeStatus.power); NONE for anything else. */
enum kyufu_power_state kyufu_power_state_parse(const char *name);

/* What one event says. */
enum kyufu_power_event_kind {
    KYUFU_POWER_EVENT_BAD = 0, /* not an event we know */
    KYUFU_POWER_EVENT_STATE,   /* a new state (state below) */
    KYUFU_POWER_EVENT_COMM_OK, /* upsd answers again */
    KYUFU_POWER_EVENT_COMM_BAD /* upsd (or the UPS) cannot be reached */
};

/* Parse an ups.status value ("OL", "OB DISCHRG", "OB LB", "FSD OB LB",
 * tokens separated by blanks: FSD, or OB with LB, is low battery; OB on
 * battery; OL online) or a upsmon NOTIFYTYPE (ONLINE, ONBATT, LOWBATT,
 * FSD, SHUTDOWN, COMMOK, COMMBAD, NOCOMM).  A status with none of OL, OB,
 * FSD is BAD.  Pure: no I/O. */
enum kyufu_power_event_kind kyufu_power_parse(const char *text,
                                              enum kyufu_power_state *state);

/* ---------------------------------------------------------- the watcher */

struct kyufu_power_watch; /* Opaque. */

/* Called on the loop thread: `status` is the new ups.status (only changes
 * are reported, and the first read), or NULL when contact was lost, with
 * `error` saying why (both borrowed for the call). */
typedef void (*kyufu_power_watch_cb)(void *arg,
                                     const char *status,
                                     const char *error);

/* Start watching `ups` ("NAME@HOST[:PORT]", validated by config.c) every
 * poll_ms.  Returns 0, or -1 with errmsg (out of memory, no thread); then
 * nothing was started. */
int kyufu_power_watch_start(uv_loop_t *loop,
                            const char *ups,
                            unsigned poll_ms,
                            kyufu_power_watch_cb cb,
                            void *arg,
                            struct kyufu_power_watch **out,
                            char *errmsg,
                            size_t errmsg_len);

/* Stop: cb is not called again.  The thread ends after its current
 * libupsclient call (at most its 5 s network timeout); the loop is not
 * blocked meanwhile: the watcher's uv_async handle stays open until then,
 * and is closed and the watcher freed from its own callback. */
void kyufu_power_watch_close(struct kyufu_power_watch *w);

/* ---------------------------------------------------------- the policy */

struct kyufu_node;

/* Start the watcher when [power] ups is set, and the survey timer.  0 or
 * -1 with errmsg. */
int kyufu_node__power_start(struct kyufu_node *n,
                            char *errmsg,
                            size_t errmsg_len);
/* Close the watcher and the timers (part of kyufu_node__finish). */
void kyufu_node__power_close(struct kyufu_node *n);
/* Apply an event, from the watcher or from Cluster.PowerEvent; `source`
 * ("upsd", "power-event") for the log. */
void kyufu_node__power_event(struct kyufu_node *n,
                             enum kyufu_power_event_kind kind,
                             enum kyufu_power_state state,
                             const char *source,
                             const char *detail);
/* Raft state changed (node.c's on_state): a leader on battery hands over. */
void kyufu_node__power_on_state(struct kyufu_node *n);
/* The peer a stopping leader should hand over to: a peer last seen on
 * mains in another power domain; 0 (the glue picks) when this node is not
 * on battery; UINT64_MAX when it is and no such peer is known (then no
 * hand-over: every peer is going down too). */
uint64_t kyufu_node__power_stop_target(struct kyufu_node *n);

#endif /* KYUFU_NODE_POWER_H */
