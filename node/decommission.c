/* Decommissioning on a node (docs/decommission.md "On a node"): the
 * Cluster RPCs GetDecommission and EraseNode, and the node's last steps.
 *
 * Happy path of EraseNode: the call names the id of the decommission this
 * node has applied as approved (two operators, storage/
 * apply_decommission.c) -> the node reads its TLS key and certificate (to
 * sign its report even when they live in the data folder) -> it stops the
 * decommissioning way (node.c): the API server stays open, the forwarding
 * clients, the glue and the store close, every timer of the node closes
 * (kyufu_node__finish) -> kyufu_node__decom_finish: inventory (path, size,
 * SHA-256 of every file under the data folder, keys/ as key files; the
 * [keys] files outside it as key files; this node's backups under
 * [backup] directory), erase
 * (decommission_erase.c: keys first), the report as JSON signed with the
 * TLS key, the answer -> after KYUFU_NODE_DECOM_LINGER_MS the API server
 * closes and kyufud exits 0.
 *
 * Failure modes: a wrong or unapproved id, FAILED_PRECONDITION and nothing
 * changes (the node keeps running); a TLS key that cannot be read,
 * INTERNAL and nothing changes.  Once the stop has begun, the node never
 * runs again: a file that could not be erased is named in the report
 * (complete: false) and the exit status is 1, so the operator sees it and
 * deletes it by hand.  No ledger data is in the report: paths, sizes and
 * hashes only. */
#include "decommission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "kyufu/v1/service.pb-c.h"
#include "backup_format.h"
#include "checkpoint.h"
#include "limits.h"
#include "log.h"
#include "node.h"
#include "small_file.h"

struct kyufu_node_decom
{
    struct kyufu_node *node;
    struct kyufu_node_call *call; /* EraseNode, answered in decom_finish */
    Kyufu__V1__Decommission *d;   /* as this node applied it */
    EVP_PKEY *key;                /* the node's TLS key */
    char *cert_pem;
    char caller[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char started[64];             /* UTC, ISO 8601 */
    uv_timer_t linger;
};

void kyufu_node__get_decommission(struct kyufu_node_call *c)
{
    Kyufu__V1__Decommission *d = NULL;
    int rv = kyufu_storage_decommission_get(c->node->storage, &d);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "decommission");
        return;
    }
    kyufu_node__call_done_msg(c, &d->base);
    kyufu__v1__decommission__free_unpacked(d, NULL);
}

static void utc_now(char out[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             ts.tv_nsec / 1000000L);
}

static void decom_free(struct kyufu_node_decom *x)
{
    if (x->d != NULL) {
        kyufu__v1__decommission__free_unpacked(x->d, NULL);
    }
    EVP_PKEY_free(x->key);
    free(x->cert_pem);
    free(x);
}

