/* The identity clock (node/steady_clock.c) on injected readings of the
 * wall and monotonic clocks: it follows the wall clock and its slew,
 * ignores steps forward (until the clock is back) and back (until it is
 * back, or for at most KYUFU_STEADY_CLOCK_BACK_ACCEPT_MS, or at once when
 * the leader's clock agrees with the wall clock), tells each step once,
 * and re-anchors when the clocks agree again. */
#include <stdint.h>
#include <stdio.h>

#include "../count_check.h"
#include "steady_clock.h"

#define S INT64_C(1000)
#define MIN (60 * S)
#define HOUR (60 * MIN)
#define T0 INT64_C(1796000000000) /* a wall time in 2026 */
#define M0 INT64_C(5000)          /* monotonic at start */

static struct kyufu_steady_clock c;
static enum kyufu_steady_clock_event ev;

/* The clock's time at (wall, mono after start). */
static int64_t at(int64_t wall, int64_t mono)
{
    return kyufu_steady_clock_read(&c, wall, M0 + mono, &ev);
}

static void reset(void)
{
    c = (struct kyufu_steady_clock){0};
    CHECK(at(T0, 0) == T0 && ev == KYUFU_STEADY_CLOCK_SAME);
}

/* Agreeing clocks, and a slew: the wall clock is followed exactly. */
static void follows(void)
{
    reset();
    CHECK(at(T0 + 10 * S, 10 * S) == T0 + 10 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    /* NTP slews at most 500 ppm: 1.8 s an hour, read every second here
     * every 10 minutes: always followed, never a step. */
    int64_t drift = 0;
    for (int64_t t = 10 * S; t <= 10 * HOUR; t += 10 * MIN) {
        drift = t / 2000;
        CHECK(at(T0 + t + drift, t) == T0 + t + drift);
        CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    }
    CHECK(c.steps == 0 && c.step_ms == 0);
    /* Just within the tolerance of the last reading: still followed. */
    int64_t t = 10 * HOUR + MIN;
    CHECK(at(T0 + t + drift + KYUFU_STEADY_CLOCK_TOLERANCE_MS, t) ==
          T0 + t + drift + KYUFU_STEADY_CLOCK_TOLERANCE_MS);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME && c.steps == 0);
}

/* +6 h: ignored, told once, the time runs on at the monotonic pace; the
 * clock stepped back to the truth: agrees, followed again. */
static void forward(void)
{
    reset();
    CHECK(at(T0 + 6 * HOUR + 10 * S, 10 * S) == T0 + 10 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.steps == 1);
    CHECK(c.step_ms == 6 * HOUR);
    for (int64_t t = 11 * S; t < 2 * HOUR; t += 7 * S) {
        CHECK(at(T0 + 6 * HOUR + t, t) == T0 + t);
        CHECK(ev == KYUFU_STEADY_CLOCK_SAME); /* once per step */
    }
    /* Held for hours: a forward step is never taken by time alone. */
    CHECK(at(T0 + 6 * HOUR + 30 * HOUR, 30 * HOUR) == T0 + 30 * HOUR);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    /* Back to the truth (2 s off: within the tolerance). */
    CHECK(at(T0 + 31 * HOUR + 2 * S, 31 * HOUR) == T0 + 31 * HOUR + 2 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_AGREES && c.step_ms == 0);
    CHECK(at(T0 + 31 * HOUR + 3 * S, 31 * HOUR + S) == T0 + 31 * HOUR + 3 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME && c.steps == 1);
}

/* A second step while the first is ignored is a new step (told again);
 * a small change in the offset (a slew during the step) is not. */
static void restep(void)
{
    reset();
    at(T0 + 2 * MIN, 0 + S);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.steps == 1);
    CHECK(at(T0 + 2 * MIN + 2 * S + 900, 2 * S) == T0 + 2 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME && c.steps == 1);
    CHECK(at(T0 + HOUR + 3 * S, 3 * S) == T0 + 3 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.steps == 2 && c.step_ms == HOUR);
    /* From forward to back: a new step again. */
    CHECK(at(T0 - HOUR + 4 * S, 4 * S) == T0 + 4 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.steps == 3);
    CHECK(c.step_ms == -HOUR);
}

/* -40 min: ignored while it lasts up to the bound, then taken (an
 * operator's correction of a clock that was ahead); a step back that
 * heals before the bound is never taken. */
