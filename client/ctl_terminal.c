/* kyufuctl terminal and operator commands: client certificates from the
 * cluster CA, one per terminal and per operator, their registry and their
 * revocation (docs/identity.md "Certificates", docs/operations.md
 * "Terminals and revocation").  All local: they read and write the CA
 * folder and never call a node.
 *
 *   terminal issue NAME --mac MAC --out DIR     operator issue STAFF_ID --out DIR
 *   terminal list | export --csv                operator list | export --csv
 *   terminal revoke NAME --reason TEXT          operator revoke STAFF_ID --reason TEXT
 *   terminal crl                                (a fresh CRL, same revocations)
 *
 * Options of each: --ca-dir DIR (default: see ctl__ca_dir),
 * --ca-passphrase-file FILE (commands that sign: issue, revoke, crl). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "ctl_registry.h"
#include "kyufu.h"

enum { OPT_CA_DIR = 0x500, OPT_PASS, OPT_MAC, OPT_OUT, OPT_REASON, OPT_CSV, OPT_HELP };

void ctl__terminal_usage(FILE *out)
{
    fprintf(out,
            "  terminal issue NAME --mac AA:BB:CC:DD:EE:FF --out DIR\n"
            "  operator issue STAFF_ID --out DIR\n"
            "               a client certificate from the cluster CA: DIR/NAME.pem and\n"
            "               DIR/NAME.key (0600), registered next to the CA\n"
            "  terminal list | operator list      the registry (name, MAC, fingerprint, status)\n"
            "  terminal export --csv | operator export --csv   the same as CSV (RFC 4180)\n"
            "  terminal revoke NAME --reason TEXT | operator revoke STAFF_ID --reason TEXT\n"
            "               mark it revoked and write CA_DIR/crl.pem: copy it over each\n"
            "               node's [tls] crl_file (nodes pick it up within seconds)\n"
            "  terminal crl   a fresh CRL (same revocations, new nextUpdate)\n"
            "    all: [--ca-dir DIR] (default: the ca folder next to the config's ca file)\n"
            "         [--ca-passphrase-file FILE] (else $KYUFU_CA_PASSPHRASE, else asked)\n");
}

int ctl__ca_dir(struct ctl__run *r, const char *given, const char *cmd, char *out, size_t len)
{
    if (given != NULL) {
        snprintf(out, len, "%s", given);
        return 0;
    }
    const char *path = r->config_path != NULL ? r->config_path : getenv("KYUFUCTL_CONFIG");
    if (path == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: --ca-dir DIR (cluster init's DIR/ca), or a client config "
                         "(--config) whose ca file lies in cluster init's DIR", cmd);
    }
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[512];
    int rv = kyufu_client_config_load(&cfg, path, err, sizeof err);
    if (rv != 0 || cfg.ca_file == NULL) {
        kyufu_client_config_free(&cfg);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", cmd,
                         rv != 0 ? err : "the client config names no ca file");
    }
    char copy[PATH_MAX], key[PATH_MAX + 32];
    snprintf(copy, sizeof copy, "%s", cfg.ca_file);
    kyufu_client_config_free(&cfg);
    const char *d = dirname(copy);
    /* cluster init's layout (DIR/ca/ca.key), else the folder itself (a CA
     * kept the older way, ca.key next to ca.pem). */
    snprintf(key, sizeof key, "%s/" CTL__CA_SUBDIR "/" CTL__CA_KEY, d);
    if (access(key, F_OK) == 0) {
        snprintf(out, len, "%s/" CTL__CA_SUBDIR, d);
    } else {
        snprintf(out, len, "%s", d);
    }
    return 0;
}

/* Who runs the command, for the registry: --as, else the login name. */
static const char *issuer_name(struct ctl__run *r, char *buf, size_t len)
{
    if (r->actor != NULL && r->actor[0] != '\0') {
        return r->actor;
    }
    struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL) {
        snprintf(buf, len, "%s", pw->pw_name);
    } else {
        snprintf(buf, len, "uid %u", (unsigned)geteuid());
    }
    return buf;
}

/* Printable text without control characters (a CSV field, a log line). */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

