/* Crash evidence: contract and reasoning in crash_evidence.h. */
#include "crash_evidence.h"

#include <assert.h>
#include <stddef.h>

#include "glue_limits.h"

/* This server's rank among the voters other than `lost`, by id, and how
 * many there are; false when this server is not one of them. */
static bool rank_of(const struct raft *r, raft_id lost, unsigned *rank,
                    unsigned *n)
{
    bool voter = false;
    *rank = 0;
    *n = 0;
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role != RAFT_VOTER || s->id == lost) {
            continue;
        }
        (*n)++;
        if (s->id == r->id) {
            voter = true;
        } else if (s->id < r->id) {
            (*rank)++;
        }
    }
    return voter;
}

/* A follower without a leader, as raft leaves one that stepped down
 * (convert.c convertToFollower: id 0, address NULL; every reader of the
 * pair handles it: raft_leader, recvUpdateLeader, sendAppendEntriesResult
 * sends nothing). */
static void forget_leader(struct raft *r)
{
    r->follower_state.current_leader.id = 0;
    if (r->follower_state.current_leader.address != NULL) {
        raft_free(r->follower_state.current_leader.address);
        r->follower_state.current_leader.address = NULL;
    }
}

bool glue__crash_evidence_lost(struct glue_crash_evidence *c,
                               struct raft *r,
                               raft_id lost,
                               uint64_t now,
                               uint64_t *delay_ms)
{
    unsigned rank, n;
    if (!c->enabled || lost == 0 || raft_state(r) != RAFT_FOLLOWER ||
        r->follower_state.current_leader.id != lost) {
        return false;
    }
    if (c->armed && c->leader == lost) {
        return false; /* the other direction of the same crash */
    }
    if (!rank_of(r, lost, &rank, &n)) {
        return false; /* not a voter: it would not campaign anyway */
    }
    assert(rank < n);
    c->armed = true;
    c->leader = lost;
    c->timer_start = r->election_timer_start;
    c->n_ranks = n;
    c->attempt = 0;
    c->due_ms = now + (uint64_t)rank * KYUFU_CRASH_ELECTION_STEP_MS;
    c->n_armed++;
    forget_leader(r);
    if (delay_ms != NULL) {
        *delay_ms = c->due_ms - now;
    }
    return true;
}

bool glue__crash_evidence_expire(struct raft *r, uint64_t now)
{
    unsigned *timeout;
    switch (raft_state(r)) {
        case RAFT_FOLLOWER:
            timeout = &r->follower_state.randomized_election_timeout;
            break;
        case RAFT_CANDIDATE:
            timeout = &r->candidate_state.randomized_election_timeout;
            break;
        default:
            return false;
    }
    if (now < r->election_timer_start) {
        return false; /* raft's time runs ahead of ours: not in practice */
    }
    if (now - r->election_timer_start < *timeout) {
        *timeout = (unsigned)(now - r->election_timer_start);
    }
    assert(raft_timeout(r) <= now);
    return true;
}

bool glue__crash_evidence_poll(struct glue_crash_evidence *c,
                               struct raft *r,
                               uint64_t now)
{
    bool warranted;
    if (!c->armed || now < c->due_ms) {
        return false;
    }
    if (c->attempt == 0) {
        /* Still a follower that heard from no leader and granted no vote
         * since the evidence (raft resets the timer at both). */
        warranted = raft_state(r) == RAFT_FOLLOWER &&
                    r->election_timer_start == c->timer_start;
        if (!warranted) {
            c->n_cancelled++;
        }
    } else {
        /* Our pre-vote did not pass (a leader's AppendEntries or a real
         * vote would have made us a follower, a win a leader). */
        warranted = raft_state(r) == RAFT_CANDIDATE &&
                    r->candidate_state.in_pre_vote;
    }
    if (!warranted || !glue__crash_evidence_expire(r, now)) {
        c->armed = false;
        return false;
    }
    c->attempt++;
    c->n_attempts++;
    if (c->attempt >= KYUFU_CRASH_ELECTION_TRIES) {
        c->armed = false;
    } else {
        c->due_ms = now + (uint64_t)c->n_ranks * KYUFU_CRASH_ELECTION_STEP_MS;
    }
    return true;
}

bool glue__crash_evidence_silence(struct raft *r, uint64_t now)
{
    if (raft_state(r) != RAFT_FOLLOWER || r->follower_state.current_leader.id == 0 ||
        now < r->election_timer_start ||
        now - r->election_timer_start < r->election_timeout) {
        return false;
    }
    forget_leader(r);
    return true;
}
