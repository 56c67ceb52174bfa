/* kyufuctl audit export, archive and verify against checkpoints or an
 * export (docs/kyufuctl.md "The operation log"; the chain logic is
 * audit_chain.c).  `audit list` and a plain `audit verify` (the node's own
 * VerifyAudit) stay ledger commands (ctl_ledger.c).
 *
 * Where the records come from: ListAudit through the cluster (the default;
 * an auditor's session), a node's store (--store DIR: a stopped node's
 * ledger folder, or a copy of it), or an export file (verify --export). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "audit_chain.h"
#include "checkpoint.h"
#include "ctl.h"
#include "kyufu.h"
#include "keys.h"
#include "kyufu/v1/service.pb-c.h"
#include "storage.h"

enum {
    CERTS_MAX = 16,
    CHECKPOINTS_MAX = 1000000,
    CHECKPOINT_LINE_BYTES_MAX = 4096,
    SIG_BYTES_MAX = 512,
    SEGMENT_RECORDS_DEFAULT = 100000,
    OPT_OUT = 0x300, OPT_FORMAT, OPT_FROM, OPT_TO, OPT_ACTOR, OPT_OBJECT, OPT_STORE,
    OPT_CHECKPOINTS, OPT_CERT, OPT_EXPORT, OPT_BEFORE, OPT_SEGMENT,
    OPT_KEK, OPT_PASSPHRASE_FILE, OPT_CMK, OPT_CA, OPT_NODE,
};

/* ------------------------------------------------------------ sources */

struct source
{
    struct ctl__run *r;
    struct kyufu_client *client;        /* ListAudit */
    struct kyufu_storage *store;        /* --store */
    struct kyufu_audit_reader *reader;  /* --export */
    FILE *file;
    /* The current page. */
    ProtobufCMessage *resp;             /* ListAudit's */
    struct kyufu_storage_page page;     /* the store's */
    Kyufu__V1__AuditRecord **recs;
    size_t n, i;
    Kyufu__V1__AuditRecord *one;        /* the reader's */
    char *token;
    bool done;
};

static void source_page_free(struct source *s)
{
    if (s->resp != NULL) {
        kyufu_client_response_free(s->resp);
        s->resp = NULL;
    }
    if (s->store != NULL) {
        kyufu_storage_page_free(&s->page);
        memset(&s->page, 0, sizeof s->page);
    }
    if (s->one != NULL) {
        kyufu__v1__audit_record__free_unpacked(s->one, NULL);
        s->one = NULL;
    }
    s->recs = NULL;
    s->n = s->i = 0;
}

/* The keys of a --store with encryption at rest (docs/encryption.md): the
 * node's KEK (--kek FILE or --passphrase-file FILE), its wrapped cluster key
 * (--cmk FILE, default STORE/../keys/cmk), the cluster CA certificate
 * (--ca FILE) and the node's id (--node N), the CMK file's binding. */
struct store_keys
{
    struct kyufu_keys_source src;
    const char *cmk;
    const char *ca;
    uint64_t node;
};

/* Give the store its cluster key when keys were named: 0, or the exit code
 * after printing the error (the key is wiped either way). */
static int store_keys_set(struct ctl__run *r, struct kyufu_storage *st,
                          const char *store, const struct store_keys *k)
{
    if (k == NULL || (k->src.kek_file == NULL && k->src.passphrase_file == NULL)) {
        return 0;
    }
    char cmk_path[4096];
    if (k->cmk != NULL) {
        snprintf(cmk_path, sizeof cmk_path, "%s", k->cmk);
    } else {
        snprintf(cmk_path, sizeof cmk_path, "%s/../keys/cmk", store);
    }
    uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES];
    uint8_t cmk[KYUFU_KEYS_KEY_BYTES];
    char err[512] = "";
    if (kyufu_keys_ca_hash(k->ca, ca_hash, err, sizeof err) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--ca %s: %s", k->ca, err);
    }
    if (kyufu_keys_cmk_load(&k->src, cmk_path, k->node, ca_hash, cmk, err,
                            sizeof err) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "the store's cluster key: %s", err);
    }
    kyufu_storage_keys_set(st, cmk);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    return 0;
}

