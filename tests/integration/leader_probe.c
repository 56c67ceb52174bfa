/* A libkyufu client with the real gRPC transport, driven line by line from
 * stdin, for test_leader_hint.py: one client object lives across many calls
 * (kyufuctl makes a new one per command), so the test can see where the
 * client sends its next call once it has learnt the leader.
 *
 * usage: kyufu-leader-probe CLIENT.conf
 * stdin, one command per line:
 *   write   AdjustBudget{code P2026, delta 1} (a new idempotency key)
 *   read    GetProgram{code P2026} (linearizable)
 * stdout, one JSON object per command, flushed:
 *   {"rv":0,"status":0,"endpoint":1,"attempts":1,"message":"..."}
 * endpoint is the index (in the config's endpoints) of the node that gave
 * the final answer, -1 if none.  Exit 0 at end of input, 2 on usage or
 * config errors. */
#include <stdio.h>
#include <string.h>

#include "kyufu.h"

static void print_result(int rv, const struct kyufu_client_result *res)
{
    char msg[KYUFU_CLIENT_ERRMSG_BYTES];
    size_t i = 0;
    for (; res->message[i] != '\0' && i + 1 < sizeof msg; i++) {
        char ch = res->message[i];
        msg[i] = ch == '"' || ch == '\\' || (unsigned char)ch < 0x20 ? '\'' : ch;
    }
    msg[i] = '\0';
    printf("{\"rv\":%d,\"status\":%d,\"endpoint\":%d,\"attempts\":%u,\"message\":\"%s\"}\n", rv,
           res->grpc_status, res->endpoint, res->attempts, msg);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: kyufu-leader-probe CLIENT.conf\n");
        return 2;
    }
    struct kyufu_client_config cfg;
    kyufu_client_config_init(&cfg);
    char err[512];
    struct kyufu_client *c = NULL;
    int rv = kyufu_client_config_load(&cfg, argv[1], err, sizeof err);
    if (rv == 0) {
        rv = kyufu_client_create(&cfg, NULL, &c, err, sizeof err);
    }
    kyufu_client_config_free(&cfg);
    if (rv != 0) {
        fprintf(stderr, "kyufu-leader-probe: %s\n", err);
        return 2;
    }
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        struct kyufu_client_result res;
        if (strncmp(line, "write", 5) == 0) {
            Kyufu__V1__AdjustBudget cmd = KYUFU__V1__ADJUST_BUDGET__INIT;
            cmd.code = "P2026";
            cmd.delta = 1;
            cmd.reason = "leader probe";
            Kyufu__V1__AdjustBudgetRequest req = KYUFU__V1__ADJUST_BUDGET_REQUEST__INIT;
            req.command = &cmd;
            rv = kyufu_client_call(c, "AdjustBudget", &req.base, NULL, NULL, &res);
        } else if (strncmp(line, "read", 4) == 0) {
            Kyufu__V1__GetProgramRequest req = KYUFU__V1__GET_PROGRAM_REQUEST__INIT;
            req.code = "P2026";
            rv = kyufu_client_call(c, "GetProgram", &req.base, NULL, NULL, &res);
        } else {
            fprintf(stderr, "kyufu-leader-probe: unknown command %s", line);
            continue;
        }
        print_result(rv, &res);
        kyufu_client_response_free(res.response);
    }
    kyufu_client_destroy(c);
    return 0;
}