struct args
{
    const char *ca_dir, *pass_file, *mac, *out, *reason;
    bool csv;
    const char *name; /* the one positional argument, where there is one */
};

static int parse(struct ctl__run *r, int argc, char **argv, const char *cmd, bool positional,
                 struct args *a)
{
    static const struct option extra[] = {
        { "ca-dir", required_argument, NULL, OPT_CA_DIR },
        { "ca-passphrase-file", required_argument, NULL, OPT_PASS },
        { "mac", required_argument, NULL, OPT_MAC },
        { "out", required_argument, NULL, OPT_OUT },
        { "reason", required_argument, NULL, OPT_REASON },
        { "csv", no_argument, NULL, OPT_CSV },
        { "help", no_argument, NULL, OPT_HELP },
    };
    struct option opts[CTL__COMMON_OPTS_N + sizeof extra / sizeof extra[0] + 1];
    ctl__opts_join(opts, extra, sizeof extra / sizeof extra[0]);
    memset(a, 0, sizeof *a);
    optind = 0;
    opterr = 0;
    int c;
    /* No "+": the positional NAME may come before or after the options. */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rv = 0;
        switch (c) {
        case OPT_HELP:
            ctl__terminal_usage(r->out);
            return -1;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s: unknown option or missing value in '%s'", cmd,
                             argv[optind - 1]);
        case OPT_CA_DIR:
            a->ca_dir = optarg;
            break;
        case OPT_PASS:
            a->pass_file = optarg;
            break;
        case OPT_MAC:
            a->mac = optarg;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_REASON:
            a->reason = optarg;
            break;
        case OPT_CSV:
            a->csv = true;
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (positional && optind < argc) {
        a->name = argv[optind++];
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: unexpected argument '%s'", cmd,
                         argv[optind]);
    }
    if (positional && a->name == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: which one? (a name is required)", cmd);
    }
    return 0;
}

/* Refuse options that do not apply to the command. */
static int only(struct ctl__run *r, const char *cmd, const struct args *a, bool mac, bool out,
                bool reason, bool csv)
{
    const char *bad = !mac && a->mac != NULL         ? "--mac"
                      : !out && a->out != NULL       ? "--out"
                      : !reason && a->reason != NULL ? "--reason"
                      : !csv && a->csv               ? "--csv"
                                                     : NULL;
    if (bad != NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s does not apply here", cmd, bad);
    }
    return 0;
}

/* Load the registry (under its lock when `sign`) and, when `sign`, the CA,
 * after `check` (may be NULL) found nothing to refuse in the registry: a
 * command that will be refused asks for no passphrase. */
struct session
{
    char ca_dir[PATH_MAX];
    int lock;
    json_t *reg;
    X509 *ca;
    EVP_PKEY *ca_key;
};

static void close_session(struct session *s)
{
    json_decref(s->reg);
    X509_free(s->ca);
    EVP_PKEY_free(s->ca_key);
    if (s->lock >= 0) {
        close(s->lock);
    }
}

typedef int (*session_check)(json_t *reg, const void *arg, char *errmsg, size_t errmsg_len);

static int open_session(struct ctl__run *r, const char *cmd, const struct args *a, bool sign,
                        session_check check, const void *check_arg, struct session *s)
{
    char err[768];
    memset(s, 0, sizeof *s);
    s->lock = -1;
    int rv = ctl__ca_dir(r, a->ca_dir, cmd, s->ca_dir, sizeof s->ca_dir);
    if (rv != 0) {
        return rv;
    }
    if (sign) {
        s->lock = ctl__registry_lock(s->ca_dir, err, sizeof err);
        if (s->lock < 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: %s", cmd, err);
        }
    }
    rv = ctl__registry_load(s->ca_dir, &s->reg, err, sizeof err);
    if (rv == 0 && check != NULL) {
        rv = check(s->reg, check_arg, err, sizeof err);
    }
    if (rv == 0 && sign) {
        rv = ctl__ca_read(s->ca_dir, a->pass_file, &s->ca, &s->ca_key, err, sizeof err);
    }
    if (rv != 0) {
        close_session(s);
        return ctl__fail(r, rv, "%s: %s", cmd, err);
    }
    return 0;
}

