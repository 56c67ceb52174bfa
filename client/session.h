/* libkyufu internal: the client session (client id + write sequence).
 *
 * The pair (client_id, sequence) is the idempotency key of a write; the
 * server answers a key it has already applied with the first result.  So a
 * key must never be handed out twice for two different writes: within a
 * process the counter only grows; across processes either the id is new
 * (random) or the counter is persisted before use (session file). */
#ifndef KYUFU_CLIENT_SESSION_H
#define KYUFU_CLIENT_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "client_limits.h"

struct client__session
{
    char id[KYUFU_CLIENT_ID_BYTES_MAX + 1];
    uint64_t next;     /* next sequence to hand out, >= 1 */
    uint64_t reserved; /* with a file: sequences < reserved are on disk */
    char *path;        /* session file, or NULL */
};

/* id: fixed client id or NULL; path: session file or NULL.  With neither,
 * a random id.  With a path, the file's id is used (and must equal id if
 * both are given); a missing file is created with a new or the given id. */
int client__session_open(struct client__session *s,
                         const char *id,
                         const char *path,
                         char *errmsg,
                         size_t errmsg_len);

/* Next sequence (> 0); persists a new block first when a file is used.
 * Returns 0 or KYUFU_CLIENT_EIO (the key is then not handed out). */
int client__session_next(struct client__session *s,
                         uint64_t *seq,
                         char *errmsg,
                         size_t errmsg_len);

void client__session_close(struct client__session *s);

#endif
