/* kyufuctl decommission (issue 12 Deliver 4; docs/decommission.md):
 *
 *   request --statement TEXT [--yes]   the first operator asks
 *   show                               the decommission as the cluster has it
 *   approve ID [--yes]                 a second operator approves
 *   erase ID --out DIR [--ca-dir DIR] [--ca-passphrase-file F] [--yes]
 *                                      every node erased, one by one; the
 *                                      certificate signed with the CA key
 *   verify CERT [--ca CA_PEM]          check a certificate
 *
 * The certificate (DIR/erasure-certificate.json) is one JSON object, keys
 * sorted, two-space indented, ASCII only, ending with a newline, whose
 * member "signature" holds the CA key's ECDSA P-256 / SHA-256 signature of
 * the same object without that member, serialized the same way.  verify
 * re-serializes what it read and refuses a file that differs from it by one
 * byte (so whitespace, order and escapes are covered, not only values),
 * then checks the signature against the CA certificate, the cluster id
 * (SHA-256 of the CA certificate's DER) and every node report's own
 * signature against its node certificate, which the CA must have issued. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "kyufu.h"

enum { OPT_STATEMENT = 0x560, OPT_YES, OPT_OUT, OPT_CA_DIR, OPT_PASS, OPT_CA, OPT_HELP };

#define CERT_JSON "erasure-certificate.json"
#define CERT_HTML "erasure-certificate.html"
#define CERT_FORMAT "kyufu-erasure-certificate v1"
#define DUMP_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
/* Statement: as storage/storage_limits.h KYUFU_REASON_BYTES_MAX. */
#define STATEMENT_BYTES_MAX 400u
/* A certificate file read back: 64 MiB holds a million files' lines. */
#define CERT_FILE_BYTES_MAX (64u * 1024u * 1024u)
/* EraseNode: the node closes, hashes and overwrites its files before it
 * answers; 10 minutes covers a data folder of tens of GB on one disk. */
#define ERASE_DEADLINE_MS (10u * 60u * 1000u)
/* A node that has not applied the approval yet answers FAILED_PRECONDITION:
 * ask again this often, this many times (apply lags by milliseconds). */
#define ERASE_RETRY_MS 200u
#define ERASE_RETRIES 25u

void ctl__decommission_usage(FILE *out)
{
    fprintf(out,
            "usage: kyufuctl decommission request --statement TEXT [--yes]\n"
            "       kyufuctl decommission show\n"
            "       kyufuctl decommission approve ID [--yes]\n"
            "       kyufuctl decommission erase ID --out DIR [--ca-dir DIR]\n"
            "                [--ca-passphrase-file FILE] [--yes]\n"
            "       kyufuctl decommission verify CERT [--ca CA_PEM]\n"
            "Two operators (ROLE_OPERATOR, two accounts) decommission the cluster:\n"
            "one requests, the other approves within an hour; then `erase` has\n"
            "every node destroy its keys and overwrite and remove its files, and\n"
            "writes DIR/" CERT_JSON " (signed with the cluster CA key) and\n"
            "DIR/" CERT_HTML ".  docs/decommission.md.\n");
}

struct args
{
    const char *statement, *out, *ca_dir, *pass_file, *ca;
    bool yes;
    const char *pos; /* the one positional argument */
};

static int parse(struct ctl__run *r, int argc, char **argv, const char *cmd,
                 struct args *a)
{
    static const struct option extra[] = {
        {"statement", required_argument, NULL, OPT_STATEMENT},
        {"yes", no_argument, NULL, OPT_YES},
        {"out", required_argument, NULL, OPT_OUT},
        {"ca-dir", required_argument, NULL, OPT_CA_DIR},
        {"ca-passphrase-file", required_argument, NULL, OPT_PASS},
        {"ca", required_argument, NULL, OPT_CA},
        {"help", no_argument, NULL, OPT_HELP},
    };
    struct option opts[CTL__COMMON_OPTS_N + sizeof extra / sizeof extra[0] + 1];
    ctl__opts_join(opts, extra, sizeof extra / sizeof extra[0]);
    memset(a, 0, sizeof *a);
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rv = 0;
        switch (c) {
        case OPT_HELP:
            ctl__decommission_usage(r->out);
            return -1;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s: unknown option or missing value in '%s'", cmd,
                             argv[optind - 1]);
        case OPT_STATEMENT:
            a->statement = optarg;
            break;
        case OPT_YES:
            a->yes = true;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_CA_DIR:
            a->ca_dir = optarg;
            break;
        case OPT_PASS:
            a->pass_file = optarg;
            break;
        case OPT_CA:
            a->ca = optarg;
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        a->pos = argv[optind++];
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: unexpected argument '%s'",
                         cmd, argv[optind]);
    }
    return 0;
}

