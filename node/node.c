/* kyufud lifecycle: start, state changes, stop.  See node.h for the order
 * of both sequences.
 *
 * Failure modes: a step of start that fails stops the node with exit status
 * 1 after undoing the steps before it (the same close path as a normal
 * stop, so there is one way down).  A fatal storage or raft error while
 * running (kyufu_node__check_fatal, a raft role of "unavailable") stops the
 * node with status 1 and no hand-over: its state may be suspect, and the
 * other nodes elect a leader on their own.
 *
 * Every stop is requested (kyufu_node__stop) and then run from stop_defer's
 * callback.  The requests come from inside other callbacks: a call's
 * handler runs inside its connection's receive (closing the API server
 * there freed the session under nghttp2 and aborted on the server's
 * in_recv assertion), a fatal error inside raft's callbacks, a digest's
 * work completion.  At a zero timer's callback no other callback is on the
 * stack, so every close below is legal. */
#include "node.h"

#include <assert.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keys.h"
#include "limits.h"
#include "lock.h"
#include "log.h"
#include "backup_node.h"
#include "decommission.h"
#include "notify.h"
#include "stall.h"

static void close_noop(uv_handle_t *h)
{
    (void)h;
}

/* A snapshot put completed (raft compacted its log, or installed a
 * snapshot): the freed pages go back to the system, off the loop thread
 * (heap_release.h). */
static void on_compacted(void *arg)
{
    kyufu_node__heap_release(arg);
}

/* Every applied entry (the glue's apply callback): the metrics, and the
 * scrub's mark (scrub.c), right after the entry's commit. */
static void on_applied(void *arg, uint64_t index, uint64_t term,
                       uint64_t apply_ns)
{
    struct kyufu_node *n = arg;
    kyufu_node__metrics_applied(n, index, term, apply_ns);
    kyufu_node__scrub_applied(n, index);
    kyufu_node__clock_applied(n);
}

/* Last step: the store, then our own handles. */
void kyufu_node__finish(struct kyufu_node *n)
{
    assert(n->stage == KYUFU_NODE_CLOSING);
    assert((n->api == NULL || n->decom != NULL) && n->glue == NULL);
    if (n->offloaded > 0 || n->auth.working > 0 || n->scrub.working ||
        n->heap_release.working || n->work_probe.working) {
        /* A digest or audit check still reads the store, or a heap
         * release or a pool probe runs: each calls again when it is
         * done. */
        n->finish_waiting = true;
        return;
    }
    n->finish_waiting = false;
    if (n->storage != NULL) {
        /* What the next start's "store opened" must show again: nothing
         * left to redo (docs/power.md, "clean stop"). */
        uint64_t applied, term;
        char serr[160];
        kyufu_storage_applied(n->storage, &applied, &term);
        /* A clean stop leaves nothing for the next start to replay: flush
         * what the background sync had not (the glue is closed, nothing
         * applies any more). */
        bool flushed = true;
        if (kyufu_storage_sync(n->storage, applied, serr, sizeof serr) != 0) {
            flushed = false;
            kyufu_log(KYUFU_LOG_ERROR, "store sync at stop failed",
                      KYUFU_LOG_S("detail", serr));
        }
        kyufu_log(KYUFU_LOG_INFO, "store closed",
                  KYUFU_LOG_U("applied_index", applied),
                  KYUFU_LOG_U("applied_term", term));
        kyufu_storage_close(n->storage);
        n->storage = NULL;
        /* A clean stop, everything on disk: an OS restart from here on
         * need not rebuild the store (store_mark.h).  Not after a failure
         * (exit_code != 0): after a failed flush Linux may have marked
         * unwritten pages clean, so even a final flush that succeeds
         * proves nothing. */
        if (flushed && n->exit_code == 0 && n->decom == NULL) {
            kyufu_node__store_mark_clean(n);
            /* ... and the next start need not walk it (docs/storage.md
             * "Structural check"). */
            kyufu_node__store_check_clean(n);
        }
    }
    n->stage = KYUFU_NODE_CLOSED;
    uv_close((uv_handle_t *)&n->sigterm, close_noop);
    uv_close((uv_handle_t *)&n->sigint, close_noop);
    uv_close((uv_handle_t *)&n->sighup, close_noop);
    uv_close((uv_handle_t *)&n->stop_timer, close_noop);
    uv_close((uv_handle_t *)&n->stop_defer, close_noop);
    uv_close((uv_handle_t *)&n->stall_timer, close_noop);
    kyufu_node__crl_watch_close(n);
    kyufu_node__hold_close(n);
    kyufu_node__notify_close(n);
    kyufu_node__versions_close(n);
    kyufu_node__rotate_close(n);
    kyufu_node__backup_sched_close(n);
    kyufu_node__scrub_close(n);
    kyufu_node__oplog_close(n);
    kyufu_node__auth_close(n);
    kyufu_node__power_close(n);
    kyufu_node__sla_close(n);
    kyufu_node__avail_close(n);
    kyufu_node__keys_fetch_close(n);
    if (n->decom != NULL) {
        kyufu_node__decom_finish(n); /* erases, answers, closes the API */
    }
}

