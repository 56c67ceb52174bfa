/* Encryption at rest: AES-256-GCM sealing, the SP 800-108 subkey
 * derivation, record nonces and keyed hashes (docs/encryption.md).  The
 * contract is in storage.h ("encryption at rest").  OpenSSL EVP only; no
 * random source is read here (apply must stay deterministic). */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "storage.h"

/* The longest stored key a nonce is derived from: LMDB's default key limit
 * (mdb_env_get_maxkeysize, 511 bytes). */
#define RECORD_KEY_BYTES_MAX 511u

const char *kyufu_storage_crypto_strerror(int rv)
{
    switch (rv) {
#define KYUFU_CRYPTO__CASE(name, value, text)                                \
    case value:                                                              \
        return text;
        KYUFU_CRYPTO_ERRORS(KYUFU_CRYPTO__CASE)
#undef KYUFU_CRYPTO__CASE
    }
    return "unknown crypto error";
}

void kyufu_storage_crypto_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}

/* A key set up once for many calls (storage.h "keyed contexts"): OpenSSL's
 * per-call cost on a short message is the fetch of the algorithm, a new
 * context and the key set-up (AES key schedule and GHASH table, HMAC's
 * inner and outer pads), about 30 k instructions per sealed record against
 * a few hundred for the cipher itself (docs/benchmarks-encryption.md "Sealed store
 * records").  Both templates are keyed here and never changed afterwards;
 * every call works on its own copy (EVP_CIPHER_CTX_copy, EVP_MAC_CTX_dup),
 * which only reads the template, so one key serves the loop thread, the
 * offload workers and the snapshot and backup threads at once without a
 * lock.  The last reference frees the contexts, and OpenSSL's free of a
 * GCM or HMAC context wipes its key material (OPENSSL_clear_free). */
struct kyufu_crypto_key
{
    atomic_uint refs;
    EVP_CIPHER_CTX *gcm; /* AES-256-GCM, keyed, no IV yet */
    EVP_MAC_CTX *hmac;   /* HMAC-SHA256, keyed, nothing hashed yet */
};

int kyufu_storage_crypto_key_new(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                                 struct kyufu_crypto_key **out)
{
    int rv = KYUFU_CRYPTO_ENOMEM;
    *out = NULL;
    struct kyufu_crypto_key *k = calloc(1, sizeof *k);
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (k == NULL || cipher == NULL || mac == NULL) {
        goto err;
    }
    atomic_init(&k->refs, 1);
    k->gcm = EVP_CIPHER_CTX_new();
    k->hmac = EVP_MAC_CTX_new(mac);
    if (k->gcm == NULL || k->hmac == NULL) {
        goto err;
    }
    rv = KYUFU_CRYPTO_EINTERNAL;
    /* The default IV length of AES-GCM is 12 bytes: the nonce's. */
    if (EVP_CipherInit_ex(k->gcm, cipher, NULL, key, NULL, 1) != 1) {
        goto err;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(k->hmac, key, KYUFU_CRYPTO_KEY_BYTES, params) != 1) {
        goto err;
    }
    EVP_CIPHER_free(cipher); /* the context holds its own reference */
    EVP_MAC_free(mac);
    *out = k;
    return KYUFU_CRYPTO_EOK;
err:
    if (k != NULL) {
        EVP_CIPHER_CTX_free(k->gcm);
        EVP_MAC_CTX_free(k->hmac);
        free(k);
    }
    EVP_CIPHER_free(cipher);
    EVP_MAC_free(mac);
    return rv;
}

struct kyufu_crypto_key *kyufu_storage_crypto_key_ref(
    struct kyufu_crypto_key *k)
{
    atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
    return k;
}

