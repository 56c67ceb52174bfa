/* kyufu raft-glue on raft_uv: contract in glue.h, design in docs/raft.md.
 *
 * Happy path: init (check the config, raft_uv + mutual-TLS transport + deferred
 * snapshot wrapper, raft_init, every option set explicitly) → bootstrap once
 * → start (raft_start, refuse when storage applied entries the log lost) →
 * propose through the group committer → close.
 *
 * A poll timer (KYUFU_STATE_POLL_MS) watches raft's role and leader to fire
 * the state callback and drives leadership transfers.  Failure modes: a
 * fatal storage error or a failed raft_uv write (reported through the
 * raft_uv tracer, since 0.22.1 would otherwise retry it forever) makes the
 * glue fatal: proposals fail with STORAGE/IO and the state callback fires so
 * the node stops; nothing is retried. */
#include "glue_internal.h"

#include <assert.h>
#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_track.h"
#include "fsm.h"
#include "glue_limits.h"
#include "io_guard.h"
#include "member_address.h"
#include "offline_io.h"
#include "proposer.h"
#include "segment_check.h"
#include "snapshot_io.h"
#include "transport.h"

/* struct kyufu_glue: glue_internal.h (membership.c shares it). */

const char *kyufu_glue_strerror(int rv)
{
    switch (rv) {
#define KYUFU_GLUE__STR(name, value, text) \
    case value:                            \
        return text;
        KYUFU_GLUE_ERRORS(KYUFU_GLUE__STR)
#undef KYUFU_GLUE__STR
        default:
            return "unknown raft-glue error";
    }
}

#define errf glue__rio_errf

int glue__raft_to_glue(int rv)
{
    switch (rv) {
        case 0:
            return 0;
        case RAFT_NOMEM:
            return KYUFU_GLUE_ENOMEM;
        case RAFT_NOTLEADER:
            return KYUFU_GLUE_ENOTLEADER;
        case RAFT_LEADERSHIPLOST:
            return KYUFU_GLUE_ELEADERSHIPLOST;
        case RAFT_SHUTDOWN:
        case RAFT_CANCELED:
            return KYUFU_GLUE_ESHUTDOWN;
        case RAFT_TOOBIG:
            return KYUFU_GLUE_ETOOBIG;
        case RAFT_BUSY:
        case RAFT_CANTCHANGE:
            return KYUFU_GLUE_EBUSY;
        case RAFT_BADID:
        case RAFT_NOTFOUND:
            return KYUFU_GLUE_ENOTFOUND;
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_BADROLE:
        case RAFT_INVALID:
            return KYUFU_GLUE_EINVALID;
        case RAFT_CANTBOOTSTRAP:
            return KYUFU_GLUE_ECONFIG;
        default:
            return KYUFU_GLUE_EIO;
    }
}

/* -------------------------------------------------------------- fatal */

/* Record the first fatal error.  May run inside a raft call or callback:
 * the proposer refuses new commands at once, but its queue is failed (user
 * callbacks) only from the poll timer, outside raft. */
static void set_fatal(struct kyufu_glue *g, int rv, const char *msg)
{
    if (g->fatal != 0) {
        return;
    }
    g->fatal = rv;
    snprintf(g->fatal_msg, sizeof g->fatal_msg, "%s", msg);
    if (g->proposer.fatal_status == 0) {
        g->proposer.fatal_status = rv;
    }
}

static void proposer_fatal(void *arg, int status, const char *msg)
{
    set_fatal(arg, status, msg);
}

static void guard_failed(struct glue_io_guard *gd, const char *call, int rv)
{
    struct kyufu_glue *g = gd->data;
    char msg[200];
    snprintf(msg, sizeof msg, "raft_uv %.16s failed: %.40s (%d): %.100s",
             call, raft_strerror(rv), rv, g->sio.io.errmsg);
    set_fatal(g, KYUFU_GLUE_EIO, msg);
}

static void store_sync_failed(void *arg, const char *errmsg)
{
    char msg[200];
    snprintf(msg, sizeof msg, "store sync failed: %.170s", errmsg);
    set_fatal(arg, KYUFU_GLUE_EIO, msg);
}

/* Errors with which a raft client call refuses up front, before it changes
 * any state (0.22.1 client.c ClientSubmit, legacy.c raft_assign and the
 * configuration checks of raft_add/raft_remove).  Any other error (IOERR,
 * NOMEM, ...) can come after the raft core appended the entry to its
 * in-memory log while the disk append, a send or an apply failed: raft's
 * memory and disk may disagree, and raft_assign may still hold our request.
 * Such a failure is fatal: the node stops and restarts from disk. */
static bool raft_refused_cleanly(int rv)
{
    switch (rv) {
        case RAFT_NOTLEADER:
        case RAFT_NOSPACE:
        case RAFT_CANTCHANGE:
        case RAFT_BADID:
        case RAFT_NOTFOUND:
        case RAFT_DUPLICATEID:
        case RAFT_DUPLICATEADDRESS:
        case RAFT_BADROLE:
        case RAFT_INVALID:
            return true;
        default:
            return false;
    }
}

/* Map a failed raft client call, making the glue fatal unless it was
 * refused cleanly. */
int glue__raft_call_failed(struct kyufu_glue *g, const char *call, int rv)
{
    char msg[200];
    assert(rv != 0);
    if (raft_refused_cleanly(rv)) {
        return glue__raft_to_glue(rv);
    }
    snprintf(msg, sizeof msg,
             "%s failed: %s (%d): raft's in-memory log may differ from its "
             "disk log",
             call, raft_strerror(rv), rv);
    set_fatal(g, KYUFU_GLUE_EIO, msg);
    return KYUFU_GLUE_EIO;
}

static void fsm_applied(void *arg,
                        uint64_t index,
                        uint64_t term,
                        struct kyufu_storage_results *results)
{
    struct kyufu_glue *g = arg;
    if (g->apply_cb != NULL) {
        g->apply_cb(g->apply_arg, index, term, g->fsm_state.apply_ns_last);
    }
    kyufu_proposer__applied(&g->proposer, index, term, results);
}

