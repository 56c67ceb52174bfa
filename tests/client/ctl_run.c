/* ctl_run.h: kyufuctl in-process for the C tests. */
#include "ctl_run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl.h"

#define CTL_RUN_ARGS_MAX 64 /* the longest command line of any test */

int ctl_run(char *out_buf, size_t out_len, char *err_buf, size_t err_len,
            const char *conf, const char *first, ...)
{
    va_list ap;
    char *argv[CTL_RUN_ARGS_MAX + 1];
    int argc = 0;
    argv[argc++] = strdup("kyufuctl");
    if (conf != NULL) {
        argv[argc++] = strdup("--config");
        argv[argc++] = strdup(conf);
    }
    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        CHECK(argc < CTL_RUN_ARGS_MAX);
        argv[argc++] = strdup(a);
    }
    va_end(ap);
    argv[argc] = NULL;
    for (int i = 0; i < argc; i++) {
        CHECK(argv[i] != NULL);
    }
    memset(out_buf, 0, out_len);
    memset(err_buf, 0, err_len);
    FILE *out = fmemopen(out_buf, out_len - 1, "w");
    FILE *err = fmemopen(err_buf, err_len - 1, "w");
    CHECK(out != NULL && err != NULL);
    int rv = kyufu_ctl_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return rv;
}
