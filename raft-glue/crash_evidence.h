/* Crash evidence: a follower whose Raft connection with its current leader
 * closes from the TCP side starts its election at once, instead of after
 * the randomized election timeout (issue 9; docs/failover.md, "Crash
 * evidence"; docs/raft.md).
 *
 * The evidence: an open Raft stream with the leader ended with EOF or a
 * reset and no TLS close_notify before it, or a connect to the leader was
 * refused (peer_link.c calls the transport's `lost`).  A process that dies
 * (kill -9, a crash) has its sockets closed by the kernel at once; a
 * leader that stops on purpose hands leadership over first and closes its
 * links with close_notify (peer_link.c drain), which is not evidence.
 *
 * Why it is safe: only liveness depends on timing in Raft, never safety,
 * and pre-vote must be on (the glue arms nothing otherwise).  A follower
 * acting on false evidence (a link that flapped while the leader is
 * healthy) becomes a pre-vote candidate; in libraft 0.22.1 every other
 * server that still has a leader rejects its pre-vote
 * (recv_request_vote.c: "local server has a leader -> reject"), the leader
 * itself too ("local server is leader -> reject"), so no term moves, and
 * the leader's next AppendEntries in the same term makes it a follower
 * again (recv_append_entries.c).
 *
 * The mechanism: libraft 0.22.1 has no "start an election now" call.  A
 * follower converts to candidate when a RAFT_TIMEOUT event (raft_uv's tick,
 * every heartbeat_timeout ms) finds `r->now >= r->election_timer_start +
 * r->follower_state.randomized_election_timeout` (timeout.c
 * timeoutFollower; raft_timeout() reports the same sum).  We shorten this
 * term's `r->follower_state.randomized_election_timeout` (public in struct
 * raft, raft.h "Timer expiration") to the time elapsed since
 * `election_timer_start`, so that the sum is now, and deliver a tick (the
 * glue's poll calls io_guard's tick): raft then runs its own checks and
 * its own conversion (not a voter, installing a snapshot, entries not yet
 * persisted: it stays a follower and resets the timer, as at any
 * timeout).  raft draws the field anew at every reset of the timer
 * (election.c electionResetTimer → electionUpdateRandomizedTimeout, at
 * every AppendEntries, vote granted or conversion), so the next leader
 * contact undoes ours, and nothing else reads it.  (Moving
 * `election_timer_start` back instead would need the loop clock to be
 * larger than the timeout, which libraft's fixture, starting at 0, is
 * not.)  A candidate still in its pre-vote is retried the same way through
 * `candidate_state.randomized_election_timeout` (the same offset: election.c
 * struct followerOrCandidateState).
 *
 * Who goes first: the surviving voters are ranked by id and attempt at
 * rank × KYUFU_CRASH_ELECTION_STEP_MS, then again every n × step (n
 * survivors), KYUFU_CRASH_ELECTION_TRIES attempts in all.  With pre-vote a
 * candidate whose pre-vote is rejected (the others still had the leader)
 * is left leaderless and grants the next one's pre-vote and vote; two
 * candidates starting within one message round trip of each other would
 * both pass pre-vote and split the real vote, costing a randomized
 * timeout.  A random 0..50 ms delay does that with probability ~2 × round
 * trip / 50 ms; ranks step apart by more than a round trip.  The retries
 * cover a survivor whose log is behind (its pre-vote is denied: the other
 * one, then leaderless, wins on its next attempt).
 *
 * Everything here runs on the loop thread, outside raft's own calls. */
#ifndef KYUFU_GLUE_CRASH_EVIDENCE_H
#define KYUFU_GLUE_CRASH_EVIDENCE_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

struct glue_crash_evidence
{
    bool enabled;          /* pre-vote on and not switched off */
    bool armed;            /* an attempt is due at due_ms */
    raft_id leader;        /* whose connection closed */
    raft_time timer_start; /* r->election_timer_start when armed */
    uint64_t armed_ms;     /* loop time of the evidence */
    uint64_t due_ms;       /* loop time of the next attempt */
    unsigned attempt;      /* attempts made */
    unsigned rank;         /* this server among the surviving voters */
    unsigned n_ranks;      /* surviving voters */
    unsigned long n_armed;     /* evidence acted on */
    unsigned long n_attempts;  /* elections (or pre-votes) started early */
    unsigned long n_cancelled; /* the leader spoke again before the first */
};

/* The Raft connection with peer `lost` closed at loop time `now`.  Arms
 * when c is enabled, r a voting follower whose current leader is `lost`,
 * and nothing is armed for that leader yet.  Returns whether it armed;
 * *delay_ms (may be NULL) is then the wait before the first attempt. */
bool glue__crash_evidence_lost(struct glue_crash_evidence *c,
                               const struct raft *r,
                               raft_id lost,
                               uint64_t now,
                               uint64_t *delay_ms);

/* At loop time `now` (the glue's poll): when an attempt is due and still
 * warranted, moves r's election timer so that it has expired at `now` and
 * returns true: the caller must then deliver raft a tick.  The first
 * attempt is warranted while r is a follower of the same leader that has
 * not heard from it since (election_timer_start unchanged), a retry while
 * r is a candidate still in pre-vote; otherwise c disarms. */
bool glue__crash_evidence_poll(struct glue_crash_evidence *c,
                               struct raft *r,
                               uint64_t now);

/* Make r's election timer (follower or candidate) expire by `now`: its
 * randomized timeout becomes the time elapsed since election_timer_start
 * (unchanged when longer: already expired).  False (and nothing changed)
 * in another state or when now is before the timer's start. */
bool glue__crash_evidence_expire(struct raft *r, uint64_t now);

#endif /* KYUFU_GLUE_CRASH_EVIDENCE_H */