static void fsm_fatal(void *arg, int storage_rv, const char *errmsg)
{
    struct kyufu_glue *g = arg;
    /* CORRUPT: an entry or snapshot the FSM refuses (a frame term below the
     * applied term, a snapshot describing a broken ledger) or a damaged
     * store; a restart would meet the same data, so the node says so
     * (kyufud exits 4 and is not restarted in a loop). */
    /* NEWER: an entry or snapshot from a command set this build does not
     * know (docs/operations.md "Upgrades"); it stops unapplied, exit 4. */
    set_fatal(g, storage_rv == KYUFU_STORAGE_ECORRUPT ? KYUFU_GLUE_ECORRUPT
                 : storage_rv == KYUFU_STORAGE_ENEWER ? KYUFU_GLUE_ENEWER
                                                      : KYUFU_GLUE_ESTORAGE,
              errmsg);
}

/* raft_uv tracer: only watches for the failed-write retries of 0.22.1
 * (uv_append.c "retry failed write", uv_prepare.c "retry creating segment",
 * uv_snapshot.c "retry snapshot write"): kyufu never retries a durable
 * write, so the first one makes the glue fatal.  Everything else is
 * dropped. */
static void uv_tracer_emit(struct raft_tracer *t, int type, const void *info)
{
    const struct raft_tracer_info *i = info;
    struct kyufu_glue *g = t->impl;
    if (type != RAFT_TRACER_DIAGNOSTIC || i == NULL ||
        i->diagnostic.message == NULL) {
        return;
    }
    if (strncmp(i->diagnostic.message, "retry ", 6) == 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "raft_uv disk write failed: %s",
                 i->diagnostic.message);
        set_fatal(g, KYUFU_GLUE_EIO, msg);
    }
}

/* --------------------------------------------------------------- events */

static void snapshot_send_event(struct glue_snapshot_send *ss,
                                const struct glue_snapshot_send_event *e)
{
    struct kyufu_glue *g = ss->event_arg;
    struct kyufu_glue_event out;
    static const char *const what[] = {
        [GLUE_SNAPSHOT_SEND_STARTED] = "snapshot send started",
        [GLUE_SNAPSHOT_SEND_WRITTEN] = "snapshot sent",
        [GLUE_SNAPSHOT_SEND_INSTALLED] = "snapshot installed by peer",
        [GLUE_SNAPSHOT_SEND_FAILED] = "snapshot send failed",
        [GLUE_SNAPSHOT_SEND_REOPENED] = "snapshot send reopened",
    };
    if (g->event_cb == NULL) {
        return;
    }
    memset(&out, 0, sizeof out);
    out.what = what[e->kind];
    out.peer = e->peer;
    out.index = e->index;
    out.term = e->term;
    out.bytes = e->bytes;
    out.ms = e->ms;
    out.reason = e->reason;
    g->event_cb(g->event_arg, &out);
}

void kyufu_glue_set_event_cb(struct kyufu_glue *g,
                             kyufu_glue_event_cb cb,
                             void *arg)
{
    g->event_cb = cb;
    g->event_arg = arg;
}

/* A raft stream to or from a peer was (re)established: a snapshot copy
 * written to it before may have been lost with the old one. */
static void transport_connected(struct glue_transport *gt, raft_id id)
{
    struct kyufu_glue *g = gt->data;
    if (g->raft_inited) {
        glue__snapshot_send_connected(&g->guard.snapshot_send, id);
    }
}

/* The connection with our leader closed from the TCP side: an election
 * soon (crash_evidence.h), announced as an event. */
static void crash_evidence(struct kyufu_glue *g, raft_id id)
{
    uint64_t delay = 0;
    if (!g->started || g->closing ||
        !glue__crash_evidence_lost(&g->crash, &g->raft, id, uv_now(g->loop), &delay)) {
        return;
    }
    if (g->event_cb != NULL) {
        struct kyufu_glue_event e;
        memset(&e, 0, sizeof e);
        e.what = "raft leader connection lost: early election";
        e.peer = id;
        e.term = raft_current_term(&g->raft);
        e.ms = delay;
        g->event_cb(g->event_arg, &e);
    }
}

static void transport_lost(struct glue_transport *gt, raft_id id)
{
    struct kyufu_glue *g = gt->data;
    size_t free_slot = KYUFU_GLUE_PEERS_TRACKED_MAX;
    if (g->raft_inited) {
        crash_evidence(g, id);
    }
    for (size_t i = 0; i < KYUFU_GLUE_PEERS_TRACKED_MAX; i++) {
        if (g->lost[i].id == id) {
            g->lost[i].ms = uv_now(g->loop);
            return;
        }
        if (g->lost[i].id == 0 && free_slot == KYUFU_GLUE_PEERS_TRACKED_MAX) {
            free_slot = i;
        }
    }
    if (free_slot < KYUFU_GLUE_PEERS_TRACKED_MAX && id != 0) {
        g->lost[free_slot].id = id;
        g->lost[free_slot].ms = uv_now(g->loop);
    }
}

uint64_t kyufu_glue_peer_lost_ms(struct kyufu_glue *g, uint64_t id)
{
    for (size_t i = 0; i < KYUFU_GLUE_PEERS_TRACKED_MAX; i++) {
        if (g->lost[i].id == id && id != 0) {
            return g->lost[i].ms;
        }
    }
    return 0;
}

/* raft_uv wants to (re)connect to peer id: not if it is a removed member
 * (dial_policy.h). */
static bool transport_dial_ok(struct glue_transport *gt, raft_id id)
{
    struct kyufu_glue *g = gt->data;
    return !g->raft_inited || glue__dial_ok(&g->dial, &g->raft.configuration, id);
}

/* A Raft connection refused during its handshake (already rate-limited). */
static void transport_refused(struct glue_transport *gt,
                              const struct glue_peer_refusal *r)
{
    struct kyufu_glue *g = gt->data;
    struct kyufu_glue_event e;
    if (g->event_cb == NULL) {
        return;
    }
    memset(&e, 0, sizeof e);
    if (r->revoked) {
        e.what = "raft peer closed: certificate revoked";
    } else {
        e.what = "raft peer refused";
    }
    e.peer = r->claimed_id;
    e.reason = r->reason;
    e.remote = r->remote;
    e.subject = r->subject;
    e.inbound = r->inbound;
    e.suppressed = r->suppressed;
    g->event_cb(g->event_arg, &e);
}

