/* The inventory and the erasure of node/decommission_erase.c
 * (docs/decommission.md "What is erased, and how"): every file under a
 * tree with its size and SHA-256 before erasure, keys/ marked as keys, a
 * missing root adding nothing; after the erasure no file or folder is
 * left, a symbolic link is removed without its target being touched, and
 * a file that cannot be erased is reported with its error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "decommission.h"

static int failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static char top[256];

static void write_file(const char *rel, const char *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", top, rel);
    FILE *f = fopen(p, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", p);
        exit(1);
    }
}

static void mkd(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", top, rel);
    if (mkdir(p, 0700) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", p, strerror(errno));
        exit(1);
    }
}

static const struct kyufu_decom_file *find(const struct kyufu_decom_inventory *inv,
                                           const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", top, rel);
    for (size_t i = 0; i < inv->n; i++) {
        if (strcmp(inv->files[i].path, p) == 0) {
            return &inv->files[i];
        }
    }
    return NULL;
}

static bool exists(const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", top, rel);
    return lstat(p, &st) == 0;
}

static void inventory_and_erase(void)
{
    static const char ledger[] = "Yamada Taro, 1-2-3 Chuo, 1234567";
    static const char key[] = "wrapped cluster master key bytes";
    mkd("data");
    mkd("data/keys");
    mkd("data/raft");
    mkd("data/raft/snap");
    mkd("outside");
    write_file("data/ledger", ledger, sizeof ledger - 1);
    write_file("data/keys/cmk", key, sizeof key - 1);
    write_file("data/raft/0000001-0000009", "segment", 7);
    write_file("data/raft/empty", "", 0);
    write_file("data/raft/snap/snapshot-1", "snap", 4);
    write_file("outside/target", "keep me", 7);
    char link[512], target[512];
    snprintf(link, sizeof link, "%s/data/raft/link", top);
    snprintf(target, sizeof target, "%s/outside/target", top);
    CHECK(symlink(target, link) == 0);

    struct kyufu_decom_inventory inv;
    memset(&inv, 0, sizeof inv);
    char err[256] = "";
    char root[512], missing[512];
    snprintf(root, sizeof root, "%s/data", top);
    snprintf(missing, sizeof missing, "%s/no-backups", top);
    CHECK(kyufu_decom_add_tree(&inv, root, KYUFU_DECOM_DATA, "keys", err,
                               sizeof err) == 0);
    CHECK(kyufu_decom_add_tree(&inv, missing, KYUFU_DECOM_BACKUP, NULL, err,
                               sizeof err) == 0);
    CHECK(kyufu_decom_add_file(&inv, missing, KYUFU_DECOM_KEY, err,
                               sizeof err) == 0);
    CHECK(inv.n == 6);
    CHECK(inv.n_dirs == 4);
    const struct kyufu_decom_file *f = find(&inv, "data/ledger");
    uint8_t want[32];
    CHECK(f != NULL && f->kind == KYUFU_DECOM_DATA && f->regular &&
          f->size == sizeof ledger - 1);
    SHA256((const uint8_t *)ledger, sizeof ledger - 1, want);
    CHECK(f != NULL && memcmp(f->sha256, want, 32) == 0);
    f = find(&inv, "data/keys/cmk");
    CHECK(f != NULL && f->kind == KYUFU_DECOM_KEY && f->size == sizeof key - 1);
    SHA256((const uint8_t *)key, sizeof key - 1, want);
    CHECK(f != NULL && memcmp(f->sha256, want, 32) == 0);
    f = find(&inv, "data/raft/empty");
    SHA256((const uint8_t *)"", 0, want);
    CHECK(f != NULL && f->size == 0 && memcmp(f->sha256, want, 32) == 0);
    f = find(&inv, "data/raft/link");
    CHECK(f != NULL && !f->regular && f->size == 0);

    CHECK(kyufu_decom_erase(&inv) == 0);
    for (size_t i = 0; i < inv.n; i++) {
        CHECK(inv.files[i].removed && inv.files[i].error == 0);
        CHECK(inv.files[i].overwritten == inv.files[i].regular);
    }
    CHECK(inv.dirs_left == 0);
    CHECK(!exists("data"));
    CHECK(exists("outside/target")); /* the link's target is untouched */
    char buf[16] = "";
    FILE *t = fopen(target, "rb");
    CHECK(t != NULL && fread(buf, 1, sizeof buf, t) == 7 &&
          memcmp(buf, "keep me", 7) == 0);
    if (t != NULL) {
        fclose(t);
    }
    kyufu_decom_inventory_free(&inv);
}

/* A file that can no longer be erased (gone between the inventory and the
 * erasure) is reported with its error, and the rest is still erased. */
static void failure_is_reported(void)
{
    mkd("gone");
    write_file("gone/a", "a", 1);
    write_file("gone/b", "b", 1);
    char p[512], a[512];
    snprintf(p, sizeof p, "%s/gone", top);
    snprintf(a, sizeof a, "%s/gone/a", top);
    struct kyufu_decom_inventory inv;
    memset(&inv, 0, sizeof inv);
    char err[256];
    CHECK(kyufu_decom_add_tree(&inv, p, KYUFU_DECOM_DATA, NULL, err, sizeof err) == 0);
    CHECK(inv.n == 2);
    CHECK(unlink(a) == 0);
    CHECK(kyufu_decom_erase(&inv) == -1);
    const struct kyufu_decom_file *fa = find(&inv, "gone/a");
    const struct kyufu_decom_file *fb = find(&inv, "gone/b");
    CHECK(fa != NULL && !fa->overwritten && !fa->removed && fa->error == ENOENT);
    CHECK(fb != NULL && fb->overwritten && fb->removed && fb->error == 0);
    CHECK(inv.dirs_left == 0 && !exists("gone"));
    kyufu_decom_inventory_free(&inv);
}

