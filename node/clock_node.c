/* kyufud's identity clock (steady_clock.h): both clocks read here, each
 * step logged once with its size, counted for /metrics (metrics_node.c).
 * docs/chaos.md "Clock steps and sessions". */
#include <time.h>

#include "auth_node.h"
#include "log.h"
#include "node.h"

static int64_t read_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    int64_t now = kyufu_steady_clock_read(c, read_ms(CLOCK_REALTIME),
                                          read_ms(CLOCK_BOOTTIME), &ev);
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