static int source_open(struct source *s, struct ctl__run *r, const char *store,
                       const struct store_keys *keys, const char *export)
{
    memset(s, 0, sizeof *s);
    s->r = r;
    if (export != NULL) {
        s->file = fopen(export, "re");
        if (s->file == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--export %s: %s", export,
                             strerror(errno));
        }
        s->reader = kyufu_audit_reader_new(s->file);
        return s->reader == NULL ? ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory") : 0;
    }
    if (store != NULL) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/data.mdb", store);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--store %s: not a store (no data.mdb: name the node's "
                             "DATA/ledger folder, or a copy of it)", store);
        }
        struct kyufu_storage_options so = { .path = store };
        char err[256] = "";
        int rv = kyufu_storage_open(&so, &s->store, err, sizeof err);
        if (rv != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "--store %s: %s %s", store,
                             kyufu_storage_strerror(rv), err);
        }
        return store_keys_set(r, s->store, store, keys);
    }
    return ctl__client(r, &s->client);
}

static void source_close(struct source *s)
{
    source_page_free(s);
    free(s->token);
    kyufu_audit_reader_free(s->reader);
    if (s->file != NULL) {
        fclose(s->file);
    }
    if (s->store != NULL) {
        kyufu_storage_close(s->store);
    }
}

/* The next record (borrowed until the next call): 1, 0 at the end, or
 * -(exit code) after printing the error. */
static int source_next(struct source *s, const Kyufu__V1__AuditRecord **out)
{
    if (s->i < s->n) {
        *out = s->recs[s->i++];
        return 1;
    }
    if (s->done) {
        return 0;
    }
    source_page_free(s);
    if (s->reader != NULL) {
        char err[256];
        int rv = kyufu_audit_read(s->reader, &s->one, err, sizeof err);
        if (rv < 0) {
            return -ctl__fail(s->r, KYUFU_CTL_EXIT_CHECK, "export: %s", err);
        }
        if (rv == 0) {
            s->done = true;
            return 0;
        }
        *out = s->one;
        return 1;
    }
    const char *token = s->token != NULL ? s->token : "";
    if (s->store != NULL) {
        int rv = kyufu_storage_list_audit(s->store, token, KYUFU_CTL_LIST_PAGE_RECORDS,
                                          &s->page);
        if (rv != 0) {
            bool keyless = rv == KYUFU_STORAGE_ECORRUPT &&
                           !kyufu_storage_keys_present(s->store);
            return -ctl__fail(s->r, KYUFU_CTL_EXIT_LOCAL, "store: %s%s",
                              kyufu_storage_strerror(rv),
                              keyless ? " (or sealed: a store with encryption at rest "
                                        "is read with --kek FILE or --passphrase-file "
                                        "FILE, --ca FILE and --node N)"
                                      : "");
        }
        s->recs = (Kyufu__V1__AuditRecord **)s->page.items;
        s->n = s->page.n;
        free(s->token);
        s->token = s->page.next[0] != '\0' ? strdup(s->page.next)
                                                                   : NULL;
    } else {
        Kyufu__V1__ListRequest req = KYUFU__V1__LIST_REQUEST__INIT;
        req.page_size = KYUFU_CTL_LIST_PAGE_RECORDS;
        req.page_token = (char *)token;
        struct kyufu_client_call_opts copts = { .deadline_ms = s->r->deadline_ms,
                                                .endpoint = -1 };
        struct kyufu_client_result res;
        int crv = kyufu_client_call(s->client, "ListAudit", &req.base,
                                    &kyufu__v1__list_audit_response__descriptor, &copts,
                                    &res);
        int rv = ctl__call_exit(s->r, crv, &res);
        if (rv != 0) {
            return -rv;
        }
        Kyufu__V1__ListAuditResponse *lr = (void *)res.response;
        s->resp = res.response;
        s->recs = lr->records;
        s->n = lr->n_records;
        free(s->token);
        s->token = lr->next_page_token != NULL && lr->next_page_token[0] != '\0'
                       ? strdup(lr->next_page_token)
                       : NULL;
    }
    if (s->token == NULL) {
        s->done = true;
    }
    s->i = 0;
    if (s->n == 0) {
        return 0;
    }
    *out = s->recs[s->i++];
    return 1;
}

/* ------------------------------------------------------------ options */

static const struct option audit_opts[] = {
    { "out", required_argument, NULL, OPT_OUT },
    { "format", required_argument, NULL, OPT_FORMAT },
    { "from", required_argument, NULL, OPT_FROM },
    { "to", required_argument, NULL, OPT_TO },
    { "actor", required_argument, NULL, OPT_ACTOR },
    { "object", required_argument, NULL, OPT_OBJECT },
    { "store", required_argument, NULL, OPT_STORE },
    { "checkpoints", required_argument, NULL, OPT_CHECKPOINTS },
    { "cert", required_argument, NULL, OPT_CERT },
    { "export", required_argument, NULL, OPT_EXPORT },
    { "before", required_argument, NULL, OPT_BEFORE },
    { "segment-records", required_argument, NULL, OPT_SEGMENT },
    { "kek", required_argument, NULL, OPT_KEK },
    { "passphrase-file", required_argument, NULL, OPT_PASSPHRASE_FILE },
    { "cmk", required_argument, NULL, OPT_CMK },
    { "ca", required_argument, NULL, OPT_CA },
    { "node", required_argument, NULL, OPT_NODE },
    { "help", no_argument, NULL, 'h' },
};

