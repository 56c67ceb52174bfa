/* Reading a directory of backups and removing one backup folder: see
 * backup_retention.h and docs/backup.md "Retention".  Runs on a work
 * thread (directory reads, one manifest and signature per backup). */
/* renameat2, RENAME_NOREPLACE: _GNU_SOURCE (project-wide) */
#include "backup_retention.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether name is a file a backup holds (backup_write.c writes these and
 * nothing else). */
static bool backup_file(const char *name)
{
    if (strcmp(name, KYUFU_BACKUP_MANIFEST) == 0 ||
        strcmp(name, KYUFU_BACKUP_SIGNATURE) == 0 ||
        strcmp(name, KYUFU_BACKUP_CERT) == 0) {
        return true;
    }
    /* chunk-NNNNNN.bin */
    if (strlen(name) != 16 || strncmp(name, "chunk-", 6) != 0 ||
        strcmp(name + 12, ".bin") != 0) {
        return false;
    }
    for (int i = 6; i < 12; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
    }
    return true;
}

/* The latest place in the ledger (and, at one place, the latest time)
 * seen among the good backups dated in the future, or among the others. */
struct place
{
    bool seen;
    uint64_t term;
    uint64_t index;
    int64_t created_ms;
};

/* The future head (backup_retention.h) is the latest place dated in the
 * future when it is later than every place not: kyufu_backup_order's rule,
 * under which only such a backup counts at now, kept here without
 * holding every backup. */
static void note_place(const struct kyufu_backup_manifest *m,
                       int64_t now_ms,
                       struct place *past,
                       struct place *future)
{
    struct place *p = m->created_ms > now_ms ? future : past;
    int c = kyufu_backup_ledger_cmp(m->applied_term, m->applied_index,
                                    p->term, p->index);
    if (!p->seen || c > 0 || (c == 0 && m->created_ms > p->created_ms)) {
        p->seen = true;
        p->term = m->applied_term;
        p->index = m->applied_index;
        p->created_ms = m->created_ms;
    }
}

int kyufu_backup_scan(const char *parent,
                      const char *ca_path,
                      int64_t now_ms,
                      struct kyufu_backup_scan *s,
                      char *errmsg,
                      size_t errmsg_len)
{
    struct place past = {0}, future = {0};
    memset(s, 0, sizeof *s);
    DIR *d = opendir(parent);
    if (d == NULL) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", parent,
                 strerror(errno));
        return -1;
    }
    size_t cap = 0, seen = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        char path[KYUFU_BACKUP_PATH_BYTES_MAX], why[256];
        struct stat st;
        if (e->d_name[0] == '.') {
            continue; /* ., .., and temporaries being written or removed */
        }
        if (++seen > KYUFU_BACKUP_SCAN_MAX) {
            snprintf(errmsg, errmsg_len,
                     "%s holds more than %u entries: not a backup directory "
                     "the schedule can manage",
                     parent, KYUFU_BACKUP_SCAN_MAX);
            goto fail;
        }
        int w = snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
        if (w < 0 || (size_t)w >= sizeof path || lstat(path, &st) != 0 ||
            !S_ISDIR(st.st_mode)) {
            errno = 0;
            continue; /* not a backup folder: not ours to judge */
        }
        struct kyufu_backup_verify_result res;
        if (!kyufu_backup_name_ok(e->d_name) ||
            kyufu_backup_verify(path, ca_path, NULL, NULL, &res, why,
                                sizeof why) != 0) {
            s->n_bad++;
            errno = 0;
            continue;
        }
        s->n_good++;
        note_place(&res.m, now_ms, &past, &future);
        if (res.m.created_ms <= now_ms &&
            res.m.created_ms > s->newest_past_ms) {
            s->newest_past_ms = res.m.created_ms;
        }
        if (kyufu_backup_auto_name_ok(e->d_name)) {
            if (s->n_owned == cap) {
                size_t ncap = cap == 0 ? 16 : cap * 2;
                void *p = realloc(s->owned, ncap * sizeof *s->owned);
                if (p == NULL) {
                    kyufu_backup_manifest_free(&res.m);
                    snprintf(errmsg, errmsg_len, "out of memory");
                    goto fail;
                }
                s->owned = p;
                cap = ncap;
            }
            struct kyufu_backup_aged *a = &s->owned[s->n_owned++];
            /* kyufu_backup_name_ok: at most KYUFU_BACKUP_NAME_BYTES_MAX */
            memcpy(a->name, e->d_name, strlen(e->d_name) + 1);
            a->created_ms = res.m.created_ms;
            a->term = res.m.applied_term;
            a->index = res.m.applied_index;
            a->at_ms = res.m.created_ms;
            a->keep = false;
        }
        kyufu_backup_manifest_free(&res.m);
        errno = 0;
    }
    if (errno != 0) {
        snprintf(errmsg, errmsg_len, "cannot read %s: %s", parent,
                 strerror(errno));
        goto fail;
    }
    closedir(d);
    if (future.seen &&
        (!past.seen || kyufu_backup_ledger_cmp(future.term, future.index,
                                               past.term, past.index) > 0)) {
        s->head_term = future.term;
        s->head_index = future.index;
        s->head_created_ms = future.created_ms;
    }
    return 0;
