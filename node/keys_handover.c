/* A joining node's cluster key, handed over by a member: see keys.h.
 * OpenSSL EVP only: P-256 ECDH (EVP_PKEY_derive with the peer key
 * validated), HKDF-SHA256 (EVP_KDF "HKDF"), AES-256-GCM (storage's
 * kyufu_storage_crypto_seal/open).  Every secret (ECDH output, K, the
 * CMK on a failure) is wiped before return. */
#include "keys.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "storage.h"

#define INFO_LABEL "kyufu cmk handover v1"
#define INFO_BYTES                                                           \
    (sizeof INFO_LABEL - 1 + 8 + 2 * KYUFU_KEYS_HANDOVER_PUB_BYTES)
#define SECRET_BYTES_MAX 66u /* P-256: 32 */

_Static_assert(KYUFU_KEYS_HANDOVER_NONCE_BYTES == KYUFU_CRYPTO_NONCE_BYTES,
               "nonce size");
_Static_assert(KYUFU_KEYS_HANDOVER_SEALED_BYTES ==
                   KYUFU_KEYS_KEY_BYTES + KYUFU_CRYPTO_TAG_BYTES,
               "sealed size");

static EVP_PKEY *new_key(void)
{
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static int public_of(EVP_PKEY *k, uint8_t out[KYUFU_KEYS_HANDOVER_PUB_BYTES])
{
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        out, KYUFU_KEYS_HANDOVER_PUB_BYTES,
                                        &len) != 1 ||
        len != KYUFU_KEYS_HANDOVER_PUB_BYTES || out[0] != 0x04) {
        return -1;
    }
    return 0;
}

/* The peer's public key from its uncompressed point; NULL when it is not
 * one on P-256 (checked again by derive_set_peer_ex's validation). */
static EVP_PKEY *peer_key(const uint8_t *pub, size_t len)
{
    if (len != KYUFU_KEYS_HANDOVER_PUB_BYTES || pub[0] != 0x04) {
        return NULL;
    }
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                         (char *)"prime256v1", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                          (void *)pub, len),
        OSSL_PARAM_construct_end(),
    };
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return k;
}

/* K from our key and the peer's public key; info as in keys.h.  0 or -1
 * (k wiped). */
static int derive(EVP_PKEY *own, EVP_PKEY *peer,
                  const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                  const uint8_t *info, size_t info_len,
                  uint8_t k[KYUFU_KEYS_KEY_BYTES])
{
    uint8_t secret[SECRET_BYTES_MAX];
    size_t secret_len = sizeof secret;
    int rv = -1;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, own, NULL);
    if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
        EVP_PKEY_derive_set_peer_ex(ctx, peer, 1) != 1 ||
        EVP_PKEY_derive(ctx, secret, &secret_len) != 1) {
        goto out;
    }
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, secret,
                                          secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                          (void *)ca_hash,
                                          KYUFU_KEYS_CA_HASH_BYTES),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info,
                                          info_len),
        OSSL_PARAM_construct_end(),
    };
    if (kctx == NULL ||
        EVP_KDF_derive(kctx, k, KYUFU_KEYS_KEY_BYTES, params) != 1) {
        goto out;
    }
    rv = 0;
out:
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(ctx);
    kyufu_storage_crypto_wipe(secret, sizeof secret);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(k, KYUFU_KEYS_KEY_BYTES);
    }
    return rv;
}

static void make_info(uint64_t joiner_id, const uint8_t *joiner_pub,
                      const uint8_t *member_pub, uint8_t info[INFO_BYTES])
{
    size_t o = sizeof INFO_LABEL - 1;
    memcpy(info, INFO_LABEL, o);
    for (int i = 7; i >= 0; i--) {
        info[o++] = (uint8_t)(joiner_id >> (8 * i));
    }
    memcpy(info + o, joiner_pub, KYUFU_KEYS_HANDOVER_PUB_BYTES);
    memcpy(info + o + KYUFU_KEYS_HANDOVER_PUB_BYTES, member_pub,
           KYUFU_KEYS_HANDOVER_PUB_BYTES);
}

int kyufu_keys_handover_begin(struct kyufu_keys_handover *h, char *errmsg,
                              size_t errmsg_len)
{
    EVP_PKEY *k = new_key();
    if (k == NULL || public_of(k, h->pub) != 0) {
        EVP_PKEY_free(k);
        h->eph = NULL;
        snprintf(errmsg, errmsg_len, "cannot make an ECDH P-256 key");
        return -1;
    }
    h->eph = k;
    return 0;
}

