/* See rm_tree.h. */
#include "rm_tree.h"

#include <ftw.h>
#include <stdio.h>

static int rm_entry(const char *p, const struct stat *st, int f,
                    struct FTW *w)
{
    (void)st;
    (void)f;
    (void)w;
    return remove(p);
}

int test_rm_tree(const char *dir)
{
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
