/* kyufuctl: the operator's and clerk's command line.
 *
 *   kyufuctl [common options] <noun> <verb> [options]
 *
 * Common options may also follow the command.  Every outcome maps to one
 * documented exit code (ctl.h, docs/kyufuctl.md); with --json, stdout holds
 * exactly one JSON document, also on failure ({"error": {...}}). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "kyufu.h"
#include "kyufu_version.h"

enum { OPT_CONFIG = 0x100, OPT_JSON, OPT_AS, OPT_DEADLINE, OPT_STALE, OPT_KEY, OPT_TZ,
       OPT_TOKEN_FILE, OPT_HELP, OPT_VERSION };

const struct option ctl__common_opts[CTL__COMMON_OPTS_N] = {
    { "config", required_argument, NULL, OPT_CONFIG },
    { "json", no_argument, NULL, OPT_JSON },
    { "as", required_argument, NULL, OPT_AS },
    { "deadline-ms", required_argument, NULL, OPT_DEADLINE },
    { "stale", no_argument, NULL, OPT_STALE },
    { "idempotency-key", required_argument, NULL, OPT_KEY },
    { "tz", required_argument, NULL, OPT_TZ },
    { "token-file", required_argument, NULL, OPT_TOKEN_FILE },
};

void ctl__opts_join(struct option *opts, const struct option *extra, size_t n_extra)
{
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    memcpy(opts + CTL__COMMON_OPTS_N, extra, n_extra * sizeof extra[0]);
    opts[CTL__COMMON_OPTS_N + n_extra] = (struct option){ 0 };
}

int ctl__fail(struct ctl__run *r, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(r->err, "kyufuctl: %s\n", msg);
    if (r->json) {
        json_t *doc = json_pack("{s:{s:i,s:s}}", "error", "exit_code", code,
                                "message", msg);
        json_t *e = doc != NULL ? json_object_get(doc, "error") : NULL;
        if (e != NULL && r->repeat[0] != '\0') {
            /* A write whose outcome is unknown: its key and how to repeat
             * it safely (docs/kyufuctl.md "JSON stability"). */
            char key[KYUFU_CLIENT_ID_BYTES_MAX + 24];
            snprintf(key, sizeof key, "%s:%llu", r->key_id, (unsigned long long)r->key_seq);
            json_object_set_new(e, "idempotency_key", json_string(key));
            json_object_set_new(e, "repeat_command", json_string(r->repeat));
        }
        if (doc != NULL) {
            json_dumpf(doc, r->out, JSON_INDENT(2));
            fputc('\n', r->out);
            json_decref(doc);
        }
    }
    return code;
}

int ctl__emit_json(struct ctl__run *r, json_t *doc)
{
    if (doc == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory (JSON)");
    }
    json_dumpf(doc, r->out, JSON_INDENT(2));
    fputc('\n', r->out);
    json_decref(doc);
    return 0;
}

