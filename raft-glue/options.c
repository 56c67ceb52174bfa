/* The tunable options of struct kyufu_glue_config: defaults, bounds and the
 * rules between them (contract in glue.h, values in glue_limits.h).  One
 * implementation serves kyufu_glue_init and kyufud's config validation, so
 * the two can never disagree.  No raft.h here: node/ calls it too. */
#include <assert.h>
#include <stdio.h>

#include "glue.h"
#include "glue_limits.h"

static const struct kyufu_glue_option_bounds bounds[KYUFU_GLUE_OPTION_COUNT] = {
#define KYUFU_GLUE__OPTION_ROW(NAME, field)                                  \
    [KYUFU_GLUE_OPTION_##NAME] = {#field, KYUFU_##NAME##_DEFAULT,            \
                                  KYUFU_##NAME##_MIN, KYUFU_##NAME##_MAX},
    KYUFU_GLUE_OPTIONS(KYUFU_GLUE__OPTION_ROW)
#undef KYUFU_GLUE__OPTION_ROW
};

const struct kyufu_glue_option_bounds *kyufu_glue_option_bounds(
    enum kyufu_glue_option o)
{
    assert((unsigned)o < KYUFU_GLUE_OPTION_COUNT);
    const struct kyufu_glue_option_bounds *b = &bounds[o];
    assert(b->min <= b->def && b->def <= b->max);
    return b;
}

static unsigned *field_of(struct kyufu_glue_config *c,
                          enum kyufu_glue_option o)
{
    switch (o) {
#define KYUFU_GLUE__OPTION_FIELD(NAME, field)                                \
    case KYUFU_GLUE_OPTION_##NAME:                                           \
        return &c->field;
        KYUFU_GLUE_OPTIONS(KYUFU_GLUE__OPTION_FIELD)
#undef KYUFU_GLUE__OPTION_FIELD
    case KYUFU_GLUE_OPTION_COUNT:
    default:
        break;
    }
    assert(0);
    return NULL;
}

static int fail(enum kyufu_glue_option bad_opt,
                enum kyufu_glue_option other_opt,
                enum kyufu_glue_option *bad,
                enum kyufu_glue_option *other)
{
    if (bad != NULL) {
        *bad = bad_opt;
    }
    if (other != NULL) {
        *other = other_opt;
    }
    return KYUFU_GLUE_ECONFIG;
}

int kyufu_glue_check_options(struct kyufu_glue_config *c,
                             enum kyufu_glue_option *bad,
                             enum kyufu_glue_option *other,
                             char *errmsg,
                             size_t errmsg_len)
{
    assert(c != NULL);
    assert(errmsg != NULL || errmsg_len == 0);
    for (int i = 0; i < KYUFU_GLUE_OPTION_COUNT; i++) {
        enum kyufu_glue_option o = (enum kyufu_glue_option)i;
        const struct kyufu_glue_option_bounds *b = kyufu_glue_option_bounds(o);
        unsigned *v = field_of(c, o);
        if (*v == 0) {
            *v = b->def;
        }
        if (*v < b->min || *v > b->max) {
            if (errmsg_len > 0) {
                snprintf(errmsg, errmsg_len, "%u is outside %u..%u", *v,
                         b->min, b->max);
            }
            return fail(o, KYUFU_GLUE_OPTION_COUNT, bad, other);
        }
    }
    /* Bounded above, so the products below cannot wrap. */
    _Static_assert(KYUFU_HEARTBEAT_TIMEOUT_MS_MAX < 0x10000000u,
                   "heartbeat * 3 fits an unsigned");
    if (c->heartbeat_timeout_ms * 3u > c->election_timeout_ms) {
        if (errmsg_len > 0) {
            snprintf(errmsg, errmsg_len,
                     "%u ms is more than a third of the election timeout "
                     "(%u ms)",
                     c->heartbeat_timeout_ms, c->election_timeout_ms);
        }
        return fail(KYUFU_GLUE_OPTION_HEARTBEAT_TIMEOUT_MS,
                    KYUFU_GLUE_OPTION_ELECTION_TIMEOUT_MS, bad, other);
    }
    if (c->snapshot_trailing_entries >= c->snapshot_threshold_entries) {
        if (errmsg_len > 0) {
            snprintf(errmsg, errmsg_len,
                     "%u entries kept after a snapshot is not below the "
                     "snapshot threshold (%u entries)",
                     c->snapshot_trailing_entries,
                     c->snapshot_threshold_entries);
        }
        return fail(KYUFU_GLUE_OPTION_SNAPSHOT_TRAILING_ENTRIES,
                    KYUFU_GLUE_OPTION_SNAPSHOT_THRESHOLD_ENTRIES, bad, other);
    }
    if (c->group_commit_entries_inflight > c->max_inflight_entries) {
        if (errmsg_len > 0) {
            snprintf(errmsg, errmsg_len,
                     "%u entries in flight is more than raft's window per "
                     "follower (%u entries)",
                     c->group_commit_entries_inflight,
                     c->max_inflight_entries);
        }
        return fail(KYUFU_GLUE_OPTION_GROUP_COMMIT_ENTRIES_INFLIGHT,
                    KYUFU_GLUE_OPTION_MAX_INFLIGHT_ENTRIES, bad, other);
    }
    return 0;
}