/* Refuse the options a command does not take, and a positional argument
 * where none is wanted (or its absence where one is). */
static int only(struct ctl__run *r, const char *cmd, const struct args *a,
                const char *allowed, bool positional)
{
    const struct {
        const char *name;
        bool given;
    } o[] = {
        {"--statement", a->statement != NULL}, {"--yes", a->yes},
        {"--out", a->out != NULL},             {"--ca-dir", a->ca_dir != NULL},
        {"--ca-passphrase-file", a->pass_file != NULL},
        {"--ca", a->ca != NULL},
    };
    /* Whole words: "--ca" must not match inside "--ca-dir". */
    char words[128], word[32];
    snprintf(words, sizeof words, " %s ", allowed);
    for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) {
        snprintf(word, sizeof word, " %s ", o[i].name);
        if (o[i].given && strstr(words, word) == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s does not apply here",
                             cmd, o[i].name);
        }
    }
    if (positional && a->pos == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: which one? (an argument is "
                         "required)", cmd);
    }
    if (!positional && a->pos != NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: unexpected argument '%s'",
                         cmd, a->pos);
    }
    return 0;
}

static int parse_id(struct ctl__run *r, const char *cmd, const char *s, uint64_t *id)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '1' || s[0] > '9' || *end != '\0' || errno != 0 ||
        strlen(s) > 19) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: ID must be a positive decimal number, not '%s'", cmd, s);
    }
    *id = v;
    return 0;
}

/* Text a person can read: printable ASCII or UTF-8, no control byte. */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            return false;
        }
    }
    return true;
}

/* The explicit confirmation every destroying step asks (--yes for scripts:
 * the statement is printed all the same). */
static int confirm(struct ctl__run *r, const char *cmd, bool yes, const char *what)
{
    fprintf(r->err, "kyufuctl: %s: %s\n", cmd, what);
    if (yes) {
        fprintf(r->err, "kyufuctl: %s: confirmed by --yes\n", cmd);
        return 0;
    }
    int fd = ctl__tty_open();
    char answer[16];
    if (fd < 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: no terminal to confirm on: "
                         "give --yes to confirm from a script", cmd);
    }
    int rv = ctl__tty_ask(fd, "Type YES to go on: ", false, answer, sizeof answer);
    close(fd);
    if (rv != 0 || strcmp(answer, "YES") != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: not confirmed: nothing done",
                         cmd);
    }
    return 0;
}

static int get(struct ctl__run *r, struct kyufu_client *c, Kyufu__V1__Decommission **out)
{
    Kyufu__V1__GetDecommissionRequest req = KYUFU__V1__GET_DECOMMISSION_REQUEST__INIT;
    struct kyufu_client_call_opts opts = {.deadline_ms = r->deadline_ms, .endpoint = -1};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "GetDecommission", &req.base,
                                &kyufu__v1__decommission__descriptor, &opts, &res);
    int rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        return rv;
    }
    *out = (Kyufu__V1__Decommission *)res.response;
    return 0;
}

static void print_decommission(struct ctl__run *r, const Kyufu__V1__Decommission *d)
{
    char t1[64], t2[64];
    fprintf(r->out, "decommission %llu\n  statement:    %s\n  requested by: %s at %s\n",
            (unsigned long long)d->id, d->statement, d->requested_by,
            kyufu_ctl_time(d->requested_ms, t1, sizeof t1));
    if (d->approved_by[0] != '\0') {
        fprintf(r->out, "  approved by:  %s at %s\n", d->approved_by,
                kyufu_ctl_time(d->approved_ms, t2, sizeof t2));
    } else {
        fprintf(r->out, "  approved by:  (pending: another operator must approve)\n");
    }
}

