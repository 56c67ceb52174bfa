/* kyufu simulation: where a crash happened, for tests that expect one
 * (tests/sim/crash_without_hold.sh).  On SIGSEGV or SIGBUS it writes one
 * line to stderr, the faulting address and the faulting instruction as
 * object+offset:
 *
 *   sim: SIGSEGV at address 0x48, pc libraft.so.0+0x12175
 *
 * then lets the default action kill the process with the same signal.
 * Under ASan the sanitizer's own report says the same (and more), so this
 * is not installed there.  x86-64 Linux only (the PC comes from the
 * signal's ucontext); elsewhere the line says "pc ?". */
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "sim.h"

static void on_fault(int sig, siginfo_t *info, void *ctx)
{
    char line[512];
    uintptr_t pc = 0;
    Dl_info dl;
    const char *obj = "?";
    uintptr_t off = 0;
    int n;
#if defined(__x86_64__) && defined(__linux__)
    pc = (uintptr_t)((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
#else
    (void)ctx;
#endif
    /* dladdr is not async-signal-safe; the process is dying anyway and
     * this runs once (SA_RESETHAND). */
    if (pc != 0 && dladdr((void *)pc, &dl) != 0 && dl.dli_fname != NULL) {
        const char *slash = strrchr(dl.dli_fname, '/');
        obj = slash != NULL ? slash + 1 : dl.dli_fname;
        off = pc - (uintptr_t)dl.dli_fbase;
    }
    n = snprintf(line, sizeof line,
                 "sim: %s at address %p, pc %s+0x%lx\n",
                 sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", info->si_addr, obj,
                 (unsigned long)off);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
    /* Returning re-executes the instruction: default action, same signal. */
}

void sim_crash_reporter_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}
