/* kyufu simulation, stall-install scenario (issue 15): a follower stalls
 * (stall.c: no ticks, its messages and disk completions wait) while the
 * leader keeps writing and compacts its log past it.  When the follower
 * resumes it handles the leader's queued AppendEntries first: they still
 * match its log and carry a newer commit index, so it applies past its own
 * snapshot threshold and starts putting a snapshot, on a slow disk.  Its
 * replies tell the leader it is back; the leader, which compacted past it,
 * sends an InstallSnapshot, which arrives while that put is in flight.
 *
 * libraft 0.22.1 parks such an install and, when the local put completes,
 * dereferences NULL (docs/raft.md, "Install during a local snapshot");
 * raft-glue's io_guard holds it until the put is done.  Checks: the
 * follower catches up and the cluster converges (sim_converge); the seed
 * reached the interleaving (an InstallSnapshot arrived during the local
 * put: io_guard held it, or with --no-install-hold raft parked it, which
 * the scenario reports before the process dies). */
#include <inttypes.h>
#include <stdio.h>

#include "sim.h"

/* Before the stall: the fixture's defaults are 15 ms network, 10 ms disk;
 * kept explicit. */
#define STALL_NETWORK_MS 15u
#define STALL_DISK_MS 10u
/* The follower's disk during the burst that ends its stall: its own
 * snapshot's put (and the appends) started then take this long, several
 * heartbeat intervals (100 ms), so the leader's InstallSnapshot arrives
 * during the put. */
#define STALL_PUT_MS 1500u
/* Entries past the follower's last one the leader writes during the
 * stall: above the largest snapshot threshold and trailing run_seed draws
 * (48), so the leader has compacted what the follower needs. */
#define STALL_BEHIND_ENTRIES 100u
/* Virtual time allowed to reach the stall point and to catch up. */
#define STALL_SETUP_MS 20000u
#define STALL_CATCH_UP_MS 60000u

static unsigned long total_held, total_parked, total_reached, total_queued;

/* Raft parked an InstallSnapshot in legacy.snapshot_pending (the hold is
 * off): say so now, the process dies when the local put completes. */
static void check_parked(struct sim *s, unsigned to, bool *parked)
{
    struct raft *r = raft_fixture_get(&s->f, to);
    if (*parked || r->legacy.snapshot_pending == NULL) {
        return;
    }
    *parked = true;
    total_parked++;
    fprintf(stderr,
            "sim: stall-install seed %" PRIu64 ": server %u parked an "
            "InstallSnapshot in legacy.snapshot_pending during its own "
            "snapshot put (hold off); libraft 0.22.1 dereferences NULL in "
            "takeSnapshotCb when the put completes\n",
            s->seed, to);
    fflush(stderr);
}

/* Step for ms of virtual time, proposing every other 100 ms slice. */
static void run_for(struct sim *s, unsigned to, raft_time ms, bool *parked)
{
    raft_time until = raft_fixture_time(&s->f) + ms;
    unsigned slice = 0;
    while (raft_fixture_time(&s->f) < until && s->failures == 0) {
        raft_time t0 = raft_fixture_time(&s->f);
        if (slice++ % 2 == 0) {
            sim_propose_some(s);
        }
        while (raft_fixture_time(&s->f) < t0 + 100 && s->failures == 0) {
            sim_step(s, 1);
            check_parked(s, to, parked);
        }
    }
}

