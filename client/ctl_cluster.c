/* kyufuctl cluster commands: init (local files), status (every node asked
 * directly, all at once, each with a short timeout), transfer-leadership
 * (sent to the leader), and membership: add-node, remove-node,
 * replace-node (sent to the leader; docs/operations.md "Replacing a
 * node"). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "glue_limits.h"
#include "pwhash.h"
#include "kyufu.h"

enum { OPT_DIR = 0x300, OPT_NODES, OPT_HOST, OPT_HOSTS, OPT_RAFT_BASE, OPT_API_BASE,
       OPT_METRICS_BASE, OPT_FORCE, OPT_ETC_DIR, OPT_STATE_DIR, OPT_TO, OPT_DIGEST,
       OPT_NODE_TIMEOUT, OPT_ID, OPT_RAFT, OPT_API, OPT_CATCH_UP, OPT_OLD, OPT_NEW,
       OPT_HELP, OPT_CA_PASS, OPT_ADMIN_ID };

void ctl__cluster_usage(FILE *out)
{
    fprintf(out,
            "  cluster init --dir DIR [--nodes N] [--host H ...]\n"
            "               [--raft-port-base P] [--api-port-base P]\n"
            "               [--metrics-port-base P (0: none)] [--force]\n"
            "      a local cluster: every file under DIR, node i on port base + i - 1\n"
            "  cluster init --dir DIR --hosts H1,H2,... [--etc-dir /etc/kyufu]\n"
            "               [--state-dir /var/lib/kyufu] [--raft-port-base P]\n"
            "               [--api-port-base P] [--metrics-port-base P] [--force]\n"
            "      real hosts: DIR/nodeN to copy to host N, the same ports on every host\n"
            "    both: [--ca-passphrase-file FILE] (else $KYUFU_CA_PASSPHRASE, else asked)\n"
            "          [--admin-id STAFF_ID] (the first administrator's certificate; admin)\n"
            "  cluster status [--digest] [--node-timeout-ms N]\n"
            "  cluster transfer-leadership [--to NODE_ID]\n"
            "  cluster add-node --id N --raft HOST:PORT --api HOST:PORT\n"
            "               [--catch-up-timeout-ms MS]   (joins as a standby, then a voter)\n"
            "  cluster remove-node --id N\n"
            "  cluster replace-node --old N --new M [--raft HOST:PORT --api HOST:PORT]\n"
            "               [--catch-up-timeout-ms MS]   (add M, then remove N; re-run to resume)\n");
    ctl__recover_usage(out);
}

static int parse_uint(struct ctl__run *r, const char *opt, const char *s,
                      unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--%s: '%s' is not an integer in [%lu, %lu]",
                         opt, s, lo, hi);
    }
    *out = v;
    return 0;
}

/* Parse the command's options: common ones plus `extra`. */
static int getopts(struct ctl__run *r, int argc, char **argv, const struct option *extra,
                   size_t n_extra, int (*each)(struct ctl__run *, int, const char *, void *),
                   void *arg, const char *verb)
{
    struct option opts[CTL__COMMON_OPTS_N + 16];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    memcpy(opts + CTL__COMMON_OPTS_N, extra, n_extra * sizeof extra[0]);
    opts[CTL__COMMON_OPTS_N + n_extra] = (struct option){ "help", no_argument, NULL, OPT_HELP };
    opts[CTL__COMMON_OPTS_N + n_extra + 1] = (struct option){ 0 };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv;
        if (c == OPT_HELP) {
            ctl__cluster_usage(r->out);
            return -1;
        }
        if (c == '?' || c == ':') {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "cluster %s: unknown option or missing value in '%s'", verb,
                             argv[optind - 1]);
        }
        rv = c >= 0x300 ? each(r, c, optarg, arg) : ctl__common_opt(r, c, optarg);
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster %s: unexpected argument '%s'",
                         verb, argv[optind]);
    }
    return 0;
}

/* ------------------------------------------------------------ init */

