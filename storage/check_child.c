/* The structural check in a child process (storage.h
 * kyufu_storage_check_isolated): a SIGSEGV or SIGBUS inside LMDB on a
 * damaged page kills the child, never the caller.
 *
 * Happy path: a pipe, fork(); the child runs kyufu_storage_check, writes
 * its result (an int, then the error message) to the pipe and _exits 0;
 * the parent reads to end of file, reaps the child, returns the result.
 *
 * Failure modes: the child killed by a crash signal (SEGV, BUS, ILL, FPE,
 * ABRT, TRAP, SYS) is CORRUPT with the signal named; killed by another
 * signal (an operator's or the OOM killer's SIGKILL) or exiting without a
 * whole result is IO (retried at the next start, not taken for damage);
 * fork or pipe failing is IO or NOMEM.
 *
 * Why fork and not posix_spawn of /proc/self/exe: kyufud calls this before
 * it starts any thread (node/node.c: only the loop is initialised, no
 * threadpool work, OpenSSL has started none), so the child is a faithful
 * copy that needs no hidden command line and no second start of the
 * program; and tests can call it directly. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

/* What the child sends: the result, then the message. */
struct check_result {
    int rv;
    char errmsg[512];
};

static const char *signame(int sig)
{
    switch (sig) {
        case SIGSEGV:
            return "SIGSEGV";
        case SIGBUS:
            return "SIGBUS";
        case SIGILL:
            return "SIGILL";
        case SIGFPE:
            return "SIGFPE";
        case SIGABRT:
            return "SIGABRT";
        case SIGTRAP:
            return "SIGTRAP";
        case SIGSYS:
            return "SIGSYS";
        case SIGKILL:
            return "SIGKILL";
        case SIGTERM:
            return "SIGTERM";
        default:
            return "another signal";
    }
}

static bool crash_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
           sig == SIGABRT || sig == SIGTRAP || sig == SIGSYS;
}

static _Noreturn void child(int fd, const char *path, pid_t parent)
{
    struct check_result r;
    memset(&r, 0, sizeof r);
    /* Default dispositions: a crash must end the child, not run a handler
     * the parent (or a sanitizer) installed; a SIGTERM to the process
     * group must end it too, not reach the parent's event loop through
     * the signal pipe the child inherited (libuv's handler writes there). */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGTERM, SIGINT, SIGHUP};
    static const struct rlimit no_core = {0, 0};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        signal(sigs[i], SIG_DFL);
    }
    /* It may crash by design, and it holds the parent's memory (the
     * cluster key among it): no core file.  It dies with its parent (a
     * kill -9 of kyufud must not leave it walking, holding the data
     * folder's lock). */
    (void)setrlimit(RLIMIT_CORE, &no_core);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(1);
    }
    r.rv = kyufu_storage_check(path, r.errmsg, sizeof r.errmsg);
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            _exit(1);
        }
        p += w;
        left -= (size_t)w;
    }
    _exit(0);
}

int kyufu_storage_check_isolated(const char *path,
                                 char *errmsg,
                                 size_t errmsg_len)
{
    struct check_result r;
    size_t got = 0;
    int fds[2];
    int status;
    pid_t pid;

    if (path == NULL || path[0] == '\0') {
        kyufu_storage__errmsg(errmsg, errmsg_len, "no path");
        return KYUFU_STORAGE_EINVALID;
    }
    if (pipe2(fds, O_CLOEXEC) != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "the store check: pipe: %s",
                              strerror(errno));
        return errno == ENOMEM ? KYUFU_STORAGE_ENOMEM : KYUFU_STORAGE_EIO;
    }
    fflush(NULL); /* nothing buffered is written twice */
    /* waitpid needs SIGCHLD not ignored (an ignoring parent's children
     * are reaped for it: ECHILD); put the default back meanwhile. */
    struct sigaction dfl, old_chld;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, &old_chld);
    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        int e = errno;
        sigaction(SIGCHLD, &old_chld, NULL);
        close(fds[0]);
        close(fds[1]);
        kyufu_storage__errmsg(errmsg, errmsg_len, "the store check: fork: %s",
                              strerror(e));
        return e == ENOMEM || e == EAGAIN ? KYUFU_STORAGE_ENOMEM
                                          : KYUFU_STORAGE_EIO;
    }
    if (pid == 0) {
        close(fds[0]);
        child(fds[1], path, parent);
    }
    close(fds[1]);
    memset(&r, 0, sizeof r);
    while (got < sizeof r) {
        ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            int e = errno;
            sigaction(SIGCHLD, &old_chld, NULL);
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "the store check: waitpid: %s",
                                  strerror(e));
            return KYUFU_STORAGE_EIO;
        }
    }
    sigaction(SIGCHLD, &old_chld, NULL);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        if (crash_signal(sig)) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "the store check crashed on signal %s: a "
                                  "page of data.mdb is damaged",
                                  signame(sig));
            return KYUFU_STORAGE_ECORRUPT;
        }
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "the store check was killed by %s (%d)",
                              signame(sig), sig);
        return KYUFU_STORAGE_EIO;
    }
    if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "the store check ended without a result "
                              "(exit status %d)",
                              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return KYUFU_STORAGE_EIO;
    }
    r.errmsg[sizeof r.errmsg - 1] = '\0';
    kyufu_storage__errmsg(errmsg, errmsg_len, "%s", r.errmsg);
    return r.rv;
}
