/* The LMDB environment: open, schema check, close, map growth, meta access,
 * errors.
 *
 * Open creates the directory and the named databases, stamps the schema
 * version in a new store and refuses a store stamped with another version.
 * An exclusive flock(2) on <path>/kyufu.lock keeps a second process (or a
 * second open in this one) out: LMDB itself would let two writers' processes
 * share the files, and two state machines on one store would corrupt it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char *const kyufu_storage__db_names[KYUFU_DB_COUNT] = {
    [KYUFU_DB_META] = "meta",
    [KYUFU_DB_PROGRAMS] = "programs",
    [KYUFU_DB_HOUSEHOLDS] = "households",
    [KYUFU_DB_APPLICATIONS] = "applications",
    [KYUFU_DB_APP_LIVE] = "app_live",
    [KYUFU_DB_APP_INDEX] = "app_index",
    [KYUFU_DB_BATCHES] = "batches",
    [KYUFU_DB_STAFF] = "staff",
    [KYUFU_DB_SESSIONS] = "sessions",
    [KYUFU_DB_SESSION_EXPIRY] = "session_expiry",
    [KYUFU_DB_AUDIT] = "audit",
    [KYUFU_DB_SESSION_FLOOR] = "session_floor",
    [KYUFU_DB_INCIDENTS] = "incidents",
    [KYUFU_DB_AVAILABILITY] = "availability",
    [KYUFU_DB_CREDENTIAL] = "credential",
    [KYUFU_DB_AUTH_SESSION] = "auth_session",
    [KYUFU_DB_AUTH_BY_STAFF] = "auth_by_staff",
    [KYUFU_DB_ADMIN_GRANT] = "admin_grant",
};

/* The lock fd lives beside the env; kept out of the public struct layout. */
struct lock_holder
{
    struct kyufu_storage s;
    int lock_fd;
};

const char *kyufu_storage_strerror(int rv)
{
    switch (rv) {
#define KYUFU_STORAGE__STR(name, value, text) \
    case value:                               \
        return text;
        KYUFU_STORAGE_ERRORS(KYUFU_STORAGE__STR)
#undef KYUFU_STORAGE__STR
    default:
        return "unknown storage error";
    }
}

bool kyufu_storage_is_fatal(int rv)
{
    return rv == KYUFU_STORAGE_EIO || rv == KYUFU_STORAGE_ECORRUPT ||
           rv == KYUFU_STORAGE_EMAP_FULL || rv == KYUFU_STORAGE_ENOMEM ||
           rv == KYUFU_STORAGE_ENEWER;
}

_Noreturn void kyufu_storage__panic(const char *file,
                                    int line,
                                    const char *fmt,
                                    ...)
{
    va_list ap;
    fprintf(stderr, "kyufu storage: invariant violated at %s:%d: ", file,
            line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

void kyufu_storage__errmsg(char *errmsg, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (errmsg == NULL || len == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errmsg, len, fmt, ap);
    va_end(ap);
}

void kyufu_storage__put_u64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t kyufu_storage__get_u64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | in[i];
    }
    return v;
}

void kyufu_storage__put_u32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

uint32_t kyufu_storage__get_u32(const uint8_t in[4])
{
    return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) |
           ((uint32_t)in[2] << 8) | (uint32_t)in[3];
}

int kyufu_storage__mdb_error(int mrv)
{
    switch (mrv) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return KYUFU_STORAGE_ENOTFOUND;
    case MDB_MAP_FULL:
        return KYUFU_STORAGE_EMAP_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return KYUFU_STORAGE_ECORRUPT;
    case ENOMEM:
        return KYUFU_STORAGE_ENOMEM;
    case MDB_READERS_FULL:
        /* Load, not damage (storage.h): every slot is held by an open read
         * txn of this process; one frees when that read ends. */
        return KYUFU_STORAGE_EREADERS_FULL;
    case MDB_BAD_VALSIZE:
    case EINVAL:
        return KYUFU_STORAGE_EINVALID;
    default:
        return KYUFU_STORAGE_EIO;
    }
}

