/* The store's flush mark (node/store_mark.h): which marks rebuild the
 * store (an "open" mark of another or an unknown boot, an unreadable
 * mark) and which do not (no mark, a clean stop before the OS restarted,
 * a process crash in the same boot); what the discard removes (the LMDB
 * files only); the KYUFU_BOOT_ID_FILE hook and hostile boot-id files;
 * a mark or boot-id file that is a folder, a FIFO or a symlink. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/check.h"
#include "store_mark.h"

static char dir[256], store[300], path[400];

static void put(const char *name, const char *text)
{
    snprintf(path, sizeof path, "%s/%s", store, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0 && fclose(f) == 0);
}

static bool exists(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", store, name);
    return access(path, F_OK) == 0;
}

static enum kyufu_store_mark_verdict judge(const char *boot, char *mark_boot)
{
    char detail[512];
    return kyufu_store_mark_judge(store, boot, mark_boot, detail, sizeof detail);
}

static void boot_file(const char *text, int want_rv, const char *want)
{
    char id[KYUFU_STORE_MARK_BOOT_BYTES_MAX], err[512];
    char bf[300];
    snprintf(bf, sizeof bf, "%s/boot_id", dir);
    FILE *f = fopen(bf, "w");
    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0 && fclose(f) == 0);
    CHECK(setenv("KYUFU_BOOT_ID_FILE", bf, 1) == 0);
    CHECK_EQ_INT(kyufu_store_mark_boot_id(id, err, sizeof err), want_rv);
    CHECK(strcmp(id, want) == 0);
}

int main(void)
{
    char mb[KYUFU_STORE_MARK_BOOT_BYTES_MAX], err[512];
    const char *A = "0f1e2d3c-aaaa-bbbb-cccc-000000000001";
    const char *B = "0f1e2d3c-aaaa-bbbb-cccc-000000000002";

    snprintf(dir, sizeof dir, "/tmp/kyufu-store-mark-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(store, sizeof store, "%s/ledger", dir);

    /* No folder, no mark: nothing to judge, nothing rebuilt. */
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_NONE);
    CHECK(!kyufu_store_mark_must_rebuild(KYUFU_STORE_MARK_NONE));

    /* A background session: "open" with boot A (the folder is created). */
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, true, err, sizeof err), 0);
    CHECK(!exists("flush.mark.tmp"));
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_SAME_BOOT);
    CHECK(strcmp(mb, A) == 0);
    CHECK(!kyufu_store_mark_must_rebuild(KYUFU_STORE_MARK_SAME_BOOT));
    /* The OS restarted (boot B), or its boot is unknown: rebuild. */
    CHECK_EQ_INT(judge(B, mb), KYUFU_STORE_MARK_REBOOTED);
    CHECK(strcmp(mb, A) == 0);
    CHECK_EQ_INT(judge("", mb), KYUFU_STORE_MARK_REBOOTED);
    CHECK(kyufu_store_mark_must_rebuild(KYUFU_STORE_MARK_REBOOTED));

    /* A clean stop, then the OS restarted: not rebuilt. */
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, false, err, sizeof err), 0);
    CHECK_EQ_INT(judge(B, mb), KYUFU_STORE_MARK_CLEAN);
    CHECK_EQ_INT(judge("", mb), KYUFU_STORE_MARK_CLEAN);
    CHECK(!kyufu_store_mark_must_rebuild(KYUFU_STORE_MARK_CLEAN));

    /* An unknown boot is written as one no real boot matches. */
    CHECK_EQ_INT(kyufu_store_mark_write(store, "", true, err, sizeof err), 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_REBOOTED);

    /* Malformed marks: rebuilt, never trusted. */
    static const char *bad[] = {
        "",
        "kyufu store flush mark 1\n",
        "kyufu store flush mark 2\nboot x\nstate clean\n",
        "kyufu store flush mark 1\nboot \nstate clean\n",
        "kyufu store flush mark 1\nboot a/b\nstate clean\n",
        "kyufu store flush mark 1\nboot abc\nstate closed\n",
        "kyufu store flush mark 1\nboot abc\nstate clean\nmore\n",
        "kyufu store flush mark 1\nboot abc\nstate clean",
        "kyufu store flush mark 1\nboot abc\0\nstate clean\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("flush.mark", bad[i]);
        CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
        CHECK(mb[0] == '\0');
    }
    CHECK(kyufu_store_mark_must_rebuild(KYUFU_STORE_MARK_MALFORMED));
    /* Too long (a boot id over the limit, a huge file). */
    char big[1200];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    put("flush.mark", big);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
    char longboot[200];
    snprintf(longboot, sizeof longboot, "kyufu store flush mark 1\nboot %.*s\nstate clean\n",
             100, big);
    put("flush.mark", longboot);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
    /* A folder where the mark should be: unreadable. */
    CHECK_EQ_INT(kyufu_store_mark_remove(store, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/flush.mark", store);
    CHECK(mkdir(path, 0700) == 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
    CHECK(rmdir(path) == 0);
    /* A FIFO there: unreadable at once (the start does not hang in open
     * or read waiting for a writer). */
    CHECK(mkfifo(path, 0600) == 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
    CHECK(unlink(path) == 0);
    /* A symlink to a well-formed clean mark: not followed, unreadable. */
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, false, err, sizeof err), 0);
    char real[450];
    snprintf(real, sizeof real, "%s/elsewhere.mark", dir);
    CHECK(rename(path, real) == 0);
    CHECK(symlink(real, path) == 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_MALFORMED);
    CHECK(unlink(path) == 0 && unlink(real) == 0);

    /* Left under the temporary name: a FIFO (blocked the open before) or
     * a symlink (refused before: the start failed) is replaced, the
     * symlink's target untouched. */
    snprintf(path, sizeof path, "%s/flush.mark.tmp", store);
    CHECK(mkfifo(path, 0600) == 0);
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, true, err, sizeof err), 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_SAME_BOOT);
    char target[450];
    snprintf(target, sizeof target, "%s/target", dir);
    FILE *tf = fopen(target, "w");
    CHECK(tf != NULL && fputs("keep\n", tf) >= 0 && fclose(tf) == 0);
    snprintf(path, sizeof path, "%s/flush.mark.tmp", store);
    CHECK(symlink(target, path) == 0);
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, false, err, sizeof err), 0);
    CHECK_EQ_INT(judge(A, mb), KYUFU_STORE_MARK_CLEAN);
    char kept[16] = "";
    tf = fopen(target, "r");
    CHECK(tf != NULL && fgets(kept, sizeof kept, tf) != NULL && fclose(tf) == 0);
    CHECK(strcmp(kept, "keep\n") == 0);
    CHECK(!exists("flush.mark.tmp"));

    /* Remove: gone, and removing nothing is fine. */
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, true, err, sizeof err), 0);
    CHECK_EQ_INT(kyufu_store_mark_remove(store, err, sizeof err), 0);
    CHECK(!exists("flush.mark"));
    CHECK_EQ_INT(kyufu_store_mark_remove(store, err, sizeof err), 0);

    /* The discard removes the LMDB files and nothing else. */
    put("data.mdb", "x");
    put("lock.mdb", "y");
    put("other", "z");
    CHECK_EQ_INT(kyufu_store_mark_write(store, A, true, err, sizeof err), 0);
    CHECK_EQ_INT(kyufu_store_mark_discard_store(store, err, sizeof err), 0);
    CHECK(!exists("data.mdb") && !exists("lock.mdb"));
    CHECK(exists("other") && exists("flush.mark"));
    CHECK_EQ_INT(kyufu_store_mark_discard_store(store, err, sizeof err), 0);

    /* The boot id: the test hook, with or without a newline; hostile
     * files are refused (the id is then unknown). */
    boot_file("abc-123\n", 0, "abc-123");
    boot_file("abc-123", 0, "abc-123");
    boot_file("", -1, "");
    boot_file("\n", -1, "");
    boot_file("abc 123\n", -1, "");
    boot_file("abc\n\n", -1, "");
    boot_file(big, -1, "");
    /* A FIFO as the boot-id file: refused at once, not waited on. */
    char fifo[300];
    snprintf(fifo, sizeof fifo, "%s/boot_fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(setenv("KYUFU_BOOT_ID_FILE", fifo, 1) == 0);
    CHECK_EQ_INT(kyufu_store_mark_boot_id(mb, err, sizeof err), -1);
    CHECK(mb[0] == '\0' && strstr(err, "not a boot id") != NULL);
    CHECK(setenv("KYUFU_BOOT_ID_FILE", "/nonexistent/boot_id", 1) == 0);
    CHECK_EQ_INT(kyufu_store_mark_boot_id(mb, err, sizeof err), -1);
    CHECK(mb[0] == '\0' && strstr(err, "/nonexistent/boot_id") != NULL);
    /* Without the hook: the kernel's. */
    CHECK(unsetenv("KYUFU_BOOT_ID_FILE") == 0);
    if (access("/proc/sys/kernel/random/boot_id", R_OK) == 0) {
        CHECK_EQ_INT(kyufu_store_mark_boot_id(mb, err, sizeof err), 0);
        CHECK_EQ_INT(strlen(mb), 36);
    }

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
