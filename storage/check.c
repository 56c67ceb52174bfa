/* The structural check of a stopped store (storage.h kyufu_storage_check).
 *
 * LMDB keeps no page checksums: a flipped bit in a page header or a child
 * page number makes it read, or write, wild memory, and the process dies
 * with SIGSEGV or SIGBUS at some later lookup.  This walk visits every
 * page a lookup could reach, before the node trusts the store: the free
 * database (dbi 0, which a read-only txn may walk: mdb_stat -f does), the
 * main database (one record per named database) and every named database,
 * with a cursor, reading every key and every value (one byte in every 4 KiB
 * and the last: every page of an overflow value is read too).  It checks what
 * LMDB itself does not: keys in strictly increasing order, and as many records
 * as the database's own count.
 *
 * Happy path: open read-only without LMDB's lock file (MDB_NOLOCK: the
 * caller holds the node's lock, nothing else writes), check the file size
 * (env.c), one read txn, walk, close: nothing on disk changes.
 *
 * Failure modes: any LMDB error during the walk is CORRUPT (MDB_CORRUPTED,
 * MDB_PAGE_NOTFOUND, and the EINVAL or MDB_INCOMPATIBLE a damaged record
 * gives) except EIO (IO) and ENOMEM (NOMEM); a structural flip that LMDB
 * does not notice may still crash this process, which is why kyufud runs it
 * in a child (check_child.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* The smallest page size Linux maps (a larger one is a multiple). */
#define KYUFU_CHECK_TOUCH_STRIDE_BYTES 4096u

/* An LMDB error seen while reading a store: damage unless it is I/O or
 * memory. */
static int walk_error(int mrv)
{
    KYUFU_ASSERT(mrv != 0);
    if (mrv == EIO) {
        return KYUFU_STORAGE_EIO;
    }
    if (mrv == ENOMEM) {
        return KYUFU_STORAGE_ENOMEM;
    }
    return KYUFU_STORAGE_ECORRUPT;
}

/* Read v's bytes into *sum: one in every 4 KiB and the last, enough to make
 * the kernel map every page of the value (an overflow value spans pages
 * LMDB itself never reads until asked), without paying for each byte. */
static void touch(const MDB_val *v, volatile uint8_t *sum)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size == 0) {
        return;
    }
    for (size_t i = 0; i < v->mv_size; i += KYUFU_CHECK_TOUCH_STRIDE_BYTES) {
        *sum ^= p[i];
    }
    *sum ^= p[v->mv_size - 1];
}

/* Walk one database: every record read, keys in order, the count its
 * header records. */
static int walk_db(MDB_txn *txn,
                   MDB_dbi dbi,
                   const char *name,
                   volatile uint8_t *sum,
                   char *errmsg,
                   size_t len)
{
    MDB_cursor *c;
    MDB_stat st;
    MDB_val k, v, prev = {0, NULL};
    uint64_t n = 0;
    int rv;
    int mrv = mdb_stat(txn, dbi, &st);
    if (mrv == 0) {
        mrv = mdb_cursor_open(txn, dbi, &c);
    }
    if (mrv != 0) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "database %s: %s", name,
                              mdb_strerror(mrv));
        goto err;
    }
    for (mrv = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        touch(&k, sum);
        touch(&v, sum);
        if (n > 0 && mdb_cmp(txn, dbi, &prev, &k) >= 0) {
            rv = KYUFU_STORAGE_ECORRUPT;
            kyufu_storage__errmsg(errmsg, len,
                                  "database %s: record %llu is out of key "
                                  "order",
                                  name, (unsigned long long)n);
            goto err_after_cursor;
        }
        prev = k;
        n++;
        if (n > st.ms_entries) {
            break; /* reported below */
        }
    }
    if (mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, len,
                              "database %s: %s after %llu "
                              "records",
                              name, mdb_strerror(mrv), (unsigned long long)n);
        goto err_after_cursor;
    }
    if (n != st.ms_entries) {
        rv = KYUFU_STORAGE_ECORRUPT;
        kyufu_storage__errmsg(errmsg, len,
                              "database %s: %llu records reachable, its "
                              "header counts %llu",
                              name, (unsigned long long)n,
                              (unsigned long long)st.ms_entries);
        goto err_after_cursor;
    }
    mdb_cursor_close(c);
    return 0;

err_after_cursor:
    mdb_cursor_close(c);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}

/* Every database named in the main database, walked.  The names are
 * copied out first: a cursor on the main database and mdb_dbi_open in one
 * txn is allowed, but a name must not be read from a page the walk of
 * another database could be using. */