static int check_issue(json_t *reg, const void *arg, char *errmsg, size_t errmsg_len)
{
    return ctl__registry_can_issue(reg, arg, errmsg, errmsg_len);
}

struct revoke_what
{
    const char *kind, *name;
};

static int check_revoke(json_t *reg, const void *arg, char *errmsg, size_t errmsg_len)
{
    const struct revoke_what *w = arg;
    return ctl__registry_can_revoke(reg, w->kind, w->name, errmsg, errmsg_len);
}

static int cmd_issue(struct ctl__run *r, const char *kind, int argc, char **argv)
{
    char cmd[32], mac[18], by[64], err[768];
    snprintf(cmd, sizeof cmd, "%s issue", kind);
    bool terminal = strcmp(kind, "terminal") == 0;
    struct args a;
    int rv = parse(r, argc, argv, cmd, true, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, terminal, true, false, false)) != 0) {
        return rv;
    }
    if (!ctl__registry_name_ok(a.name)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: '%s': 1..%u letters, digits, '.', '_', '-' (first a letter or "
                         "digit)",
                         cmd, a.name, KYUFU_CTL_TERMINAL_NAME_BYTES_MAX);
    }
    if (terminal && (a.mac == NULL || !ctl__registry_mac(a.mac, mac))) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: --mac AA:BB:CC:DD:EE:FF (six hex pairs) is required", cmd);
    }
    if (a.out == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --out DIR is required", cmd);
    }
    struct ctl__issue is = { .kind = kind, .name = a.name, .mac = terminal ? mac : NULL,
                             .by = issuer_name(r, by, sizeof by), .out_dir = a.out };
    struct session s;
    rv = open_session(r, cmd, &a, true, check_issue, &is, &s);
    if (rv != 0) {
        return rv;
    }
    rv = ctl__make_dir(a.out, err, sizeof err);
    if (rv == 0) {
        rv = ctl__registry_issue(s.reg, &is, s.ca, s.ca_key, r->json ? NULL : r->out, err,
                                 sizeof err);
    }
    if (rv == 0) {
        rv = ctl__registry_save(s.ca_dir, s.reg, err, sizeof err);
    }
    if (rv != 0) {
        close_session(&s);
        return ctl__fail(r, rv, "%s: %s", cmd, err);
    }
    json_t *e = json_array_get(s.reg, json_array_size(s.reg) - 1);
    if (r->json) {
        rv = ctl__emit_json(r, json_deep_copy(e));
    } else {
        fprintf(r->out, "%s %s: serial %s, sha256 %s\n", kind, a.name,
                json_string_value(json_object_get(e, "serial")),
                json_string_value(json_object_get(e, "sha256")));
    }
    close_session(&s);
    return rv;
}

static int cmd_list(struct ctl__run *r, const char *kind, bool export, int argc, char **argv)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "%s %s", kind, export ? "export" : "list");
    struct args a;
    int rv = parse(r, argc, argv, cmd, false, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, false, false, false, export)) != 0) {
        return rv;
    }
    if (export && !a.csv) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: --csv is the format (and required)",
                         cmd);
    }
    struct session s;
    rv = open_session(r, cmd, &a, false, NULL, NULL, &s);
    if (rv != 0) {
        return rv;
    }
    if (export) {
        ctl__registry_csv(r->out, s.reg, kind);
    } else if (r->json) {
        json_t *out = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(s.reg, i, e)
        {
            if (out != NULL && strcmp(json_string_value(json_object_get(e, "kind")), kind) == 0) {
                json_array_append(out, e);
            }
        }
        rv = ctl__emit_json(r, out);
    } else {
        fprintf(r->out, "%-20s %-8s %-17s %-20s %s\n", "NAME", "STATUS",
                strcmp(kind, "terminal") == 0 ? "MAC" : "", "ISSUED", "SHA256");
        size_t i;
        json_t *e;
        json_array_foreach(s.reg, i, e)
        {
            if (strcmp(json_string_value(json_object_get(e, "kind")), kind) != 0) {
                continue;
            }
            fprintf(r->out, "%-20s %-8s %-17s %-20s %s\n",
                    json_string_value(json_object_get(e, "name")),
                    json_string_value(json_object_get(e, "status")),
                    json_string_value(json_object_get(e, "mac")),
                    json_string_value(json_object_get(e, "issued_at")),
                    json_string_value(json_object_get(e, "sha256")));
        }
    }
    close_session(&s);
    return rv;
}