static int init_opt(struct ctl__run *r, int c, const char *arg, void *p)
{
    struct kyufu_ctl_init_opts *o = p;
    unsigned long v;
    int rv;
    switch (c) {
    case OPT_DIR:
        o->dir = arg;
        return 0;
    case OPT_NODES:
        rv = parse_uint(r, "nodes", arg, 1, KYUFU_CTL_INIT_NODES_MAX, &v);
        o->nodes = (unsigned)v;
        return rv;
    case OPT_HOST:
        if (o->on_hosts) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "give --host or --hosts, not both");
        }
        if (o->n_hosts == KYUFU_CTL_INIT_NODES_MAX) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "too many hosts");
        }
        o->hosts[o->n_hosts++] = arg;
        return 0;
    case OPT_HOSTS: {
        /* Split in place into a copy that lives as long as the run: argv
         * strings are the process's. */
        char *s = (char *)arg;
        if (o->n_hosts > 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             o->on_hosts ? "--hosts given twice"
                                         : "give --host or --hosts, not both");
        }
        o->on_hosts = true;
        for (char *t; (t = strsep(&s, ",")) != NULL;) {
            if (t[0] == '\0') {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "--hosts: an empty host name (two commas, or one at an end)");
            }
            if (o->n_hosts == KYUFU_CTL_INIT_NODES_MAX) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--hosts: more than %u hosts",
                                 KYUFU_CTL_INIT_NODES_MAX);
            }
            o->hosts[o->n_hosts++] = t;
        }
        return 0;
    }
    case OPT_RAFT_BASE:
        rv = parse_uint(r, "raft-port-base", arg, 1, 65535, &v);
        o->raft_port_base = (uint16_t)v;
        return rv;
    case OPT_API_BASE:
        rv = parse_uint(r, "api-port-base", arg, 1, 65535, &v);
        o->api_port_base = (uint16_t)v;
        return rv;
    case OPT_METRICS_BASE:
        rv = parse_uint(r, "metrics-port-base", arg, 0, 65535, &v);
        o->metrics_port_base = (uint16_t)v;
        return rv;
    case OPT_FORCE:
        o->force = true;
        return 0;
    case OPT_ETC_DIR:
        o->etc_dir = arg;
        return 0;
    case OPT_STATE_DIR:
        o->state_dir = arg;
        return 0;
    case OPT_CA_PASS:
        o->ca_passphrase_file = arg;
        return 0;
    case OPT_ADMIN_ID:
        o->admin_id = arg;
        return 0;
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
}

static int cmd_init(struct ctl__run *r, int argc, char **argv)
{
    static const struct option extra[] = {
        { "dir", required_argument, NULL, OPT_DIR },
        { "nodes", required_argument, NULL, OPT_NODES },
        { "host", required_argument, NULL, OPT_HOST },
        { "hosts", required_argument, NULL, OPT_HOSTS },
        { "raft-port-base", required_argument, NULL, OPT_RAFT_BASE },
        { "api-port-base", required_argument, NULL, OPT_API_BASE },
        { "metrics-port-base", required_argument, NULL, OPT_METRICS_BASE },
        { "force", no_argument, NULL, OPT_FORCE },
        { "etc-dir", required_argument, NULL, OPT_ETC_DIR },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "ca-passphrase-file", required_argument, NULL, OPT_CA_PASS },
        { "admin-id", required_argument, NULL, OPT_ADMIN_ID },
    };
    struct kyufu_ctl_init_opts o = { .nodes = 0, .raft_port_base = 7001,
                                     .api_port_base = 8001,
                                     .metrics_port_base = 9101 };
    int rv = getopts(r, argc, argv, extra, sizeof extra / sizeof extra[0], init_opt, &o,
                     "init");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.nodes == 0) { /* --nodes not given: one per host, or three */
        o.nodes = o.on_hosts ? o.n_hosts : 3;
    }
    if (o.dir == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster init: --dir is required");
    }
    char err[512];
    char password[KYUFU_PWHASH_TEMPORARY_CHARS + 1] = "";
    o.admin_password = password;
    rv = kyufu_ctl_init(&o, r->json ? NULL : r->out, err, sizeof err);
    if (rv != 0) {
        OPENSSL_cleanse(password, sizeof password);
        return ctl__fail(r, rv, "cluster init: %s", err);
    }
    const char *admin = o.admin_id != NULL ? o.admin_id : KYUFU_CTL_INIT_ADMIN_DEFAULT;
    /* Shown once, here only (the nodes hold its hash): scripts/run reads
     * the id after "for" and the password alone on the next line. */
    if (r->json) {
        rv = ctl__emit_json(r, json_pack("{s:s,s:i,s:s,s:s}", "dir", o.dir, "nodes",
                                         (int)o.nodes, "admin_id", admin,
                                         "temporary_password", password));
    } else {
        fprintf(r->out,
                "First ID administrator: temporary password for %s (shown once; change "
                "it at first sign-in):\n  %s\n",
                admin, password);
        fflush(r->out);
    }
    OPENSSL_cleanse(password, sizeof password);
    return rv;
}

