/* kyufuctl node commands: power-event (one node's UPS event, as upsmon's
 * NOTIFYCMD runs it on that node's host: docs/power.md); new (a joining
 * node's certificate and config: docs/operations.md "Replacing a node"). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "kyufu.h"

enum { OPT_ENDPOINT = 0x400, OPT_HELP, OPT_ID, OPT_RAFT, OPT_API, OPT_OUT, OPT_PKI,
       OPT_CA_PASS };

void ctl__node_usage(FILE *out)
{
    fprintf(out,
            "  node power-event [--endpoint HOST:PORT] [EVENT]\n"
            "               EVENT: ONLINE ONBATT LOWBATT FSD SHUTDOWN COMMOK COMMBAD\n"
            "               NOCOMM or an ups.status (\"OB LB\"); default $NOTIFYTYPE\n"
            "  node new --id N --raft HOST:PORT --api HOST:PORT [--out DIR] [--pki DIR]\n"
            "               [--ca-passphrase-file FILE]\n"
            "               certificate + kyufud.conf (join = yes) for a node to add;\n"
            "               --pki: the CA folder, of ca.pem and ca.key (default: cluster\n"
            "               init's DIR/ca next to the config's ca file); --out: default\n"
            "               DIR/nodeN (PKI/nodeN for another PKI); the passphrase: the file, else $KYUFU_CA_PASSPHRASE,\n"
            "               else asked\n");
}

static int cmd_power_event(struct ctl__run *r, int argc, char **argv)
{
    struct option opts[CTL__COMMON_OPTS_N + 3];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    opts[CTL__COMMON_OPTS_N] = (struct option){ "endpoint", required_argument, NULL,
                                                OPT_ENDPOINT };
    opts[CTL__COMMON_OPTS_N + 1] = (struct option){ "help", no_argument, NULL, OPT_HELP };
    opts[CTL__COMMON_OPTS_N + 2] = (struct option){ 0 };
    const char *endpoint = NULL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv = 0;
        if (c == OPT_HELP) {
            ctl__node_usage(r->out);
            return 0;
        }
        if (c == '?' || c == ':') {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "node power-event: unknown option or missing value in '%s'",
                             argv[optind - 1]);
        }
        if (c == OPT_ENDPOINT) {
            endpoint = optarg;
        } else {
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    const char *event = optind < argc ? argv[optind] : getenv("NOTIFYTYPE");
    if (optind + 1 < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "node power-event: unexpected argument '%s'",
                         argv[optind + 1]);
    }
    if (event == NULL || event[0] == '\0') {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "node power-event: no EVENT given and NOTIFYTYPE is not set");
    }
    struct kyufu_client *client;
    int rv = ctl__client(r, &client);
    if (rv != 0) {
        return rv;
    }
    /* The event is about one node: sent to that node only, never on. */
    unsigned n_ep = kyufu_client_endpoint_count(client);
    int index = -1;
    for (unsigned i = 0; i < n_ep && endpoint != NULL; i++) {
        if (strcmp(kyufu_client_endpoint(client, i), endpoint) == 0) {
            index = (int)i;
        }
    }
    if (endpoint == NULL && n_ep == 1) {
        index = 0;
    }
    if (index < 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         endpoint == NULL
                             ? "node power-event: --endpoint HOST:PORT names the node "
                               "(the config lists %u)"
                             : "node power-event: --endpoint is not one of the config's %u "
                               "endpoints",
                         n_ep);
    }
    Kyufu__V1__PowerEventRequest req = KYUFU__V1__POWER_EVENT_REQUEST__INIT;
    req.event = (char *)event;
    struct kyufu_client_call_opts copts = { .deadline_ms = r->deadline_ms, .endpoint = index };
    struct kyufu_client_result res;
    int crv = kyufu_client_call(client, "PowerEvent", &req.base, NULL, &copts, &res);
    rv = ctl__call_exit(r, crv, &res);
    if (rv == 0) {
        const Kyufu__V1__PowerEventResponse *p = (const void *)res.response;
        if (r->json) {
            rv = ctl__emit_json(r, kyufu_ctl_to_json(res.response));
        } else {
            fprintf(r->out, "%s: power %s\n", kyufu_client_endpoint(client, (unsigned)index),
                    p->power);
        }
    }
    kyufu_client_response_free(res.response);
    return rv;
}