int kyufu_storage__meta_get(const struct kyufu_storage *s,
                            MDB_txn *txn,
                            const char *key,
                            MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    return kyufu_storage__mdb_error(
        mdb_get(txn, s->dbi[KYUFU_DB_META], &k, v));
}

int kyufu_storage__meta_get_u64(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const char *key,
                                uint64_t *out)
{
    MDB_val v;
    int rv = kyufu_storage__meta_get(s, txn, key, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        *out = 0;
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 8) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    *out = kyufu_storage__get_u64(v.mv_data);
    return 0;
}

int kyufu_storage__meta_put_u64(struct kyufu_storage *s,
                                MDB_txn *txn,
                                const char *key,
                                uint64_t value)
{
    uint8_t buf[8];
    kyufu_storage__put_u64(buf, value);
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {8, buf};
    return kyufu_storage__mdb_error(
        mdb_put(txn, s->dbi[KYUFU_DB_META], &k, &v, 0));
}

/* Open (create when missing) every named database in txn. */
static int dbis_open(struct kyufu_storage *s,
                     MDB_txn *txn,
                     char *errmsg,
                     size_t len)
{
    for (int i = 0; i < KYUFU_DB_COUNT; i++) {
        int mrv = mdb_dbi_open(txn, kyufu_storage__db_names[i], MDB_CREATE,
                               &s->dbi[i]);
        if (mrv != 0) {
            kyufu_storage__errmsg(errmsg, len, "open db %s: %s",
                                  kyufu_storage__db_names[i],
                                  mdb_strerror(mrv));
            return kyufu_storage__mdb_error(mrv);
        }
    }
    return 0;
}

/* Open the dbis and stamp or check the schema, in one write txn. */
static int open_schema(struct kyufu_storage *s, char *errmsg, size_t len)
{
    MDB_txn *txn;
    uint64_t version = 0;
    MDB_stat st;
    int rv;
    int mrv = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "begin: %s", mdb_strerror(mrv));
        goto err;
    }
    rv = dbis_open(s, txn, errmsg, len);
    if (rv != 0) {
        goto err_after_begin;
    }
    rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_SCHEMA, &version);
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, len, "read schema version: %s",
                              kyufu_storage_strerror(rv));
        goto err_after_begin;
    }
    if (version == 0) {
        mrv = mdb_stat(txn, s->dbi[KYUFU_DB_META], &st);
        if (mrv != 0 || st.ms_entries != 0) {
            rv = KYUFU_STORAGE_ECORRUPT;
            kyufu_storage__errmsg(errmsg, len,
                                  "meta has records but no schema version");
            goto err_after_begin;
        }
        rv = kyufu_storage__meta_put_u64(s, txn, KYUFU_META_SCHEMA,
                                         KYUFU_STORAGE_SCHEMA_VERSION);
        if (rv != 0) {
            kyufu_storage__errmsg(errmsg, len, "stamp schema: %s",
                                  kyufu_storage_strerror(rv));
            goto err_after_begin;
        }
    } else if (version != KYUFU_STORAGE_SCHEMA_VERSION) {
        rv = KYUFU_STORAGE_ESCHEMA;
        kyufu_storage__errmsg(errmsg, len,
                              "store schema version %llu, this build reads %u",
                              (unsigned long long)version,
                              KYUFU_STORAGE_SCHEMA_VERSION);
        goto err_after_begin;
    }
    /* A store a newer cluster wrote (docs/operations.md "Upgrades"). */
    rv = kyufu_storage__check_cluster_version(s, txn, errmsg, len);
    if (rv != 0) {
        goto err_after_begin;
    }
    rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_APPLIED_INDEX,
                                     &s->applied_index);
    if (rv == 0) {
        rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_APPLIED_TERM,
                                         &s->applied_term);
    }
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, len, "read applied index: %s",
                              kyufu_storage_strerror(rv));
        goto err_after_begin;
    }
    rv = kyufu_storage__versions_read(s, txn, &s->versions);
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, len, "read versions: %s",
                              kyufu_storage_strerror(rv));
        goto err_after_begin;
    }
    rv = kyufu_storage__keys_active_read(s, txn, &s->keys_active);
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, len, "read key version: %s",
                              kyufu_storage_strerror(rv));
        goto err_after_begin;
    }
    mrv = mdb_txn_commit(txn);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "commit: %s", mdb_strerror(mrv));
        goto err;
    }
    return 0;

