/* Membership: kyufu_glue_add / kyufu_glue_remove / kyufu_glue_members
 * (glue.h; the operator's side in docs/operations.md "Replacing a node").
 * Split from glue.c, whose state it shares through glue_internal.h. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue_internal.h"
#include "member_address.h"

/* --------------------------------------------------------------- change
 *
 * A join (kyufu_glue_add) walks SPARE -> STANDBY -> caught up -> VOTER; the
 * step says which raft request is out or that the poll timer watches the
 * standby's match index (CHANGE_CATCH_UP).  A standby never counts in the
 * quorum, so a join that stalls or dies costs the cluster nothing. */

enum change_step {
    CHANGE_ADD,      /* raft_add (as RAFT_SPARE) out */
    CHANGE_STANDBY,  /* raft_assign(RAFT_STANDBY) out */
    CHANGE_CATCH_UP, /* the poll timer watches the match index */
    CHANGE_PROMOTE,  /* raft_assign(RAFT_VOTER) out (libraft's round) */
    CHANGE_PROBE,    /* removal: raft_barrier out (who acknowledges it) */
    CHANGE_PROBED,   /* removal: the poll timer counts who has the barrier */
    CHANGE_REMOVE    /* raft_remove out */
};

const char *kyufu_glue_role_name(enum kyufu_glue_role role)
{
    switch (role) {
        case KYUFU_GLUE_ROLE_VOTER:
            return "voter";
        case KYUFU_GLUE_ROLE_STANDBY:
            return "standby";
        case KYUFU_GLUE_ROLE_SPARE:
            return "spare";
    }
    return "unknown";
}

static enum kyufu_glue_role role_of(int raft_role)
{
    switch (raft_role) {
        case RAFT_VOTER:
            return KYUFU_GLUE_ROLE_VOTER;
        case RAFT_STANDBY:
            return KYUFU_GLUE_ROLE_STANDBY;
        default:
            assert(raft_role == RAFT_SPARE);
            return KYUFU_GLUE_ROLE_SPARE;
    }
}

/* The member with this id in raft's latest configuration, or NULL. */
static const struct raft_server *member(const struct kyufu_glue *g,
                                        uint64_t id)
{
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id == id) {
            return &c->servers[i];
        }
    }
    return NULL;
}

