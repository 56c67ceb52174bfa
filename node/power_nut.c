/* The UPS watcher: NUT's client library (libupsclient) on a thread.
 *
 * Happy path: the thread connects to upsd (upscli_tryconnect, bounded by
 * KYUFU_NODE_POWER_CONNECT_MS), reads `ups.status` of the UPS every
 * poll_ms (upscli_get "VAR <ups> ups.status"), and when the value differs
 * from the last one it reported, stores it and wakes the loop (uv_async);
 * the loop's async callback hands it to the policy (power.c).
 *
 * Failure modes: a failed connect or read disconnects, reports "contact
 * lost" once (with libupsclient's message), and retries after a backoff
 * doubling from KYUFU_NODE_POWER_BACKOFF_MS_MIN to _MAX; on success the
 * status is reported again even if unchanged (the policy then knows contact
 * is back).  libupsclient's calls block (reads up to its own 5 s timeout):
 * that is why they run here and never on the loop thread.  Close sets
 * `stopping` and wakes the thread's wait; the thread's last act is an
 * async send, whose callback joins the (finished) thread, closes the
 * handle and frees the watcher in its close callback, so the loop never
 * waits on the network.
 *
 * Only this file includes upsclient.h (and, through its pkg-config flags,
 * NSS's headers).  upsclient.h needs these four first (NUT 2.8.0). */
#include <stdint.h>
#include <sys/types.h>
#include <sys/time.h>
#include <time.h>
#include <upsclient.h>

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"
#include "power.h"

#define STATUS_BYTES 64

struct kyufu_power_watch
{
    uv_async_t async;
    uv_thread_t thread;
    uv_mutex_t mutex;
    uv_cond_t cond;
    kyufu_power_watch_cb cb;
    void *arg;
    unsigned poll_ms;
    char name[KYUFU_NODE_POWER_NAME_BYTES_MAX + 1];
    char host[KYUFU_NODE_POWER_NAME_BYTES_MAX + 1];
    uint16_t port;

    /* Under mutex: */
    bool stopping;      /* close asked */
    bool exited;        /* the thread returned (its last async is sent) */
    bool pending;       /* a report not yet delivered */
    bool contact;       /* the report: contact with upsd */
    char status[STATUS_BYTES];
    char error[512];
};

/* NAME@HOST[:PORT] (checked by config.c). */
static void split(struct kyufu_power_watch *w, const char *ups)
{
    const char *at = strchr(ups, '@');
    assert(at != NULL);
    snprintf(w->name, sizeof w->name, "%.*s", (int)(at - ups), ups);
    const char *colon = strrchr(at, ':');
    w->port = 3493; /* NUT's registered port */
    if (colon != NULL) {
        snprintf(w->host, sizeof w->host, "%.*s", (int)(colon - at - 1),
                 at + 1);
        w->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    } else {
        snprintf(w->host, sizeof w->host, "%s", at + 1);
    }
}

/* Store a report and wake the loop (thread side). */
static void report(struct kyufu_power_watch *w, bool contact,
                   const char *status, const char *error)
{
    uv_mutex_lock(&w->mutex);
    w->pending = true;
    w->contact = contact;
    snprintf(w->status, sizeof w->status, "%s", status);
    snprintf(w->error, sizeof w->error, "%s", error);
    uv_mutex_unlock(&w->mutex);
    uv_async_send(&w->async);
}

/* Wait ms or until close (thread side); true when stopping. */
static bool wait_ms(struct kyufu_power_watch *w, unsigned ms)
{
    uv_mutex_lock(&w->mutex);
    if (!w->stopping) {
        (void)uv_cond_timedwait(&w->cond, &w->mutex,
                                (uint64_t)ms * 1000000u);
    }
    bool stop = w->stopping;
    uv_mutex_unlock(&w->mutex);
    return stop;
}

