/* raft-glue internals shared by glue.c and membership.c: the glue's own
 * state (one struct, private to raft-glue) and the two calls that cross
 * between them.  Not for other modules: they use glue.h. */
#ifndef KYUFU_GLUE_INTERNAL_H
#define KYUFU_GLUE_INTERNAL_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>

#include "crash_evidence.h"
#include "dial_policy.h"
#include "fsm.h"
#include "glue.h"
#include "glue_limits.h"
#include "io_guard.h"
#include "proposer.h"
#include "snapshot_io.h"
#include "store_sync.h"
#include "transport.h"

struct kyufu_glue
{
    uv_loop_t *loop;
    struct raft raft;
    struct glue_snapshot_io sio; /* holds the raft_io */
    struct glue_transport transport;
    struct raft_tracer uv_tracer;
    struct glue_io_guard guard; /* wraps sio.io's durable writes */
    struct raft_fsm fsm;
    struct kyufu_fsm fsm_state;
    struct kyufu_proposer proposer;
    struct kyufu_storage *storage;
    struct glue_store_sync ssync; /* flushes the store off the loop */
    struct kyufu_glue_config config; /* strings below are our copies */
    char *address;
    char *raft_dir;
    uv_timer_t poll;
    kyufu_glue_state_cb state_cb;
    void *state_arg;
    int last_state;
    raft_id last_leader;
    bool raft_inited;
    bool started;
    uint64_t store_ahead; /* at start: store applied - log last, or 0 */
    bool closing;
    bool raft_closed;
    struct kyufu_glue *next_closed; /* kyufu_glue_free_closed's list */
    int fatal;              /* 0 or a KYUFU_GLUE_E* code */
    bool fatal_reported;
    char fatal_msg[256];
    /* One leadership transfer at a time. */
    struct kyufu_glue_transfer *transfer;
    struct raft_transfer transfer_raft;
    bool transfer_raft_pending;
    unsigned transfer_attempts;
    uint64_t n_config_repairs; /* conf_track.h, from the poll */
    uint64_t transfer_target;
    uint64_t transfer_deadline;
    uint64_t transfer_wait_until; /* for the target to catch up (glue.c) */
    /* One membership change at a time (kyufu_glue_add/remove). */
    struct kyufu_glue_change *change;
    struct raft_change change_raft;
    bool change_raft_pending; /* change_raft handed to raft */
    uint64_t change_id;
    unsigned change_attempts;
    int change_step;          /* enum change_step */
    uint64_t change_deadline; /* uv_now bound of a join's catch-up, or of
                                 a removal's probe */
    struct raft_barrier change_barrier; /* a removal's probe */
    uint64_t change_probe_index;        /* the probe entry's index */
    kyufu_glue_close_cb close_cb;
    void *close_arg;
    kyufu_glue_event_cb event_cb;
    void *event_arg;
    kyufu_glue_apply_cb apply_cb;
    void *apply_arg;
    kyufu_glue_append_cb append_cb;
    void *append_arg;
    kyufu_glue_compacted_cb compacted_cb;
    void *compacted_arg;
    /* Loop time at which an open Raft stream with a peer last ended from
     * the TCP side (EOF, reset) or a connect to it was refused: the
     * availability ledger's evidence of a crash (kyufu_glue_peer_lost_ms). */
    struct {
        uint64_t id;
        uint64_t ms;
    } lost[KYUFU_GLUE_PEERS_TRACKED_MAX];
    /* A closed connection with the leader starts an election early
     * (crash_evidence.h); driven by the poll timer. */
    struct glue_crash_evidence crash;
    /* Removed members are not dialled (dial_policy.h). */
    struct glue_dial_policy dial;
};

/* 0 when this node can start a leader's operation: open, not failed, the
 * leader; else SHUTDOWN, the fatal error or NOTLEADER (glue.c). */
int glue__leader_ready(struct kyufu_glue *g);

/* A membership change's step driven by the poll timer (membership.c):
 * a join's catch-up, a removal's probe count.  Nothing when none is out. */
void glue__change_poll(struct kyufu_glue *g);

/* The membership change out ends with status (membership.c; glue.c calls
 * it at close for a change that waits on the poll timer). */
void glue__change_done(struct kyufu_glue *g, int status);

/* raft's return code as a KYUFU_GLUE_E* code (glue.c). */
int glue__raft_to_glue(int rv);

/* A failed raft client call as a KYUFU_GLUE_E* code; the glue turns fatal
 * unless raft refused it cleanly (glue.c). */
int glue__raft_call_failed(struct kyufu_glue *g, const char *call, int rv);

#endif /* KYUFU_GLUE_INTERNAL_H */