static void stop_for_glue_fatal(struct kyufu_node *n, int fatal,
                                const char *detail, const char *when);

static void on_glue_closed(void *arg, int fatal, const char *detail)
{
    struct kyufu_node *n = arg;
    n->glue = NULL;
    kyufu_log0(KYUFU_LOG_INFO, "raft closed");
    /* A fatal error met during the close itself (the final store flush, a
     * raft_uv write still in flight): the stop is not clean, so the exit
     * status says so and finish does not mark the store clean. */
    if (fatal != 0 && n->exit_code == 0) {
        stop_for_glue_fatal(n, fatal, detail, "while closing");
    }
    kyufu_node__finish(n);
}

static bool stop_if_glue_fatal(struct kyufu_node *n, struct kyufu_glue *g);

static void close_glue(struct kyufu_node *n)
{
    if (n->glue == NULL) {
        kyufu_node__finish(n);
        return;
    }
    /* The glue reports a fatal error through on_state only while it is
     * not closing: one it met since its last poll (a background store
     * flush that failed after SIGTERM) would otherwise leave the exit
     * status 0 and let finish mark the store clean.  One met during the
     * close itself comes with on_glue_closed. */
    if (n->exit_code == 0) {
        (void)stop_if_glue_fatal(n, n->glue);
    }
    kyufu_glue_close(n->glue, on_glue_closed, n);
}

static void on_forward_closed(struct kyufu_node *n)
{
    close_glue(n);
}

static void on_api_closed(struct kyufu_api_server *server, void *data)
{
    struct kyufu_node *n = data;
    (void)server;
    n->api = NULL;
    kyufu_log0(KYUFU_LOG_INFO, "api server closed");
    kyufu_node__forward_close(n, on_forward_closed);
}

static void close_api(struct kyufu_node *n);
static void close_forward(struct kyufu_node *n);

/* Close the metrics listener, the API server, then the forwarding clients,
 * then the glue. */
static void close_all(struct kyufu_node *n)
{
    assert(n->stage == KYUFU_NODE_TRANSFERRING ||
           n->stage == KYUFU_NODE_STARTING || n->stage == KYUFU_NODE_RUNNING);
    n->stage = KYUFU_NODE_CLOSING;
    kyufu_node__hold_flush(n); /* before the API server closes */
    /* The rest of the stop gets its own bound. */
    uv_timer_stop(&n->stop_timer);
    if (n->decom != NULL) {
        /* Decommissioning: the API server stays open to answer EraseNode
         * after the glue and the store are closed; decommission.c closes
         * it (kyufu_node__decom_finish). */
        kyufu_node__metrics_close(n, close_forward);
        return;
    }
    kyufu_node__metrics_close(n, close_api);
}

static void close_forward(struct kyufu_node *n)
{
    kyufu_node__forward_close(n, on_forward_closed);
}

static void close_api(struct kyufu_node *n)
{
    if (n->api != NULL) {
        kyufu_api_server_close(n->api, on_api_closed, n);
        return;
    }
    kyufu_node__forward_close(n, on_forward_closed);
}

static void on_stop_defer(uv_timer_t *t);

/* After the hand-over (or none): a clean stop lets the calls in flight
 * finish, for at most KYUFU_NODE_STOP_DRAIN_MS_MAX (new calls are refused
 * already), then closes.  Polled from stop_defer every
 * KYUFU_NODE_STOP_DRAIN_TICK_MS. */
static void drain_then_close(struct kyufu_node *n)
{
    assert(n->stage == KYUFU_NODE_TRANSFERRING);
    if (n->exit_code == 0 && !n->stop_hurry && n->calls_inflight > 0 &&
        uv_now(&n->loop) < n->stop_drain_until) {
        uv_timer_start(&n->stop_defer, on_stop_defer,
                       KYUFU_NODE_STOP_DRAIN_TICK_MS, 0);
        return;
    }
    if (n->calls_inflight > 0) {
        kyufu_log(KYUFU_LOG_WARN, "closing with calls in flight",
                  KYUFU_LOG_U("calls", n->calls_inflight));
    }
    close_all(n);
}

static void drain_begin(struct kyufu_node *n)
{
    n->stage = KYUFU_NODE_TRANSFERRING;
    n->stop_drain_until = uv_now(&n->loop) + KYUFU_NODE_STOP_DRAIN_MS_MAX;
    drain_then_close(n);
}

static void on_stop_transfer(struct kyufu_glue_transfer *req, int status)
{
    struct kyufu_node *n = req->data;
    n->stop_transfer_pending = false;
    if (status == 0) {
        const char *api = "";
        uint64_t leader = kyufu_node__leader(n, &api);
        kyufu_log(KYUFU_LOG_INFO, "leadership handed over",
                  KYUFU_LOG_U("new_leader", leader),
                  KYUFU_LOG_S("new_leader_api", api));
    } else {
        kyufu_log(KYUFU_LOG_WARN, "leadership hand-over failed; stopping "
                  "anyway (the others will elect a leader)",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(status)));
    }
    if (n->stage == KYUFU_NODE_TRANSFERRING) {
        /* Inside raft's callback: the rest runs from stop_defer. */
        uv_timer_start(&n->stop_defer, on_stop_defer, 0, 0);
    }
}

