/* kyufu deterministic simulation: the real FSM adapter, group committer and
 * LMDB state machine on libraft's in-memory fixture cluster (virtual time),
 * with kills, stalls, partitions, latencies, I/O faults, leadership
 * transfers and snapshots/installs, all driven by one seeded PRNG.  A failing seed prints
 * the command that replays it exactly.
 *
 *   kyufu-sim                      200 seeds from 1 (the default suite)
 *   kyufu-sim --seed S             one seed, verbose
 *   kyufu-sim --seeds N --from S   N seeds from S (long mode)
 *   kyufu-sim --steps K            workload steps per seed
 *   kyufu-sim --no-scenarios       the random model only
 *   KYUFU_SIM_SEEDS=1              a summary line per seed (stderr)
 *   KYUFU_SIM_EVENTS=FILE          every tick and message (trace.c)
 *   kyufu-sim --no-io-faults       no I/O faults (same seeds, other runs)
 *   kyufu-sim --no-stalls          no stall faults (stall.c; they draw
 *                                  from their own stream, so the other
 *                                  faults draw the same numbers)
 *   kyufu-sim --failover [--seed S] only the failover-latency scenario
 *                                  (also run on 20 seeds by default)
 *   kyufu-sim --install [--seed S]  only the snapshot-install scenario
 *                                  (also run on 10 seeds by default, 2
 *                                  under ASan)
 *   kyufu-sim --stall-install [--seed S] only the stall-install scenario
 *                                  (issue 15; also run on 20 seeds by
 *                                  default, 2 under ASan)
 *   kyufu-sim --install --install-fast  the install scenario over a 5 ms
 *                                  network with twice the writes (stalls
 *                                  on seeds 10, 13, 14, 27, 29 of 1-30: the
 *                                  simulated disk lets a snapshot write
 *                                  overtake an earlier append, docs/raft.md
 *                                  "Snapshot past unwritten entries"; not
 *                                  in the suite)
 *   kyufu-sim --no-install-hold    io_guard hands raft an InstallSnapshot
 *                                  that arrives during a local snapshot
 *                                  (libraft 0.22.1 then segfaults)
 *   kyufu-sim --no-snapshot-gate   send every InstallSnapshot raft asks for
 *                                  (0.22.1's re-sends; snapshot_send.h)
 *   kyufu-sim --no-trailing-hold   leader compacts as configured during an
 *                                  install (snapshot_send.h)
 *   kyufu-sim --io-faults-anywhere also arm raft_fixture_io_fault on any
 *                                  call at any time (reproduces libraft
 *                                  0.22.1's recvCb double free; see
 *                                  docs/raft.md, "I/O faults")
 *
 * I/O faults (default): a synchronous append or send failure inside the
 * leader's raft_apply (fixture fault armed only around our submits), and a
 * failed set_term/set_vote anywhere (io_guard injection).  Each makes that
 * server fatal; the simulation then stops it for good (kills it, never
 * revives it) as the node would stop, at most one per seed so a quorum
 * remains, and checks the two others.
 *
 * Checks: after every fixture step, kyufu_storage_check_invariants on every
 * server whose applied index moved; at the end (everything healed and
 * converged) the same digest at the same applied index on every server, and
 * every acknowledged command applied exactly once everywhere with the
 * acknowledged result (workload.c). */
#include <assert.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stdarg.h>

#include "rm_tree.h"
#include "sim.h"

#define BASE_TIME_MS ((int64_t)1767225600000) /* 2026-01-01, virtual */

#if defined(__SANITIZE_ADDRESS__)
#define SIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_ASAN 1
#endif
#endif
#ifndef SIM_ASAN
#define SIM_ASAN 0
#endif

#if SIM_ASAN
/* LeakSanitizer: libraft 0.22.1 leaks its own copy of an entry when
 * raft_apply fails after copying it (legacy.c 209 entryCopy, then 247
 * logDiscard, which drops the log's reference without destroying the
 * entry).  The simulation makes raft_apply fail on purpose (I/O faults);
 * the leak is libraft's, 88 bytes per failure, on a node that then stops.
 * Only allocations made inside raft_apply are suppressed: kyufu allocates
 * nothing there. */
__attribute__((visibility("default"))) const char *
__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *
__lsan_default_suppressions(void)
{
    return "leak:raft_apply\n";
}
#endif

/* libraft 0.22.1's fixture truncates as if its log always started at index
 * 1 (fixture.c ioMethodTruncate: `n = index - 1`), but after an install
 * its log starts after the snapshot (`start_index`), so a follower that
 * truncates a conflicting suffix after an install reads past the entries
 * array and later frees garbage (heap overflow, then a double free: long
 * runs crashed on it).  The simulation hands the fixture the index it
 * means.  Reads the head of the fixture's private `struct io` (0.22.1
 * layout; the back pointer is checked on every call). */
struct fixture_io_0221
{
    struct raft_io *io;
    unsigned index;
    raft_time *time;
    raft_time next_tick;
    raft_term term;
    raft_id voted_for;
    struct raft_snapshot *snapshot;
    struct raft_entry *entries;
    size_t n;
    raft_index start_index; /* index of the snapshot installed last, or 0 */
};

