/* Scheduled backups with retention (docs/backup.md "Scheduled backups"):
 * every [backup] interval the follower with the lowest id among the
 * current voters (a one-node cluster: itself) writes a backup named
 * auto-<UTC time>-n<id> into [backup] directory, then removes the
 * schedule's backups that keep_last / keep_daily / keep_monthly do not
 * keep (backup_retention.h).
 *
 * Each node decides from its own view (its Raft configuration and the
 * leader it knows) at every tick: its rank is its place among the voters
 * that are not the leader, in id order.  Rank 0 takes a backup `interval`
 * after the newest good backup in the directory (of any name: a manual
 * one counts), so a restart neither backs up at once nor skips one.  Rank
 * r > 0 steps in only when the newest is (r + 1) intervals old: the
 * follower before it is down or failing (a voter that is down is still a
 * voter: without this, one stopped follower would stop every backup).
 * The leader never takes one.  Just before a backup the directory is
 * scanned again (another node may have taken one meanwhile); after it,
 * the scan prunes.  A failure (the scan, the write, [backup]
 * require_mount not mounted, a full offload limit, a manual backup
 * running) is logged, counted and retried after a bounded backoff;
 * nothing here stops the node.  Every node rescans now and then, for its
 * metrics; a manifest time in the future never counts after the scan's
 * now (newest_from_scan; retention: backup_retention.h).
 *
 * Threads: scans and removals run on a libuv work thread (uv_queue_work,
 * no store read: a NAS may be slow); the backup itself is a whole-store
 * read (offload.h: same limit, and a stop waits for it).  Everything in
 * n->backups is touched on the loop only. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup_node.h"
#include "backup_retention.h"
#include "limits.h"
#include "log.h"

/* A scan keeps the metrics fresh on every node at least this often
 * (seconds; or every interval when that is shorter). */
#define RESCAN_S 300u
/* At most this many removals (or failed ones) are logged one by one per
 * scan; the rest are counted in one line. */
#define LOG_REMOVED_MAX 20u

enum scan_why {
    SCAN_START,    /* at start: the metrics and the first due time */
    SCAN_REFRESH,  /* now and then: the metrics */
    SCAN_PRE_TAKE, /* a backup is due here: is it still? */
    SCAN_PRUNE,    /* after a scheduled backup: retention */
};

struct removed
{
    char name[KYUFU_BACKUP_NAME_BYTES_MAX + 1];
    int64_t created_ms;
    char err[256]; /* "" when removed */
};

struct scan_work
{
    uv_work_t work;
    struct kyufu_node *node;
    enum scan_why why;
    int64_t now_ms; /* the wall clock the scan ran at */
    struct kyufu_backup_keep keep;
    char pin[KYUFU_BACKUP_NAME_BYTES_MAX + 1]; /* SCAN_PRUNE: just written */
    int rv;
    char msg[512];
    struct kyufu_backup_scan s;
    struct removed *removed; /* n_removed of them, malloc'd */
    size_t n_removed;
};

