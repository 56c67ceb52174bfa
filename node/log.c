/* JSON-lines logging to stderr: see log.h. */
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "limits.h"

static enum kyufu_log_level min_level = KYUFU_LOG_INFO;
static int out_fd = STDERR_FILENO;
/* Lines start with "<N>" (sd-daemon(3) priority) when out_fd is the
 * journal's stream: see kyufu_log_detect_journal. */
static bool to_journal = false;

/* syslog(3) priorities of the levels: LOG_DEBUG, LOG_INFO, LOG_WARNING,
 * LOG_ERR (journalctl -p err shows the error lines). */
static int priority(enum kyufu_log_level level)
{
    switch (level) {
    case KYUFU_LOG_DEBUG:
        return 7;
    case KYUFU_LOG_INFO:
        return 6;
    case KYUFU_LOG_WARN:
        return 4;
    case KYUFU_LOG_ERROR:
        return 3;
    }
    return 6;
}

bool kyufu_log_detect_journal(void)
{
    /* systemd.exec(5): JOURNAL_STREAM is "DEVICE:INODE" of the stream
     * stdout/stderr were connected to; it is inherited by children whose
     * stderr may go elsewhere, so it counts only if out_fd is that stream. */
    to_journal = false;
    const char *env = getenv("JOURNAL_STREAM");
    struct stat st;
    if (env == NULL || fstat(out_fd, &st) != 0) {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long dev = strtoull(env, &end, 10);
    if (end == env || *end != ':' || errno != 0) {
        return false;
    }
    const char *ino_text = end + 1;
    unsigned long long ino = strtoull(ino_text, &end, 10);
    if (end == ino_text || *end != '\0' || errno != 0) {
        return false;
    }
    to_journal = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    return to_journal;
}

const char *kyufu_log_level_name(int level)
{
    switch (level) {
#define KYUFU_LOG__NAME(name, value, text)                                   \
    case value:                                                              \
        return text;
        KYUFU_LOG_LEVELS(KYUFU_LOG__NAME)
#undef KYUFU_LOG__NAME
    }
    return NULL;
}

int kyufu_log_level_parse(const char *text)
{
#define KYUFU_LOG__PARSE(name, value, str)                                   \
    if (strcmp(text, str) == 0) {                                            \
        return value;                                                        \
    }
    KYUFU_LOG_LEVELS(KYUFU_LOG__PARSE)
#undef KYUFU_LOG__PARSE
    return -1;
}

void kyufu_log_set_level(enum kyufu_log_level level)
{
    assert(kyufu_log_level_name((int)level) != NULL);
    min_level = level;
}

void kyufu_log_set_fd(int fd)
{
    assert(fd >= 0);
    out_fd = fd;
}

/* A bounded line buffer: appends stop silently at the end, and `cut`
 * records that something was lost so the line can say so. */
struct line
{
    char buf[KYUFU_NODE_LOG_LINE_BYTES_MAX];
    size_t len;
    bool cut;
};

/* Room for the closing ",\"cut\":true}\n" is kept aside. */
enum { LINE_TAIL_BYTES = 16 };

static void put(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - LINE_TAIL_BYTES - l->len;
    if (n > room) {
        n = room;
        l->cut = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_raw(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string: quotes, backslashes and control bytes escaped; bytes >=
 * 0x80 pass through (the node logs UTF-8 or ASCII). */
static void put_json_string(struct line *l, const char *s)
{
    if (s == NULL) {
        puts_raw(l, "null");
        return;
    }
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != 0; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            put(l, "\\\"", 2);
            break;
        case '\\':
            put(l, "\\\\", 2);
            break;
        case '\n':
            put(l, "\\n", 2);
            break;
        case '\t':
            put(l, "\\t", 2);
            break;
        case '\r':
            put(l, "\\r", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*p);
                puts_raw(l, esc);
            } else {
                put(l, (const char *)p, 1);
            }
        }
        if (l->cut) {
            break;
        }
    }
    put(l, "\"", 1);
}

static void put_time(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    char text[40];
    /* The node may read the clock; only apply may not. */
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(text + n, sizeof text - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    put_json_string(l, text);
}

void kyufu_log_write(enum kyufu_log_level level,
                     const char *msg,
                     const struct kyufu_log_field *fields,
                     size_t n)
{
    assert(kyufu_log_level_name((int)level) != NULL);
    assert(msg != NULL);
    assert(n == 0 || fields != NULL);
    if (level < min_level) {
        return;
    }
    struct line l = {.len = 0, .cut = false};
    char num[32];

    if (to_journal) {
        /* journald takes the prefix as the priority and strips it. */
        snprintf(num, sizeof num, "<%d>", priority(level));
        puts_raw(&l, num);
    }
    puts_raw(&l, "{\"time\":");
    put_time(&l);
    puts_raw(&l, ",\"level\":");
    put_json_string(&l, kyufu_log_level_name((int)level));
    size_t mark = l.len;
    puts_raw(&l, ",\"msg\":");
    put_json_string(&l, msg);
    if (l.cut) {
        /* Keep the line valid JSON: drop what does not fit, whole. */
        l.len = mark;
        l.cut = false;
        puts_raw(&l, ",\"msg\":\"(message too long)\"");
    }
    for (size_t i = 0; i < n && !l.cut; i++) {
        const struct kyufu_log_field *f = &fields[i];
        assert(f->key != NULL);
        mark = l.len;
        put(&l, ",", 1);
        put_json_string(&l, f->key);
        put(&l, ":", 1);
        switch (f->type) {
        case KYUFU_LOG_T_STR:
            put_json_string(&l, f->v.s);
            break;
        case KYUFU_LOG_T_INT:
            snprintf(num, sizeof num, "%" PRId64, f->v.i);
            puts_raw(&l, num);
            break;
        case KYUFU_LOG_T_UINT:
            snprintf(num, sizeof num, "%" PRIu64, f->v.u);
            puts_raw(&l, num);
            break;
        case KYUFU_LOG_T_BOOL:
            puts_raw(&l, f->v.u != 0 ? "true" : "false");
            break;
        case KYUFU_LOG_T_END:
        default:
            assert(false);
        }
        if (l.cut) {
            l.len = mark;
        }
    }
    /* The tail room always fits the closing text. */
    if (l.cut) {
        static const char tail[] = ",\"cut\":true}";
        memcpy(l.buf + l.len, tail, sizeof tail - 1);
        l.len += sizeof tail - 1;
    } else {
        l.buf[l.len++] = '}';
    }
    l.buf[l.len++] = '\n';
    assert(l.len <= sizeof l.buf);

    size_t off = 0;
    while (off < l.len) {
        ssize_t w = write(out_fd, l.buf + off, l.len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return; /* Nowhere to report it; logging never stops the node. */
        }
        off += (size_t)w;
    }
}