void kyufu_node__erase_node(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const Kyufu__V1__EraseNodeRequest *r = c->request;
    char msg[256];
    if (r->decommission_id == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT,
                              "decommission_id must be > 0", NULL, 0);
        return;
    }
    if (n->decom != NULL) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "this node is already being erased", NULL, 0);
        return;
    }
    Kyufu__V1__Decommission *d = NULL;
    int rv = kyufu_storage_decommission_get(n->storage, &d);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "no decommission has been requested", NULL, 0);
        return;
    }
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "decommission");
        return;
    }
    if (d->id != r->decommission_id || d->approved_by[0] == '\0') {
        snprintf(msg, sizeof msg,
                 "decommission %llu is not the approved one on this node "
                 "(here: %llu, %s)",
                 (unsigned long long)r->decommission_id,
                 (unsigned long long)d->id,
                 d->approved_by[0] == '\0' ? "not approved yet" : "approved");
        kyufu__v1__decommission__free_unpacked(d, NULL);
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION, msg, NULL, 0);
        return;
    }
    struct kyufu_node_decom *x = calloc(1, sizeof *x);
    if (x == NULL) {
        kyufu__v1__decommission__free_unpacked(d, NULL);
        kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                              "out of memory", NULL, 0);
        return;
    }
    x->d = d;
    x->node = n;
    char err[256];
    x->cert_pem = malloc(KYUFU_NODE_DECOM_CERT_BYTES_MAX + 1);
    ssize_t pem_len = -1;
    if (x->cert_pem != NULL) {
        pem_len = kyufu_small_file_read(n->config->tls_cert, x->cert_pem,
                                        KYUFU_NODE_DECOM_CERT_BYTES_MAX, false);
        snprintf(err, sizeof err, "cannot read %.200s", n->config->tls_cert);
    }
    if (pem_len > 0) {
        x->cert_pem[pem_len] = '\0';
    }
    if (pem_len <= 0 ||
        kyufu_checkpoint_load_key(n->config->tls_key, &x->key, err,
                                  sizeof err) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "decommission: cannot read the TLS key "
                  "or certificate to sign the report",
                  KYUFU_LOG_S("error", err));
        decom_free(x);
        kyufu_node__call_done(c, KYUFU_GRPC_INTERNAL,
                              "cannot read this node's TLS key or "
                              "certificate: nothing erased",
                              NULL, 0);
        return;
    }
    x->call = c;
    snprintf(x->caller, sizeof x->caller, "%s", c->principal.staff_id);
    utc_now(x->started);
    n->decom = x;
    kyufu_log(KYUFU_LOG_WARN, "decommission: erasing this node",
              KYUFU_LOG_U("decommission", d->id),
              KYUFU_LOG_S("requested_by", d->requested_by),
              KYUFU_LOG_S("approved_by", d->approved_by),
              KYUFU_LOG_S("called_by", x->caller));
    /* No hand-over, no drain: the cluster is being destroyed. */
    kyufu_node__stop(n, 0, "decommissioned");
    n->stop_hurry = true;
}

/* ------------------------------------------------------------ the report */