static int cmd_request(struct ctl__run *r, int argc, char **argv)
{
    const char *cmd = "decommission request";
    struct args a;
    int rv = parse(r, argc, argv, cmd, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, "--statement --yes", false)) != 0) {
        return rv;
    }
    if (a.statement == NULL || !text_ok(a.statement, STATEMENT_BYTES_MAX)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --statement must be 1..%u bytes "
                         "of text (what is destroyed and why)", cmd, STATEMENT_BYTES_MAX);
    }
    rv = confirm(r, cmd, a.yes,
                 "this asks for the end of the cluster: once a second operator "
                 "approves, `decommission erase` destroys every key, the ledger, the "
                 "Raft logs, the snapshots and the managed backups of every node, "
                 "for good");
    if (rv != 0) {
        return rv;
    }
    struct kyufu_client *c;
    if ((rv = ctl__client(r, &c)) != 0) {
        return rv;
    }
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if ((rv = ctl__op_header(r, c, &hdr, &key)) != 0) {
        return rv;
    }
    Kyufu__V1__RequestDecommission body = KYUFU__V1__REQUEST_DECOMMISSION__INIT;
    body.statement = (char *)a.statement;
    Kyufu__V1__RequestDecommissionRequest req =
        KYUFU__V1__REQUEST_DECOMMISSION_REQUEST__INIT;
    req.header = &hdr;
    req.command = &body;
    uint64_t id = 0;
    if ((rv = ctl__op_write(r, c, cmd, "RequestDecommission", &req.base, &id)) != 0) {
        return rv;
    }
    if (r->json) {
        return ctl__emit_json(r, json_pack("{s:I}", "id", (json_int_t)id));
    }
    fprintf(r->out, "decommission %llu requested; another operator approves it "
            "within an hour: kyufuctl decommission approve %llu\n",
            (unsigned long long)id, (unsigned long long)id);
    return 0;
}

static int cmd_show(struct ctl__run *r, int argc, char **argv)
{
    const char *cmd = "decommission show";
    struct args a;
    int rv = parse(r, argc, argv, cmd, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, "", false)) != 0) {
        return rv;
    }
    struct kyufu_client *c;
    Kyufu__V1__Decommission *d = NULL;
    if ((rv = ctl__client(r, &c)) != 0 || (rv = get(r, c, &d)) != 0) {
        return rv;
    }
    if (r->json) {
        json_t *doc = kyufu_ctl_to_json(&d->base);
        kyufu_client_response_free(&d->base);
        return ctl__emit_json(r, doc);
    }
    print_decommission(r, d);
    kyufu_client_response_free(&d->base);
    return 0;
}

static int cmd_approve(struct ctl__run *r, int argc, char **argv)
{
    const char *cmd = "decommission approve";
    struct args a;
    uint64_t id = 0;
    int rv = parse(r, argc, argv, cmd, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, "--yes", true)) != 0 ||
        (rv = parse_id(r, cmd, a.pos, &id)) != 0) {
        return rv;
    }
    struct kyufu_client *c;
    Kyufu__V1__Decommission *d = NULL;
    if ((rv = ctl__client(r, &c)) != 0 || (rv = get(r, c, &d)) != 0) {
        return rv;
    }
    /* The approver reads what they approve. */
    print_decommission(r, d);
    kyufu_client_response_free(&d->base);
    rv = confirm(r, cmd, a.yes,
                 "approving makes the decommission final: `decommission erase` "
                 "then destroys every key and every file of the ledger on every "
                 "node, for good");
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if ((rv = ctl__op_header(r, c, &hdr, &key)) != 0) {
        return rv;
    }
    Kyufu__V1__ApproveDecommission body = KYUFU__V1__APPROVE_DECOMMISSION__INIT;
    body.id = id;
    Kyufu__V1__ApproveDecommissionRequest req =
        KYUFU__V1__APPROVE_DECOMMISSION_REQUEST__INIT;
    req.header = &hdr;
    req.command = &body;
    uint64_t index = 0;
    if ((rv = ctl__op_write(r, c, cmd, "ApproveDecommission", &req.base, &index)) != 0) {
        return rv;
    }
    fprintf(r->out, "decommission %llu approved; erase the nodes with: kyufuctl "
            "decommission erase %llu --out DIR\n",
            (unsigned long long)id, (unsigned long long)id);
    return 0;
}

/* ------------------------------------------------------------ signatures */

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", p[i]);
    }
}

static int unhex(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2 != 0 || len / 2 > cap) {
        return -1;
    }
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
            strchr("0123456789abcdef", s[2 * i]) == NULL ||
            strchr("0123456789abcdef", s[2 * i + 1]) == NULL) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return 0;
}