int ctl__common_opt(struct ctl__run *r, int opt, const char *arg)
{
    switch (opt) {
    case OPT_CONFIG:
        r->config_path = arg;
        return 0;
    case OPT_JSON:
        r->json = true;
        return 0;
    case OPT_AS:
        if (arg[0] == '\0' || strlen(arg) > KYUFU_CLIENT_ACTOR_BYTES_MAX) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--as: a staff id of 1..%u bytes",
                             KYUFU_CLIENT_ACTOR_BYTES_MAX);
        }
        r->actor = arg;
        return 0;
    case OPT_DEADLINE: {
        char *end;
        errno = 0;
        unsigned long v = strtoul(arg, &end, 10);
        if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 ||
            v == 0 || v > KYUFU_CLIENT_DEADLINE_MS_MAX) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--deadline-ms: an integer in [1, %u]",
                             KYUFU_CLIENT_DEADLINE_MS_MAX);
        }
        r->deadline_ms = (uint32_t)v;
        return 0;
    }
    case OPT_STALE:
        r->stale = true;
        return 0;
    case OPT_TOKEN_FILE:
        if (arg[0] == '\0' || strlen(arg) >= sizeof r->token_path) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--token-file: a path of 1..%zu bytes",
                             sizeof r->token_path - 1);
        }
        r->token_file = arg;
        return 0;
    case OPT_TZ: {
        char err[256];
        if (kyufu_ctl_tz_set(arg, err, sizeof err) != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--tz: %s", err);
        }
        r->tz_given = true;
        return 0;
    }
    case OPT_KEY: {
        /* CLIENT_ID:SEQUENCE; the id as the server takes it (printable,
         * 1..64 bytes), the sequence a positive integer. */
        const char *colon = strrchr(arg, ':');
        size_t idlen = colon != NULL ? (size_t)(colon - arg) : 0;
        char *end = NULL;
        errno = 0;
        unsigned long long v = colon != NULL ? strtoull(colon + 1, &end, 10) : 0;
        bool ok = idlen > 0 && idlen <= KYUFU_CLIENT_ID_BYTES_MAX && colon[1] >= '1' &&
                  colon[1] <= '9' && *end == '\0' && errno == 0 && v > 0;
        for (size_t i = 0; ok && i < idlen; i++) {
            ok = arg[i] > 0x20 && arg[i] < 0x7f;
        }
        if (!ok) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "--idempotency-key: CLIENT_ID:SEQUENCE (id of 1..%u printable "
                             "bytes, sequence >= 1)", KYUFU_CLIENT_ID_BYTES_MAX);
        }
        memcpy(r->key_id, arg, idlen);
        r->key_id[idlen] = '\0';
        r->key_seq = v;
        return 0;
    }
    default:
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
    }
}

static client__transport_factory test_factory;
static void *test_factory_arg;

void ctl__set_transport(client__transport_factory factory, void *arg)
{
    test_factory = factory;
    test_factory_arg = arg;
}

int ctl__client(struct ctl__run *r, struct kyufu_client **out)
{
    if (r->client != NULL) {
        *out = r->client;
        return 0;
    }
    return ctl__client_on(r, NULL, out);
}

/* Which session this run acts in (docs/kyufuctl.md "Signing in"):
 * KYUFU_TOKEN if set (scripts), else the token file (--token-file, the
 * config's token_file, else $XDG_CONFIG_HOME/kyufu/token or
 * ~/.config/kyufu/token).  No file: no token (the node answers
 * UNAUTHENTICATED and ctl__call_exit says to sign in).  A file others may
 * read, or one without a token: refused.  login reads neither (it writes
 * the file).  Sets cfg->token; clears cfg->token_file (handled here). */
static int session_token(struct ctl__run *r, struct kyufu_client_config *cfg)
{
    r->token_path[0] = '\0';
    if (r->token_file != NULL) {
        snprintf(r->token_path, sizeof r->token_path, "%s", r->token_file);
    } else if (cfg->token_file != NULL) {
        snprintf(r->token_path, sizeof r->token_path, "%s", cfg->token_file);
    } else {
        (void)kyufu_client_token_default_path(r->token_path, sizeof r->token_path);
    }
    free(cfg->token_file);
    cfg->token_file = NULL;
    if (r->no_token) {
        return 0;
    }
    const char *env = getenv("KYUFU_TOKEN");
    if (env != NULL && env[0] != '\0') {
        if (kyufu_client_token_check(env) != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "KYUFU_TOKEN is not a session token (%u hex digits)",
                             KYUFU_CLIENT_TOKEN_BYTES);
        }
        cfg->token = strdup(env);
        r->token_from_env = true;
        return cfg->token == NULL ? ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory") : 0;
    }
    if (r->token_path[0] == '\0') {
        return 0; /* neither HOME nor XDG_CONFIG_HOME: no default file */
    }
    char token[KYUFU_CLIENT_TOKEN_BYTES + 1];
    char err[PATH_MAX + 200];
    int rv = kyufu_client_token_read(r->token_path, token, err, sizeof err);
    if (rv == KYUFU_CLIENT_ENO_TOKEN) {
        return 0;
    }
    if (rv != 0) {
        return ctl__fail(r, rv == KYUFU_CLIENT_EIO ? KYUFU_CTL_EXIT_LOCAL : KYUFU_CTL_EXIT_USAGE,
                         "%s", err);
    }
    cfg->token = strdup(token);
    OPENSSL_cleanse(token, sizeof token);
    return cfg->token == NULL ? ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory") : 0;
}