/* ------------------------------------------------------------ status */

struct status_opts
{
    bool digest;
    uint32_t node_timeout_ms; /* 0: not given */
};

static int status_opt(struct ctl__run *r, int c, const char *arg, void *p)
{
    struct status_opts *o = p;
    unsigned long v;
    if (c == OPT_DIGEST) {
        o->digest = true;
        return 0;
    }
    if (c == OPT_NODE_TIMEOUT) {
        int rv = parse_uint(r, "node-timeout-ms", arg, 1, KYUFU_CLIENT_DEADLINE_MS_MAX, &v);
        o->node_timeout_ms = (uint32_t)v;
        return rv;
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
}

/* The digest's first bytes as hex, as many as fit in len (a server's
 * digest is not trusted to be of any size). */
static void hex(const ProtobufCBinaryData *b, char *out, size_t len)
{
    size_t n = b->len < (len - 1) / 2 ? b->len : (len - 1) / 2;
    ctl__hex(b->data, n, out);
}

/* How long each node gets: --node-timeout-ms; else, with --digest (a full
 * state hash takes seconds on a large store), the call deadline; else
 * KYUFU_CTL_STATUS_NODE_MS_DEFAULT, or --deadline-ms if that is shorter.
 * 0 means the config's deadline_ms. */
static uint32_t node_timeout(const struct ctl__run *r, const struct status_opts *o)
{
    if (o->node_timeout_ms != 0) {
        return o->node_timeout_ms;
    }
    if (o->digest) {
        return r->deadline_ms;
    }
    if (r->deadline_ms != 0 && r->deadline_ms < KYUFU_CTL_STATUS_NODE_MS_DEFAULT) {
        return r->deadline_ms;
    }
    return KYUFU_CTL_STATUS_NODE_MS_DEFAULT;
}

/* Why a node did not answer, for people. */
static void unreachable_reason(int crv, const struct kyufu_client_result *res,
                               uint32_t timeout_ms, char *out, size_t len)
{
    if (crv == KYUFU_CLIENT_EDEADLINE) {
        if (timeout_ms != 0) {
            snprintf(out, len, "unreachable: no answer within %u ms", timeout_ms);
        } else {
            snprintf(out, len, "unreachable: no answer within the deadline");
        }
    } else if (crv == 0) { /* answered, but not OK (e.g. stopping) */
        snprintf(out, len, "unreachable: %s: %s",
                 kyufu_grpc_status_name(res->grpc_status), res->message);
    } else {
        snprintf(out, len, "unreachable: %s", res->message[0] != '\0'
                                                  ? res->message
                                                  : kyufu_client_strerror(crv));
    }
}

static int cmd_status(struct ctl__run *r, int argc, char **argv)
{
    static const struct option extra[] = {
        { "digest", no_argument, NULL, OPT_DIGEST },
        { "node-timeout-ms", required_argument, NULL, OPT_NODE_TIMEOUT },
    };
    struct status_opts so = { 0 };
    int rv = getopts(r, argc, argv, extra, sizeof extra / sizeof extra[0], status_opt,
                     &so, "status");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    struct kyufu_client *c;
    rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    unsigned n_ep = kyufu_client_endpoint_count(c);
    Kyufu__V1__StatusRequest req = KYUFU__V1__STATUS_REQUEST__INIT;
    req.with_digest = so.digest;
    /* Every node at once: the command takes the slowest answer or one
     * timeout, not the sum of them (a stopped node used to cost the whole
     * deadline, and each further one as much again). */
    uint32_t timeout_ms = node_timeout(r, &so);
    int crvs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct kyufu_client_result results[KYUFU_CLIENT_ENDPOINTS_MAX];
    rv = kyufu_client_call_each(c, "Status", &req.base, &kyufu__v1__node_status__descriptor,
                                timeout_ms, crvs, results);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cluster status: %s",
                         kyufu_client_strerror(rv));
    }
    json_t *nodes = json_array();
    json_t *unreachable = json_array();
    json_t *leader_members = NULL;
    unsigned reachable = 0, leaders = 0;
    uint64_t leader_id = 0;
    bool leader_disagree = false;
    char leader_api[KYUFU_CLIENT_ERRMSG_BYTES] = "";
    if (!r->json) {
        /* VERSION: the node's command set / the cluster version
         * (docs/operations.md "Upgrades"). */
        fprintf(r->out, "%-22s %-9s %-10s %-8s %6s %8s %8s %6s %7s%s\n", "ENDPOINT",
                "REACHABLE", "ROLE", "MEMBER", "ID", "TERM", "APPLIED", "LEADER", "VERSION",
                so.digest ? "  DIGEST" : "");
    }
    for (unsigned i = 0; i < n_ep; i++) {
        int crv = crvs[i];
        struct kyufu_client_result *res = &results[i];
        const char *ep = kyufu_client_endpoint(c, i);
        const Kyufu__V1__NodeStatus *st = NULL;
        if (crv == 0 && res->grpc_status == KYUFU_GRPC_OK) {
            st = (const Kyufu__V1__NodeStatus *)res->response;
            reachable++;
            if (strcmp(st->role, "leader") == 0) {
                leaders++;
            }
            if (st->leader_id != 0) {
                if (leader_id != 0 && leader_id != st->leader_id) {
                    leader_disagree = true;
                }
                leader_id = st->leader_id;
                if (st->leader_api_address != NULL) {
                    snprintf(leader_api, sizeof leader_api, "%s",
                             st->leader_api_address);
                }
            }
        }
        char why[KYUFU_CLIENT_ERRMSG_BYTES + 64] = "";
        if (st == NULL) {
            unreachable_reason(crv, res, timeout_ms, why, sizeof why);
            json_array_append_new(unreachable, json_string(ep));
        }
        char dg[80];
        if (st != NULL) {
            hex(&st->state_digest, dg, sizeof dg);
        }
        if (r->json) {
            json_t *o = st != NULL ? kyufu_ctl_to_json(&st->base) : json_object();
            if (o != NULL) {
                json_object_set_new(o, "endpoint", json_string(ep));
                json_object_set_new(o, "reachable", json_boolean(st != NULL));
                if (st == NULL) {
                    json_object_set_new(o, "error", json_string(res->message));
                    json_object_set_new(o, "reason", json_string(why));
                    json_object_set_new(o, "timed_out",
                                        json_boolean(crv == KYUFU_CLIENT_EDEADLINE));
                }
                json_array_append_new(nodes, o);
            }
        } else if (st != NULL) {
            char ver[24];
            snprintf(ver, sizeof ver, "%u/%u", (unsigned)st->command_version,
                     (unsigned)st->cluster_version);
            fprintf(r->out, "%-22s %-9s %-10s %-8s %6llu %8llu %8llu %6llu %7s%s%s\n", ep,
                    "yes", st->role, st->member_role[0] != '\0' ? st->member_role : "none",
                    (unsigned long long)st->id, (unsigned long long)st->term,
                    (unsigned long long)st->applied_index, (unsigned long long)st->leader_id,
                    ver, so.digest ? "  " : "", so.digest ? dg : "");
        } else {
            fprintf(r->out, "%-22s %-9s %s\n", ep, "no", why);
        }
        if (st != NULL && strcmp(st->role, "leader") == 0 && !r->json &&
            leader_members == NULL) {
            leader_members = kyufu_ctl_to_json(&st->base);
        }
        kyufu_client_response_free(res->response);
    }
    if (leader_members != NULL) {
        /* The configuration as the leader knows it (authoritative). */
        fprintf(r->out, "members (as the leader knows them):\n");
        ctl__print_members(r, json_object_get(leader_members, "members"));
        json_decref(leader_members);
    }
    bool healthy = reachable == n_ep && leaders == 1 && !leader_disagree;
    if (r->json) {
        int jrv = ctl__emit_json(
            r, json_pack("{s:o,s:i,s:I,s:b,s:O,s:I}", "nodes", nodes, "reachable",
                         (int)reachable, "leader_id", (json_int_t)leader_id,
                         "healthy", healthy, "unreachable", unreachable,
                         "node_timeout_ms", (json_int_t)timeout_ms));
        if (jrv != 0) {
            json_decref(unreachable);
            return jrv;
        }
    } else {
        json_decref(nodes);
    }
    if (reachable < n_ep) {
        fprintf(r->err, "kyufuctl: unreachable:");
        for (size_t i = 0; i < json_array_size(unreachable); i++) {
            fprintf(r->err, " %s", json_string_value(json_array_get(unreachable, i)));
        }
        fputc('\n', r->err);
    }
    json_decref(unreachable);
    if (reachable == 0) {
        fprintf(r->err, "kyufuctl: no node reachable\n");
        return KYUFU_CTL_EXIT_UNAVAILABLE;
    }
    if (!healthy) {
        fprintf(r->err, "kyufuctl: cluster not healthy (%u/%u reachable, %u leader(s)%s)\n",
                reachable, n_ep, leaders,
                leader_disagree ? ", nodes disagree on the leader" : "");
        if (leaders == 0 && leader_id != 0 && !leader_disagree) {
            /* After replace-node, before the client config is updated:
             * the nodes name a leader that no endpoint reached. */
            fprintf(r->err,
                    "kyufuctl: the nodes name node %llu (API %s) as the "
                    "leader, which is not among the endpoints: add it to "
                    "endpoints in the client config\n",
                    (unsigned long long)leader_id,
                    leader_api[0] != '\0' ? leader_api : "unknown");
        }
        return KYUFU_CTL_EXIT_CHECK;
    }
    return 0;
}

