/* libkyufu: client id generation and the persisted write sequence.
 *
 * Session file: one line "<client_id> <next_unreserved_sequence>\n".  It is
 * replaced atomically (write a temp file, fsync, rename, fsync the folder)
 * BEFORE any sequence of the new block is handed out.  Crash windows: a
 * crash before the rename leaves the old block, none of whose numbers past
 * the old reservation were used; after it, the rest of the new block is
 * skipped.  Either way no sequence is reused. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "kyufu.h"
#include "session.h"
#include "transport.h"

static int random_id(char *out, size_t out_len)
{
    unsigned char raw[KYUFU_CLIENT_ID_RANDOM_BYTES];
    if (RAND_bytes(raw, (int)sizeof raw) != 1) {
        return KYUFU_CLIENT_EIO;
    }
    assert(out_len >= 2 + 2 * sizeof raw + 1);
    size_t n = (size_t)snprintf(out, out_len, "c-");
    for (size_t i = 0; i < sizeof raw; i++) {
        n += (size_t)snprintf(out + n, out_len - n, "%02x", raw[i]);
    }
    return 0;
}

static bool valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > KYUFU_CLIENT_ID_BYTES_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (id[i] <= ' ' || id[i] > '~') {
            return false;
        }
    }
    return true;
}

static int persist(struct client__session *s, uint64_t reserved,
                   char *errmsg, size_t errmsg_len)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                            "session file path too long");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        goto err;
    }
    char line[KYUFU_CLIENT_ID_BYTES_MAX + 32];
    int len = snprintf(line, sizeof line, "%s %" PRIu64 "\n", s->id, reserved);
    assert(len > 0 && (size_t)len < sizeof line);
    if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
        goto err_fd;
    }
    close(fd);
    if (rename(tmp, s->path) != 0) {
        goto err_unlink;
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", s->path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    s->reserved = reserved;
    return 0;

err_fd:
    close(fd);
err_unlink:
    unlink(tmp);
err:
    return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                        "session file %s: %s", s->path, strerror(errno));
}

int client__session_open(struct client__session *s,
                         const char *id,
                         const char *path,
                         char *errmsg,
                         size_t errmsg_len)
{
    memset(s, 0, sizeof *s);
    s->next = 1;
    if (id != NULL && !valid_id(id)) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINVALID,
                            "client id must be 1..%u printable bytes",
                            KYUFU_CLIENT_ID_BYTES_MAX);
    }
    if (path == NULL) {
        if (id != NULL) {
            /* Refused by kyufu_client_config_validate; here for direct use. */
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EINVALID,
                                "a fixed client id needs a session file");
        }
        if (random_id(s->id, sizeof s->id) != 0) {
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                                "RAND_bytes failed");
        }
        return 0;
    }
    s->path = strdup(path);
    if (s->path == NULL) {
        return KYUFU_CLIENT_ENOMEM;
    }
    FILE *f = fopen(path, "re");
    if (f != NULL) {
        char fid[KYUFU_CLIENT_ID_BYTES_MAX + 2];
        uint64_t next;
        int got = fscanf(f, "%65s %" SCNu64, fid, &next);
        fclose(f);
        if (got != 2 || !valid_id(fid) || next == 0) {
            client__session_close(s);
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                                "session file %s is malformed", path);
        }
        if (id != NULL && strcmp(id, fid) != 0) {
            client__session_close(s);
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                                "session file %s holds client id %s, config "
                                "says %s", path, fid, id);
        }
        snprintf(s->id, sizeof s->id, "%s", fid);
        s->next = next;
        s->reserved = next;
        return 0;
    }
    if (errno != ENOENT) {
        int rv = client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                              "session file %s: %s", path, strerror(errno));
        client__session_close(s);
        return rv;
    }
    if (id != NULL) {
        snprintf(s->id, sizeof s->id, "%s", id);
    } else if (random_id(s->id, sizeof s->id) != 0) {
        client__session_close(s);
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                            "RAND_bytes failed");
    }
    s->reserved = 1; /* nothing reserved yet: the first next() persists */
    return 0;
}

int client__session_next(struct client__session *s,
                         uint64_t *seq,
                         char *errmsg,
                         size_t errmsg_len)
{
    assert(s->next >= 1);
    if (s->path != NULL && s->next >= s->reserved) {
        int rv = persist(s, s->next + KYUFU_CLIENT_SEQUENCE_BLOCK, errmsg,
                         errmsg_len);
        if (rv != 0) {
            return rv;
        }
    }
    assert(s->path == NULL || s->next < s->reserved);
    *seq = s->next++;
    return 0;
}

void client__session_close(struct client__session *s)
{
    free(s->path);
    s->path = NULL;
}