err_after_begin:
    mdb_txn_abort(txn);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}

/* A data.mdb shorter than the pages its meta page counts (truncated
 * behind LMDB's back) is CORRUPT, found before any page is read: LMDB
 * itself does not check it, and its first read of a page past the end
 * of the file is a SIGBUS (seen in the chaos fault corrupt-store,
 * docs/chaos.md).  Only the meta pages, which mdb_env_open read with
 * pread and checked, are touched here.  Also the first step of the
 * structural check (check.c). */
int kyufu_storage__check_file_size(MDB_env *env,
                                   const MDB_envinfo *info,
                                   char *errmsg,
                                   size_t len)
{
    MDB_stat st;
    struct stat fst;
    int fd;
    KYUFU_ASSERT(env != NULL && info != NULL);
    int mrv = mdb_env_get_fd(env, &fd);
    if (mrv == 0) {
        mrv = mdb_env_stat(env, &st);
    }
    if (mrv != 0) {
        kyufu_storage__errmsg(errmsg, len, "store file: %s",
                              mdb_strerror(mrv));
        return kyufu_storage__mdb_error(mrv);
    }
    if (fstat(fd, &fst) != 0) {
        kyufu_storage__errmsg(errmsg, len, "stat data.mdb: %s",
                              strerror(errno));
        return KYUFU_STORAGE_EIO;
    }
    KYUFU_ASSERT(st.ms_psize > 0);
    if ((uint64_t)fst.st_size / st.ms_psize <
        (uint64_t)info->me_last_pgno + 1) {
        kyufu_storage__errmsg(errmsg, len,
                              "data.mdb is truncated: %lld bytes, but its "
                              "meta page counts %llu pages of %u bytes",
                              (long long)fst.st_size,
                              (unsigned long long)info->me_last_pgno + 1,
                              st.ms_psize);
        return KYUFU_STORAGE_ECORRUPT;
    }
    return 0;
}

/* Create and open the environment at s->path with s->env_flags and the
 * map size s->map_size_bytes, which becomes the file's own when that is
 * larger; check the file's size.  On failure s->env is NULL. */
static int env_start(struct kyufu_storage *s, char *errmsg, size_t len)
{
    MDB_envinfo info;
    int rv;
    int mrv = mdb_env_create(&s->env);
    if (mrv != 0) {
        s->env = NULL;
        kyufu_storage__errmsg(errmsg, len, "env create: %s",
                              mdb_strerror(mrv));
        return kyufu_storage__mdb_error(mrv);
    }
    /* Every option set explicitly, never LMDB's defaults. */
    mrv = mdb_env_set_maxdbs(s->env, KYUFU_MAX_DBS);
    if (mrv == 0) {
        mrv = mdb_env_set_maxreaders(s->env, KYUFU_MAX_READERS);
    }
    if (mrv == 0) {
        mrv = mdb_env_set_mapsize(s->env, s->map_size_bytes);
    }
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "env options: %s",
                              mdb_strerror(mrv));
        goto err;
    }
    mrv = mdb_env_open(s->env, s->path, s->env_flags, 0600);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "open %s: %s", s->path,
                              mdb_strerror(mrv));
        goto err;
    }
    /* An existing store may be larger than asked: LMDB keeps its size. */
    mdb_env_info(s->env, &info);
    rv = kyufu_storage__check_file_size(s->env, &info, errmsg, len);
    if (rv != 0) {
        goto err;
    }
    s->map_size_bytes = info.me_mapsize;
    return 0;

