/* kyufud logging: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-25T19:47:03.123Z","level":"info","msg":"leader elected",
 *    "node":1,"leader":2}
 *
 * Fields are typed key/value pairs; strings are JSON-escaped here, so a
 * message or value may hold anything.  A line is written with one write(2)
 * so lines of the node never interleave; a line longer than
 * KYUFU_NODE_LOG_LINE_BYTES_MAX is cut.  Under systemd's journal each line
 * starts with its priority ("<3>{...}": kyufu_log_detect_journal).  Lines below the configured level are
 * dropped before they are formatted.  Used from the loop thread only. */
#ifndef KYUFU_NODE_LOG_H
#define KYUFU_NODE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KYUFU_LOG_LEVELS(X)                                                  \
    X(DEBUG, 0, "debug")                                                     \
    X(INFO, 1, "info")                                                       \
    X(WARN, 2, "warn")                                                       \
    X(ERROR, 3, "error")

enum kyufu_log_level {
#define KYUFU_LOG__ENUM(name, value, text) KYUFU_LOG_##name = value,
    KYUFU_LOG_LEVELS(KYUFU_LOG__ENUM)
#undef KYUFU_LOG__ENUM
};

enum kyufu_log_type { KYUFU_LOG_T_END = 0, KYUFU_LOG_T_STR, KYUFU_LOG_T_INT,
                      KYUFU_LOG_T_UINT, KYUFU_LOG_T_BOOL };

struct kyufu_log_field
{
    enum kyufu_log_type type;
    const char *key;
    union {
        const char *s; /* NULL is written as null */
        int64_t i;
        uint64_t u;
    } v;
};

/* Field constructors, e.g. KYUFU_LOG_U("term", term). */
#define KYUFU_LOG_S(k, x)                                                    \
    ((struct kyufu_log_field){.type = KYUFU_LOG_T_STR, .key = (k), .v.s = (x)})
#define KYUFU_LOG_I(k, x)                                                    \
    ((struct kyufu_log_field){.type = KYUFU_LOG_T_INT, .key = (k),           \
                              .v.i = (int64_t)(x)})
#define KYUFU_LOG_U(k, x)                                                    \
    ((struct kyufu_log_field){.type = KYUFU_LOG_T_UINT, .key = (k),          \
                              .v.u = (uint64_t)(x)})
#define KYUFU_LOG_B(k, x)                                                    \
    ((struct kyufu_log_field){.type = KYUFU_LOG_T_BOOL, .key = (k),          \
                              .v.u = (x) ? 1u : 0u})

/* Static name of a level ("info"); NULL for a value outside the enum. */
const char *kyufu_log_level_name(int level);
/* Parse "debug" | "info" | "warn" | "error"; returns -1 for anything else. */
int kyufu_log_level_parse(const char *text);

/* Lines below `level` are dropped from now on. */
void kyufu_log_set_level(enum kyufu_log_level level);
/* Write lines to fd instead of stderr (tests); call
 * kyufu_log_detect_journal again after. */
void kyufu_log_set_fd(int fd);

/* When the log fd is the journal's stream (the environment's
 * JOURNAL_STREAM, "DEVICE:INODE", names the fd's device and inode: kyufud
 * started by systemd with StandardError=journal), start every line with its
 * sd-daemon priority "<3>" error, "<4>" warn, "<6>" info, "<7>" debug, so
 * journalctl -p err finds the errors (journald strips the prefix).
 * Otherwise, or when JOURNAL_STREAM is malformed, lines are plain JSON.
 * Returns whether the prefix is on.  Called once at start by main. */
bool kyufu_log_detect_journal(void);

/* Write one line; `fields` has n entries. */
void kyufu_log_write(enum kyufu_log_level level,
                     const char *msg,
                     const struct kyufu_log_field *fields,
                     size_t n);

/* kyufu_log(level, msg, field...): the usual entry point.  The fields are a
 * compound-literal array, so the count comes from sizeof and there is no
 * sentinel to forget.  At least one field is required; use kyufu_log0 for a
 * message alone. */
#define kyufu_log(level, msg, ...)                                           \
    kyufu_log_write((level), (msg),                                          \
                    (const struct kyufu_log_field[]){__VA_ARGS__},           \
                    sizeof((const struct kyufu_log_field[]){__VA_ARGS__}) /  \
                        sizeof(struct kyufu_log_field))
#define kyufu_log0(level, msg) kyufu_log_write((level), (msg), NULL, 0)

#endif /* KYUFU_NODE_LOG_H */