static void back(void)
{
    reset();
    CHECK(at(T0 - 40 * MIN + MIN, MIN) == T0 + MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.step_ms == -40 * MIN);
    CHECK(at(T0 - 40 * MIN + 5 * MIN, 5 * MIN) == T0 + 5 * MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    /* Healed after 10 minutes: agrees, the step was never taken. */
    CHECK(at(T0 + 11 * MIN, 11 * MIN) == T0 + 11 * MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_AGREES);

    reset();
    at(T0 - 40 * MIN + MIN, MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP);
    int64_t taken = MIN + KYUFU_STEADY_CLOCK_BACK_ACCEPT_MS;
    CHECK(at(T0 - 40 * MIN + taken - S, taken - S) == T0 + taken - S);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    CHECK(at(T0 - 40 * MIN + taken, taken) == T0 - 40 * MIN + taken);
    CHECK(ev == KYUFU_STEADY_CLOCK_ACCEPTED && c.step_ms == 0);
    /* From then on the clock follows the corrected wall clock. */
    CHECK(at(T0 - 40 * MIN + taken + MIN, taken + MIN) ==
          T0 - 40 * MIN + taken + MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    /* The bound: a session stamped before the step back lives at most
     * the step longer; during the first 15 minutes, not at all. */
    CHECK(c.steps == 1);
}

/* A step forward then back past the truth: each told; the time held at
 * the monotonic pace throughout. */
static void both(void)
{
    reset();
    CHECK(at(T0 + 3 * HOUR + S, S) == T0 + S);
    CHECK(at(T0 - 3 * HOUR + 2 * S, 2 * S) == T0 + 2 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.steps == 2);
    CHECK(at(T0 + 3 * S, 3 * S) == T0 + 3 * S);
    CHECK(ev == KYUFU_STEADY_CLOCK_AGREES);
}

/* A node that started on a clock 40 minutes slow (it anchored on it: no
 * other time at start), then corrected forward by NTP: the leader's clock
 * agrees with the corrected wall clock, so the step is taken at once
 * instead of at the next restart.  A step that only this node saw (the
 * leader's clock agrees with the held time, or with neither) stays
 * ignored, and nothing happens without a step. */
static void corroborated(void)
{
    int64_t slow = 40 * MIN; /* the truth is T0 + slow at start */
    reset();
    CHECK(!kyufu_steady_clock_corroborate(&c, T0 + MIN, M0 + MIN,
                                          T0 + slow + MIN));
    at(T0 + MIN, MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
    /* NTP steps it to the truth: ignored by the reading alone. */
    CHECK(at(T0 + slow + 2 * MIN, 2 * MIN) == T0 + 2 * MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.step_ms == slow);
    /* The leader's clock disagrees with the wall clock (by 6 s, past the
     * tolerance): nothing taken. */
    CHECK(!kyufu_steady_clock_corroborate(&c, T0 + slow + 2 * MIN,
                                          M0 + 2 * MIN,
                                          T0 + slow + 2 * MIN - 6 * S));
    CHECK(c.step_ms == slow);
    /* It agrees (3 s behind the wall, a stamp a moment old): taken. */
    CHECK(kyufu_steady_clock_corroborate(&c, T0 + slow + 2 * MIN,
                                         M0 + 2 * MIN,
                                         T0 + slow + 2 * MIN - 3 * S));
    CHECK(c.step_ms == 0);
    CHECK(at(T0 + slow + 3 * MIN, 3 * MIN) == T0 + slow + 3 * MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);

    /* A jump of this node's clock alone (+6 h): the leader's clock agrees
     * with the held time, so the step stays ignored. */
    reset();
    at(T0 + 6 * HOUR + MIN, MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP);
    CHECK(!kyufu_steady_clock_corroborate(&c, T0 + 6 * HOUR + MIN, M0 + MIN,
                                          T0 + MIN + S));
    CHECK(c.step_ms == 6 * HOUR);
    CHECK(at(T0 + 6 * HOUR + 2 * MIN, 2 * MIN) == T0 + 2 * MIN);
    /* A leader whose clock agrees with neither (+3 h): still ignored. */
    CHECK(!kyufu_steady_clock_corroborate(&c, T0 + 6 * HOUR + 2 * MIN,
                                          M0 + 2 * MIN,
                                          T0 + 3 * HOUR + 2 * MIN));
    CHECK(c.step_ms == 6 * HOUR);
    /* A step back agreed by the leader is taken at once too (no 15
     * minutes' wait). */
    reset();
    at(T0 - 20 * MIN + MIN, MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_STEP && c.step_ms == -20 * MIN);
    CHECK(kyufu_steady_clock_corroborate(&c, T0 - 20 * MIN + MIN, M0 + MIN,
                                         T0 - 20 * MIN + MIN));
    CHECK(at(T0 - 20 * MIN + 2 * MIN, 2 * MIN) == T0 - 20 * MIN + 2 * MIN);
    CHECK(ev == KYUFU_STEADY_CLOCK_SAME);
}

int main(void)
{
    follows();
    forward();
    restep();
    back();
    both();
    corroborated();
    return count_check_end("steady-clock");
}