static void on_stop_timer(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    if (n->stage == KYUFU_NODE_TRANSFERRING) {
        kyufu_log(KYUFU_LOG_WARN, "leadership hand-over timed out",
                  KYUFU_LOG_U("ms", KYUFU_NODE_STOP_TRANSFER_MS_MAX));
        /* The glue completes the pending transfer (SHUTDOWN) on close. */
        close_all(n);
    }
}

/* The hand-over's intent committed (or failed): now the transfer, unless
 * the stop moved on meanwhile (hurried, timed out, closing). */
static void on_stop_intent(struct kyufu_node *n, int status, void *arg)
{
    (void)status;
    (void)arg;
    if (n->stage != KYUFU_NODE_TRANSFERRING || !n->stop_transfer_pending ||
        n->stop_hurry || n->glue == NULL) {
        return;
    }
    int rv = kyufu_glue_transfer(n->glue, &n->stop_transfer, n->stop_target,
                                 on_stop_transfer);
    if (rv != 0) {
        /* As a failed hand-over: on_stop_transfer logs and moves on. */
        on_stop_transfer(&n->stop_transfer, rv);
    }
}

/* The stop itself, from stop_defer's callback (RUNNING or STARTING). */
static void stop_begin(struct kyufu_node *n)
{
    if (n->api != NULL) {
        kyufu_api_server_set_health(n->api, "", KYUFU_GRPC_HEALTH_NOT_SERVING);
        kyufu_api_server_set_health(n->api, "kyufu.v1.Ledger",
                                    KYUFU_GRPC_HEALTH_NOT_SERVING);
    }
    bool clean = n->exit_code == 0 && !n->stop_hurry &&
                 n->stage == KYUFU_NODE_RUNNING && n->glue != NULL;
    /* On battery, to a peer on mains; none known: no hand-over (power.h). */
    uint64_t target = kyufu_node__power_stop_target(n);
    if (clean && target == UINT64_MAX && kyufu_glue_is_leader(n->glue)) {
        kyufu_log0(KYUFU_LOG_INFO, "no node on mains to hand leadership to: "
                   "stopping as leader");
    }
    uint64_t voters[2];
    if (clean && target != UINT64_MAX &&
        kyufu_glue_voters(n->glue, voters, 2) > 1 &&
        kyufu_glue_is_leader(n->glue) && !n->power.transfer_pending) {
        n->stop_transfer.data = n;
        n->stop_target = target;
        /* The availability ledger records why leadership moves: the intent
         * commits first, then the transfer starts (on_stop_intent). */
        int rv = kyufu_node__avail_intent(
            n, n->power.stop_ordered ? KYUFU__V1__FAILOVER_CAUSE__CAUSE_POWER
                                     : KYUFU__V1__FAILOVER_CAUSE__CAUSE_PLANNED,
            "", on_stop_intent, NULL);
        if (rv != 0) {
            rv = kyufu_glue_transfer(n->glue, &n->stop_transfer, target,
                                     on_stop_transfer);
        }
        if (rv == 0) {
            kyufu_node__metrics_transfer(n, n->power.stop_ordered
                                                ? KYUFU_NODE_CAUSE_POWER
                                                : KYUFU_NODE_CAUSE_PLANNED);
            n->stage = KYUFU_NODE_TRANSFERRING;
            n->stop_transfer_pending = true;
            kyufu_log0(KYUFU_LOG_INFO, "handing leadership over");
            uv_timer_start(&n->stop_timer, on_stop_timer,
                           KYUFU_NODE_STOP_TRANSFER_MS_MAX, 0);
            return;
        }
        kyufu_log(KYUFU_LOG_WARN, "cannot start the leadership hand-over",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(rv)));
    }
    if (clean) {
        drain_begin(n);
        return;
    }
    close_all(n);
}

static void on_stop_defer(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    assert(n->stop_requested);
    switch (n->stage) {
    case KYUFU_NODE_STARTING:
    case KYUFU_NODE_RUNNING:
        stop_begin(n);
        break;
    case KYUFU_NODE_TRANSFERRING:
        if (!n->stop_transfer_pending) {
            /* the hand-over ended (on_stop_transfer), or there was none */
            if (n->stop_drain_until == 0) {
                drain_begin(n);
            } else {
                drain_then_close(n);
            }
        } else if (n->stop_hurry) {
            kyufu_log0(KYUFU_LOG_WARN, "stop requested again: skipping the "
                       "hand-over");
            close_all(n);
        }
        break;
    case KYUFU_NODE_CLOSING:
    case KYUFU_NODE_CLOSED:
        break;
    }
}