err:
    mdb_env_close(s->env);
    s->env = NULL;
    return rv;
}

/* The loop thread's reserved reader slot (kyufu_storage__read_begin):
 * taken while the table is empty, and kept by the reset txn (MDB_NOTLS
 * ties a slot to its txn object). */
static int reader_reserve(struct kyufu_storage *s, char *errmsg, size_t len)
{
    int mrv = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->loop_txn);
    if (mrv != 0) {
        kyufu_storage__errmsg(errmsg, len, "reserve a reader: %s",
                              mdb_strerror(mrv));
        return kyufu_storage__mdb_error(mrv);
    }
    mdb_txn_reset(s->loop_txn);
    return 0;
}

int kyufu_storage_open(const struct kyufu_storage_options *options,
                       struct kyufu_storage **out,
                       char *errmsg,
                       size_t errmsg_len)
{
    struct lock_holder *h;
    struct kyufu_storage *s;
    char lock_path[4096];
    int rv;

    if (options == NULL || options->path == NULL || out == NULL ||
        options->path[0] == '\0') {
        kyufu_storage__errmsg(errmsg, errmsg_len, "no path");
        rv = KYUFU_STORAGE_EINVALID;
        goto err;
    }
    if (mkdir(options->path, 0700) != 0 && errno != EEXIST) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "mkdir %s: %s",
                              options->path, strerror(errno));
        rv = KYUFU_STORAGE_EIO;
        goto err;
    }
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err;
    }
    s = &h->s;
    s->map_size_bytes = options->map_size_bytes != 0
                            ? options->map_size_bytes
                            : KYUFU_MAP_SIZE_BYTES_DEFAULT;
    s->map_size_bytes_max = options->map_size_bytes_max != 0
                                ? options->map_size_bytes_max
                                : KYUFU_MAP_SIZE_BYTES_MAX_DEFAULT;
    if (s->map_size_bytes_max < s->map_size_bytes) {
        s->map_size_bytes_max = s->map_size_bytes;
    }
    s->seal_limit = options->seal_limit != 0 ? options->seal_limit
                                             : KYUFU_STORAGE_SEAL_LIMIT;
    s->snapshot_chunk_bytes = KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
    if (pthread_mutex_init(&s->snap_lock, NULL) != 0) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_alloc;
    }
    if (pthread_mutex_init(&s->keys_lock, NULL) != 0) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_snap_lock;
    }
    if (pthread_rwlock_init(&s->env_lock, NULL) != 0) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_keys_lock;
    }

    snprintf(lock_path, sizeof lock_path, "%s/kyufu.lock", options->path);
    h->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (h->lock_fd < 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "open %s: %s", lock_path,
                              strerror(errno));
        rv = KYUFU_STORAGE_EIO;
        goto err_after_mutex;
    }
    if (flock(h->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "%s is in use", lock_path);
        rv = errno == EWOULDBLOCK ? KYUFU_STORAGE_ELOCKED : KYUFU_STORAGE_EIO;
        goto err_after_lock_open;
    }

    /* MDB_NOTLS: a snapshot's read txn is opened on the loop thread and read
     * on another.  MDB_NOMETASYNC: one sync per commit instead of two (the
     * meta page is written without O_DSYNC and reaches the disk with the
     * next commit's sync): LMDB keeps the store consistent, and an OS crash
     * can undo only the last commit, which Raft replays from its log
     * (docs/storage.md, "Crash windows").  The second sync held the loop
     * thread 1-2 s per apply under snapshot I/O (docs/scale.md).
     * MDB_NOSYNC when asked (kyufud, tests, simulation): the owner flushes
     * with kyufu_storage_sync off the loop thread (sync.c). */
    s->env_flags =
        MDB_NOTLS | MDB_NOMETASYNC | (options->no_sync ? MDB_NOSYNC : 0);
    s->no_sync = options->no_sync;
    s->path = strdup(options->path);
    if (s->path == NULL) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_lock_open;
    }
    rv = env_start(s, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_lock_open;
    }
    if (s->map_size_bytes_max < s->map_size_bytes) {
        s->map_size_bytes_max = s->map_size_bytes;
    }
    rv = open_schema(s, errmsg, errmsg_len);
    if (rv == 0) {
        rv = reader_reserve(s, errmsg, errmsg_len);
    }
    if (rv != 0) {
        goto err_after_env;
    }
    /* What a no_sync store holds may still sit in the page cache (a
     * process killed after its commits): flush it once, so that all of it
     * counts as durable (sync.c).  A syncing store flushed every commit. */
    rv = kyufu_storage_sync(s, s->applied_index, errmsg, errmsg_len);
    if (rv != 0) {
        mdb_txn_abort(s->loop_txn);
        goto err_after_env;
    }
    *out = s;
    return 0;