static int walk_named(MDB_txn *txn,
                      volatile uint8_t *sum,
                      char *errmsg,
                      size_t len)
{
    char names[KYUFU_MAX_DBS][64];
    unsigned n = 0;
    MDB_dbi main_dbi;
    MDB_cursor *c;
    MDB_val k, v;
    int rv;
    int mrv = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (mrv != 0) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "main database: %s",
                              mdb_strerror(mrv));
        goto err;
    }
    rv = walk_db(txn, main_dbi, "(main)", sum, errmsg, len);
    if (rv != 0) {
        goto err;
    }
    mrv = mdb_cursor_open(txn, main_dbi, &c);
    if (mrv != 0) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "main database: %s",
                              mdb_strerror(mrv));
        goto err;
    }
    for (mrv = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        /* kyufu's names are short; KYUFU_MAX_DBS - 1 besides main. */
        if (n == KYUFU_MAX_DBS - 1 || k.mv_size == 0 ||
            k.mv_size >= sizeof names[0] || memchr(k.mv_data, 0, k.mv_size)) {
            mdb_cursor_close(c);
            rv = KYUFU_STORAGE_ECORRUPT;
            kyufu_storage__errmsg(errmsg, len,
                                  "main database: record %u is not the name "
                                  "of one of kyufu's databases",
                                  n);
            goto err;
        }
        memcpy(names[n], k.mv_data, k.mv_size);
        names[n][k.mv_size] = '\0';
        n++;
    }
    mdb_cursor_close(c);
    if (mrv != MDB_NOTFOUND) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, len, "main database: %s",
                              mdb_strerror(mrv));
        goto err;
    }
    for (unsigned i = 0; i < n; i++) {
        MDB_dbi dbi;
        mrv = mdb_dbi_open(txn, names[i], 0, &dbi);
        if (mrv != 0) {
            rv = walk_error(mrv);
            kyufu_storage__errmsg(errmsg, len, "database %s: %s", names[i],
                                  mdb_strerror(mrv));
            goto err;
        }
        rv = walk_db(txn, dbi, names[i], sum, errmsg, len);
        if (rv != 0) {
            goto err;
        }
    }
    return 0;

err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}

int kyufu_storage_check(const char *path, char *errmsg, size_t errmsg_len)
{
    char file[4096];
    struct stat fst;
    MDB_env *env;
    MDB_envinfo info;
    MDB_txn *txn;
    volatile uint8_t sum = 0;
    int mrv;
    int rv;

    if (path == NULL || path[0] == '\0') {
        kyufu_storage__errmsg(errmsg, errmsg_len, "no path");
        rv = KYUFU_STORAGE_EINVALID;
        goto err;
    }
    snprintf(file, sizeof file, "%s/data.mdb", path);
    if (stat(file, &fst) != 0) {
        if (errno == ENOENT) {
            return 0; /* no store yet: nothing to check, nothing made */
        }
        kyufu_storage__errmsg(errmsg, errmsg_len, "stat %s: %s", file,
                              strerror(errno));
        rv = KYUFU_STORAGE_EIO;
        goto err;
    }
    if (fst.st_size == 0) {
        /* An empty file (a power cut during the very first open): the open
         * initialises it, as it always did. */
        return 0;
    }
    mrv = mdb_env_create(&env);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "env: %s", mdb_strerror(mrv));
        goto err;
    }
    /* Options set explicitly.  The map size is the file's own (0: LMDB
     * takes the one the meta page records). */
    mrv = mdb_env_set_maxdbs(env, KYUFU_MAX_DBS);
    if (mrv == 0) {
        mrv = mdb_env_set_maxreaders(env, 1);
    }
    if (mrv == 0) {
        mrv = mdb_env_set_mapsize(env, 0);
    }
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "env options: %s",
                              mdb_strerror(mrv));
        goto err_after_env;
    }
    mrv = mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
    if (mrv != 0) {
        rv = kyufu_storage__mdb_error(mrv); /* INVALID: CORRUPT */
        kyufu_storage__errmsg(errmsg, errmsg_len, "open %s: %s", path,
                              mdb_strerror(mrv));
        goto err_after_env;
    }
    mdb_env_info(env, &info);
    rv = kyufu_storage__check_file_size(env, &info, errmsg, errmsg_len);
    if (rv != 0) {
        goto err_after_env;
    }
    mrv = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (mrv != 0) {
        rv = walk_error(mrv);
        kyufu_storage__errmsg(errmsg, errmsg_len, "begin: %s",
                              mdb_strerror(mrv));
        goto err_after_env;
    }
    rv = walk_db(txn, 0, "(free pages)", &sum, errmsg, errmsg_len);
    if (rv == 0) {
        rv = walk_named(txn, &sum, errmsg, errmsg_len);
    }
    mdb_txn_abort(txn);
    if (rv != 0) {
        goto err_after_env;
    }
    mdb_env_close(env);
    return 0;

err_after_env:
    mdb_env_close(env);
err:
    KYUFU_ASSERT(rv != 0);
    return rv;
}
