/* Damage one value of a stopped node's store the way a disk would, behind
 * the state machine's back (test_scrub.py, docs/scrub.md):
 *
 *   kyufu-store-poke put  STORE_DIR DB   rewrite the first record of DB
 *                                        with its value's first byte
 *                                        changed, through LMDB (a valid
 *                                        store holding different state)
 *   kyufu-store-poke flip STORE_DIR DB   flip one bit in the middle of the
 *                                        first record's value, in
 *                                        data.mdb's bytes (LMDB not told;
 *                                        every copy of the value's bytes)
 *
 * STORE_DIR holds data.mdb; DB is a database name of storage/env.c
 * ("programs", "households", ...).  Prints the key's length and what was
 * done; exit 1 on any error (the DB empty included). */
#include <fcntl.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what, int rv)
{
    fprintf(stderr, "kyufu-store-poke: %s: %s\n", what, mdb_strerror(rv));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "put") != 0 &&
                      strcmp(argv[1], "flip") != 0)) {
        fprintf(stderr, "usage: kyufu-store-poke put|flip STORE_DIR DB\n");
        return 2;
    }
    int flip = strcmp(argv[1], "flip") == 0;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = mdb_env_create(&env);
    if (rv != 0) {
        return fail("env", rv);
    }
    mdb_env_set_maxdbs(env, 64);
    /* The map size stays the store's own (its meta page's). */
    rv = mdb_env_open(env, argv[2], flip ? MDB_RDONLY : 0, 0600);
    if (rv != 0) {
        return fail("open", rv);
    }
    rv = mdb_txn_begin(env, NULL, flip ? MDB_RDONLY : 0, &txn);
    if (rv == 0) {
        rv = mdb_dbi_open(txn, argv[3], 0, &dbi);
    }
    if (rv == 0) {
        rv = mdb_cursor_open(txn, dbi, &cur);
    }
    if (rv == 0) {
        rv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    if (rv != 0) {
        return fail(argv[3], rv);
    }
    if (v.mv_size == 0) {
        fprintf(stderr, "kyufu-store-poke: the first value is empty\n");
        return 1;
    }
    if (!flip) {
        uint8_t *copy = malloc(v.mv_size);
        uint8_t *key = malloc(k.mv_size);
        memcpy(copy, v.mv_data, v.mv_size);
        memcpy(key, k.mv_data, k.mv_size);
        copy[0] ^= 0x01;
        MDB_val nk = {k.mv_size, key};
        MDB_val nv = {v.mv_size, copy};
        mdb_cursor_close(cur);
        rv = mdb_put(txn, dbi, &nk, &nv, 0);
        if (rv == 0) {
            rv = mdb_txn_commit(txn);
        }
        if (rv != 0) {
            return fail("put", rv);
        }
        printf("put: key of %zu bytes, value of %zu bytes, first byte "
               "changed\n", nk.mv_size, nv.mv_size);
        free(copy);
        free(key);
        mdb_env_close(env);
        return 0;
    }
    /* Where LMDB mapped the file is not known here (me_mapaddr is only
     * meaningful with MDB_FIXEDMAP): find the value's bytes in data.mdb
     * instead, and flip one bit in the middle of every copy (older copies
     * in free pages are harmless; the live one is among them). */
    size_t val_len = v.mv_size;
    size_t key_len = k.mv_size;
    uint8_t *val = malloc(val_len);
    memcpy(val, v.mv_data, val_len);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    char path[4096];
    snprintf(path, sizeof path, "%s/data.mdb", argv[2]);
    int fd = open(path, O_RDWR);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror("kyufu-store-poke: data.mdb");
        return 1;
    }
    uint8_t *file = malloc((size_t)st.st_size);
    if (pread(fd, file, (size_t)st.st_size, 0) != st.st_size) {
        perror("kyufu-store-poke: data.mdb");
        return 1;
    }
    unsigned copies = 0;
    for (size_t off = 0; off + val_len <= (size_t)st.st_size; off++) {
        if (memcmp(file + off, val, val_len) != 0) {
            continue;
        }
        uint8_t b = file[off + val_len / 2] ^ 0x10;
        if (pwrite(fd, &b, 1, (off_t)(off + val_len / 2)) != 1) {
            perror("kyufu-store-poke: data.mdb");
            return 1;
        }
        printf("flip: bit 4 at offset %zu\n", off + val_len / 2);
        copies++;
    }
    if (copies == 0 || fsync(fd) != 0) {
        fprintf(stderr, "kyufu-store-poke: the value is not in data.mdb\n");
        return 1;
    }
    close(fd);
    free(file);
    free(val);
    printf("flip: key of %zu bytes, value of %zu bytes, %u copies\n",
           key_len, val_len, copies);
    return 0;
}
