/* Small files read whole and written whole, durably: the store's flush
 * mark (store_mark.c) and the key files of encryption at rest (keys.c).
 *
 * Reading opens without following a symlink and without blocking, and
 * checks the opened file (fstat on its descriptor) before reading, so a
 * FIFO, a device or a directory where a small file belongs never hangs or
 * misleads the caller.  Writing never leaves a moment without a whole
 * file: NAME.tmp is created new (O_EXCL, mode 0600, after removing what a
 * crash left there), written, fsynced, renamed over NAME, and the folder
 * fsynced.  No function logs; errmsg gets one line.  Thread-safe, but
 * two writers of one NAME at once must not happen (they share NAME.tmp):
 * each file has one writer, the process holding the data folder's lock. */
#ifndef KYUFU_NODE_SMALL_FILE_H
#define KYUFU_NODE_SMALL_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest path built from a folder and a name. */
#define KYUFU_SMALL_FILE_PATH_BYTES 1024

/* out = dir "/" name; 0, or -1 with errmsg when it does not fit. */
int kyufu_small_file_join(char out[KYUFU_SMALL_FILE_PATH_BYTES],
                          const char *dir, const char *name, char *errmsg,
                          size_t errmsg_len);

enum {
    KYUFU_SMALL_FILE_EIO = -1,      /* open/read failed: errno says why */
    KYUFU_SMALL_FILE_ESHAPE = -2,   /* not a regular file, or too long */
    KYUFU_SMALL_FILE_EPRIVATE = -3, /* group/other bits, or not owned by
                                       the effective user or root */
};

/* Read path whole into buf: at most cap - 1 bytes, NUL-terminated (binary
 * files may hold NULs: use the length).  private_only: refuse a file with
 * any group or other permission bit, or owned by another user than the
 * effective one or root (such a user could rewrite it whatever its mode
 * says).  Returns the length or a KYUFU_SMALL_FILE_E* code (EIO with
 * errno set). */
ssize_t kyufu_small_file_read(const char *path, void *buf, size_t cap,
                              bool private_only);

/* Write data (len bytes) as dir/name as described above (mode 0600; the
 * folder must exist).  0, or -1 with errmsg. */
int kyufu_small_file_write(const char *dir, const char *name,
                           const void *data, size_t len, char *errmsg,
                           size_t errmsg_len);

/* fsync the folder (after a rename or unlink in it).  0 or -1 + errmsg. */
int kyufu_small_file_sync_dir(const char *dir, char *errmsg,
                              size_t errmsg_len);

#endif /* KYUFU_NODE_SMALL_FILE_H */