static unsigned voters(const struct kyufu_glue *g)
{
    const struct raft_configuration *c = &g->raft.configuration;
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++) {
        n += c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

static bool same_raft_address(const char *recorded_a, const char *recorded_b)
{
    size_t a = glue__address_raft_len(recorded_a);
    size_t b = glue__address_raft_len(recorded_b);
    return a == b && memcmp(recorded_a, recorded_b, a) == 0;
}

size_t kyufu_glue_members(struct kyufu_glue *g,
                          struct kyufu_glue_member *out,
                          size_t max)
{
    const struct raft_configuration *c = &g->raft.configuration;
    bool leader = kyufu_glue_is_leader(g);
    for (unsigned i = 0; i < c->n && i < max; i++) {
        const struct raft_server *sv = &c->servers[i];
        struct kyufu_glue_member *m = &out[i];
        raft_index match = 0;
        memset(m, 0, sizeof *m);
        m->id = sv->id;
        m->role = role_of(sv->role);
        glue__address_split(sv->address, m->raft_address,
                            sizeof m->raft_address, m->api_address,
                            sizeof m->api_address);
        if (leader) {
            if (sv->id == g->config.id) {
                match = raft_last_index(&g->raft);
            } else if (raft_match_index(&g->raft, sv->id, &match) != 0) {
                match = 0;
            }
        }
        m->match_index = match;
    }
    return c->n;
}

void glue__change_done(struct kyufu_glue *g, int status)
{
    struct kyufu_glue_change *req = g->change;
    assert(req != NULL);
    assert(!g->change_raft_pending);
    g->change = NULL;
    req->impl = NULL;
    req->cb(req, status);
}

static void change_cb(struct raft_change *c, int status);

/* Hand one request of the join or removal to raft.  0, or a KYUFU_GLUE_E*
 * code (fatal unless refused cleanly: past its checks raft_assign keeps our
 * request even when it fails). */
static int change_submit(struct kyufu_glue *g, enum change_step step)
{
    int rv;
    memset(&g->change_raft, 0, sizeof g->change_raft);
    g->change_raft.data = g;
    g->change_step = (int)step;
    switch (step) {
        case CHANGE_STANDBY:
            rv = raft_assign(&g->raft, &g->change_raft, (raft_id)g->change_id,
                             RAFT_STANDBY, change_cb);
            break;
        case CHANGE_PROMOTE:
            g->change_attempts++;
            rv = raft_assign(&g->raft, &g->change_raft, (raft_id)g->change_id,
                             RAFT_VOTER, change_cb);
            break;
        case CHANGE_REMOVE:
            rv = raft_remove(&g->raft, &g->change_raft, (raft_id)g->change_id,
                             change_cb);
            break;
        default:
            assert(false);
            return KYUFU_GLUE_EINVALID;
    }
    if (rv != 0) {
        return glue__raft_call_failed(g, step == CHANGE_REMOVE ? "raft_remove"
                                                         : "raft_assign",
                                rv);
    }
    g->change_raft_pending = true;
    return 0;
}

static void change_cb(struct raft_change *c, int status)
{
    struct kyufu_glue *g = c->data;
    int rv;
    assert(g->change != NULL && g->change_raft_pending);
    g->change_raft_pending = false;
    if (g->closing) {
        glue__change_done(g, status == 0 ? 0 : KYUFU_GLUE_ESHUTDOWN);
        return;
    }
    if (status == RAFT_NOCONNECTION && g->change_step == CHANGE_PROMOTE) {
        /* libraft's catch-up round failed (the standby fell behind or
         * stopped answering): it is still a standby; watch it again until
         * the join's deadline. */
        g->change_step = CHANGE_CATCH_UP;
        return;
    }
    if (status != 0) {
        rv = glue__raft_to_glue(status);
        glue__change_done(g, rv == KYUFU_GLUE_ENOTLEADER ? KYUFU_GLUE_ELEADERSHIPLOST
                                                  : rv);
        return;
    }
    switch (g->change_step) {
        case CHANGE_ADD:
            rv = change_submit(g, CHANGE_STANDBY);
            if (rv != 0) {
                glue__change_done(g, rv);
            }
            return;
        case CHANGE_STANDBY:
            g->change_step = CHANGE_CATCH_UP; /* change_poll takes over */
            return;
        default:
            assert(g->change_step == CHANGE_PROMOTE ||
                   g->change_step == CHANGE_REMOVE);
            glue__change_done(g, 0);
            return;
    }
}

/* From the poll timer: a standby being caught up is promoted once within
 * KYUFU_JOIN_LAG_ENTRIES_MAX of the last index; past the deadline the join
 * gives up and it stays a standby. */
static void probe_poll(struct kyufu_glue *g);

void glue__change_poll(struct kyufu_glue *g)
{
    raft_index match = 0;
    int rv;
    if (g->change_step == CHANGE_PROBED && !g->change_raft_pending) {
        probe_poll(g);
        return;
    }
    if (g->change_step != CHANGE_CATCH_UP || g->change_raft_pending) {
        return;
    }
    if (raft_state(&g->raft) != RAFT_LEADER) {
        glue__change_done(g, KYUFU_GLUE_ELEADERSHIPLOST);
        return;
    }
    if (raft_match_index(&g->raft, (raft_id)g->change_id, &match) != 0) {
        glue__change_done(g, KYUFU_GLUE_ENOTFOUND); /* removed meanwhile */
        return;
    }
    if (match + KYUFU_JOIN_LAG_ENTRIES_MAX >= raft_last_index(&g->raft) &&
        g->change_attempts < KYUFU_CHANGE_ATTEMPTS_MAX) {
        rv = change_submit(g, CHANGE_PROMOTE);
        if (rv != 0) {
            glue__change_done(g, rv);
        }
        return;
    }
    if (uv_now(g->loop) >= g->change_deadline) {
        glue__change_done(g, KYUFU_GLUE_ENOTCAUGHTUP);
    }
}

static int change_check(struct kyufu_glue *g)
{
    int rv = glue__leader_ready(g);
    if (rv != 0) {
        return rv;
    }
    if (g->change != NULL) {
        return KYUFU_GLUE_EBUSY;
    }
    return 0;
}

int kyufu_glue_add(struct kyufu_glue *g,
                   struct kyufu_glue_change *req,
                   const struct kyufu_glue_peer *peer,
                   unsigned catch_up_ms,
                   kyufu_glue_change_cb cb)
{
    char recorded[2 * KYUFU_GLUE_MEMBER_ADDRESS_BYTES + 2];
    const struct raft_configuration *conf = &g->raft.configuration;
    const struct raft_server *sv;
    int rv = change_check(g);
    if (rv != 0) {
        return rv;
    }
    if (peer == NULL || peer->id == 0 || !kyufu_glue_address_ok(peer->address) ||
        (peer->api_address != NULL &&
         !kyufu_glue_address_ok(peer->api_address)) ||
        strlen(peer->address) >= KYUFU_GLUE_MEMBER_ADDRESS_BYTES ||
        (peer->api_address != NULL &&
         strlen(peer->api_address) >= KYUFU_GLUE_MEMBER_ADDRESS_BYTES)) {
        return KYUFU_GLUE_EINVALID;
    }
    if (catch_up_ms == 0) {
        catch_up_ms = KYUFU_JOIN_CATCH_UP_MS_DEFAULT;
    }
    if (catch_up_ms < KYUFU_JOIN_CATCH_UP_MS_MIN ||
        catch_up_ms > KYUFU_JOIN_CATCH_UP_MS_MAX) {
        return KYUFU_GLUE_EINVALID;
    }
    snprintf(recorded, sizeof recorded, "%s%s%s", peer->address,
             peer->api_address != NULL ? " " : "",
             peer->api_address != NULL ? peer->api_address : "");
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != peer->id &&
            same_raft_address(conf->servers[i].address, recorded)) {
            return KYUFU_GLUE_EEXISTS; /* another member dials there */
        }
    }
    sv = member(g, peer->id);
    if (sv != NULL && (sv->role == RAFT_VOTER ||
                       !same_raft_address(sv->address, recorded))) {
        return KYUFU_GLUE_EEXISTS;
    }
    g->change_id = peer->id;
    g->change_attempts = 0;
    g->change_deadline = uv_now(g->loop) + catch_up_ms;
    if (sv == NULL) {
        memset(&g->change_raft, 0, sizeof g->change_raft);
        g->change_raft.data = g;
        g->change_step = CHANGE_ADD;
        rv = raft_add(&g->raft, &g->change_raft, peer->id, recorded,
                      change_cb);
        if (rv != 0) {
            return glue__raft_call_failed(g, "raft_add", rv);
        }
        g->change_raft_pending = true;
    } else if (sv->role == RAFT_SPARE) {
        rv = change_submit(g, CHANGE_STANDBY); /* resumed */
        if (rv != 0) {
            return rv;
        }
    } else {
        assert(sv->role == RAFT_STANDBY);
        g->change_step = CHANGE_CATCH_UP; /* resumed: change_poll decides */
    }
    req->cb = cb;
    req->impl = g;
    g->change = req;
    return 0;
}