static void refusals(void)
{
    struct kyufu_decom_inventory inv;
    memset(&inv, 0, sizeof inv);
    char err[256] = "";
    char p[512];
    /* A root that is a file is not a folder to walk. */
    write_file("plain", "x", 1);
    snprintf(p, sizeof p, "%s/plain", top);
    CHECK(kyufu_decom_add_tree(&inv, p, KYUFU_DECOM_DATA, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "not a folder") != NULL);
    /* Deeper than the bound. */
    char rel[512] = "deep";
    mkd(rel);
    for (int i = 0; i < 18; i++) {
        strcat(rel, "/d");
        mkd(rel);
    }
    snprintf(p, sizeof p, "%s/deep", top);
    CHECK(kyufu_decom_add_tree(&inv, p, KYUFU_DECOM_DATA, NULL, err, sizeof err) == -1);
    CHECK(strstr(err, "deep") != NULL);
    kyufu_decom_inventory_free(&inv);
}

/* The filter kyufud gives: here, the folders whose name ends in arg. */
static bool name_ends(const char *path, const void *arg)
{
    const char *suffix = arg;
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && strcmp(path + n - k, suffix) == 0;
}

/* The backups under a [backup] directory: every sub-folder the filter
 * takes (a backup of this node) is listed and erased with its files;
 * another's backup, the directory itself, a file directly in it and a
 * link to a folder outside stay. */
static void backups_under_directory(void)
{
    struct kyufu_decom_inventory inv;
    memset(&inv, 0, sizeof inv);
    char err[256] = "", p[512], target[512];
    mkd("bk");
    mkd("bk/b1");
    write_file("bk/b1/manifest.json", "{}", 2);
    write_file("bk/b1/chunk-000000.bin", "sealed", 6);
    mkd("bk/b2");
    write_file("bk/b2/chunk-000000.bin", "more", 4);
    mkd("bk/b3-other");
    write_file("bk/b3-other/chunk-000000.bin", "theirs", 6);
    write_file("bk/README", "operator's", 10);
    mkd("bk-outside");
    write_file("bk-outside/keep", "k", 1);
    snprintf(target, sizeof target, "%s/bk-outside", top);
    snprintf(p, sizeof p, "%s/bk/link", top);
    CHECK(symlink(target, p) == 0);
    snprintf(p, sizeof p, "%s/bk", top);
    CHECK(kyufu_decom_add_children(&inv, p, KYUFU_DECOM_BACKUP, NULL, NULL,
                                   err, sizeof err) == 0);
    CHECK(inv.n == 4); /* no filter: every backup */
    kyufu_decom_inventory_free(&inv);
    memset(&inv, 0, sizeof inv);
    CHECK(kyufu_decom_add_children(&inv, p, KYUFU_DECOM_BACKUP, name_ends,
                                   "b1", err, sizeof err) == 0);
    CHECK(kyufu_decom_add_children(&inv, p, KYUFU_DECOM_BACKUP, name_ends,
                                   "b2", err, sizeof err) == 0);
    CHECK(inv.n == 3);
    const struct kyufu_decom_file *f = find(&inv, "bk/b1/chunk-000000.bin");
    CHECK(f != NULL && f->kind == KYUFU_DECOM_BACKUP && f->size == 6);
    CHECK(find(&inv, "bk/README") == NULL && find(&inv, "bk/link") == NULL);
    CHECK(kyufu_decom_erase(&inv) == 0);
    CHECK(!exists("bk/b1") && !exists("bk/b2"));
    CHECK(exists("bk/b3-other/chunk-000000.bin"));
    CHECK(exists("bk") && exists("bk/README") && exists("bk/link") &&
          exists("bk-outside/keep"));
    kyufu_decom_inventory_free(&inv);
    /* A missing directory adds nothing; a file is refused. */
    memset(&inv, 0, sizeof inv);
    snprintf(p, sizeof p, "%s/no-such-bk", top);
    CHECK(kyufu_decom_add_children(&inv, p, KYUFU_DECOM_BACKUP, NULL, NULL,
                                   err, sizeof err) == 0 && inv.n == 0);
    snprintf(p, sizeof p, "%s/bk/README", top);
    CHECK(kyufu_decom_add_children(&inv, p, KYUFU_DECOM_BACKUP, NULL, NULL,
                                   err, sizeof err) == -1 && err[0] != '\0');
    kyufu_decom_inventory_free(&inv);
}

int main(void)
{
    const char *base = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(top, sizeof top, "%s/kyufu-decom-XXXXXX", base);
    if (mkdtemp(top) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    inventory_and_erase();
    failure_is_reported();
    refusals();
    backups_under_directory();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", top);
    }
    if (failures != 0) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("decommission erase tests: ok\n");
    return 0;
}
