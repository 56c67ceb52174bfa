/* Scheduled backups' names, retention and directory scan (docs/backup.md
 * "Scheduled backups").  Part of the backup library (backup_format.h):
 * no function logs, errors come back as one line in errmsg.
 *
 * backup_retention.c: the names the schedule gives its backups and the
 * pure function that decides which of them to keep (no clock, no I/O).
 * backup_scan.c: reading a directory of backups (each one's signature and
 * manifest checked, nothing decrypted) and removing one whole backup
 * folder.  Blocking: a work thread, never a loop. */
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

/* One good backup the schedule owns, as the scan found it. */
struct kyufu_backup_aged
{
    char name[KYUFU_BACKUP_NAME_BYTES_MAX + 1];
    int64_t created_ms; /* its manifest's (signed) time */
    /* In: pinned (kept whatever the rules: the backup just written).
     * Out: kept. */
    bool keep;
};

/* Decide which of b[0..n) to keep: b is sorted newest first (by
 * created_ms, then by name, so equal times give one answer whatever the
 * order they came in) and each keep set (a pinned one stays kept).  No
 * clock is read: a clock that jumped back only makes the backups taken
 * since look older than the ones before; the newest by time is still
 * kept, and the pinned one (the backup just written, the freshest state
 * whatever its time says) too. */
void kyufu_backup_retention(struct kyufu_backup_aged *b,
                            size_t n,
                            const struct kyufu_backup_keep *keep);

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
    /* The newest good backup of any name (0: none), the newest not after
     * the scan's now_ms (0: none; differs only when a clock was set back)
     * and how many were good and not good (folders without a manifest
     * that parses and verifies; names starting with '.' are not looked
     * at). */
    int64_t newest_ms;
    int64_t newest_past_ms;
    size_t n_good;
    size_t n_bad;
};

/* Read parent's backups (each with kyufu_backup_verify without a KEK: no
 * chunk is read); now_ms: the wall clock (Unix ms) for newest_past_ms.
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

#endif /* KYUFU_NODE_BACKUP_RETENTION_H */
