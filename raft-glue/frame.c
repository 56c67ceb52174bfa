/* Entry and snapshot framing: see frame.h for the layout. Little endian on
 * the wire regardless of the host, written byte by byte. */
#include "frame.h"

#include <assert.h>
#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++) {
        v |= (uint32_t)p[i] << (8 * i);
    }
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

size_t glue__frame_size(size_t len)
{
    size_t n = GLUE_FRAME_HEADER_BYTES + len;
    return (n + 7u) & ~(size_t)7u;
}

void glue__frame_finish(void *frame, uint64_t term, size_t len)
{
    uint8_t *p = frame;
    size_t size = glue__frame_size(len);
    assert(term > 0);
    put32(p, GLUE_FRAME_MAGIC);
    put32(p + 4, GLUE_FRAME_VERSION);
    put64(p + 8, term);
    put64(p + 16, (uint64_t)len);
    memset(p + GLUE_FRAME_HEADER_BYTES + len, 0,
           size - GLUE_FRAME_HEADER_BYTES - len);
    assert(size % 8 == 0);
}

void glue__frame_write(void *out, uint64_t term, const void *payload,
                       size_t len)
{
    if (len > 0) {
        memcpy((uint8_t *)out + GLUE_FRAME_HEADER_BYTES, payload, len);
    }
    glue__frame_finish(out, term, len);
}

bool glue__frame_read(const void *buf, size_t size, uint64_t *term,
                      const uint8_t **payload, size_t *len)
{
    const uint8_t *p = buf;
    uint64_t n;
    if (size < GLUE_FRAME_HEADER_BYTES || size % 8 != 0) {
        return false;
    }
    if (get32(p) != GLUE_FRAME_MAGIC || get32(p + 4) != GLUE_FRAME_VERSION) {
        return false;
    }
    n = get64(p + 16);
    if (n > size - GLUE_FRAME_HEADER_BYTES ||
        glue__frame_size((size_t)n) != size) {
        return false;
    }
    for (size_t i = GLUE_FRAME_HEADER_BYTES + (size_t)n; i < size; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    *term = get64(p + 8);
    if (*term == 0) {
        return false;
    }
    *payload = p + GLUE_FRAME_HEADER_BYTES;
    *len = (size_t)n;
    return true;
}

void glue__snapshot_header_write(void *out,
                                 const struct glue_snapshot_header *h)
{
    uint8_t *p = out;
    put32(p, GLUE_SNAPSHOT_MAGIC);
    put32(p + 4, GLUE_FRAME_VERSION);
    put64(p + 8, h->raft_index);
    put64(p + 16, h->storage_index);
    put64(p + 24, h->storage_term);
    put64(p + 32, 0);
}

bool glue__snapshot_header_read(const void *buf, size_t size,
                                struct glue_snapshot_header *h)
{
    const uint8_t *p = buf;
    if (size < GLUE_SNAPSHOT_HEADER_BYTES) {
        return false;
    }
    if (get32(p) != GLUE_SNAPSHOT_MAGIC || get32(p + 4) != GLUE_FRAME_VERSION ||
        get64(p + 32) != 0) {
        return false;
    }
    h->raft_index = get64(p + 8);
    h->storage_index = get64(p + 16);
    h->storage_term = get64(p + 24);
    return h->storage_index <= h->raft_index;
}