static int (*fixture_truncate)(struct raft_io *io, raft_index index);

static int sim_truncate(struct raft_io *raft_io, raft_index index)
{
    struct fixture_io_0221 *io = raft_io->impl;
    assert(io->io == raft_io);
    if (io->start_index > 0 && index <= io->start_index + io->n) {
        index = index > io->start_index + 1 ? index - io->start_index : 1;
    }
    return fixture_truncate(raft_io, index);
}

void sim_failf(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sim: seed %" PRIu64 ": FAIL: ", s->seed);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    s->failures++;
}

static void fsm_fatal(void *arg, int rv, const char *errmsg)
{
    struct sim *s = arg;
    sim_failf(s, "fatal storage error %s: %s", kyufu_storage_strerror(rv), errmsg);
}

static bool sim_io_faults_anywhere; /* --io-faults-anywhere */
static bool sim_io_faults_off;      /* --no-io-faults */
static bool sim_no_snapshot_gate;   /* --no-snapshot-gate */
bool sim_no_trailing_hold;          /* --no-trailing-hold */
bool sim_no_install_hold;           /* --no-install-hold */
bool sim_install_fast;              /* --install-fast */
/* Totals over all seeds, for the summary line. */
static bool sim_no_stalls;          /* --no-stalls */
static bool sim_seed_log; /* KYUFU_SIM_SEEDS set: a line per seed */
static unsigned long total_io_faults, total_stopped, total_snapshots;
/* Snapshot interleavings reached (io_guard's counters, stall.c's). */
static unsigned long total_stalls, total_held, total_replaced,
    total_install_dropped, total_stale_answers, total_vote_results_dropped,
    total_reordered,
    total_stalls_leader,
    total_stalls_taking, total_stalls_installing;

struct applied_arg
{
    struct sim *s;
    unsigned i;
};
static struct applied_arg applied_args[N_SERVERS];

static void on_applied(void *arg, uint64_t index, uint64_t term,
                       struct kyufu_storage_results *results)
{
    struct applied_arg *a = arg;
    kyufu_proposer__applied(&a->s->prop[a->i], index, term, results);
}

static void on_fatal(void *arg, int rv, const char *errmsg)
{
    struct applied_arg *a = arg;
    fsm_fatal(a->s, rv, errmsg);
}

/* An injected I/O fault made server i fatal (proposer hook or io_guard):
 * like the node, it stops; stop_fatal kills it once the raft call that
 * failed has returned. */
static void mark_fatal(struct sim *s, unsigned i, const char *why)
{
    if (s->fatal[i]) {
        return;
    }
    s->fatal[i] = true;
    s->n_fatal++;
    if (s->prop[i].fatal_status == 0) {
        s->prop[i].fatal_status = KYUFU_GLUE_EIO;
    }
    if (s->verbose) {
        fprintf(stderr, "sim: server %u fatal at %llu ms: %s\n", i,
                (unsigned long long)raft_fixture_time(&s->f), why);
    }
}

static void on_proposer_fatal(void *arg, int status, const char *msg)
{
    struct applied_arg *a = arg;
    (void)status;
    mark_fatal(a->s, a->i, msg);
}

static void on_guard_failed(struct glue_io_guard *g, const char *call, int rv)
{
    struct applied_arg *a = g->data;
    (void)rv;
    mark_fatal(a->s, a->i, call);
}

/* io_guard injection: fail the armed server's set_term/set_vote on a
 * countdown, except while it handles a received AppendEntries with entries
 * (0.22.1 then frees the batch twice and io_guard aborts the process;
 * docs/raft.md, "I/O faults"). */
static int on_guard_inject(struct glue_io_guard *g, const char *call)
{
    struct applied_arg *a = g->data;
    struct sim *s = a->s;
    if (s->meta_fault_server != (int)a->i ||
        (strcmp(call, "set_term") != 0 && strcmp(call, "set_vote") != 0)) {
        return 0;
    }
    if (g->receiving != NULL && g->receiving->type == RAFT_APPEND_ENTRIES &&
        g->receiving->append_entries.n_entries > 0) {
        return 0;
    }
    if (s->meta_fault_countdown > 0) {
        s->meta_fault_countdown--;
        return 0;
    }
    s->meta_fault_server = -1;
    s->n_io_faults++;
    return RAFT_IOERR;
}

static void stop_fatal(struct sim *s)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (s->fatal[i] && !s->stopped[i]) {
            s->stopped[i] = true;
            s->n_stopped++;
            raft_fixture_kill(&s->f, i);
        }
    }
}

static int64_t now_ms(struct sim *s)
{
    return BASE_TIME_MS + (int64_t)raft_fixture_time(&s->f);
}

static void propose_cb(struct kyufu_glue_propose *req, int status,
                       Kyufu__V1__CommandResult *result)
{
    struct sim_propose *p = req->data;
    struct sim *s = p->sim;
    assert(s->n_pending > 0 && s->pending_on[p->server] > 0);
    s->n_pending--;
    s->pending_on[p->server]--;
    wl_on_result(&s->wl, p->cmd, status, result);
    free(p);
}

int sim_leader_of(struct sim *s)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (raft_fixture_alive(&s->f, i) &&
            raft_state(raft_fixture_get(&s->f, i)) == RAFT_LEADER) {
            return (int)i;
        }
    }
    return -1;
}

