/* Scheduled backups' names, retention and directory scan (docs/backup.md
 * "Scheduled backups").  Part of the backup library (backup_format.h):
 * no function logs, errors come back as one line in errmsg.
 *
 * backup_retention.c: the names the schedule gives its backups and the
 * pure function that decides which of them to keep (no I/O; no clock but
 * the now passed in).
 * backup_scan.c: reading a directory of backups (each one's signature and
 * manifest checked, nothing decrypted) and removing one whole backup
 * folder.  Blocking: a work thread, never a loop.  backup_mount.c: whether
 * the directory's disk or NAS is mounted ([backup] require_mount). */
#ifndef KYUFU_NODE_BACKUP_RETENTION_H
#define KYUFU_NODE_BACKUP_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup_format.h"

/* A scheduled backup's name: "auto-YYYYMMDDTHHMMSSZ-nID" (UTC).  Only
 * names of this shape are the schedule's: retention never touches any
 * other backup in the directory. */
#define KYUFU_BACKUP_AUTO_PREFIX "auto-"

/* The name of a backup the schedule takes at Unix time ms on node id
 * (buf ≥ KYUFU_BACKUP_NAME_BYTES_MAX + 1).  0, or -1 (time out of range). */
int kyufu_backup_auto_name(int64_t ms, uint64_t node, char *buf, size_t len);

/* Whether name is exactly of the schedule's shape (a real date and time,
 * a node id 1..2^63 without leading zeros). */
bool kyufu_backup_auto_name_ok(const char *name);

/* Retention (GFS): keep the `last` newest; the newest of each UTC day for
 * the `daily` newest days that have a backup; the newest of each UTC
 * month for the `monthly` newest months that have one.  A backup is kept
 * when any rule keeps it; the newest is always kept.  All three 0:
 * retention is off (everything is kept). */
struct kyufu_backup_keep
{
    uint32_t last;
    uint32_t daily;
    uint32_t monthly;
};

/* One good backup, as the scan found it. */
struct kyufu_backup_aged
{
    char name[KYUFU_BACKUP_NAME_BYTES_MAX + 1];
    int64_t created_ms; /* its manifest's (signed) time */
    /* Its manifest's applied_term and applied_index: its place in the
     * ledger, which no clock can put out of order. */
    uint64_t term;
    uint64_t index;
    /* Out (kyufu_backup_order): the time it counts at: created_ms, or
     * for a time in the future (after the scan's now) the earliest of it
     * and the times of the backups at the same or a later place in the
     * ledger (docs/backup.md "Retention"); never the scan's now itself. */
    int64_t at_ms;
    /* In: pinned (kept whatever the rules: the backup just written).
     * Out: kept. */
    bool keep;
};

/* Whether the place (term_a, index_a) is later in the ledger than
 * (term_b, index_b): 1, equal 0, earlier -1.  The term first, as Raft
 * compares logs: a cluster recovered from a survivor that had not
 * received every entry writes at a higher term from a lower index. */
int kyufu_backup_ledger_cmp(uint64_t term_a,
                            uint64_t index_a,
                            uint64_t term_b,
                            uint64_t index_b);

/* Sort b[0..n) newest first (the ledger's order, then at_ms, a time in
 * the future after one that is not, then the name: a total order, so
 * every node and every input order gives one answer) and set each at_ms.
 * now_ms: the scan's wall clock.  No other clock is read. */
void kyufu_backup_order(struct kyufu_backup_aged *b, size_t n, int64_t now_ms);

/* Decide which of b[0..n) to keep: b is ordered (kyufu_backup_order) and
 * each keep set (a pinned one stays kept).  keep_last counts in the
 * ledger's order; days and months are those of at_ms, so a backup dated
 * in the future never takes a slot (or a day or a month) ahead of one
 * later in the ledger.  A clock set back only makes the backups taken
 * since count in earlier days; the newest in the ledger is still kept,
 * and the pinned one (the backup just written, the freshest state
 * whatever its time says) too. */
void kyufu_backup_retention(struct kyufu_backup_aged *b,
                            size_t n,
                            const struct kyufu_backup_keep *keep,
                            int64_t now_ms);

/* ------------------------------------------------------- backup_scan.c */

/* At most this many entries in a directory of backups are looked at (a
 * NAS folder with more is a mistake: the scan says so and stops). */
#define KYUFU_BACKUP_SCAN_MAX 10000u

struct kyufu_backup_scan
{
    /* Good backups (signature, chain and manifest valid, of this CA's
     * cluster) whose name is the schedule's, in no order; malloc'd. */
    struct kyufu_backup_aged *owned;
    size_t n_owned;
    /* Of the good backups of any name: the newest manifest time not after
     * the scan's now_ms (0: none); and the "future head", the newest in
     * the ledger when its time is after now_ms and no good backup at the
     * same or a later place in the ledger has a time that is not (its
     * time says nothing of when it was taken: the schedule counts it as
     * taken when it first sees it), head_created_ms 0: none.  How many
     * were good and not good (folders without a manifest that parses and
     * verifies; names starting with '.' are not looked at). */
    int64_t newest_past_ms;
    uint64_t head_term;
    uint64_t head_index;
    int64_t head_created_ms;
    size_t n_good;
    size_t n_bad;
};

/* Read parent's backups (each with kyufu_backup_verify without a KEK: no
 * chunk is read); now_ms: the wall clock (Unix ms) that tells a time in
 * the future.
 * 0 (*s filled; kyufu_backup_scan_free), or -1 with errmsg (nothing to
 * free). */
int kyufu_backup_scan(const char *parent,
                      const char *ca_path,
                      int64_t now_ms,
                      struct kyufu_backup_scan *s,
                      char *errmsg,
                      size_t errmsg_len);
void kyufu_backup_scan_free(struct kyufu_backup_scan *s);

/* Remove the whole backup parent/name: refused (nothing changed) when the
 * folder holds anything but a backup's files (manifest.json,
 * manifest.sig, node.pem, chunk-NNNNNN.bin); otherwise renamed to a
 * hidden name first (list and scans never show a half-removed backup),
 * its files unlinked, the folder removed and parent fsynced.  0, or -1
 * with errmsg. */
int kyufu_backup_remove(const char *parent,
                        const char *name,
                        char *errmsg,
                        size_t errmsg_len);

/* ------------------------------------------------------ backup_mount.c */

/* The kernel's mount table of this process's mount namespace. */
#define KYUFU_BACKUP_MOUNTINFO "/proc/self/mountinfo"

/* Whether path (absolute and resolved: realpath, as [backup] require_mount
 * is stored) is a mount point in mountinfo (KYUFU_BACKUP_MOUNTINFO; a
 * file of that format in tests): 1 it is (and *mnt_id, unless NULL, is
 * the id of the mount on top there, statx's stx_mnt_id for its files),
 * 0 it is not, -1 with errmsg (the table unreadable or malformed).  Reads
 * the table only, never path. */
int kyufu_backup_mount_point(const char *mountinfo,
                             const char *path,
                             uint64_t *mnt_id,
                             char *errmsg,
                             size_t errmsg_len);

#endif /* KYUFU_NODE_BACKUP_RETENTION_H */