/* A removal must leave voters that can commit: the voters that remain
 * (this leader among them) and have acknowledged the probe barrier must be
 * a majority of the remaining voters.  On an idle cluster a dead voter's
 * match index equals the last index, so the probe appends an entry first
 * and counts who has it; a live but slow voter gets until the deadline. */
static void probe_poll(struct kyufu_glue *g)
{
    const struct raft_configuration *c = &g->raft.configuration;
    unsigned remaining = 0, answering = 0;
    int rv;
    assert(g->change_step == CHANGE_PROBED);
    if (raft_state(&g->raft) != RAFT_LEADER) {
        glue__change_done(g, KYUFU_GLUE_ELEADERSHIPLOST);
        return;
    }
    for (unsigned i = 0; i < c->n; i++) {
        const struct raft_server *sv = &c->servers[i];
        raft_index match = 0;
        if (sv->role != RAFT_VOTER || sv->id == g->change_id) {
            continue;
        }
        remaining++;
        if (sv->id == g->config.id) {
            answering++;
        } else if (raft_match_index(&g->raft, sv->id, &match) == 0 &&
                   match >= g->change_probe_index) {
            answering++;
        }
    }
    assert(remaining >= KYUFU_VOTERS_MIN && answering >= 1);
    if (2 * answering > remaining) {
        rv = change_submit(g, CHANGE_REMOVE);
        if (rv != 0) {
            glue__change_done(g, rv);
        }
        return;
    }
    if (uv_now(g->loop) >= g->change_deadline) {
        glue__change_done(g, KYUFU_GLUE_EUNREACHABLE);
    }
}