bool sim_has_leader(struct raft_fixture *f, void *arg)
{
    (void)f;
    return sim_leader_of(arg) >= 0;
}

void sim_propose_some(struct sim *s)
{
    int l = sim_leader_of(s);
    unsigned n = sim_rng_range(&s->rng, 1, 6);
    bool armed = false;
    if (l < 0) {
        return;
    }
    if (s->apply_fault_server == l && s->n_stopped == 0) {
        /* Only calls made inside raft_apply can fail here: the leader's
         * append and its AppendEntries sends (docs/raft.md, "I/O
         * faults"). */
        raft_fixture_io_fault(&s->f, (unsigned)l,
                              (int)s->apply_fault_countdown, 1);
        s->apply_fault_server = -1;
        armed = true;
    }
    for (unsigned k = 0; k < n; k++) {
        size_t i = wl_next(&s->wl, now_ms(s));
        Kyufu__V1__Command *cmd;
        struct sim_propose *p;
        int rv;

        if (i == SIZE_MAX) {
            break;
        }
        cmd = kyufu__v1__command__unpack(NULL, s->wl.cmds[i].len,
                                         s->wl.cmds[i].bytes);
        assert(cmd != NULL);
        p = calloc(1, sizeof *p);
        assert(p != NULL);
        p->sim = s;
        p->cmd = i;
        p->server = (unsigned)l;
        p->req.data = p;
        rv = kyufu_proposer__submit(&s->prop[l], &p->req, cmd, propose_cb);
        kyufu__v1__command__free_unpacked(cmd, NULL);
        if (rv != 0) {
            free(p);
            /* EIO: a fixture I/O fault failed raft_apply's append (the real
             * glue then stops the node). */
            if (rv != KYUFU_GLUE_ENOTLEADER && rv != KYUFU_GLUE_EBUSY &&
                rv != KYUFU_GLUE_EIO) {
                sim_failf(s, "submit on %d: %s", l, kyufu_glue_strerror(rv));
            }
            break;
        }
        s->wl.cmds[i].n_inflight++;
        s->n_pending++;
        s->pending_on[l]++;
    }
    if (armed) {
        if (s->fatal[l]) {
            s->n_io_faults++;
        }
        raft_fixture_io_fault(&s->f, (unsigned)l, -1, 0); /* disarm */
    }
    stop_fatal(s);
}

static void check_all(struct sim *s)
{
    for (unsigned i = 0; i < N_SERVERS; i++) {
        uint64_t index, term;
        char errmsg[256];
        int rv;
        kyufu_storage_applied(s->storage[i], &index, &term);
        if (index == s->last_checked[i]) {
            continue;
        }
        if (index < s->last_checked[i]) {
            sim_failf(s, "server %u: applied index went back %" PRIu64
                     " -> %" PRIu64,
                  i, s->last_checked[i], index);
        }
        s->last_checked[i] = index;
        errmsg[0] = '\0';
        rv = kyufu_storage_check_invariants(s->storage[i], errmsg,
                                            sizeof errmsg);
        if (rv != 0) {
            sim_failf(s, "server %u at index %" PRIu64 ": invariants: %s", i,
                  index, errmsg);
        }
    }
}

void sim_step(struct sim *s, unsigned n)
{
    for (unsigned k = 0; k < n && s->failures == 0; k++) {
        raft_fixture_step(&s->f);
        stop_fatal(s);
        check_all(s);
        sim_stall_step(s);
    }
}

void sim_transfer_cb(struct raft_transfer *t)
{
    struct sim *s = t->data;
    s->transfer_pending = false;
}

/* The fixture has no streams: a revive or a healed link stands for raft_uv
 * reconnecting, which reopens the snapshot send gate as the glue's
 * transport hook does. */
static void reconnected(struct sim *s, unsigned i, unsigned j)
{
    raft_id id_i = raft_fixture_get(&s->f, i)->id;
    raft_id id_j = raft_fixture_get(&s->f, j)->id;
    glue__snapshot_send_connected(&s->guard[i].snapshot_send, id_j);
    glue__snapshot_send_connected(&s->guard[j].snapshot_send, id_i);
}

void sim_revive(struct sim *s, unsigned i)
{
    raft_fixture_revive(&s->f, i);
    for (unsigned j = 0; j < N_SERVERS; j++) {
        if (j != i) {
            reconnected(s, i, j);
        }
    }
}