static void run(void *arg)
{
    struct kyufu_power_watch *w = arg;
    UPSCONN_t conn;
    bool connected = false;
    bool contact = true;  /* as far as the policy knows */
    bool reported = false;
    char last[STATUS_BYTES] = "";
    unsigned backoff = KYUFU_NODE_POWER_BACKOFF_MS_MIN;
    const char *query[] = {"VAR", w->name, "ups.status"};
    memset(&conn, 0, sizeof conn);

    for (;;) {
        char error[512] = "";
        if (!connected) {
            struct timeval tv = {
                .tv_sec = KYUFU_NODE_POWER_CONNECT_MS / 1000,
                .tv_usec = (KYUFU_NODE_POWER_CONNECT_MS % 1000) * 1000,
            };
            if (upscli_tryconnect(&conn, w->host, w->port, UPSCLI_CONN_INET,
                                  &tv) == 0) {
                connected = true;
            } else {
                snprintf(error, sizeof error, "connect to %s:%u: %s",
                         w->host, (unsigned)w->port, upscli_strerror(&conn));
                upscli_disconnect(&conn);
            }
        }
        if (connected) {
            size_t numa = 0;
            char **answer = NULL;
            if (upscli_get(&conn, 3, query, &numa, &answer) == 0 &&
                numa >= 4) {
                backoff = KYUFU_NODE_POWER_BACKOFF_MS_MIN;
                if (!reported || !contact || strcmp(last, answer[3]) != 0) {
                    snprintf(last, sizeof last, "%s", answer[3]);
                    report(w, true, last, "");
                    reported = true;
                    contact = true;
                }
                if (wait_ms(w, w->poll_ms)) {
                    break;
                }
                continue;
            }
            snprintf(error, sizeof error, "ups.status of %s@%s:%u: %s",
                     w->name, w->host, (unsigned)w->port,
                     upscli_strerror(&conn));
            upscli_disconnect(&conn);
            connected = false;
        }
        if (contact) {
            report(w, false, "", error);
            contact = false;
        }
        if (wait_ms(w, backoff)) {
            break;
        }
        backoff = backoff * 2 > KYUFU_NODE_POWER_BACKOFF_MS_MAX
                      ? KYUFU_NODE_POWER_BACKOFF_MS_MAX
                      : backoff * 2;
    }
    if (connected) {
        upscli_disconnect(&conn);
    }
    uv_mutex_lock(&w->mutex);
    w->exited = true;
    uv_mutex_unlock(&w->mutex);
    uv_async_send(&w->async);
}

static void on_closed(uv_handle_t *h)
{
    struct kyufu_power_watch *w = h->data;
    uv_cond_destroy(&w->cond);
    uv_mutex_destroy(&w->mutex);
    free(w);
}

static void on_async(uv_async_t *a)
{
    struct kyufu_power_watch *w = a->data;
    uv_mutex_lock(&w->mutex);
    bool pending = w->pending && !w->stopping;
    bool contact = w->contact;
    bool exited = w->exited;
    char status[STATUS_BYTES], error[512];
    memcpy(status, w->status, sizeof status);
    memcpy(error, w->error, sizeof error);
    w->pending = false;
    uv_mutex_unlock(&w->mutex);
    if (exited) {
        /* The thread has returned or is returning: the join is immediate. */
        uv_thread_join(&w->thread);
        uv_close((uv_handle_t *)&w->async, on_closed);
        return;
    }
    if (pending) {
        w->cb(w->arg, contact ? status : NULL, error);
    }
}

int kyufu_power_watch_start(uv_loop_t *loop,
                            const char *ups,
                            unsigned poll_ms,
                            kyufu_power_watch_cb cb,
                            void *arg,
                            struct kyufu_power_watch **out,
                            char *errmsg,
                            size_t errmsg_len)
{
    int rv;
    struct kyufu_power_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        rv = -1;
        goto err;
    }
    split(w, ups);
    w->cb = cb;
    w->arg = arg;
    w->poll_ms = poll_ms;
    rv = uv_mutex_init(&w->mutex);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "mutex: %s", uv_strerror(rv));
        goto err_alloc;
    }
    rv = uv_cond_init(&w->cond);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "condition: %s", uv_strerror(rv));
        goto err_mutex;
    }
    rv = uv_async_init(loop, &w->async, on_async);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "async: %s", uv_strerror(rv));
        goto err_cond;
    }
    w->async.data = w;
    rv = uv_thread_create(&w->thread, run, w);
    if (rv != 0) {
        snprintf(errmsg, errmsg_len, "thread: %s", uv_strerror(rv));
        goto err_async;
    }
    *out = w;
    return 0;

err_async:
    /* The handle's memory is w: freed in its close callback. */
    uv_close((uv_handle_t *)&w->async, on_closed);
    return -1;
err_cond:
    uv_cond_destroy(&w->cond);
err_mutex:
    uv_mutex_destroy(&w->mutex);
err_alloc:
    free(w);
err:
    assert(rv != 0);
    return -1;
}

void kyufu_power_watch_close(struct kyufu_power_watch *w)
{
    uv_mutex_lock(&w->mutex);
    w->stopping = true;
    uv_cond_signal(&w->cond);
    uv_mutex_unlock(&w->mutex);
    /* The thread's final async send closes the handle (on_async). */
}