err_after_env:
    free(s->versions.voters);
    mdb_env_close(s->env);
err_after_lock_open:
    free(s->path);
    close(h->lock_fd);
err_after_mutex:
    pthread_rwlock_destroy(&s->env_lock);
err_after_keys_lock:
    pthread_mutex_destroy(&s->keys_lock);
err_after_snap_lock:
    pthread_mutex_destroy(&s->snap_lock);
err_after_alloc:
    free(h);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}

void kyufu_storage_close(struct kyufu_storage *s)
{
    struct lock_holder *h;
    if (s == NULL) {
        return;
    }
    pthread_mutex_lock(&s->snap_lock);
    KYUFU_ASSERT(s->snapshots == 0);
    pthread_mutex_unlock(&s->snap_lock);
    KYUFU_ASSERT(!s->loop_txn_busy);
    h = (struct lock_holder *)(void *)s;
    if (s->env != NULL) { /* NULL after a failed renew */
        mdb_txn_abort(s->loop_txn);
        mdb_env_close(s->env);
    }
    free(s->path);
    free(s->versions.voters);
    kyufu_storage__keys_wipe(s);
    pthread_rwlock_destroy(&s->env_lock);
    pthread_mutex_destroy(&s->keys_lock);
    pthread_mutex_destroy(&s->snap_lock);
    close(h->lock_fd);
    free(h);
}

void kyufu_storage_applied(struct kyufu_storage *s,
                           uint64_t *index,
                           uint64_t *term)
{
    KYUFU_ASSERT(s != NULL);
    if (index != NULL) {
        *index = s->applied_index;
    }
    if (term != NULL) {
        *term = s->applied_term;
    }
}

int kyufu_storage__read_begin(struct kyufu_storage *s, MDB_txn **txn)
{
    if (s->env == NULL) { /* a failed renew: the node is stopping */
        return KYUFU_STORAGE_EIO;
    }
    if (s->loop_txn_busy) {
        return kyufu_storage__mdb_error(
            mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn));
    }
    /* Renew cannot find the table full: the txn kept its slot. */
    int mrv = mdb_txn_renew(s->loop_txn);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    s->loop_txn_busy = true;
    *txn = s->loop_txn;
    return 0;
}

void kyufu_storage__read_end(struct kyufu_storage *s, MDB_txn *txn)
{
    if (txn != s->loop_txn) {
        mdb_txn_abort(txn);
        return;
    }
    KYUFU_ASSERT(s->loop_txn_busy);
    mdb_txn_reset(txn);
    s->loop_txn_busy = false;
}

