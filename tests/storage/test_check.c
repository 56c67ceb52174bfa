/* The structural check of a stopped store (storage.h kyufu_storage_check and
 * kyufu_storage_check_isolated): a sound store passes and is not changed; a
 * store damaged so that LMDB reports an error, or so that reading it
 * crashes, is CORRUPT, and the crash kills only the check's child.
 *
 * The damage is done to a compacted copy (kyufu_storage_compact), which has
 * no free pages: every page the test damages is one a lookup reaches.  The
 * page layout read here is LMDB 0.9's (mdb.c: a 16-byte header pgno, pad,
 * flags, lower, upper; then 2-byte node offsets; a node is lo, hi, flags,
 * ksize, then the key: a branch node's child page number is lo | hi << 16 |
 * flags << 32, a leaf node's value size lo | hi << 16).
 *
 *   test_check [CASE]
 *   KYUFU_CHECK_SCALE=N test_check measure   N households (default 20000):
 *                                            the store's size, the walk's time
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"

#define PAGE_HDR_BYTES 16u
#define P_BRANCH 0x01u
#define P_LEAF 0x02u
#define F_BIGDATA 0x01u
#define F_SUBDATA 0x02u

struct file {
    uint8_t *bytes;
    size_t size;
};

static void file_read(const char *dir, struct file *out)
{
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    FILE *fp = fopen(p, "rb");
    CHECK(fp != NULL);
    struct stat st;
    CHECK(fstat(fileno(fp), &st) == 0);
    out->size = (size_t)st.st_size;
    out->bytes = malloc(out->size);
    CHECK(out->bytes != NULL);
    CHECK(fread(out->bytes, 1, out->size, fp) == out->size);
    fclose(fp);
}

static void file_write(const char *dir, const struct file *f)
{
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    FILE *fp = fopen(p, "r+b");
    CHECK(fp != NULL);
    CHECK(fwrite(f->bytes, 1, f->size, fp) == f->size);
    CHECK(fclose(fp) == 0);
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void put16(uint8_t *p, uint16_t v)
{
    memcpy(p, &v, 2);
}

/* LMDB's page size, from meta page 0 (its md_psize follows the 16-byte page
 * header, magic, version, address and map size: offset 16 + 24,
 * mm_dbs[0].md_pad). */
static size_t page_size(const struct file *f)
{
    uint32_t psize;
    memcpy(&psize, f->bytes + PAGE_HDR_BYTES + 24, 4);
    CHECK(psize >= 512 && (psize & (psize - 1)) == 0);
    return psize;
}

/* The first page (after the two meta pages) with flags `want`. */
static uint8_t *find_page(const struct file *f, uint16_t want)
{
    size_t ps = page_size(f);
    for (size_t off = 2 * ps; off + ps <= f->size; off += ps) {
        if ((get16(f->bytes + off + 10) & 0xffu) == want) {
            return f->bytes + off;
        }
    }
    return NULL;
}

static void ok(struct fx *f, Kyufu__V1__Command *c)
{
    Kyufu__V1__CommandResult *r = fx_apply(f, c);
    CHECK_CODE(r, KYUFU__V1__CODE__OK);
    fx_free(r);
    kyufu__v1__command__free_unpacked(c, NULL);
}

/* A closed, compacted store of the standard world and n households. */
static void build(struct fx *f, unsigned n)
{
    char no[32];
    fx_open(f);
    fx_world(f);
    for (unsigned i = 0; i < n; i++) {
        snprintf(no, sizeof no, "C-%06u", i);
        ok(f, c_register_household(f, "clerk", no));
    }
    fx_close(f);
    struct kyufu_storage_compact_result res;
    char err[256] = "";
    if (kyufu_storage_compact(f->dir, &res, err, sizeof err) != 0) {
        t_fail(__FILE__, __LINE__, "compact: %s", err);
    }
}

static void check_sound_store(void)
{
    struct fx f;
    build(&f, 300);
    struct file before, after;
    file_read(f.dir, &before);
    char err[512] = "";
    int rv = kyufu_storage_check(f.dir, err, sizeof err);
    if (rv != 0) {
        t_fail(__FILE__, __LINE__, "check: %s", err);
    }
    CHECK_EQ(kyufu_storage_check_isolated(f.dir, err, sizeof err), 0);
    file_read(f.dir, &after);
    CHECK_EQ(after.size, before.size);
    CHECK(memcmp(after.bytes, before.bytes, before.size) == 0);
    free(before.bytes);
    free(after.bytes);
    /* The store still opens and holds the ledger. */
    fx_reopen(&f);
    fx_invariants(&f);
    fx_close(&f);
}

static void check_no_store(void)
{
    char err[512] = "";
    CHECK_EQ(kyufu_storage_check(t_dir, err, sizeof err), 0);
    CHECK_EQ(kyufu_storage_check_isolated(t_dir, err, sizeof err), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", t_dir);
    CHECK(access(p, F_OK) != 0); /* nothing made */
    CHECK_EQ(kyufu_storage_check("", err, sizeof err), KYUFU_STORAGE_EINVALID);
    /* An empty data.mdb (a power cut during the very first open): not
     * damage; the open initialises it, as before the check existed. */
    FILE *e = fopen(p, "w");
    CHECK(e != NULL);
    fclose(e);
    CHECK_EQ(kyufu_storage_check(t_dir, err, sizeof err), 0);
    CHECK_EQ(kyufu_storage_check_isolated(t_dir, err, sizeof err), 0);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == 0); /* untouched */
    CHECK(unlink(p) == 0);
}

/* A branch page's first child page number far past the file: LMDB says
 * MDB_PAGE_NOTFOUND, the check CORRUPT (in this process and in a child). */
