/* The power policy (docs/power.md), on the loop thread.
 *
 * Happy path, leader's UPS goes on battery: an event (the watcher of
 * power_nut.c, or Cluster.PowerEvent from upsmon's NOTIFYCMD) sets
 * ON_BATTERY -> as leader, ask every other voter of the Raft configuration
 * (not [cluster]) for its Cluster.Status (power, domain, applied index)
 * through the forwarding clients, each with a
 * KYUFU_NODE_POWER_SURVEY_MS deadline -> pick the peer on mains (or with
 * no UPS known) outside our power domain with the highest applied index
 * -> kyufu_glue_transfer to it.  The same runs when this node becomes
 * leader while on battery (libraft 0.22.1 cannot keep a node from
 * campaigning, so it gives leadership away at once).
 *
 * Low battery (OB LB) or FSD: kyufu_node__stop with the reason; node.c's
 * stop hands over to kyufu_node__power_stop_target (none when every peer
 * is on battery too), drains the calls in flight, closes, and kyufud exits
 * KYUFU_NODE_EXIT_POWER.
 *
 * Failure modes: no peer on mains (all on battery, unreachable, in our
 * domain) -> stay leader, log, survey again every
 * KYUFU_NODE_POWER_RESURVEY_MS while on battery.  A failed transfer -> the
 * same.  Lost contact with upsd -> an error line at most every
 * KYUFU_NODE_POWER_ALERT_MS; the last known state stands (never a stop).
 * A peer's Status that does not answer or does not parse counts as "not on
 * mains". */
#include "power.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kyufu/v1/service.pb-c.h"
#include "limits.h"
#include "log.h"
#include "node.h"

/* ------------------------------------------------------------ parsing */

static const char *const state_names[] = {
    [KYUFU_POWER_NONE] = "none",
    [KYUFU_POWER_ONLINE] = "online",
    [KYUFU_POWER_ON_BATTERY] = "on_battery",
    [KYUFU_POWER_LOW_BATTERY] = "low_battery",
};

const char *kyufu_power_state_name(enum kyufu_power_state s)
{
    assert((size_t)s < sizeof state_names / sizeof state_names[0]);
    return state_names[s];
}

enum kyufu_power_state kyufu_power_state_parse(const char *name)
{
    for (size_t i = 0; i < sizeof state_names / sizeof state_names[0]; i++) {
        if (strcmp(state_names[i], name) == 0) {
            return (enum kyufu_power_state)i;
        }
    }
    return KYUFU_POWER_NONE;
}

static const struct
{
    const char *type;
    enum kyufu_power_event_kind kind;
    enum kyufu_power_state state;
} notify_types[] = {
    {"ONLINE", KYUFU_POWER_EVENT_STATE, KYUFU_POWER_ONLINE},
    {"ONBATT", KYUFU_POWER_EVENT_STATE, KYUFU_POWER_ON_BATTERY},
    {"LOWBATT", KYUFU_POWER_EVENT_STATE, KYUFU_POWER_LOW_BATTERY},
    {"SHUTDOWN", KYUFU_POWER_EVENT_STATE, KYUFU_POWER_LOW_BATTERY},
    {"COMMOK", KYUFU_POWER_EVENT_COMM_OK, KYUFU_POWER_NONE},
    {"COMMBAD", KYUFU_POWER_EVENT_COMM_BAD, KYUFU_POWER_NONE},
    {"NOCOMM", KYUFU_POWER_EVENT_COMM_BAD, KYUFU_POWER_NONE},
};