static void fault(struct sim *s)
{
    unsigned i = sim_rng_range(&s->rng, 0, N_SERVERS - 1);
    unsigned j = (i + sim_rng_range(&s->rng, 1, N_SERVERS - 1)) % N_SERVERS;
    unsigned n_alive = 0;
    for (unsigned k = 0; k < N_SERVERS; k++) {
        n_alive += raft_fixture_alive(&s->f, k) ? 1 : 0;
    }
    switch (sim_rng_range(&s->rng, 0, 6)) {
        case 0: /* kill or revive */
            if (s->stopped[i]) {
                break;
            }
            if (raft_fixture_alive(&s->f, i)) {
                if (n_alive == N_SERVERS || sim_rng_chance(&s->rng, 20)) {
                    raft_fixture_kill(&s->f, i);
                    s->n_kills++;
                }
            } else {
                sim_revive(s, i);
            }
            break;
        case 1: /* partition a pair, or heal it */
            if (sim_rng_chance(&s->rng, 50)) {
                raft_fixture_disconnect(&s->f, i, j);
                raft_fixture_disconnect(&s->f, j, i);
                s->n_disconnects++;
            } else {
                raft_fixture_reconnect(&s->f, i, j);
                raft_fixture_reconnect(&s->f, j, i);
                reconnected(s, i, j);
            }
            break;
        case 2:
            raft_fixture_set_network_latency(&s->f, i,
                                             sim_rng_range(&s->rng, 1, 120));
            s->n_latency++;
            break;
        case 3:
            raft_fixture_set_disk_latency(&s->f, i,
                                          sim_rng_range(&s->rng, 1, 60));
            s->n_latency++;
            break;
        case 4: /* arm one I/O fault; at most one server stops per seed */
            if (sim_io_faults_anywhere) {
                /* Any call, any time: reaches libraft 0.22.1's recvCb
                 * double free (docs/raft.md, "I/O faults"). */
                raft_fixture_io_fault(&s->f, i,
                                      (int)sim_rng_range(&s->rng, 0, 8), 1);
                s->n_io_faults++;
                break;
            }
            if (sim_io_faults_off || s->n_stopped > 0 ||
                s->apply_fault_server >= 0 || s->meta_fault_server >= 0) {
                break;
            }
            if (sim_rng_chance(&s->rng, 50)) {
                int l = sim_leader_of(s);
                if (l >= 0) {
                    s->apply_fault_server = l;
                    s->apply_fault_countdown = sim_rng_range(&s->rng, 0, 5);
                }
            } else {
                s->meta_fault_server = (int)i;
                s->meta_fault_countdown = sim_rng_range(&s->rng, 0, 3);
            }
            break;
        case 5: { /* planned leadership transfer */
            int l = sim_leader_of(s);
            if (l >= 0 && !s->transfer_pending) {
                struct raft *r = raft_fixture_get(&s->f, (unsigned)l);
                memset(&s->transfer, 0, sizeof s->transfer);
                s->transfer.data = s;
                if (raft_transfer(r, &s->transfer, 0, sim_transfer_cb) == 0) {
                    s->transfer_pending = true;
                    s->n_transfers++;
                }
            }
            break;
        }
        default: /* one-way loss for a while */
            if (raft_fixture_saturated(&s->f, i, j)) {
                raft_fixture_desaturate(&s->f, i, j);
            } else {
                raft_fixture_saturate(&s->f, i, j);
            }
            break;
    }
}

static void heal(struct sim *s)
{
    s->apply_fault_server = -1;
    s->meta_fault_server = -1;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        s->stall[i].armed = SIM_STALL_NOW;
        if (s->stall[i].on) {
            sim_stall_end(s, i);
        }
        if (!raft_fixture_alive(&s->f, i) && !s->stopped[i]) {
            sim_revive(s, i);
        }
        raft_fixture_set_network_latency(&s->f, i, 15);
        raft_fixture_set_disk_latency(&s->f, i, 10);
        raft_fixture_io_fault(&s->f, i, -1, 0);
        for (unsigned j = 0; j < N_SERVERS; j++) {
            if (i != j) {
                raft_fixture_reconnect(&s->f, i, j);
                raft_fixture_desaturate(&s->f, i, j);
                reconnected(s, i, j);
            }
        }
    }
}

static bool all_applied(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    int l = sim_leader_of(s);
    raft_index target;
    if (l < 0 || s->transfer_pending) {
        return false;
    }
    target = raft_last_index(raft_fixture_get(f, (unsigned)l));
    if (raft_commit_index(raft_fixture_get(f, (unsigned)l)) < target) {
        return false;
    }
    /* One leader that everybody follows in its term (a deposed leader of
     * an older term may still believe it leads right after healing);
     * servers stopped by an I/O fault excepted. */
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(f, i);
        if (s->stopped[i]) {
            continue;
        }
        if (raft_current_term(r) !=
                raft_current_term(raft_fixture_get(f, (unsigned)l)) ||
            (i != (unsigned)l && raft_state(r) != RAFT_FOLLOWER) ||
            raft_last_applied(r) < target) {
            return false;
        }
    }
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (!s->stopped[i] && s->pending_on[i] != 0) {
            return false;
        }
    }
    return true;
}

/* Every server stored its whole log. */
static bool all_stored(struct raft_fixture *f, void *arg)
{
    struct sim *s = arg;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(f, i);
        if (!s->stopped[i] && r->last_stored < raft_last_index(r)) {
            return false;
        }
    }
    return true;
}

