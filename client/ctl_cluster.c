/* kyufuctl cluster commands: init (local files), status (every node asked
 * directly, all at once, each with a short timeout), transfer-leadership
 * (sent to the leader). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kyufu.h"

enum { OPT_DIR = 0x300, OPT_NODES, OPT_HOST, OPT_HOSTS, OPT_RAFT_BASE, OPT_API_BASE,
       OPT_FORCE, OPT_TO, OPT_DIGEST, OPT_NODE_TIMEOUT, OPT_HELP };

void ctl__cluster_usage(FILE *out)
{
    fprintf(out,
            "  cluster init --dir DIR [--nodes N] [--host H ... | --hosts H1,H2,...]\n"
            "               [--raft-port-base P] [--api-port-base P] [--force]\n"
            "  cluster status [--digest] [--node-timeout-ms N]\n"
            "  cluster transfer-leadership [--to NODE_ID]\n");
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
        if (o->n_hosts == KYUFU_CTL_INIT_NODES_MAX) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "too many hosts");
        }
        o->hosts[o->n_hosts++] = arg;
        return 0;
    case OPT_HOSTS: {
        /* Split in place into a copy that lives as long as the run: argv
         * strings are the process's. */
        char *s = (char *)arg;
        for (char *save = NULL, *t = strtok_r(s, ",", &save); t != NULL;
             t = strtok_r(NULL, ",", &save)) {
            if (o->n_hosts == KYUFU_CTL_INIT_NODES_MAX) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "too many hosts");
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
    case OPT_FORCE:
        o->force = true;
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
        { "force", no_argument, NULL, OPT_FORCE },
    };
    struct kyufu_ctl_init_opts o = { .nodes = 3, .raft_port_base = 7001,
                                     .api_port_base = 8001 };
    int rv = getopts(r, argc, argv, extra, sizeof extra / sizeof extra[0], init_opt, &o,
                     "init");
    if (rv != 0) {
        return rv < 0 ? 0 : rv;
    }
    if (o.dir == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster init: --dir is required");
    }
    char err[512];
    rv = kyufu_ctl_init(&o, r->json ? NULL : r->out, err, sizeof err);
    if (rv != 0) {
        return ctl__fail(r, rv, "cluster init: %s", err);
    }
    if (r->json) {
        return ctl__emit_json(r, json_pack("{s:s,s:i}", "dir", o.dir, "nodes",
                                           (int)o.nodes));
    }
    return 0;
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

static void hex(const ProtobufCBinaryData *b, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < b->len && 2 * i + 2 < len; i++) {
        snprintf(out + 2 * i, 3, "%02x", b->data[i]);
    }
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
    unsigned reachable = 0, leaders = 0;
    uint64_t leader_id = 0;
    bool leader_disagree = false;
    if (!r->json) {
        /* VERSION: the node's command set / the cluster version
         * (docs/operations.md "Upgrades"). */
        fprintf(r->out, "%-22s %-9s %-10s %6s %8s %8s %6s %7s%s\n", "ENDPOINT", "REACHABLE",
                "ROLE", "ID", "TERM", "APPLIED", "LEADER", "VERSION",
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
            fprintf(r->out, "%-22s %-9s %-10s %6llu %8llu %8llu %6llu %7s%s%s\n", ep,
                    "yes", st->role, (unsigned long long)st->id, (unsigned long long)st->term,
                    (unsigned long long)st->applied_index, (unsigned long long)st->leader_id,
                    ver, so.digest ? "  " : "", so.digest ? dg : "");
        } else {
            fprintf(r->out, "%-22s %-9s %s\n", ep, "no", why);
        }
        kyufu_client_response_free(res->response);
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
    return -1;
}
