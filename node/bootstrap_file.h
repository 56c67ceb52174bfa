/* The bootstrap-admin file (docs/identity.md "Accounts and their
 * lifecycle"): the first ID administrator, written by kyufuctl cluster
 * init into each node's data folder.  `key = value` lines (blank lines and
 * lines starting with '#' are skipped): staff_id ([a-z0-9._-], 1..64),
 * display_name (1..127 bytes, no control character), iterations (100000..10000000), salt (32
 * lowercase hex digits), hash (64), each exactly once, no other key.
 *
 * Pure (no I/O): auth_timer.c reads the file (and refuses one that group
 * or others may read); tests/node/test_auth_policy.c feeds it hostile
 * texts. */
#ifndef KYUFU_NODE_BOOTSTRAP_FILE_H
#define KYUFU_NODE_BOOTSTRAP_FILE_H

#include <stdint.h>

#include "storage_limits.h"

/* The largest file read (a real one is about 200 bytes). */
#define KYUFU_NODE_BOOTSTRAP_BYTES_MAX 4096u

struct kyufu_node_bootstrap
{
    char staff_id[KYUFU_STAFF_ID_BYTES_MAX + 1];
    char display_name[128];
    uint32_t iterations;
    uint8_t salt[16];
    uint8_t hash[32];
};

/* Parse `text` (NUL-terminated; cut up in place) into *out.  NULL, or why
 * it is refused: a message naming the key and the rule, never a value. */
const char *kyufu_node__bootstrap_parse(char *text,
                                        struct kyufu_node_bootstrap *out);

#endif /* KYUFU_NODE_BOOTSTRAP_FILE_H */