struct audit_args
{
    const char *out;
    enum kyufu_audit_format format;
    bool has_from, has_to, has_before;
    int64_t from_ms, to_ms, before_ms;
    const char *actor;
    const char *object;
    const char *store;
    const char *checkpoints;
    const char *certs[CERTS_MAX];
    size_t n_certs;
    const char *export;
    uint64_t segment;
    struct store_keys keys;
    bool help;
};

/* A time option: YYYY-MM-DD (00:00 in the zone in use) or ms. */
static int parse_time(struct ctl__run *r, const char *opt, const char *v, int64_t *out)
{
    if (kyufu_ctl_date_ms(v, out) == 0) {
        return 0;
    }
    char *end;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0 || ms < 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "--%s: YYYY-MM-DD or milliseconds since 1970, not '%s'", opt, v);
    }
    *out = ms;
    return 0;
}

static int parse_args(struct ctl__run *r, const char *verb, int argc, char **argv,
                      struct audit_args *a)
{
    struct option opts[CTL__COMMON_OPTS_N + sizeof audit_opts / sizeof audit_opts[0] + 1];
    ctl__opts_join(opts, audit_opts, sizeof audit_opts / sizeof audit_opts[0]);
    memset(a, 0, sizeof *a);
    a->segment = SEGMENT_RECORDS_DEFAULT;
    const char *from = NULL, *to = NULL, *before = NULL;
    optind = 0;
    opterr = 0;
    int c, rv = 0;
    while (rv == 0 && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            a->help = true;
            return 0;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "jsonl") == 0 || strcmp(optarg, "json") == 0) {
                a->format = KYUFU_AUDIT_JSONL;
            } else if (strcmp(optarg, "csv") == 0) {
                a->format = KYUFU_AUDIT_CSV;
            } else {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--format: jsonl or csv, not '%s'",
                               optarg);
            }
            break;
        case OPT_FROM:
            from = optarg;
            break;
        case OPT_TO:
            to = optarg;
            break;
        case OPT_BEFORE:
            before = optarg;
            break;
        case OPT_ACTOR:
            if (optarg[0] == '\0' || strlen(optarg) > KYUFU_CLIENT_ACTOR_BYTES_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--actor: a staff id of 1..%u bytes",
                               KYUFU_CLIENT_ACTOR_BYTES_MAX);
            }
            a->actor = optarg;
            break;
        case OPT_OBJECT:
            if (optarg[0] == '\0' || strlen(optarg) > 256) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                               "--object: an object such as household/H-001");
            }
            a->object = optarg;
            break;
        case OPT_STORE:
            a->store = optarg;
            break;
        case OPT_CHECKPOINTS:
            a->checkpoints = optarg;
            break;
        case OPT_CERT:
            if (a->n_certs == CERTS_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--cert: at most %d", CERTS_MAX);
            } else {
                a->certs[a->n_certs++] = optarg;
            }
            break;
        case OPT_EXPORT:
            a->export = optarg;
            break;
        case OPT_SEGMENT: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] == '\0' || *end != '\0' || errno != 0 || v == 0 || v > 10000000) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                               "--segment-records: an integer in [1, 10000000]");
            }
            a->segment = v;
            break;
        }
        case OPT_KEK:
            a->keys.src.kek_file = optarg;
            break;
        case OPT_PASSPHRASE_FILE:
            a->keys.src.passphrase_file = optarg;
            break;
        case OPT_CMK:
            a->keys.cmk = optarg;
            break;
        case OPT_CA:
            a->keys.ca = optarg;
            break;
        case OPT_NODE: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] < '1' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                v > UINT32_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--node: a node id, 1..%u",
                               (unsigned)UINT32_MAX);
            }
            a->keys.node = v;
            break;
        }
        case '?':
        case ':':
            rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                           "audit %s: unknown option or missing value in '%s'", verb,
                           argv[optind - 1]);
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
    }
    if (rv == 0 && optind < argc) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "audit %s: unexpected argument '%s'", verb,
                       argv[optind]);
    }
    if (rv == 0 && from != NULL) {
        a->has_from = true;
        rv = parse_time(r, "from", from, &a->from_ms);
    }
    if (rv == 0 && to != NULL) {
        a->has_to = true;
        rv = parse_time(r, "to", to, &a->to_ms);
    }
    if (rv == 0 && before != NULL) {
        a->has_before = true;
        rv = parse_time(r, "before", before, &a->before_ms);
    }
    if (rv == 0 && a->has_from && a->has_to && a->to_ms <= a->from_ms) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--to must be after --from");
    }
    if (rv == 0 && a->store != NULL && a->export != NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--store and --export: one source only");
    }
    const struct store_keys *k = &a->keys;
    bool any_key = k->src.kek_file != NULL || k->src.passphrase_file != NULL ||
                   k->cmk != NULL || k->ca != NULL || k->node != 0;
    if (rv == 0 && any_key && a->store == NULL) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                       "--kek, --passphrase-file, --cmk, --ca, --node: only with --store");
    }
    if (rv == 0 && any_key &&
        ((k->src.kek_file == NULL) == (k->src.passphrase_file == NULL) ||
         k->ca == NULL || k->node == 0)) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                       "a store with encryption at rest: --kek FILE or --passphrase-file "
                       "FILE (one), --ca FILE and --node N, and --cmk FILE unless it is "
                       "STORE/../keys/cmk");
    }
    return rv;
}