/* The stop reason when this build is older than the cluster (a store, a
 * snapshot or an entry of a newer command set): docs/operations.md
 * "Upgrades". */
#define STOP_UPGRADE                                                         \
    "the cluster runs a newer command set than this build: upgrade kyufud "  \
    "(docs/operations.md, Upgrades)"

void kyufu_node__stop(struct kyufu_node *n, int exit_code, const char *why)
{
    assert(exit_code == 0 || exit_code == 1 || exit_code == 2 ||
           exit_code == KYUFU_NODE_EXIT_REFUSED_DATA);
    assert(why != NULL);
    if (exit_code > n->exit_code) {
        if (n->stop_requested) {
            kyufu_log(KYUFU_LOG_ERROR, "failure while stopping: the exit "
                      "status changes",
                      KYUFU_LOG_S("reason", why),
                      KYUFU_LOG_I("exit_code", exit_code),
                      KYUFU_LOG_S("stop_reason", n->stop_reason));
        }
        n->exit_code = exit_code;
    }
    if (!n->stop_requested) {
        n->stop_requested = true;
        n->stop_reason = why;
        kyufu_log(exit_code == 0 ? KYUFU_LOG_INFO : KYUFU_LOG_ERROR,
                  "stopping", KYUFU_LOG_S("reason", why),
                  KYUFU_LOG_I("exit_code", exit_code));
        kyufu_node__notify_stopping(n);
        assert(n->stage < KYUFU_NODE_CLOSING);
        uv_timer_start(&n->stop_defer, on_stop_defer, 0, 0);
        return;
    }
    if (n->stage <= KYUFU_NODE_TRANSFERRING && !n->stop_hurry) {
        /* A second signal, or an error during the hand-over: the hand-over
         * is cut short (by the deferred callback). */
        n->stop_hurry = true;
        if (n->stage == KYUFU_NODE_TRANSFERRING) {
            uv_timer_start(&n->stop_defer, on_stop_defer, 0, 0);
        }
    }
}

void kyufu_node__check_fatal(struct kyufu_node *n, int glue_status)
{
    char detail[256] = "";
    int fatal;
    if (glue_status != KYUFU_GLUE_EIO && glue_status != KYUFU_GLUE_ESTORAGE &&
        glue_status != KYUFU_GLUE_ECORRUPT && glue_status != KYUFU_GLUE_ENEWER) {
        return;
    }
    /* The glue's own record says which call failed and how (a bare "raft
     * I/O error" told an operator nothing). */
    fatal = n->glue != NULL ? kyufu_glue_fatal(n->glue, detail, sizeof detail)
                            : 0;
    stop_for_glue_fatal(n, fatal != 0 ? fatal : glue_status, detail, NULL);
}

void kyufu_node__stop_storage(struct kyufu_node *n, int rv)
{
    assert(kyufu_storage_is_fatal(rv));
    if (rv == KYUFU_STORAGE_ECORRUPT) {
        kyufu_node__stop(n, KYUFU_NODE_EXIT_REFUSED_DATA,
                         "damaged store met outside apply");
    } else {
        kyufu_node__stop(n, 1, "fatal storage error in a query");
    }
}

uint64_t kyufu_node__leader(struct kyufu_node *n, const char **api_address)
{
    *api_address = "";
    if (n->glue == NULL) {
        return 0;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (st.leader_id != 0) {
        (void)kyufu_node__peer_slot(n, st.leader_id, api_address);
    }
    return st.leader_id;
}

/* A durable write failed or the store is ahead of the log (the glue's
 * fatal error): never retried; stop with the state as it is on disk, with
 * a failure's exit status.  Returns whether there was one. */
/* Log a fatal glue error and stop with its exit status: refused data
 * (the raft log, a snapshot or the store; a newer kyufu's) is
 * KYUFU_NODE_EXIT_REFUSED_DATA, anything else 1.  `when` says whether it
 * was met while closing (NULL: while running). */
static void stop_for_glue_fatal(struct kyufu_node *n, int fatal,
                                const char *detail, const char *when)
{
    if (when != NULL) {
        kyufu_log(KYUFU_LOG_ERROR, "fatal raft or storage error",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(fatal)),
                  KYUFU_LOG_S("detail", detail), KYUFU_LOG_S("when", when));
    } else {
        kyufu_log(KYUFU_LOG_ERROR, "fatal raft or storage error",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(fatal)),
                  KYUFU_LOG_S("detail", detail));
    }
    if (fatal == KYUFU_GLUE_ECORRUPT) {
        kyufu_node__stop(n, KYUFU_NODE_EXIT_REFUSED_DATA,
                         "refused data in the raft log, a snapshot or the store");
    } else if (fatal == KYUFU_GLUE_ENEWER) {
        kyufu_node__stop(n, KYUFU_NODE_EXIT_REFUSED_DATA, STOP_UPGRADE);
    } else {
        kyufu_node__stop(n, 1, "fatal raft or storage error");
    }
}

