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

void glue__le_put32(uint8_t *p, uint32_t v)
{
    put32(p, v);
}

void glue__le_put64(uint8_t *p, uint64_t v)
{
    put64(p, v);
}

uint32_t glue__le_get32(const uint8_t *p)
{
    return get32(p);
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

size_t glue__frame2_size(size_t len)
{
    size_t n = GLUE_FRAME2_CIPHER_OFFSET + len + GLUE_FRAME2_TAG_BYTES;
    return (n + 7u) & ~(size_t)7u;
}

void glue__frame2_header(void *frame, uint64_t term, uint32_t key_version,
                         size_t len)
{
    uint8_t *p = frame;
    size_t end = GLUE_FRAME2_CIPHER_OFFSET + len + GLUE_FRAME2_TAG_BYTES;
    size_t size = glue__frame2_size(len);
    assert(term > 0 && key_version > 0);
    put32(p, GLUE_FRAME_MAGIC);
    put32(p + 4, GLUE_FRAME_VERSION_SEALED);
    put64(p + 8, term);
    put64(p + 16, (uint64_t)len);
    put32(p + 24, key_version);
    memset(p + end, 0, size - end);
    assert(size % 8 == 0 && size - end < 8);
}

static bool frame2_parse(const uint8_t *p, size_t size, struct glue_frame *f)
{
    uint64_t n;
    size_t end;
    if (size < glue__frame2_size(0) || size % 8 != 0) {
        return false;
    }
    n = get64(p + 16);
    if (n > size - GLUE_FRAME2_CIPHER_OFFSET - GLUE_FRAME2_TAG_BYTES ||
        glue__frame2_size((size_t)n) != size) {
        return false;
    }
    end = GLUE_FRAME2_CIPHER_OFFSET + (size_t)n + GLUE_FRAME2_TAG_BYTES;
    for (size_t k = end; k < size; k++) {
        if (p[k] != 0) {
            return false;
        }
    }
    f->version = GLUE_FRAME_VERSION_SEALED;
    f->term = get64(p + 8);
    f->key_version = get32(p + 24);
    if (f->term == 0 || f->key_version == 0) {
        return false;
    }
    f->aad = p;
    f->nonce = p + GLUE_FRAME2_AAD_BYTES;
    f->payload = p + GLUE_FRAME2_CIPHER_OFFSET;
    f->len = (size_t)n;
    return true;
}

bool glue__frame_parse(const void *buf, size_t size, struct glue_frame *f)
{
    const uint8_t *p = buf;
    memset(f, 0, sizeof *f);
    if (size >= 8 && get32(p) == GLUE_FRAME_MAGIC &&
        get32(p + 4) == GLUE_FRAME_VERSION_SEALED) {
        return frame2_parse(p, size, f);
    }
    if (!glue__frame_read(buf, size, &f->term, &f->payload, &f->len)) {
        return false;
    }
    f->version = GLUE_FRAME_VERSION;
    return true;
}

size_t glue__snapshot_header_size(const struct glue_snapshot_header *h)
{
    return h->key_version == 0 ? GLUE_SNAPSHOT_HEADER_BYTES
                               : GLUE_SNAPSHOT2_HEADER_BYTES;
}

void glue__snapshot_header_write(void *out,
                                 const struct glue_snapshot_header *h)
{
    uint8_t *p = out;
    put32(p, GLUE_SNAPSHOT_MAGIC);
    assert(h->key_version != 0 || !h->own_key);
    put32(p + 4, h->key_version == 0 ? GLUE_FRAME_VERSION
                 : h->own_key        ? GLUE_SNAPSHOT_VERSION_OWN_KEY
                                     : GLUE_FRAME_VERSION_SEALED);
    put64(p + 8, h->raft_index);
    put64(p + 16, h->storage_index);
    put64(p + 24, h->storage_term);
    if (h->key_version == 0) {
        put64(p + 32, 0);
        return;
    }
    put32(p + 32, h->key_version);
    put32(p + 36, 0);
    memcpy(p + 40, h->id, GLUE_SNAPSHOT_ID_BYTES);
}

bool glue__snapshot_header_read(const void *buf, size_t size,
                                struct glue_snapshot_header *h)
{
    const uint8_t *p = buf;
    uint32_t version;
    if (size < GLUE_SNAPSHOT_HEADER_BYTES) {
        return false;
    }
    version = get32(p + 4);
    if (get32(p) != GLUE_SNAPSHOT_MAGIC) {
        return false;
    }
    memset(h, 0, sizeof *h);
    if (version == GLUE_FRAME_VERSION) {
        if (get64(p + 32) != 0) {
            return false;
        }
    } else if (version == GLUE_FRAME_VERSION_SEALED ||
               version == GLUE_SNAPSHOT_VERSION_OWN_KEY) {
        if (size < GLUE_SNAPSHOT2_HEADER_BYTES || get32(p + 32) == 0 ||
            get32(p + 36) != 0) {
            return false;
        }
        h->key_version = get32(p + 32);
        h->own_key = version == GLUE_SNAPSHOT_VERSION_OWN_KEY;
        memcpy(h->id, p + 40, GLUE_SNAPSHOT_ID_BYTES);
    } else {
        return false;
    }
    h->raft_index = get64(p + 8);
    h->storage_index = get64(p + 16);
    h->storage_term = get64(p + 24);
    return h->storage_index <= h->raft_index;
}

bool glue__snapshot_header_newer(const void *buf, size_t size,
                                 uint32_t *version)
{
    const uint8_t *p = buf;
    if (size < 8 || get32(p) != GLUE_SNAPSHOT_MAGIC) {
        return false;
    }
    *version = get32(p + 4);
    return *version > GLUE_SNAPSHOT_VERSION_OWN_KEY;
}