int kyufu_glue_reload_tls(struct kyufu_glue *g, char *errmsg, size_t errmsg_len)
{
    return glue__transport_reload_tls(&g->transport, errmsg, errmsg_len) == 0
               ? 0
               : KYUFU_GLUE_ECONFIG;
}

int kyufu_glue_fatal(struct kyufu_glue *g, char *errmsg, size_t errmsg_len)
{
    if (g->fatal != 0) {
        errf(errmsg, errmsg_len, "%s", g->fatal_msg);
    }
    return g->fatal;
}

/* --------------------------------------------------------------- config */

static int check_config(struct kyufu_glue_config *c,
                        char *errmsg,
                        size_t errmsg_len)
{
    if (c->id == 0) {
        errf(errmsg, errmsg_len, "config: id must be > 0");
        return KYUFU_GLUE_ECONFIG;
    }
    if (c->address == NULL || c->address[0] == '\0') {
        errf(errmsg, errmsg_len, "config: address is required");
        return KYUFU_GLUE_ECONFIG;
    }
    if (c->raft_dir == NULL || c->raft_dir[0] == '\0') {
        errf(errmsg, errmsg_len, "config: raft_dir is required");
        return KYUFU_GLUE_ECONFIG;
    }
    char why[200];
    enum kyufu_glue_option bad;
    if (kyufu_glue_check_options(c, &bad, NULL, why, sizeof why) != 0) {
        errf(errmsg, errmsg_len, "config: %s: %s",
             kyufu_glue_option_bounds(bad)->field, why);
        return KYUFU_GLUE_ECONFIG;
    }
    return 0;
}

/* Every raft and raft_uv option, explicitly (docs/raft.md lists why).
 * raft_uv's block size is left to its probe of the file system. */
static int set_uv_options(struct kyufu_glue *g, char *errmsg,
                          size_t errmsg_len)
{
    int rv;
    raft_uv_set_tracer(&g->sio.io, &g->uv_tracer);
    raft_uv_set_segment_size(&g->sio.io, KYUFU_SEGMENT_SIZE_BYTES);
    raft_uv_set_disk_retry(&g->sio.io, KYUFU_DISK_RETRY_MS);
    raft_uv_set_connect_retry_delay(&g->sio.io, KYUFU_CONNECT_RETRY_DELAY_MS);
    raft_uv_set_auto_recovery(&g->sio.io, false);
    rv = raft_uv_set_snapshot_compression(&g->sio.io, false);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_uv snapshot compression: %s",
             raft_strerror(rv));
        return KYUFU_GLUE_ECONFIG;
    }
    return 0;
}

static void set_options(struct kyufu_glue *g)
{
    struct raft *r = &g->raft;
    const struct kyufu_glue_config *c = &g->config;

    r->tracer = NULL; /* 0.22.1 formats every trace otherwise: ~15% CPU */
    raft_set_election_timeout(r, c->election_timeout_ms);
    raft_set_heartbeat_timeout(r, c->heartbeat_timeout_ms);
    raft_set_install_snapshot_timeout(r, KYUFU_INSTALL_SNAPSHOT_TIMEOUT_MS);
    raft_set_pre_vote(r, !c->pre_vote_disabled);
    /* Acting on crash evidence is safe only with pre-vote (crash_evidence.h). */
    g->crash.enabled = !c->pre_vote_disabled && !c->crash_election_disabled;
    raft_set_max_catch_up_rounds(r, KYUFU_MAX_CATCH_UP_ROUNDS);
    raft_set_max_catch_up_round_duration(r,
                                         KYUFU_MAX_CATCH_UP_ROUND_DURATION_MS);
    raft_set_max_inflight_entries(r, c->max_inflight_entries);
    raft_set_capacity_threshold(r, 0); /* see limits.h, segment size */
    raft_set_snapshot_threshold(r, c->snapshot_threshold_entries);
    raft_set_snapshot_trailing(r, c->snapshot_trailing_entries);
    /* The floor of the spacing by size (fsm.h, docs/raft.md). */
    g->fsm_state.threshold_floor = c->snapshot_threshold_entries;
    g->fsm_state.threshold_set = c->snapshot_threshold_entries;
}

