/* raft-glue's check of open Raft segments before raft_uv loads them
 * (segment_check.h), on segments built here byte by byte in raft_uv
 * 0.22.1's format:
 *
 *  - the checksum is raft_uv's (libiberty crc32: check value of
 *    "123456789" is 0x89a1897f, CRC-32/MPEG-2 without its initial ~0);
 *  - intact batches and a zero tail, an empty or zeroed file, a file cut
 *    exactly after its last batch (raft_uv's own finalize window) pass;
 *  - a flipped byte in the last batch written passes (a torn write,
 *    which raft_uv truncates rightly);
 *  - a flipped byte in the header or data of a batch with an intact batch
 *    after it is refused, naming the batch and both offsets;
 *  - but not when the damaged stretch holds an unwritten (zero) sector: a
 *    torn write of several batches at once;
 *  - a file cut inside a batch, and an unknown entry type under a valid
 *    checksum, are refused (raft_uv would abort, or fail, on them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "segment_check.h"

#define SEG_BYTES (64u << 10)

static uint8_t seg[SEG_BYTES];
static size_t used;
static size_t batch_off[8];
static char err[512];

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void start(void)
{
    memset(seg, 0, sizeof seg);
    put64(seg, 1);
    used = 8;
}

/* A batch of n entries of `size` bytes each (multiple of 8), payload
 * bytes from `fill` (never all zero unless fill is 0). */
static void add_batch(unsigned b, unsigned n, size_t size, uint8_t fill)
{
    uint8_t *p = seg + used;
    batch_off[b] = used;
    uint8_t *h = p + 8;
    put64(h, n);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = h + 8 + 16 * i;
        put64(e, 3);   /* term */
        e[8] = 1;      /* RAFT_COMMAND */
        put32(e + 12, (uint32_t)size);
    }
    size_t header = 8 + 16 * (size_t)n;
    uint8_t *d = h + header;
    for (size_t i = 0; i < n * size; i++) {
        d[i] = (uint8_t)(fill + i * 7 + 1);
        if (fill == 0) {
            d[i] = 0;
        }
    }
    put32(p, glue__segment_crc(h, header, 0));
    put32(p + 4, glue__segment_crc(d, n * size, 0));
    used += 8 + header + n * size;
    CHECK(used < SEG_BYTES);
}

static int check(size_t len)
{
    err[0] = '\0';
    int rv = glue__segment_check("open-7", seg, len, err, sizeof err);
    if (rv != 0) {
        fprintf(stderr, "refused: %s\n", err);
    }
    return rv;
}

static void three_batches(void)
{
    start();
    add_batch(1, 2, 64, 11);
    add_batch(2, 1, 1024, 22);
    add_batch(3, 3, 40, 33);
}

static void test_crc(void)
{
    CHECK(glue__segment_crc("123456789", 9, 0) == 0x89a1897fu);
    CHECK(glue__segment_crc("", 0, 0) == 0);
    /* Chained as raft_uv chains it over the entries of a batch. */
    CHECK(glue__segment_crc("6789", 4, glue__segment_crc("12345", 5, 0)) ==
          0x89a1897fu);
}

static void test_clean(void)
{
    memset(seg, 0, sizeof seg);
    CHECK(check(0) == 0);          /* empty */
    CHECK(check(SEG_BYTES) == 0);  /* format 0, zeros: never written */
    three_batches();
    CHECK(check(SEG_BYTES) == 0);  /* zero tail */
    CHECK(check(used) == 0);       /* cut exactly after the last batch */
    seg[0] = 9;                    /* format raft_uv refuses itself */
    CHECK(check(SEG_BYTES) == 0);
}

static void test_torn_tail(void)
{
    three_batches();
    seg[batch_off[3] + 8 + 8 + 3 * 16 + 5] ^= 0x10; /* last batch's data */
    CHECK(check(SEG_BYTES) == 0);
    three_batches();
    seg[batch_off[3] + 8] ^= 0x01; /* last batch's header (n: 3 → 2) */
    CHECK(check(SEG_BYTES) == 0);
    three_batches();
    seg[batch_off[3]] ^= 0x80; /* last batch's header checksum */
    CHECK(check(SEG_BYTES) == 0);
}

static void test_damaged_middle(void)
{
    three_batches();
    seg[batch_off[2] + 8 + 8 + 16 + 100] ^= 0x04; /* batch 2's data */
    CHECK(check(SEG_BYTES) != 0);
    CHECK(strstr(err, "open-7 is damaged: batch 2 at byte") != NULL);
    char want[64];
    snprintf(want, sizeof want, "follows at byte %zu", batch_off[3]);
    CHECK(strstr(err, want) != NULL);

    three_batches();
    seg[batch_off[1] + 8 + 8 + 4] ^= 0x20; /* batch 1's entry header */
    CHECK(check(SEG_BYTES) != 0);
    CHECK(strstr(err, "batch 1 at byte 8 fails its checksum") != NULL);

    three_batches();
    seg[batch_off[2] + 4] ^= 0x01; /* batch 2's data checksum itself */
    CHECK(check(SEG_BYTES) != 0);
}

static void test_torn_multi_batch_write(void)
{
    /* Batch 2's data spans whole sectors; one of them never written (a
     * torn write that persisted batch 3's sectors): not refused. */
    start();
    add_batch(1, 1, 64, 11);
    add_batch(2, 1, 4096, 22);
    add_batch(3, 1, 64, 33);
    size_t sector = (batch_off[2] + 512 + 511) / 512 * 512;
    memset(seg + sector, 0, 512);
    CHECK(check(SEG_BYTES) == 0);
    /* Zeros that are not a whole aligned sector do not count. */
    start();
    add_batch(1, 1, 64, 11);
    add_batch(2, 1, 4096, 22);
    add_batch(3, 1, 64, 33);
    memset(seg + sector + 1, 0, 510);
    CHECK(check(SEG_BYTES) != 0);
}

static void test_cut(void)
{
    three_batches();
    CHECK(check(batch_off[3] + 20) != 0); /* inside batch 3's header */
    CHECK(strstr(err, "open-7 is cut short or malformed: batch 3") != NULL);
    CHECK(check(used - 8) != 0);           /* inside batch 3's data */
    CHECK(check(batch_off[3] + 12) != 0);  /* inside its count */
    CHECK(check(batch_off[2] + 8 + 24 + 8) != 0); /* inside batch 2 */
    CHECK(check(batch_off[3]) == 0);       /* exactly after batch 2 */
}

static void test_unknown_type(void)
{
    three_batches();
    uint8_t *h = seg + batch_off[2] + 8;
    h[8 + 8] = 9; /* entry type under a recomputed, valid checksum */
    put32(seg + batch_off[2], glue__segment_crc(h, 8 + 16, 0));
    CHECK(check(SEG_BYTES) != 0);
    CHECK(strstr(err, "unknown entry type") != NULL);
}

int main(void)
{
    test_crc();
    test_clean();
    test_torn_tail();
    test_damaged_middle();
    test_torn_multi_batch_write();
    test_cut();
    test_unknown_type();
    printf("segment_check: ok\n");
    return 0;
}
