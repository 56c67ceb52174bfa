/* Sealed entries and snapshot chunks: see seal.h for the formats and the
 * contract.  The AEAD itself is storage/'s (kyufu_storage_crypto_seal and
 * _open, the tree's one AES-256-GCM); this file lays out nonces and
 * associated data and draws the nonces. */
#include "seal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "storage_limits.h"

/* Associated data of a chunk: number, length and flags, header. */
#define CHUNK_AAD_BYTES_MAX (8u + 8u + GLUE_SNAPSHOT2_HEADER_BYTES)

_Static_assert(GLUE_FRAME2_NONCE_BYTES == KYUFU_CRYPTO_NONCE_BYTES,
               "the frame's nonce is GCM's");
_Static_assert(GLUE_FRAME2_TAG_BYTES == KYUFU_CRYPTO_TAG_BYTES,
               "the frame's tag is GCM's");
_Static_assert(GLUE_FRAME2_AAD_BYTES + GLUE_FRAME2_NONCE_BYTES ==
                   GLUE_FRAME2_CIPHER_OFFSET,
               "the ciphertext follows the nonce");
_Static_assert(GLUE_SNAPSHOT_ID_BYTES == KYUFU_CRYPTO_SALT_BYTES,
               "a snapshot's id is its key's KDF context");
_Static_assert(GLUE_CHUNK_HEAD_BYTES == 8u + KYUFU_CRYPTO_NONCE_BYTES,
               "a chunk's head is length, flags and nonce");
_Static_assert(KYUFU_SNAPSHOT_CHUNK_BYTES_MAX <= KYUFU_CRYPTO_TEXT_BYTES_MAX,
               "one seal takes a whole snapshot chunk");

int glue__stream_key_load(const struct kyufu_storage *s, uint32_t version,
                          struct glue_stream_key *k)
{
    struct kyufu_crypto_subkeys sub;
    int rv;
    if (k->version == version && version != 0 && !k->snapshot) {
        return 0;
    }
    glue__stream_key_wipe(k);
    rv = kyufu_storage_keys_subkeys(s, version, &sub);
    if (rv != 0) {
        return rv;
    }
    /* Keyed once per holder and version (the proposer, the FSM's apply and
     * snapshot keys): each seal and open then skips OpenSSL's key set-up. */
    rv = kyufu_storage_crypto_key_new(sub.stream, &k->key);
    kyufu_storage_crypto_wipe(&sub, sizeof sub);
    if (rv != 0) {
        return KYUFU_STORAGE_ENOMEM;
    }
    k->version = version;
    return 0;
}

int glue__snapshot_key_load(const struct kyufu_storage *s, uint32_t version,
                            const uint8_t id[GLUE_SNAPSHOT_ID_BYTES],
                            struct glue_stream_key *k)
{
    uint8_t key[KYUFU_CRYPTO_KEY_BYTES];
    glue__stream_key_wipe(k);
    int rv = kyufu_storage_keys_snapshot_key(s, version, id, key);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage_crypto_key_new(key, &k->key);
    kyufu_storage_crypto_wipe(key, sizeof key);
    if (rv != 0) {
        return KYUFU_STORAGE_ENOMEM;
    }
    k->version = version;
    k->snapshot = true; /* never taken for the subkey by stream_key_load */
    return 0;
}

int glue__snapshot_header_key(const struct kyufu_storage *s,
                              const struct glue_snapshot_header *h,
                              struct glue_stream_key *k)
{
    return h->own_key ? glue__snapshot_key_load(s, h->key_version, h->id, k)
                      : glue__stream_key_load(s, h->key_version, k);
}

bool glue__snapshot_own_key(struct kyufu_storage *s)
{
    uint32_t cluster = 0;
    return kyufu_storage_cluster_version(s, &cluster, NULL) == 0 &&
           cluster >= KYUFU_STORAGE_SEAL_COUNT_SINCE;
}

void glue__stream_key_wipe(struct glue_stream_key *k)
{
    kyufu_storage_crypto_key_free(k->key);
    k->key = NULL;
    k->version = 0;
    k->snapshot = false;
}

static int random_nonce(uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES])
{
    return RAND_bytes(nonce, KYUFU_CRYPTO_NONCE_BYTES) == 1
               ? 0
               : KYUFU_CRYPTO_EINTERNAL;
}

int glue__entry_seal(const struct glue_stream_key *k, void *frame,
                     uint64_t term, const uint8_t *plain, size_t len)
{
    uint8_t *p = frame;
    int rv;
    assert(k->version > 0);
    if (len > KYUFU_CRYPTO_TEXT_BYTES_MAX) {
        return KYUFU_CRYPTO_EINVALID;
    }
    glue__frame2_header(p, term, k->version, len);
    rv = random_nonce(p + GLUE_FRAME2_AAD_BYTES);
    if (rv != 0) {
        return rv;
    }
    return kyufu_storage_crypto_key_seal(k->key, p + GLUE_FRAME2_AAD_BYTES, p,
                                     GLUE_FRAME2_AAD_BYTES, plain, len,
                                     p + GLUE_FRAME2_CIPHER_OFFSET);
}

int glue__entry_open(const struct glue_stream_key *k,
                     const struct glue_frame *f, uint8_t *out)
{
    assert(f->version == GLUE_FRAME_VERSION_SEALED);
    assert(k->version == f->key_version);
    return kyufu_storage_crypto_key_open(k->key, f->nonce, f->aad,
                                     GLUE_FRAME2_AAD_BYTES, f->payload,
                                     f->len + GLUE_FRAME2_TAG_BYTES, out);
}

