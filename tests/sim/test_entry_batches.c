/* raft-glue/entry_batches.h: entries loaded the way raft_uv hands them over
 * (a segment's entries in one batch) come out with a payload of their own
 * each and no batch, the same bytes, and the shared batches freed once; an allocation failure
 * leaves them as they were.  Every allocation goes through a counting raft
 * heap, so a batch freed twice, one not freed, or a payload left pointing
 * into a freed batch fails the test (and ASan's build). */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "entry_batches.h"

/* A raft heap that counts live blocks and can fail the n-th malloc. */
static struct
{
    long live;
    long fail_at; /* 0: never; else the malloc number that fails */
    long mallocs;
} h;

static void *h_malloc(void *data, size_t size)
{
    (void)data;
    h.mallocs++;
    if (h.fail_at != 0 && h.mallocs == h.fail_at) {
        return NULL;
    }
    void *p = malloc(size);
    h.live += p != NULL;
    return p;
}

static void h_free(void *data, void *ptr)
{
    (void)data;
    if (ptr != NULL) {
        h.live--;
        CHECK(h.live >= 0);
    }
    free(ptr);
}

static void *h_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    void *p = calloc(n, size);
    h.live += p != NULL;
    return p;
}

static void *h_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    void *p = realloc(ptr, size);
    h.live += ptr == NULL && p != NULL;
    return p;
}

static void *h_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    void *p = aligned_alloc(alignment, size);
    h.live += p != NULL;
    return p;
}

static void h_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)alignment;
    h_free(data, ptr);
}

static struct raft_heap heap = {NULL, h_malloc, h_free, h_calloc, h_realloc,
                                h_aligned_alloc, h_aligned_free};

/* Seven entries as raft_uv loads two segments: entries 0-3 in one batch,
 * 4-5 in another, then one entry that owns its buffer (no batch); payload
 * i is i + 1 bytes of 'a' + i (entry 3 is empty). */
#define N 7
static struct raft_entry *load(void)
{
    struct raft_entry *e = raft_calloc(N, sizeof *e);
    CHECK(e != NULL);
    char *seg1 = raft_malloc(64), *seg2 = raft_malloc(64);
    CHECK(seg1 != NULL && seg2 != NULL);
    size_t off = 0;
    for (unsigned i = 0; i < N; i++) {
        size_t len = i == 3 ? 0 : i + 1;
        char *batch = i < 4 ? seg1 : i < 6 ? seg2 : NULL;
        if (i == 4) {
            off = 0;
        }
        e[i].term = 1;
        e[i].type = RAFT_COMMAND;
        e[i].buf.len = len;
        e[i].batch = batch;
        if (batch != NULL) {
            e[i].buf.base = batch + off;
            off += len;
        } else {
            e[i].buf.base = raft_malloc(len);
            CHECK(e[i].buf.base != NULL);
        }
        memset(e[i].buf.base, 'a' + (int)i, len);
    }
    return e;
}

static void check_payloads(const struct raft_entry *e)
{
    for (unsigned i = 0; i < N; i++) {
        size_t len = i == 3 ? 0 : i + 1;
        CHECK(e[i].buf.len == len);
        for (size_t k = 0; k < len; k++) {
            CHECK(((const char *)e[i].buf.base)[k] == 'a' + (int)i);
        }
    }
}

int main(void)
{
    raft_heap_set(&heap);

    /* Unshared: no batch, a payload of its own each (as raft's entryCopy
     * makes them), the two segments and the old batchless buffer freed
     * (the array and the 7 copies live), then all freed once. */
    struct raft_entry *e = load();
    CHECK(h.live == 4); /* array, two segments, one own buffer */
    CHECK(glue__entry_batches_unshare(e, N) == 0);
    check_payloads(e);
    for (unsigned i = 0; i < N; i++) {
        CHECK(e[i].batch == NULL && e[i].buf.base != NULL);
        for (unsigned j = 0; j < i; j++) {
            CHECK(e[i].buf.base != e[j].buf.base);
        }
    }
    CHECK(h.live == 1 + N);
    glue__rio_free_loaded(NULL, e, N);
    CHECK(h.live == 0);

    /* A failed copy (the 4th of 7) leaves the entries untouched, frees
     * its other copies, and the loaded entries free as they were. */
    for (long fail = 1; fail <= N; fail++) {
        e = load();
        struct raft_entry before[N];
        memcpy(before, e, sizeof before);
        h.mallocs = 0;
        h.fail_at = fail;
        CHECK(glue__entry_batches_unshare(e, N) == RAFT_NOMEM);
        h.fail_at = 0;
        CHECK(memcmp(before, e, sizeof before) == 0);
        check_payloads(e);
        CHECK(h.live == 4);
        glue__rio_free_loaded(NULL, e, N);
        CHECK(h.live == 0);
    }

    /* Nothing loaded. */
    CHECK(glue__entry_batches_unshare(NULL, 0) == 0);
    glue__rio_free_loaded(NULL, NULL, 0);
    CHECK(h.live == 0);

    raft_heap_set_default();
    printf("entry-batches: ok\n");
    return 0;
}