void sim_converge(struct sim *s)
{
    uint8_t d0[32];
    uint64_t a0 = 0;

    bool done = false;

    heal(s);
    /* More traffic helps a follower stuck behind 0.22.1's probe of an entry
     * it compacted: the leader snapshots past it and installs (docs/raft.md,
     * failure modes), as a live cluster would. */
    for (unsigned round = 0; round < 12 && !done && s->failures == 0;
         round++) {
        done = raft_fixture_step_until(&s->f, all_applied, s, 10000);
        if (!done) {
            /* raft draws a new election timeout in [T, 2T) at every timer
             * reset; the fixture pins each server's to 1,000 + 100 * its
             * index, so two servers can stay in phase for ever: a real
             * candidate whose log is behind times out together with the
             * up-to-date follower, whose pre-vote it defeats every round
             * by bumping its term (seed 1199 after stalls were added,
             * 120 s without a leader).  Draw them again, from the seed. */
            for (unsigned i = 0; i < N_SERVERS; i++) {
                raft_fixture_set_randomized_election_timeout(
                    &s->f, i, sim_rng_range(&s->rng, 1000, 1999));
            }
            for (unsigned k = 0; k < 8; k++) {
                sim_propose_some(s);
                sim_step(s, 20);
            }
        }
    }
    if (!done) {
        sim_failf(s, "no convergence within 120 s of virtual time after healing "
                 "(pending proposals %u, leader %d, transfer pending %d)",
              s->n_pending, sim_leader_of(s), (int)s->transfer_pending);
        for (unsigned i = 0; i < N_SERVERS; i++) {
            struct raft *r = raft_fixture_get(&s->f, i);
            fprintf(stderr,
                    "sim: server %u: %s term %llu commit %llu applied %llu "
                    "last %llu\n",
                    i, raft_state_name((int)raft_state(r)),
                    (unsigned long long)raft_current_term(r),
                    (unsigned long long)raft_commit_index(r),
                    (unsigned long long)raft_last_applied(r),
                    (unsigned long long)raft_last_index(r));
        }
        return;
    }
    check_all(s);
    if (s->verbose) {
        for (unsigned i = 0; i < N_SERVERS; i++) {
            uint64_t ai, at;
            struct raft *r = raft_fixture_get(&s->f, i);
            kyufu_storage_applied(s->storage[i], &ai, &at);
            fprintf(stderr,
                    "sim: server %u: %s term %llu, raft applied %llu, last "
                    "%llu; store applied %" PRIu64 "; fsm applied %" PRIu64
                    ", skipped %" PRIu64 ", bad frames %" PRIu64 "\n",
                    i, raft_state_name((int)raft_state(r)),
                    (unsigned long long)raft_current_term(r),
                    (unsigned long long)raft_last_applied(r),
                    (unsigned long long)raft_last_index(r), ai,
                    s->fsm_state[i].n_applied, s->fsm_state[i].n_skipped,
                    s->fsm_state[i].n_bad_frames);
        }
    }
    {
        int first = -1;
        for (unsigned i = 0; i < N_SERVERS; i++) {
            uint8_t d[32];
            uint64_t a;
            int rv;
            if (s->stopped[i]) {
                continue; /* its store stopped where the fault hit */
            }
            rv = kyufu_storage_digest(s->storage[i], d, &a);
            if (rv != 0) {
                sim_failf(s, "server %u: digest: %s", i,
                      kyufu_storage_strerror(rv));
                continue;
            }
            if (first < 0) {
                memcpy(d0, d, sizeof d0);
                a0 = a;
                first = (int)i;
            } else if (a != a0 || memcmp(d, d0, sizeof d) != 0) {
                sim_failf(s, "server %u diverged: applied %" PRIu64
                         " vs server %d at %" PRIu64 ", digests %s",
                      i, a, first, a0,
                      memcmp(d, d0, sizeof d) == 0 ? "equal" : "differ");
            }
        }
    }
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (s->stopped[i]) {
            uint64_t a, t;
            kyufu_storage_applied(s->storage[i], &a, &t);
            if (a > a0) {
                sim_failf(s, "stopped server %u applied %" PRIu64
                         " > the cluster's %" PRIu64,
                      i, a, a0);
            }
            continue;
        }
        s->failures += wl_check_replica(&s->wl, s->storage[i], i);
    }
    s->failures += s->wl.n_failures;
    s->wl.n_failures = 0;
    /* Converged, nobody behind: once every server has stored what it
     * applied (a follower reports success only up to its last stored
     * entry, and an append started on a slow disk before healing, up to
     * 2,000 ms in the stall bursts, may still be in flight) and after a
     * few heartbeats (the replies that carry the followers' last index may
     * still be in flight) no leader may still keep extra log for a peer's
     * catch-up, and no deposed one either (snapshot_send.h).  A server
     * stopped for good mid-install is released only after its settle
     * time, so the check needs every server up. */
    if (s->n_stopped == 0) {
        raft_time until;
        if (!raft_fixture_step_until(&s->f, all_stored, s, 5000)) {
            sim_failf(s, "a server did not store its log within 5 s of "
                         "convergence");
        }
        until = raft_fixture_time(&s->f) + 500;
        while (raft_fixture_time(&s->f) < until && s->failures == 0) {
            sim_step(s, 1);
        }
    }
    for (unsigned i = 0; i < N_SERVERS && s->n_stopped == 0; i++) {
        const struct glue_snapshot_send *ss = &s->guard[i].snapshot_send;
        if (ss->trailing_set != ss->trailing_base) {
            sim_failf(s, "server %u still holds trailing %u (configured %u) "
                         "after convergence",
                      i, ss->trailing_set, ss->trailing_base);
        }
    }
}

