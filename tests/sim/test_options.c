/* raft-glue's option checks (kyufu_glue_check_options), the one function
 * kyufu_glue_init and kyufud's config validation both apply:
 *
 *  - 0 fields take glue_limits.h's defaults, and the defaults pass;
 *  - every option at its minimum at once, and at its maximum at once, pass;
 *    one below its minimum or above its maximum fails naming that option;
 *  - heartbeat at most a third of the election timeout, trailing below
 *    threshold and the proposer's window within raft's hold at their edge and fail one past it, naming the option at
 *    fault and the one it was compared with;
 *  - kyufu_glue_init refuses what the check refuses, naming the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "glue.h"
#include "glue_limits.h"
#include "storage.h"

static unsigned *field(struct kyufu_glue_config *c, enum kyufu_glue_option o)
{
    switch (o) {
#define FIELD(NAME, f)                                                        \
    case KYUFU_GLUE_OPTION_##NAME:                                            \
        return &c->f;
        KYUFU_GLUE_OPTIONS(FIELD)
#undef FIELD
    default:
        CHECK(0);
        return NULL;
    }
}

static void all_at(struct kyufu_glue_config *c, int which /* -1 min, 1 max */)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < KYUFU_GLUE_OPTION_COUNT; i++) {
        const struct kyufu_glue_option_bounds *b =
            kyufu_glue_option_bounds((enum kyufu_glue_option)i);
        *field(c, (enum kyufu_glue_option)i) = which < 0 ? b->min : b->max;
    }
}

static int check(struct kyufu_glue_config *c, enum kyufu_glue_option *bad,
                 enum kyufu_glue_option *other, char *why, size_t len)
{
    *bad = *other = (enum kyufu_glue_option)-1;
    why[0] = '\0';
    return kyufu_glue_check_options(c, bad, other, why, len);
}