/* ------------------------------------------------------------ export */

/* Whether `object` names obj: equal, or one of its comma-separated parts. */
static bool object_matches(const char *object, const char *want)
{
    size_t n = strlen(want);
    for (const char *p = object; p != NULL && *p != '\0';) {
        while (*p == ' ') {
            p++;
        }
        if (strncmp(p, want, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' ')) {
            return true;
        }
        p = strchr(p, ',');
        p = p != NULL ? p + 1 : NULL;
    }
    return false;
}

static bool wanted(const struct audit_args *a, const Kyufu__V1__AuditRecord *rec)
{
    if (a->has_from && rec->time_ms < a->from_ms) {
        return false;
    }
    if (a->has_to && rec->time_ms >= a->to_ms) {
        return false;
    }
    if (a->actor != NULL && strcmp(rec->actor, a->actor) != 0) {
        return false;
    }
    if (a->object != NULL && !object_matches(rec->object, a->object)) {
        return false;
    }
    return true;
}

static const char export_help[] =
    "kyufuctl audit export [--format jsonl|csv] [--from DATE|MS] [--to DATE|MS]\n"
    "                      [--actor STAFF_ID] [--object KIND/ID] [--out FILE] [--store DIR]\n"
    "  The records of the operation log in [from, to), of one account or about one\n"
    "  object, as JSON lines (default) or CSV (RFC 4180), each with its hash and\n"
    "  prev_hash: `kyufuctl audit verify --export FILE` checks them later.\n"
    "  --store DIR reads a stopped node's store folder; with encryption at rest add\n"
    "  --kek FILE | --passphrase-file FILE, --ca CA_PEM, --node N [--cmk FILE].\n"
    "role needed: auditor (ListAudit); none with --store (a node's store folder)\n";

static int audit_export(struct ctl__run *r, const struct audit_args *a)
{
    FILE *out = r->out;
    if (a->out != NULL) {
        out = fopen(a->out, "wxe");
        if (out == NULL) {
            return ctl__fail(r, errno == EEXIST ? KYUFU_CTL_EXIT_USAGE : KYUFU_CTL_EXIT_LOCAL,
                             "--out %s: %s", a->out, strerror(errno));
        }
    }
    struct source s;
    int rv = source_open(&s, r, a->store, &a->keys, NULL);
    uint64_t n = 0;
    if (rv == 0) {
        kyufu_audit_write_header(out, a->format);
    }
    const Kyufu__V1__AuditRecord *rec;
    int got;
    while (rv == 0 && (got = source_next(&s, &rec)) != 0) {
        if (got < 0) {
            rv = -got;
            break;
        }
        if (wanted(a, rec)) {
            if (kyufu_audit_write(out, a->format, rec) != 0) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            }
            n++;
        }
    }
    source_close(&s);
    if (out != r->out) {
        if (fflush(out) != 0 || fsync(fileno(out)) != 0) {
            rv = rv != 0 ? rv : ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", a->out,
                                          strerror(errno));
        }
        fclose(out);
        if (rv == 0) {
            fprintf(r->err, "kyufuctl: %llu records written to %s\n", (unsigned long long)n,
                    a->out);
        }
    }
    return rv;
}

/* ------------------------------------------------------------ archive */