struct take_work
{
    struct kyufu_node_offload o; /* first: offload.c allocates and frees */
    char name[KYUFU_BACKUP_NAME_BYTES_MAX + 1];
    char path[PATH_MAX + KYUFU_BACKUP_NAME_BYTES_MAX + 2];
    uint64_t started_ns;
    int status; /* a KYUFU_GRPC_* code */
    char msg[512];
    struct kyufu_node_backup_taken taken;
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t interval_ms(const struct kyufu_node *n)
{
    return (int64_t)n->config->backup_interval_s * 1000;
}

/* This node's rank in the duty, in its own view: its place among the
 * voters that are not the leader, in id order (0 takes the backups);
 * alone, 0.  -1: the leader, not a voter, or no leader known (an
 * election is running: nobody takes one). */
static int duty_rank(struct kyufu_node *n)
{
    uint64_t ids[KYUFU_VOTERS_MAX];
    const char *api;
    size_t count = kyufu_glue_voters(n->glue, ids, KYUFU_VOTERS_MAX);
    if (count == 1) {
        return ids[0] == n->config->id ? 0 : -1;
    }
    uint64_t leader = kyufu_node__leader(n, &api);
    if (count == 0 || leader == 0 || leader == n->config->id) {
        return -1;
    }
    int rank = 0;
    for (size_t i = 0; i < count && i < KYUFU_VOTERS_MAX; i++) {
        if (ids[i] == n->config->id) {
            return rank;
        }
        rank += ids[i] != leader;
    }
    return -1;
}

/* A good backup taken at `ms` (Unix ms) is known: the schedule's base
 * moves to when it was taken, on the monotonic clock, if that is later.
 * A time in the future (the clock was set back since) counts as now. */
static void base_at(struct kyufu_node *n, int64_t ms)
{
    struct kyufu_node_backups *b = &n->backups;
    int64_t age = now_ms() - ms;
    int64_t at = (int64_t)uv_now(&n->loop) - (age > 0 ? age : 0);
    if (ms > 0 && at > b->base_mono) {
        b->base_mono = at;
    }
}

/* The newest good backup after a scan (docs/backup.md "Metrics and
 * scans"): the newest manifest time not in the future; a future head
 * (backup_retention.h: the newest in the ledger, dated in the future, no
 * believable time at or after its place) counts at when this node first
 * saw it, so it neither holds the age at 0 nor moves the base more than
 * once.  What was known before stays (a backup written here while the
 * scan ran; a directory that reads empty while its NAS is away), unless
 * it is now in the future (the clock was set back): then the scan says. */
static void newest_from_scan(struct kyufu_node *n, const struct scan_work *sw)
{
    struct kyufu_node_backups *b = &n->backups;
    const struct kyufu_backup_scan *s = &sw->s;
    int64_t newest = s->newest_past_ms;
    if (s->head_created_ms == 0) {
        b->head_created_ms = 0;
    } else {
        if (s->head_term != b->head_term || s->head_index != b->head_index ||
            s->head_created_ms != b->head_created_ms) {
            b->head_term = s->head_term;
            b->head_index = s->head_index;
            b->head_created_ms = s->head_created_ms;
            b->head_seen_ms = sw->now_ms;
        }
        if (b->head_seen_ms > sw->now_ms) {
            b->head_seen_ms = sw->now_ms; /* the clock was set back */
        }
        if (b->head_seen_ms > newest) {
            newest = b->head_seen_ms;
        }
    }
    if (b->newest_ms <= sw->now_ms && b->newest_ms > newest) {
        newest = b->newest_ms;
    }
    b->newest_ms = newest;
    base_at(n, newest);
}

/* Whether rank `rank` is due now (uv_now).  A rank above 0 counts its
 * (rank + 1) intervals from the newest backup, but not from before it
 * got that rank (rank_since_mono): after a start or an election the
 * follower before it gets its chance first. */
static bool due(struct kyufu_node *n, int rank)
{
    const struct kyufu_node_backups *b = &n->backups;
    int64_t now = (int64_t)uv_now(&n->loop);
    int64_t from = b->base_mono;
    if (rank > 0 && b->rank_since_mono > from) {
        from = b->rank_since_mono;
    }
    int64_t at = from + ((int64_t)rank + 1) * interval_ms(n);
    return rank >= 0 && now >= at && now >= b->retry_mono;
}

/* ------------------------------------------------------------ the scan */

static void scan_run(uv_work_t *w)
{
    struct scan_work *sw = w->data;
    const struct kyufu_config *cfg = sw->node->config;
    /* Not mounted: the folder under the mount point is the root disk's,
     * not the backups'. */
    sw->now_ms = now_ms();
    sw->rv = kyufu_node__backup_mounted(cfg, NULL, sw->msg, sizeof sw->msg);
    if (sw->rv != 0) {
        return;
    }
    sw->rv = kyufu_backup_scan(cfg->backup_directory, cfg->tls_ca,
                               sw->now_ms, &sw->s, sw->msg, sizeof sw->msg);
    if (sw->rv != 0 || sw->why != SCAN_PRUNE || sw->s.n_owned == 0) {
        return;
    }
    for (size_t i = 0; i < sw->s.n_owned; i++) {
        sw->s.owned[i].keep = strcmp(sw->s.owned[i].name, sw->pin) == 0;
    }
    kyufu_backup_retention(sw->s.owned, sw->s.n_owned, &sw->keep,
                           sw->now_ms);
    sw->removed = calloc(sw->s.n_owned, sizeof *sw->removed);
    if (sw->removed == NULL) {
        snprintf(sw->msg, sizeof sw->msg, "out of memory");
        sw->rv = -1;
        return;
    }
    for (size_t i = 0; i < sw->s.n_owned; i++) {
        const struct kyufu_backup_aged *a = &sw->s.owned[i];
        if (a->keep) {
            continue;
        }
        struct removed *r = &sw->removed[sw->n_removed++];
        snprintf(r->name, sizeof r->name, "%s", a->name);
        r->created_ms = a->created_ms;
        (void)kyufu_backup_remove(cfg->backup_directory, a->name, r->err,
                                  sizeof r->err);
    }
}

static void take_start(struct kyufu_node *n);
static void take_failed(struct kyufu_node *n, const char *why);

/* The metrics and the due time from a finished scan. */
static void scan_apply(struct kyufu_node *n, struct scan_work *sw)
{
    struct kyufu_node_backups *b = &n->backups;
    size_t removed = 0, failed = 0;
    for (size_t i = 0; i < sw->n_removed; i++) {
        const struct removed *r = &sw->removed[i];
        bool ok = r->err[0] == '\0';
        removed += ok;
        failed += !ok;
        if (removed + failed > LOG_REMOVED_MAX) {
            continue;
        }
        if (ok) {
            kyufu_log(KYUFU_LOG_INFO, "backup removed by retention",
                      KYUFU_LOG_S("name", r->name),
                      KYUFU_LOG_I("created_ms", r->created_ms));
        } else {
            kyufu_log(KYUFU_LOG_WARN, "backup removal failed",
                      KYUFU_LOG_S("name", r->name),
                      KYUFU_LOG_S("error", r->err));
        }
    }
    if (removed + failed > LOG_REMOVED_MAX) {
        kyufu_log(KYUFU_LOG_INFO, "more backups removed by retention",
                  KYUFU_LOG_U("removed", removed),
                  KYUFU_LOG_U("failed", failed));
    }
    b->pruned += removed;
    b->prune_failed += failed;
    /* A removal never takes the newest; the good count drops by what
     * went. */
    newest_from_scan(n, sw);
    assert(removed < sw->s.n_good || removed == 0); /* never the newest */
    b->good = sw->s.n_good - removed;
    if (sw->why == SCAN_START) {
        int64_t now = now_ms();
        kyufu_log(KYUFU_LOG_INFO, "backup directory scanned",
                  KYUFU_LOG_S("directory", n->config->backup_directory),
                  KYUFU_LOG_U("good", sw->s.n_good),
                  KYUFU_LOG_U("not_good", sw->s.n_bad),
                  KYUFU_LOG_I("newest_age_s",
                              b->newest_ms != 0
                                  ? (now - b->newest_ms) / 1000
                                  : -1));
    }
}

static void scan_done(uv_work_t *w, int status)
{
    struct scan_work *sw = w->data;
    struct kyufu_node *n = sw->node;
    struct kyufu_node_backups *b = &n->backups;
    (void)status; /* nothing calls uv_cancel */
    b->scanning = false;
    b->last_scan_mono = (int64_t)uv_now(&n->loop);
    if (n->stage != KYUFU_NODE_RUNNING && n->stage != KYUFU_NODE_STARTING) {
        goto out; /* stopping: nothing more starts */
    }
    if (sw->rv != 0) {
        kyufu_log(KYUFU_LOG_WARN, "backup directory scan failed",
                  KYUFU_LOG_S("directory", n->config->backup_directory),
                  KYUFU_LOG_S("error", sw->msg));
        b->prune_failed++;
        if (sw->why == SCAN_PRE_TAKE) {
            take_failed(n, sw->msg); /* the write would fail too */
        }
        b->scanned = true; /* the schedule runs; metrics stay unknown */
        goto out;
    }
    scan_apply(n, sw);
    b->scanned = true;
    if (sw->why == SCAN_PRE_TAKE && n->stage == KYUFU_NODE_RUNNING &&
        due(n, duty_rank(n))) {
        take_start(n);
    }
out:
    kyufu_backup_scan_free(&sw->s);
    free(sw->removed);
    free(sw);
}

/* pin: the backup retention must keep (SCAN_PRUNE), or NULL. */
static void scan_start(struct kyufu_node *n, enum scan_why why,
                       const char *pin)
{
    struct kyufu_node_backups *b = &n->backups;
    struct scan_work *sw = calloc(1, sizeof *sw);
    if (sw == NULL) {
        b->prune_failed++;
        return; /* the next tick tries again */
    }
    sw->node = n;
    sw->why = why;
    if (pin != NULL) {
        snprintf(sw->pin, sizeof sw->pin, "%s", pin);
    }
    sw->keep.last = n->config->backup_keep_last;
    sw->keep.daily = n->config->backup_keep_daily;
    sw->keep.monthly = n->config->backup_keep_monthly;
    sw->work.data = sw;
    if (uv_queue_work(&n->loop, &sw->work, scan_run, scan_done) != 0) {
        free(sw);
        b->prune_failed++;
        return;
    }
    b->scanning = true;
}

/* ---------------------------------------------------------- the backup */

static void take_run(struct kyufu_node_offload *o)
{
    struct take_work *t = (struct take_work *)o;
    const struct kyufu_config *cfg = o->node->config;
    char parent[PATH_MAX];
    uint64_t mount_id;
    t->started_ns = uv_hrtime();
    if (kyufu_node__backup_mounted(cfg, &mount_id, t->msg, sizeof t->msg) !=
        0) {
        t->status = KYUFU_GRPC_FAILED_PRECONDITION;
        return;
    }
    if (realpath(cfg->backup_directory, parent) == NULL) {
        t->status = KYUFU_GRPC_FAILED_PRECONDITION;
        snprintf(t->msg, sizeof t->msg, "cannot resolve %.300s: %s",
                 cfg->backup_directory, strerror(errno));
        return;
    }
    snprintf(t->path, sizeof t->path, "%s/%s", parent, t->name);
    t->status = kyufu_node__backup_take(o, parent, t->name, 0, mount_id,
                                        &t->taken, t->msg, sizeof t->msg);
}

/* A scheduled backup failed (why): counted, logged, retried after
 * min(interval, RETRY_MIN * 2^(k-1)) for the k-th failure in a row, at
 * most min(interval, RETRY_MAX). */
static void take_failed(struct kyufu_node *n, const char *why)
{
    struct kyufu_node_backups *b = &n->backups;
    b->failed++;
    b->failures_row++;
    uint64_t wait_s = KYUFU_NODE_BACKUP_RETRY_S_MAX;
    if (b->failures_row <= 16) {
        wait_s = (uint64_t)KYUFU_NODE_BACKUP_RETRY_S_MIN
                 << (b->failures_row - 1);
    }
    if (wait_s > KYUFU_NODE_BACKUP_RETRY_S_MAX) {
        wait_s = KYUFU_NODE_BACKUP_RETRY_S_MAX;
    }
    if (wait_s > n->config->backup_interval_s) {
        wait_s = n->config->backup_interval_s;
    }
    b->retry_mono = (int64_t)uv_now(&n->loop) + (int64_t)wait_s * 1000;
    kyufu_log(KYUFU_LOG_WARN, "scheduled backup failed",
              KYUFU_LOG_S("error", why),
              KYUFU_LOG_U("failures_in_row", b->failures_row),
              KYUFU_LOG_U("retry_in_s", wait_s));
}

static void take_done(struct kyufu_node_offload *o)
{
    struct take_work *t = (struct take_work *)o;
    struct kyufu_node *n = o->node;
    struct kyufu_node_backups *b = &n->backups;
    b->taking = false;
    if (o->begin_rv != 0) {
        char why[200];
        snprintf(why, sizeof why, "cannot begin a storage snapshot: %s",
                 kyufu_storage_strerror(o->begin_rv));
        take_failed(n, why);
        return;
    }
    if (t->status != KYUFU_GRPC_OK) {
        take_failed(n, t->msg);
        return;
    }
    kyufu_node__backup_written(n, &t->taken);
    b->taken++;
    b->failures_row = 0;
    b->retry_mono = 0;
    kyufu_log(KYUFU_LOG_INFO, "scheduled backup written",
              KYUFU_LOG_S("path", t->path),
              KYUFU_LOG_U("applied_index", t->taken.res.applied_index),
              KYUFU_LOG_U("chunks", t->taken.res.n_chunks),
              KYUFU_LOG_U("bytes", t->taken.res.bytes),
              KYUFU_LOG_U("elapsed_ms",
                          (uv_hrtime() - t->started_ns) / 1000000u));
    if (n->stage == KYUFU_NODE_RUNNING) {
        scan_start(n, SCAN_PRUNE, t->name);
    }
}

static void take_start(struct kyufu_node *n)
{
    struct kyufu_node_backups *b = &n->backups;
    struct take_work *t =
        (struct take_work *)kyufu_node__offload_new(n, sizeof *t);
    if (t == NULL) {
        take_failed(n, "out of memory");
        return;
    }
    if (kyufu_backup_auto_name(now_ms(), n->config->id, t->name,
                               sizeof t->name) != 0) {
        free(t);
        take_failed(n, "the clock is outside the years backup names cover");
        return;
    }
    if (kyufu_node__offload_queue(&t->o, take_run, take_done, "backup") !=
        0) {
        take_failed(n, "too many whole-store reads running on this node "
                       "(state digest, audit check, backup)");
        return;
    }
    b->taking = true;
}

/* ----------------------------------------------------------- the timer */

static void on_tick(uv_timer_t *timer)
{
    struct kyufu_node *n = timer->data;
    struct kyufu_node_backups *b = &n->backups;
    if (n->stage != KYUFU_NODE_RUNNING || !b->scanned || b->scanning ||
        b->taking) {
        return;
    }
    int rank = duty_rank(n);
    if ((rank == 0) != (b->rank == 0)) {
        kyufu_log(KYUFU_LOG_INFO, "scheduled backups: duty changed",
                  KYUFU_LOG_B("this_node_takes_them", rank == 0));
    }
    if (rank != b->rank) {
        b->rank_since_mono = (int64_t)uv_now(&n->loop);
    }
    b->rank = rank;
    if (due(n, rank)) {
        scan_start(n, SCAN_PRE_TAKE, NULL);
        return;
    }
    int64_t iv = interval_ms(n), now = (int64_t)uv_now(&n->loop);
    int64_t rescan = iv < (int64_t)RESCAN_S * 1000 ? iv
                                                   : (int64_t)RESCAN_S * 1000;
    if (now >= b->last_scan_mono + rescan) {
        scan_start(n, SCAN_REFRESH, NULL);
    }
}

/* Also for Cluster.CreateBackup's (service_backup.c). */
void kyufu_node__backup_written(struct kyufu_node *n,
                                const struct kyufu_node_backup_taken *t)
{
    if (t->io_idle_errno != 0) {
        kyufu_log(KYUFU_LOG_WARN,
                  "backup ran at normal I/O priority: io_priority = idle "
                  "refused",
                  KYUFU_LOG_S("error", strerror(t->io_idle_errno)));
    }
    struct kyufu_node_backups *b = &n->backups;
    int64_t now = now_ms(), at = t->created_ms < now ? t->created_ms : now;
    if (at > b->newest_ms || b->newest_ms > now) {
        b->newest_ms = at;
    }
    base_at(n, t->created_ms); /* this one, even if a newer time exists */
}

void kyufu_node__backup_sched_init(struct kyufu_node *n)
{
    uv_timer_init(&n->loop, &n->backups.timer);
    n->backups.timer.data = n;
    n->backups.rank = -1;
}

void kyufu_node__backup_sched_start(struct kyufu_node *n)
{
    const struct kyufu_config *cfg = n->config;
    if (cfg->backup_directory[0] == '\0') {
        return;
    }
    /* The metrics from what the directory holds, not only from what this
     * process writes; with a schedule, its first due time too.  With no
     * backup at all, rank 0 is due at once (the base an interval ago). */
    n->backups.base_mono = (int64_t)uv_now(&n->loop) - interval_ms(n);
    scan_start(n, SCAN_START, NULL);
    if (cfg->backup_interval_s != 0) {
        uv_timer_start(&n->backups.timer, on_tick, KYUFU_NODE_BACKUP_TICK_MS,
                       KYUFU_NODE_BACKUP_TICK_MS);
    }
}

void kyufu_node__backup_sched_close(struct kyufu_node *n)
{
    uv_close((uv_handle_t *)&n->backups.timer, NULL);
}
