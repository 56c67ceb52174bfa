/* kyufu.v1.Cluster/CreateBackup (issue 12; docs/backup.md): this node
 * writes an encrypted, signed backup of its store, at one applied index,
 * into a new folder directly under its [backup] directory.  Never
 * forwarded (the operator picks the node: a follower by default).
 *
 * On the loop: the request is checked (a malformed or disallowed `out`,
 * no [backup] keys, [backup] require_mount not mounted, the leader without
 * allow_leader: refused, nothing written).  On a work thread (offload.h: the snapshot is begun there and
 * held only while the backup is written): the KEK is read, the CMK
 * exported, and kyufu_backup_write does the rest
 * (kyufu_node__backup_take, shared with the schedule, backup_schedule.c).
 * One backup at a time per process (`busy`, manual or scheduled); a second
 * is answered ABORTED. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backup_node.h"
#include "backup_retention.h"
#include "keys.h"
#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "offload.h"
#include "service.h"

/* kyufud runs one node per process. */
static atomic_flag busy = ATOMIC_FLAG_INIT;

struct backup_work
{
    struct kyufu_node_offload o; /* first: offload.c allocates and frees */
    int status;                  /* a KYUFU_GRPC_* code */
    char msg[512];
    uint64_t started_ns;
    struct kyufu_node_backup_taken taken;
    char path[KYUFU_BACKUP_PATH_BYTES_MAX];
};

/* `out`'s form alone (no file system touched: it runs on the loop
 * thread): absolute, bounded, a plain last name (*name).  0, or -1 with
 * msg. */
static int out_form(const char *out, const char **name, char *msg,
                    size_t msg_len)
{
    size_t n = strlen(out);
    if (n == 0 || n >= KYUFU_BACKUP_PATH_BYTES_MAX - 64 || out[0] != '/') {
        snprintf(msg, msg_len,
                 "out must be an absolute path of at most %u bytes",
                 KYUFU_BACKUP_PATH_BYTES_MAX - 64);
        return -1;
    }
    const char *slash = strrchr(out, '/');
    *name = slash + 1;
    if (!kyufu_backup_name_ok(*name)) {
        snprintf(msg, msg_len,
                 "out's last component must be a plain name (1..%u of "
                 "A-Z a-z 0-9 . _ -, not starting with '.')",
                 KYUFU_BACKUP_NAME_BYTES_MAX);
        return -1;
    }
    return 0;
}

/* Split `out` into its parent (which must be the [backup] directory, both
 * resolved: on a work thread, as a hung NAS can block realpath) and a
 * plain new name.  0, or -1 with msg. */
static int split_out(const char *out,
                     const char *allowed,
                     char *parent,
                     size_t parent_len,
                     const char **name,
                     char *msg,
                     size_t msg_len)
{
    char dir[PATH_MAX], real_dir[PATH_MAX], real_allowed[PATH_MAX];
    if (out_form(out, name, msg, msg_len) != 0) {
        return -1;
    }
    const char *slash = *name - 1;
    size_t dlen = slash == out ? 1 : (size_t)(slash - out);
    memcpy(dir, out, dlen);
    dir[dlen] = '\0';
    if (realpath(dir, real_dir) == NULL ||
        realpath(allowed, real_allowed) == NULL ||
        strcmp(real_dir, real_allowed) != 0) {
        snprintf(msg, msg_len,
                 "out must be a new folder directly under this node's "
                 "[backup] directory %.300s",
                 allowed);
        return -1;
    }
    snprintf(parent, parent_len, "%s", real_dir);
    return 0;
}

int kyufu_node__backup_mounted(const struct kyufu_config *cfg,
                               uint64_t *mount_id,
                               char *msg,
                               size_t msg_len)
{
    const char *mount = cfg->backup_require_mount;
    char why[256];
    if (mount_id != NULL) {
        *mount_id = 0;
    }
    if (mount[0] == '\0') {
        return 0;
    }
    int m = kyufu_backup_mount_point(KYUFU_BACKUP_MOUNTINFO, mount, mount_id,
                                     why, sizeof why);
    if (m == 1) {
        return 0;
    }
    if (m == 0) {
        snprintf(msg, msg_len,
                 "[backup] require_mount %s is not mounted: no backup "
                 "written (mount it; docs/backup.md \"Runbook\")",
                 mount);
    } else {
        snprintf(msg, msg_len,
                 "[backup] require_mount %s: cannot tell whether it is "
                 "mounted (%s): no backup written",
                 mount, why);
    }
    return -1;
}