int main(void)
{
    struct kyufu_glue_config c;
    enum kyufu_glue_option bad, other;
    char why[200];

    /* Defaults. */
    memset(&c, 0, sizeof c);
    CHECK(check(&c, &bad, &other, why, sizeof why) == 0);
    CHECK(c.election_timeout_ms == KYUFU_ELECTION_TIMEOUT_MS_DEFAULT);
    CHECK(c.heartbeat_timeout_ms == KYUFU_HEARTBEAT_TIMEOUT_MS_DEFAULT);
    CHECK(c.snapshot_threshold_entries ==
          KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_DEFAULT);
    CHECK(c.snapshot_trailing_entries ==
          KYUFU_SNAPSHOT_TRAILING_ENTRIES_DEFAULT);
    CHECK(c.max_inflight_entries == KYUFU_MAX_INFLIGHT_ENTRIES_DEFAULT);
    CHECK(c.group_commit_commands_max ==
          KYUFU_GROUP_COMMIT_COMMANDS_MAX_DEFAULT);
    CHECK(c.group_commit_entries_inflight ==
          KYUFU_GROUP_COMMIT_ENTRIES_INFLIGHT_DEFAULT);
    CHECK(strcmp(kyufu_glue_option_bounds(
                     KYUFU_GLUE_OPTION_ELECTION_TIMEOUT_MS)->field,
                 "election_timeout_ms") == 0);

    /* Bounds, all at once, and one past each. */
    for (int which = -1; which <= 1; which += 2) {
        all_at(&c, which);
        CHECK(check(&c, &bad, &other, why, sizeof why) == 0);
        for (int i = 0; i < KYUFU_GLUE_OPTION_COUNT; i++) {
            enum kyufu_glue_option o = (enum kyufu_glue_option)i;
            const struct kyufu_glue_option_bounds *b =
                kyufu_glue_option_bounds(o);
            if (which < 0 && b->min == 1) {
                continue; /* 0 is "the default", not below the minimum */
            }
            all_at(&c, which);
            *field(&c, o) = which < 0 ? b->min - 1 : b->max + 1;
            CHECK(check(&c, &bad, &other, why, sizeof why) ==
                  KYUFU_GLUE_ECONFIG);
            CHECK(bad == o && other == KYUFU_GLUE_OPTION_COUNT);
            CHECK(strstr(why, "is outside") != NULL);
        }
    }

    /* Relations at their edge and one past it. */
    memset(&c, 0, sizeof c);
    c.election_timeout_ms = 300;
    c.heartbeat_timeout_ms = 100;
    c.snapshot_threshold_entries = 5;
    c.snapshot_trailing_entries = 4;
    CHECK(check(&c, &bad, &other, why, sizeof why) == 0);
    c.heartbeat_timeout_ms = 101;
    CHECK(check(&c, &bad, &other, why, sizeof why) == KYUFU_GLUE_ECONFIG);
    CHECK(bad == KYUFU_GLUE_OPTION_HEARTBEAT_TIMEOUT_MS);
    CHECK(other == KYUFU_GLUE_OPTION_ELECTION_TIMEOUT_MS);
    CHECK(strcmp(why, "101 ms is more than a third of the election timeout "
                      "(300 ms)") == 0);
    c.heartbeat_timeout_ms = 100;
    c.snapshot_trailing_entries = 5;
    CHECK(check(&c, &bad, &other, why, sizeof why) == KYUFU_GLUE_ECONFIG);
    CHECK(bad == KYUFU_GLUE_OPTION_SNAPSHOT_TRAILING_ENTRIES);
    CHECK(other == KYUFU_GLUE_OPTION_SNAPSHOT_THRESHOLD_ENTRIES);
    /* A default takes part: trailing's default is not below 1000. */
    c.snapshot_threshold_entries = 1000;
    c.snapshot_trailing_entries = 0;
    CHECK(check(&c, &bad, &other, why, sizeof why) == KYUFU_GLUE_ECONFIG);
    CHECK(c.snapshot_trailing_entries ==
          KYUFU_SNAPSHOT_TRAILING_ENTRIES_DEFAULT);
    CHECK(bad == KYUFU_GLUE_OPTION_SNAPSHOT_TRAILING_ENTRIES);
    /* The proposer's window is at most raft's window per follower. */
    memset(&c, 0, sizeof c);
    c.max_inflight_entries = 16;
    c.group_commit_entries_inflight = 16;
    CHECK(check(&c, &bad, &other, why, sizeof why) == 0);
    c.group_commit_entries_inflight = 17;
    CHECK(check(&c, &bad, &other, why, sizeof why) == KYUFU_GLUE_ECONFIG);
    CHECK(bad == KYUFU_GLUE_OPTION_GROUP_COMMIT_ENTRIES_INFLIGHT);
    CHECK(other == KYUFU_GLUE_OPTION_MAX_INFLIGHT_ENTRIES);
    CHECK(strcmp(why, "17 entries in flight is more than raft's window per "
                      "follower (16 entries)") == 0);
    /* Also against raft's default window (the window's maximum is it). */
    c.max_inflight_entries = 0;
    c.group_commit_entries_inflight = KYUFU_MAX_INFLIGHT_ENTRIES_DEFAULT;
    CHECK(check(&c, &bad, &other, why, sizeof why) == 0);
    c.snapshot_threshold_entries = 1000;
    c.snapshot_trailing_entries = 0;
    /* NULL out-parameters and no message buffer are allowed. */
    CHECK(kyufu_glue_check_options(&c, NULL, NULL, NULL, 0) ==
          KYUFU_GLUE_ECONFIG);

    /* kyufu_glue_init applies the same check (it fails before touching the
     * store or the directory, so neither needs to exist). */
    uv_loop_t loop;
    CHECK(uv_loop_init(&loop) == 0);
    memset(&c, 0, sizeof c);
    c.id = 1;
    c.address = "127.0.0.1:1";
    c.raft_dir = "/nonexistent";
    c.election_timeout_ms = 300;
    c.heartbeat_timeout_ms = 101;
    struct kyufu_glue *g = NULL;
    struct kyufu_storage *s = (struct kyufu_storage *)&loop; /* never used */
    CHECK(kyufu_glue_init(&loop, &c, s, &g, why, sizeof why) ==
          KYUFU_GLUE_ECONFIG);
    CHECK(g == NULL);
    CHECK(strcmp(why, "config: heartbeat_timeout_ms: 101 ms is more than a "
                      "third of the election timeout (300 ms)") == 0);
    CHECK(uv_loop_close(&loop) == 0);
    printf("options: ok\n");
    return 0;
}
