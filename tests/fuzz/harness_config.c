/* Fuzz harness: kyufud's config parser (node/config.c) on arbitrary file
 * contents.  Properties: it never crashes, overreads or leaks (ASan), and
 * it is deterministic (the same file loaded twice gives the same verdict
 * and the same number of problems). */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char path[64];
static unsigned long inputs, accepted;

void fz_init(void)
{
    snprintf(path, sizeof path, "%s/kyufu-fuzz-config-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
}

void fz_one(const uint8_t *data, size_t size)
{
    inputs++;
    FILE *f = fopen(path, "wb");
    if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) ||
        fclose(f) != 0) {
        perror(path);
        abort();
    }
    static struct kyufu_config a, b; /* large: problems are kept inline */
    int ra = kyufu_config_load(path, &a);
    int rb = kyufu_config_load(path, &b);
    if (ra != rb || a.n_problems_all != b.n_problems_all) {
        fprintf(stderr, "FUZZ FINDING: config parse not deterministic\n");
        abort();
    }
    accepted += ra == 0;
}

void fz_report(FILE *fp)
{
    fprintf(fp, "config: %lu inputs, %lu accepted\n", inputs, accepted);
}

void fz_fini(void)
{
    unlink(path);
}