void kyufu_storage_crypto_key_free(struct kyufu_crypto_key *k)
{
    if (k == NULL ||
        atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    EVP_CIPHER_CTX_free(k->gcm);
    EVP_MAC_CTX_free(k->hmac);
    free(k);
}

/* HMAC-SHA256 over the concatenation of `n` parts. */
static int hmac_parts(const struct kyufu_crypto_key *k,
                      const uint8_t *const *parts,
                      const size_t *lens,
                      size_t n,
                      uint8_t out[KYUFU_CRYPTO_HASH_BYTES])
{
    int rv = KYUFU_CRYPTO_EINTERNAL;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->hmac);
    if (ctx == NULL) {
        return KYUFU_CRYPTO_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 0 && EVP_MAC_update(ctx, parts[i], lens[i]) != 1) {
            goto out;
        }
    }
    size_t got = 0;
    if (EVP_MAC_final(ctx, out, &got, KYUFU_CRYPTO_HASH_BYTES) != 1 ||
        got != KYUFU_CRYPTO_HASH_BYTES) {
        goto out;
    }
    rv = KYUFU_CRYPTO_EOK;
out:
    EVP_MAC_CTX_free(ctx);
    return rv;
}

/* u32 big-endian (a key version in a KDF context, a nonce's fields). */
static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One key: KBKDF (SP 800-108 counter mode, HMAC-SHA256) with `label` and
 * `context` (a version as u32 BE, or a snapshot's id). */
static int kbkdf(const uint8_t dek[KYUFU_CRYPTO_KEY_BYTES],
                 const char *label,
                 const uint8_t *context,
                 size_t context_len,
                 uint8_t out[KYUFU_CRYPTO_KEY_BYTES])
{
    int rv = KYUFU_CRYPTO_EINTERNAL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (ctx == NULL) {
        rv = KYUFU_CRYPTO_ENOMEM;
        goto out;
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE,
                                         (char *)"COUNTER", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, (char *)"HMAC", 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)dek,
                                          KYUFU_CRYPTO_KEY_BYTES),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label,
                                          strlen(label)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                          (void *)context, context_len),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(ctx, out, KYUFU_CRYPTO_KEY_BYTES, params) != 1) {
        goto out;
    }
    rv = KYUFU_CRYPTO_EOK;
out:
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rv;
}

int kyufu_storage_crypto_subkeys(const uint8_t dek[KYUFU_CRYPTO_KEY_BYTES],
                                 uint32_t version,
                                 struct kyufu_crypto_subkeys *out)
{
    /* OpenSSL's KBKDF takes the SP 800-108 Label as its "salt" parameter
     * and the Context as its "info". */
    uint8_t v[4];
    put_u32(v, version);
    int rv = kbkdf(dek, "kyufu at-rest enc v1", v, sizeof v, out->enc);
    if (rv == 0) {
        rv = kbkdf(dek, "kyufu at-rest nonce v1", v, sizeof v, out->nonce);
    }
    if (rv == 0) {
        rv = kbkdf(dek, "kyufu at-rest index v1", v, sizeof v, out->index);
    }
    if (rv == 0) {
        rv = kbkdf(dek, "kyufu at-rest stream v1", v, sizeof v, out->stream);
    }
    if (rv != 0) {
        kyufu_storage_crypto_wipe(out, sizeof *out);
    }
    return rv;
}

int kyufu_storage_crypto_snapshot_key(
    const uint8_t dek[KYUFU_CRYPTO_KEY_BYTES],
    uint32_t version,
    const uint8_t id[KYUFU_CRYPTO_SALT_BYTES],
    uint8_t out[KYUFU_CRYPTO_KEY_BYTES])
{
    uint8_t context[4 + KYUFU_CRYPTO_SALT_BYTES];
    put_u32(context, version);
    memcpy(context + 4, id, KYUFU_CRYPTO_SALT_BYTES);
    int rv = kbkdf(dek, "kyufu at-rest snapshot v1", context, sizeof context,
                   out);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(out, KYUFU_CRYPTO_KEY_BYTES);
    }
    return rv;
}