static const char archive_help[] =
    "kyufuctl audit archive --before DATE|MS --out DIR [--segment-records N] [--store DIR]\n"
    "  Every record from seq 1 up to the first one at or after --before, as JSON-lines\n"
    "  segments DIR/audit-FIRST-LAST.jsonl of at most N records (default 100000), each\n"
    "  with DIR/audit-FIRST-LAST.anchor: its first prev_hash and last hash (the links\n"
    "  to the records around it), its record count and the file's SHA-256.  A segment\n"
    "  verifies alone: kyufuctl audit verify --export DIR/audit-FIRST-LAST.jsonl.\n"
    "  The live chain is not pruned.\n"
    "role needed: auditor (ListAudit); none with --store\n";

struct segment
{
    FILE *f;
    char path[4096];
    char tmp[4096];
    uint64_t first, last, n;
    uint8_t prev[32], hash[32];
};

static int file_sha256(const char *path, char out[65])
{
    uint8_t buf[65536], md[32];
    unsigned mdlen = 0;
    FILE *f = fopen(path, "re");
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rv = f != NULL && ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0
                                                                                         : -1;
    size_t got;
    while (rv == 0 && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        rv = EVP_DigestUpdate(ctx, buf, got) == 1 ? 0 : -1;
    }
    if (rv == 0 && (ferror(f) || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1)) {
        rv = -1;
    }
    if (f != NULL) {
        fclose(f);
    }
    EVP_MD_CTX_free(ctx);
    if (rv == 0) {
        ctl__hex(md, 32, out);
    }
    return rv;
}

/* Close the segment: rename it into place, write its anchor. */
static int segment_close(struct ctl__run *r, const char *dir, struct segment *g)
{
    char anchor[4096], sum[65], p[65], h[65];
    if (fflush(g->f) != 0 || fsync(fileno(g->f)) != 0) {
        fclose(g->f);
        g->f = NULL;
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", g->tmp, strerror(errno));
    }
    fclose(g->f);
    g->f = NULL;
    snprintf(g->path, sizeof g->path, "%s/audit-%012" PRIu64 "-%012" PRIu64 ".jsonl", dir,
             g->first, g->last);
    snprintf(anchor, sizeof anchor, "%s/audit-%012" PRIu64 "-%012" PRIu64 ".anchor", dir,
             g->first, g->last);
    if (access(g->path, F_OK) == 0 || access(anchor, F_OK) == 0) {
        unlink(g->tmp);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s already exists: archived before (remove it to write it again)",
                         g->path);
    }
    if (rename(g->tmp, g->path) != 0 || file_sha256(g->path, sum) != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", g->path, strerror(errno));
    }
    ctl__hex(g->prev, 32, p);
    ctl__hex(g->hash, 32, h);
    FILE *a = fopen(anchor, "wxe");
    if (a == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", anchor, strerror(errno));
    }
    fprintf(a,
            "{\"v\":1,\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64
            ",\"records\":%" PRIu64 ",\"first_prev_hash\":\"%s\",\"last_hash\":\"%s\","
            "\"file_sha256\":\"%s\"}\n",
            g->first, g->last, g->n, p, h, sum);
    int rv = fflush(a) == 0 && fsync(fileno(a)) == 0 ? 0 : -1;
    fclose(a);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", anchor, strerror(errno));
    }
    fprintf(r->out, "%s: seq %" PRIu64 "..%" PRIu64 " (%" PRIu64 " records)\n", g->path,
            g->first, g->last, g->n);
    return 0;
}

static int audit_archive(struct ctl__run *r, const struct audit_args *a)
{
    if (!a->has_before || a->out == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "audit archive: --before and --out are required");
    }
    struct stat st;
    if (stat(a->out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--out %s: not a folder", a->out);
    }
    struct source s;
    int rv = source_open(&s, r, a->store, &a->keys, NULL);
    struct segment g;
    memset(&g, 0, sizeof g);
    struct kyufu_audit_check chk = { .whole = true };
    const Kyufu__V1__AuditRecord *rec;
    int got;
    uint64_t total = 0;
    while (rv == 0 && (got = source_next(&s, &rec)) != 0) {
        if (got < 0) {
            rv = -got;
            break;
        }
        if (rec->time_ms >= a->before_ms) {
            break;
        }
        kyufu_audit_check_record(&chk, rec);
        if (!kyufu_audit_check_ok(&chk)) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_CHECK,
                           "the chain does not verify at seq %" PRIu64 " (%s): nothing "
                           "archived past it",
                           chk.bad_seq, chk.bad_why);
            break;
        }
        if (g.f == NULL) {
            snprintf(g.tmp, sizeof g.tmp, "%s/.audit-archive.%ld.tmp", a->out, (long)getpid());
            g.f = fopen(g.tmp, "wxe");
            if (g.f == NULL) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s: %s", g.tmp, strerror(errno));
                break;
            }
            g.first = rec->seq;
            g.n = 0;
            memcpy(g.prev, rec->prev_hash.data, 32);
        }
        if (kyufu_audit_write(g.f, KYUFU_AUDIT_JSONL, rec) != 0) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            break;
        }
        g.last = rec->seq;
        memcpy(g.hash, rec->hash.data, 32);
        g.n++;
        total++;
        if (g.n == a->segment) {
            rv = segment_close(r, a->out, &g);
        }
    }
    if (rv == 0 && g.f != NULL) {
        rv = segment_close(r, a->out, &g);
    }
    if (g.f != NULL) {
        fclose(g.f);
        unlink(g.tmp);
    }
    source_close(&s);
    if (rv == 0) {
        fprintf(r->out, "%llu records archived\n", (unsigned long long)total);
    }
    return rv;
}