/* ------------------------------------------------------------ transfer */

static int transfer_opt(struct ctl__run *r, int c, const char *arg, void *p)
{
    unsigned long v;
    if (c == OPT_TO) {
        int rv = parse_uint(r, "to", arg, 1, UINT32_MAX, &v);
        *(uint64_t *)p = v;
        return rv;
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
}

static int cmd_transfer(struct ctl__run *r, int argc, char **argv)
{
    static const struct option extra[] = {
        { "to", required_argument, NULL, OPT_TO },
    };
    uint64_t to = 0;
    int rv = getopts(r, argc, argv, extra, 1, transfer_opt, &to, "transfer-leadership");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    struct kyufu_client *c;
    rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__TransferLeadershipRequest req = KYUFU__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
    req.target_id = to;
    struct kyufu_client_call_opts opts = { .deadline_ms = r->deadline_ms, .endpoint = -1 };
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, "TransferLeadership", &req.base, NULL, &opts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv == 0) {
        const Kyufu__V1__TransferLeadershipResponse *t = (const void *)res.response;
        if (r->json) {
            rv = ctl__emit_json(r, kyufu_ctl_to_json(res.response));
        } else {
            fprintf(r->out, "leadership transferred to node %llu\n",
                    (unsigned long long)t->new_leader_id);
        }
    }
    kyufu_client_response_free(res.response);
    return rv;
}