static bool stop_if_glue_fatal(struct kyufu_node *n, struct kyufu_glue *g)
{
    char detail[256] = "";
    int fatal = kyufu_glue_fatal(g, detail, sizeof detail);
    if (fatal == 0) {
        return false;
    }
    stop_for_glue_fatal(n, fatal, detail, NULL);
    return true;
}

static void on_state(struct kyufu_glue *g, void *arg)
{
    struct kyufu_node *n = arg;
    struct kyufu_glue_status st;
    kyufu_glue_status(g, &st);
    kyufu_node__metrics_state(n, &st);
    if (st.leader_id != n->leader_id) {
        n->leader_id = st.leader_id;
        kyufu_log(KYUFU_LOG_INFO, "leader changed",
                  KYUFU_LOG_U("leader", st.leader_id),
                  KYUFU_LOG_S("role", st.role), KYUFU_LOG_U("term", st.term));
    } else {
        kyufu_log(KYUFU_LOG_DEBUG, "raft state", KYUFU_LOG_S("role", st.role),
                  KYUFU_LOG_U("term", st.term));
    }
    if (n->stage == KYUFU_NODE_RUNNING) {
        kyufu_node__power_on_state(n);
        kyufu_node__avail_on_state(n);
    }
    if (n->api != NULL && n->stage == KYUFU_NODE_RUNNING) {
        enum kyufu_grpc_health_status h = st.leader_id != 0
                                              ? KYUFU_GRPC_HEALTH_SERVING
                                              : KYUFU_GRPC_HEALTH_NOT_SERVING;
        kyufu_api_server_set_health(n->api, "", h);
        kyufu_api_server_set_health(n->api, "kyufu.v1.Ledger", h);
    }
    if (!stop_if_glue_fatal(n, g) && st.role != NULL &&
        strcmp(st.role, "unavailable") == 0) {
        kyufu_node__stop(n, 1, "raft became unavailable");
    }
}

/* Snapshot copies sent to a lagging peer: operators must see an install
 * start, end or stall (docs/operations.md); a refused Raft connection
 * (docs/peer-tls.md) names the address and certificate that tried. */