int kyufu_glue_init(uv_loop_t *loop,
                    const struct kyufu_glue_config *config,
                    struct kyufu_storage *storage,
                    struct kyufu_glue **out,
                    char *errmsg,
                    size_t errmsg_len)
{
    struct kyufu_glue *g;
    struct kyufu_proposer_limits limits;
    struct kyufu_fsm_hooks hooks;
    char tls_err[256] = "";
    int rv;

    assert(out != NULL);
    *out = NULL;
    if (loop == NULL || config == NULL || storage == NULL) {
        errf(errmsg, errmsg_len, "init: loop, config and storage required");
        return KYUFU_GLUE_EINVALID;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        rv = KYUFU_GLUE_ENOMEM;
        goto err;
    }
    g->loop = loop;
    g->storage = storage;
    g->config = *config;
    rv = check_config(&g->config, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_alloc;
    }
    g->address = strdup(config->address);
    g->raft_dir = strdup(config->raft_dir);
    if (g->address == NULL || g->raft_dir == NULL) {
        rv = KYUFU_GLUE_ENOMEM;
        goto err_after_strings;
    }
    g->config.address = g->address;
    g->config.raft_dir = g->raft_dir;

    rv = glue__transport_init(&g->transport, loop, config->tls_cert_file,
                              config->tls_key_file, config->tls_ca_file,
                              config->tls_crl_file, tls_err,
                              sizeof tls_err);
    g->transport.connected = transport_connected;
    g->transport.lost = transport_lost;
    g->transport.refused = transport_refused;
    g->transport.dial_ok = transport_dial_ok;
    g->transport.allowed = config->peer_allowed;
    g->transport.allowed_arg = config->peer_allowed_arg;
    g->transport.data = g;
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft TLS: %s", tls_err);
        rv = KYUFU_GLUE_ECONFIG;
        goto err_after_strings;
    }
    g->sio.io.version = 2; /* 0.22.1 needs the struct versions set */
    rv = raft_uv_init(&g->sio.io, loop, g->raft_dir, &g->transport.t);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_uv_init %s: %s", g->raft_dir,
             g->sio.io.errmsg);
        rv = glue__raft_to_glue(rv);
        goto err_after_transport;
    }

    hooks.arg = g;
    hooks.applied = fsm_applied;
    hooks.fatal = fsm_fatal;
    kyufu_fsm_init(&g->fsm, &g->fsm_state, storage,
                   KYUFU_FSM_SNAPSHOT_DEFERRED, &hooks);
    glue__snapshot_io_wrap(&g->sio, &g->fsm_state, loop, g->raft_dir);
    rv = set_uv_options(g, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_io;
    }

    g->uv_tracer.impl = g;
    g->uv_tracer.version = 2;
    g->uv_tracer.emit = uv_tracer_emit;

    rv = raft_init(&g->raft, &g->sio.io, &g->fsm, g->config.id, g->address);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "raft_init: %s", raft_errmsg(&g->raft));
        rv = glue__raft_to_glue(rv);
        goto err_after_io;
    }
    g->raft_inited = true;
    g->fsm_state.raft = &g->raft;
    glue__io_guard_wrap(&g->guard, &g->raft, guard_failed, g);
    g->guard.snapshot_send.settle_ms = KYUFU_SNAPSHOT_SEND_SETTLE_MS;
    g->guard.snapshot_send.settle_ms_per_mib =
        KYUFU_SNAPSHOT_SEND_SETTLE_MS_PER_MIB;
    g->guard.snapshot_send.event = snapshot_send_event;
    g->guard.snapshot_send.trailing_base = g->config.snapshot_trailing_entries;
    g->guard.snapshot_send.trailing_set = g->config.snapshot_trailing_entries;
    g->guard.snapshot_send.event_arg = g;

    kyufu_proposer__default_limits(&limits);
    limits.commands_per_entry_max = g->config.group_commit_commands_max;
    limits.entries_inflight_max = g->config.group_commit_entries_inflight;
    kyufu_proposer__init(&g->proposer, &g->raft, &limits);
    g->proposer.storage = storage; /* seals entries when it has a key */
    g->proposer.fatal_hook = proposer_fatal;
    g->proposer.fatal_arg = g;

    set_options(g);
    rv = uv_timer_init(loop, &g->poll);
    assert(rv == 0);
    g->poll.data = g;
    g->last_state = -1;
    glue__store_sync_init(&g->ssync, loop, storage, store_sync_failed, g);
    *out = g;
    return 0;

err_after_io:
    raft_uv_close(&g->sio.io);
err_after_transport:
    glue__transport_close(&g->transport);
err_after_strings:
    free(g->address);
    free(g->raft_dir);
err_after_alloc:
    free(g);
err:
    assert(rv != 0);
    return rv;
}

/* ------------------------------------------------------------ bootstrap */

int kyufu_glue_bootstrap(struct kyufu_glue *g,
                         const struct kyufu_glue_peer *peers,
                         size_t n_peers,
                         char *errmsg,
                         size_t errmsg_len)
{
    struct raft_configuration conf;
    int rv;

    if (g->started || n_peers == 0 || peers == NULL) {
        errf(errmsg, errmsg_len, "bootstrap: needs peers, before start");
        return KYUFU_GLUE_EINVALID;
    }
    raft_configuration_init(&conf);
    for (size_t i = 0; i < n_peers; i++) {
        rv = raft_configuration_add(&conf, peers[i].id, peers[i].address,
                                    RAFT_VOTER);
        if (rv != 0) {
            errf(errmsg, errmsg_len, "bootstrap: peer %llu (%s): %s",
                 (unsigned long long)peers[i].id, peers[i].address,
                 raft_strerror(rv));
            raft_configuration_close(&conf);
            return rv == RAFT_NOMEM ? KYUFU_GLUE_ENOMEM : KYUFU_GLUE_ECONFIG;
        }
    }
    rv = raft_bootstrap(&g->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0) {
        errf(errmsg, errmsg_len, "bootstrap %s: %s", g->raft_dir,
             rv == RAFT_CANTBOOTSTRAP ? "the directory already holds a cluster"
                                      : raft_errmsg(&g->raft));
        return rv == RAFT_CANTBOOTSTRAP ? KYUFU_GLUE_ECONFIG
                                        : glue__raft_to_glue(rv);
    }
    return 0;
}

/* ---------------------------------------------------------------- state */

static void transfer_poll(struct kyufu_glue *g);

/* Ticks raft_uv does not give in time (true when one was delivered):
 * - crash evidence: an early election is due (crash_evidence.h);
 * - a follower's or candidate's election timer has expired but raft_uv's
 *   tick (every heartbeat_timeout ms) has not come yet: the election
 *   starts within this poll's period instead of up to a heartbeat later
 *   (raft_timeout() is raft's own expiry; io_guard.h says why only these
 *   two states get extra ticks). */
static bool timer_poll(struct kyufu_glue *g)
{
    struct raft *r = &g->raft;
    uint64_t now = uv_now(g->loop);
    int state = (int)raft_state(r);
    bool due;
    if (g->fatal != 0 || (state != RAFT_FOLLOWER && state != RAFT_CANDIDATE)) {
        return false;
    }
    if (g->crash.enabled && glue__crash_evidence_silence(r, now)) {
        g->crash.n_silences++;
    }
    due = glue__crash_evidence_poll(&g->crash, r, now);
    if (!due && now < raft_timeout(r)) {
        return false;
    }
    return glue__io_guard_tick(&g->sio.io);
}

/* Outside raft's event handling: a configuration entry raft still marks
 * uncommitted though it is applied (conf_track.h) is marked committed. */
static void conf_poll(struct kyufu_glue *g)
{
    struct kyufu_glue_event e;
    raft_index index = 0;
    int rv = glue__conf_repair(&g->raft, &index);
    if (rv != 1) {
        return; /* nothing to do, or no memory: the next poll retries */
    }
    g->n_config_repairs++;
    if (g->event_cb == NULL) {
        return;
    }
    memset(&e, 0, sizeof e);
    e.what = "raft configuration repaired";
    e.index = index;
    e.reason = "the configuration entry was applied but raft still marked "
               "it uncommitted (docs/raft.md, \"Configuration entries and "
               "snapshots\"); membership changes were refused until now";
    g->event_cb(g->event_arg, &e);
}

