/* kyufuctl node commands: power-event (one node's UPS event, as upsmon's
 * NOTIFYCMD runs it on that node's host: docs/power.md). */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kyufu.h"

enum { OPT_ENDPOINT = 0x400, OPT_HELP };

void ctl__node_usage(FILE *out)
{
    fprintf(out,
            "  node power-event [--endpoint HOST:PORT] [EVENT]\n"
            "               EVENT: ONLINE ONBATT LOWBATT FSD SHUTDOWN COMMOK COMMBAD\n"
            "               NOCOMM or an ups.status (\"OB LB\"); default $NOTIFYTYPE\n");
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

int ctl__node(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    if (strcmp(verb, "power-event") == 0) {
        return cmd_power_event(r, argc, argv);
    }
    return -1;
}