static int cmd_new(struct ctl__run *r, int argc, char **argv)
{
    struct option opts[CTL__COMMON_OPTS_N + 8];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    opts[CTL__COMMON_OPTS_N] = (struct option){ "id", required_argument, NULL, OPT_ID };
    opts[CTL__COMMON_OPTS_N + 1] = (struct option){ "raft", required_argument, NULL, OPT_RAFT };
    opts[CTL__COMMON_OPTS_N + 2] = (struct option){ "api", required_argument, NULL, OPT_API };
    opts[CTL__COMMON_OPTS_N + 3] = (struct option){ "out", required_argument, NULL, OPT_OUT };
    opts[CTL__COMMON_OPTS_N + 4] = (struct option){ "pki", required_argument, NULL, OPT_PKI };
    opts[CTL__COMMON_OPTS_N + 5] = (struct option){ "help", no_argument, NULL, OPT_HELP };
    opts[CTL__COMMON_OPTS_N + 6] = (struct option){ "ca-passphrase-file", required_argument,
                                                    NULL, OPT_CA_PASS };
    opts[CTL__COMMON_OPTS_N + 7] = (struct option){ 0 };
    struct kyufu_ctl_node_new_opts o = { 0 };
    char pki[PATH_MAX], out[PATH_MAX + 32];
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv = 0;
        switch (c) {
        case OPT_HELP:
            ctl__node_usage(r->out);
            return 0;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "node new: unknown option or missing value in '%s'",
                             argv[optind - 1]);
        case OPT_ID: {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] < '1' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                v > KYUFU_CTL_NODE_ID_MAX) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "node new: --id must be 1..%u",
                                 KYUFU_CTL_NODE_ID_MAX);
            }
            o.id = v;
            break;
        }
        case OPT_RAFT:
            o.raft = optarg;
            break;
        case OPT_API:
            o.api = optarg;
            break;
        case OPT_OUT:
            o.out = optarg;
            break;
        case OPT_PKI:
            o.pki_dir = optarg;
            break;
        case OPT_CA_PASS:
            o.ca_passphrase_file = optarg;
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "node new: unexpected argument '%s'",
                         argv[optind]);
    }
    if (o.id == 0 || o.raft == NULL || o.api == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                         "node new: --id, --raft and --api are required");
    }
    int rv;
    if (o.pki_dir == NULL) {
        rv = ctl__ca_dir(r, NULL, "node new", pki, sizeof pki);
        if (rv != 0) {
            return rv;
        }
        o.pki_dir = pki;
    }
    if (o.out == NULL) {
        /* Next to the CA folder, never inside it (cluster init's DIR/ca:
         * DIR/nodeN, as its other nodes). */
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", o.pki_dir);
        const char *base = basename(copy);
        bool ca_folder = strcmp(base, CTL__CA_SUBDIR) == 0;
        snprintf(copy, sizeof copy, "%s", o.pki_dir);
        snprintf(out, sizeof out, "%s/node%llu", ca_folder ? dirname(copy) : o.pki_dir,
                 (unsigned long long)o.id);
        o.out = out;
    }
    /* The members now, for the new node's [cluster] (it forwards to the
     * leader by these API addresses). */
    Kyufu__V1__NodeStatus *st;
    rv = ctl__leader_status(r, &st);
    if (rv != 0) {
        return rv;
    }
    struct kyufu_ctl_member ms[KYUFU_CTL_INIT_NODES_MAX];
    size_t n = 0;
    for (size_t i = 0; i < st->n_members && n < KYUFU_CTL_INIT_NODES_MAX; i++) {
        const Kyufu__V1__Member *m = st->members[i];
        if (m->api_address[0] == '\0') {
            continue; /* unknown to the node that answered */
        }
        ms[n++] = (struct kyufu_ctl_member){ m->id, m->raft_address, m->api_address };
    }
    o.members = ms;
    o.n_members = n;
    char err[512];
    rv = kyufu_ctl_node_new(&o, r->json ? NULL : r->out, err, sizeof err);
    kyufu_client_response_free(&st->base);
    if (rv != 0) {
        return ctl__fail(r, rv, "node new: %s", err);
    }
    if (r->json) {
        return ctl__emit_json(r, json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)o.id,
                                           "dir", o.out, "raft_address", o.raft,
                                           "api_address", o.api));
    }
    fprintf(r->out,
            "next: move %s to the new host, start kyufud --config %s/kyufud.conf there,\n"
            "then: kyufuctl cluster add-node --id %llu --raft %s --api %s\n"
            "  (or cluster replace-node --old N --new %llu --raft %s --api %s)\n",
            o.out, o.out, (unsigned long long)o.id, o.raft, o.api,
            (unsigned long long)o.id, o.raft, o.api);
    return 0;
}

int ctl__node(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "new") == 0) {
        return cmd_new(r, argc, argv);
    }
    if (strcmp(verb, "power-event") == 0) {
        return cmd_power_event(r, argc, argv);
    }
    return -1;
}
