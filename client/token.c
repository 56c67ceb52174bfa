/* libkyufu: session token files (kyufu.h "Token files").
 *
 * The token is a bearer secret: whoever reads the file acts as its owner
 * until the session ends.  So the file is written 0600 (as `vault login`
 * writes ~/.vault-token) and, unlike vault, a file that group or others
 * could read or write is refused on reading, as ssh refuses such a private
 * key: a mode changed by a careless copy is noticed, not used.  Messages
 * name the path and the mode, never the content. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kyufu.h"
#include "transport.h"

void client__secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

int kyufu_client_token_check(const char *token)
{
    if (token == NULL) {
        return KYUFU_CLIENT_EINVALID;
    }
    for (size_t i = 0; i < KYUFU_CLIENT_TOKEN_BYTES; i++) {
        if (!is_hex(token[i])) {
            return KYUFU_CLIENT_EINVALID; /* also a short one: '\0' */
        }
    }
    return token[KYUFU_CLIENT_TOKEN_BYTES] == '\0' ? 0 : KYUFU_CLIENT_EINVALID;
}

int kyufu_client_token_read(const char *path, char *out, char *errmsg, size_t errmsg_len)
{
    assert(path != NULL && out != NULL);
    out[0] = '\0';
    /* O_NOFOLLOW: a symlink planted at the path is not followed to a file
     * whose mode we did not check. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT) {
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ENO_TOKEN,
                                "no session token in %s", path);
        }
        if (errno == ELOOP) {
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINSECURE,
                                "token file %s is a symbolic link: refused", path);
        }
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                            "token file %s: %s", path, strerror(errno));
    }
    int rv = 0;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "token file %s: %s", path,
                          strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINSECURE,
                          "token file %s is not a regular file: refused", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINSECURE,
                          "token file %s belongs to another user (uid %u): refused", path,
                          (unsigned)st.st_uid);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINSECURE,
                          "token file %s has mode %04o: group or others may read it; "
                          "refused (chmod 600 %s, or sign in again)",
                          path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    char buf[KYUFU_CLIENT_TOKEN_BYTES + 3];
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof buf - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "token file %s: %s", path,
                              strerror(errno));
            OPENSSL_cleanse(buf, sizeof buf);
            goto out;
        }
        got += (size_t)n;
        if (n == 0 || got == sizeof buf) {
            break;
        }
    }
    /* The token, optionally one newline (\n or \r\n), nothing else. */
    size_t len = got;
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') {
            len--;
        }
    }
    if (got == sizeof buf || len != KYUFU_CLIENT_TOKEN_BYTES) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                          "token file %s does not hold a session token (%u hex digits); "
                          "sign in again", path, KYUFU_CLIENT_TOKEN_BYTES);
        OPENSSL_cleanse(buf, sizeof buf);
        goto out;
    }
    buf[len] = '\0';
    if (kyufu_client_token_check(buf) != 0) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                          "token file %s does not hold a session token (%u hex digits); "
                          "sign in again", path, KYUFU_CLIENT_TOKEN_BYTES);
    } else {
        memcpy(out, buf, KYUFU_CLIENT_TOKEN_BYTES + 1);
    }
    OPENSSL_cleanse(buf, sizeof buf);
out:
    close(fd);
    return rv;
}

/* mkdir -p of path's folder, new levels 0700. */
static int make_parent(const char *path, char *errmsg, size_t errmsg_len)
{
    char dir[PATH_MAX];
    if (strlen(path) >= sizeof dir) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "token file path too long");
    }
    strcpy(dir, path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) {
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
                return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot create %s: %s",
                                    dir, strerror(errno));
            }
            *p = saved;
            if (saved == '\0') {
                break;
            }
        }
    }
    return 0;
}

int kyufu_client_token_write(const char *path, const char *token, char *errmsg,
                             size_t errmsg_len)
{
    assert(path != NULL);
    if (kyufu_client_token_check(token) != 0) {
        return KYUFU_CLIENT_EINVALID;
    }
    int rv = make_parent(path, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "token file path too long");
    }
    (void)unlink(tmp); /* a leftover of a crashed run of this pid */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot create %s: %s", tmp,
                            strerror(errno));
    }
    char buf[KYUFU_CLIENT_TOKEN_BYTES + 1];
    memcpy(buf, token, KYUFU_CLIENT_TOKEN_BYTES);
    buf[KYUFU_CLIENT_TOKEN_BYTES] = '\n';
    size_t done = 0;
    while (done < sizeof buf) {
        ssize_t n = write(fd, buf + done, sizeof buf - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot write %s: %s", tmp,
                              strerror(n < 0 ? errno : EIO));
            break;
        }
        done += (size_t)n;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    /* umask may have narrowed the mode, never widened it; fchmod makes it
     * exactly 0600 whatever the umask. */
    if (rv == 0 && (fchmod(fd, 0600) != 0 || fsync(fd) != 0)) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot write %s: %s", tmp,
                          strerror(errno));
    }
    if (close(fd) != 0 && rv == 0) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot write %s: %s", tmp,
                          strerror(errno));
    }
    if (rv == 0 && rename(tmp, path) != 0) {
        rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot rename %s to %s: %s",
                          tmp, path, strerror(errno));
    }
    if (rv != 0) {
        (void)unlink(tmp);
    }
    return rv;
}

int kyufu_client_token_remove(const char *path, char *errmsg, size_t errmsg_len)
{
    if (unlink(path) != 0 && errno != ENOENT) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO, "cannot delete %s: %s", path,
                            strerror(errno));
    }
    return 0;
}

int kyufu_client_token_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    /* The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored. */
    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(buf, len, "%s/kyufu/token", xdg);
    } else if (home != NULL && home[0] == '/') {
        n = snprintf(buf, len, "%s/.config/kyufu/token", home);
    } else {
        return KYUFU_CLIENT_EINVALID;
    }
    return n < 0 || (size_t)n >= len ? KYUFU_CLIENT_ENOMEM : 0;
}
