/* Problems and numbers of the strict text parsers: see textconf.h. */
#include "textconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

void kyufu_textconf_report(struct kyufu_textconf_problem *list, size_t max,
                           size_t *n, size_t *n_all, unsigned line,
                           const char *section, const char *key,
                           const char *fmt, va_list ap)
{
    (*n_all)++;
    if (*n >= max) {
        return;
    }
    struct kyufu_textconf_problem *p = &list[(*n)++];
    p->line = line;
    snprintf(p->section, sizeof p->section, "%s", section);
    snprintf(p->key, sizeof p->key, "%s", key);
    vsnprintf(p->message, sizeof p->message, fmt, ap);
}

bool kyufu_textconf_parse_uint(const char *s, uint64_t min, uint64_t max,
                               uint64_t *out)
{
    if (*s == '\0') {
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}