static bool sig_ok(EVP_PKEY *pub, const char *data, size_t len, const uint8_t *sig,
                   size_t sig_len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL &&
              EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) == 1 &&
              EVP_DigestVerify(md, sig, sig_len, (const uint8_t *)data, len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static X509 *pem_cert(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

/* A node's report checked: its certificate was issued by `ca` and signed
 * the report.  NULL when it holds, else why not. */
static const char *node_report_check(X509 *ca, const char *report, const char *sig_hex,
                                     const char *cert_pem)
{
    uint8_t sig[256];
    size_t sig_len = 0;
    if (unhex(sig_hex, sig, sizeof sig, &sig_len) != 0) {
        return "its signature is not hex";
    }
    X509 *cert = pem_cert(cert_pem);
    if (cert == NULL) {
        return "its certificate is not PEM";
    }
    const char *why = NULL;
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    if (ca_pub == NULL || X509_verify(cert, ca_pub) != 1) {
        why = "its certificate was not issued by this cluster's CA";
    } else if (!sig_ok(X509_get0_pubkey(cert), report, strlen(report), sig, sig_len)) {
        why = "its report does not match its signature";
    }
    X509_free(cert);
    return why;
}

/* ------------------------------------------------------------ erase */

struct node_out
{
    char *report;   /* the node's exact signed text */
    char *sig_hex;
    char *cert_pem;
};

static int erase_node(struct ctl__run *r, struct kyufu_client *c, unsigned i, uint64_t id,
                      X509 *ca, struct node_out *o)
{
    const char *ep = kyufu_client_endpoint(c, i);
    Kyufu__V1__EraseNodeRequest req = KYUFU__V1__ERASE_NODE_REQUEST__INIT;
    req.decommission_id = id;
    struct kyufu_client_call_opts opts = {
        .deadline_ms = ERASE_DEADLINE_MS, .endpoint = (int)i,
        .attempt_ms = ERASE_DEADLINE_MS};
    struct kyufu_client_result res;
    int crv = 0;
    for (unsigned t = 0;; t++) {
        crv = kyufu_client_call(c, "EraseNode", &req.base,
                                &kyufu__v1__erase_node_response__descriptor, &opts, &res);
        /* A follower that has not applied the approval yet. */
        if (crv == 0 && res.grpc_status == KYUFU_GRPC_FAILED_PRECONDITION &&
            strstr(res.message, "not approved yet") != NULL && t < ERASE_RETRIES) {
            usleep(ERASE_RETRY_MS * 1000u);
            continue;
        }
        break;
    }
    if (crv != 0 || res.grpc_status != 0) {
        fprintf(r->err, "kyufuctl: decommission erase: node at %s: ", ep);
        return ctl__call_exit(r, crv, &res);
    }
    const Kyufu__V1__EraseNodeResponse *e = (const Kyufu__V1__EraseNodeResponse *)res.response;
    o->report = strndup((const char *)e->report.data, e->report.len);
    o->sig_hex = malloc(e->signature.len * 2 + 1);
    o->cert_pem = strdup(e->certificate_pem);
    int rv = 0;
    if (o->report == NULL || o->sig_hex == NULL || o->cert_pem == NULL ||
        strlen(o->report) != e->report.len) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "decommission erase: node at %s: a "
                       "malformed report", ep);
    } else {
        hex(e->signature.data, e->signature.len, o->sig_hex);
        const char *why = node_report_check(ca, o->report, o->sig_hex, o->cert_pem);
        if (why != NULL) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_CHECK, "decommission erase: node at %s: %s",
                           ep, why);
        }
    }
    kyufu_client_response_free(res.response);
    return rv;
}