void sim_stall_install_scenario(struct sim *s)
{
    struct raft *fr;
    raft_index behind, target;
    unsigned long held0;
    uint64_t snaps0;
    bool parked = false;
    int l;
    unsigned to;

    for (unsigned i = 0; i < N_SERVERS; i++) {
        raft_fixture_set_network_latency(&s->f, i, STALL_NETWORK_MS);
        raft_fixture_set_disk_latency(&s->f, i, STALL_DISK_MS);
    }
    if (!raft_fixture_step_until(&s->f, sim_has_leader, s, 20000)) {
        sim_failf(s, "stall-install: no leader");
        return;
    }
    l = sim_leader_of(s);
    to = ((unsigned)l + 1) % N_SERVERS;
    fr = raft_fixture_get(&s->f, to);
    /* Write until the follower is about to cross its threshold. */
    for (raft_time t0 = raft_fixture_time(&s->f);
         !sim_stall_at_threshold(s, to) && s->failures == 0 &&
         raft_fixture_time(&s->f) < t0 + STALL_SETUP_MS;) {
        sim_propose_some(s);
        for (unsigned k = 0; k < 4 && !sim_stall_at_threshold(s, to); k++) {
            sim_step(s, 1);
        }
    }
    if (!sim_stall_at_threshold(s, to) || sim_leader_of(s) != l) {
        sim_failf(s, "stall-install: follower %u never about to cross its "
                     "snapshot threshold under leader %d",
                  to, l);
        return;
    }
    sim_stall_begin(s, to);
    behind = raft_last_index(fr);
    /* The leader writes on and compacts past the stalled follower. */
    for (raft_time t0 = raft_fixture_time(&s->f);
         s->failures == 0 &&
         s->guard[l].anchor.index < behind + STALL_BEHIND_ENTRIES &&
         raft_fixture_time(&s->f) < t0 + STALL_SETUP_MS;) {
        sim_propose_some(s);
        sim_step(s, 2);
        if (sim_leader_of(s) != l) {
            sim_failf(s, "stall-install: leader %d lost leadership while "
                         "follower %u stalled",
                      l, to);
            return;
        }
    }
    if (s->guard[l].anchor.index < behind + STALL_BEHIND_ENTRIES) {
        sim_failf(s, "stall-install: leader %d did not compact past %llu "
                     "(its snapshot is at %llu)",
                  l, (unsigned long long)behind,
                  (unsigned long long)s->guard[l].anchor.index);
        return;
    }
    target = raft_commit_index(raft_fixture_get(&s->f, (unsigned)l));
    held0 = s->guard[to].n_install_held;
    snaps0 = s->fsm_state[to].n_snapshots;
    if (s->verbose) {
        fprintf(stderr,
                "sim: stall-install: follower %u stalled %llu ms at last "
                "index %llu, %lu events waiting; leader %d snapshot at "
                "%llu\n",
                to,
                (unsigned long long)(raft_fixture_time(&s->f) -
                                     s->stall[to].since),
                (unsigned long long)behind, s->stall[to].n_deferred, l,
                (unsigned long long)s->guard[l].anchor.index);
    }
    /* The burst: what the follower writes now (the entries that waited and
     * its own snapshot, if it crosses its threshold) is slow; what it
     * writes afterwards is not. */
    raft_fixture_set_disk_latency(&s->f, to, STALL_PUT_MS);
    sim_stall_end(s, to);
    raft_fixture_set_disk_latency(&s->f, to, STALL_DISK_MS);
    check_parked(s, to, &parked);
    for (raft_time t0 = raft_fixture_time(&s->f);
         s->failures == 0 && raft_last_applied(fr) < target &&
         raft_fixture_time(&s->f) < t0 + STALL_CATCH_UP_MS;) {
        run_for(s, to, 200, &parked);
    }
    if (raft_last_applied(fr) < target) {
        sim_failf(s, "stall-install: server %u did not catch up to %llu "
                     "within %u ms (applied %llu)",
                  to, (unsigned long long)target, STALL_CATCH_UP_MS,
                  (unsigned long long)raft_last_applied(fr));
    }
    total_held += s->guard[to].n_install_held - held0;
    total_queued += s->stall[to].n_installs_queued;
    if (s->guard[to].n_install_held > held0 || parked) {
        total_reached++;
    }
    if (s->verbose) {
        fprintf(stderr,
                "sim: stall-install: follower %u took %" PRIu64
                " snapshots of its "
                "own after resuming; InstallSnapshots held %lu (replaced "
                "%lu, dropped as duplicates %lu)\n",
                to, s->fsm_state[to].n_snapshots - snaps0,
                s->guard[to].n_install_held - held0,
                s->guard[to].n_install_replaced,
                s->guard[to].n_install_dropped);
    }
}

bool sim_stall_install_report(uint64_t n_seeds, unsigned failed)
{
    printf("sim: stall-install scenario on %" PRIu64 " seeds: %u failed; "
           "%lu seeds reached an InstallSnapshot during the follower's own "
           "snapshot put (held %lu times by io_guard, parked by raft %lu "
           "times); %lu InstallSnapshots waited in a stall\n",
           n_seeds, failed, total_reached, total_held, total_parked,
           total_queued);
    if (total_reached == 0) {
        fprintf(stderr, "sim: stall-install: no seed reached the "
                        "interleaving (nothing tested)\n");
        return false;
    }
    return true;
}
