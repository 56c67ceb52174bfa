/* The node's TLS files at run time: reload on SIGHUP and when [tls]
 * crl_file changes, and the private-key mode check at start.
 *
 * Revocation (docs/identity.md "Certificates"): the operator copies the CRL
 * that `kyufuctl terminal revoke` wrote over crl_file (rename into place
 * is best); within KYUFU_NODE_CRL_POLL_MS the node sees another mtime,
 * size or inode and reloads exactly as on SIGHUP.  A CRL that does not load
 * (half copied, damaged, signed by another CA) keeps the one in force and
 * says why; the file is tried again at its next change. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "limits.h"
#include "log.h"
#include "node.h"
#include "tls.h"

static void warn_expired(struct kyufu_node *n)
{
    if (n->api != NULL && kyufu_api_server_crl_expired(n->api)) {
        kyufu_log(KYUFU_LOG_WARN,
                  "CRL is past its nextUpdate: still enforced; issue a fresh one "
                  "(kyufuctl terminal crl) and copy it here",
                  KYUFU_LOG_S("crl", n->config->tls_crl));
    }
}

void kyufu_node__tls_reload(struct kyufu_node *n, const char *why)
{
    char errmsg[512] = "";
    if (n->api == NULL || n->glue == NULL || n->stop_requested) {
        return;
    }
    /* Raft first: a certificate that no longer names this node is refused
     * there, and then neither port changes. */
    if (kyufu_glue_reload_tls(n->glue, errmsg, sizeof errmsg) != 0 ||
        kyufu_api_server_reload_tls(n->api, errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "TLS files not reloaded, keeping the current ones",
                  KYUFU_LOG_S("why", why), KYUFU_LOG_S("error", errmsg));
        return;
    }
    kyufu_node__forward_rotate(n);
    if (kyufu_node__metrics_reload_tls(n, errmsg, sizeof errmsg) != 0) {
        /* Raft and the API took the new files already: only the metrics
         * port keeps its current ones (its scraper sees the old cert). */
        kyufu_log(KYUFU_LOG_ERROR, "TLS files not reloaded for the metrics "
                  "port, keeping its current ones",
                  KYUFU_LOG_S("error", errmsg));
    }
    kyufu_log(KYUFU_LOG_INFO, "TLS files reloaded", KYUFU_LOG_S("why", why),
              KYUFU_LOG_S("cert", n->config->tls_cert),
              KYUFU_LOG_S("ca", n->config->tls_ca),
              KYUFU_LOG_S("crl", n->config->tls_crl));
    warn_expired(n);
}

int kyufu_node__tls_check_keys(struct kyufu_node *n)
{
    char errmsg[512];
    if (api__tls_key_file_private(n->config->tls_key, errmsg, sizeof errmsg) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "refusing to start: private key not private",
                  KYUFU_LOG_S("key", n->config->tls_key), KYUFU_LOG_S("error", errmsg));
        return -1;
    }
    return 0;
}

static void crl_stat(const char *path, struct stat *st)
{
    if (stat(path, st) != 0) {
        memset(st, 0, sizeof *st);
    }
}

static bool crl_same(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void on_crl_poll(uv_timer_t *t)
{
    struct kyufu_node *n = t->data;
    struct stat now;
    crl_stat(n->config->tls_crl, &now);
    if (crl_same(&now, &n->crl_seen)) {
        return;
    }
    n->crl_seen = now;
    if (now.st_ino == 0) {
        kyufu_log(KYUFU_LOG_ERROR, "crl_file is missing: keeping the CRL in force",
                  KYUFU_LOG_S("crl", n->config->tls_crl));
        return;
    }
    kyufu_node__tls_reload(n, "crl_file changed");
}

void kyufu_node__crl_watch_init(struct kyufu_node *n)
{
    uv_timer_init(&n->loop, &n->crl_timer);
    n->crl_timer.data = n;
    /* Before the ports read it: a change in between is seen at the first
     * poll and reloads once more (harmless). */
    if (n->config->tls_crl[0] != '\0') {
        crl_stat(n->config->tls_crl, &n->crl_seen);
    }
}

void kyufu_node__crl_watch_start(struct kyufu_node *n)
{
    if (n->config->tls_crl[0] == '\0') {
        return;
    }
    warn_expired(n);
    uv_timer_start(&n->crl_timer, on_crl_poll, KYUFU_NODE_CRL_POLL_MS, KYUFU_NODE_CRL_POLL_MS);
}

void kyufu_node__crl_watch_close(struct kyufu_node *n)
{
    uv_close((uv_handle_t *)&n->crl_timer, NULL);
}