static void utc(char out[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void html_esc(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s != NULL ? s : "";
}

/* The readable document: the same content as the JSON, every string
 * escaped. */
static void write_html(FILE *f, json_t *cert)
{
    json_t *d = json_object_get(cert, "decommission");
    char num[32];
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
          "<title>Erasure certificate</title>\n<style>body{font-family:sans-serif;"
          "margin:2em}table{border-collapse:collapse}td,th{border:1px solid #888;"
          "padding:2px 6px;font-size:90%}td.h{font-family:monospace}</style></head>"
          "<body>\n<h1>Certificate of data erasure</h1>\n<table>\n", f);
    const char *rows[][2] = {
        {"Cluster identity (SHA-256 of the CA certificate)", jstr(cert, "cluster_id")},
        {"Statement", jstr(d, "statement")},
        {"Requested by", jstr(d, "requested_by")},
        {"Requested at", jstr(d, "requested_at")},
        {"Approved by", jstr(d, "approved_by")},
        {"Approved at", jstr(d, "approved_at")},
        {"Erasure started", jstr(cert, "started")},
        {"Erasure ended", jstr(cert, "ended")},
        {"Method", jstr(cert, "method")},
        {"Complete", json_is_true(json_object_get(cert, "complete")) ? "yes" : "NO"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        fputs("<tr><th>", f);
        html_esc(f, rows[i][0]);
        fputs("</th><td>", f);
        html_esc(f, rows[i][1]);
        fputs("</td></tr>\n", f);
    }
    snprintf(num, sizeof num, "%lld",
             (long long)json_integer_value(json_object_get(d, "id")));
    fputs("<tr><th>Decommission</th><td>", f);
    html_esc(f, num);
    fputs("</td></tr>\n</table>\n", f);
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(cert, "nodes"), i, node)
    {
        json_t *rep = json_loads(jstr(node, "report"), 0, NULL);
        snprintf(num, sizeof num, "%lld",
                 (long long)json_integer_value(json_object_get(rep, "node")));
        fputs("<h2>Node ", f);
        html_esc(f, num);
        fputs(" (", f);
        html_esc(f, jstr(node, "endpoint"));
        fputs(")</h2>\n<p>Data folder ", f);
        html_esc(f, jstr(rep, "data_dir"));
        fputs(", erased from ", f);
        html_esc(f, jstr(rep, "started"));
        fputs(" to ", f);
        html_esc(f, jstr(rep, "ended"));
        fputs(json_is_true(json_object_get(rep, "complete")) ? ", complete"
                                                              : ", INCOMPLETE",
              f);
        fputs(".</p>\n<table><tr><th>Path</th><th>Kind</th><th>Size (bytes)</th>"
              "<th>SHA-256 before erasure</th><th>Overwritten</th><th>Removed</th></tr>\n",
              f);
        size_t j;
        json_t *file;
        json_array_foreach(json_object_get(rep, "files"), j, file)
        {
            snprintf(num, sizeof num, "%lld",
                     (long long)json_integer_value(json_object_get(file, "size")));
            fputs("<tr><td>", f);
            html_esc(f, jstr(file, "path"));
            fputs("</td><td>", f);
            html_esc(f, jstr(file, "kind"));
            fputs("</td><td>", f);
            html_esc(f, num);
            fputs("</td><td class=\"h\">", f);
            html_esc(f, jstr(file, "sha256"));
            fputs("</td><td>", f);
            fputs(json_is_true(json_object_get(file, "overwritten")) ? "yes" : "no", f);
            fputs("</td><td>", f);
            fputs(json_is_true(json_object_get(file, "removed")) ? "yes" : "NO", f);
            fputs("</td></tr>\n", f);
        }
        fputs("</table>\n", f);
        json_decref(rep);
    }
    fputs("<p>Signed with the cluster CA key (ECDSA P-256, SHA-256); check with "
          "<code>kyufuctl decommission verify ", f);
    html_esc(f, CERT_JSON);
    fputs("</code>.</p>\n<p class=\"h\">Signature: ", f);
    html_esc(f, jstr(json_object_get(cert, "signature"), "value"));
    fputs("</p>\n</body></html>\n", f);
}

static json_t *decommission_json(const Kyufu__V1__Decommission *d)
{
    char t1[64], t2[64];
    return json_pack("{s:I,s:s,s:s,s:I,s:s,s:s,s:I,s:s}", "id", (json_int_t)d->id,
                     "statement", d->statement, "requested_by", d->requested_by,
                     "requested_ms", (json_int_t)d->requested_ms, "requested_at",
                     kyufu_ctl_time(d->requested_ms, t1, sizeof t1), "approved_by",
                     d->approved_by, "approved_ms", (json_int_t)d->approved_ms,
                     "approved_at", kyufu_ctl_time(d->approved_ms, t2, sizeof t2));
}

/* Sign `cert` (a JSON object without "signature") with the CA key and add
 * the member.  0 or -1. */
static int sign_cert(json_t *cert, EVP_PKEY *key)
{
    char *text = json_dumps(cert, DUMP_FLAGS);
    if (text == NULL) {
        return -1;
    }
    uint8_t sig[256];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(md, sig, &sig_len, (const uint8_t *)text, strlen(text)) == 1;
    EVP_MD_CTX_free(md);
    free(text);
    if (!ok) {
        return -1;
    }
    char h[sizeof sig * 2 + 1];
    hex(sig, sig_len, h);
    return json_object_set_new(cert, "signature",
                               json_pack("{s:s,s:s,s:s}", "algorithm",
                                         "ECDSA P-256 with SHA-256 (DER)", "signer",
                                         "the cluster CA key", "value", h));
}

static int write_text(struct ctl__run *r, const char *dir, const char *name,
                      const char *text)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (ctl__write_file(path, 0644, text, strlen(text), err, sizeof err) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "decommission erase: %s", err);
    }
    return 0;
}