int ctl__client_on(struct ctl__run *r, uv_loop_t *loop, struct kyufu_client **out)
{
    const char *path = r->config_path;
    if (path == NULL) {
        path = getenv("KYUFUCTL_CONFIG");
    }
    if (path == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "no client configuration: use --config FILE or set "
                         "KYUFUCTL_CONFIG");
    }
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[512];
    int rv = kyufu_client_config_load(&cfg, path, err, sizeof err);
    if (rv == 0) {
        rv = kyufu_client_config_validate(&cfg, err, sizeof err);
    }
    if (rv == 0 && r->actor != NULL) {
        free(cfg.actor);
        cfg.actor = strdup(r->actor);
        if (cfg.actor == NULL) {
            rv = KYUFU_CLIENT_ENOMEM;
        }
    }
    if (rv != 0) {
        kyufu_client_config_free(&cfg);
        return ctl__fail(r, rv == KYUFU_CLIENT_EIO || rv == KYUFU_CLIENT_ECONFIG
                                ? KYUFU_CTL_EXIT_USAGE
                                : KYUFU_CTL_EXIT_LOCAL,
                         "%s", err);
    }
    if (!r->tz_given && cfg.time_zone != NULL &&
        kyufu_ctl_tz_set(cfg.time_zone, err, sizeof err) != 0) {
        kyufu_client_config_free(&cfg);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: key 'time_zone': %s", path, err);
    }
    rv = session_token(r, &cfg);
    if (rv != 0) {
        kyufu_client_config_free(&cfg);
        return rv;
    }
    if (r->actor == NULL && cfg.actor != NULL) {
        /* The config's actor: an assertion, as --as. */
        snprintf(r->actor_buf, sizeof r->actor_buf, "%s", cfg.actor);
        r->actor = r->actor_buf;
    }
    struct kyufu_client *client = NULL;
    rv = test_factory != NULL
             ? client__create_with(&cfg, loop, test_factory, test_factory_arg, &client, err,
                                   sizeof err)
             : kyufu_client_create(&cfg, loop, &client, err, sizeof err);
    kyufu_client_config_free(&cfg);
    if (rv != 0) {
        return ctl__fail(r, rv == KYUFU_CLIENT_ECONFIG ? KYUFU_CTL_EXIT_USAGE
                                                       : KYUFU_CTL_EXIT_LOCAL,
                         "%s", err);
    }
    if (loop == NULL) {
        r->client = client;
    }
    *out = client;
    return 0;
}

int ctl__op_header(struct ctl__run *r, struct kyufu_client *c,
                  Kyufu__V1__RequestHeader *hdr, Kyufu__V1__IdempotencyKey *key)
{
    if (r->key_seq != 0) {
        key->client_id = r->key_id;
        key->sequence = r->key_seq;
        hdr->key = key;
        hdr->actor = (char *)(r->actor != NULL ? r->actor : "");
        return 0;
    }
    int rv = kyufu_client_header_init(c, hdr, key, r->actor);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s", kyufu_client_strerror(rv));
    }
    return 0;
}

