/* Snapshots written through an unnamed file (raft-glue/stream_file.h,
 * chunk_sink.h):
 *
 *  - plain: the mapped file holds exactly storage's stream, in 64-byte
 *    chunks (one reused buffer) as in one 4 MiB chunk, and nothing named
 *    is left in the directory;
 *  - sealed: 64-byte chunks, sealed where storage wrote them, open in
 *    place to storage's stream;
 *  - refused: a missing directory (statvfs), a file for a directory
 *    (open O_TMPFILE), too little room (the free space check), a file-size limit (write, plain and sealed): the file
 *    system's errno and step are said, KYUFU_STORAGE_EIO returned, nothing
 *    left open; a failed allocation is the store's ENOMEM with no errno;
 *    the probe names the directory and O_TMPFILE. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <raft.h>
#include <stdint.h>

#include "check.h"
#include "frame.h"
#include "internal.h" /* snapshot_chunk_bytes */
#include "rm_tree.h"
#include "seal.h"
#include "storage.h"
#include "stream_file.h"
#include "test_store.h"

static char dir[64];

static const uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES] = {
    0x6b, 0x79, 0x75, 0x66, 0x75, 0x20, 0x73, 0x66, 0x20, 0x74, 0x65,
    0x73, 0x74, 0x20, 0x63, 0x6d, 0x6b, 0x01, 0x02, 0x03, 0x04, 0x05,
    0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};

struct stream
{
    uint8_t *buf;
    size_t len;
};

static struct stream stream_of(struct kyufu_storage *s)
{
    struct stream c;
    c.buf = test_store_stream(s, &c.len);
    return c;
}

static int file_room(struct kyufu_storage *s, const char *d, uint64_t room,
                     const struct glue_stream_key *k, const uint8_t *header,
                     size_t header_len, struct glue_stream_file *f)
{
    struct kyufu_storage_snapshot *snap;
    CHECK(kyufu_storage_snapshot_begin(s, &snap) == 0);
    int rv = glue__stream_file_write(f, d, room, snap, k, header, header_len);
    kyufu_storage_snapshot_end(snap);
    return rv;
}

static int file_of(struct kyufu_storage *s, const char *d,
                   const struct glue_stream_key *k, const uint8_t *header,
                   size_t header_len, struct glue_stream_file *f)
{
    return file_room(s, d, 1 << 20, k, header, header_len, f);
}

/* Entries in d other than "." and "..". */
static unsigned names_in(const char *d)
{
    DIR *dp = opendir(d);
    struct dirent *e;
    unsigned n = 0;
    CHECK(dp != NULL);
    while ((e = readdir(dp)) != NULL) {
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    }
    closedir(dp);
    return n;
}

static void test_plain(void)
{
    char files[96];
    struct kyufu_storage *s = test_store_open(dir, "plain", NULL);
    struct glue_stream_file f;
    test_store_fill(s, 20);
    struct stream want = stream_of(s);
    snprintf(files, sizeof files, "%s/files", dir);
    CHECK(mkdir(files, 0700) == 0);

    CHECK(file_of(s, files, NULL, NULL, 0, &f) == 0);
    CHECK(f.len == want.len && memcmp(f.map, want.buf, want.len) == 0);
    CHECK(f.err == 0 && f.fd == -1 && names_in(files) == 0);
    glue__stream_file_close(&f);
    CHECK(f.map == NULL);

    s->snapshot_chunk_bytes = 64; /* many chunks through one buffer */
    CHECK(file_of(s, files, NULL, NULL, 0, &f) == 0);
    CHECK(f.len == want.len && memcmp(f.map, want.buf, want.len) == 0);
    glue__stream_file_close(&f);
    CHECK(names_in(files) == 0);

    free(want.buf);
    kyufu_storage_close(s);
    printf("plain: ok\n");
}

static void test_sealed(void)
{
    struct kyufu_storage *s = test_store_open(dir, "sealed", cmk);
    struct glue_snapshot_header h = {9, 9, 1, 1, {0}, true};
    struct glue_stream_key k = {0, NULL, false};
    uint8_t header[GLUE_SNAPSHOT2_HEADER_BYTES];
    struct glue_stream_file f;
    char errmsg[128] = "";
    size_t plain_len = 0;
    test_store_fill(s, 20);
    struct stream want = stream_of(s);
    memset(h.id, 0x5c, sizeof h.id);
    CHECK(glue__snapshot_header_key(s, &h, &k) == 0);
    glue__snapshot_header_write(header, &h);

    s->snapshot_chunk_bytes = 64;
    CHECK(file_of(s, dir, &k, header, sizeof header, &f) == 0);
    size_t n = (want.len + 63) / 64;
    CHECK(f.len == want.len + n * glue__chunk_sealed_size(0));
    CHECK(memmem(f.map, f.len, "canary-staff", 12) == NULL);
    /* Opened in place after the header, as the FSM restores it. */
    uint8_t *copy = malloc(sizeof header + f.len);
    CHECK(copy != NULL);
    memcpy(copy, header, sizeof header);
    memcpy(copy + sizeof header, f.map, f.len);
    CHECK(glue__snapshot_open(&k, copy, sizeof header + f.len, sizeof header,
                              &plain_len, errmsg, sizeof errmsg) == 0);
    CHECK(plain_len == want.len &&
          memcmp(copy + sizeof header, want.buf, want.len) == 0);
    glue__stream_file_close(&f);

    free(copy);
    free(want.buf);
    glue__stream_key_wipe(&k);
    kyufu_storage_close(s);
    printf("sealed: ok\n");
}