/* Our own mkdtemp directory only; no fork (slow under ASan). */
static int rm_rf(const char *path)
{
    assert(strstr(path, "/kyufu-sim-") != NULL);
    return test_rm_tree(path);
}

enum scenario { RANDOM, FAILOVER, INSTALL, STALL_INSTALL };
static const char *const scenario_flag[] = {"", "--failover", "--install",
                                            "--stall-install"};

static int run_seed(uint64_t seed, unsigned steps, bool verbose,
                    enum scenario scenario)
{
    struct sim *s = calloc(1, sizeof *s);
    struct raft_configuration conf;
    char errmsg[256];
    int rv;

    assert(s != NULL);
    s->seed = seed;
    s->verbose = verbose;
    sim_rng_seed(&s->rng, seed);
    sim_rng_seed(&s->stall_rng, seed ^ UINT64_C(0x5157a11));
    wl_init(&s->wl, &s->rng);
    /* In memory where there is a tmpfs: every snapshot flushes the store
     * (fsm.c, as kyufud does), and the run time should not depend on how
     * fast a shared disk flushes.  The simulation has no power loss to
     * survive (the fixture never restarts a server). */
    {
        struct stat shm;
        const char *base = getenv("KYUFU_SIM_TMPDIR"); /* crash tests */
        if (base == NULL || base[0] == '\0') {
            base = stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode)
                       ? "/dev/shm"
                       : "/tmp";
        }
        snprintf(s->dir, sizeof s->dir, "%s/kyufu-sim-XXXXXX", base);
    }
    if (mkdtemp(s->dir) == NULL) {
        perror("mkdtemp");
        abort();
    }

    s->apply_fault_server = -1;
    s->meta_fault_server = -1;
    s->install_to = -1;
    rv = raft_fixture_init(&s->f);
    assert(rv == 0);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct kyufu_storage_options o;
        struct kyufu_fsm_hooks hooks;
        struct kyufu_proposer_limits lim;
        char path[96];
        struct raft *r;

        snprintf(path, sizeof path, "%s/s%u", s->dir, i);
        memset(&o, 0, sizeof o);
        o.path = path;
        o.map_size_bytes = (size_t)64 << 20;
        o.no_sync = true;
        rv = kyufu_storage_open(&o, &s->storage[i], errmsg, sizeof errmsg);
        if (rv != 0) {
            fprintf(stderr, "sim: storage open %s: %s\n", path, errmsg);
            abort();
        }
        applied_args[i].s = s;
        applied_args[i].i = i;
        hooks.arg = &applied_args[i];
        hooks.applied = on_applied;
        hooks.fatal = on_fatal;
        kyufu_fsm_init(&s->fsm[i], &s->fsm_state[i], s->storage[i],
                       KYUFU_FSM_SNAPSHOT_INLINE, &hooks);
        rv = raft_fixture_grow(&s->f, &s->fsm[i]);
        assert(rv == 0);
        r = raft_fixture_get(&s->f, i);
        if (getenv("KYUFU_SIM_TRACE") == NULL) {
            r->tracer = NULL; /* the fixture traces every event otherwise */
        }
        s->fsm_state[i].raft = r;
        fixture_truncate = r->io->truncate;
        r->io->truncate = sim_truncate;
        sim_install_setup(s, i);
        sim_stall_setup(s, i);
        glue__io_guard_wrap(&s->guard[i], r, on_guard_failed, &applied_args[i]);
        s->guard[i].hold_install = !sim_no_install_hold;
        s->guard[i].inject = on_guard_inject;
        /* A copy lost silently (partition, saturation) is re-sent after
         * this much virtual time. */
        s->guard[i].snapshot_send.settle_ms = sim_rng_range(&s->rng, 200, 3000);
        if (sim_no_snapshot_gate) {
            s->guard[i].snapshot_send.enabled = false;
        }
        raft_seed(r, (unsigned)(seed * 7 + i));
        raft_set_pre_vote(r, true);
        /* Low thresholds so snapshots and installs happen in every run. */
        {
            unsigned th = sim_rng_range(&s->rng, 6, 48);
            raft_set_snapshot_threshold(r, th);
            /* Trailing >= th/2: with a tiny trailing a follower can compact
             * entries the leader still probes from, and 0.22.1 then rejects
             * every probe forever (docs/raft.md, failure modes). */
            unsigned tr = sim_rng_range(&s->rng, th / 2, th);
            raft_set_snapshot_trailing(r, tr);
            if (!sim_no_trailing_hold) {
                s->guard[i].snapshot_send.trailing_base = tr;
                s->guard[i].snapshot_send.trailing_set = tr;
            }
        }
        raft_set_max_inflight_entries(r, sim_rng_range(&s->rng, 1, 64));

        kyufu_proposer__default_limits(&lim);
        lim.entries_inflight_max = sim_rng_range(&s->rng, 1, 4);
        lim.commands_per_entry_max = sim_rng_range(&s->rng, 1, 16);
        lim.queue_commands_max = 64;
        kyufu_proposer__init(&s->prop[i], r, &lim);
        s->prop[i].fatal_hook = on_proposer_fatal;
        s->prop[i].fatal_arg = &applied_args[i];
    }
    rv = raft_fixture_configuration(&s->f, N_SERVERS, &conf);
    assert(rv == 0);
    rv = raft_fixture_bootstrap(&s->f, &conf);
    assert(rv == 0);
    raft_configuration_close(&conf);
    rv = raft_fixture_start(&s->f);
    assert(rv == 0);

    for (unsigned k = 0; scenario == RANDOM && k < steps && s->failures == 0;
         k++) {
        if (sim_rng_chance(&s->rng, 60)) {
            sim_propose_some(s);
        }
        if (sim_rng_chance(&s->rng, 6)) {
            fault(s);
        }
        if (!sim_no_stalls && sim_rng_chance(&s->stall_rng, 3)) {
            sim_stall_fault(s);
        }
        sim_step(s, sim_rng_range(&s->rng, 1, 8));
    }
    if (scenario == FAILOVER) {
        sim_failover_scenario(s);
    } else if (scenario == INSTALL) {
        sim_install_scenario(s);
    } else if (scenario == STALL_INSTALL) {
        sim_stall_install_scenario(s);
    }
    if (s->failures == 0) {
        sim_converge(s);
    }

    if (verbose || s->failures > 0) {
        uint64_t snaps = 0, restores = 0, skipped = 0;
        for (unsigned i = 0; i < N_SERVERS; i++) {
            snaps += s->fsm_state[i].n_snapshots;
            restores += s->fsm_state[i].n_restores;
            skipped += s->fsm_state[i].n_restores_skipped;
        }
        fprintf(stderr,
                "sim: seed %" PRIu64 ": %zu commands, %" PRIu64
                " acked (%" PRIu64 " rejected by the ledger), %" PRIu64
                " errors, %" PRIu64 " retries; %" PRIu64 " snapshots, %" PRIu64
                " restores (%" PRIu64 " skipped); kills %u, partitions %u, "
                "io faults %u (servers stopped %u), transfers %u, latency "
                "changes %u; virtual time %llu ms\n",
                seed, s->wl.n_cmds, s->wl.n_acked, s->wl.n_rejected,
                s->wl.n_errors, s->wl.n_retries, snaps, restores, skipped,
                s->n_kills, s->n_disconnects, s->n_io_faults, s->n_stopped,
                s->n_transfers, s->n_latency,
                (unsigned long long)raft_fixture_time(&s->f));
    }

    if (sim_seed_log) {
        /* One line a seed (KYUFU_SIM_SEEDS=1): two runs diff to the first
         * seed that went another way. */
        uint64_t a = 0, t = 0, snaps = 0;
        for (unsigned i = 0; i < N_SERVERS; i++) {
            uint64_t ai, at;
            kyufu_storage_applied(s->storage[i], &ai, &at);
            a = a * 1000003 + ai;
            t = t * 1000003 + at;
            snaps += s->fsm_state[i].n_snapshots;
        }
        fprintf(stderr,
                "sim-seed %s %" PRIu64 ": failures %u, cmds %zu acked %" PRIu64
                " errors %" PRIu64 " retries %" PRIu64 ", snapshots %" PRIu64
                ", applied %" PRIx64 "/%" PRIx64 ", time %llu ms\n",
                scenario_flag[scenario], seed, s->failures, s->wl.n_cmds,
                s->wl.n_acked, s->wl.n_errors, s->wl.n_retries, snaps, a, t,
                (unsigned long long)raft_fixture_time(&s->f));
    }
    total_io_faults += s->n_io_faults;
    total_stopped += s->n_stopped;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        total_snapshots += s->fsm_state[i].n_snapshots;
        total_reordered += s->stall[i].n_appends_reordered;
        if (scenario != RANDOM) {
            continue; /* the scenarios report their own */
        }
        total_stalls += s->stall[i].n_stalls;
        total_stalls_leader += s->stall[i].n_stalls_leader;
        total_stalls_taking += s->stall[i].n_stalls_taking;
        total_stalls_installing += s->stall[i].n_stalls_installing;
        total_held += s->guard[i].n_install_held;
        total_replaced += s->guard[i].n_install_replaced;
        total_install_dropped += s->guard[i].n_install_dropped;
        total_stale_answers += s->guard[i].n_stale_answers_set;
        total_vote_results_dropped += s->guard[i].n_vote_results_dropped;
    }
    /* Teardown: a stalled server resumes (what waited is handed to raft),
     * fail what is queued, close raft (its callbacks fire). */
    for (unsigned i = 0; i < N_SERVERS; i++) {
        if (s->stall[i].on) {
            sim_stall_end(s, i);
        }
    }
    for (unsigned i = 0; i < N_SERVERS; i++) {
        kyufu_proposer__close(&s->prop[i], KYUFU_GLUE_ESHUTDOWN);
    }
    raft_fixture_close(&s->f);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        glue__io_guard_close(&s->guard[i]);
        kyufu_storage_close(s->storage[i]);
    }
    rv = s->failures == 0 ? 0 : 1;
    if (s->n_pending != 0 && rv == 0) {
        fprintf(stderr, "sim: seed %" PRIu64 ": %u proposals never answered\n",
                seed, s->n_pending);
        rv = 1;
    }
    wl_close(&s->wl);
    rm_rf(s->dir);
    free(s);
    return rv;
}