/* Seal (enc) or open (!enc) in one call; tag_io is written (seal) or read
 * (open).  lengths checked by the callers. */
static int gcm(bool enc,
               const struct kyufu_crypto_key *k,
               const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
               const uint8_t *aad,
               size_t aad_len,
               const uint8_t *in,
               size_t len,
               uint8_t *out,
               uint8_t tag_io[KYUFU_CRYPTO_TAG_BYTES])
{
    int rv = KYUFU_CRYPTO_EINTERNAL;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) {
        return KYUFU_CRYPTO_ENOMEM;
    }
    int n = 0;
    /* The template's key schedule, this call's nonce and direction (GCM
     * encrypts and decrypts with the same schedule). */
    if (EVP_CIPHER_CTX_copy(ctx, k->gcm) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc ? 1 : 0) != 1) {
        goto out;
    }
    if (aad_len > 0 &&
        EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1) {
        goto out;
    }
    if (len > 0 && (EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1 ||
                    (size_t)n != len)) {
        goto out;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG,
                                    KYUFU_CRYPTO_TAG_BYTES, tag_io) != 1) {
        goto out;
    }
    uint8_t tail[16];
    if (EVP_CipherFinal_ex(ctx, tail, &n) != 1) {
        /* Decrypting, this is the tag mismatch. */
        rv = enc ? KYUFU_CRYPTO_EINTERNAL : KYUFU_CRYPTO_EAUTH;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG,
                                   KYUFU_CRYPTO_TAG_BYTES, tag_io) != 1) {
        goto out;
    }
    rv = KYUFU_CRYPTO_EOK;
out:
    EVP_CIPHER_CTX_free(ctx);
    return rv;
}

int kyufu_storage_crypto_key_seal(const struct kyufu_crypto_key *k,
                                  const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                                  const uint8_t *aad,
                                  size_t aad_len,
                                  const uint8_t *in,
                                  size_t len,
                                  uint8_t *out)
{
    if (len > KYUFU_CRYPTO_TEXT_BYTES_MAX ||
        aad_len > KYUFU_CRYPTO_TEXT_BYTES_MAX || (aad == NULL && aad_len > 0)) {
        return KYUFU_CRYPTO_EINVALID;
    }
    int rv = gcm(true, k, nonce, aad, aad_len, in, len, out, out + len);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(out, len + KYUFU_CRYPTO_TAG_BYTES);
    }
    return rv;
}

int kyufu_storage_crypto_key_open(const struct kyufu_crypto_key *k,
                                  const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                                  const uint8_t *aad,
                                  size_t aad_len,
                                  const uint8_t *in,
                                  size_t in_len,
                                  uint8_t *out)
{
    if (in_len < KYUFU_CRYPTO_TAG_BYTES ||
        in_len - KYUFU_CRYPTO_TAG_BYTES > KYUFU_CRYPTO_TEXT_BYTES_MAX ||
        aad_len > KYUFU_CRYPTO_TEXT_BYTES_MAX || (aad == NULL && aad_len > 0)) {
        return KYUFU_CRYPTO_EINVALID;
    }
    size_t len = in_len - KYUFU_CRYPTO_TAG_BYTES;
    uint8_t tag[KYUFU_CRYPTO_TAG_BYTES];
    memcpy(tag, in + len, sizeof tag);
    int rv = gcm(false, k, nonce, aad, aad_len, in, len, out, tag);
    if (rv != 0) {
        /* OpenSSL has written unauthenticated plaintext: never let it out. */
        kyufu_storage_crypto_wipe(out, len);
    }
    return rv;
}

int kyufu_storage_crypto_seal(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                              const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                              const uint8_t *aad,
                              size_t aad_len,
                              const uint8_t *in,
                              size_t len,
                              uint8_t *out)
{
    struct kyufu_crypto_key *k;
    int rv = kyufu_storage_crypto_key_new(key, &k);
    if (rv == 0) {
        rv = kyufu_storage_crypto_key_seal(k, nonce, aad, aad_len, in, len,
                                           out);
        kyufu_storage_crypto_key_free(k);
    }
    return rv;
}