/* ------------------------------------------------------------ membership */

struct member_opts
{
    uint64_t id, old_id, new_id;
    const char *raft, *api;
    uint32_t catch_up_ms; /* 0: the server's default */
};

static int member_opt(struct ctl__run *r, int c, const char *arg, void *p)
{
    struct member_opts *o = p;
    unsigned long v;
    int rv;
    switch (c) {
    case OPT_ID:
    case OPT_OLD:
    case OPT_NEW:
        rv = parse_uint(r, c == OPT_ID ? "id" : c == OPT_OLD ? "old" : "new", arg, 1,
                        KYUFU_CTL_NODE_ID_MAX, &v);
        *(c == OPT_ID ? &o->id : c == OPT_OLD ? &o->old_id : &o->new_id) = v;
        return rv;
    case OPT_RAFT:
        o->raft = arg;
        return 0;
    case OPT_API:
        o->api = arg;
        return 0;
    case OPT_CATCH_UP:
        rv = parse_uint(r, "catch-up-timeout-ms", arg, KYUFU_JOIN_CATCH_UP_MS_MIN,
                        KYUFU_JOIN_CATCH_UP_MS_MAX, &v);
        o->catch_up_ms = (uint32_t)v;
        return rv;
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "unknown option");
}

static const struct option member_extra[] = {
    { "id", required_argument, NULL, OPT_ID },
    { "raft", required_argument, NULL, OPT_RAFT },
    { "api", required_argument, NULL, OPT_API },
    { "catch-up-timeout-ms", required_argument, NULL, OPT_CATCH_UP },
    { "old", required_argument, NULL, OPT_OLD },
    { "new", required_argument, NULL, OPT_NEW },
};

