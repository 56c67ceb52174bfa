/* kyufu simulation, failover scenario: commands queued and in flight on a
 * leader that is killed; the new leader must acknowledge commands proposed
 * on it within a bound of virtual time; then the old leader comes back and
 * gets leadership handed back, with the same check. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

/* Virtual-time bound from a new leader's election to the acknowledgement
 * of a command proposed on it: one heartbeat (0.22.1 may hold the first
 * entry after an election until the next one: docs/measured.md), a round trip and
 * a disk write on each side, with room to spare.  The fixture's raft
 * defaults: heartbeat 100 ms; the scenario sets 5 ms network and 20 ms
 * disk latency. */
#define FAILOVER_ACK_MS_MAX 400u
static unsigned long failover_max_ms; /* worst seen, for the summary */

static bool leader_other_than(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    int l = sim_leader_of(s);
    (void)f;
    return l >= 0 && l != s->failover_old;
}

static bool drained_on(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    (void)f;
    return s->pending_on[s->failover_new] == 0;
}

static bool is_leader_target(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    (void)f;
    return sim_leader_of(s) == s->failover_new && !s->transfer_pending;
}

/* Propose on the current leader right away and check the commands are
 * acknowledged within FAILOVER_ACK_MS_MAX of virtual time. */
static void failover_propose(struct sim *s, raft_time elected, const char *what)
{
    unsigned long ms;
    uint64_t acked = s->wl.n_acked;
    int l = sim_leader_of(s);
    if (l < 0) {
        sim_failf(s, "%s: no leader", what);
        return;
    }
    /* A new leader's proposer starts clean: nothing of an older term is
     * queued or counted in flight. */
    if (s->prop[l].n_queued != 0 || s->prop[l].n_inflight != 0) {
        sim_failf(s, "%s: new leader %d holds %u queued and %u in-flight entries",
              what, l, s->prop[l].n_queued, s->prop[l].n_inflight);
    }
    s->failover_new = l;
    for (unsigned k = 0; k < 50 && s->pending_on[l] == 0; k++) {
        sim_propose_some(s); /* the workload may hold back (setup order) */
        if (s->pending_on[l] == 0) {
            raft_fixture_step(&s->f);
        }
    }
    if (s->pending_on[l] == 0 || sim_leader_of(s) != l) {
        sim_failf(s, "%s: could not propose on the new leader %d", what, l);
        return;
    }
    if (!raft_fixture_step_until(&s->f, drained_on, s, 5000)) {
        sim_failf(s, "%s: proposals on the new leader never answered", what);
        return;
    }
    ms = (unsigned long)(raft_fixture_time(&s->f) - elected);
    if (ms > failover_max_ms) {
        failover_max_ms = ms;
    }
    if (s->wl.n_acked == acked) {
        sim_failf(s, "%s: nothing acknowledged on the new leader", what);
    } else if (ms > FAILOVER_ACK_MS_MAX) {
        sim_failf(s, "%s: first commands on the new leader acknowledged %lu ms "
                 "after its election (bound %u ms)",
              what, ms, FAILOVER_ACK_MS_MAX);
    }
    if (s->verbose) {
        fprintf(stderr, "sim: %s: acknowledged %lu ms after the election\n",
                what, ms);
    }
}

/* Elect a new leader while commands are queued and in flight on the old
 * one (killed), propose on the new leader at once; then revive the old
 * leader, hand leadership back to it and do the same (its proposer must
 * have been drained when it lost leadership). */
void sim_failover_scenario(struct sim *s)
{
    raft_time t;
    int old;
    struct raft *r;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        raft_fixture_set_network_latency(&s->f, i, 5);
        raft_fixture_set_disk_latency(&s->f, i, 20);
    }
    s->failover_old = -1;
    if (!raft_fixture_step_until(&s->f, leader_other_than, s, 10000)) {
        sim_failf(s, "failover: no first leader");
        return;
    }
    /* Past the workload's ordered setup, so that the commands lost with
     * the old leader do not hold the workload back. */
    for (unsigned k = 0; k < 400 && s->failures == 0 &&
                         (k < 20 || !wl_setup_finished(&s->wl));
         k++) {
        sim_propose_some(s);
        sim_step(s, 5);
    }
    old = sim_leader_of(s);
    if (old < 0) {
        return; /* lost leadership by itself; the seed checks converge */
    }
    for (unsigned k = 0; k < 6; k++) {
        sim_propose_some(s); /* queued and in flight on the old leader */
    }
    sim_step(s, 1);
    raft_fixture_kill(&s->f, (unsigned)old);
    s->failover_old = old;
    if (!raft_fixture_step_until(&s->f, leader_other_than, s, 10000)) {
        sim_failf(s, "failover: no new leader after killing %d", old);
        return;
    }
    t = raft_fixture_time(&s->f);
    failover_propose(s, t, "failover after kill");
    if (s->failures != 0) {
        return;
    }

    /* The old leader comes back as a follower: its entries of the old
     * term were answered (applied or failed) and its counters are 0. */
    sim_revive(s, (unsigned)old);
    s->failover_new = old;
    sim_step(s, 200);
    if (s->prop[old].n_inflight != 0 || s->prop[old].n_queued != 0) {
        sim_failf(s, "failover: deposed leader %d still counts %u in flight, "
                 "%u queued",
              old, s->prop[old].n_inflight, s->prop[old].n_queued);
        return;
    }
    r = raft_fixture_get(&s->f, (unsigned)sim_leader_of(s));
    memset(&s->transfer, 0, sizeof s->transfer);
    s->transfer.data = s;
    if (raft_transfer(r, &s->transfer,
                      raft_fixture_get(&s->f, (unsigned)old)->id,
                      sim_transfer_cb) == 0) {
        s->transfer_pending = true;
        if (raft_fixture_step_until(&s->f, is_leader_target, s, 10000)) {
            failover_propose(s, raft_fixture_time(&s->f),
                             "failover back to the old leader");
        }
    }
    s->failover_old = -1;
}

void sim_failover_report(uint64_t n_seeds, unsigned failed)
{
    printf("sim: failover scenario on %" PRIu64 " seeds: %u failed; "
           "worst election-to-acknowledgement %lu ms (bound %u ms)\n",
           n_seeds, failed, failover_max_ms, FAILOVER_ACK_MS_MAX);
}
