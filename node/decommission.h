/* Decommissioning a node (issue 12 Deliver 4; docs/decommission.md).
 *
 * decommission_erase.c (pure: files only, no loop, no node; a unit test
 * drives it): the inventory of everything to destroy (path, size, SHA-256
 * before erasure), then the erasure itself, keys first:
 *   1. cryptographic erase: every key file is overwritten with random bytes,
 *      fsynced and unlinked (NIST SP 800-88 Rev. 1 "cryptographic erase":
 *      without the keys every ciphertext is unreadable);
 *   2. every other file is overwritten once with random bytes, fsynced and
 *      unlinked (symbolic links and special files are unlinked, never
 *      followed);
 *   3. the folders are removed, deepest first, the roots last.
 * An error on one file does not stop the others: each file records what
 * was done to it, and kyufu_decom_erase returns -1 when anything is left.
 *
 * decommission.c: the Cluster RPCs (GetDecommission, EraseNode) and the
 * node's last steps (docs/decommission.md "On a node"). */
#ifndef KYUFU_NODE_DECOMMISSION_H
#define KYUFU_NODE_DECOMMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kyufu_decom_kind {
    KYUFU_DECOM_KEY = 1,    /* a key file: erased first */
    KYUFU_DECOM_DATA = 2,   /* under the data folder */
    KYUFU_DECOM_BACKUP = 3, /* a managed backup */
};

struct kyufu_decom_file
{
    char *path;          /* owned */
    enum kyufu_decom_kind kind;
    bool regular;        /* false: a link or special file, removed only */
    uint64_t size;       /* bytes at the inventory (0 unless regular) */
    uint8_t sha256[32];  /* of those bytes (regular files) */
    bool overwritten;    /* set by erase: random bytes written and fsynced */
    bool removed;        /* set by erase: unlinked */
    int error;           /* the errno that stopped it (erase), ENOENT from
                            the walk for a file that vanished (never
                            touched), or 0 */
};

struct kyufu_decom_inventory
{
    struct kyufu_decom_file *files;
    size_t n, cap;
    char **dirs;         /* folders, parents before children (owned) */
    size_t n_dirs, cap_dirs;
    size_t dirs_left;    /* set by erase: folders that could not be removed */
};

/* Add every file under `root` (not following links) with `kind`, and files
 * under `root`/`key_sub` (when key_sub is not NULL) as keys; root and its
 * sub-folders become folders to remove.  A missing root adds nothing (0).
 * 0, or -1 with errmsg (unreadable entry, too many files, too deep). */
int kyufu_decom_add_tree(struct kyufu_decom_inventory *inv,
                         const char *root,
                         enum kyufu_decom_kind kind,
                         const char *key_sub,
                         char *errmsg,
                         size_t errmsg_len);
/* Add one file (a KEK file outside the data folder).  Missing: 0, nothing
 * added.  -1 with errmsg when it cannot be read. */
int kyufu_decom_add_file(struct kyufu_decom_inventory *inv,
                         const char *path,
                         enum kyufu_decom_kind kind,
                         char *errmsg,
                         size_t errmsg_len);
/* Add every sub-folder of `dir` for which want(its path, arg) is true
 * (want NULL: every one) as add_tree does; not dir itself, not the files
 * directly in it, links not followed: the backups under a [backup]
 * directory that other nodes and other uses may share.  A missing dir
 * adds nothing (0).  -1 with errmsg as add_tree. */
int kyufu_decom_add_children(struct kyufu_decom_inventory *inv,
                             const char *dir,
                             enum kyufu_decom_kind kind,
                             bool (*want)(const char *path, const void *arg),
                             const void *arg,
                             char *errmsg,
                             size_t errmsg_len);
/* Erase as the header says.  0 when every file and folder is gone, -1
 * otherwise (each file's `error` says which). */
int kyufu_decom_erase(struct kyufu_decom_inventory *inv);
void kyufu_decom_inventory_free(struct kyufu_decom_inventory *inv);

/* The method the certificate names for each file. */
#define KYUFU_DECOM_METHOD                                                     \
    "NIST SP 800-88 Rev. 1 cryptographic erase (every key file overwritten " \
    "with random bytes, fsynced, removed) + one overwrite pass with random " \
    "bytes (fsynced) + removal"

struct kyufu_node;
struct kyufu_node_call;
/* Cluster.GetDecommission: the decommission this node has applied. */
void kyufu_node__get_decommission(struct kyufu_node_call *c);
/* Cluster.EraseNode: checks the id against the approved decommission this
 * node has applied, then stops the node the decommissioning way
 * (node.c): the glue and the store close, kyufu_node__decom_finish
 * erases, answers, and closes the API server. */
void kyufu_node__erase_node(struct kyufu_node_call *c);
/* From kyufu_node__finish when n->decom is set: store and glue closed. */
void kyufu_node__decom_finish(struct kyufu_node *n);

#endif /* KYUFU_NODE_DECOMMISSION_H */
