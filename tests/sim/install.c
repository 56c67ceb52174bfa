/* kyufu simulation, install scenario: a follower is down while its leader
 * compacts the log past it; it comes back over a slow network (messages take
 * several heartbeat intervals) and a slow disk, so it must install a snapshot
 * while heartbeats anchored at the snapshot index keep arriving and being
 * rejected.  libraft 0.22.1 asks for a new copy on every such rejection and
 * on every tick the follower is silent; raft-glue's gate
 * (raft-glue/snapshot_send.h) must let exactly one copy per (index, term)
 * reach the network, and the follower must converge.  Run with
 * --no-snapshot-gate to see the copies raft asks for. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim.h"

/* From the follower's return: slow enough that a copy is in flight for 4
 * heartbeat intervals (the fixture's heartbeat is 100 ms, its election
 * timeout 1,000 ms) and its install takes 1.5 more.  The log grows at the
 * fixture's default latencies before. */
#define INSTALL_NETWORK_MS 400u
#define INSTALL_DISK_MS 1500u
/* Entries past the follower's last one before it comes back: above the
 * largest snapshot threshold run_seed draws (48), so the leader has
 * compacted what the follower needs. */
#define INSTALL_BEHIND_ENTRIES 100u
/* Virtual time allowed for the follower to catch up. */
#define INSTALL_CATCH_UP_MS 60000u
/* --install-fast: replies within a tick, writes every 100 ms.  The leader
 * then commits entries the follower has received but not yet written (its
 * disk is slow), the follower applies them and, past its threshold, takes
 * a snapshot: the stall of docs/raft.md "Snapshot past unwritten
 * entries" (seeds 10, 13, 14, 27, 29 of 1-30 without the FSM's refusal). */
#define INSTALL_FAST_NETWORK_MS 5u

static struct sim *current; /* one simulation at a time */
static int (*fixture_send)(struct raft_io *io,
                           struct raft_io_send *req,
                           const struct raft_message *message,
                           raft_io_send_cb cb);
static unsigned long total_copies, total_keys;

static void count_copy(struct sim *s, uint64_t index, uint64_t term)
{
    s->n_copies++;
    for (unsigned k = 0; k < s->n_copy_keys; k++) {
        if (s->copies[k].index == index && s->copies[k].term == term) {
            s->copies[k].count++;
            return;
        }
    }
    if (s->n_copy_keys < sizeof s->copies / sizeof s->copies[0]) {
        s->copies[s->n_copy_keys].index = index;
        s->copies[s->n_copy_keys].term = term;
        s->copies[s->n_copy_keys].count = 1;
        s->n_copy_keys++;
    }
}

/* Below the gate: sees only what reaches the (fixture's) network. */
static int counting_send(struct raft_io *io,
                         struct raft_io_send *req,
                         const struct raft_message *message,
                         raft_io_send_cb cb)
{
    struct sim *s = current;
    (void)io; /* any sender: each leader term is a key of its own */
    if (message->type == RAFT_INSTALL_SNAPSHOT && s->install_to >= 0 &&
        message->server_id ==
            raft_fixture_get(&s->f, (unsigned)s->install_to)->id) {
        count_copy(s, message->install_snapshot.last_index,
                   message->install_snapshot.term);
    }
    return fixture_send(io, req, message, cb);
}

void sim_install_setup(struct sim *s, unsigned i)
{
    struct raft *r = raft_fixture_get(&s->f, i);
    current = s;
    fixture_send = r->io->send;
    r->io->send = counting_send;
}

/* The follower applied what the leader had committed at its return (the
 * leader keeps committing; full convergence is checked after the scenario
 * by sim_converge). */
static bool caught_up(struct sim *s, raft_index target)
{
    return raft_last_applied(raft_fixture_get(&s->f,
                                              (unsigned)s->install_to)) >=
           target;
}

