/* kyufuctl restore: the ledger of a new cluster from a backup's state
 * (docs/restore.md "Restore").
 *
 *   kyufuctl cluster init --dir DIR ...      a new cluster: new CA, hence a
 *                                            new cluster identity, configs
 *   kyufuctl restore --dir DIR --backup BDIR --kek FILE --ca OLD_CA
 *                    [--kyufud PATH]
 *   kyufuctl restore --dir DIR --stream FILE [--digest HEX] [--kyufud PATH]
 *
 * --backup: kyufu_backup_open checks the backup (signature and chain to
 * OLD_CA, the old cluster's CA; the KEK unwraps its keys) and gives a
 * reader of its stream and the backup's cluster master key; one pass of
 * the reader checks every chunk before any node is touched.  Then, for
 * each kyufud --seed, the reader decrypts the chunks again one at a time
 * into a pipe (/dev/fd/3), and the CMK goes through another pipe
 * (/dev/fd/4): neither is ever on disk in plaintext, and neither process
 * holds the whole stream (docs/restore.md "Memory").  kyufud sets the CMK on the new store before it
 * restores the sealed stream, checks the manifest's state digest, and
 * rewraps the CMK under the node's own KEK bound to the NEW CA (seed.h).
 * Every node folder is checked empty (no ledger, no raft) before any is
 * touched.
 *
 * The new cluster is made by `cluster init` itself (its code, unchanged);
 * restore then seeds every node folder DIR/nodeN of a local layout with
 * `kyufud --seed DIR/nodeN/kyufud.conf FILE` (node/seed.h: only kyufud
 * reads its config and only raft-glue writes Raft files).  FILE is a
 * storage snapshot stream, decrypted (an unencrypted ledger's, or one made
 * by hand).  With --digest (the backup manifest's state
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
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backup_format.h"
#include "ctl.h"
#include "keys.h"

#define KYUFU_CTL__XSTR(x) #x
#define KYUFU_CTL__STR(x) KYUFU_CTL__XSTR(x)

extern char **environ;

enum {
    OPT_HELP = 0x600,
    OPT_DIR,
    OPT_STREAM,
    OPT_DIGEST,
    OPT_KYUFUD,
    OPT_BACKUP,
    OPT_KEK,
    OPT_CA,
};

/* The fds a seeding kyufud reads the stream and the CMK from. */
#define SEED_STREAM_FD 3
#define SEED_CMK_FD 4

void ctl__restore_usage(FILE *out)
{
    fprintf(out,
            "  restore --dir DIR --backup BDIR --kek FILE --ca OLD_CA_PEM [--kyufud PATH]\n"
            "               seed every node of a new local cluster (made by cluster init\n"
            "               --dir DIR, nodes not started) from a backup of the cluster\n"
            "               whose CA is OLD_CA_PEM, its cluster key rewrapped per node\n"
            "  restore --dir DIR --stream FILE [--digest HEX] [--kyufud PATH]\n"
            "               seed every node of a new local cluster (made by cluster init\n"
            "               --dir DIR, nodes not started) with a backup's state: FILE a\n"
            "               decrypted snapshot stream; --digest: the backup's state digest\n");
}

/* The stream a seeding kyufud reads through a pipe: the backup's chunks,
 * decrypted one at a time by the reader (NULL: kyufud reads --stream FILE
 * itself). */
struct feed
{
    struct kyufu_storage_source src;
    char err[512]; /* the reader's failure, when fed is false */
    bool fed;
};

/* Write the whole stream into fd (the pipe's write end, closed here).  A
 * kyufud that stops reading (it refused, or died) ends the feed: EPIPE,
 * its exit status tells why. */
static void feed_stream(struct feed *f, int fd)
{
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    f->fed = false;
    f->err[0] = '\0';
    if (f->src.rewind(f->src.arg, f->err, sizeof f->err) != 0) {
        goto out;
    }
    for (;;) {
        const uint8_t *p = NULL;
        size_t len = 0;
        if (f->src.read(f->src.arg, &p, &len, f->err, sizeof f->err) != 0) {
            goto out; /* kyufud sees a cut stream and refuses it */
        }
        if (len == 0) {
            break;
        }
        while (len > 0) {
            ssize_t n = write(fd, p, len);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                goto out; /* kyufud stopped reading */
            }
            p += n;
            len -= (size_t)n;
        }
    }
    f->fed = true;
out:
    close(fd);
    signal(SIGPIPE, old);
}

/* kyufud --seed CONF STREAM [DIGEST [CMK]] with its stdout into buf; with
 * feed, STREAM is a pipe (its fd 3) that feed fills; else stream is a
 * file.  cmk_fd (or -1) becomes its fd 4.  Its exit status, or -1 when it
 * could not run (errno). */