int kyufu_storage_crypto_open(const uint8_t key[KYUFU_CRYPTO_KEY_BYTES],
                              const uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES],
                              const uint8_t *aad,
                              size_t aad_len,
                              const uint8_t *in,
                              size_t in_len,
                              uint8_t *out)
{
    struct kyufu_crypto_key *k;
    int rv = kyufu_storage_crypto_key_new(key, &k);
    if (rv == 0) {
        rv = kyufu_storage_crypto_key_open(k, nonce, aad, aad_len, in, in_len,
                                           out);
        kyufu_storage_crypto_key_free(k);
    }
    return rv;
}

int kyufu_storage_crypto_key_record_nonce(
    const struct kyufu_crypto_key *k_nonce,
    const uint8_t salt[KYUFU_CRYPTO_SALT_BYTES],
    uint64_t index,
    uint32_t db,
    const uint8_t *key,
    size_t key_len,
    uint32_t seq,
    uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES])
{
    if (key_len > RECORD_KEY_BYTES_MAX || (key == NULL && key_len > 0)) {
        return KYUFU_CRYPTO_EINVALID;
    }
    /* Fixed-width fields, and one variable field with its length before
     * it: the encoding is injective, so distinct inputs hash distinctly
     * (up to HMAC collisions). */
    uint8_t head[8 + 4 + 4];
    put_u32(head, (uint32_t)(index >> 32));
    put_u32(head + 4, (uint32_t)index);
    put_u32(head + 8, db);
    put_u32(head + 12, (uint32_t)key_len);
    uint8_t tail[4];
    put_u32(tail, seq);
    const uint8_t *parts[] = {salt, head, key, tail};
    const size_t lens[] = {KYUFU_CRYPTO_SALT_BYTES, sizeof head, key_len,
                           sizeof tail};
    uint8_t full[KYUFU_CRYPTO_HASH_BYTES];
    int rv = hmac_parts(k_nonce, parts, lens, 4, full);
    if (rv == 0) {
        memcpy(nonce, full, KYUFU_CRYPTO_NONCE_BYTES);
    }
    kyufu_storage_crypto_wipe(full, sizeof full);
    return rv;
}

int kyufu_storage_crypto_record_nonce(
    const uint8_t k_nonce[KYUFU_CRYPTO_KEY_BYTES],
    const uint8_t salt[KYUFU_CRYPTO_SALT_BYTES],
    uint64_t index,
    uint32_t db,
    const uint8_t *key,
    size_t key_len,
    uint32_t seq,
    uint8_t nonce[KYUFU_CRYPTO_NONCE_BYTES])
{
    struct kyufu_crypto_key *k;
    int rv = kyufu_storage_crypto_key_new(k_nonce, &k);
    if (rv == 0) {
        rv = kyufu_storage_crypto_key_record_nonce(k, salt, index, db, key,
                                                   key_len, seq, nonce);
        kyufu_storage_crypto_key_free(k);
    }
    return rv;
}

int kyufu_storage_crypto_keyed_hash(
    const uint8_t k_index[KYUFU_CRYPTO_KEY_BYTES],
    const uint8_t *value,
    size_t len,
    uint8_t out[KYUFU_CRYPTO_HASH_BYTES])
{
    if (len > KYUFU_CRYPTO_TEXT_BYTES_MAX || (value == NULL && len > 0)) {
        return KYUFU_CRYPTO_EINVALID;
    }
    struct kyufu_crypto_key *k;
    int rv = kyufu_storage_crypto_key_new(k_index, &k);
    if (rv == 0) {
        const uint8_t *parts[] = {value};
        const size_t lens[] = {len};
        rv = hmac_parts(k, parts, lens, 1, out);
        kyufu_storage_crypto_key_free(k);
    }
    return rv;
}