fail:
    closedir(d);
    kyufu_backup_scan_free(s);
    return -1;
}

void kyufu_backup_scan_free(struct kyufu_backup_scan *s)
{
    free(s->owned);
    memset(s, 0, sizeof *s);
}

/* Whether every entry of the folder dirfd is a backup's regular file. */
static int only_backup_files(int dirfd,
                             const char *name,
                             char *errmsg,
                             size_t errmsg_len)
{
    int fd = dup(dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        snprintf(errmsg, errmsg_len, "cannot read %s: %s", name,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    rewinddir(d); /* a dup shares the offset of dirfd */
    int rv = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (!backup_file(e->d_name) ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
            snprintf(errmsg, errmsg_len,
                     "%s holds %s, which is not a backup's file: left as "
                     "it is",
                     name, e->d_name);
            rv = -1;
            break;
        }
    }
    closedir(d);
    return rv;
}

int kyufu_backup_remove(const char *parent,
                        const char *name,
                        char *errmsg,
                        size_t errmsg_len)
{
    char hidden[KYUFU_BACKUP_NAME_BYTES_MAX + 16];
    if (!kyufu_backup_name_ok(name)) {
        snprintf(errmsg, errmsg_len, "'%s' is not a backup name", name);
        return -1;
    }
    int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", parent,
                 strerror(errno));
        return -1;
    }
    int rv = -1;
    int dfd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
                                    O_CLOEXEC);
    if (dfd < 0) {
        snprintf(errmsg, errmsg_len, "cannot open %s: %s", name,
                 strerror(errno));
        goto out;
    }
    if (only_backup_files(dfd, name, errmsg, errmsg_len) != 0) {
        goto out;
    }
    snprintf(hidden, sizeof hidden, ".%s.removing", name);
    if (renameat2(pfd, name, pfd, hidden, RENAME_NOREPLACE) != 0) {
        snprintf(errmsg, errmsg_len, "cannot rename %s to %s: %s", name,
                 hidden, strerror(errno));
        goto out;
    }
    /* The folder moved with its descriptor: unlink through it. */
    int dfd2 = dup(dfd);
    DIR *d = dfd2 < 0 ? NULL : fdopendir(dfd2);
    if (d == NULL) {
        snprintf(errmsg, errmsg_len, "cannot read %s: %s", hidden,
                 strerror(errno));
        if (dfd2 >= 0) {
            close(dfd2);
        }
        goto out;
    }
    rewinddir(d); /* only_backup_files read the shared offset to the end */
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (backup_file(e->d_name) && unlinkat(dfd, e->d_name, 0) != 0 &&
            errno != ENOENT) {
            snprintf(errmsg, errmsg_len, "cannot remove %s/%s: %s", hidden,
                     e->d_name, strerror(errno));
            closedir(d);
            goto out;
        }
    }
    closedir(d);
    if (unlinkat(pfd, hidden, AT_REMOVEDIR) != 0) {
        snprintf(errmsg, errmsg_len, "cannot remove %s: %s", hidden,
                 strerror(errno));
        goto out;
    }
    if (fsync(pfd) != 0) {
        snprintf(errmsg, errmsg_len, "cannot fsync %s: %s", parent,
                 strerror(errno));
        goto out;
    }
    rv = 0;
out:
    if (dfd >= 0) {
        close(dfd);
    }
    close(pfd);
    return rv;
}
