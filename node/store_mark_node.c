/* The store's flush mark at start and stop: see store_mark.h and node.h
 * (kyufu_node__store_mark_before_open). */
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "log.h"
#include "node.h"
#include "store_mark.h"

static const char *verdict_reason(enum kyufu_store_mark_verdict v)
{
    return v == KYUFU_STORE_MARK_REBOOTED ? "the OS restarted during a background-flush session"
                                          : "unreadable flush mark";
}

int kyufu_node__store_mark_before_open(struct kyufu_node *n,
                                       const char *store_dir)
{
    char mark_boot[KYUFU_STORE_MARK_BOOT_BYTES_MAX];
    char detail[KYUFU_NODE_PATH_BYTES_MAX + 128] = "";
    enum kyufu_store_mark_verdict v;

    n->store_mark_open = false;
    if (kyufu_store_mark_boot_id(n->boot_id, detail, sizeof detail) != 0) {
        /* Unknown: an "open" mark then never matches (rebuild rather than
         * trust a store that may be torn). */
        kyufu_log(KYUFU_LOG_WARN, "cannot read the boot id",
                  KYUFU_LOG_S("detail", detail));
        detail[0] = '\0';
    }
    v = kyufu_store_mark_judge(store_dir, n->boot_id, mark_boot, detail,
                               sizeof detail);
    if (kyufu_store_mark_must_rebuild(v)) {
        kyufu_log(KYUFU_LOG_WARN,
                  "store discarded: rebuilding it from the Raft snapshot and log",
                  KYUFU_LOG_S("path", store_dir),
                  KYUFU_LOG_S("reason", verdict_reason(v)),
                  KYUFU_LOG_S("mark_boot_id", mark_boot),
                  KYUFU_LOG_S("boot_id", n->boot_id),
                  KYUFU_LOG_S("detail", detail));
        if (kyufu_store_mark_discard_store(store_dir, detail,
                                           sizeof detail) != 0) {
            kyufu_log(KYUFU_LOG_ERROR, "cannot discard the store",
                      KYUFU_LOG_S("detail", detail));
            return -1;
        }
    }
    if (!n->config->storage_flush_background)
        return 0;
    /* Before the first write of this session (the open itself may write):
     * until a clean stop rewrites it, the store may hold unflushed
     * commits. */
    if (kyufu_store_mark_write(store_dir, n->boot_id, true, detail,
                               sizeof detail) != 0) {
        kyufu_log(KYUFU_LOG_ERROR, "cannot write the store flush mark",
                  KYUFU_LOG_S("detail", detail));
        return -1;
    }
    n->store_mark_open = true;
    return 0;
}

void kyufu_node__store_mark_after_open(struct kyufu_node *n,
                                       const char *store_dir)
{
    char detail[KYUFU_NODE_PATH_BYTES_MAX + 128];

    if (n->config->storage_flush_background)
        return;
    /* Commit mode writes no mark; the open flushed what an earlier
     * background session left, so its mark has done its work. */
    if (kyufu_store_mark_remove(store_dir, detail, sizeof detail) != 0) {
        kyufu_log(KYUFU_LOG_WARN, "cannot remove the store flush mark",
                  KYUFU_LOG_S("detail", detail));
    }
}

void kyufu_node__store_mark_clean(struct kyufu_node *n)
{
    char store_dir[KYUFU_NODE_PATH_BYTES_MAX + 16];
    char detail[KYUFU_NODE_PATH_BYTES_MAX + 128];

    if (!n->store_mark_open)
        return;
    snprintf(store_dir, sizeof store_dir, "%s/ledger", n->config->data_dir);
    if (kyufu_store_mark_write(store_dir, n->boot_id, false, detail,
                               sizeof detail) != 0) {
        /* The next start after an OS restart rebuilds the store: slower,
         * never wrong. */
        kyufu_log(KYUFU_LOG_ERROR, "cannot write the store flush mark",
                  KYUFU_LOG_S("detail", detail));
        return;
    }
    n->store_mark_open = false;
}
