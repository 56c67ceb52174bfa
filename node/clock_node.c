/* kyufud's identity clock (steady_clock.h): both clocks read here, each
 * step logged once with its size, counted for /metrics (metrics_node.c);
 * while a step is ignored, the current leader's applied stamps are the
 * second opinion that can take it at once (kyufu_steady_clock_corroborate).
 * docs/chaos.md "Clock steps and sessions". */
#include <time.h>

#include "auth_node.h"
#include "glue.h"
#include "log.h"
#include "node.h"
#include "storage.h"

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The time now on the clock of the current term's leader, when that is
 * another node and this node has applied a command it stamped: its newest
 * stamp, advanced by this node's monotonic time since it was first seen
 * here (read at least once a second, by the auth timer, so the estimate
 * is behind by that and the replication delay at most: well within the
 * clock's tolerance). */
static bool leader_time(struct kyufu_node *n, int64_t mono_ms, int64_t *out)
{
    struct kyufu_node_auth *a = &n->auth;
    int64_t ms;
    uint64_t term;
    if (n->storage == NULL || n->glue == NULL) {
        return false;
    }
    kyufu_storage_last_stamp(n->storage, &ms, &term);
    if (ms <= 0) {
        return false;
    }
    if (ms != a->leader_stamp_ms || term != a->leader_stamp_term) {
        a->leader_stamp_ms = ms;
        a->leader_stamp_term = term;
        a->leader_stamp_seen_ms = mono_ms;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (st.term != term || st.leader_id == 0 ||
        st.leader_id == n->config->id) {
        return false; /* another term's, or our own stamp */
    }
    *out = ms + (mono_ms - a->leader_stamp_seen_ms);
    return true;
}

int64_t kyufu_node__auth_now_ms(struct kyufu_node *n)
{
    struct kyufu_steady_clock *c = &n->auth.clock;
    enum kyufu_steady_clock_event ev;
    int64_t step = c->step_ms;
    /* CLOCK_BOOTTIME, not CLOCK_MONOTONIC: it counts a suspend too, so
     * the wall clock after a resume (which NTP or the RTC moved on by the
     * suspend's length) agrees with it instead of looking like a forward
     * step that would be ignored until kyufud restarts. */
    int64_t wall = read_ms(CLOCK_REALTIME), mono = read_ms(CLOCK_BOOTTIME);
    int64_t now = kyufu_steady_clock_read(c, wall, mono, &ev);
    int64_t held_step = c->step_ms, leader;
    if (held_step != 0 && leader_time(n, mono, &leader) &&
        kyufu_steady_clock_corroborate(c, wall, mono, leader)) {
        kyufu_log(KYUFU_LOG_WARN,
                  "wall clock step accepted: the leader's clock agrees",
                  KYUFU_LOG_I("step_ms", held_step),
                  KYUFU_LOG_I("leader_minus_wall_ms", leader - wall));
        return wall;
    }
    switch (ev) {
    case KYUFU_STEADY_CLOCK_SAME:
        break;
    case KYUFU_STEADY_CLOCK_STEP:
        kyufu_log(KYUFU_LOG_WARN,
                  "wall clock stepped: ignored for sessions and lockouts",
                  KYUFU_LOG_I("step_ms", c->step_ms),
                  KYUFU_LOG_S("until", c->step_ms > 0
                                           ? "the clock is back or kyufud "
                                             "restarts"
                                           : "the clock is back, or 15 "
                                             "minutes"));
        break;
    case KYUFU_STEADY_CLOCK_AGREES:
        kyufu_log(KYUFU_LOG_INFO, "wall clock agrees again",
                  KYUFU_LOG_I("step_ms", step));
        break;
    case KYUFU_STEADY_CLOCK_ACCEPTED:
        kyufu_log(KYUFU_LOG_WARN, "wall clock step back accepted",
                  KYUFU_LOG_I("step_ms", step));
        break;
    }
    return now;
}
