/* A wall clock that steps do not move (issue 13; docs/chaos.md "Clock
 * steps and sessions").
 *
 * For the times that decide whether state is destroyed or a user is
 * refused: session idle and absolute expiry (on the leader's sweep and on
 * each node's check of a call), the stamps the leader puts on the session
 * commands it proposes, lockout windows, TOTP steps.  It follows the wall
 * clock while the wall clock keeps pace with the monotonic clock (within
 * KYUFU_STEADY_CLOCK_TOLERANCE_MS: NTP's slew, scheduling); a step beyond
 * that is ignored, and the time runs on from the last agreeing reading at
 * the monotonic clock's pace:
 *   - forward: until the wall clock comes back (within the tolerance) to
 *     where the held time is, or kyufud restarts;
 *   - back: the same, but for at most KYUFU_STEADY_CLOCK_BACK_ACCEPT_MS,
 *     after which the wall clock is taken as it is (an operator who sets a
 *     clock that ran ahead back by hand);
 *   - either way, at once when the leader's clock agrees with the wall
 *     clock and not with the held time (kyufu_steady_clock_corroborate).
 * Accepting a step back never expires anything; it keeps sessions alive
 * for longer by at most the step.
 * Pure: the caller passes both readings (node/clock_node.c reads them:
 * CLOCK_REALTIME and, as "monotonic", CLOCK_BOOTTIME, which also counts a
 * suspend), so the unit test injects any sequence. */
#ifndef KYUFU_NODE_STEADY_CLOCK_H
#define KYUFU_NODE_STEADY_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define KYUFU_STEADY_CLOCK_TOLERANCE_MS INT64_C(5000)
#define KYUFU_STEADY_CLOCK_BACK_ACCEPT_MS (INT64_C(15) * 60 * 1000)

struct kyufu_steady_clock
{
    bool anchored;
    int64_t anchor_wall_ms; /* the wall clock at the last agreeing reading */
    int64_t anchor_mono_ms; /* the monotonic clock then */
    int64_t step_ms;        /* wall minus held time while a step is ignored; 0 */
    int64_t step_since_ms;  /* monotonic time the step was first seen */
    uint64_t steps;         /* steps seen since start */
};

enum kyufu_steady_clock_event
{
    KYUFU_STEADY_CLOCK_SAME,     /* nothing new */
    KYUFU_STEADY_CLOCK_STEP,     /* a new step, now ignored (step_ms) */
    KYUFU_STEADY_CLOCK_AGREES,   /* the wall clock came back: followed again */
    KYUFU_STEADY_CLOCK_ACCEPTED, /* a step back held long enough: taken */
};

/* The time to decide by, from one reading of each clock (milliseconds);
 * *event says what changed (for the log and the metrics). */
int64_t kyufu_steady_clock_read(struct kyufu_steady_clock *c,
                                int64_t wall_ms,
                                int64_t mono_ms,
                                enum kyufu_steady_clock_event *event);

/* Another node's word on the time, while a step is ignored: other_ms is
 * the time now on the clock of the term's leader (its newest stamp applied
 * here, advanced by this node's monotonic time since).  If the wall clock
 * agrees with it (within the tolerance) and the held time does not, the
 * step is taken at once and the clock follows the wall clock again: a
 * node that started on a wrong clock which NTP then corrected (the held
 * time was the wrong one) no longer waits for a restart.  A step that
 * only this node saw (the leader's clock disagrees with it) stays
 * ignored.  Call right after kyufu_steady_clock_read with the same
 * readings; returns whether the step was taken. */
bool kyufu_steady_clock_corroborate(struct kyufu_steady_clock *c,
                                    int64_t wall_ms,
                                    int64_t mono_ms,
                                    int64_t other_ms);

#endif /* KYUFU_NODE_STEADY_CLOCK_H */