/* [backup] io_priority = idle: this thread's I/O (the snapshot's reads,
 * the chunk files' writes) at the idle class while the backup runs, so a
 * busy disk serves the store first; the thread's class before it is put
 * back (libuv's pool threads serve other work after).  ioprio_set has no
 * glibc wrapper.  The schedulers that honour classes are BFQ (and CFQ):
 * with mq-deadline or none it changes nothing (docs/backup.md). */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_IDLE 3
#define IOPRIO_WHO_PROCESS 1

/* 0, or the errno of a refused ioprio_set (*before: the class to put
 * back, -1: none). */
static int io_idle_begin(int *before)
{
    *before = (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
    if (*before < 0) {
        return errno;
    }
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
                IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT) != 0) {
        *before = -1;
        return errno;
    }
    return 0;
}

static void io_idle_end(int before)
{
    if (before >= 0) {
        (void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, before);
    }
}

int kyufu_node__backup_take(struct kyufu_node_offload *o,
                            const char *parent,
                            const char *name,
                            uint64_t min_applied_index,
                            uint64_t mount_id,
                            struct kyufu_node_backup_taken *t,
                            char *msg,
                            size_t msg_len)
{
    const struct kyufu_config *cfg = o->node->config;
    uint8_t kek[KYUFU_KEYS_KEY_BYTES], cmk[KYUFU_CRYPTO_KEY_BYTES];
    char why[256];

    if (atomic_flag_test_and_set(&busy)) {
        snprintf(msg, msg_len, "a backup is already running on this node");
        return KYUFU_GRPC_ABORTED; /* the flag is the other backup's */
    }
    int status = KYUFU_GRPC_FAILED_PRECONDITION;
    int io_before = -1;
    uint64_t at = 0, term = 0;
    kyufu_storage_snapshot_applied(o->snap, &at, &term);
    if (at < min_applied_index) {
        snprintf(msg, msg_len,
                 "this node has applied up to index %llu, below the "
                 "requested %llu: retry when it has caught up",
                 (unsigned long long)at,
                 (unsigned long long)min_applied_index);
        goto cleanup;
    }
    if (kyufu_keys_kek_read(cfg->backup_kek_file, kek, why, sizeof why) !=
        0) {
        snprintf(msg, msg_len, "[backup] kek_file: %s", why);
        goto cleanup;
    }
    t->had_cmk = kyufu_storage_keys_present(o->storage) &&
                 kyufu_storage_keys_export(o->storage, cmk) == 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    t->created_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    struct kyufu_backup_write_params p = {
        .parent = parent,
        .name = name,
        .node = cfg->id,
        .kek = kek,
        .cmk = t->had_cmk ? cmk : NULL,
        .ca_path = cfg->tls_ca,
        .cert_path = cfg->tls_cert,
        .key_path = cfg->tls_key,
        .now_ms = t->created_ms,
        .max_bytes_per_s = cfg->backup_max_bytes_per_s,
        .require_mount = cfg->backup_require_mount,
        .require_mnt_id = mount_id,
    };
    if (cfg->backup_io_idle) {
        t->io_idle_errno = io_idle_begin(&io_before);
    }
    int written = kyufu_backup_write(o->snap, &p, &t->res, msg, msg_len);
    if (written != 0) {
        status = written == KYUFU_BACKUP_WRITE_OFF_MOUNT
                     ? KYUFU_GRPC_FAILED_PRECONDITION
                     : KYUFU_GRPC_INTERNAL;
        goto cleanup;
    }
    status = KYUFU_GRPC_OK;
cleanup:
    io_idle_end(io_before);
    kyufu_storage_crypto_wipe(kek, sizeof kek);
    kyufu_storage_crypto_wipe(cmk, sizeof cmk);
    atomic_flag_clear(&busy);
    return status;
}

