/* kyufuctl restore: the ledger of a new cluster from a backup's state
 * (docs/restore.md "Restore").
 *
 *   kyufuctl cluster init --dir DIR ...      a new cluster: new CA, hence a
 *                                            new cluster identity, configs
 *   kyufuctl restore --dir DIR --stream FILE [--digest HEX] [--kyufud PATH]
 *
 * The new cluster is made by `cluster init` itself (its code, unchanged);
 * restore then seeds every node folder DIR/nodeN of a local layout with
 * `kyufud --seed DIR/nodeN/kyufud.conf FILE` (node/seed.h: only kyufud
 * reads its config and only raft-glue writes Raft files).  FILE is a
 * storage snapshot stream, decrypted (the backup reader's output once the
 * backup format is merged).  With --digest (the backup manifest's state
 * digest) kyufud refuses, with nothing changed, a stream whose restored
 * state digests otherwise.  A layout for real hosts (cluster init --hosts) has no data
 * folder here: restore refuses, and the runbook runs kyufud --seed on each
 * host.
 *
 * Exit: 0 every node seeded; 2 usage (DIR without node folders, a
 * malformed --digest); 4 a node refused or failed (the message names it;
 * nodes before it are seeded); 5 the stream is refused (corrupt, or its
 * digest is not --digest). */
#include <ctype.h>
#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl.h"

extern char **environ;

enum { OPT_HELP = 0x600, OPT_DIR, OPT_STREAM, OPT_DIGEST, OPT_KYUFUD };

void ctl__restore_usage(FILE *out)
{
    fprintf(out,
            "  restore --dir DIR --stream FILE [--digest HEX] [--kyufud PATH]\n"
            "               seed every node of a new local cluster (made by cluster init\n"
            "               --dir DIR, nodes not started) with a backup's state: FILE a\n"
            "               decrypted snapshot stream; --digest: the backup's state digest\n");
}

/* kyufud --seed CONF STREAM with its stdout into buf; its exit status, or
 * -1 when it could not run (errno). */
static int run_seed(const char *kyufud, const char *conf, const char *stream,
                    const char *digest, char *buf, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    char *argv[] = { (char *)kyufud, (char *)"--seed", (char *)conf, (char *)stream,
                     (char *)digest, NULL };
    pid_t pid;
    int rv = strchr(kyufud, '/') != NULL
                 ? posix_spawn(&pid, kyufud, &fa, NULL, argv, environ)
                 : posix_spawnp(&pid, kyufud, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rv != 0) {
        close(fds[0]);
        errno = rv;
        return -1;
    }
    size_t n = 0;
    for (;;) {
        ssize_t got = read(fds[0], buf + n, len - 1 - n);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0 || (n += (size_t)got) == len - 1) {
            break;
        }
    }
    buf[n] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static bool hex64(const char *s)
{
    if (strlen(s) != 64) {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p)) {
            return false;
        }
    }
    return true;
}

int ctl__restore(struct ctl__run *r, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, OPT_DIR },
        { "stream", required_argument, NULL, OPT_STREAM },
        { "digest", required_argument, NULL, OPT_DIGEST },
        { "kyufud", required_argument, NULL, OPT_KYUFUD },
        { "help", no_argument, NULL, OPT_HELP },
        { 0 },
    };
    const char *dir = NULL, *stream = NULL, *digest = NULL;
    const char *kyufud = getenv("KYUFU_KYUFUD");
    int c;

    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            ctl__restore_usage(r->out);
            return 0;
        } else if (c == OPT_DIR) {
            dir = optarg;
        } else if (c == OPT_STREAM) {
            stream = optarg;
        } else if (c == OPT_DIGEST) {
            digest = optarg;
        } else if (c == OPT_KYUFUD) {
            kyufud = optarg;
        } else {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: unknown option or "
                             "missing value in '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: unexpected argument '%s'",
                         argv[optind]);
    }
    if (dir == NULL || stream == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --dir DIR (made by "
                         "cluster init) and --stream FILE are required");
    }
    if (digest != NULL && !hex64(digest)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --digest must be 64 "
                         "lowercase hex digits (the backup's state digest)");
    }
    if (kyufud == NULL || kyufud[0] == '\0') {
        kyufud = "kyufud";
    }
    char conf[4096];
    unsigned nodes = 0;
    for (unsigned i = 1; i <= KYUFU_CTL_INIT_NODES_MAX; i++) {
        struct stat st;
        snprintf(conf, sizeof conf, "%s/node%u/data", dir, i);
        if (stat(conf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            break;
        }
        nodes = i;
    }
    if (nodes == 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: %s has no node1/data: "
                         "make the new cluster with cluster init --dir first (a "
                         "layout for real hosts is seeded on each host: "
                         "docs/restore.md)", dir);
    }
    for (unsigned i = 1; i <= nodes; i++) {
        char out[1024];
        snprintf(conf, sizeof conf, "%s/node%u/kyufud.conf", dir, i);
        fflush(r->out);
        fflush(r->err);
        int st = run_seed(kyufud, conf, stream, digest, out, sizeof out);
        if (st < 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "restore: cannot run %s: %s "
                             "(--kyufud PATH)", kyufud, strerror(errno));
        }
        if (st != 0) {
            return ctl__fail(r, st == 2 ? KYUFU_CTL_EXIT_USAGE
                                : st == 4 ? KYUFU_CTL_EXIT_CHECK : KYUFU_CTL_EXIT_LOCAL,
                             "restore: node %u not seeded (kyufud said why above)%s",
                             i, i > 1 ? "; the nodes before it are" : "");
        }
        const char *d = strstr(out, "state digest ");
        if (d == NULL || strlen(d) < 13 + 64) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "restore: node %u: unexpected "
                             "answer from kyufud: %s", i, out);
        }
        fputs(out, r->out);
    }
    fprintf(r->out, "restored: %u nodes seeded; start their kyufud (they do not "
            "bootstrap: the Raft snapshot holds the configuration)\n", nodes);
    return 0;
}