static int cmd_erase(struct ctl__run *r, int argc, char **argv)
{
    const char *cmd = "decommission erase";
    struct args a;
    uint64_t id = 0;
    int rv = parse(r, argc, argv, cmd, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, "--out --ca-dir --ca-passphrase-file --yes", true)) != 0 ||
        (rv = parse_id(r, cmd, a.pos, &id)) != 0) {
        return rv;
    }
    if (a.out == NULL || a.out[0] == '\0') {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --out DIR is required (where the "
                         "certificate is written)", cmd);
    }
    /* Everything that could fail locally fails before any node is touched:
     * the output folder (new or empty), the CA key. */
    char err[512], probe[4096];
    struct stat st;
    if (stat(a.out, &st) == 0 && !S_ISDIR(st.st_mode)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --out %s is not a folder", cmd, a.out);
    }
    if (ctl__make_dir(a.out, err, sizeof err) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", cmd, err);
    }
    snprintf(probe, sizeof probe, "%s/%s", a.out, CERT_JSON);
    if (access(probe, F_OK) == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s exists: give a new folder", cmd,
                         probe);
    }
    if (write_text(r, a.out, ".write-probe", "") != 0) {
        return KYUFU_CTL_EXIT_LOCAL;
    }
    snprintf(probe, sizeof probe, "%s/.write-probe", a.out);
    unlink(probe);
    char ca_dir[4096];
    if ((rv = ctl__ca_dir(r, a.ca_dir, cmd, ca_dir, sizeof ca_dir)) != 0) {
        return rv;
    }
    X509 *ca = NULL;
    EVP_PKEY *ca_key = NULL;
    rv = ctl__ca_read(ca_dir, a.pass_file, &ca, &ca_key, err, sizeof err);
    if (rv != 0) {
        return ctl__fail(r, rv, "%s: %s", cmd, err);
    }
    struct kyufu_client *c;
    Kyufu__V1__Decommission *d = NULL;
    struct node_out *nodes = NULL;
    unsigned n_ep = 0;
    json_t *cert = NULL;
    if ((rv = ctl__client(r, &c)) != 0 || (rv = get(r, c, &d)) != 0) {
        goto out;
    }
    if (d->id != id || d->approved_by[0] == '\0') {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_REJECTED, "%s: decommission %llu is not the "
                       "approved one (the cluster has %llu, %s)", cmd,
                       (unsigned long long)id, (unsigned long long)d->id,
                       d->approved_by[0] == '\0' ? "pending" : "approved");
        goto out;
    }
    print_decommission(r, d);
    n_ep = kyufu_client_endpoint_count(c);
    char what[512];
    snprintf(what, sizeof what,
             "this erases all %u nodes now: every key (cryptographic erase), the "
             "ledger, the Raft logs, the snapshots and the managed backups are "
             "overwritten and removed; nothing can be recovered", n_ep);
    if ((rv = confirm(r, cmd, a.yes, what)) != 0) {
        goto out;
    }
    nodes = calloc(n_ep, sizeof *nodes);
    if (nodes == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: out of memory", cmd);
        goto out;
    }
    char started[64], ended[64], cluster_id[65];
    utc(started);
    /* One node at a time, in the client config's order. */
    for (unsigned i = 0; i < n_ep; i++) {
        rv = erase_node(r, c, i, id, ca, &nodes[i]);
        if (rv != 0) {
            fprintf(r->err, "kyufuctl: %s: stopped at node %u of %u; the nodes before "
                    "it are erased; no certificate written\n", cmd, i + 1, n_ep);
            goto out;
        }
        fprintf(r->err, "kyufuctl: %s: node at %s erased\n", cmd,
                kyufu_client_endpoint(c, i));
    }
    utc(ended);
    ctl__cert_sha256(ca, cluster_id);
    json_t *arr = json_array();
    bool complete = true;
    for (unsigned i = 0; i < n_ep; i++) {
        json_t *rep = json_loads(nodes[i].report, 0, NULL);
        complete = complete && rep != NULL && json_is_true(json_object_get(rep, "complete"));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:s,s:o}", "endpoint",
                                             kyufu_client_endpoint(c, i), "report",
                                             nodes[i].report, "report_signature",
                                             nodes[i].sig_hex, "node_certificate",
                                             nodes[i].cert_pem, "files",
                                             rep != NULL && json_object_get(rep, "files")
                                                 ? json_incref(json_object_get(rep, "files"))
                                                 : json_array()));
        json_decref(rep);
    }
    cert = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:b,s:o}", "format", CERT_FORMAT,
                     "cluster_id", cluster_id, "decommission", decommission_json(d),
                     "method",
                     "NIST SP 800-88 Rev. 1 cryptographic erase (every key file "
                     "overwritten with random bytes, fsynced, removed) + one overwrite "
                     "pass with random bytes (fsynced) + removal",
                     "started", started, "ended", ended, "complete", complete, "nodes",
                     arr);
    if (cert == NULL || sign_cert(cert, ca_key) != 0) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: cannot sign the certificate", cmd);
        goto out;
    }
    char *text = json_dumps(cert, DUMP_FLAGS);
    if (text == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: out of memory", cmd);
        goto out;
    }
    size_t tl = strlen(text);
    char *line = realloc(text, tl + 2);
    if (line == NULL) {
        free(text);
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: out of memory", cmd);
        goto out;
    }
    line[tl] = '\n';
    line[tl + 1] = '\0';
    rv = write_text(r, a.out, CERT_JSON, line);
    free(line);
    if (rv != 0) {
        goto out;
    }
    char hpath[4096];
    snprintf(hpath, sizeof hpath, "%s/%s", a.out, CERT_HTML);
    FILE *h = fopen(hpath, "w");
    if (h == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s: %s", cmd, hpath, strerror(errno));
        goto out;
    }
    write_html(h, cert);
    if (fclose(h) != 0) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s: %s", cmd, hpath, strerror(errno));
        goto out;
    }
    fprintf(r->out, "%u nodes erased%s; certificate: %s/%s and %s\n", n_ep,
            complete ? "" : " (INCOMPLETE: see the certificate)", a.out, CERT_JSON,
            hpath);
    rv = complete ? 0 : KYUFU_CTL_EXIT_CHECK;
