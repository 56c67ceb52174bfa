/* The step-ignoring wall clock (steady_clock.h). */
#include "steady_clock.h"

static int64_t magnitude(int64_t v)
{
    return v < 0 ? -v : v;
}

static void anchor(struct kyufu_steady_clock *c, int64_t wall_ms,
                   int64_t mono_ms)
{
    c->anchored = true;
    c->anchor_wall_ms = wall_ms;
    c->anchor_mono_ms = mono_ms;
    c->step_ms = 0;
    c->step_since_ms = 0;
}

int64_t kyufu_steady_clock_read(struct kyufu_steady_clock *c,
                                int64_t wall_ms,
                                int64_t mono_ms,
                                enum kyufu_steady_clock_event *event)
{
    *event = KYUFU_STEADY_CLOCK_SAME;
    if (!c->anchored) {
        anchor(c, wall_ms, mono_ms);
        return wall_ms;
    }
    int64_t held = c->anchor_wall_ms + (mono_ms - c->anchor_mono_ms);
    int64_t d = wall_ms - held;
    if (magnitude(d) <= KYUFU_STEADY_CLOCK_TOLERANCE_MS) {
        /* Re-anchored at every agreeing reading: a slew (at most 0.5 ms a
         * second) is followed, never mistaken for a step. */
        if (c->step_ms != 0) {
            *event = KYUFU_STEADY_CLOCK_AGREES;
        }
        anchor(c, wall_ms, mono_ms);
        return wall_ms;
    }
    if (c->step_ms == 0 ||
        magnitude(d - c->step_ms) > KYUFU_STEADY_CLOCK_TOLERANCE_MS) {
        /* A step (or another one while the first is ignored): told once. */
        c->step_since_ms = mono_ms;
        c->steps++;
        *event = KYUFU_STEADY_CLOCK_STEP;
    }
    c->step_ms = d;
    if (d < 0 &&
        mono_ms - c->step_since_ms >= KYUFU_STEADY_CLOCK_BACK_ACCEPT_MS) {
        *event = KYUFU_STEADY_CLOCK_ACCEPTED;
        anchor(c, wall_ms, mono_ms);
        return wall_ms;
    }
    return held;
}

bool kyufu_steady_clock_corroborate(struct kyufu_steady_clock *c,
                                    int64_t wall_ms,
                                    int64_t mono_ms,
                                    int64_t other_ms)
{
    if (!c->anchored || c->step_ms == 0) {
        return false;
    }
    int64_t held = c->anchor_wall_ms + (mono_ms - c->anchor_mono_ms);
    if (magnitude(wall_ms - other_ms) > KYUFU_STEADY_CLOCK_TOLERANCE_MS ||
        magnitude(held - other_ms) <= KYUFU_STEADY_CLOCK_TOLERANCE_MS) {
        return false;
    }
    anchor(c, wall_ms, mono_ms);
    return true;
}