/* A raft heap whose malloc always fails (the sink's first buffer). */
static void *h_malloc(void *d, size_t n)
{
    (void)d;
    (void)n;
    return NULL;
}
static void h_free(void *d, void *p)
{
    (void)d;
    free(p);
}
static void *h_calloc(void *d, size_t n, size_t size)
{
    (void)d;
    return calloc(n, size);
}
static void *h_realloc(void *d, void *p, size_t n)
{
    (void)d;
    return realloc(p, n);
}
static void *h_aligned_alloc(void *d, size_t align, size_t n)
{
    (void)d;
    return aligned_alloc(align, n);
}
static void h_aligned_free(void *d, size_t align, void *p)
{
    (void)d;
    (void)align;
    free(p);
}
static struct raft_heap failing = {NULL, h_malloc, h_free, h_calloc,
                                   h_realloc, h_aligned_alloc,
                                   h_aligned_free};

static void test_refused(void)
{
    char missing[96];
    char errmsg[256] = "";
    struct kyufu_storage *s = test_store_open(dir, "refused", NULL);
    struct glue_stream_file f;
    test_store_fill(s, 20);
    snprintf(missing, sizeof missing, "%s/missing", dir);

    CHECK(file_of(s, missing, NULL, NULL, 0, &f) == KYUFU_STORAGE_EIO);
    CHECK(f.err == ENOENT && strcmp(f.what, "statvfs") == 0);
    CHECK(f.fd == -1 && f.map == NULL);
    /* A path statvfs takes but O_TMPFILE cannot use. */
    char plain[96];
    snprintf(plain, sizeof plain, "%s/plain-file", dir);
    int pfd = open(plain, O_CREAT | O_WRONLY, 0600);
    CHECK(pfd >= 0 && close(pfd) == 0);
    CHECK(file_of(s, plain, NULL, NULL, 0, &f) == KYUFU_STORAGE_EIO);
    CHECK(f.err == ENOTDIR && strstr(f.what, "O_TMPFILE") != NULL);
    CHECK(f.fd == -1 && f.map == NULL);
    CHECK(glue__stream_file_probe(missing, errmsg, sizeof errmsg) == -1);
    CHECK(strstr(errmsg, missing) != NULL && strstr(errmsg, "O_TMPFILE"));
    CHECK(glue__stream_file_probe(dir, errmsg, sizeof errmsg) == 0);

    /* Less room than asked for: refused before anything is written. */
    CHECK(file_room(s, dir, UINT64_MAX, NULL, NULL, 0, &f) ==
          KYUFU_STORAGE_EIO);
    CHECK(f.err == ENOSPC && strcmp(f.what, "free space check") == 0);
    CHECK(f.fd == -1 && f.map == NULL);

    /* A full disk, as a file-size limit: write fails with EFBIG. */
    struct rlimit old, small = {4096, 4096};
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    s->snapshot_chunk_bytes = 1024;
    int rv = file_of(s, dir, NULL, NULL, 0, &f);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK(rv == KYUFU_STORAGE_EIO && f.err == EFBIG &&
          strcmp(f.what, "write") == 0);
    CHECK(f.fd == -1 && f.map == NULL);

    /* The same sealed: the refusal comes while a chunk is sealed with the
     * next one held (two buffers live; ASan sees their fate). */
    {
        struct kyufu_storage *ks = test_store_open(dir, "refused-k", cmk);
        struct glue_snapshot_header h = {9, 9, 1, 1, {0}, true};
        struct glue_stream_key k = {0, NULL, false};
        uint8_t header[GLUE_SNAPSHOT2_HEADER_BYTES];
        test_store_fill(ks, 20);
        CHECK(glue__snapshot_header_key(ks, &h, &k) == 0);
        glue__snapshot_header_write(header, &h);
        ks->snapshot_chunk_bytes = 1024;
        CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
        rv = file_of(ks, dir, &k, header, sizeof header, &f);
        CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
        CHECK(rv == KYUFU_STORAGE_EIO && f.err == EFBIG);
        glue__stream_key_wipe(&k);
        kyufu_storage_close(ks);
    }

    /* The store's failure is not the file system's: an allocation refused
     * for the stream is ENOMEM with no errno (snapshot_io.c stops the node on
     * it, as on any store error, and holds no snapshot back). */
    raft_heap_set(&failing);
    rv = file_of(s, dir, NULL, NULL, 0, &f);
    raft_heap_set_default();
    CHECK(rv == KYUFU_STORAGE_ENOMEM && f.err == 0 && f.what == NULL);
    CHECK(f.fd == -1 && f.map == NULL);

    kyufu_storage_close(s);
    printf("refused: ok\n");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kyufu-test-stream-file-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    test_plain();
    test_sealed();
    test_refused();
    test_rm_tree(dir);
    return 0;
}