/* ------------------------------------------------------------ verify */

static const char verify_help[] =
    "kyufuctl audit verify [--checkpoints FILE --cert NODE_CERT...] [--store DIR | --export FILE]\n"
    "  Re-hash the chain here (never trusting the node) and compare it with the\n"
    "  signed checkpoints the nodes appended to FILE ([audit] checkpoint_file).\n"
    "  Reports a record whose content no longer matches its hash, a chain that\n"
    "  differs from a signed checkpoint (rewritten: with the seq range), a chain\n"
    "  shorter than a checkpoint (truncated), and a checkpoint line whose signature\n"
    "  does not verify with any --cert (forged).  Without these options: the\n"
    "  cluster's own VerifyAudit.\n"
    "  Records from ListAudit (default), a node's store folder (--store), or an\n"
    "  export or archived segment (--export; its .anchor is checked when present).\n"
    "exit: 0 verified, 5 a problem found, 2 usage, 3 no node answered, 4 local failure\n"
    "role needed: auditor (ListAudit); none with --store or --export\n";

struct certs
{
    EVP_PKEY *key[CERTS_MAX];
    uint64_t node[CERTS_MAX]; /* 0: names no node: tried for every line */
    size_t n;
};

static int load_certs(struct ctl__run *r, const struct audit_args *a, struct certs *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < a->n_certs; i++) {
        FILE *f = fopen(a->certs[i], "re");
        X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
        if (f != NULL) {
            fclose(f);
        }
        if (x == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--cert %s: not a PEM certificate",
                             a->certs[i]);
        }
        c->key[c->n] = X509_get_pubkey(x);
        c->node[c->n] = kyufu_audit_cert_node(x);
        X509_free(x);
        if (c->key[c->n] == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--cert %s: no usable public key",
                             a->certs[i]);
        }
        c->n++;
    }
    return 0;
}

static void free_certs(struct certs *c)
{
    for (size_t i = 0; i < c->n; i++) {
        EVP_PKEY_free(c->key[i]);
    }
}

static int cmp_cp(const void *x, const void *y)
{
    const struct kyufu_audit_checkpoint *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq ? 1 : (a->line > b->line) - (a->line < b->line);
}

struct cp_load
{
    struct kyufu_audit_checkpoint *cps;
    size_t n, lines, forged, unchecked;
    unsigned first_forged_line;
    char forged_why[200];
};

/* Read and check every line of the checkpoint file. */
static int load_checkpoints(struct ctl__run *r, const char *path, const struct certs *certs,
                            struct cp_load *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--checkpoints %s: %s", path, strerror(errno));
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    unsigned no = 0;
    int rv = 0;
    while (rv == 0 && (got = getline(&line, &lcap, f)) >= 0) {
        no++;
        if (strspn(line, " \t\r\n") == (size_t)got) {
            continue;
        }
        out->lines++;
        struct kyufu_audit_checkpoint cp = { .line = no };
        uint8_t sig[SIG_BYTES_MAX];
        size_t sig_len = 0;
        char err[160];
        bool ok = false, tried = false;
        if (got > CHECKPOINT_LINE_BYTES_MAX) {
            snprintf(err, sizeof err, "longer than %d bytes", CHECKPOINT_LINE_BYTES_MAX);
        } else if (kyufu_audit_checkpoint_parse(line, &cp, sig, sizeof sig, &sig_len, err,
                                                sizeof err) == 0) {
            for (size_t i = 0; !ok && i < certs->n; i++) {
                if (certs->node[i] != 0 && certs->node[i] != cp.node) {
                    continue;
                }
                tried = true;
                ok = kyufu_checkpoint_verify(certs->key[i], cp.node, cp.seq, cp.hash,
                                             cp.time_ms, sig, sig_len);
            }
            snprintf(err, sizeof err, "node %" PRIu64 " seq %" PRIu64
                     ": the signature does not verify with its node's certificate", cp.node,
                     cp.seq);
            if (!tried) {
                out->unchecked++;
                continue;
            }
        }
        if (!ok) {
            if (out->forged++ == 0) {
                out->first_forged_line = no;
                snprintf(out->forged_why, sizeof out->forged_why, "%s", err);
            }
            continue;
        }
        if (out->n == cap) {
            if (cap >= CHECKPOINTS_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--checkpoints: more than %d lines",
                               CHECKPOINTS_MAX);
                break;
            }
            cap = cap == 0 ? 256 : cap * 2;
            void *m = realloc(out->cps, cap * sizeof *out->cps);
            if (m == NULL) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
                break;
            }
            out->cps = m;
        }
        out->cps[out->n++] = cp;
    }
    free(line);
    fclose(f);
    if (rv == 0 && out->n > 1) {
        qsort(out->cps, out->n, sizeof *out->cps, cmp_cp);
    }
    return rv;
}