int ctl__op_write(struct ctl__run *r, struct kyufu_client *c, const char *cmd,
                  const char *method, const struct ProtobufCMessage *req,
                  uint64_t *index)
{
    struct kyufu_client_call_opts opts = {.deadline_ms = r->deadline_ms, .endpoint = -1};
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, method, req, &kyufu__v1__write_response__descriptor,
                                &opts, &res);
    int rv = ctl__call_exit(r, crv, &res);
    if (rv != 0) {
        return rv;
    }
    const Kyufu__V1__WriteResponse *wr = (const Kyufu__V1__WriteResponse *)res.response;
    if (wr->result == NULL || wr->result->code != KYUFU__V1__CODE__OK) {
        const char *m = wr->result != NULL ? wr->result->message : "no result";
        rv = ctl__fail(r, KYUFU_CTL_EXIT_REJECTED, "%s: refused: %s", cmd, m);
        kyufu_client_response_free(res.response);
        return rv;
    }
    *index = wr->result->raft_index;
    kyufu_client_response_free(res.response);
    return 0;
}

int ctl__call_exit(struct ctl__run *r, int rv, const struct kyufu_client_result *res)
{
    if (rv == 0 && res->grpc_status == KYUFU_GRPC_OK) {
        return 0;
    }
    if (rv == 0 && res->grpc_status == KYUFU_GRPC_UNAUTHENTICATED) {
        /* No token, an expired or closed session, a token shown on another
         * certificate: the remedy is the same. */
        return ctl__fail(r, KYUFU_CTL_EXIT_REJECTED,
                         "not signed in or session expired: kyufuctl login%s (%s)",
                         r->token_from_env ? " (or a new KYUFU_TOKEN)" : "", res->message);
    }
    if (rv == 0 && res->grpc_status == KYUFU_GRPC_PERMISSION_DENIED) {
        return ctl__fail(r, KYUFU_CTL_EXIT_REJECTED,
                         "PERMISSION_DENIED: %s (kyufuctl whoami shows your roles)",
                         res->message);
    }
    if (rv == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_REJECTED, "%s: %s",
                         kyufu_grpc_status_name(res->grpc_status), res->message);
    }
    if (rv == KYUFU_CLIENT_EUNAVAILABLE || rv == KYUFU_CLIENT_EDEADLINE) {
        return ctl__fail(r, KYUFU_CTL_EXIT_UNAVAILABLE,
                         "%s after %u attempt(s): %s %s",
                         kyufu_client_strerror(rv), res->attempts,
                         kyufu_grpc_status_name(res->grpc_status), res->message);
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "%s%s%s", kyufu_client_strerror(rv),
                     res->message[0] != '\0' ? ": " : "", res->message);
}

/* Append arg to buf shell-quoted ('...' unless it is plainly safe). */
static bool put_arg(char *buf, size_t len, size_t *n, const char *arg)
{
    bool plain = arg[0] != '\0';
    for (const char *p = arg; *p != '\0' && plain; p++) {
        plain = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                       "_@%+=:,./-", *p) != NULL;
    }
    size_t need = 1;
    for (const char *p = arg; *p != '\0'; p++) {
        need += *p == '\'' ? 4 : 1;
    }
    if (*n + need + 3 >= len) {
        return false;
    }
    buf[(*n)++] = ' ';
    if (plain) {
        *n += (size_t)snprintf(buf + *n, len - *n, "%s", arg);
        return true;
    }
    buf[(*n)++] = '\'';
    for (const char *p = arg; *p != '\0'; p++) {
        if (*p == '\'') {
            memcpy(buf + *n, "'\\''", 4); /* close, escaped quote, reopen */
            *n += 4;
        } else {
            buf[(*n)++] = *p;
        }
    }
    buf[(*n)++] = '\'';
    buf[*n] = '\0';
    return true;
}