static void on_glue_event(void *arg, const struct kyufu_glue_event *e)
{
    struct kyufu_node *n = arg;
    if (e->remote != NULL && strcmp(e->what, "raft peer closed: certificate revoked") == 0) {
        /* An open Raft link closed at a CRL reload: in the operation log
         * too, as the API port's closures are (refusal.c). */
        kyufu_node__oplog_connection(n, "raft: certificate revoked", e->remote,
                                     e->subject != NULL ? e->subject : "",
                                     e->reason != NULL ? e->reason : "");
    }
    if (e->remote != NULL) {
        kyufu_log(KYUFU_LOG_WARN, e->what,
                  KYUFU_LOG_S("remote", e->remote),
                  KYUFU_LOG_S("direction", e->inbound ? "inbound" : "outbound"),
                  KYUFU_LOG_S("subject", e->subject != NULL ? e->subject : ""),
                  KYUFU_LOG_U("peer", e->peer),
                  KYUFU_LOG_S("reason", e->reason != NULL ? e->reason : ""),
                  KYUFU_LOG_U("suppressed", e->suppressed));
        return;
    }
    bool bad = strcmp(e->what, "snapshot send failed") == 0 ||
               strcmp(e->what, "raft configuration repaired") == 0;
    kyufu_log(bad ? KYUFU_LOG_WARN : KYUFU_LOG_INFO, e->what,
              KYUFU_LOG_U("peer", e->peer), KYUFU_LOG_U("index", e->index),
              KYUFU_LOG_U("term", e->term), KYUFU_LOG_U("bytes", e->bytes),
              KYUFU_LOG_U("ms", e->ms),
              KYUFU_LOG_S("reason", e->reason != NULL ? e->reason : ""));
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct kyufu_node *n = h->data;
    kyufu_node__stop(n, 0, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* [raft] allow: the glue asks before a peer's TLS handshake. */
static bool peer_allowed(void *arg, const struct sockaddr *addr)
{
    return kyufu_allow_match(arg, addr);
}

/* SIGHUP: read the TLS files again (certificate, key, CA bundle, CRL)
 * for every connection accepted from now on; a file that does not load
 * keeps the current ones (docs/operations.md, "Certificate rotation"). */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    kyufu_node__tls_reload(h->data, "SIGHUP");
}

/* "host:port" -> host, port (validated by config.c already). */
static void split_address(const char *address, char *host, size_t host_len,
                          uint16_t *port)
{
    const char *colon = strrchr(address, ':');
    assert(colon != NULL);
    size_t n = (size_t)(colon - address);
    assert(n < host_len);
    memcpy(host, address, n);
    host[n] = '\0';
    *port = (uint16_t)strtoul(colon + 1, NULL, 10);
}

/* True when raft_dir holds nothing yet (missing or empty). */
static bool pristine(const char *dir)
{
    uv_fs_t req;
    uv_dirent_t ent;
    int rv = uv_fs_scandir(NULL, &req, dir, 0, NULL);
    if (rv < 0) {
        uv_fs_req_cleanup(&req);
        return rv == UV_ENOENT;
    }
    bool empty = uv_fs_scandir_next(&req, &ent) == UV_EOF;
    uv_fs_req_cleanup(&req);
    return empty;
}

static int start_raft(struct kyufu_node *n, char *errmsg, size_t errmsg_len)
{
    const struct kyufu_config *c = n->config;
    char raft_dir[KYUFU_NODE_PATH_BYTES_MAX + 16];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", c->data_dir);
    bool fresh = pristine(raft_dir);
    if (mkdir(raft_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errmsg_len, "cannot create %.400s: %s", raft_dir,
                 strerror(errno));
        return -1;
    }
    struct kyufu_glue_config gc;
    memset(&gc, 0, sizeof gc);
    gc.id = c->id;
    gc.address = c->raft_address;
    gc.raft_dir = raft_dir;
    /* The API's certificate: it names this node's id for Raft too. */
    gc.tls_cert_file = c->tls_cert;
    gc.tls_key_file = c->tls_key;
    gc.tls_ca_file = c->tls_ca;
    gc.tls_crl_file = c->tls_crl[0] != '\0' ? c->tls_crl : NULL;
    if (c->raft_allow.n > 0) {
        gc.peer_allowed = peer_allowed;
        gc.peer_allowed_arg = (void *)&c->raft_allow;
    }
    kyufu_config_raft_options(c, &gc);
    int rv = kyufu_glue_init(&n->loop, &gc, n->storage, &n->glue, errmsg,
                             errmsg_len);
    if (rv != 0) {
        n->glue = NULL;
        return rv;
    }
    kyufu_glue_set_event_cb(n->glue, on_glue_event, n);
    kyufu_glue_set_apply_cb(n->glue, on_applied, n);
    kyufu_glue_set_append_cb(n->glue, kyufu_node__metrics_appended, n);
    kyufu_glue_set_compacted_cb(n->glue, on_compacted, n);
    if (fresh && c->join) {
        /* Joining a running cluster (kyufuctl cluster add-node): no
         * configuration of our own; the leader sends its log. */
        kyufu_log(KYUFU_LOG_INFO, "waiting to be added to the cluster",
                  KYUFU_LOG_U("id", c->id));
    } else if (fresh) {
        /* Every node of a new cluster bootstraps the same configuration
         * from the same [cluster] section: the canonical raft way. */
        struct kyufu_glue_peer peers[KYUFU_NODE_CLUSTER_SIZE_MAX];
        for (size_t i = 0; i < c->n_peers; i++) {
            peers[i].id = c->peers[i].id;
            peers[i].address = c->peers[i].raft_address;
        }
        rv = kyufu_glue_bootstrap(n->glue, peers, c->n_peers, errmsg,
                                  errmsg_len);
        if (rv != 0) {
            return rv;
        }
        kyufu_log(KYUFU_LOG_INFO, "bootstrapped a new cluster",
                  KYUFU_LOG_U("voters", c->n_peers));
    }
    rv = kyufu_glue_start(n->glue, on_state, n, errmsg, errmsg_len);
    if (rv == 0 && kyufu_glue_store_ahead(n->glue) > 0) {
        kyufu_log(KYUFU_LOG_WARN, "store ahead of the Raft log: entries "
                  "applied before this node stored them are fetched again",
                  KYUFU_LOG_U("entries", kyufu_glue_store_ahead(n->glue)));
    }
    return rv;
}

static int start_api(struct kyufu_node *n, char *errmsg, size_t errmsg_len)
{
    const struct kyufu_config *c = n->config;
    char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    uint16_t port;
    split_address(c->api_address, host, sizeof host, &port);
    if (kyufu_node__methods(n) != 0) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    struct kyufu_api_server_config sc;
    memset(&sc, 0, sizeof sc);
    sc.host = host;
    sc.port = port;
    sc.cert_file = c->tls_cert;
    sc.key_file = c->tls_key;
    sc.ca_file = c->tls_ca;
    sc.crl_file = c->tls_crl[0] != '\0' ? c->tls_crl : NULL;
    /* Mutual TLS: clients and peers present a certificate from our CA. */
    sc.require_client_cert = true;
    sc.methods = n->methods;
    sc.n_methods = n->n_methods;
    sc.connections_max = c->api_connections_max;
    sc.connections_per_address_max = c->api_connections_per_address_max;
    sc.allow = c->api_allow.n > 0 ? &c->api_allow : NULL;
    n->refusals.loop = &n->loop;
    sc.on_refusal = kyufu_node__refusal;
    sc.refusal_data = &n->refusals;
    int rv = kyufu_api_server_start(&n->loop, &sc, &n->api, errmsg,
                                    errmsg_len);
    if (rv != 0) {
        n->api = NULL;
        return rv;
    }
    kyufu_api_server_set_health(n->api, "", KYUFU_GRPC_HEALTH_NOT_SERVING);
    kyufu_api_server_set_health(n->api, "kyufu.v1.Ledger",
                                KYUFU_GRPC_HEALTH_NOT_SERVING);
    return 0;
}

/* The start after the store is open and holds its key (if any): Raft,
 * the API, metrics, power, SLA, then RUNNING.  Called from kyufu_node_run,
 * or from keys_fetch.c once a joining node has its cluster key.  A step
 * that fails requests the stop, as every start failure does. */
static void start_rest(struct kyufu_node *n)
{
    char errmsg[512] = "";
    int rv;
    rv = start_raft(n, errmsg, sizeof errmsg);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot start raft",
                  KYUFU_LOG_S("error", kyufu_glue_strerror(rv)),
                  KYUFU_LOG_S("detail", errmsg));
        /* CONFIG or INVALID at start (e.g. a certificate that does not
         * name this node): a restart would fail the same way, as for a bad
         * config file, so exit 2 (not restarted). */
        kyufu_node__stop(n, rv == KYUFU_GLUE_ECONFIG || rv == KYUFU_GLUE_EINVALID ? 2
                            : rv == KYUFU_GLUE_ECORRUPT || rv == KYUFU_GLUE_ENEWER
                                ? KYUFU_NODE_EXIT_REFUSED_DATA
                                                        : 1,
                         "raft");
        return;
    }
    rv = start_api(n, errmsg, sizeof errmsg);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot start the API server",
                  KYUFU_LOG_S("address", n->config->api_address),
                  KYUFU_LOG_S("error", kyufu_api_strerror(rv)),
                  KYUFU_LOG_S("detail", errmsg));
        kyufu_node__stop(n, 1, "api server");
        return;
    }
    rv = kyufu_node__metrics_start(n, errmsg, sizeof errmsg);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot start the metrics listener",
                  KYUFU_LOG_S("address", n->config->metrics_listen),
                  KYUFU_LOG_S("detail", errmsg));
        kyufu_node__stop(n, 1, "metrics listener");
        return;
    }
    rv = kyufu_node__power_start(n, errmsg, sizeof errmsg);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot start the UPS watch",
                  KYUFU_LOG_S("error", errmsg));
        kyufu_node__stop(n, 1, "power");
        return;
    }
    kyufu_node__sla_start(n, errmsg, sizeof errmsg);
    kyufu_node__crl_watch_start(n);
    n->stage = KYUFU_NODE_RUNNING;
    kyufu_node__versions_start(n);
    kyufu_node__rotate_start(n);
    kyufu_node__backup_sched_start(n);
    kyufu_node__scrub_start(n);
    kyufu_node__oplog_start(n);
    (void)kyufu_node__auth_start(n); /* a refused bootstrap-admin is logged */
    /* main() set it; this reads what libuv took (work_pool.h). */
    unsigned work_threads = kyufu_node_work_pool_size();
    kyufu_log(KYUFU_LOG_INFO, "node started", KYUFU_LOG_U("id", n->config->id),
              KYUFU_LOG_S("raft_address", n->config->raft_address),
              KYUFU_LOG_S("api_address", n->config->api_address),
              KYUFU_LOG_U("election_timeout_ms", n->config->election_timeout_ms),
              KYUFU_LOG_U("work_threads", work_threads));
    if (work_threads < KYUFU_NODE_WORK_THREADS) {
        kyufu_log(KYUFU_LOG_WARN, "work pool smaller than kyufud needs",
                  KYUFU_LOG_U("work_threads", work_threads),
                  KYUFU_LOG_U("needed", KYUFU_NODE_WORK_THREADS));
    }
    on_state(n->glue, n); /* health and leader as they stand now */
    kyufu_node__notify_ready(n);

}

