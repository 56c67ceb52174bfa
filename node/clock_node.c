/* kyufud's identity clock (steady_clock.h): both clocks read here, each
 * step logged once with its size, counted for /metrics (metrics_node.c);
 * while a step is ignored, the current leader's applied stamps are the
 * second opinion that can take it at once (kyufu_steady_clock_corroborate).
 * docs/chaos.md "Clock steps and sessions". */
#include <time.h>

#include "auth_node.h"
#include "glue.h"
#include "limits.h"
#include "log.h"
#include "node.h"
#include "storage.h"

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kyufu_node__clock_applied(struct kyufu_node *n)
{
    struct kyufu_node_auth *a = &n->auth;
    int64_t ms;
    uint64_t term;
    if (n->storage == NULL) {
        return;
    }
    kyufu_storage_last_stamp(n->storage, &ms, &term);
    if (ms != a->leader_stamp_ms || term != a->leader_stamp_term) {
        a->leader_stamp_ms = ms;
        a->leader_stamp_term = term;
        a->leader_stamp_seen_ms = read_ms(CLOCK_BOOTTIME);
    }
}

/* The time now on the clock of the current term's leader, when that is
 * another node and this node applied a command it stamped (every header
 * a leader stamps comes from its identity clock): its newest stamp,
 * advanced by this node's monotonic time since that entry was applied
 * here (kyufu_node__clock_applied), so the estimate is behind by the
 * commit latency.  Not while this node is more than
 * KYUFU_NODE_CLOCK_LAG_ENTRIES_MAX entries behind the commit index (a
 * catching-up follower applies old stamps late), nor from a stamp out of
 * any sane range (a broken leader must not overflow the arithmetic). */
static bool leader_time(struct kyufu_node *n, int64_t mono_ms, int64_t *out)
{
    const struct kyufu_node_auth *a = &n->auth;
    if (n->glue == NULL || a->leader_stamp_ms <= 0 ||
        a->leader_stamp_ms > KYUFU_NODE_CLOCK_STAMP_MS_MAX ||
        mono_ms < a->leader_stamp_seen_ms) {
        return false;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (st.term != a->leader_stamp_term || st.leader_id == 0 ||
        st.leader_id == n->config->id) {
        return false; /* another term's, or our own stamp */
    }
    if (st.commit_index > st.applied_index + KYUFU_NODE_CLOCK_LAG_ENTRIES_MAX) {
        return false;
    }
    *out = a->leader_stamp_ms + (mono_ms - a->leader_stamp_seen_ms);
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