static void poll_cb(uv_timer_t *t)
{
    struct kyufu_glue *g = t->data;
    raft_id leader;
    const char *address;
    int state;

    if (g->closing) {
        return;
    }
    state = (int)raft_state(&g->raft);
    raft_leader(&g->raft, &leader, &address);
    if (g->transfer != NULL) {
        transfer_poll(g);
    }
    if (g->fatal == 0) {
        conf_poll(g);
    }
    if (g->change != NULL) {
        glue__change_poll(g);
    }
    if (timer_poll(g)) {
        state = (int)raft_state(&g->raft);
        raft_leader(&g->raft, &leader, &address);
    }
    if ((state != g->last_state || leader != g->last_leader) &&
        g->state_cb != NULL) {
        g->last_state = state;
        g->last_leader = leader;
        g->state_cb(g, g->state_arg);
    } else {
        g->last_state = state;
        g->last_leader = leader;
    }
    if (g->fatal != 0 && !g->fatal_reported) {
        g->fatal_reported = true; /* kyufu_glue_fatal says why */
        kyufu_proposer__fatal(&g->proposer, g->fatal); /* fail the queue */
        if (g->state_cb != NULL) {
            g->state_cb(g, g->state_arg);
        }
    }
}

/* Voters in a configuration (0 when raft knows none). */
static unsigned voters_of(const struct raft_configuration *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++) {
        n += c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

int kyufu_glue_start(struct kyufu_glue *g,
                     kyufu_glue_state_cb state_cb,
                     void *state_arg,
                     char *errmsg,
                     size_t errmsg_len)
{
    uint64_t applied_index;
    uint64_t applied_term;
    raft_index last;
    int rv;

    if (g->started || g->closing) {
        errf(errmsg, errmsg_len, "start: already started or closing");
        return KYUFU_GLUE_EINVALID;
    }
    g->state_cb = state_cb;
    g->state_arg = state_arg;
    /* Before raft_uv reads its open segments: damage it would take for a
     * torn write, or a cut file it would abort on (segment_check.h). */
    if (glue__segments_check(g->raft_dir, errmsg, errmsg_len) != 0) {
        return KYUFU_GLUE_ECORRUPT;
    }
    /* Snapshots are written through unnamed files there (stream_file.h):
     * a file system without them would fail every snapshot while the log
     * grew.  Said now rather than at the first snapshot. */
    if (g->fsm_state.mode == KYUFU_FSM_SNAPSHOT_DEFERRED &&
        glue__stream_file_probe(g->raft_dir, errmsg, errmsg_len) != 0) {
        return KYUFU_GLUE_EIO;
    }
    rv = raft_start(&g->raft);
    if (rv != 0) {
        /* raft_errmsg is often empty here: name the code too, and what
         * the state machine refused (a snapshot restore: its errmsg). */
        errf(errmsg, errmsg_len, "raft start %s: %s (%s)%s%s", g->raft_dir,
             raft_strerror(rv), raft_errmsg(&g->raft),
             g->fsm_state.fatal_rv != 0 ? ": state machine: " : "",
             g->fsm_state.fatal_rv != 0 ? g->fsm_state.errmsg : "");
        return rv == RAFT_CORRUPT ? KYUFU_GLUE_EIO : glue__raft_to_glue(rv);
    }
    g->started = true;
    /* A restore at the start set the snapshot threshold before raft had
     * its configuration: this node's slot needs its rank among voters. */
    glue__fsm_retune(&g->fsm_state);

    /* The store may be ahead of the log: 0.22.1 applies a committed entry
     * before this node's own append of it is on disk (its commit index
     * follows the leader's), so a kill or a power cut in that window
     * leaves the store ahead (docs/raft.md, "Store ahead of the log").
     * Such entries were committed by a majority without this node, so it
     * never acknowledged them, the next leader has them, and apply skips
     * them when they arrive again.  That needs a majority that excludes
     * this node (three voters or more), and a log that kept its term and
     * vote (else the node could vote twice in a term: a wiped or replaced
     * Raft directory) and its configuration.  Anything else is a log that
     * lost entries this node may have acknowledged: refuse to run. */
    kyufu_storage_applied(g->storage, &applied_index, &applied_term);
    last = raft_last_index(&g->raft);
    if (applied_index > last &&
        (raft_current_term(&g->raft) < applied_term ||
         voters_of(&g->raft.configuration) < 3)) {
        errf(errmsg, errmsg_len,
             "start %s: the store applied up to index %llu (term %llu) but "
             "the Raft log ends at %llu (term %llu, %u voters): the log "
             "lost entries; refusing to run (docs/raft.md, auto-recovery)",
             g->raft_dir, (unsigned long long)applied_index,
             (unsigned long long)applied_term, (unsigned long long)last,
             (unsigned long long)raft_current_term(&g->raft),
             voters_of(&g->raft.configuration));
        set_fatal(g, KYUFU_GLUE_ESTORAGE, "log lost applied entries");
        return KYUFU_GLUE_ESTORAGE;
    }
    g->store_ahead = applied_index > last ? applied_index - last : 0;
    if (g->fatal != 0) {
        errf(errmsg, errmsg_len, "start: %s", g->fatal_msg);
        return g->fatal;
    }
    rv = uv_timer_start(&g->poll, poll_cb, KYUFU_STATE_POLL_MS,
                        KYUFU_STATE_POLL_MS);
    assert(rv == 0);
    return 0;
}

bool kyufu_glue_is_leader(struct kyufu_glue *g)
{
    return g->started && !g->closing && raft_state(&g->raft) == RAFT_LEADER;
}

uint64_t kyufu_glue_store_ahead(struct kyufu_glue *g)
{
    return g->store_ahead;
}

uint64_t kyufu_glue_term(struct kyufu_glue *g)
{
    return raft_current_term(&g->raft);
}

bool kyufu_glue_transferring(struct kyufu_glue *g)
{
    if (!g->started || g->closing) {
        return false;
    }
    return g->transfer != NULL || (raft_state(&g->raft) == RAFT_LEADER &&
                                   raft_transferee(&g->raft) != 0);
}

size_t kyufu_glue_voters(struct kyufu_glue *g, uint64_t *ids, size_t cap)
{
    size_t n = 0;
    const struct raft_configuration *c = &g->raft.configuration;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER) {
            continue;
        }
        /* Insertion sort: at most a handful of voters. */
        if (n < cap) {
            size_t j = n;
            while (j > 0 && ids[j - 1] > c->servers[i].id) {
                ids[j] = ids[j - 1];
                j--;
            }
            ids[j] = c->servers[i].id;
        }
        n++;
    }
    return n;
}

