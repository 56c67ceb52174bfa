/* kyufuctl cluster recover: quorum-loss recovery on the surviving node's
 * host, its kyufud stopped (docs/restore.md "Quorum-loss recovery").
 *
 * The work is kyufud's own (`kyufud --recover FILE [--yes]`, node/recover.h:
 * only kyufud reads its config and only raft-glue includes raft.h); this
 * command runs it with kyufuctl's terminal and exit codes, so an operator
 * finds it with the other cluster commands.  kyufud is --kyufud PATH, else
 * $KYUFU_KYUFUD, else `kyufud` on PATH.  The statement of what may be
 * lost and the confirmation ("recover node ID" typed on stdin, or --yes
 * printing the same statement) are kyufud's.
 *
 * Exit: 0 recovered; 2 usage (also a config kyufud refuses); 4 refused or
 * failed with nothing changed (locked: the node runs; not a voter; not
 * confirmed; no log), or kyufud could not be run; 5 a Raft log kyufud
 * refuses to load. */
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ctl.h"

extern char **environ;

enum { OPT_HELP = 0x500, OPT_NODE_CONFIG, OPT_YES, OPT_KYUFUD };

void ctl__recover_usage(FILE *out)
{
    fprintf(out,
            "  cluster recover --node-config FILE [--yes] [--kyufud PATH]\n"
            "               on the one surviving node's host, its kyufud stopped: make it\n"
            "               the only voter of a new configuration (two of three nodes lost\n"
            "               for good); prints its last index/term and what may be lost,\n"
            "               then asks you to type \"recover node ID\" (--yes: confirmed,\n"
            "               the same statement printed).  FILE: that node's kyufud.conf\n");
}

int ctl__cluster_recover(struct ctl__run *r, int argc, char **argv)
{
    static const struct option opts[] = {
        { "node-config", required_argument, NULL, OPT_NODE_CONFIG },
        { "yes", no_argument, NULL, OPT_YES },
        { "kyufud", required_argument, NULL, OPT_KYUFUD },
        { "help", no_argument, NULL, OPT_HELP },
        { 0 },
    };
    const char *node_config = NULL;
    const char *kyufud = getenv("KYUFU_KYUFUD");
    bool yes = false;
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            ctl__recover_usage(r->out);
            return 0;
        }
        if (c == OPT_NODE_CONFIG) {
            node_config = optarg;
        } else if (c == OPT_YES) {
            yes = true;
        } else if (c == OPT_KYUFUD) {
            kyufud = optarg;
        } else {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster recover: unknown "
                             "option or missing value in '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster recover: unexpected "
                         "argument '%s'", argv[optind]);
    }
    if (node_config == NULL || node_config[0] == '\0') {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster recover: --node-config "
                         "FILE (the surviving node's kyufud.conf) is required");
    }
    if (r->json) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "cluster recover: no --json: "
                         "the statement of what may be lost is for a person");
    }
    if (kyufud == NULL || kyufud[0] == '\0') {
        kyufud = "kyufud";
    }
    char *child[] = { (char *)kyufud, (char *)"--recover", (char *)node_config,
                      yes ? (char *)"--yes" : NULL, NULL };
    fflush(r->out);
    fflush(r->err);
    pid_t pid;
    int rv = strchr(kyufud, '/') != NULL
                 ? posix_spawn(&pid, kyufud, NULL, NULL, child, environ)
                 : posix_spawnp(&pid, kyufud, NULL, NULL, child, environ);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cluster recover: cannot run %s: "
                         "%s (--kyufud PATH)", kyufud, strerror(rv));
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cluster recover: waiting "
                             "for %s: %s", kyufud, strerror(errno));
        }
    }
    if (!WIFEXITED(status)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cluster recover: %s ended by "
                         "signal %d", kyufud, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    switch (WEXITSTATUS(status)) {
        case 0:
            return KYUFU_CTL_EXIT_OK;
        case 2:
            return KYUFU_CTL_EXIT_USAGE; /* kyufud said why */
        case 4:
            return KYUFU_CTL_EXIT_CHECK;
        default:
            return KYUFU_CTL_EXIT_LOCAL;
    }
}