enum kyufu_power_event_kind kyufu_power_parse(const char *text,
                                              enum kyufu_power_state *state)
{
    for (size_t i = 0; i < sizeof notify_types / sizeof notify_types[0];
         i++) {
        if (strcmp(text, notify_types[i].type) == 0) {
            *state = notify_types[i].state;
            return notify_types[i].kind;
        }
    }
    /* ups.status: blank-separated tokens ("FSD" alone is both a
     * NOTIFYTYPE and a status, with the same meaning: parsed here). */
    bool ol = false, ob = false, lb = false, fsd = false;
    const char *p = text;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        const char *start = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        size_t len = (size_t)(p - start);
        if (len == 0) {
            break;
        }
#define TOKEN(s) (len == sizeof(s) - 1 && memcmp(start, s, len) == 0)
        ol = ol || TOKEN("OL");
        ob = ob || TOKEN("OB");
        lb = lb || TOKEN("LB");
        fsd = fsd || TOKEN("FSD");
#undef TOKEN
    }
    if (fsd || (ob && lb)) {
        *state = KYUFU_POWER_LOW_BATTERY;
    } else if (ob) {
        *state = KYUFU_POWER_ON_BATTERY;
    } else if (ol) {
        *state = KYUFU_POWER_ONLINE;
    } else {
        return KYUFU_POWER_EVENT_BAD;
    }
    return KYUFU_POWER_EVENT_STATE;
}

/* ------------------------------------------------------------ survey */

static bool on_battery(const struct kyufu_node *n)
{
    return n->power.state == KYUFU_POWER_ON_BATTERY ||
           n->power.state == KYUFU_POWER_LOW_BATTERY;
}

/* The best peer from the last survey: on mains (or nothing known), not in
 * our power domain, highest applied index; 0 when none. */
static uint64_t best_peer(struct kyufu_node *n)
{
    const struct kyufu_config *c = n->config;
    uint64_t best = 0, best_applied = 0;
    /* The survey may predate a membership change: a node removed since is
     * no candidate. */
    uint64_t ids[KYUFU_VOTERS_MAX];
    size_t count = n->glue != NULL ? kyufu_glue_voters(n->glue, ids, KYUFU_VOTERS_MAX) : 0;
    count = count < KYUFU_VOTERS_MAX ? count : KYUFU_VOTERS_MAX;
    for (size_t i = 0; i < n->power.n_surveyed; i++) {
        const struct kyufu_node_power_peer *p = &n->power.peers[i];
        bool voter = false;
        for (size_t j = 0; j < count && !voter; j++) {
            voter = ids[j] == p->id;
        }
        if (!p->answered || !voter) {
            continue;
        }
        if (p->state != KYUFU_POWER_ONLINE && p->state != KYUFU_POWER_NONE) {
            continue;
        }
        if (c->power_domain[0] != '\0' &&
            strcmp(p->domain, c->power_domain) == 0) {
            continue; /* same UPS: on battery too, whatever it says yet */
        }
        if (best == 0 || p->applied > best_applied) {
            best = p->id;
            best_applied = p->applied;
        }
    }
    return best;
}

static void consider(struct kyufu_node *n);
static void power_transfer_start(struct kyufu_node *n);
static void on_power_intent(struct kyufu_node *n, int status, void *arg);

static void on_resurvey(uv_timer_t *t)
{
    consider(t->data);
}

static void on_power_transfer(struct kyufu_glue_transfer *req, int status)
{
    struct kyufu_node *n = req->data;
    n->power.transfer_pending = false;
    if (status == 0) {
        const char *api = "";
        uint64_t leader = kyufu_node__leader(n, &api);
        kyufu_log(KYUFU_LOG_INFO, "power: leadership handed to a node on "
                  "mains",
                  KYUFU_LOG_U("new_leader", leader),
                  KYUFU_LOG_S("new_leader_api", api));
        return;
    }
    if (n->stage == KYUFU_NODE_RUNNING && !n->stop_requested) {
        kyufu_log(KYUFU_LOG_WARN, "power: hand-over failed; trying again",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)),
                  KYUFU_LOG_U("ms", KYUFU_NODE_POWER_RESURVEY_MS));
        uv_timer_start(&n->power.resurvey, on_resurvey,
                       KYUFU_NODE_POWER_RESURVEY_MS, 0);
    }
}