void kyufu_glue_status(struct kyufu_glue *g, struct kyufu_glue_status *out)
{
    raft_id leader = 0;
    const char *address = NULL;
    memset(out, 0, sizeof *out);
    out->id = g->config.id;
    if (g->fatal != 0) {
        out->role = "fatal";
    } else if (!g->started) {
        out->role = "stopped";
    } else {
        out->role = raft_state_name((int)raft_state(&g->raft));
    }
    out->term = raft_current_term(&g->raft);
    out->commit_index = raft_commit_index(&g->raft);
    out->applied_index = raft_last_applied(&g->raft);
    out->last_log_index = raft_last_index(&g->raft);
    if (g->started) {
        raft_leader(&g->raft, &leader, &address);
    }
    out->leader_id = leader;
    out->apply_runs = g->fsm_state.n_apply_runs;
    out->snapshots_taken = g->fsm_state.n_snapshots;
    out->snapshots_restored = g->fsm_state.n_restores;
    out->snapshots_deferred_conf = g->fsm_state.n_snapshots_deferred_conf;
    out->config_repairs = g->n_config_repairs;
    out->config_cuts = g->guard.n_conf_cut;
    out->snapshots_in_flight = g->sio.n_inflight;
    out->snapshots_serializing = g->sio.n_work;
    out->snapshots_failed = g->sio.n_failed;
    out->snapshots_file_refused = g->sio.n_file_failed;
    out->snapshot_file_errno = g->sio.file_err;
    out->snapshot_copies_sent = g->guard.snapshot_send.n_started;
    out->snapshot_copies_refused = g->guard.snapshot_send.n_dropped;
    out->snapshot_trailing_entries = g->guard.snapshot_send.trailing_set;
    out->snapshot_threshold_entries = g->fsm_state.period != 0
                                          ? g->fsm_state.period
                                          : g->fsm_state.threshold_set;
    out->snapshot_last_index = g->fsm_state.last_snapshot_index;
    out->peer_streams_opened = g->transport.n_opened;
    out->peer_connections_refused = g->transport.n_refused;
    out->peer_handshakes_pending = g->transport.n_pending_in;
    out->transfer_attempts = g->transfer_attempts;
    if (address != NULL) {
        snprintf(out->leader_address, sizeof out->leader_address, "%s",
                 address);
    }
}

void kyufu_glue_set_apply_cb(struct kyufu_glue *g,
                             kyufu_glue_apply_cb cb,
                             void *arg)
{
    g->apply_cb = cb;
    g->apply_arg = arg;
}

static void guard_appended(struct glue_io_guard *guard, uint64_t ns)
{
    struct kyufu_glue *g = guard->data;
    if (g->append_cb != NULL) {
        g->append_cb(g->append_arg, ns);
    }
}

void kyufu_glue_set_append_cb(struct kyufu_glue *g,
                              kyufu_glue_append_cb cb,
                              void *arg)
{
    g->append_cb = cb;
    g->append_arg = arg;
    g->guard.appended = cb != NULL ? guard_appended : NULL;
}

static void guard_compacted(struct glue_io_guard *guard)
{
    struct kyufu_glue *g = guard->data;
    if (g->compacted_cb != NULL) {
        g->compacted_cb(g->compacted_arg);
    }
}

void kyufu_glue_set_compacted_cb(struct kyufu_glue *g,
                                 kyufu_glue_compacted_cb cb,
                                 void *arg)
{
    g->compacted_cb = cb;
    g->compacted_arg = arg;
    g->guard.compacted = cb != NULL ? guard_compacted : NULL;
}

bool kyufu_glue_last_contact(struct kyufu_glue *g, uint64_t id,
                             uint64_t *age_ms)
{
    assert(g != NULL && age_ms != NULL);
    uint64_t now = g->sio.io.time(&g->sio.io);
    for (size_t k = 0; k < KYUFU_GLUE_CONTACTS_MAX; k++) {
        if (id != 0 && g->guard.contact[k].id == id) {
            uint64_t at = g->guard.contact[k].ms;
            *age_ms = now >= at ? now - at : 0;
            return true;
        }
    }
    return false;
}

size_t kyufu_glue_followers(struct kyufu_glue *g,
                            struct kyufu_glue_follower *out,
                            size_t max)
{
    assert(out != NULL || max == 0);
    if (!kyufu_glue_is_leader(g)) {
        return 0;
    }
    const struct raft_configuration *c = &g->raft.configuration;
    size_t n = 0;
    for (unsigned i = 0; i < c->n && n < max; i++) {
        const struct raft_server *s = &c->servers[i];
        if (s->id == g->config.id || s->role != RAFT_VOTER) {
            continue;
        }
        raft_index match = 0;
        if (raft_match_index(&g->raft, s->id, &match) != 0) {
            continue;
        }
        struct kyufu_glue_follower *f = &out[n++];
        memset(f, 0, sizeof *f);
        f->id = s->id;
        f->match_index = match;
        f->contacted = kyufu_glue_last_contact(g, s->id, &f->contact_age_ms);
    }
    assert(n <= max);
    return n;
}

uint64_t kyufu_glue_take_apply_max_ms(struct kyufu_glue *g)
{
    uint64_t ms = g->fsm_state.apply_ns_max / 1000000u;
    g->fsm_state.apply_ns_max = 0;
    return ms;
}

/* -------------------------------------------------------------- propose */