void ctl__repeat_command(struct ctl__run *r)
{
    char key[KYUFU_CLIENT_ID_BYTES_MAX + 24];
    snprintf(key, sizeof key, "%s:%llu", r->key_id, (unsigned long long)r->key_seq);
    size_t n = (size_t)snprintf(r->repeat, sizeof r->repeat, "kyufuctl");
    bool ok = put_arg(r->repeat, sizeof r->repeat, &n, "--idempotency-key") &&
              put_arg(r->repeat, sizeof r->repeat, &n, key);
    for (int i = 1; ok && i < r->argc; i++) {
        const char *a = r->argv[i];
        if (strcmp(a, "--idempotency-key") == 0) {
            i++; /* and its value: the key is the one above */
            continue;
        }
        if (strncmp(a, "--idempotency-key=", 18) == 0) {
            continue;
        }
        ok = put_arg(r->repeat, sizeof r->repeat, &n, a);
    }
    if (!ok) {
        r->repeat[0] = '\0';
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: kyufuctl [--config FILE] [--json] [--token-file FILE] "
            "[--deadline-ms N] [--stale] <noun> <verb> [options]\n"
            "       kyufuctl login | logout | whoami | passwd\n"
            "       kyufuctl --help | --version\n"
            "\n"
            "common options (before or after the command):\n"
            "  --config FILE     client configuration (default: $KYUFUCTL_CONFIG)\n"
            "  --json            print one JSON document instead of text\n"
            "  --token-file FILE the session token file (default: the config's token_file,\n"
            "                    else $XDG_CONFIG_HOME/kyufu/token or ~/.config/kyufu/token);\n"
            "                    KYUFU_TOKEN in the environment wins over the file\n"
            "  --as STAFF_ID     assert that the session is STAFF_ID's (the node refuses a\n"
            "                    write naming anyone else; the session decides who acts)\n"
            "  --deadline-ms N   overall deadline of each call, retries included\n"
            "  --stale           reads: answer from the node reached, no leader round trip\n"
            "  --tz ZONE         show and read times in ZONE (default: the config's\n"
            "                    time_zone, else " KYUFU_CTL_TZ_DEFAULT ")\n"
            "  --idempotency-key ID:SEQ  writes: use this key (repeat a write whose outcome\n"
            "                    is unknown with the SAME key: it is applied at most once);\n"
            "                    write settle: the key whose outcome to settle\n"
            "\ncommands (kyufuctl help NOUN VERB: one command's options, values and role):\n");
    ctl__auth_usage(out);
    ctl__ledger_usage(out);
    ctl__audit_usage(out);
    ctl__cluster_usage(out);
    ctl__node_usage(out);
    ctl__key_usage(out);
    ctl__restore_usage(out);
    ctl__terminal_usage(out);
    ctl__sla_usage(out);
    ctl__drill_usage(out);
    ctl__backup_usage(out);
    ctl__decommission_usage(out);
    fprintf(out, "\nexit codes:\n");
#define KYUFU_CTL__USAGE(name, value, text) fprintf(out, "  %d  %s\n", value, text);
    KYUFU_CTL_EXITS(KYUFU_CTL__USAGE)
#undef KYUFU_CTL__USAGE
}