static void backup_run(struct kyufu_node_offload *o)
{
    struct backup_work *b = (struct backup_work *)o;
    const struct kyufu_config *cfg = o->node->config;
    const Kyufu__V1__CreateBackupRequest *r = o->call->request;
    char parent[PATH_MAX];
    const char *name = NULL;

    b->started_ns = uv_hrtime();
    /* Before the path: with the NAS gone, directory may not resolve, and
     * "not mounted" is the reason to give. */
    b->status = KYUFU_GRPC_FAILED_PRECONDITION;
    uint64_t mount_id;
    if (kyufu_node__backup_mounted(cfg, &mount_id, b->msg, sizeof b->msg) !=
        0) {
        return;
    }
    if (split_out(r->out, cfg->backup_directory, parent, sizeof parent,
                  &name, b->msg, sizeof b->msg) != 0) {
        b->status = KYUFU_GRPC_INVALID_ARGUMENT;
        return;
    }
    b->status = KYUFU_GRPC_FAILED_PRECONDITION;
    int w = snprintf(b->path, sizeof b->path, "%s/%s", parent, name);
    if (w < 0 || (size_t)w >= sizeof b->path) {
        snprintf(b->msg, sizeof b->msg, "backup path too long");
        return;
    }
    b->status = kyufu_node__backup_take(o, parent, name, r->min_applied_index,
                                        mount_id, &b->taken, b->msg,
                                        sizeof b->msg);
}

static void backup_done(struct kyufu_node_offload *o)
{
    struct backup_work *b = (struct backup_work *)o;
    struct kyufu_node *n = o->call->node;
    if (b->status != KYUFU_GRPC_OK) {
        if (b->status != KYUFU_GRPC_ABORTED) {
            kyufu_log(KYUFU_LOG_WARN, "backup failed",
                      KYUFU_LOG_S("error", b->msg));
        }
        kyufu_node__call_done(o->call, b->status, b->msg, NULL, 0);
        return;
    }
    kyufu_node__backup_written(n, &b->taken);
    Kyufu__V1__CreateBackupResponse resp =
        KYUFU__V1__CREATE_BACKUP_RESPONSE__INIT;
    resp.path = b->path;
    resp.node_id = n->config->id;
    resp.applied_index = b->taken.res.applied_index;
    resp.applied_term = b->taken.res.applied_term;
    resp.state_digest.data = b->taken.res.state_digest;
    resp.state_digest.len = 32;
    resp.chunks = b->taken.res.n_chunks;
    resp.bytes = b->taken.res.bytes;
    resp.elapsed_ms = (uv_hrtime() - b->started_ns) / 1000000u;
    resp.encrypted_at_rest = b->taken.had_cmk;
    kyufu_log(KYUFU_LOG_INFO, "backup written", KYUFU_LOG_S("path", b->path),
              KYUFU_LOG_U("applied_index", resp.applied_index),
              KYUFU_LOG_U("chunks", resp.chunks),
              KYUFU_LOG_U("bytes", resp.bytes),
              KYUFU_LOG_U("elapsed_ms", resp.elapsed_ms));
    kyufu_node__call_done_msg(o->call, &resp.base);
}

void kyufu_node__create_backup(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    const struct kyufu_config *cfg = n->config;
    const Kyufu__V1__CreateBackupRequest *r = c->request;
    char msg[512];
    const char *name = NULL;

    if (cfg->backup_directory[0] == '\0' || cfg->backup_kek_file[0] == '\0') {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "this node has no [backup] directory and "
                              "kek_file in its config: it takes no backups",
                              NULL, 0);
        return;
    }
    /* Only the form of `out` here: the mount table, realpath and the
     * directory are read on the work thread (backup_run), never on the
     * loop, which a hung NFS mount would block. */
    if (out_form(r->out, &name, msg, sizeof msg) != 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_INVALID_ARGUMENT, msg, NULL, 0);
        return;
    }
    struct kyufu_glue_status st;
    kyufu_glue_status(n->glue, &st);
    if (!r->allow_leader && st.role != NULL &&
        strcmp(st.role, "leader") == 0) {
        kyufu_node__call_done(c, KYUFU_GRPC_FAILED_PRECONDITION,
                              "this node is the leader: take the backup on a "
                              "follower, or allow the leader explicitly",
                              NULL, 0);
        return;
    }
    /* The whole store is read and written out: off the loop thread. */
    kyufu_node__offload(c, sizeof(struct backup_work), backup_run,
                        backup_done, "backup");
}