/* Every peer answered (or timed out): act on it. */
static void survey_done(struct kyufu_node *n)
{
    n->power.surveyed = true;
    if (n->stage != KYUFU_NODE_RUNNING || n->stop_requested ||
        !on_battery(n) || n->glue == NULL || !kyufu_glue_is_leader(n->glue)) {
        return;
    }
    uint64_t target = best_peer(n);
    if (target == 0) {
        kyufu_log(KYUFU_LOG_WARN, "power: leader on battery and no node on "
                  "mains to take over; staying leader",
                  KYUFU_LOG_S("domain", n->config->power_domain),
                  KYUFU_LOG_U("retry_ms", KYUFU_NODE_POWER_RESURVEY_MS));
        uv_timer_start(&n->power.resurvey, on_resurvey,
                       KYUFU_NODE_POWER_RESURVEY_MS, 0);
        return;
    }
    n->power.transfer.data = n;
    n->power.transfer_target = target;
    /* The availability ledger's cause first (POWER), then the transfer
     * (power_transfer_start, once the intent has committed). */
    int rv = kyufu_node__avail_intent(n, KYUFU__V1__FAILOVER_CAUSE__CAUSE_POWER,
                                      "", on_power_intent, NULL);
    if (rv == 0) {
        n->power.transfer_pending = true;
        return;
    }
    power_transfer_start(n);
}

/* The intent committed or failed: the hand-over goes ahead either way
 * (unless this node no longer leads). */
static void on_power_intent(struct kyufu_node *n, int status, void *arg)
{
    (void)status;
    (void)arg;
    n->power.transfer_pending = false;
    if (n->glue == NULL || n->stage >= KYUFU_NODE_CLOSING ||
        !kyufu_glue_is_leader(n->glue)) {
        return;
    }
    power_transfer_start(n);
}

static void power_transfer_start(struct kyufu_node *n)
{
    uint64_t target = n->power.transfer_target;
    int rv = kyufu_glue_transfer(n->glue, &n->power.transfer, target,
                                 on_power_transfer);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_WARN, "power: cannot start the hand-over",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(rv)));
        uv_timer_start(&n->power.resurvey, on_resurvey,
                       KYUFU_NODE_POWER_RESURVEY_MS, 0);
        return;
    }
    kyufu_node__metrics_transfer(n, KYUFU_NODE_CAUSE_POWER);
    n->power.transfer_pending = true;
    kyufu_log(KYUFU_LOG_INFO, "power: on battery, handing leadership over",
              KYUFU_LOG_U("to", target));
}

static void on_peer_status(struct kyufu_grpc_client_req *req,
                           int status,
                           const char *message,
                           const uint8_t *response,
                           size_t response_len)
{
    struct kyufu_node_power_peer *p = req->data;
    struct kyufu_node *n = p->node;
    (void)message;
    p->answered = false;
    if (status == KYUFU_GRPC_OK) {
        Kyufu__V1__NodeStatus *st = kyufu__v1__node_status__unpack(
            NULL, response_len, response_len > 0 ? response : (const uint8_t *)"");
        if (st != NULL) {
            p->answered = true;
            p->state = kyufu_power_state_parse(st->power);
            snprintf(p->domain, sizeof p->domain, "%s", st->power_domain);
            p->applied = st->applied_index;
            kyufu__v1__node_status__free_unpacked(st, NULL);
        }
    }
    assert(n->power.survey_pending > 0);
    if (--n->power.survey_pending == 0) {
        survey_done(n);
    }
}