/* An archived segment's anchor (FILE with .jsonl -> .anchor), if any. */
static int check_anchor(struct ctl__run *r, const char *export,
                        const struct kyufu_audit_check *chk, uint64_t first_seq,
                        const uint8_t first_prev[32], bool *problem)
{
    char path[4096];
    size_t n = strlen(export);
    if (n < 6 || strcmp(export + n - 6, ".jsonl") != 0 || n + 2 > sizeof path) {
        return 0;
    }
    snprintf(path, sizeof path, "%.*s.anchor", (int)(n - 6), export);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    json_error_t je;
    json_t *o = json_loadf(f, 0, &je);
    fclose(f);
    char sum[65], p[65], h[65];
    ctl__hex(first_prev, 32, p);
    ctl__hex(chk->last_hash, 32, h);
    const char *why = NULL;
    if (o == NULL) {
        why = "the anchor is not JSON";
    } else if (json_integer_value(json_object_get(o, "first_seq")) != (json_int_t)first_seq ||
               json_integer_value(json_object_get(o, "last_seq")) != (json_int_t)chk->last_seq ||
               json_integer_value(json_object_get(o, "records")) != (json_int_t)chk->records) {
        why = "the segment's seq range or count differs from its anchor (records removed or "
              "added)";
    } else if (!json_is_string(json_object_get(o, "first_prev_hash")) ||
               strcmp(json_string_value(json_object_get(o, "first_prev_hash")), p) != 0 ||
               !json_is_string(json_object_get(o, "last_hash")) ||
               strcmp(json_string_value(json_object_get(o, "last_hash")), h) != 0) {
        why = "the segment's end hashes differ from its anchor";
    } else if (file_sha256(export, sum) != 0 ||
               !json_is_string(json_object_get(o, "file_sha256")) ||
               strcmp(json_string_value(json_object_get(o, "file_sha256")), sum) != 0) {
        why = "the file's SHA-256 differs from its anchor";
    }
    json_decref(o);
    if (why != NULL) {
        fprintf(r->out, "ANCHOR: %s: %s\n", path, why);
        *problem = true;
    } else {
        fprintf(r->out, "anchor %s: matches (seq %" PRIu64 "..%" PRIu64 ")\n", path,
                first_seq, chk->last_seq);
    }
    return 0;
}