void ctl__print_members(struct ctl__run *r, json_t *members)
{
    size_t i;
    json_t *m;
    fprintf(r->out, "%6s %-8s %-22s %-22s %10s\n", "ID", "MEMBER", "RAFT", "API", "MATCH");
    json_array_foreach(members, i, m) {
        json_t *match = json_object_get(m, "match_index");
        fprintf(r->out, "%6lld %-8s %-22s %-22s %10lld\n",
                (long long)json_integer_value(json_object_get(m, "id")),
                json_string_value(json_object_get(m, "role")),
                json_string_value(json_object_get(m, "raft_address")),
                json_string_value(json_object_get(m, "api_address")),
                match != NULL ? (long long)json_integer_value(match) : 0LL);
    }
}

/* A join waits for the catch-up: its bound plus room for the promotion,
 * unless --deadline-ms says otherwise. */
static uint32_t join_deadline(const struct ctl__run *r, const struct member_opts *o)
{
    if (r->deadline_ms != 0) {
        return r->deadline_ms;
    }
    uint64_t ms = (uint64_t)(o->catch_up_ms != 0 ? o->catch_up_ms
                                                 : KYUFU_JOIN_CATCH_UP_MS_DEFAULT) +
                  KYUFU_CTL_PROMOTE_MS;
    return ms > KYUFU_CLIENT_DEADLINE_MS_MAX ? KYUFU_CLIENT_DEADLINE_MS_MAX : (uint32_t)ms;
}

static uint32_t change_deadline(const struct ctl__run *r)
{
    return r->deadline_ms != 0 ? r->deadline_ms : KYUFU_CTL_MEMBER_CHANGE_MS;
}

int ctl__leader_status(struct ctl__run *r, Kyufu__V1__NodeStatus **out)
{
    struct kyufu_client *c;
    *out = NULL;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    unsigned n_ep = kyufu_client_endpoint_count(c);
    Kyufu__V1__StatusRequest req = KYUFU__V1__STATUS_REQUEST__INIT;
    int crvs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct kyufu_client_result results[KYUFU_CLIENT_ENDPOINTS_MAX];
    uint32_t ms = r->deadline_ms != 0 && r->deadline_ms < KYUFU_CTL_STATUS_NODE_MS_DEFAULT
                      ? r->deadline_ms
                      : KYUFU_CTL_STATUS_NODE_MS_DEFAULT;
    rv = kyufu_client_call_each(c, "Status", &req.base, &kyufu__v1__node_status__descriptor,
                                ms, crvs, results);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "status: %s", kyufu_client_strerror(rv));
    }
    /* The leader's view; else a member's that knows a leader (the
     * configuration it holds is the one the leader replicated). */
    int best = -1;
    for (unsigned i = 0; i < n_ep; i++) {
        const Kyufu__V1__NodeStatus *st = (const void *)results[i].response;
        if (crvs[i] != 0 || results[i].grpc_status != KYUFU_GRPC_OK) {
            continue;
        }
        if (strcmp(st->role, "leader") == 0) {
            best = (int)i;
            break;
        }
        if (best < 0 && st->leader_id != 0 && st->member_role[0] != '\0') {
            best = (int)i;
        }
    }
    for (unsigned i = 0; i < n_ep; i++) {
        if ((int)i == best) {
            *out = (Kyufu__V1__NodeStatus *)results[i].response;
        } else {
            kyufu_client_response_free(results[i].response);
        }
    }
    if (best < 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_UNAVAILABLE,
                         "no node of the config that knows a leader answered");
    }
    return 0;
}

static const Kyufu__V1__Member *find_member(const Kyufu__V1__NodeStatus *st, uint64_t id)
{
    for (size_t i = 0; i < st->n_members; i++) {
        if (st->members[i]->id == id) {
            return st->members[i];
        }
    }
    return NULL;
}

/* One membership call to the leader; *members gets the answer's list as
 * JSON (a new reference) when not NULL. */