size_t glue__chunk_sealed_size(size_t len)
{
    return GLUE_CHUNK_HEAD_BYTES + len + KYUFU_CRYPTO_TAG_BYTES;
}

/* aad = number ‖ head[0..8) ‖ header; returns its length. */
static size_t chunk_aad(uint8_t aad[CHUNK_AAD_BYTES_MAX], uint64_t number,
                        const uint8_t head[8], const uint8_t *header,
                        size_t header_len)
{
    assert(header_len <= GLUE_SNAPSHOT2_HEADER_BYTES);
    glue__le_put64(aad, number);
    memcpy(aad + 8, head, 8);
    memcpy(aad + 16, header, header_len);
    return 16 + header_len;
}

int glue__chunk_seal(const struct glue_stream_key *k, const uint8_t *header,
                     size_t header_len, uint64_t number, bool last,
                     const uint8_t *plain, size_t len, uint8_t *out)
{
    uint8_t aad[CHUNK_AAD_BYTES_MAX];
    size_t aad_len;
    int rv;
    assert(k->version > 0);
    if (len > KYUFU_SNAPSHOT_CHUNK_BYTES_MAX) {
        return KYUFU_CRYPTO_EINVALID;
    }
    glue__le_put32(out, (uint32_t)len);
    glue__le_put32(out + 4, last ? GLUE_CHUNK_FLAG_LAST : 0);
    rv = random_nonce(out + 8);
    if (rv != 0) {
        return rv;
    }
    aad_len = chunk_aad(aad, number, out, header, header_len);
    return kyufu_storage_crypto_key_seal(k->key, out + 8, aad, aad_len, plain,
                                     len, out + GLUE_CHUNK_HEAD_BYTES);
}

int glue__snapshot_open(const struct glue_stream_key *k, uint8_t *buf,
                        size_t size, size_t header_len, size_t *plain_len,
                        char *errmsg, size_t errmsg_len)
{
    uint8_t aad[CHUNK_AAD_BYTES_MAX];
    uint8_t *plain;
    size_t plain_cap;
    size_t plain_used = 0;   /* bytes of plain to wipe */
    size_t in = header_len;  /* next sealed chunk */
    size_t out = header_len; /* end of the plaintext so far */
    uint64_t number = 0;
    bool last = false;
    int rv = KYUFU_STORAGE_ECORRUPT;

    assert(k->version > 0 && header_len <= size);
    /* Chunks are opened into this buffer, then moved down in place: the
     * plaintext never outruns the ciphertext it came from.  No chunk's
     * plaintext is longer than the whole sealed stream. */
    plain_cap = size - header_len < KYUFU_SNAPSHOT_CHUNK_BYTES_MAX
                    ? size - header_len
                    : KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
    plain = malloc(plain_cap > 0 ? plain_cap : 1);
    if (plain == NULL) {
        snprintf(errmsg, errmsg_len, "no memory to open the snapshot");
        return KYUFU_STORAGE_ENOMEM;
    }
    while (!last) {
        uint32_t len;
        uint32_t flags;
        size_t aad_len;
        int crv;
        if (size - in < glue__chunk_sealed_size(0)) {
            snprintf(errmsg, errmsg_len,
                     "sealed snapshot truncated before chunk %llu",
                     (unsigned long long)number);
            goto out;
        }
        len = glue__le_get32(buf + in);
        flags = glue__le_get32(buf + in + 4);
        if (len > KYUFU_SNAPSHOT_CHUNK_BYTES_MAX ||
            (flags & ~GLUE_CHUNK_FLAG_LAST) != 0 ||
            size - in < glue__chunk_sealed_size(len)) {
            /* (Then len < size - header_len ≤ plain_cap as well.) */
            snprintf(errmsg, errmsg_len,
                     "sealed snapshot chunk %llu malformed or truncated",
                     (unsigned long long)number);
            goto out;
        }
        assert(len <= plain_cap);
        if (len > plain_used) {
            plain_used = len;
        }
        last = (flags & GLUE_CHUNK_FLAG_LAST) != 0;
        aad_len = chunk_aad(aad, number, buf + in, buf, header_len);
        crv = kyufu_storage_crypto_key_open(k->key, buf + in + 8, aad, aad_len,
                                        buf + in + GLUE_CHUNK_HEAD_BYTES,
                                        (size_t)len + KYUFU_CRYPTO_TAG_BYTES,
                                        plain);
        if (crv != 0) {
            snprintf(errmsg, errmsg_len,
                     "sealed snapshot chunk %llu failed authentication: %s",
                     (unsigned long long)number,
                     kyufu_storage_crypto_strerror(crv));
            rv = crv == KYUFU_CRYPTO_ENOMEM ? KYUFU_STORAGE_ENOMEM
                                            : KYUFU_STORAGE_ECORRUPT;
            goto out;
        }
        assert(out <= in);
        memcpy(buf + out, plain, len);
        out += len;
        in += glue__chunk_sealed_size(len);
        number++;
    }
    if (in != size) {
        snprintf(errmsg, errmsg_len,
                 "sealed snapshot has %zu bytes after its last chunk",
                 size - in);
        goto out;
    }
    *plain_len = out - header_len;
    rv = 0;
out:
    kyufu_storage_crypto_wipe(plain, plain_used);
    free(plain);
    return rv;
}