/* With snap_lock held. */
static int grow_locked(struct kyufu_storage *s)
{
    size_t next;
    int mrv;
    if (s->snapshots > 0 || s->map_size_bytes >= s->map_size_bytes_max) {
        return KYUFU_STORAGE_EMAP_FULL;
    }
    next = s->map_size_bytes > s->map_size_bytes_max / 2
               ? s->map_size_bytes_max
               : s->map_size_bytes * 2;
    /* Legal only with no txn open in this process: apply calls it between
     * transactions and snapshots (the only other txns) are counted above. */
    mrv = mdb_env_set_mapsize(s->env, next);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    KYUFU_ASSERT(info.me_mapsize >= next);
    s->map_size_bytes = info.me_mapsize;
    s->grow_count++;
    return 0;
}

int kyufu_storage__grow(struct kyufu_storage *s)
{
    pthread_mutex_lock(&s->snap_lock);
    int rv = grow_locked(s);
    pthread_mutex_unlock(&s->snap_lock);
    return rv;
}

int kyufu_storage__grow_if_needed(struct kyufu_storage *s)
{
    MDB_envinfo info;
    MDB_stat st;
    size_t used;
    int rv = 0;
    pthread_mutex_lock(&s->snap_lock);
    if (s->snapshots > 0 || s->map_size_bytes >= s->map_size_bytes_max) {
        goto out;
    }
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);
    used = (info.me_last_pgno + 1) * (size_t)st.ms_psize;
    if (used / 3 > s->map_size_bytes / 4) {
        rv = grow_locked(s);
    }
out:
    pthread_mutex_unlock(&s->snap_lock);
    return rv;
}

int kyufu_storage__env_gone(const struct kyufu_storage *s,
                            char *errmsg,
                            size_t len)
{
    if (s->env != NULL) {
        return 0;
    }
    kyufu_storage__errmsg(errmsg, len,
                          "the store could not be reopened after a restore");
    return KYUFU_STORAGE_EIO;
}

int kyufu_storage__env_renew(struct kyufu_storage *s, char *errmsg, size_t len)
{
    MDB_txn *txn;
    int rv;
    KYUFU_ASSERT(s->env != NULL && !s->loop_txn_busy);
    pthread_mutex_lock(&s->snap_lock);
    if (s->snapshots > 0) {
        s->renew_pending = true; /* kyufu_storage_apply, once none is */
        pthread_mutex_unlock(&s->snap_lock);
        return 0;
    }
    /* snap_lock held: no snapshot begins meanwhile. */
    pthread_rwlock_wrlock(&s->env_lock);
    s->renew_pending = false;
    mdb_txn_abort(s->loop_txn);
    s->loop_txn = NULL;
    mdb_env_close(s->env);
    s->env = NULL;
    rv = env_start(s, errmsg, len);
    if (rv != 0) {
        goto out;
    }
    /* The same databases get the same handles; set them again anyway. */
    int mrv = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrv != 0) {
        kyufu_storage__errmsg(errmsg, len, "begin: %s", mdb_strerror(mrv));
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_env;
    }
    rv = dbis_open(s, txn, errmsg, len);
    if (rv != 0) {
        mdb_txn_abort(txn);
        goto err_after_env;
    }
    mrv = mdb_txn_commit(txn);
    if (mrv != 0) {
        kyufu_storage__errmsg(errmsg, len, "commit: %s", mdb_strerror(mrv));
        rv = kyufu_storage__mdb_error(mrv);
        goto err_after_env;
    }
    rv = reader_reserve(s, errmsg, len);
    if (rv != 0) {
        goto err_after_env;
    }
    s->renew_count++;
    goto out;

err_after_env:
    mdb_env_close(s->env);
    s->env = NULL;
out:
    pthread_rwlock_unlock(&s->env_lock);
    pthread_mutex_unlock(&s->snap_lock);
    if (rv != 0 && !kyufu_storage_is_fatal(rv)) {
        rv = KYUFU_STORAGE_EIO; /* no environment left: the node stops */
    }
    return rv;
}