static int member_call(struct ctl__run *r, const char *method, const ProtobufCMessage *req,
                       uint32_t deadline_ms, json_t **members)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    /* One attempt may last the whole deadline: the leader answers a change
     * once it is made, and a change sent again while it runs is refused
     * (one at a time). */
    struct kyufu_client_call_opts opts = { .deadline_ms = deadline_ms, .endpoint = -1,
                                           .attempt_ms = deadline_ms };
    struct kyufu_client_result res;
    int crv = kyufu_client_call(c, method, req, NULL, &opts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv == 0 && members != NULL) {
        json_t *doc = kyufu_ctl_to_json(res.response);
        json_t *list = doc != NULL ? json_object_get(doc, "members") : NULL;
        *members = list != NULL ? json_incref(list) : json_array();
        json_decref(doc);
    }
    kyufu_client_response_free(res.response);
    return rv;
}

static int add_node(struct ctl__run *r, const struct member_opts *o, uint64_t id,
                    const char *raft, const char *api, json_t **members)
{
    Kyufu__V1__AddNodeRequest req = KYUFU__V1__ADD_NODE_REQUEST__INIT;
    req.id = id;
    req.raft_address = (char *)raft;
    req.api_address = (char *)api;
    req.catch_up_timeout_ms = o->catch_up_ms;
    return member_call(r, "AddNode", &req.base, join_deadline(r, o), members);
}

static int remove_node(struct ctl__run *r, uint64_t id, json_t **members)
{
    Kyufu__V1__RemoveNodeRequest req = KYUFU__V1__REMOVE_NODE_REQUEST__INIT;
    req.id = id;
    return member_call(r, "RemoveNode", &req.base, change_deadline(r), members);
}

static int member_done(struct ctl__run *r, const char *what, uint64_t id, json_t *members)
{
    if (r->json) {
        return ctl__emit_json(r, json_pack("{s:s,s:I,s:o}", "done", what, "node",
                                           (json_int_t)id, "members", members));
    }
    ctl__print_members(r, members);
    json_decref(members);
    return 0;
}

static int cmd_add_node(struct ctl__run *r, int argc, char **argv)
{
    struct member_opts o = { 0 };
    int rv = getopts(r, argc, argv, member_extra, 4, member_opt, &o, "add-node");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.id == 0 || o.raft == NULL || o.api == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "cluster add-node: --id, --raft and --api are required");
    }
    if (!r->json) {
        fprintf(r->out, "adding node %llu as a standby; it becomes a voter once it has "
                        "caught up...\n", (unsigned long long)o.id);
        fflush(r->out);
    }
    json_t *members = NULL;
    rv = add_node(r, &o, o.id, o.raft, o.api, &members);
    if (rv != 0) {
        return rv;
    }
    if (!r->json) {
        fprintf(r->out, "node %llu is a voter\n", (unsigned long long)o.id);
    }
    return member_done(r, "add-node", o.id, members);
}

static int cmd_remove_node(struct ctl__run *r, int argc, char **argv)
{
    struct member_opts o = { 0 };
    int rv = getopts(r, argc, argv, member_extra, 1, member_opt, &o, "remove-node");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.id == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster remove-node: --id is required");
    }
    json_t *members = NULL;
    rv = remove_node(r, o.id, &members);
    if (rv != 0) {
        return rv;
    }
    if (!r->json) {
        fprintf(r->out, "node %llu removed; stop its kyufud (it no longer receives the "
                        "log)\n", (unsigned long long)o.id);
    }
    return member_done(r, "remove-node", o.id, members);
}

/* add NEW (standby -> caught up -> voter) -> if OLD leads, hand leadership
 * to NEW -> remove OLD.  Each step is skipped when the leader's view shows it
 * done, so a run that failed half-way is resumed by running it again. */
