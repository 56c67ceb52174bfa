/* [sla] alert_command: one run per raised or cleared alert.
 *
 * The program runs in its own process (uv_spawn: the loop never waits on
 * it), without a shell: argv is the configured words, unchanged; the alert
 * reaches it only through its environment, so no byte of an alert is ever
 * parsed as a command:
 *   KYUFU_ALERT_STATE     raised | cleared
 *   KYUFU_ALERT           availability_budget | burn_rate | rto | ...
 *   KYUFU_ALERT_SEVERITY  warning | critical
 *   KYUFU_ALERT_SUBJECT   cluster | node/N | term/N | leader
 *   KYUFU_ALERT_SUMMARY   the one line of the log
 *   KYUFU_ALERT_VALUE, KYUFU_ALERT_THRESHOLD, KYUFU_ALERT_SINCE_MS
 *   KYUFU_NODE_ID         this node
 *   PATH=/usr/local/bin:/usr/bin:/bin
 * stdin and stdout are /dev/null, stderr is kyufud's.  One run at a time;
 * later alerts wait in a queue of KYUFU_NODE_SLA_HOOK_QUEUE_MAX (beyond:
 * dropped, counted, logged).  A run still going after
 * [sla] alert_command_timeout_ms is killed (SIGKILL) and logged. */
#include "sla.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "node.h"

static void start_next(struct kyufu_node *n);

static void on_timeout(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    if (h->running && !h->killed) {
        h->killed = true;
        uv_process_kill(&h->process, SIGKILL);
    }
}

static void on_closed(uv_handle_t *handle)
{
    struct kyufu_node *n = handle->data;
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    h->running = false;
    if (n->sla.started) {
        start_next(n);
    }
}

static void hook_exited(uv_process_t *p, int64_t status, int term_signal)
{
    struct kyufu_node *n = p->data;
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    uv_timer_stop(&h->timeout);
    if (h->killed) {
        kyufu_log(KYUFU_LOG_ERROR, "SLA alert command killed after its timeout",
                  KYUFU_LOG_U("timeout_ms", n->config->sla_alert_timeout_ms));
    } else if (status != 0 || term_signal != 0) {
        kyufu_log(KYUFU_LOG_WARN, "SLA alert command failed",
                  KYUFU_LOG_I("exit_status", status),
                  KYUFU_LOG_I("signal", term_signal));
    }
    uv_close((uv_handle_t *)p, on_closed);
}

static void start_next(struct kyufu_node *n)
{
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    const struct kyufu_config *c = n->config;
    if (h->running || h->n == 0) {
        return;
    }
    const struct kyufu_node_sla_hook_run *r = &h->queue[h->head];
    h->head = (h->head + 1) % KYUFU_NODE_SLA_HOOK_QUEUE_MAX;
    h->n--;

    char *argv[KYUFU_NODE_SLA_COMMAND_ARGS_MAX + 1];
    for (size_t i = 0; i < c->sla_alert_argc; i++) {
        argv[i] = (char *)c->sla_alert_command + c->sla_alert_argv[i];
    }
    argv[c->sla_alert_argc] = NULL;
    char env_buf[10][320];
    snprintf(env_buf[0], sizeof env_buf[0], "KYUFU_ALERT_STATE=%s", r->state);
    snprintf(env_buf[1], sizeof env_buf[1], "KYUFU_ALERT=%s",
             kyufu_sla_kind_name(r->alert.kind));
    snprintf(env_buf[2], sizeof env_buf[2], "KYUFU_ALERT_SEVERITY=%s",
             kyufu_sla_severity_name(r->alert.severity));
    snprintf(env_buf[3], sizeof env_buf[3], "KYUFU_ALERT_SUBJECT=%s",
             r->alert.subject);
    snprintf(env_buf[4], sizeof env_buf[4], "KYUFU_ALERT_SUMMARY=%s",
             r->alert.summary);
    snprintf(env_buf[5], sizeof env_buf[5], "KYUFU_ALERT_VALUE=%.0f",
             r->alert.value);
    snprintf(env_buf[6], sizeof env_buf[6], "KYUFU_ALERT_THRESHOLD=%.0f",
             r->alert.threshold);
    snprintf(env_buf[7], sizeof env_buf[7], "KYUFU_ALERT_SINCE_MS=%lld",
             (long long)r->since_ms);
    snprintf(env_buf[8], sizeof env_buf[8], "KYUFU_NODE_ID=%llu",
             (unsigned long long)c->id);
    snprintf(env_buf[9], sizeof env_buf[9], "PATH=/usr/local/bin:/usr/bin:/bin");
    char *env[11];
    for (int i = 0; i < 10; i++) {
        env[i] = env_buf[i];
    }
    env[10] = NULL;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.exit_cb = hook_exited;
    o.stdio = stdio;
    o.stdio_count = 3;
    h->process.data = n;
    h->killed = false;
    int rv = uv_spawn(&n->loop, &h->process, &o);
    h->runs++;
    h->running = true; /* until the handle is closed, even on failure */
    if (rv != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "SLA alert command did not start",
                  KYUFU_LOG_S("command", argv[0]),
                  KYUFU_LOG_S("error", uv_strerror(rv)));
        uv_close((uv_handle_t *)&h->process, on_closed);
        return;
    }
    uv_timer_start(&h->timeout, on_timeout, c->sla_alert_timeout_ms, 0);
}

void kyufu_node__sla_hook(struct kyufu_node *n, const char *state,
                          const struct kyufu_sla_alert *a, int64_t since_ms)
{
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    if (n->config->sla_alert_argc == 0) {
        return;
    }
    if (h->n == KYUFU_NODE_SLA_HOOK_QUEUE_MAX) {
        h->dropped++;
        kyufu_log(KYUFU_LOG_WARN, "SLA alert command queue full: run dropped",
                  KYUFU_LOG_S("alert", kyufu_sla_kind_name(a->kind)),
                  KYUFU_LOG_U("dropped", h->dropped));
        return;
    }
    struct kyufu_node_sla_hook_run *r =
        &h->queue[(h->head + h->n) % KYUFU_NODE_SLA_HOOK_QUEUE_MAX];
    snprintf(r->state, sizeof r->state, "%s", state);
    r->alert = *a;
    r->since_ms = since_ms;
    h->n++;
    start_next(n);
}

void kyufu_node__sla_hook_init(struct kyufu_node *n)
{
    uv_timer_init(&n->loop, &n->sla.hook.timeout);
    n->sla.hook.timeout.data = n;
}

void kyufu_node__sla_hook_close(struct kyufu_node *n)
{
    struct kyufu_node_sla_hook *h = &n->sla.hook;
    h->n = 0;
    if (h->running && !uv_is_closing((uv_handle_t *)&h->process)) {
        uv_process_kill(&h->process, SIGKILL);
        uv_close((uv_handle_t *)&h->process, on_closed);
    }
    uv_timer_stop(&h->timeout);
    uv_close((uv_handle_t *)&h->timeout, NULL);
}
