/* The store's flush mark: after an OS crash, a store flushed in the
 * background is rebuilt, not trusted (docs/storage.md, "After an OS crash:
 * rebuild").
 *
 * With `[storage] flush = background` the store is opened MDB_NOSYNC, and
 * without ordered writeback an OS crash or power loss can leave it torn
 * (a meta page on disk before its data pages, or reused pages of the last
 * flushed state overwritten).  So before the first write of a background
 * session the node writes STORE_DIR/flush.mark, "open" with the kernel's
 * boot id, and after the final flush of a clean stop rewrites it "clean".
 * At the next start a mark that says "open" with another boot id (the OS
 * restarted while the store had unflushed commits) or that cannot be read
 * means: remove the store's files and let raft rebuild it from the node's
 * own snapshot and log (they always suffice: compaction waits for the
 * store's flush, restore flushes).  A process crash keeps the boot id: the
 * page cache held every commit, nothing is rebuilt.
 *
 * The mark is three lines, written to a temporary file, fsynced, renamed
 * over flush.mark and the directory fsynced, so there is never a moment
 * without a whole mark:
 *
 *     kyufu store flush mark 1
 *     boot <boot id>
 *     state open|clean
 *
 * The boot id is /proc/sys/kernel/random/boot_id, or the file named by the
 * environment variable KYUFU_BOOT_ID_FILE (a test hook, docs/testing.md).
 * No function here logs; node.c does. */
#ifndef KYUFU_NODE_STORE_MARK_H
#define KYUFU_NODE_STORE_MARK_H

#include <stdbool.h>
#include <stddef.h>

/* Longest boot id kept (the kernel's is a 36-character UUID). */
#define KYUFU_STORE_MARK_BOOT_BYTES_MAX 64u

enum kyufu_store_mark_verdict {
    KYUFU_STORE_MARK_NONE,      /* no mark: nothing to judge */
    KYUFU_STORE_MARK_CLEAN,     /* "clean": the last session flushed all */
    KYUFU_STORE_MARK_SAME_BOOT, /* "open", this boot: a process crash */
    KYUFU_STORE_MARK_REBOOTED,  /* "open", another or unknown boot: rebuild */
    KYUFU_STORE_MARK_MALFORMED, /* unreadable or not a mark: rebuild */
};

/* The current boot id into out (NUL-terminated, at most
 * KYUFU_STORE_MARK_BOOT_BYTES_MAX - 1 characters of [0-9A-Za-z-]).
 * Returns 0, or -1 with out = "" and the reason in errmsg (the id is then
 * unknown: an "open" mark never matches it). */
int kyufu_store_mark_boot_id(char out[KYUFU_STORE_MARK_BOOT_BYTES_MAX],
                             char *errmsg, size_t errmsg_len);

/* Judge STORE_DIR/flush.mark against boot_id ("" = unknown).  mark_boot
 * receives the mark's boot id ("" when none or malformed); detail says
 * why a mark is MALFORMED. */
enum kyufu_store_mark_verdict kyufu_store_mark_judge(
    const char *store_dir, const char *boot_id,
    char mark_boot[KYUFU_STORE_MARK_BOOT_BYTES_MAX], char *detail,
    size_t detail_len);

/* True for the verdicts that mean "do not trust the store". */
bool kyufu_store_mark_must_rebuild(enum kyufu_store_mark_verdict v);

/* Remove STORE_DIR/data.mdb and STORE_DIR/lock.mdb (missing ones are
 * fine; nothing else is touched) and fsync STORE_DIR.  Returns 0 or -1
 * with errmsg. */
int kyufu_store_mark_discard_store(const char *store_dir, char *errmsg,
                                   size_t errmsg_len);

/* Write the mark (open or clean) with boot_id, creating STORE_DIR (0700)
 * if missing; durable on return (file and directory fsynced).  Returns 0
 * or -1 with errmsg. */
int kyufu_store_mark_write(const char *store_dir, const char *boot_id,
                           bool open, char *errmsg, size_t errmsg_len);

/* Remove the mark (missing is fine) and fsync STORE_DIR.  Returns 0 or -1
 * with errmsg. */
int kyufu_store_mark_remove(const char *store_dir, char *errmsg,
                            size_t errmsg_len);

#endif /* KYUFU_NODE_STORE_MARK_H */
