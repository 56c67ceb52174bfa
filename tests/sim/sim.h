/* kyufu deterministic simulation: shared state and helpers of sim.c for
 * the scenarios in their own files (failover.c, install.c). */
#ifndef KYUFU_TESTS_SIM_H
#define KYUFU_TESTS_SIM_H

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdint.h>

#include "fsm.h"
#include "io_guard.h"
#include "proposer.h"
#include "workload.h"

#define N_SERVERS 3

struct sim;

struct sim_install_copy
{
    uint64_t index;
    uint64_t term;
    unsigned count;
};

/* stall.c: one server's stall layer (see there). */
struct sim_stall_event;
struct stall_req;
/* When an armed stall of the random model begins (NOW: not armed). */
enum sim_stall_when {
    SIM_STALL_NOW = 0,
    SIM_STALL_AT_THRESHOLD, /* a follower about to cross its threshold */
    SIM_STALL_TAKING,       /* its own snapshot's put in flight */
    SIM_STALL_INSTALLING,   /* an install's put in flight */
};
struct sim_stall
{
    struct raft_io *io;
    bool on;
    enum sim_stall_when armed; /* random model: stall at that moment */
    raft_time since; /* virtual time the stall began */
    /* The fixture's methods, below the layer. */
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*append)(struct raft_io *io,
                  struct raft_io_append *req,
                  const struct raft_entry entries[],
                  unsigned n,
                  raft_io_append_cb cb);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    int (*snapshot_get)(struct raft_io *io,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb);
    int (*send)(struct raft_io *io,
                struct raft_io_send *req,
                const struct raft_message *message,
                raft_io_send_cb cb);
    raft_io_tick_cb tick; /* the layer above's (io_guard's) */
    raft_io_recv_cb recv;
    struct sim_stall_event *head, *tail; /* deferred, oldest first */
    bool tick_queued;
    struct stall_req *appends, *appends_tail; /* in flight, oldest first */
    unsigned long n_appends_reordered; /* completed before an older one */
    unsigned long n_stalls;
    unsigned long n_stalls_leader;     /* ...of a leader */
    unsigned long n_stalls_taking;     /* ...while its own snapshot's put */
    unsigned long n_stalls_installing; /* ...while an install's put */
    unsigned long n_deferred;        /* events deferred */
    unsigned long n_installs_queued; /* InstallSnapshots among them */
};

struct sim_propose
{
    struct kyufu_glue_propose req;
    struct sim *sim;
    size_t cmd;
    unsigned server;
};

struct sim
{
    uint64_t seed;
    bool verbose;
    struct sim_rng rng;
    struct sim_rng stall_rng; /* the stall fault's own stream (stall.c) */
    struct raft_fixture f;
    char dir[64];
    struct kyufu_storage *storage[N_SERVERS];
    struct raft_fsm fsm[N_SERVERS];
    struct kyufu_fsm fsm_state[N_SERVERS];
    struct kyufu_proposer prop[N_SERVERS];
    struct glue_io_guard guard[N_SERVERS];
    struct sim_stall stall[N_SERVERS];
    uint64_t last_checked[N_SERVERS];
    unsigned pending_on[N_SERVERS]; /* propose callbacks outstanding */
    bool fatal[N_SERVERS];   /* an I/O fault made it fatal */
    bool stopped[N_SERVERS]; /* fatal, killed for good */
    unsigned n_stopped;
    /* Armed I/O faults (at most one of each). */
    int apply_fault_server;  /* -1, or fail a call in its next submits */
    unsigned apply_fault_countdown;
    int meta_fault_server;   /* -1, or fail its next set_term/set_vote */
    unsigned meta_fault_countdown;
    struct workload wl;
    unsigned n_pending; /* propose callbacks outstanding */
    struct raft_transfer transfer;
    bool transfer_pending;
    unsigned failures;
    /* Fault counters, for the summary. */
    unsigned n_kills, n_disconnects, n_io_faults, n_transfers, n_latency;
    unsigned n_fatal;
    int failover_old; /* failover scenario: the leader killed, or -1 */
    int failover_new; /* the leader whose proposals are awaited */
    /* install scenario: InstallSnapshots sent (by raft's io, after the
     * gate) to server install_to (or -1), by (index, term). */
    int install_to;
    struct sim_install_copy copies[64]; /* one per (index, term) */
    unsigned n_copy_keys;
    unsigned n_copies;
};

void sim_failf(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The live leader's fixture index, or -1. */
int sim_leader_of(struct sim *s);
/* raft_fixture_step_until predicate (arg: the sim): a live leader. */
bool sim_has_leader(struct raft_fixture *f, void *arg);
/* Submit a few workload commands on the leader, if any. */
void sim_propose_some(struct sim *s);
/* n fixture steps, checking invariants after each. */
void sim_step(struct sim *s, unsigned n);
/* Revive server i (and tell the gates its streams are back). */
void sim_revive(struct sim *s, unsigned i);
void sim_transfer_cb(struct raft_transfer *t);
/* Heal everything, wait for one applied index everywhere, compare digests
 * and the exactly-once record. */
void sim_converge(struct sim *s);

/* stall.c: wrap server i's fixture io (before io_guard wraps it). */
void sim_stall_setup(struct sim *s, unsigned i);
/* Server i stops processing: ticks, received messages and I/O
 * completions wait, in order. */
void sim_stall_begin(struct sim *s, unsigned i);
/* It resumes: everything that waited is handed to raft now, in order. */
void sim_stall_end(struct sim *s, unsigned i);

/* Server i is a follower holding entries whose commit, once it learns
 * it, crosses its snapshot threshold. */
bool sim_stall_at_threshold(struct sim *s, unsigned i);
/* The random model's stall fault: resume the stalled server, or stall
 * one now or at a moment of its snapshots (at most one at a time). */
void sim_stall_fault(struct sim *s);
/* After each fixture step: begin an armed stall whose moment came. */
void sim_stall_step(struct sim *s);

/* --no-trailing-hold (sim.c): raft-glue's trailing hold off. */
extern bool sim_no_trailing_hold;
/* --no-install-hold (sim.c): io_guard's install hold off (issue 15). */
extern bool sim_no_install_hold;
/* --install-fast (sim.c): the install scenario over a fast network with
 * more writes (install.c). */
extern bool sim_install_fast;

/* failover.c: a leader killed with commands in flight, then handed back. */
void sim_failover_scenario(struct sim *s);
void sim_failover_report(uint64_t n_seeds, unsigned failed);

/* install.c: a follower behind a compacted log installs one snapshot copy
 * per (index, term) from its leader. */
void sim_install_setup(struct sim *s, unsigned i);
void sim_install_scenario(struct sim *s);
void sim_install_report(uint64_t n_seeds, unsigned failed);

/* crash.c: on SIGSEGV/SIGBUS print the faulting address and instruction
 * (object+offset) before dying of it (not under ASan, which reports it). */
void sim_crash_reporter_install(void);

/* stall_install.c: a follower stalls while the leader compacts past it;
 * resuming, it starts a snapshot of its own right before the leader's
 * InstallSnapshot arrives.  The report returns false if no seed reached
 * that interleaving. */
void sim_stall_install_scenario(struct sim *s);
bool sim_stall_install_report(uint64_t n_seeds, unsigned failed);

/* trace.c: the event trace (KYUFU_SIM_EVENTS=FILE, else off). */
void sim_trace_open(void);
void sim_trace(struct sim *s, const char *what, struct raft_io *io,
               const struct raft_message *m);

#endif /* KYUFU_TESTS_SIM_H */