static int cmd_replace_node(struct ctl__run *r, int argc, char **argv)
{
    struct member_opts o = { 0 };
    int rv = getopts(r, argc, argv, member_extra + 1, 5, member_opt, &o, "replace-node");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.old_id == 0 || o.new_id == 0 || o.old_id == o.new_id) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "cluster replace-node: --old and --new name two different nodes");
    }
    if ((o.raft == NULL) != (o.api == NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "cluster replace-node: give both --raft and --api, or neither");
    }
    Kyufu__V1__NodeStatus *st;
    rv = ctl__leader_status(r, &st);
    if (rv != 0) {
        return rv;
    }
    const Kyufu__V1__Member *om = find_member(st, o.old_id);
    const Kyufu__V1__Member *nm = find_member(st, o.new_id);
    bool old_present = om != NULL;
    bool new_voter = nm != NULL && strcmp(nm->role, "voter") == 0;
    uint64_t leader = st->leader_id;
    char raft[300] = "", api[300] = "";
    if (o.raft != NULL) {
        snprintf(raft, sizeof raft, "%s", o.raft);
        snprintf(api, sizeof api, "%s", o.api);
    } else if (nm != NULL) {
        snprintf(raft, sizeof raft, "%s", nm->raft_address); /* resuming */
        snprintf(api, sizeof api, "%s", nm->api_address);
    }
    kyufu_client_response_free(&st->base);
    if (!old_present && nm == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_REJECTED,
                         "cluster replace-node: neither node %llu nor node %llu is a member",
                         (unsigned long long)o.old_id, (unsigned long long)o.new_id);
    }
    if (!new_voter && raft[0] == '\0') {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "cluster replace-node: node %llu is not a member yet: --raft and "
                         "--api (as given to kyufuctl node new) are required",
                         (unsigned long long)o.new_id);
    }
    json_t *steps = json_array();
    json_t *members = NULL;
    if (!new_voter) {
        if (!r->json) {
            fprintf(r->out, "adding node %llu as a standby; it becomes a voter once it has "
                            "caught up...\n", (unsigned long long)o.new_id);
            fflush(r->out);
        }
        rv = add_node(r, &o, o.new_id, raft, api, &members);
        if (rv != 0) {
            goto out;
        }
        json_array_append_new(steps, json_string("add-node"));
        if (!r->json) {
            fprintf(r->out, "node %llu is a voter\n", (unsigned long long)o.new_id);
        }
    }
    if (old_present) {
        if (leader == o.old_id) {
            if (!r->json) {
                fprintf(r->out, "node %llu leads: handing leadership to node %llu...\n",
                        (unsigned long long)o.old_id, (unsigned long long)o.new_id);
                fflush(r->out);
            }
            Kyufu__V1__TransferLeadershipRequest t =
                KYUFU__V1__TRANSFER_LEADERSHIP_REQUEST__INIT;
            t.target_id = o.new_id;
            rv = member_call(r, "TransferLeadership", &t.base, change_deadline(r), NULL);
            if (rv != 0) {
                goto out;
            }
            json_array_append_new(steps, json_string("transfer-leadership"));
        }
        if (!r->json) {
            fprintf(r->out, "removing node %llu...\n", (unsigned long long)o.old_id);
            fflush(r->out);
        }
        json_decref(members);
        members = NULL;
        rv = remove_node(r, o.old_id, &members);
        if (rv != 0) {
            goto out;
        }
        json_array_append_new(steps, json_string("remove-node"));
    }
    if (members == NULL) {
        Kyufu__V1__NodeStatus *after;
        rv = ctl__leader_status(r, &after);
        if (rv != 0) {
            goto out;
        }
        json_t *doc = kyufu_ctl_to_json(&after->base);
        json_t *list = doc != NULL ? json_object_get(doc, "members") : NULL;
        members = list != NULL ? json_incref(list) : json_array();
        json_decref(doc);
        kyufu_client_response_free(&after->base);
    }
    if (r->json) {
        rv = ctl__emit_json(r, json_pack("{s:I,s:I,s:O,s:O}", "old", (json_int_t)o.old_id,
                                         "new", (json_int_t)o.new_id, "steps", steps,
                                         "members", members));
    } else {
        fprintf(r->out, "%s\n", json_array_size(steps) == 0
                                    ? "nothing to do: the replacement was already done"
                                    : "replaced; stop the old node's kyufud if it still runs");
        ctl__print_members(r, members);
    }
out:
    json_decref(members);
    json_decref(steps);
    return rv;
}

int ctl__cluster(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "init") == 0) {
        return cmd_init(r, argc, argv);
    }
    if (strcmp(verb, "status") == 0) {
        return cmd_status(r, argc, argv);
    }
    if (strcmp(verb, "transfer-leadership") == 0) {
        return cmd_transfer(r, argc, argv);
    }
    if (strcmp(verb, "add-node") == 0) {
        return cmd_add_node(r, argc, argv);
    }
    if (strcmp(verb, "remove-node") == 0) {
        return cmd_remove_node(r, argc, argv);
    }
    if (strcmp(verb, "replace-node") == 0) {
        return cmd_replace_node(r, argc, argv);
    }
    if (strcmp(verb, "recover") == 0) {
        return ctl__cluster_recover(r, argc, argv);
    }
    return -1;
}
