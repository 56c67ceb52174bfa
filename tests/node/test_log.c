/* kyufud's log lines under systemd: when stderr is the journal's stream
 * (JOURNAL_STREAM names its device and inode) every line starts with the
 * sd-daemon priority of its level, so `journalctl -p err` finds the errors;
 * anywhere else (a file, a pipe, a JOURNAL_STREAM inherited by a process
 * whose stderr went elsewhere, a malformed value) lines are plain JSON. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "../client/check.h"
#include "log.h"

static char text[65536];

/* Log one line per level to a fresh file; its contents in `text`. */
static void log_all(int fd)
{
    CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
    kyufu_log(KYUFU_LOG_ERROR, "e", KYUFU_LOG_U("n", 1));
    kyufu_log(KYUFU_LOG_WARN, "w", KYUFU_LOG_U("n", 2));
    kyufu_log0(KYUFU_LOG_INFO, "i");
    kyufu_log0(KYUFU_LOG_DEBUG, "d");
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    CHECK(n > 0);
    text[n] = '\0';
}

/* Each line: the expected prefix (or none), then one JSON object. */
static void check_lines(const char *const prefixes[4])
{
    static const char *const msgs[4] = { "e", "w", "i", "d" };
    char *save = NULL;
    int i = 0;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), i++) {
        CHECK(i < 4);
        size_t pl = strlen(prefixes[i]);
        CHECK(strncmp(line, prefixes[i], pl) == 0);
        CHECK(line[pl] == '{');
        json_t *j = json_loads(line + pl, 0, NULL);
        CHECK(j != NULL);
        CHECK(strcmp(json_string_value(json_object_get(j, "msg")), msgs[i]) == 0);
        json_decref(j);
    }
    CHECK(i == 4);
}

int main(void)
{
    char path[] = "/tmp/kyufu-test-log-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    kyufu_log_set_fd(fd);
    kyufu_log_set_level(KYUFU_LOG_DEBUG);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    static const char *const journal[4] = { "<3>", "<4>", "<6>", "<7>" };
    static const char *const plain[4] = { "", "", "", "" };

    /* No JOURNAL_STREAM: plain JSON lines. */
    unsetenv("JOURNAL_STREAM");
    CHECK(!kyufu_log_detect_journal());
    log_all(fd);
    check_lines(plain);

    /* The log fd is the journal stream: priorities. */
    char env[64];
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
    CHECK(kyufu_log_detect_journal());
    log_all(fd);
    check_lines(journal);

    /* Inherited but not ours (another inode, another device): plain. */
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino + 1);
    CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
    CHECK(!kyufu_log_detect_journal());
    log_all(fd);
    check_lines(plain);
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev + 1,
             (unsigned long long)st.st_ino);
    CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
    CHECK(!kyufu_log_detect_journal());

    /* Malformed values are ignored, never half-parsed. */
    static const char *const bad[] = { "", "abc", "1", "1:", ":2", "1:2x", "x1:2",
                                       "99999999999999999999999:1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(setenv("JOURNAL_STREAM", bad[i], 1) == 0);
        CHECK(!kyufu_log_detect_journal());
    }
    snprintf(env, sizeof env, "%llu:%llux", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
    CHECK(!kyufu_log_detect_journal());

    /* A pipe while JOURNAL_STREAM names the file: plain. */
    snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    CHECK(setenv("JOURNAL_STREAM", env, 1) == 0);
    int p[2];
    CHECK(pipe(p) == 0);
    kyufu_log_set_fd(p[1]);
    CHECK(!kyufu_log_detect_journal());
    close(p[0]);
    close(p[1]);
    close(fd);
    printf("ok\n");
    return 0;
}