/* A leader on battery: find a node on mains (see the file's comment). */
static void consider(struct kyufu_node *n)
{
    if (n->stage != KYUFU_NODE_RUNNING || n->stop_requested ||
        n->power.state != KYUFU_POWER_ON_BATTERY || n->glue == NULL ||
        !kyufu_glue_is_leader(n->glue) ||
        n->power.survey_pending > 0 || n->power.transfer_pending) {
        return;
    }
    uint64_t ids[KYUFU_VOTERS_MAX];
    size_t count = kyufu_glue_voters(n->glue, ids, KYUFU_VOTERS_MAX);
    if (count < 2) {
        return; /* no other voter to hand over to */
    }
    uv_timer_stop(&n->power.resurvey);
    /* Count first: a call that fails to start must not end the survey
     * while others are still to be sent. */
    n->power.survey_pending = 1;
    n->power.n_surveyed = 0;
    for (size_t i = 0; i < count && i < KYUFU_VOTERS_MAX; i++) {
        if (ids[i] == n->config->id ||
            n->power.n_surveyed == KYUFU_NODE_CLUSTER_SIZE_MAX) {
            continue;
        }
        struct kyufu_node_power_peer *p = &n->power.peers[n->power.n_surveyed++];
        p->id = ids[i];
        p->answered = false;
        p->node = n;
        p->req.data = p;
        const char *api = NULL;
        int slot = kyufu_node__peer_slot(n, ids[i], &api);
        if (slot >= 0 &&
            kyufu_node__ask_status(n, (size_t)slot, &p->req,
                                   KYUFU_NODE_POWER_SURVEY_MS,
                                   on_peer_status) == 0) {
            n->power.survey_pending++;
        }
    }
    if (--n->power.survey_pending == 0) {
        survey_done(n); /* no peer reachable: not inside a callback */
    }
}

uint64_t kyufu_node__power_stop_target(struct kyufu_node *n)
{
    if (!on_battery(n) || !n->power.surveyed) {
        return 0; /* on mains, or nothing known: the glue picks */
    }
    uint64_t target = best_peer(n);
    return target != 0 ? target : UINT64_MAX;
}

/* ------------------------------------------------------------ events */

static void alert(struct kyufu_node *n, const char *source, const char *why)
{
    uint64_t now = uv_now(&n->loop);
    if (n->power.alerted && now - n->power.alert_last_ms <
                                KYUFU_NODE_POWER_ALERT_MS) {
        n->power.alerts_suppressed++;
        return;
    }
    kyufu_log(KYUFU_LOG_ERROR, "power: lost contact with the UPS; keeping "
              "the last known state",
              KYUFU_LOG_S("source", source),
              KYUFU_LOG_S("ups", n->config->power_ups),
              KYUFU_LOG_S("state", kyufu_power_state_name(n->power.state)),
              KYUFU_LOG_S("error", why),
              KYUFU_LOG_U("suppressed", n->power.alerts_suppressed));
    n->power.alerted = true;
    n->power.alert_last_ms = now;
    n->power.alerts_suppressed = 0;
}

void kyufu_node__power_event(struct kyufu_node *n,
                             enum kyufu_power_event_kind kind,
                             enum kyufu_power_state state,
                             const char *source,
                             const char *detail)
{
    switch (kind) {
    case KYUFU_POWER_EVENT_BAD:
        return;
    case KYUFU_POWER_EVENT_COMM_BAD:
        n->power.contact_lost = true;
        alert(n, source, detail);
        return;
    case KYUFU_POWER_EVENT_COMM_OK:
        if (n->power.contact_lost) {
            kyufu_log(KYUFU_LOG_INFO, "power: contact with the UPS is back",
                      KYUFU_LOG_S("source", source));
        }
        n->power.contact_lost = false;
        return;
    case KYUFU_POWER_EVENT_STATE:
        break;
    }
    enum kyufu_power_state was = n->power.state;
    n->power.state = state;
    if (state == was) {
        return;
    }
    switch (state) {
    case KYUFU_POWER_NONE:
        break;
    case KYUFU_POWER_ONLINE:
        uv_timer_stop(&n->power.resurvey);
        kyufu_log(KYUFU_LOG_INFO, "power: on line", KYUFU_LOG_S("source", source),
                  KYUFU_LOG_S("status", detail),
                  KYUFU_LOG_S("was", kyufu_power_state_name(was)));
        break;
    case KYUFU_POWER_ON_BATTERY:
        kyufu_log(KYUFU_LOG_WARN, "power: on battery",
                  KYUFU_LOG_S("source", source), KYUFU_LOG_S("status", detail),
                  KYUFU_LOG_S("domain", n->config->power_domain));
        consider(n);
        break;
    case KYUFU_POWER_LOW_BATTERY:
        kyufu_log(KYUFU_LOG_ERROR, "power: low battery or forced shutdown; "
                  "stopping cleanly",
                  KYUFU_LOG_S("source", source), KYUFU_LOG_S("status", detail));
        uv_timer_stop(&n->power.resurvey);
        if (!n->stop_requested) {
            n->power.stop_ordered = true;
        }
        kyufu_node__stop(n, 0, "UPS low battery");
        break;
    }
}