static int audit_verify(struct ctl__run *r, const struct audit_args *a)
{
    if (a->checkpoints == NULL && a->export == NULL && a->store == NULL) {
        return -1; /* the cluster's own VerifyAudit (ctl_ledger.c) */
    }
    if (a->checkpoints != NULL && a->n_certs == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "--checkpoints needs the nodes' certificates: --cert NODE_CERT "
                         "(repeat it)");
    }
    struct certs certs;
    struct cp_load cl;
    memset(&cl, 0, sizeof cl);
    int rv = load_certs(r, a, &certs);
    if (rv == 0 && a->checkpoints != NULL) {
        rv = load_checkpoints(r, a->checkpoints, &certs, &cl);
    }
    struct source s;
    bool opened = false;
    if (rv == 0) {
        rv = source_open(&s, r, a->store, &a->keys, a->export);
        opened = rv == 0;
    }
    struct kyufu_audit_check chk = { .cps = cl.cps, .n_cps = cl.n, .whole = a->export == NULL };
    uint64_t first_seq = 0, gaps = 0;
    uint8_t first_prev[32] = { 0 };
    const Kyufu__V1__AuditRecord *rec;
    int got;
    while (rv == 0 && (got = source_next(&s, &rec)) != 0) {
        if (got < 0) {
            rv = -got;
            break;
        }
        if (first_seq == 0) {
            first_seq = rec->seq;
            if (rec->prev_hash.len == 32) {
                memcpy(first_prev, rec->prev_hash.data, 32);
            }
        } else if (rec->seq != chk.last_seq + 1) {
            gaps++;
        }
        kyufu_audit_check_record(&chk, rec);
    }
    if (opened) {
        source_close(&s);
    }
    bool problem = false;
    if (rv == 0) {
        kyufu_audit_check_end(&chk);
        fprintf(r->out, "audit chain: %" PRIu64 " records checked", chk.records);
        if (chk.records > 0) {
            fprintf(r->out, " (seq %" PRIu64 "..%" PRIu64 ")", first_seq, chk.last_seq);
        }
        fputc('\n', r->out);
        if (a->export != NULL && gaps > 0) {
            fprintf(r->out, "note: the export skips records in %" PRIu64 " places (a filtered "
                    "export): each record was checked against its own prev_hash\n", gaps);
        }
        if (a->checkpoints != NULL) {
            fprintf(r->out,
                    "checkpoints: %zu lines, %zu signed by a given certificate, %" PRIu64
                    " compared with the chain and matched\n",
                    cl.lines, cl.n, chk.cps_matched);
            if (cl.unchecked > 0) {
                fprintf(r->out, "note: %zu lines of nodes without a --cert were not checked\n",
                        cl.unchecked);
            }
        }
        if (chk.bad_seq != 0) {
            fprintf(r->out, "REWRITTEN: seq %" PRIu64 ": %s\n", chk.bad_seq, chk.bad_why);
            problem = true;
        }
        if (chk.diverge_seq != 0) {
            fprintf(r->out,
                    "REWRITTEN: the chain differs from node %" PRIu64 "'s signed checkpoint at "
                    "seq %" PRIu64 " (it agreed up to seq %" PRIu64 "): a record in seq %" PRIu64
                    "..%" PRIu64 " was changed\n",
                    chk.diverge_node, chk.diverge_seq, chk.diverge_after,
                    chk.diverge_after + 1, chk.diverge_seq);
            problem = true;
        }
        if (chk.truncated_at != 0) {
            fprintf(r->out,
                    "TRUNCATED: the chain ends at seq %" PRIu64 " but node %" PRIu64
                    " signed a checkpoint at seq %" PRIu64 "\n",
                    chk.last_seq, chk.truncated_node, chk.truncated_at);
            problem = true;
        }
        if (cl.forged > 0) {
            fprintf(r->out, "FORGED: %s line %u: %s (%zu such lines)\n", a->checkpoints,
                    cl.first_forged_line, cl.forged_why, cl.forged);
            problem = true;
        }
        if (a->export != NULL && gaps == 0 && chk.records > 0) {
            check_anchor(r, a->export, &chk, first_seq, first_prev, &problem);
        }
        if (problem) {
            fprintf(r->err, "kyufuctl: the operation log does not verify\n");
            rv = KYUFU_CTL_EXIT_CHECK;
        } else {
            fprintf(r->out, "ok\n");
        }
    }
    free(cl.cps);
    free_certs(&certs);
    return rv;
}

/* ------------------------------------------------------------ entry */

int ctl__audit(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    bool export = strcmp(verb, "export") == 0;
    bool archive = strcmp(verb, "archive") == 0;
    bool verify = strcmp(verb, "verify") == 0;
    if (!export && !archive && !verify) {
        return -1;
    }
    struct audit_args a;
    int rv = parse_args(r, verb, argc, argv, &a);
    if (rv != 0) {
        return rv;
    }
    if (a.help) {
        fputs(export ? export_help : archive ? archive_help : verify_help, r->out);
        return verify ? -1 : 0; /* verify: the ledger command adds its own */
    }
    if (!verify && (a.export != NULL || a.checkpoints != NULL || a.n_certs > 0)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "audit %s: --export, --checkpoints and --cert belong to audit verify",
                         verb);
    }
    if (verify && (a.has_from || a.has_to || a.has_before || a.actor != NULL ||
                   a.object != NULL || a.out != NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "audit verify checks whole chains or exports: --from, --to, "
                         "--before, --actor, --object and --out belong to export and "
                         "archive");
    }
    if (!export && a.format != KYUFU_AUDIT_JSONL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--format belongs to audit export");
    }
    if (export) {
        return audit_export(r, &a);
    }
    if (archive) {
        return audit_archive(r, &a);
    }
    return audit_verify(r, &a);
}

void ctl__audit_usage(FILE *out)
{
    fputs("  audit export [--format jsonl|csv] [--from D] [--to D] [--actor ID] [--object O] "
          "[--out FILE]\n"
          "  audit archive --before DATE --out DIR\n"
          "  audit verify --checkpoints FILE --cert NODE_CERT... [--store DIR | --export FILE]\n",
          out);
}
