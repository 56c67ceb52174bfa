/* Corpus replay: runs every file of the given directories through the fuzz
 * harness (harness.h), in name order, with any compiler and sanitizer, so
 * the seed corpus (and any crash input added to it) is checked in every
 * build.  Exit 0 when all ran; a finding aborts. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Largest input we replay: libFuzzer's default -max_len is 4096. */
#define REPLAY_INPUT_BYTES_MAX ((size_t)1 << 20)

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay_dir(const char *dir, size_t *count)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        perror(dir);
        return 1;
    }
    uint8_t *buf = malloc(REPLAY_INPUT_BYTES_MAX);
    if (buf == NULL) {
        return 1;
    }
    int rv = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        if (names[i]->d_name[0] == '.') {
            free(names[i]);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        free(names[i]);
        FILE *fp = fopen(path, "rb");
        if (fp == NULL) {
            perror(path);
            rv = 1;
            continue;
        }
        size_t len = fread(buf, 1, REPLAY_INPUT_BYTES_MAX, fp);
        fclose(fp);
        fz_one(buf, len);
        (*count)++;
    }
    free(names);
    free(buf);
    return rv;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s corpus-dir...\n", argv[0]);
        return 2;
    }
    fz_init();
    size_t count = 0;
    int rv = 0;
    for (int i = 1; i < argc; i++) {
        rv |= replay_dir(argv[i], &count);
    }
    fz_report(stdout);
    fz_fini();
    printf("%zu inputs replayed\n", count);
    if (count == 0) {
        fprintf(stderr, "no inputs: the corpus is missing\n");
        return 1;
    }
    return rv;
}