void sim_install_scenario(struct sim *s)
{
    raft_index behind, target;
    unsigned long requested = 0, dropped = 0;
    int l;
    unsigned to;

    for (unsigned i = 0; i < N_SERVERS; i++) {
        /* Longer than the install takes: no copy counts as lost here. */
        s->guard[i].snapshot_send.settle_ms = 10 * INSTALL_CATCH_UP_MS;
    }
    if (!raft_fixture_step_until(&s->f, sim_has_leader, s, 20000)) {
        sim_failf(s, "install: no leader");
        return;
    }
    l = sim_leader_of(s);
    to = ((unsigned)l + 1) % N_SERVERS;
    raft_fixture_kill(&s->f, to);
    behind = raft_last_index(raft_fixture_get(&s->f, to));
    for (unsigned k = 0; k < 5000 && s->failures == 0 &&
                         s->guard[l].anchor.index <
                             behind + INSTALL_BEHIND_ENTRIES;
         k++) {
        sim_propose_some(s);
        sim_step(s, 2);
        if (sim_leader_of(s) != l) {
            sim_failf(s, "install: leader %d lost leadership while the log "
                         "grew", l);
            return;
        }
    }
    if (s->guard[l].anchor.index < behind + INSTALL_BEHIND_ENTRIES) {
        sim_failf(s, "install: leader %d did not compact past %llu (its "
                     "snapshot is at %llu)",
                  l, (unsigned long long)behind,
                  (unsigned long long)s->guard[l].anchor.index);
        return;
    }
    for (unsigned i = 0; i < N_SERVERS; i++) {
        raft_fixture_set_network_latency(
            &s->f, i,
            sim_install_fast ? INSTALL_FAST_NETWORK_MS : INSTALL_NETWORK_MS);
        raft_fixture_set_disk_latency(&s->f, i, i == to ? INSTALL_DISK_MS
                                                         : 20);
    }
    s->install_to = (int)to;
    target = raft_commit_index(raft_fixture_get(&s->f, (unsigned)l));
    sim_revive(s, to);
    /* Keep writing: the leader snapshots again while the follower installs,
     * as in a live cluster; the leader's trailing hold must keep the log
     * the follower needs after its install, so one copy is enough. */
    for (unsigned t = 0; t < INSTALL_CATCH_UP_MS / 100 && s->failures == 0 &&
                         !caught_up(s, target);
         t++) {
        if (sim_install_fast || t % 2 == 0) {
            sim_propose_some(s);
        }
        for (raft_time t0 = raft_fixture_time(&s->f);
             raft_fixture_time(&s->f) < t0 + 100 && s->failures == 0;) {
            sim_step(s, 1);
        }
    }
    if (!caught_up(s, target)) {
        sim_failf(s, "install: server %u did not catch up within %u ms",
                  to, INSTALL_CATCH_UP_MS);
    }
    if (s->n_copy_keys > 1 && !sim_no_trailing_hold) {
        sim_failf(s, "install: server %u needed %u installs (the trailing "
                     "hold should keep the log it needs after the first)",
                  to, s->n_copy_keys);
    }
    if (s->n_copy_keys == 0) {
        sim_failf(s, "install: server %u caught up without an "
                     "InstallSnapshot (nothing tested)",
                  to);
    }
    for (unsigned k = 0; k < s->n_copy_keys; k++) {
        if (s->copies[k].count != 1) {
            sim_failf(s, "install: %u copies of snapshot %" PRIu64
                         " (term %" PRIu64 ") sent to server %u",
                      s->copies[k].count, s->copies[k].index,
                      s->copies[k].term, to);
        }
    }
    for (unsigned i = 0; i < N_SERVERS; i++) {
        requested += s->guard[i].snapshot_send.n_requested;
        dropped += s->guard[i].snapshot_send.n_dropped;
    }
    if (s->verbose) {
        fprintf(stderr,
                "sim: install: %u copies of %u snapshots sent to server %u; "
                "raft asked %lu times, the gates refused %lu\n",
                s->n_copies, s->n_copy_keys, to, requested, dropped);
    }
    total_copies += s->n_copies;
    total_keys += s->n_copy_keys;
    s->install_to = -1;
}

void sim_install_report(uint64_t n_seeds, unsigned failed)
{
    printf("sim: install scenario on %" PRIu64 " seeds: %u failed; %lu "
           "snapshot copies sent for %lu distinct snapshots\n",
           n_seeds, failed, total_copies, total_keys);
}