int main(int argc, char **argv)
{
    uint64_t from = 1;
    uint64_t n = 200;
    unsigned steps = SIM_ASAN ? 60 : 400;
    bool single = false;
    enum scenario only = RANDOM; /* RANDOM: all, else that one alone */
    uint64_t n_failover = 20;
    uint64_t n_install = SIM_ASAN ? 2 : 10; /* ~15 s CPU each under ASan */
    uint64_t n_stall_install = SIM_ASAN ? 2 : 20; /* ~35 s CPU each under ASan */
    unsigned failed = 0;
    bool no_scenarios = false;

    if (!SIM_ASAN) {
        sim_crash_reporter_install();
    }
    sim_seed_log = getenv("KYUFU_SIM_SEEDS") != NULL;
    sim_trace_open();
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
            n = 1;
            single = true;
        } else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            n = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            from = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--io-faults-anywhere") == 0) {
            sim_io_faults_anywhere = true;
        } else if (strcmp(argv[i], "--failover") == 0) {
            only = FAILOVER;
        } else if (strcmp(argv[i], "--install") == 0) {
            only = INSTALL;
        } else if (strcmp(argv[i], "--stall-install") == 0) {
            only = STALL_INSTALL;
        } else if (strcmp(argv[i], "--no-scenarios") == 0) {
            no_scenarios = true;
        } else if (strcmp(argv[i], "--no-install-hold") == 0) {
            sim_no_install_hold = true;
        } else if (strcmp(argv[i], "--install-fast") == 0) {
            sim_install_fast = true;
        } else if (strcmp(argv[i], "--no-stalls") == 0) {
            sim_no_stalls = true;
        } else if (strcmp(argv[i], "--no-io-faults") == 0) {
            sim_io_faults_off = true;
        } else if (strcmp(argv[i], "--no-snapshot-gate") == 0) {
            sim_no_snapshot_gate = true;
        } else if (strcmp(argv[i], "--no-trailing-hold") == 0) {
            sim_no_trailing_hold = true;
        } else if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) {
            steps = (unsigned)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr,
                    "usage: %s [--seed S | --seeds N --from S] [--steps K] "
                    "[--io-faults-anywhere | --no-io-faults] [--no-stalls] "
                    "[--failover | --install | --stall-install | --no-scenarios] "
                    "[--no-snapshot-gate] [--no-trailing-hold] "
                    "[--no-install-hold] [--install-fast]\n",
                    argv[0]);
            return 2;
        }
    }
    for (uint64_t seed = from; only == RANDOM && seed < from + n; seed++) {
        if (run_seed(seed, steps, single, RANDOM) != 0) {
            failed++;
            fprintf(stderr,
                    "sim: seed %" PRIu64 " FAILED; replay with: %s --seed %" PRIu64
                    " --steps %u\n",
                    seed, argv[0], seed, steps);
        }
    }
    /* The scenarios: by default on their own seeds after the others. */
    for (enum scenario sc = FAILOVER; sc <= STALL_INSTALL; sc++) {
        uint64_t ns = sc == FAILOVER  ? n_failover
                      : sc == INSTALL ? n_install
                                      : n_stall_install;
        unsigned sc_failed = 0;
        if (only != sc && (only != RANDOM || single || no_scenarios)) {
            continue;
        }
        if (only == sc) {
            ns = n;
        }
        for (uint64_t seed = from; seed < from + ns; seed++) {
            if (run_seed(seed, steps, single, sc) != 0) {
                sc_failed++;
                fprintf(stderr,
                        "sim: %s seed %" PRIu64 " FAILED; replay with: "
                        "%s %s%s --seed %" PRIu64 "\n",
                        scenario_flag[sc] + 2, seed, argv[0],
                        scenario_flag[sc],
                        sc == INSTALL && sim_install_fast ? " --install-fast"
                                                          : "",
                        seed);
            }
        }
        if (sc == FAILOVER) {
            sim_failover_report(ns, sc_failed);
        } else if (sc == INSTALL) {
            sim_install_report(ns, sc_failed);
        } else if (!sim_stall_install_report(ns, sc_failed)) {
            sc_failed++;
        }
        failed += sc_failed;
    }
    printf("sim: %" PRIu64 " seeds from %" PRIu64 ", %u steps each: %u failed "
           "(%lu I/O faults injected, %lu servers stopped by one, %lu "
           "snapshots, %lu appends put back in order; random model: %lu "
           "stalls (%lu of a leader, %lu during its own snapshot's put, "
           "%lu during an install's), InstallSnapshots held during a local "
           "snapshot %lu (%lu replaced by a newer), dropped during an "
           "install %lu; answers to an older term's AppendEntries whose "
           "last_log_index was set %lu; RequestVote results dropped by "
           "non-candidates %lu)\n",
           n, from, steps, failed, total_io_faults, total_stopped,
           total_snapshots, total_reordered, total_stalls,
           total_stalls_leader, total_stalls_taking, total_stalls_installing,
           total_held, total_replaced, total_install_dropped,
           total_stale_answers, total_vote_results_dropped);
    return failed == 0 ? 0 : 1;
}
