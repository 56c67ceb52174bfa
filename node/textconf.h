/* What the two strict line parsers of text files (config.c for kyufud.conf,
 * slo.c for the SLO file) share: the list of problems they report and the
 * decimal numbers they read.  No dependency beyond the C library: slo.c is
 * built into kyufuctl too. */
#ifndef KYUFU_NODE_TEXTCONF_H
#define KYUFU_NODE_TEXTCONF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One problem in a file, for a person to fix. */
struct kyufu_textconf_problem
{
    unsigned line;      /* 1-based; 0 when no line applies (missing key) */
    char section[16];   /* "" when not tied to a section */
    char key[32];       /* "" when not tied to a key */
    char message[320];
};

/* Counts the problem in *N_ALL and, while *N < MAX, describes it in
 * LIST[*N] (*N then one more); SECTION, KEY and the message are cut to
 * fit. */
void kyufu_textconf_report(struct kyufu_textconf_problem *list, size_t max,
                           size_t *n, size_t *n_all, unsigned line,
                           const char *section, const char *key,
                           const char *fmt, va_list ap)
    __attribute__((format(printf, 8, 0)));

/* A decimal integer in [MIN, MAX]: digits only (no sign, no blanks), at
 * least one.  True with *OUT set, or false with *OUT untouched. */
bool kyufu_textconf_parse_uint(const char *s, uint64_t min, uint64_t max,
                               uint64_t *out);

#endif