static void check_bad_child_pgno(void)
{
    struct fx f;
    build(&f, 300);
    struct file d;
    file_read(f.dir, &d);
    uint8_t *page = find_page(&d, P_BRANCH);
    CHECK(page != NULL); /* 300 households need more than one leaf */
    uint8_t *node = page + get16(page + PAGE_HDR_BYTES);
    put16(node, 0xffff);     /* lo */
    put16(node + 2, 0xffff); /* hi */
    file_write(f.dir, &d);
    char err[512] = "";
    CHECK_EQ(kyufu_storage_check(f.dir, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "database ") != NULL);
    char err2[512] = "";
    CHECK_EQ(kyufu_storage_check_isolated(f.dir, err2, sizeof err2),
             KYUFU_STORAGE_ECORRUPT);
    CHECK_STR(err2, err);
    free(d.bytes);
}

/* A leaf page's lower bound claiming more nodes than the page holds: the
 * record count no longer matches, or LMDB reads a node out of the page;
 * either way CORRUPT (run isolated: the read may crash). */
static void check_bad_leaf_bounds(void)
{
    struct fx f;
    build(&f, 300);
    struct file d;
    file_read(f.dir, &d);
    uint8_t *page = find_page(&d, P_LEAF);
    CHECK(page != NULL);
    put16(page + 12, (uint16_t)(get16(page + 12) + 64)); /* lower */
    file_write(f.dir, &d);
    char err[512] = "";
    CHECK_EQ(kyufu_storage_check_isolated(f.dir, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    free(d.bytes);
}

/* A leaf value's size raised to 2 GiB: reading it runs off the end of the
 * file's mapping and the check's child dies of SIGBUS or SIGSEGV, which is
 * CORRUPT with the signal named; the caller survives, the file unchanged. */
static void check_crash_isolated(void)
{
    struct fx f;
    build(&f, 300);
    struct file d;
    file_read(f.dir, &d);
    size_t ps = page_size(&d);
    uint8_t *node = NULL;
    for (size_t off = 2 * ps; off + ps <= d.size && node == NULL; off += ps) {
        uint8_t *page = d.bytes + off;
        if ((get16(page + 10) & 0xffu) != P_LEAF) {
            continue;
        }
        uint8_t *n0 = page + get16(page + PAGE_HDR_BYTES);
        if ((get16(n0 + 4) & (F_BIGDATA | F_SUBDATA)) == 0) {
            node = n0;
        }
    }
    CHECK(node != NULL);
    put16(node + 2, 0x8000); /* hi: the value's size >= 2 GiB */
    file_write(f.dir, &d);
    struct file before, after;
    file_read(f.dir, &before);
    char err[512] = "";
    CHECK_EQ(kyufu_storage_check_isolated(f.dir, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    if (strstr(err, "the store check crashed on signal SIG") != err ||
        strstr(err, ": a page of data.mdb is damaged") == NULL) {
        t_fail(__FILE__, __LINE__, "message: %s", err);
    }
    file_read(f.dir, &after);
    CHECK_EQ(after.size, before.size);
    CHECK(memcmp(after.bytes, before.bytes, before.size) == 0);
    free(d.bytes);
    free(before.bytes);
    free(after.bytes);
}

/* A data.mdb cut short: CORRUPT before any page is read. */
static void check_truncated(void)
{
    struct fx f;
    build(&f, 300);
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", f.dir);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    CHECK(truncate(p, st.st_size / 2) == 0);
    char err[512] = "";
    CHECK_EQ(kyufu_storage_check_isolated(f.dir, err, sizeof err),
             KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(err, "truncated") != NULL);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of the reaped children: the check's own cost,
 * whatever else the machine runs. */
static double children_cpu_s(void)
{
    struct rusage ru;
    CHECK(getrusage(RUSAGE_CHILDREN, &ru) == 0);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void measure(void)
{
    const char *e = getenv("KYUFU_CHECK_SCALE");
    unsigned n = e != NULL ? (unsigned)strtoul(e, NULL, 10) : 20000u;
    struct fx f;
    double t0 = now_s();
    build(&f, n);
    double t1 = now_s();
    char p[256];
    snprintf(p, sizeof p, "%s/data.mdb", f.dir);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    char err[512] = "";
    /* Cold: the file's pages dropped from the page cache (this file's
     * only: posix_fadvise DONTNEED), as after a reboot. */
    int fd = open(p, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(fdatasync(fd) == 0);
    CHECK(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
    CHECK(close(fd) == 0);
    double gb = (double)st.st_size / 1e9;
    printf("%u households: data.mdb %lld bytes (built in %.1f s)\n", n,
           (long long)st.st_size, t1 - t0);
    for (int i = 0; i < 2; i++) {
        double c0 = children_cpu_s();
        double t2 = now_s();
        CHECK_EQ(kyufu_storage_check_isolated(f.dir, err, sizeof err), 0);
        double t3 = now_s();
        double c1 = children_cpu_s();
        printf(
            "check (%s): %.3f s wall, %.3f s CPU: %.2f s/GB wall, "
            "%.2f s/GB CPU\n",
            i == 0 ? "page cache cold" : "page cache warm", t3 - t2, c1 - c0,
            (t3 - t2) / gb, (c1 - c0) / gb);
    }
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(check_sound_store),    T_CASE(check_no_store),
        T_CASE(check_bad_child_pgno), T_CASE(check_bad_leaf_bounds),
        T_CASE(check_crash_isolated), T_CASE(check_truncated),
    };
    if (argc == 2 && strcmp(argv[1], "measure") == 0) {
        static const struct t_case m[] = {T_CASE(measure)};
        return t_main(argc, argv, m, 1);
    }
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
