/* Whether a folder is a mount point, read from the kernel's mount table
 * (docs/backup.md "Mount check"): see backup_retention.h.  Reads only the
 * mount table (procfs), never the folder, so a hung NFS server cannot hang
 * the check. */
#include "backup_retention.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Undo mountinfo's octal escapes in place: the kernel writes a space, tab,
 * newline and backslash in a path as \040, \011, \012 and \134. */
static void unescape(char *s)
{
    char *w = s;
    for (const char *r = s; *r != '\0'; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

int kyufu_backup_mount_point(const char *mountinfo,
                             const char *path,
                             uint64_t *mnt_id,
                             char *errmsg,
                             size_t errmsg_len)
{
    FILE *f = fopen(mountinfo, "re");
    if (f == NULL) {
        snprintf(errmsg, errmsg_len, "cannot read %s: %s", mountinfo,
                 strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0;
    int rv = 0;
    /* "ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS ...": the fifth field;
     * the last line naming path is the mount on top (later mounts on the
     * same point hide earlier ones), so the whole table is read. */
    while (rv >= 0 && getline(&line, &cap, f) >= 0) {
        char *save = NULL, *field = strtok_r(line, " \n", &save);
        unsigned long long id;
        char end;
        lineno++;
        bool id_ok = field != NULL && sscanf(field, "%llu%c", &id, &end) == 1;
        for (int i = 0; i < 4 && field != NULL; i++) {
            field = strtok_r(NULL, " \n", &save);
        }
        if (field == NULL || !id_ok) {
            snprintf(errmsg, errmsg_len,
                     "%s line %u: no mount id or mount point field",
                     mountinfo, lineno);
            rv = -1;
            break;
        }
        unescape(field);
        if (strcmp(field, path) == 0) {
            rv = 1;
            if (mnt_id != NULL) {
                *mnt_id = id;
            }
        }
    }
    if (rv >= 0 && ferror(f)) {
        snprintf(errmsg, errmsg_len, "cannot read %s", mountinfo);
        rv = -1;
    }
    free(line);
    fclose(f);
    return rv;
}
