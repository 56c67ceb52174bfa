/* The simulation's ledger workload: generates commands from a seeded PRNG,
 * records every acknowledged result, and checks at the end that each
 * acknowledged command is in every replica's state exactly once. */
#ifndef KYUFU_SIM_WORKLOAD_H
#define KYUFU_SIM_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kyufu/v1/ledger.pb-c.h"
#include "storage.h"

/* xorshift64*: the only randomness of the simulation. */
struct sim_rng
{
    uint64_t s;
};
void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [lo, hi]. */
unsigned sim_rng_range(struct sim_rng *r, unsigned lo, unsigned hi);
bool sim_rng_chance(struct sim_rng *r, unsigned percent);

#define WL_CLIENTS 4

struct wl_cmd
{
    uint8_t *bytes; /* packed Command */
    size_t len;
    int kind;       /* Command body case */
    unsigned client;
    uint64_t seq;
    int setup_step; /* >= 0 for a setup command */
    bool keyless;   /* an identity command (BootstrapAdmin): a node's key,
                     * no session entry, so a retry is applied again (and
                     * refused); outside the exactly-once checks */
    unsigned n_acks;
    unsigned n_inflight;
    uint8_t *result; /* packed first acknowledged CommandResult */
    size_t result_len;
    Kyufu__V1__CommandResult *first;
};

struct wl_app
{
    uint64_t id;
    int program; /* 0: P1, 1: P2 */
    int status;  /* last known ApplicationStatus */
};

struct workload
{
    struct sim_rng *rng;
    struct wl_cmd *cmds;
    size_t n_cmds;
    size_t cap_cmds;
    uint64_t next_seq[WL_CLIENTS];
    uint64_t node_seq;       /* keys of the keyless commands (kyufud-sim) */
    int setup_done;          /* setup steps acknowledged OK */
    int setup_cmd;           /* index of the current setup command, or -1 */
    char (*households)[16];
    size_t n_households;
    unsigned next_household;
    struct wl_app *apps;
    size_t n_apps;
    uint64_t *batches;       /* created, maybe not confirmed */
    size_t n_batches;
    unsigned n_failures;     /* check failures; the seed fails when > 0 */
    uint64_t n_acked;
    uint64_t n_rejected;     /* acknowledged with a non-OK code */
    uint64_t n_errors;       /* propose callbacks with an error */
    uint64_t n_retries;
};

void wl_init(struct workload *w, struct sim_rng *rng);
void wl_close(struct workload *w);

/* True once the bootstrap commands (staff, programs) are all applied. */
bool wl_setup_finished(const struct workload *w);

/* Index of the next command to propose at leader-stamped time now_ms: a new
 * one, a setup step, or a retry of an earlier one (same key, same bytes);
 * SIZE_MAX when the next setup step still waits for its answer. */
size_t wl_next(struct workload *w, int64_t now_ms);

/* A propose callback for cmds[i] returned status (0: result, owned by the
 * callee). */
void wl_on_result(struct workload *w, size_t i, int status,
                  Kyufu__V1__CommandResult *result);

/* End checks against one converged replica.  Returns the number of
 * failures found (also added to w->n_failures); prints each. */
unsigned wl_check_replica(struct workload *w, struct kyufu_storage *s,
                          unsigned server);

#endif /* KYUFU_SIM_WORKLOAD_H */