int kyufu_glue_propose(struct kyufu_glue *g,
                       struct kyufu_glue_propose *req,
                       const Kyufu__V1__Command *cmd,
                       kyufu_glue_propose_cb cb)
{
    if (g->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    if (!g->started || g->transfer != NULL) {
        return KYUFU_GLUE_ENOTLEADER; /* transfer: see transfer_caught_up */
    }
    return kyufu_proposer__submit(&g->proposer, req, cmd, cb);
}

int kyufu_glue_propose_packed(struct kyufu_glue *g,
                              struct kyufu_glue_propose *req,
                              const Kyufu__V1__Command *cmd,
                              kyufu_glue_propose_packed_cb cb)
{
    if (g->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    if (!g->started || g->transfer != NULL) {
        return KYUFU_GLUE_ENOTLEADER; /* transfer: see transfer_caught_up */
    }
    return kyufu_proposer__submit_packed(&g->proposer, req, cmd, cb);
}

/* -------------------------------------------------------------- barrier */

struct glue_barrier
{
    struct raft_barrier raft;
    struct kyufu_glue_barrier *req;
    struct kyufu_glue *g;
};

static void barrier_cb(struct raft_barrier *rb, int status)
{
    struct glue_barrier *b = rb->data;
    struct kyufu_glue_barrier *req = b->req;
    int rv = b->g->closing ? (status == 0 ? 0 : KYUFU_GLUE_ESHUTDOWN)
                           : glue__raft_to_glue(status);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        rv = KYUFU_GLUE_ELEADERSHIPLOST;
    }
    free(b);
    req->impl = NULL;
    req->cb(req, rv);
}

/* 0 when this node can start a leader's operation: open, not failed, the
 * leader; else SHUTDOWN, the fatal error or NOTLEADER. */
int glue__leader_ready(struct kyufu_glue *g)
{
    if (g->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    if (g->fatal != 0) {
        return g->fatal;
    }
    if (!kyufu_glue_is_leader(g)) {
        return KYUFU_GLUE_ENOTLEADER;
    }
    return 0;
}

int kyufu_glue_barrier(struct kyufu_glue *g,
                       struct kyufu_glue_barrier *req,
                       kyufu_glue_barrier_cb cb)
{
    struct glue_barrier *b;
    int rv = glue__leader_ready(g);
    if (rv != 0) {
        return rv;
    }
    if (g->transfer != NULL) {
        return KYUFU_GLUE_ENOTLEADER; /* see transfer_caught_up */
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return KYUFU_GLUE_ENOMEM;
    }
    b->req = req;
    b->g = g;
    b->raft.data = b;
    req->cb = cb;
    req->impl = b;
    rv = raft_barrier(&g->raft, &b->raft, barrier_cb);
    if (rv != 0) {
        /* Past NOTLEADER, 0.22.1's raft_barrier frees its entry buffer a
         * second time (docs/raft.md, "Raft call failures"): fatal. */
        free(b);
        req->impl = NULL;
        return glue__raft_call_failed(g, "raft_barrier", rv);
    }
    return 0;
}

/* ------------------------------------------------------------- transfer */

static void transfer_done(struct kyufu_glue *g, int status)
{
    struct kyufu_glue_transfer *req = g->transfer;
    assert(req != NULL);
    g->transfer = NULL;
    req->impl = NULL;
    req->cb(req, status);
}

static void transfer_raft_cb(struct raft_transfer *t)
{
    struct kyufu_glue *g = t->data;
    g->transfer_raft_pending = false;
    /* The poll timer decides: another leader seen, retry, or time out. */
}

/* Whether raft_transfer may be called now.  libraft 0.22.1 sends
 * TimeoutNow on the transferee's first acknowledgement after raft_transfer
 * even when it does not cover the leader's last entry (replication.c
 * replicationUpdate compares the match index with the acknowledged index,
 * not with the log's last), and the transferee ignores a TimeoutNow while
 * its log lacks the leader's last entry or has not stored it yet
 * (recv_timeout_now.c); the leader never sends it again, so the hand-over
 * waited out raft's transfer timeout (one election timeout) before the
 * glue's next attempt: ~1 s instead of a few ms whenever a write was in
 * flight at the hand-over (3 of 11 in chaos/bench, docs/failover.md
 * "Planned hand-over").  So from kyufu_glue_transfer on, proposals and
 * barriers are refused (NOTLEADER: the node holds or forwards the call, as
 * during raft's own transfer), and raft_transfer is called once the
 * transferee has acknowledged the leader's last entry (match index: what
 * it stored); raft then sends TimeoutNow at once, and it is taken.  The
 * wait is bounded by one election timeout (a target far behind, e.g.
 * receiving a snapshot): then raft_transfer is called anyway, as before.
 * So writes pause for this wait (at most one election timeout) plus raft's
 * own transfer, and again at each retry until the transfer's deadline;
 * the node's stop timer and hold bound cap what a caller sees.  An unknown
 * target is left for raft_transfer to report; a target demoted from voter
 * still passes raft_match_index and waits out the bound (then
 * raft_transfer refuses it). */
static bool transfer_caught_up(struct kyufu_glue *g)
{
    raft_index match = 0;
    if (g->transfer_target == 0 || uv_now(g->loop) >= g->transfer_wait_until ||
        raft_match_index(&g->raft, (raft_id)g->transfer_target, &match) != 0) {
        return true;
    }
    return match >= raft_last_index(&g->raft);
}

/* Target 0: the voter with the highest match index (the first of equals),
 * as raft's own choice would be up to date; 0 when there is none. */
static uint64_t transfer_pick(struct kyufu_glue *g)
{
    struct kyufu_glue_follower f[KYUFU_GLUE_CONTACTS_MAX];
    size_t n = kyufu_glue_followers(g, f, KYUFU_GLUE_CONTACTS_MAX);
    uint64_t best = 0;
    uint64_t best_match = 0;
    for (size_t i = 0; i < n; i++) {
        if (best == 0 || f[i].match_index > best_match) {
            best = f[i].id;
            best_match = f[i].match_index;
        }
    }
    return best;
}

static int transfer_attempt(struct kyufu_glue *g)
{
    int rv;
    memset(&g->transfer_raft, 0, sizeof g->transfer_raft);
    g->transfer_raft.data = g;
    rv = raft_transfer(&g->raft, &g->transfer_raft,
                       (raft_id)g->transfer_target, transfer_raft_cb);
    if (rv != 0) {
        /* Recoverable: a transfer writes nothing durable.  After a failed
         * TimeoutNow send the core may keep the transferee (proposals get
         * NOTLEADER) until its own transfer timeout clears it. */
        return glue__raft_to_glue(rv);
    }
    g->transfer_raft_pending = true;
    g->transfer_attempts++;
    return 0;
}

static void transfer_poll(struct kyufu_glue *g)
{
    raft_id leader;
    const char *address;
    int rv;

    raft_leader(&g->raft, &leader, &address);
    if (leader != 0 && leader != g->config.id) {
        if (!g->transfer_raft_pending) {
            transfer_done(g, 0);
        }
        return;
    }
    if (g->transfer_raft_pending) {
        return;
    }
    if (raft_state(&g->raft) == RAFT_LEADER) {
        if (g->transfer_attempts >= KYUFU_TRANSFER_ATTEMPTS_MAX ||
            uv_now(g->loop) > g->transfer_deadline) {
            transfer_done(g, KYUFU_GLUE_ETIMEOUT);
            return;
        }
        if (!transfer_caught_up(g)) {
            return; /* the next poll looks again */
        }
        rv = transfer_attempt(g);
        if (rv != 0) {
            transfer_done(g, rv);
        }
        return;
    }
    /* Deposed, no leader known yet: wait for the election, bounded. */
    if (uv_now(g->loop) > g->transfer_deadline) {
        transfer_done(g, KYUFU_GLUE_ETIMEOUT);
    }
}

int kyufu_glue_transfer(struct kyufu_glue *g,
                        struct kyufu_glue_transfer *req,
                        uint64_t target_id,
                        kyufu_glue_transfer_cb cb)
{
    int rv;
    if (g->closing) {
        return KYUFU_GLUE_ESHUTDOWN;
    }
    if (!kyufu_glue_is_leader(g)) {
        return KYUFU_GLUE_ENOTLEADER;
    }
    if (g->transfer != NULL) {
        return KYUFU_GLUE_EBUSY;
    }
    if (target_id == g->config.id) {
        return KYUFU_GLUE_EINVALID;
    }
    g->transfer_target = target_id != 0 ? target_id : transfer_pick(g);
    g->transfer_attempts = 0;
    g->transfer_raft_pending = false;
    g->transfer_wait_until = uv_now(g->loop) + g->config.election_timeout_ms;
    g->transfer_deadline =
        uv_now(g->loop) + (uint64_t)(KYUFU_TRANSFER_ATTEMPTS_MAX + 1) * 2 *
                              g->config.election_timeout_ms;
    if (transfer_caught_up(g)) {
        rv = transfer_attempt(g);
        if (rv != 0) {
            return rv;
        }
    }
    /* else: transfer_poll calls raft_transfer once the target caught up. */
    req->cb = cb;
    req->impl = g;
    g->transfer = req;
    return 0;
}

/* ---------------------------------------------------------------- close */

/* Glues whose close callback has fired, kept with their raft_uv until the
 * loop is idle (kyufu_glue_free_closed).  The loop's thread only. */
static struct kyufu_glue *closed_glues;

void kyufu_glue_free_closed(void)
{
    while (closed_glues != NULL) {
        struct kyufu_glue *g = closed_glues;
        closed_glues = g->next_closed;
        raft_uv_close(&g->sio.io);
        free(g);
    }
}

static void poll_close_cb(uv_handle_t *h)
{
    struct kyufu_glue *g = h->data;
    kyufu_glue_close_cb cb = g->close_cb;
    void *arg = g->close_arg;
    int fatal = g->fatal;
    char detail[sizeof g->fatal_msg];
    snprintf(detail, sizeof detail, "%s", fatal != 0 ? g->fatal_msg : "");
    kyufu_fsm_wipe_keys(&g->fsm_state);
    glue__stream_key_wipe(&g->proposer.key);
    free(g->address);
    free(g->raft_dir);
    g->address = NULL;
    g->raft_dir = NULL;
    g->next_closed = closed_glues;
    closed_glues = g;
    if (cb != NULL) {
        cb(arg, fatal, detail);
    }
}

/* The last step of close: no sync of the store runs any more. */
static void store_sync_closed(struct glue_store_sync *ss)
{
    struct kyufu_glue *g = (struct kyufu_glue *)(void *)((char *)ss -
                                                         offsetof(
                                                             struct kyufu_glue,
                                                             ssync));
    uv_close((uv_handle_t *)&g->poll, poll_close_cb);
}

static void on_raft_closed(struct raft *r)
{
    struct kyufu_glue *g = (struct kyufu_glue *)(void *)((char *)r -
                                                         offsetof(
                                                             struct kyufu_glue,
                                                             raft));
    g->raft_closed = true;
    glue__io_guard_close(&g->guard);
    /* raft_uv closed the transport: free what it holds.  raft_uv itself is
     * freed with the glue once the loop is idle (kyufu_glue_free_closed):
     * 0.22.1 may still finish a truncate, on its struct and on the
     * transport's, after this callback. */
    glue__transport_close(&g->transport);
    if (g->transfer != NULL) {
        transfer_done(g, KYUFU_GLUE_ESHUTDOWN);
    }
    if (g->change != NULL && !g->change_raft_pending) {
        glue__change_done(g, KYUFU_GLUE_ESHUTDOWN); /* waiting in change_poll */
    }
    glue__store_sync_close(&g->ssync, store_sync_closed);
}

static void close_raft(struct kyufu_glue *g)
{
    assert(g->sio.n_work == 0);
    raft_close(&g->raft, on_raft_closed);
}

static void drained_cb(struct glue_snapshot_io *s)
{
    struct kyufu_glue *g = (struct kyufu_glue *)(void *)((char *)s -
                                                         offsetof(
                                                             struct kyufu_glue,
                                                             sio));
    s->drained = NULL;
    close_raft(g);
}

/* Runs from the poll timer, never inside kyufu_glue_close itself. */
static void close_step_cb(uv_timer_t *t)
{
    struct kyufu_glue *g = t->data;
    kyufu_proposer__close(&g->proposer, KYUFU_GLUE_ESHUTDOWN);
    g->sio.closing = true;
    if (g->sio.n_work > 0) {
        g->sio.drained = drained_cb; /* a snapshot is serializing */
        return;
    }
    close_raft(g);
}

void kyufu_glue_close(struct kyufu_glue *g, kyufu_glue_close_cb cb, void *arg)
{
    int rv;
    assert(!g->closing);
    g->closing = true;
    g->close_cb = cb;
    g->close_arg = arg;
    uv_timer_stop(&g->poll);
    rv = uv_timer_start(&g->poll, close_step_cb, 0, 0);
    assert(rv == 0);
    (void)rv;
}
