/* The store's structural check at start, and the clean-stop marker that
 * spares it (docs/storage.md "Structural check").
 *
 * Happy path: a start finds STORE_DIR/clean.stop (the last session stopped
 * cleanly: the store was last closed by kyufud itself, after its final
 * flush), removes it durably (unlink, folder fsynced) before the store
 * opens, and skips the walk; the clean stop of this session writes it
 * again (small_file.h: whole or absent).  Any other start (kill -9, a
 * crash, an OS crash, a fatal error, a first start after an upgrade)
 * finds none and runs kyufu_storage_check_isolated, which walks every page
 * in a child: measured at about 0.3 s of CPU per GB with the file in the
 * page cache, but up to ~19 s per GB from a cold disk (docs/storage.md),
 * too slow for every start.
 *
 * Failure modes: the marker cannot be removed (I/O): IO, the store is not
 * opened (a marker left behind would skip the check after a crash of this
 * session); the marker cannot be written at stop: logged, the next start
 * checks (slower, never wrong). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "limits.h"
#include "log.h"
#include "node.h"
#include "small_file.h"
#include "storage.h"

#define CLEAN_NAME "clean.stop"
#define CLEAN_TEXT "kyufu clean stop 1\n"

int kyufu_node__store_check(struct kyufu_node *n,
                            const char *store_dir,
                            char *errmsg,
                            size_t errmsg_len)
{
    char path[KYUFU_SMALL_FILE_PATH_BYTES];
    (void)n;
    if (kyufu_small_file_join(path, store_dir, CLEAN_NAME, errmsg,
                              errmsg_len) != 0) {
        return KYUFU_STORAGE_EINVALID;
    }
    if (unlink(path) == 0) {
        if (kyufu_small_file_sync_dir(store_dir, errmsg, errmsg_len) != 0) {
            return KYUFU_STORAGE_EIO;
        }
        kyufu_log(KYUFU_LOG_INFO, "store check skipped after a clean stop",
                  KYUFU_LOG_S("path", store_dir));
        return 0;
    }
    if (errno != ENOENT) {
        snprintf(errmsg, errmsg_len, "unlink %s: %s", path, strerror(errno));
        return KYUFU_STORAGE_EIO;
    }
    uint64_t t0 = uv_hrtime();
    int rv = kyufu_storage_check_isolated(store_dir, errmsg, errmsg_len);
    if (rv == 0) {
        kyufu_log(KYUFU_LOG_INFO, "store checked",
                  KYUFU_LOG_S("path", store_dir),
                  KYUFU_LOG_U("duration_ms", (uv_hrtime() - t0) / 1000000u));
    }
    return rv;
}

void kyufu_node__store_check_clean(struct kyufu_node *n)
{
    char store_dir[KYUFU_NODE_PATH_BYTES_MAX + 16];
    char detail[KYUFU_NODE_PATH_BYTES_MAX + 128];

    snprintf(store_dir, sizeof store_dir, "%s/ledger", n->config->data_dir);
    if (kyufu_small_file_write(store_dir, CLEAN_NAME, CLEAN_TEXT,
                               strlen(CLEAN_TEXT), detail,
                               sizeof detail) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot write the clean-stop marker",
                  KYUFU_LOG_S("detail", detail));
    }
}
