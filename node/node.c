/* kyufud lifecycle: see node.h. */
#include "node.h"

#include <assert.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "limits.h"
#include "lock.h"
#include "log.h"

struct node
{
    uv_loop_t loop;
    const struct kyufu_config *config;
    int lock_fd;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t stop_timer;
    bool stopping;
    int exit_code;
};

static void on_close_noop(uv_handle_t *h)
{
    (void)h;
}

static void stop(struct node *n, int exit_code)
{
    if (n->stopping) {
        return;
    }
    n->stopping = true;
    n->exit_code = exit_code;
    uv_close((uv_handle_t *)&n->sigterm, on_close_noop);
    uv_close((uv_handle_t *)&n->sigint, on_close_noop);
    uv_close((uv_handle_t *)&n->stop_timer, on_close_noop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct node *n = h->data;
    kyufu_log(KYUFU_LOG_INFO, "stopping", KYUFU_LOG_S("signal",
              signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    stop(n, 0);
}

int kyufu_node_run(const struct kyufu_config *config)
{
    static struct node node;
    struct node *n = &node;
    char errmsg[512];
    int rv;

    memset(n, 0, sizeof *n);
    n->config = config;
    /* A peer killed with SIGKILL must not kill us with SIGPIPE on the next
     * write to its socket (FACTS.md): errors come back as EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);

    n->lock_fd = kyufu_node_lock(config->data_dir, errmsg, sizeof errmsg);
    if (n->lock_fd < 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot lock the data directory",
                  KYUFU_LOG_S("error", errmsg));
        rv = 1;
        goto err;
    }
    rv = uv_loop_init(&n->loop);
    assert(rv == 0);
    uv_signal_init(&n->loop, &n->sigterm);
    uv_signal_init(&n->loop, &n->sigint);
    uv_timer_init(&n->loop, &n->stop_timer);
    n->sigterm.data = n;
    n->sigint.data = n;
    n->stop_timer.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);

    kyufu_log(KYUFU_LOG_INFO, "node started", KYUFU_LOG_U("id", config->id),
              KYUFU_LOG_S("data_dir", config->data_dir));
    uv_run(&n->loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&n->loop);
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "loop did not close cleanly",
                  KYUFU_LOG_S("error", uv_strerror(rv)));
        n->exit_code = 1;
    }
    kyufu_node_unlock(n->lock_fd);
    kyufu_log(KYUFU_LOG_INFO, "node stopped",
              KYUFU_LOG_I("exit_code", n->exit_code));
    return n->exit_code;

err:
    assert(rv != 0);
    return rv;
}
