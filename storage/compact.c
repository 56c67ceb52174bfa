/* Offline compaction of a store: a copy without free pages, verified, then
 * swapped in.
 *
 * LMDB never gives pages back to the file system: pages freed by updates
 * and deletions are reused, but the file keeps its high-water size.
 * mdb_env_copy2(MDB_CP_COMPACT) writes a copy holding only live pages,
 * renumbered.  Happy path (the store's flock held throughout, so no
 * kyufud can open it meanwhile):
 *
 *   1. open the store, take its digest (storage.h: the whole replicated
 *      state, applied index and term included) and its file size;
 *   2. copy it compacted into <path>/compact.tmp/ (made empty first);
 *   3. fsync the copy, open it as a store, take its digest: it must equal
 *      (1), else the copy is removed and the store is left untouched;
 *   4. rename the copy's data.mdb over <path>/data.mdb (atomic), fsync the
 *      folder, remove compact.tmp;
 *   5. close, open the result again and take its digest once more.
 *
 * Crash windows: before (4) the store is untouched and a stale compact.tmp
 * is removed by the next run; rename(2) is atomic, so after a crash in (4)
 * data.mdb is either the old file or the whole verified copy; lock.mdb
 * holds only the reader table, which LMDB resets when the first process
 * opens the environment. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define TMP_DIR "compact.tmp"

/* Remove <dir> and the plain files in it (an LMDB environment: data.mdb,
 * lock.mdb, kyufu.lock); a missing folder is fine. */
static int remove_dir(const char *dir, char *errmsg, size_t len)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) {
            return 0;
        }
        kyufu_storage__errmsg(errmsg, len, "opendir %s: %s", dir, strerror(errno));
        return KYUFU_STORAGE_EIO;
    }
    struct dirent *e;
    char p[4096];
    int rv = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) {
            continue; /* never ours: we make only short names */
        }
        if (unlink(p) != 0 && rv == 0) {
            kyufu_storage__errmsg(errmsg, len, "unlink %s: %s", p, strerror(errno));
            rv = KYUFU_STORAGE_EIO;
        }
    }
    closedir(d);
    if (rv == 0 && rmdir(dir) != 0) {
        kyufu_storage__errmsg(errmsg, len, "rmdir %s: %s", dir, strerror(errno));
        rv = KYUFU_STORAGE_EIO;
    }
    return rv;
}

static int fsync_path(const char *p, int flags, char *errmsg, size_t len)
{
    int fd = open(p, flags | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        kyufu_storage__errmsg(errmsg, len, "fsync %s: %s", p, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return KYUFU_STORAGE_EIO;
    }
    close(fd);
    return 0;
}

static int file_size(const char *p, uint64_t *out, char *errmsg, size_t len)
{
    struct stat st;
    if (stat(p, &st) != 0) {
        kyufu_storage__errmsg(errmsg, len, "stat %s: %s", p, strerror(errno));
        return KYUFU_STORAGE_EIO;
    }
    *out = (uint64_t)st.st_size;
    return 0;
}

/* Open the store at path and take its digest. */
static int digest_of(const char *path, uint8_t digest[32], uint64_t *applied,
                     char *errmsg, size_t len)
{
    struct kyufu_storage_options o = { .path = path };
    struct kyufu_storage *s;
    int rv = kyufu_storage_open(&o, &s, errmsg, len);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage_digest(s, digest, applied);
    kyufu_storage_close(s);
    return rv;
}

int kyufu_storage_compact(const char *path,
                          struct kyufu_storage_compact_result *res,
                          char *errmsg,
                          size_t errmsg_len)
{
    char tmp[4096], data[4096], tmp_data[4096];
    struct kyufu_storage_options o = { .path = path };
    struct kyufu_storage *s;
    uint8_t copy_digest[32], again[32];
    uint64_t copy_applied, again_applied;
    int rv;

    KYUFU_ASSERT(path != NULL && res != NULL);
    memset(res, 0, sizeof *res);
    if (snprintf(tmp, sizeof tmp, "%s/" TMP_DIR, path) >= (int)sizeof tmp ||
        snprintf(data, sizeof data, "%s/data.mdb", path) >= (int)sizeof data ||
        snprintf(tmp_data, sizeof tmp_data, "%s/data.mdb", tmp) >= (int)sizeof tmp_data) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "path too long");
        rv = KYUFU_STORAGE_EINVALID;
        goto err;
    }
    if (access(data, F_OK) != 0) {
        /* Opening would create an empty store: compaction never does. */
        kyufu_storage__errmsg(errmsg, errmsg_len, "%s: no store there", data);
        rv = KYUFU_STORAGE_EINVALID;
        goto err;
    }
    rv = kyufu_storage_open(&o, &s, errmsg, errmsg_len);
    if (rv != 0) {
        goto err;
    }
    rv = kyufu_storage_digest(s, res->digest, &res->applied_index);
    if (rv == 0) {
        rv = file_size(data, &res->bytes_before, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = remove_dir(tmp, errmsg, errmsg_len); /* a crashed run's copy */
    }
    if (rv == 0 && mkdir(tmp, 0700) != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "mkdir %s: %s", tmp, strerror(errno));
        rv = KYUFU_STORAGE_EIO;
    }
    if (rv != 0) {
        goto err_after_open;
    }
    int mrv = mdb_env_copy2(s->env, tmp, MDB_CP_COMPACT);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "copy to %s: %s", tmp, mdb_strerror(mrv));
        goto err_after_tmp;
    }
    rv = fsync_path(tmp_data, O_RDONLY, errmsg, errmsg_len);
    if (rv == 0) {
        rv = digest_of(tmp, copy_digest, &copy_applied, errmsg, errmsg_len);
    }
    if (rv == 0 && (copy_applied != res->applied_index ||
                    memcmp(copy_digest, res->digest, 32) != 0)) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "the compacted copy's state digest differs from the store's; "
                              "store left as it was");
        rv = KYUFU_STORAGE_ECORRUPT;
    }
    if (rv == 0) {
        rv = file_size(tmp_data, &res->bytes_after, errmsg, errmsg_len);
    }
    if (rv != 0) {
        goto err_after_tmp;
    }
    /* The swap, still under the store's lock. */
    if (rename(tmp_data, data) != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "rename %s to %s: %s", tmp_data, data,
                              strerror(errno));
        rv = KYUFU_STORAGE_EIO;
        goto err_after_tmp;
    }
    rv = fsync_path(path, O_RDONLY | O_DIRECTORY, errmsg, errmsg_len);
    kyufu_storage_close(s);
    if (rv == 0) {
        rv = remove_dir(tmp, errmsg, errmsg_len);
    }
    if (rv == 0) {
        rv = digest_of(path, again, &again_applied, errmsg, errmsg_len);
    }
    if (rv == 0 && (again_applied != res->applied_index || memcmp(again, res->digest, 32) != 0)) {
        /* Verified before the rename: this would be a broken file system. */
        kyufu_storage__errmsg(errmsg, errmsg_len, "the store's digest changed after the swap");
        rv = KYUFU_STORAGE_ECORRUPT;
    }
    if (rv != 0) {
        goto err;
    }
    return 0;

err_after_tmp:
    (void)remove_dir(tmp, NULL, 0);
err_after_open:
    kyufu_storage_close(s);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}