out:
    json_decref(cert);
    for (unsigned i = 0; nodes != NULL && i < n_ep; i++) {
        free(nodes[i].report);
        free(nodes[i].sig_hex);
        free(nodes[i].cert_pem);
    }
    free(nodes);
    if (d != NULL) {
        kyufu_client_response_free(&d->base);
    }
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return rv;
}

/* ------------------------------------------------------------ verify */

static char *read_all(const char *path, size_t max, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    bool bad = fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
               (uint64_t)st.st_size > max;
    if (!bad) {
        /* Sized by the file, one byte more to see it grow meanwhile. */
        buf = malloc((size_t)st.st_size + 2);
        n = buf != NULL ? fread(buf, 1, (size_t)st.st_size + 1, f) : 0;
        bad = buf == NULL || ferror(f) || n != (size_t)st.st_size;
    }
    fclose(f);
    if (bad) {
        snprintf(err, err_len, "%s: not a regular file, unreadable, or larger than %zu "
                 "bytes", path, max);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int cmd_verify(struct ctl__run *r, int argc, char **argv)
{
    const char *cmd = "decommission verify";
    struct args a;
    int rv = parse(r, argc, argv, cmd, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, "--ca", true)) != 0) {
        return rv;
    }
    char ca_path[4096 + 16], err[512];
    if (a.ca != NULL) {
        snprintf(ca_path, sizeof ca_path, "%s", a.ca);
    } else {
        char ca_dir[4096];
        if ((rv = ctl__ca_dir(r, NULL, cmd, ca_dir, sizeof ca_dir)) != 0) {
            return rv;
        }
        snprintf(ca_path, sizeof ca_path, "%s/%s", ca_dir, CTL__CA_CERT);
    }
    size_t len = 0, ca_len = 0;
    char *ca_pem = read_all(ca_path, 64 * 1024, &ca_len, err, sizeof err);
    if (ca_pem == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: CA certificate %s", cmd, err);
    }
    X509 *ca = pem_cert(ca_pem);
    free(ca_pem);
    if (ca == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s is not a PEM certificate", cmd,
                         ca_path);
    }
    char *text = read_all(a.pos, CERT_FILE_BYTES_MAX, &len, err, sizeof err);
    json_t *doc = NULL, *sig = NULL;
    char *again = NULL, *body = NULL;
    const char *why = NULL;
    if (text == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", cmd, err);
        goto out;
    }
    json_error_t je;
    doc = strlen(text) == len ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(doc) || strcmp(jstr(doc, "format"), CERT_FORMAT) != 0) {
        why = "not an erasure certificate (JSON of format " CERT_FORMAT ")";
        goto refuse;
    }
    again = json_dumps(doc, DUMP_FLAGS);
    if (again == NULL || strlen(again) + 1 != len || memcmp(again, text, len - 1) != 0 ||
        text[len - 1] != '\n') {
        why = "the file is not byte for byte as it was signed (changed)";
        goto refuse;
    }
    sig = json_incref(json_object_get(doc, "signature"));
    uint8_t sb[256];
    size_t sb_len = 0;
    if (!json_is_object(sig) || unhex(jstr(sig, "value"), sb, sizeof sb, &sb_len) != 0) {
        why = "no signature";
        goto refuse;
    }
    json_object_del(doc, "signature");
    body = json_dumps(doc, DUMP_FLAGS);
    if (body == NULL || !sig_ok(X509_get0_pubkey(ca), body, strlen(body), sb, sb_len)) {
        why = "the signature does not match (changed, or another cluster's CA)";
        goto refuse;
    }
    char cluster_id[65];
    ctl__cert_sha256(ca, cluster_id);
    if (strcmp(jstr(doc, "cluster_id"), cluster_id) != 0) {
        why = "the cluster identity is not this CA's";
        goto refuse;
    }
    size_t i;
    json_t *node;
    json_t *nodes = json_object_get(doc, "nodes");
    if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
        why = "it names no node";
        goto refuse;
    }
    size_t files = 0;
    json_array_foreach(nodes, i, node)
    {
        why = node_report_check(ca, jstr(node, "report"), jstr(node, "report_signature"),
                                jstr(node, "node_certificate"));
        if (why != NULL) {
            snprintf(err, sizeof err, "node %zu: %s", i + 1, why);
            why = err;
            goto refuse;
        }
        files += json_array_size(json_object_get(node, "files"));
    }
    bool complete = json_is_true(json_object_get(doc, "complete"));
    if (r->json) {
        rv = ctl__emit_json(r, json_pack("{s:b,s:s,s:I,s:I,s:b}", "valid", 1, "cluster_id",
                                         cluster_id, "nodes",
                                         (json_int_t)json_array_size(nodes), "files",
                                         (json_int_t)files, "complete", complete));
    } else {
        fprintf(r->out, "valid: signed by the cluster CA (cluster %s); %zu nodes, %zu "
                "files, erasure %s\n", cluster_id, json_array_size(nodes), files,
                complete ? "complete" : "INCOMPLETE");
        rv = 0;
    }
    goto out;
refuse:
    rv = ctl__fail(r, KYUFU_CTL_EXIT_CHECK, "%s: %s: refused: %s", cmd, a.pos, why);
out:
    free(body);
    free(again);
    json_decref(sig);
    json_decref(doc);
    free(text);
    X509_free(ca);
    return rv;
}

int ctl__decommission(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "request") == 0) {
        return cmd_request(r, argc, argv);
    }
    if (strcmp(verb, "show") == 0) {
        return cmd_show(r, argc, argv);
    }
    if (strcmp(verb, "approve") == 0) {
        return cmd_approve(r, argc, argv);
    }
    if (strcmp(verb, "erase") == 0) {
        return cmd_erase(r, argc, argv);
    }
    if (strcmp(verb, "verify") == 0) {
        return cmd_verify(r, argc, argv);
    }
    return -1;
}