void kyufu_keys_handover_free(struct kyufu_keys_handover *h)
{
    EVP_PKEY_free(h->eph);
    h->eph = NULL;
}

int kyufu_keys_handover_finish(const struct kyufu_keys_handover *h,
                               uint64_t joiner_id,
                               const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                               const uint8_t *member_pub,
                               size_t member_pub_len, const uint8_t *nonce,
                               size_t nonce_len, const uint8_t *sealed,
                               size_t sealed_len,
                               uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                               char *errmsg, size_t errmsg_len)
{
    uint8_t k[KYUFU_KEYS_KEY_BYTES];
    uint8_t info[INFO_BYTES];
    int rv = -1;
    EVP_PKEY *peer = peer_key(member_pub, member_pub_len);
    if (peer == NULL || nonce_len != KYUFU_KEYS_HANDOVER_NONCE_BYTES ||
        sealed_len != KYUFU_KEYS_HANDOVER_SEALED_BYTES) {
        snprintf(errmsg, errmsg_len,
                 "the member's answer is malformed (public key, nonce or "
                 "sealed key of the wrong size or not a P-256 point)");
        goto out;
    }
    make_info(joiner_id, h->pub, member_pub, info);
    if (derive(h->eph, peer, ca_hash, info, sizeof info, k) != 0) {
        snprintf(errmsg, errmsg_len, "ECDH or HKDF failed in OpenSSL");
        goto out;
    }
    if (kyufu_storage_crypto_open(k, nonce, info, sizeof info, sealed,
                                  sealed_len, cmk) != 0) {
        snprintf(errmsg, errmsg_len,
                 "the member's sealed cluster key does not open (another "
                 "cluster, or a tampered answer)");
        goto out;
    }
    rv = 0;
out:
    EVP_PKEY_free(peer);
    kyufu_storage_crypto_wipe(k, sizeof k);
    if (rv != 0) {
        kyufu_storage_crypto_wipe(cmk, KYUFU_KEYS_KEY_BYTES);
    }
    return rv;
}

int kyufu_keys_handover_seal(uint64_t joiner_id,
                             const uint8_t ca_hash[KYUFU_KEYS_CA_HASH_BYTES],
                             const uint8_t *joiner_pub, size_t joiner_pub_len,
                             const uint8_t cmk[KYUFU_KEYS_KEY_BYTES],
                             uint8_t member_pub[KYUFU_KEYS_HANDOVER_PUB_BYTES],
                             uint8_t nonce[KYUFU_KEYS_HANDOVER_NONCE_BYTES],
                             uint8_t sealed[KYUFU_KEYS_HANDOVER_SEALED_BYTES],
                             char *errmsg, size_t errmsg_len)
{
    uint8_t k[KYUFU_KEYS_KEY_BYTES];
    uint8_t info[INFO_BYTES];
    int rv = -1;
    EVP_PKEY *own = NULL;
    EVP_PKEY *peer = peer_key(joiner_pub, joiner_pub_len);
    if (peer == NULL) {
        snprintf(errmsg, errmsg_len,
                 "public_key: not an uncompressed P-256 point of %u bytes",
                 KYUFU_KEYS_HANDOVER_PUB_BYTES);
        goto out;
    }
    own = new_key();
    if (own == NULL || public_of(own, member_pub) != 0 ||
        RAND_bytes(nonce, KYUFU_KEYS_HANDOVER_NONCE_BYTES) != 1) {
        snprintf(errmsg, errmsg_len, "cannot make an ECDH key or a nonce");
        goto out;
    }
    make_info(joiner_id, joiner_pub, member_pub, info);
    if (derive(own, peer, ca_hash, info, sizeof info, k) != 0) {
        snprintf(errmsg, errmsg_len,
                 "public_key: ECDH with it failed (not a valid P-256 point)");
        goto out;
    }
    if (kyufu_storage_crypto_seal(k, nonce, info, sizeof info, cmk,
                                  KYUFU_KEYS_KEY_BYTES, sealed) != 0) {
        snprintf(errmsg, errmsg_len, "sealing failed in OpenSSL");
        goto out;
    }
    rv = 0;
out:
    EVP_PKEY_free(own);
    EVP_PKEY_free(peer);
    kyufu_storage_crypto_wipe(k, sizeof k);
    return rv;
}