/* revoke (name given) or crl (none): the registry, then the CRL. */
static int cmd_revoke(struct ctl__run *r, const char *kind, bool revoke, int argc, char **argv)
{
    char cmd[32], by[64], err[768];
    snprintf(cmd, sizeof cmd, "%s %s", kind, revoke ? "revoke" : "crl");
    struct args a;
    int rv = parse(r, argc, argv, cmd, revoke, &a);
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if ((rv = only(r, cmd, &a, false, false, revoke, false)) != 0) {
        return rv;
    }
    if (revoke && (a.reason == NULL || !text_ok(a.reason, KYUFU_CTL_REVOKE_REASON_BYTES_MAX))) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "%s: --reason TEXT is required (1..%u bytes, no control characters)",
                         cmd, KYUFU_CTL_REVOKE_REASON_BYTES_MAX);
    }
    if (revoke && !ctl__registry_name_ok(a.name)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: '%s' is not a %s name", cmd, a.name,
                         kind);
    }
    struct revoke_what what = { kind, a.name };
    struct session s;
    rv = open_session(r, cmd, &a, true, revoke ? check_revoke : NULL, &what, &s);
    if (rv != 0) {
        return rv;
    }
    if (revoke) {
        rv = ctl__registry_revoke(s.reg, kind, a.name, issuer_name(r, by, sizeof by), a.reason,
                                  err, sizeof err);
    }
    /* The CRL first: a registry that says "revoked" must never come
     * without the CRL that does it. */
    if (rv == 0) {
        rv = ctl__registry_crl(s.ca_dir, s.reg, s.ca, s.ca_key, err, sizeof err);
    }
    if (rv == 0 && revoke) {
        rv = ctl__registry_save(s.ca_dir, s.reg, err, sizeof err);
    }
    if (rv != 0) {
        close_session(&s);
        return ctl__fail(r, rv, "%s: %s", cmd, err);
    }
    if (r->json) {
        char crl[PATH_MAX + 16];
        snprintf(crl, sizeof crl, "%s/" CTL__CA_CRL, s.ca_dir);
        rv = ctl__emit_json(r, json_pack("{s:s,s:s?}", "crl_file", crl, "revoked",
                                         revoke ? a.name : NULL));
    } else {
        fprintf(r->out,
                "%s%s%swrote %s/" CTL__CA_CRL "\n"
                "next: copy it over the [tls] crl_file of every node (cp to a temporary\n"
                "name there, then mv over it); each node reloads it within seconds\n",
                revoke ? "revoked " : "", revoke ? a.name : "", revoke ? "; " : "", s.ca_dir);
    }
    close_session(&s);
    return rv;
}

int ctl__terminal(struct ctl__run *r, const char *noun, const char *verb, int argc, char **argv)
{
    const char *kind = strcmp(noun, "terminal") == 0   ? "terminal"
                       : strcmp(noun, "operator") == 0 ? "operator"
                                                       : NULL;
    if (kind == NULL) {
        return -1;
    }
    if (strcmp(verb, "issue") == 0) {
        return cmd_issue(r, kind, argc, argv);
    }
    if (strcmp(verb, "list") == 0 || strcmp(verb, "export") == 0) {
        return cmd_list(r, kind, strcmp(verb, "export") == 0, argc, argv);
    }
    if (strcmp(verb, "revoke") == 0) {
        return cmd_revoke(r, kind, true, argc, argv);
    }
    if (strcmp(verb, "crl") == 0 && strcmp(kind, "terminal") == 0) {
        return cmd_revoke(r, kind, false, argc, argv);
    }
    return -1;
}