int kyufu_node_run(const struct kyufu_config *config)
{
    static struct kyufu_node node;
    struct kyufu_node *n = &node;
    char errmsg[512] = "";
    char path[KYUFU_NODE_PATH_BYTES_MAX + 16];
    int rv;

    memset(n, 0, sizeof *n);
    n->config = config;
    n->stage = KYUFU_NODE_STARTING;
    kyufu_node__metrics_init(n);
    /* A peer killed with SIGKILL must not kill us with SIGPIPE on the next
     * write to its socket (docs/measured.md): errors come back as EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);

    n->lock_fd = kyufu_node_lock(config->data_dir, errmsg, sizeof errmsg);
    if (n->lock_fd < 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot lock the data directory",
                  KYUFU_LOG_S("error", errmsg));
        return 1;
    }
    rv = uv_loop_init(&n->loop);
    assert(rv == 0);
    uv_signal_init(&n->loop, &n->sigterm);
    uv_signal_init(&n->loop, &n->sigint);
    uv_signal_init(&n->loop, &n->sighup);
    uv_timer_init(&n->loop, &n->stop_timer);
    uv_timer_init(&n->loop, &n->stop_defer);
    n->stop_defer.data = n;
    uv_timer_init(&n->loop, &n->stall_timer);
    uv_timer_init(&n->loop, &n->versions.timer);
    uv_timer_init(&n->loop, &n->rotate.timer);
    kyufu_node__stall_start(n);
    kyufu_node__notify_init(n);
    kyufu_node__avail_start(n);
    uv_timer_init(&n->loop, &n->power.resurvey);
    n->power.resurvey.data = n;
    n->sigterm.data = n;
    n->sigint.data = n;
    n->sighup.data = n;
    n->stop_timer.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sighup, on_sighup, SIGHUP);
    kyufu_node__crl_watch_init(n);
    kyufu_node__backup_sched_init(n);
    if (kyufu_node__tls_check_keys(n) != 0) {
        kyufu_node__stop(n, 2, "private key");
        goto run;
    }

    snprintf(path, sizeof path, "%s/ledger", config->data_dir);
    if (kyufu_node__store_mark_before_open(n, path) != 0) {
        kyufu_node__stop(n, 1, "store");
        goto run;
    }
    /* Encryption at rest: the cluster key before the store opens, handed
     * to it before anything is applied, then wiped here. */
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    bool have_cmk = false;
    char raft_dir[KYUFU_NODE_PATH_BYTES_MAX + 16];
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", config->data_dir);
    int krv = kyufu_node__keys_load(n, config->join && pristine(raft_dir),
                                    cmk, &have_cmk);
    if (krv < 0) {
        kyufu_node__stop(n, 2, "cluster key");
        goto run;
    }
    bool fetch_key = krv == 1;
    struct kyufu_storage_options so;
    memset(&so, 0, sizeof so);
    so.path = path;
    /* [storage] flush = background: commits do not flush; the glue
     * flushes off the loop thread and before log compaction, a clean stop
     * flushes in finish; after an OS crash the store was discarded above
     * (store_mark.h).  The default flushes every commit (docs/storage.md
     * "Durability of the store"). */
    so.no_sync = config->storage_flush_background;
    /* The structural check first, in a child, unless the last stop was
     * clean (store_check_node.c, docs/storage.md "Structural check"):
     * LMDB has no page checksums, and a damaged page would crash this
     * process at some later read.  No thread exists yet (the loop's
     * handles are initialised, no work has been queued), so a fork is a
     * faithful copy. */
    rv = kyufu_node__store_check(n, path, errmsg, sizeof errmsg);
    if (rv == 0) {
        rv = kyufu_storage_open(&so, &n->storage, errmsg, sizeof errmsg);
    }
    if (rv == 0 && have_cmk) {
        kyufu_storage_keys_set(n->storage, cmk);
    }
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    if (rv != 0) {
        n->storage = NULL;
        kyufu_log(KYUFU_LOG_ERROR, "cannot open the store",
                  KYUFU_LOG_S("path", path),
                  KYUFU_LOG_S("error", kyufu_storage_strerror(rv)),
                  KYUFU_LOG_S("detail", errmsg));
        /* A damaged store, or one a newer cluster wrote, would be refused
         * again at every restart. */
        kyufu_node__stop(n, rv == KYUFU_STORAGE_ECORRUPT ||
                                    rv == KYUFU_STORAGE_ENEWER
                                ? KYUFU_NODE_EXIT_REFUSED_DATA
                                : 1,
                         rv == KYUFU_STORAGE_ENEWER ? STOP_UPGRADE : "store");
        goto run;
    }
    kyufu_node__store_mark_after_open(n, path);
    uint64_t applied, term;
    kyufu_storage_applied(n->storage, &applied, &term);
    kyufu_log(KYUFU_LOG_INFO, "store opened", KYUFU_LOG_S("path", path),
              KYUFU_LOG_U("applied_index", applied),
              KYUFU_LOG_U("applied_term", term));

    if (fetch_key) {
        /* A joining node without its cluster key: Raft starts once a
         * member hands it over (keys_fetch.c). */
        if (kyufu_node__keys_fetch_start(n, start_rest) != 0) {
            kyufu_node__stop(n, 2, "cluster key");
        }
        goto run;
    }
    start_rest(n);

run:
    uv_run(&n->loop, UV_RUN_DEFAULT);
    assert(n->stage == KYUFU_NODE_CLOSED);
    kyufu_glue_free_closed(); /* the loop is idle: raft_uv too */
    kyufu_node__methods_free(n);
    rv = uv_loop_close(&n->loop);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "loop did not close cleanly: a handle "
                  "was left open",
                  KYUFU_LOG_S("error", uv_strerror(rv)));
        n->exit_code = 1;
    }
    kyufu_node_unlock(n->lock_fd);
    int status = n->exit_code;
    if (status == 0 && n->power.stop_ordered) {
        status = KYUFU_NODE_EXIT_POWER; /* a clean stop, for power */
    }
    kyufu_log(KYUFU_LOG_INFO, "node stopped", KYUFU_LOG_I("exit_code", status));
    return status;
}
