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
 * Who goes first: at the evidence every survivor forgets its leader (id
 * 0, address freed: the state raft leaves a leader that stepped down in,
 * convert.c convertToFollower), so it grants the pre-vote and vote of
 * another survivor whose log is as long (recv_request_vote.c rejects only
 * while a leader is known); the survivors, ranked by id among the voters,
 * attempt at rank × KYUFU_CRASH_ELECTION_STEP_MS, then again every n ×
 * step (n survivors) while their pre-vote has not passed,
 * KYUFU_CRASH_ELECTION_TRIES attempts in all.  So the first one normally
 * wins in one pre-vote and one vote round; a later one's attempt is
 * cancelled by the vote it granted (raft resets the timer then).  Two
 * candidates starting within one round trip of each other would both pass
 * pre-vote and split the real vote, costing a randomized timeout: random
 * 0..50 ms delays do that with probability ~2 × round trip / 50 ms (a
 * first version with ranks 40 ms apart and no forgetting split 1 vote in
 * 7 on this loaded VM, where a round trip took over 40 ms); the step is
 * longer than a loaded round trip plus the vote's sync.  The later attempts
 * cover a first-ranked survivor that is denied (its log is behind, or its
 * pre-vote reached a survivor that had not seen the evidence yet).
 *
 * A follower that forgot a healthy leader (its link flapped) hears it
 * again at the next heartbeat (recvUpdateLeader); until then it answers
 * no AppendEntries (nothing to send them to: the leader resends) and
 * grants pre-votes, which matters only if a majority lost the leader.
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
    uint64_t due_ms;       /* loop time of the next attempt */
    unsigned attempt;      /* attempts made */
    unsigned n_ranks;      /* surviving voters: the retry period in steps */
    unsigned long n_armed;     /* evidence acted on */
    unsigned long n_attempts;  /* elections (or pre-votes) started early */
    unsigned long n_cancelled; /* the leader spoke again before the first */
    unsigned long n_silences;  /* leaders forgotten after a silent timeout */
};

/* The Raft connection with peer `lost` closed at loop time `now`.  Arms
 * when c is enabled, r a voting follower whose current leader is `lost`,
 * and nothing is armed for that leader yet, and then makes r forget its
 * leader.  Returns whether it armed; *delay_ms (may be NULL) is then the
 * wait before the first attempt.  Call outside raft's own calls. */
bool glue__crash_evidence_lost(struct glue_crash_evidence *c,
                               struct raft *r,
                               raft_id lost,
                               uint64_t now,
                               uint64_t *delay_ms);

/* At loop time `now` (the glue's poll): when an attempt is due and still
 * warranted, moves r's election timer so that it has expired at `now` and
 * returns true: the caller must then deliver raft a tick.  The first
 * attempt is warranted while r is a follower that has heard from no
 * leader and granted no vote since (election_timer_start unchanged), a
 * retry while r is a candidate still in pre-vote; otherwise c disarms. */
bool glue__crash_evidence_poll(struct glue_crash_evidence *c,
                               struct raft *r,
                               uint64_t now);

/* Make r's election timer (follower or candidate) expire by `now`: its
 * randomized timeout becomes the time elapsed since election_timer_start
 * (unchanged when longer: already expired).  False (and nothing changed)
 * in another state or when now is before the timer's start. */
bool glue__crash_evidence_expire(struct raft *r, uint64_t now);

/* Silence: a follower that has heard nothing from its leader for a
 * whole (base) election timeout forgets it (true when it did), so that
 * it grants another follower's pre-vote.  Thesis §9.6's pre-vote rule is
 * "no heartbeat from a valid leader for at least a baseline election
 * timeout"; libraft 0.22.1 instead keeps the leader until this follower's
 * own randomized timeout (1–2 × the base) fires, so with a silent leader
 * (SIGSTOP, dropped packets) the first follower to time out was rejected
 * by the other and the election waited for the later of the two timeouts
 * (median ~1.67 × the base instead of ~1.29 ×).  raft resets
 * election_timer_start at every AppendEntries, so a follower hearing its
 * leader never gets here. */
bool glue__crash_evidence_silence(struct raft *r, uint64_t now);

#endif /* KYUFU_GLUE_CRASH_EVIDENCE_H */