static void probe_cb(struct raft_barrier *b, int status)
{
    struct kyufu_glue *g = b->data;
    assert(g->change != NULL && g->change_raft_pending &&
           g->change_step == CHANGE_PROBE);
    g->change_raft_pending = false;
    if (g->closing) {
        glue__change_done(g, KYUFU_GLUE_ESHUTDOWN);
        return;
    }
    if (status != 0) {
        int rv = glue__raft_to_glue(status);
        glue__change_done(g, rv == KYUFU_GLUE_ENOTLEADER ? KYUFU_GLUE_ELEADERSHIPLOST
                                                  : rv);
        return;
    }
    /* Committed: a quorum of the current voters has it.  The index is at
     * most the last one now; the members that have it are answering. */
    g->change_step = CHANGE_PROBED;
    g->change_deadline = uv_now(g->loop) + g->config.election_timeout_ms;
    probe_poll(g);
}

int kyufu_glue_remove(struct kyufu_glue *g,
                      struct kyufu_glue_change *req,
                      uint64_t id,
                      kyufu_glue_change_cb cb)
{
    const struct raft_server *sv;
    int rv = change_check(g);
    if (rv != 0) {
        return rv;
    }
    sv = member(g, id);
    if (id == 0 || sv == NULL) {
        return KYUFU_GLUE_ENOTFOUND;
    }
    if (id == g->config.id) {
        return KYUFU_GLUE_EINVALID; /* the leader: transfer first */
    }
    if (sv->role == RAFT_VOTER && voters(g) - 1 < KYUFU_VOTERS_MIN) {
        return KYUFU_GLUE_EQUORUM;
    }
    g->change_id = id;
    g->change_attempts = 0;
    if (sv->role == RAFT_VOTER) {
        memset(&g->change_barrier, 0, sizeof g->change_barrier);
        g->change_barrier.data = g;
        g->change_step = CHANGE_PROBE;
        /* The probe's entry is the next one appended. */
        g->change_probe_index = raft_last_index(&g->raft) + 1;
        rv = raft_barrier(&g->raft, &g->change_barrier, probe_cb);
        if (rv != 0) {
            return glue__raft_call_failed(g, "raft_barrier", rv);
        }
        g->change_raft_pending = true;
    } else {
        rv = change_submit(g, CHANGE_REMOVE); /* a standby or spare */
        if (rv != 0) {
            return rv;
        }
    }
    req->cb = cb;
    req->impl = g;
    g->change = req;
    return 0;
}