struct buf
{
    char *p;
    size_t n, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t len)
{
    if (b->oom) {
        return;
    }
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 4096 : b->cap;
        while (cap < b->n + len + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* A JSON string: quotes, backslash and every byte outside printable ASCII
 * escaped as \u00XX (paths are bytes, not always UTF-8). */
static void put_str(struct buf *b, const char *s)
{
    puts_(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char e[8];
        if (*p == '"' || *p == '\\') {
            snprintf(e, sizeof e, "\\%c", *p);
        } else if (*p < 0x20 || *p >= 0x7f) {
            snprintf(e, sizeof e, "\\u%04x", *p);
        } else {
            e[0] = (char)*p;
            e[1] = '\0';
        }
        puts_(b, e);
    }
    puts_(b, "\"");
}

static void put_u(struct buf *b, uint64_t v)
{
    char t[24];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    puts_(b, t);
}

static const char *kind_name(enum kyufu_decom_kind k)
{
    return k == KYUFU_DECOM_KEY ? "key" : k == KYUFU_DECOM_BACKUP ? "backup"
                                                                  : "data";
}

/* The node's report (docs/decommission.md "Node report"), one JSON object
 * with keys in a fixed order. */
static void report(struct buf *b, const struct kyufu_node *n,
                   const struct kyufu_node_decom *x,
                   const struct kyufu_decom_inventory *inv, bool complete,
                   const char *inventory_error, const char *ended)
{
    puts_(b, "{\"format\":\"kyufu-node-erasure-report v1\",\"node\":");
    put_u(b, n->config->id);
    puts_(b, ",\"decommission\":");
    put_u(b, x->d->id);
    puts_(b, ",\"requested_by\":");
    put_str(b, x->d->requested_by);
    puts_(b, ",\"approved_by\":");
    put_str(b, x->d->approved_by);
    puts_(b, ",\"erase_called_by\":");
    put_str(b, x->caller);
    puts_(b, ",\"data_dir\":");
    put_str(b, n->config->data_dir);
    puts_(b, ",\"started\":");
    put_str(b, x->started);
    puts_(b, ",\"ended\":");
    put_str(b, ended);
    puts_(b, ",\"method\":");
    put_str(b, KYUFU_DECOM_METHOD);
    puts_(b, ",\"complete\":");
    puts_(b, complete ? "true" : "false");
    puts_(b, ",\"inventory_error\":");
    put_str(b, inventory_error);
    puts_(b, ",\"folders_left\":");
    put_u(b, inv->dirs_left);
    puts_(b, ",\"files\":[");
    for (size_t i = 0; i < inv->n; i++) {
        const struct kyufu_decom_file *f = &inv->files[i];
        char hex[65];
        for (size_t j = 0; j < 32; j++) {
            snprintf(hex + 2 * j, 3, "%02x", f->sha256[j]);
        }
        puts_(b, i == 0 ? "{\"path\":" : ",{\"path\":");
        put_str(b, f->path);
        puts_(b, ",\"kind\":");
        put_str(b, kind_name(f->kind));
        puts_(b, ",\"type\":");
        put_str(b, f->regular ? "file" : "other");
        puts_(b, ",\"size\":");
        put_u(b, f->size);
        puts_(b, ",\"sha256\":");
        put_str(b, f->regular ? hex : "");
        puts_(b, ",\"overwritten\":");
        puts_(b, f->overwritten ? "true" : "false");
        puts_(b, ",\"removed\":");
        puts_(b, f->removed ? "true" : "false");
        puts_(b, ",\"error\":");
        put_str(b, f->error != 0 ? strerror(f->error) : "");
        puts_(b, "}");
    }
    puts_(b, "]}");
}

static void on_api_closed(struct kyufu_api_server *server, void *data)
{
    struct kyufu_node *n = data;
    (void)server;
    n->api = NULL;
    kyufu_log0(KYUFU_LOG_INFO, "api server closed");
}

static void on_linger_closed(uv_handle_t *h)
{
    struct kyufu_node_decom *x = h->data;
    x->node->decom = NULL;
    decom_free(x);
}

static void on_linger(uv_timer_t *t)
{
    struct kyufu_node_decom *x = t->data;
    struct kyufu_node *n = x->node;
    uv_close((uv_handle_t *)&x->linger, on_linger_closed);
    if (n->api != NULL) {
        kyufu_api_server_close(n->api, on_api_closed, n);
    }
}

/* True when path is under dir (dir itself or below it). */
static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Whether the folder at path is a backup this node wrote: its
 * manifest.json parses and names this node (arg: the node id).  The
 * signature is not checked: the folder is under the operator's [backup]
 * directory, and other nodes' backups there are theirs to erase (a
 * shared directory is erased by every node at once). */
static bool backup_of_node(const char *path, const void *arg)
{
    const uint64_t *id = arg;
    char manifest[KYUFU_NODE_PATH_BYTES_MAX * 2 + 32], why[256];
    uint8_t *json = NULL;
    size_t len = 0;
    struct kyufu_backup_manifest m;
    bool mine = false;
    int n = snprintf(manifest, sizeof manifest, "%s/%s", path,
                     KYUFU_BACKUP_MANIFEST);
    if (n < 0 || (size_t)n >= sizeof manifest ||
        kyufu_backup_read_file(manifest, KYUFU_BACKUP_MANIFEST_BYTES_MAX,
                               &json, &len, why, sizeof why) != 0) {
        return false;
    }
    if (kyufu_backup_manifest_parse((const char *)json, len, &m, why,
                                    sizeof why) == 0) {
        mine = m.node == *id;
        kyufu_backup_manifest_free(&m);
    }
    free(json);
    return mine;
}

/* The key files of [keys] (kek_file or passphrase_file, and cmk_file) as
 * keys, erased first: those in the data folder are listed already
 * (add_tree) and marked here, the others added; then, outside the data
 * folder (docs/decommission.md "What is erased"), every backup this node
 * wrote under [backup] directory. */
static int add_outside(struct kyufu_decom_inventory *inv,
                       const struct kyufu_config *cfg,
                       char *err,
                       size_t err_len)
{
    const char *keys[] = {cfg->keys_kek_file, cfg->keys_passphrase_file,
                          cfg->keys_cmk_file};
    for (size_t i = 0; cfg->keys && i < sizeof keys / sizeof keys[0]; i++) {
        if (keys[i][0] == '\0') {
            continue;
        }
        if (under(keys[i], cfg->data_dir)) {
            for (size_t j = 0; j < inv->n; j++) {
                if (strcmp(inv->files[j].path, keys[i]) == 0) {
                    inv->files[j].kind = KYUFU_DECOM_KEY;
                }
            }
        } else if (kyufu_decom_add_file(inv, keys[i], KYUFU_DECOM_KEY, err,
                                        err_len) != 0) {
            return -1;
        }
    }
    if (cfg->backup_directory[0] != '\0' &&
        kyufu_decom_add_children(inv, cfg->backup_directory,
                                 KYUFU_DECOM_BACKUP, backup_of_node,
                                 &cfg->id, err, err_len) != 0) {
        return -1;
    }
    return 0;
}

void kyufu_node__decom_finish(struct kyufu_node *n)
{
    struct kyufu_node_decom *x = n->decom;
    struct kyufu_decom_inventory inv;
    char err[512] = "";
    memset(&inv, 0, sizeof inv);
    /* Inventory first, whole: the certificate lists what existed. */
    int rv = kyufu_decom_add_tree(&inv, n->config->data_dir, KYUFU_DECOM_DATA,
                                  "keys", err, sizeof err);
    if (rv == 0) {
        rv = add_outside(&inv, n->config, err, sizeof err);
    }
    bool complete = false;
    if (rv == 0) {
        complete = kyufu_decom_erase(&inv) == 0;
    } else {
        /* Nothing is erased from an inventory that failed: the operator
         * fixes what it names and erases the remains by hand. */
        kyufu_log(KYUFU_LOG_ERROR, "decommission: inventory failed",
                  KYUFU_LOG_S("error", err));
    }
    char ended[64];
    utc_now(ended);
    struct buf b = {0};
    report(&b, n, x, &inv, complete, err, ended);
    size_t files = inv.n;
    kyufu_decom_inventory_free(&inv);
    Kyufu__V1__EraseNodeResponse resp = KYUFU__V1__ERASE_NODE_RESPONSE__INIT;
    uint8_t sig[256];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool signed_ok = !b.oom && md != NULL &&
                     EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, x->key) == 1 &&
                     EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)b.p, b.n) == 1;
    EVP_MD_CTX_free(md);
    if (complete) {
        kyufu_log(KYUFU_LOG_WARN, "decommission: node erased",
                  KYUFU_LOG_U("files", files));
    } else {
        kyufu_log(KYUFU_LOG_ERROR,
                  "decommission: erasure incomplete (see the report)",
                  KYUFU_LOG_U("files", files));
        n->exit_code = 1;
    }
    if (!signed_ok) {
        kyufu_node__call_done(x->call, KYUFU_GRPC_INTERNAL,
                              "erased, but the report could not be signed",
                              NULL, 0);
    } else {
        resp.report.data = (uint8_t *)b.p;
        resp.report.len = b.n;
        resp.signature.data = sig;
        resp.signature.len = sig_len;
        resp.certificate_pem = x->cert_pem;
        kyufu_node__call_done_msg(x->call, &resp.base);
    }
    free(b.p);
    x->call = NULL;
    uv_timer_init(&n->loop, &x->linger);
    x->linger.data = x;
    uv_timer_start(&x->linger, on_linger, KYUFU_NODE_DECOM_LINGER_MS, 0);
}
