/* kyufuctl: questions asked on the terminal (sign-in, password change,
 * TOTP enrollment).
 *
 * Secrets are read with echo off (termios: ECHO cleared, ECHONL kept so
 * the Enter still moves the cursor), the prompt written after echo is off
 * so nothing typed early shows, and the terminal restored whatever
 * happens (a signal aside: SIGINT during the read leaves echo off as
 * getpass(3) does; the shell's `reset` restores it).  The terminal is
 * /dev/tty, so a password never comes from a pipe by accident: scripts use
 * --password-file.  Buffers holding secrets are the caller's to cleanse. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctl.h"

static int write_all(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One line from fd into buf without its newline; -1 at EOF before a
 * newline, on error, or if the line does not fit (the rest is read and
 * dropped, the buffer cleansed); a NUL byte in the line is refused the
 * same way. */
static int read_line(int fd, char *buf, size_t len)
{
    size_t n = 0;
    bool overflow = false;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            OPENSSL_cleanse(buf, len);
            buf[0] = '\0';
            return -1;
        }
        if (ch == '\n' || ch == '\r') {
            break;
        }
        if (ch == '\0') {
            overflow = true; /* a NUL would cut the secret short: refused */
        } else if (n + 1 < len) {
            buf[n++] = ch;
        } else {
            overflow = true;
        }
    }
    buf[n] = '\0';
    if (overflow) {
        OPENSSL_cleanse(buf, len);
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

int ctl__tty_ask(int fd, const char *prompt, bool secret, char *buf, size_t len)
{
    struct termios saved, quiet;
    bool restore = false;
    if (secret) {
        if (tcgetattr(fd, &saved) != 0) {
            return -1; /* not a terminal: a secret is never read from it */
        }
        quiet = saved;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        quiet.c_lflag |= ECHONL;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
            return -1;
        }
        restore = true;
    }
    int rv = write_all(fd, prompt);
    if (rv == 0) {
        rv = read_line(fd, buf, len);
    }
    if (restore) {
        (void)tcsetattr(fd, TCSAFLUSH, &saved);
    }
    return rv;
}

int ctl__tty_open(void)
{
    return open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
}

int ctl__tty_say(int fd, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return write_all(fd, msg);
}

int ctl__read_secret_file(const char *path, char *buf, size_t len, char *why, size_t why_len)
{
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The first line; a file without a newline is one line too. */
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            snprintf(why, why_len, "%s: %s", path, strerror(errno));
            close(fd);
            OPENSSL_cleanse(buf, len);
            return -1;
        }
        if (r == 0 || ch == '\n') {
            break;
        }
        if (ch == '\0') {
            /* C strings end there: the secret used would be cut short. */
            snprintf(why, why_len, "%s: the first line holds a NUL byte", path);
            close(fd);
            OPENSSL_cleanse(buf, len);
            return -1;
        }
        if (n + 1 >= len) {
            snprintf(why, why_len, "%s: the first line is longer than %zu bytes", path,
                     len - 1);
            close(fd);
            OPENSSL_cleanse(buf, len);
            return -1;
        }
        buf[n++] = ch;
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\r') {
        n--;
    }
    buf[n] = '\0';
    if (n == 0) {
        snprintf(why, why_len, "%s: empty first line", path);
        return -1;
    }
    return 0;
}
