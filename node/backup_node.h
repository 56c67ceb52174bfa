/* Backups inside kyufud (node-internal; docs/backup.md): the one
 * backup-taking step shared by Cluster.CreateBackup (service_backup.c) and
 * the schedule (backup_schedule.c), and the schedule's hooks in the
 * node's lifecycle. */
#ifndef KYUFU_NODE_BACKUP_NODE_H
#define KYUFU_NODE_BACKUP_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backup_format.h"
#include "node.h"
#include "offload.h"

struct kyufu_node_backup_taken
{
    bool had_cmk;       /* the store had a CMK: wrapped into the backup */
    int64_t created_ms; /* the manifest's time */
    int io_idle_errno;  /* io_priority = idle refused (logged on the loop) */
    struct kyufu_backup_write_result res;
};

/* On the work thread of an offload (o->snap open): take a backup of o's
 * snapshot as parent/name (parent resolved, the [backup] directory; name
 * plain and new), refusing a snapshot below min_applied_index.  One backup
 * at a time per process: a second is ABORTED.  The KEK is read and the
 * CMK exported here and wiped before return; with [backup] io_priority =
 * idle the thread does its I/O at the idle class meanwhile.  With [backup]
 * require_mount set, the backup's folder must be on mount_id (what
 * kyufu_node__backup_mounted found) or on the mount on top there now, else
 * FAILED_PRECONDITION.  Returns a KYUFU_GRPC_* code (OK: *t filled) with
 * msg on failure. */
int kyufu_node__backup_take(struct kyufu_node_offload *o,
                            const char *parent,
                            const char *name,
                            uint64_t min_applied_index,
                            uint64_t mount_id,
                            struct kyufu_node_backup_taken *t,
                            char *msg,
                            size_t msg_len);

/* [backup] require_mount (docs/backup.md "Mount check"): 0 when it is
 * unset or a mount point now (*mount_id, unless NULL, is the mount on top
 * there, or 0 when unset: kyufu_node__backup_take then refuses a backup
 * folder made on any other mount, as the mount may go between the check
 * and the write); else
 * -1 with msg naming it ("... is not mounted").  Reads
 * /proc/self/mountinfo only (no disk, no NAS): any thread.  Checked before
 * each backup is written and each scan. */
int kyufu_node__backup_mounted(const struct kyufu_config *cfg,
                               uint64_t *mount_id,
                               char *msg,
                               size_t msg_len);

/* On the loop, after kyufu_node__backup_take returned OK: the metrics'
 * newest good backup moves to it; a refused idle I/O class is logged
 * (the log is the loop's). */
void kyufu_node__backup_written(struct kyufu_node *n,
                                const struct kyufu_node_backup_taken *t);

/* The schedule (backup_schedule.c): init the timer with the node's other
 * handles; start once the node runs (scans the directory for the metrics
 * and the next backup's time, then ticks when an interval is set); close
 * in the node's last step. */
void kyufu_node__backup_sched_init(struct kyufu_node *n);
void kyufu_node__backup_sched_start(struct kyufu_node *n);
void kyufu_node__backup_sched_close(struct kyufu_node *n);

#endif /* KYUFU_NODE_BACKUP_NODE_H */