static int run_seed(const char *kyufud, const char *conf, const char *stream,
                    const char *digest, struct feed *feed, int cmk_fd,
                    char *buf, size_t len)
{
    int fds[2];
    int in[2] = {-1, -1};
    if (pipe(fds) != 0) {
        return -1;
    }
    /* The child's fds 3 and 4 come from dup2s run in order: a source
     * that is itself 3 or 4 would be overwritten by the other one, so
     * both are moved above them first. */
    int cmk_high = cmk_fd >= 0 ? fcntl(cmk_fd, F_DUPFD_CLOEXEC, 10) : -1;
    if ((cmk_fd >= 0 && cmk_high < 0) ||
        (feed != NULL && pipe2(in, O_CLOEXEC) != 0)) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        if (cmk_high >= 0) {
            close(cmk_high);
        }
        errno = e;
        return -1;
    }
    if (feed != NULL) {
        int high = fcntl(in[0], F_DUPFD_CLOEXEC, 10);
        close(in[0]);
        in[0] = high;
        if (high < 0) {
            int e = errno;
            close(in[1]);
            close(fds[0]);
            close(fds[1]);
            if (cmk_high >= 0) {
                close(cmk_high);
            }
            errno = e;
            return -1;
        }
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    if (feed != NULL) {
        posix_spawn_file_actions_adddup2(&fa, in[0], SEED_STREAM_FD);
    }
    if (cmk_high >= 0) {
        posix_spawn_file_actions_adddup2(&fa, cmk_high, SEED_CMK_FD);
    }
    char cmk_arg[16];
    snprintf(cmk_arg, sizeof cmk_arg, "/dev/fd/%d", SEED_CMK_FD);
    char *argv[] = { (char *)kyufud, (char *)"--seed", (char *)conf, (char *)stream,
                     (char *)digest, cmk_fd >= 0 ? cmk_arg : NULL, NULL };
    pid_t pid;
    int rv = strchr(kyufud, '/') != NULL
                 ? posix_spawn(&pid, kyufud, &fa, NULL, argv, environ)
                 : posix_spawnp(&pid, kyufud, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (feed != NULL) {
        close(in[0]);
    }
    if (cmk_high >= 0) {
        close(cmk_high);
    }
    if (rv != 0) {
        close(fds[0]);
        if (feed != NULL) {
            close(in[1]);
        }
        errno = rv;
        return -1;
    }
    /* kyufud prints its one line at the end: the stdout pipe never fills
     * while the stream is fed. */
    if (feed != NULL) {
        feed_stream(feed, in[1]);
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

/* Every node folder 1..nodes has neither a store nor a Raft directory:
 * checked for all before any is touched.  0, or the node at fault. */
static unsigned first_busy(const char *dir, unsigned nodes, char *p, size_t len)
{
    for (unsigned i = 1; i <= nodes; i++) {
        for (int k = 0; k < 2; k++) {
            snprintf(p, len, "%s/node%u/data/%s", dir, i, k == 0 ? "ledger" : "raft");
            if (access(p, F_OK) == 0) {
                return i;
            }
        }
    }
    return 0;
}

/* Read the whole stream once (every chunk's size, SHA-256 and tag, and
 * their total), so that a damaged backup is refused before any node is
 * touched.  0, or -1 with err. */
static int check_stream(struct feed *f, char *err, size_t err_len)
{
    for (;;) {
        const uint8_t *p = NULL;
        size_t len = 0;
        if (f->src.read(f->src.arg, &p, &len, err, err_len) != 0) {
            return -1;
        }
        if (len == 0) {
            return 0;
        }
    }
}

/* A pipe whose read end holds the 32 CMK bytes and EOF; the read end, or
 * -1 (errno).  32 bytes fit any pipe buffer: the write never blocks. */
static int cmk_pipe(const uint8_t cmk[KYUFU_BACKUP_KEY_BYTES])
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        return -1;
    }
    ssize_t n = write(p[1], cmk, KYUFU_BACKUP_KEY_BYTES);
    close(p[1]);
    if (n != (ssize_t)KYUFU_BACKUP_KEY_BYTES) {
        close(p[0]);
        errno = EIO;
        return -1;
    }
    return p[0];
}

int ctl__restore(struct ctl__run *r, int argc, char **argv)
{
    static const struct option opts[] = {
        { "dir", required_argument, NULL, OPT_DIR },
        { "stream", required_argument, NULL, OPT_STREAM },
        { "digest", required_argument, NULL, OPT_DIGEST },
        { "kyufud", required_argument, NULL, OPT_KYUFUD },
        { "backup", required_argument, NULL, OPT_BACKUP },
        { "kek", required_argument, NULL, OPT_KEK },
        { "ca", required_argument, NULL, OPT_CA },
        { "help", no_argument, NULL, OPT_HELP },
        { 0 },
    };
    const char *dir = NULL, *stream = NULL, *digest = NULL;
    const char *backup = NULL, *kek_path = NULL, *ca = NULL;
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
        } else if (c == OPT_BACKUP) {
            backup = optarg;
        } else if (c == OPT_KEK) {
            kek_path = optarg;
        } else if (c == OPT_CA) {
            ca = optarg;
        } else {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: unknown option or "
                             "missing value in '%s'", argv[optind - 1]);
        }
    }
    if (optind != argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: unexpected argument '%s'",
                         argv[optind]);
    }
    if (dir == NULL || (stream == NULL) == (backup == NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --dir DIR (made by "
                         "cluster init) and one of --backup BDIR or --stream FILE "
                         "are required");
    }
    if (backup != NULL && (kek_path == NULL || ca == NULL || digest != NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --backup needs --kek "
                         "FILE (the backup KEK) and --ca FILE (the backed-up "
                         "cluster's CA); the digest is the manifest's");
    }
    if (stream != NULL && (kek_path != NULL || ca != NULL)) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --kek and --ca go "
                         "with --backup");
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
    unsigned busy = first_busy(dir, nodes, conf, sizeof conf);
    if (busy != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: %s exists: restore "
                         "only into a new cluster's empty node folders; nothing "
                         "changed", conf);
    }

    int status = KYUFU_CTL_EXIT_LOCAL;
    struct kyufu_backup_verify_result res;
    struct kyufu_backup_reader *reader = NULL;
    struct feed feed;
    bool has_cmk = false;
    uint8_t cmk[KYUFU_BACKUP_KEY_BYTES];
    char manifest_digest[65];
    memset(cmk, 0, sizeof cmk);
    memset(&res, 0, sizeof res);
    memset(&feed, 0, sizeof feed);
    if (backup != NULL) {
        char err[1024];
        uint8_t kek[KYUFU_KEYS_KEY_BYTES];
        if (kyufu_keys_kek_read(kek_path, kek, err, sizeof err) != 0) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "restore: --kek: %s; nothing "
                             "changed", err);
        }
        int rv = kyufu_backup_open(backup, ca, kek, &res, &reader, cmk, err,
                                   sizeof err);
        kyufu_storage_crypto_wipe(kek, sizeof kek);
        if (rv == 0) {
            kyufu_backup_reader_source(reader, &feed.src);
            rv = check_stream(&feed, err, sizeof err);
        }
        if (rv != 0) {
            status = ctl__fail(r, KYUFU_CTL_EXIT_CHECK, "restore: backup %s "
                               "refused: %s; nothing changed", backup, err);
            goto out;
        }
        has_cmk = res.m.has_cmk;
        kyufu_backup_hex(res.m.state_digest, 32, manifest_digest);
        digest = manifest_digest;
        stream = "/dev/fd/" KYUFU_CTL__STR(SEED_STREAM_FD);
    }
    for (unsigned i = 1; i <= nodes; i++) {
        char out[1024];
        snprintf(conf, sizeof conf, "%s/node%u/kyufud.conf", dir, i);
        int cmk_fd = -1;
        if (has_cmk && (cmk_fd = cmk_pipe(cmk)) < 0) {
            ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "restore: pipe: %s", strerror(errno));
            goto out;
        }
        fflush(r->out);
        fflush(r->err);
        int st = run_seed(kyufud, conf, stream, digest,
                          reader != NULL ? &feed : NULL,
                          reader != NULL ? cmk_fd : -1, out, sizeof out);
        if (cmk_fd >= 0) {
            close(cmk_fd);
        }
        if (st < 0) {
            ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "restore: cannot run %s: %s "
                      "(--kyufud PATH)", kyufud, strerror(errno));
            goto out;
        }
        if (reader != NULL && !feed.fed && feed.err[0] != '\0') {
            fprintf(r->err, "kyufuctl: restore: reading backup %s for node %u: "
                    "%s\n", backup, i, feed.err);
        }
        if (st != 0) {
            status = st == 2 ? KYUFU_CTL_EXIT_USAGE
                     : st == 4 ? KYUFU_CTL_EXIT_CHECK : KYUFU_CTL_EXIT_LOCAL;
            ctl__fail(r, status, "restore: node %u not seeded (kyufud said why "
                      "above)%s", i, i > 1 ? "; the nodes before it are" : "");
            goto out;
        }
        const char *d = strstr(out, "state digest ");
        if (d == NULL || strlen(d) < 13 + 64) {
            ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "restore: node %u: unexpected "
                      "answer from kyufud: %s", i, out);
            goto out;
        }
        fputs(out, r->out);
    }
    fprintf(r->out, "restored: %u nodes seeded; start their kyufud (they do not "
            "bootstrap: the Raft snapshot holds the configuration)\n", nodes);
    status = 0;
out:
    kyufu_backup_reader_close(reader);
    if (reader != NULL) {
        kyufu_backup_manifest_free(&res.m);
    }
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    return status;
}