void kyufu_node__power_on_state(struct kyufu_node *n)
{
    consider(n);
}

static void on_watch(void *arg, const char *status, const char *error)
{
    struct kyufu_node *n = arg;
    if (status == NULL) {
        kyufu_node__power_event(n, KYUFU_POWER_EVENT_COMM_BAD,
                                KYUFU_POWER_NONE, "upsd", error);
        return;
    }
    kyufu_node__power_event(n, KYUFU_POWER_EVENT_COMM_OK, KYUFU_POWER_NONE,
                            "upsd", status);
    enum kyufu_power_state st = KYUFU_POWER_NONE;
    if (kyufu_power_parse(status, &st) != KYUFU_POWER_EVENT_STATE) {
        kyufu_log(KYUFU_LOG_WARN, "power: ups.status without OL, OB or FSD; "
                  "ignored", KYUFU_LOG_S("status", status));
        return;
    }
    kyufu_node__power_event(n, KYUFU_POWER_EVENT_STATE, st, "upsd", status);
}

int kyufu_node__power_start(struct kyufu_node *n,
                            char *errmsg,
                            size_t errmsg_len)
{
    const struct kyufu_config *c = n->config;
    if (c->power_ups[0] == '\0') {
        return 0;
    }
    int rv = kyufu_power_watch_start(&n->loop, c->power_ups, c->power_poll_ms,
                                     on_watch, n, &n->power.watch, errmsg,
                                     errmsg_len);
    if (rv != 0) {
        n->power.watch = NULL;
        return rv;
    }
    kyufu_log(KYUFU_LOG_INFO, "power: watching the UPS",
              KYUFU_LOG_S("ups", c->power_ups),
              KYUFU_LOG_S("domain", c->power_domain),
              KYUFU_LOG_U("poll_ms", c->power_poll_ms));
    return 0;
}

void kyufu_node__power_close(struct kyufu_node *n)
{
    if (n->power.watch != NULL) {
        kyufu_power_watch_close(n->power.watch);
        n->power.watch = NULL;
    }
    uv_close((uv_handle_t *)&n->power.resurvey, NULL);
}

/* ------------------------------------------------------------ command */

int kyufu_node__power_command(const struct kyufu_config *c)
{
    if (c->power_shutdown_command[0] == '\0') {
        return 0;
    }
    kyufu_log(KYUFU_LOG_INFO, "power: running the shutdown command",
              KYUFU_LOG_S("command", c->power_shutdown_command));
    pid_t pid = fork();
    if (pid < 0) {
        kyufu_log(KYUFU_LOG_ERROR, "power: cannot run the shutdown command",
                  KYUFU_LOG_S("error", strerror(errno)));
        return -1;
    }
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", c->power_shutdown_command, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    kyufu_log(ok ? KYUFU_LOG_INFO : KYUFU_LOG_ERROR,
              "power: shutdown command finished",
              KYUFU_LOG_I("exit_status",
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    return ok ? 0 : -1;
}