int kyufu_ctl_main(int argc, char **argv, FILE *out, FILE *err)
{
    struct ctl__run r = { .out = out, .err = err };
    kyufu_ctl_tz_reset(); /* each run starts from the default zone */
    struct option opts[CTL__COMMON_OPTS_N + 3];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    opts[CTL__COMMON_OPTS_N] = (struct option){ "help", no_argument, NULL, OPT_HELP };
    opts[CTL__COMMON_OPTS_N + 1] =
        (struct option){ "version", no_argument, NULL, OPT_VERSION };
    opts[CTL__COMMON_OPTS_N + 2] = (struct option){ 0 };
    optind = 0; /* full re-initialisation of getopt (tests call us twice) */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage(out);
            return 0;
        }
        if (c == OPT_VERSION) {
            /* The release, and the command set of the API it was built
             * with (docs/operations.md "Upgrades"); each node's own and
             * the cluster's are in `cluster status`. */
            fprintf(out, "kyufuctl %s\ncommand set %u\n", KYUFU_VERSION,
                    (unsigned)KYUFU_COMMAND_SET_VERSION);
            return 0;
        }
        if (c == '?' || c == ':') {
            return ctl__fail(&r, KYUFU_CTL_EXIT_USAGE, "unknown or incomplete option '%s' "
                             "(see kyufuctl --help)", argv[optind - 1]);
        }
        int rv = ctl__common_opt(&r, c, optarg);
        if (rv != 0) {
            return rv;
        }
    }
    bool single = argc - optind >= 1 && (ctl__auth_single(argv[optind]) ||
                                         strcmp(argv[optind], "restore") == 0);
    if (argc - optind < 2 && !single) {
        usage(err);
        return ctl__fail(&r, KYUFU_CTL_EXIT_USAGE, "missing command");
    }
    const char *noun = argv[optind];
    const char *verb = single ? "" : argv[optind + 1];
    /* The command's own argv: argv[0] = "noun verb" (or the one word),
     * then its options. */
    int cargc = single ? argc - optind : argc - optind - 1;
    char **cargv = single ? argv + optind : argv + optind + 1;
    /* kyufuctl help NOUN VERB: the same as NOUN VERB --help. */
    char *help_argv[3];
    if (strcmp(noun, "help") == 0) {
        bool one = argc - optind >= 2 && ctl__auth_single(argv[optind + 1]);
        if (argc - optind < 3 && !one) {
            usage(out);
            return 0;
        }
        noun = argv[optind + 1];
        verb = one ? "" : argv[optind + 2];
        help_argv[0] = argv[optind + (one ? 1 : 2)];
        help_argv[1] = (char *)"--help";
        help_argv[2] = NULL;
        cargc = 2;
        cargv = help_argv;
    }
    r.argc = argc;
    r.argv = argv;
    int rv;
    if (strcmp(noun, "cluster") == 0) {
        rv = ctl__cluster(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "node") == 0) {
        rv = ctl__node(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "key") == 0) {
        rv = ctl__key(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "sla") == 0) {
        rv = ctl__sla(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "restore") == 0) {
        rv = ctl__restore(&r, cargc, cargv);
    } else if (strcmp(noun, "decommission") == 0) {
        rv = ctl__decommission(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "drill") == 0) {
        rv = ctl__drill(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "backup") == 0) {
        rv = ctl__backup(&r, verb, cargc, cargv);
    } else if (strcmp(noun, "audit") == 0 &&
               (rv = ctl__audit(&r, verb, cargc, cargv)) >= 0) {
        /* export, archive, verify against checkpoints (ctl_audit.c) */
    } else if (strcmp(noun, "terminal") == 0 || strcmp(noun, "operator") == 0) {
        rv = ctl__terminal(&r, noun, verb, cargc, cargv);
    } else {
        rv = ctl__auth(&r, noun, verb, cargc, cargv);
        if (rv < 0) {
            rv = ctl__ledger(&r, noun, verb, cargc, cargv);
        }
    }
    if (rv < 0) {
        rv = ctl__fail(&r, KYUFU_CTL_EXIT_USAGE, "unknown command '%s %s' (see "
                       "kyufuctl --help)", noun, verb);
    } else if (rv == 0 && cargv == help_argv &&
               (strcmp(noun, "cluster") == 0 || strcmp(noun, "node") == 0 ||
                strcmp(noun, "terminal") == 0 || strcmp(noun, "operator") == 0)) {
        /* Ledger commands print their role themselves (ctl_ledger.c). */
        fprintf(out, "\nrole needed: %s\n",
                strcmp(verb, "init") == 0
                    ? "none (local: writes files in --dir, contacts no node)"
                : strcmp(noun, "terminal") == 0 || strcmp(noun, "operator") == 0
                    ? "none (local: the CA folder and its passphrase; contacts no node)"
                    : "none checked: the Cluster service answers any client whose "
                      "certificate the cluster trusts (the operator's)");
    }
    if (r.client != NULL) {
        kyufu_client_destroy(r.client);
    }
    fflush(out);
    return rv;
}
