/* The key ring of encryption at rest: the cluster master key held in memory,
 * the per-version record keys derived from it (cached, keyed into OpenSSL
 * contexts once: a derivation is four KBKDF calls, keying a context costs
 * more than sealing a record with it), and the active key version, replicated state in meta
 * (storage.h "key ring", docs/encryption.md "Keys"). */
#include <string.h>

#include "internal.h"

void kyufu_storage_keys_set(struct kyufu_storage *s,
                            const uint8_t cmk[KYUFU_CRYPTO_KEY_BYTES])
{
    KYUFU_ASSERT(s != NULL && cmk != NULL);
    KYUFU_ASSERT(!s->has_cmk);
    memcpy(s->cmk, cmk, sizeof s->cmk);
    s->has_cmk = true;
}

bool kyufu_storage_keys_present(const struct kyufu_storage *s)
{
    return s->has_cmk;
}

uint32_t kyufu_storage_keys_active(const struct kyufu_storage *s)
{
    return s->has_cmk ? s->keys_active : 0;
}

int kyufu_storage_keys_export(const struct kyufu_storage *s,
                              uint8_t out[KYUFU_CRYPTO_KEY_BYTES])
{
    if (!s->has_cmk) {
        return KYUFU_STORAGE_EINVALID;
    }
    memcpy(out, s->cmk, KYUFU_CRYPTO_KEY_BYTES);
    return 0;
}

int kyufu_storage_keys_subkeys(const struct kyufu_storage *s,
                               uint32_t version,
                               struct kyufu_crypto_subkeys *out)
{
    if (!s->has_cmk || version == 0) {
        return KYUFU_STORAGE_EINVALID;
    }
    if (kyufu_storage_crypto_subkeys(s->cmk, version, out) != 0) {
        /* Only an allocation or an OpenSSL failure gets here. */
        return KYUFU_STORAGE_ENOMEM;
    }
    return 0;
}

int kyufu_storage_keys_snapshot_key(const struct kyufu_storage *s,
                                    uint32_t version,
                                    const uint8_t id[KYUFU_CRYPTO_SALT_BYTES],
                                    uint8_t out[KYUFU_CRYPTO_KEY_BYTES])
{
    if (!s->has_cmk || version == 0) {
        return KYUFU_STORAGE_EINVALID;
    }
    if (kyufu_storage_crypto_snapshot_key(s->cmk, version, id, out) != 0) {
        return KYUFU_STORAGE_ENOMEM;
    }
    return 0;
}

/* Key a version's record keys into *out; a failure leaves it empty. */
static int keys_make(const struct kyufu_storage *s,
                     uint32_t version,
                     struct kyufu_storage__keys *out)
{
    struct kyufu_crypto_subkeys sub;
    int rv = kyufu_storage_keys_subkeys(s, version, &sub);
    if (rv != 0) {
        return rv;
    }
    out->enc = NULL;
    out->nonce = NULL;
    if (kyufu_storage_crypto_key_new(sub.enc, &out->enc) != 0 ||
        kyufu_storage_crypto_key_new(sub.nonce, &out->nonce) != 0) {
        kyufu_storage__keys_put(out);
        rv = KYUFU_STORAGE_ENOMEM;
    }
    kyufu_storage_crypto_wipe(&sub, sizeof sub);
    return rv;
}

int kyufu_storage__keys_get(struct kyufu_storage *s,
                            uint32_t version,
                            struct kyufu_storage__keys *out)
{
    int rv = 0;
    KYUFU_ASSERT(s->has_cmk && version >= 1);
    pthread_mutex_lock(&s->keys_lock);
    struct kyufu_storage__cached_keys *hit = NULL;
    for (size_t i = 0; i < KYUFU_KEYS_CACHED_MAX && hit == NULL; i++) {
        if (s->keys_cache[i].version == version) {
            hit = &s->keys_cache[i];
        }
    }
    if (hit == NULL) {
        /* Replace round robin: versions in use are few (the active one and
         * those a rotation still re-encrypts).  A thread still using the
         * replaced keys holds its own references. */
        hit = &s->keys_cache[s->keys_next];
        s->keys_next = (s->keys_next + 1) % KYUFU_KEYS_CACHED_MAX;
        hit->version = 0;
        kyufu_storage__keys_put(&hit->k);
        rv = keys_make(s, version, &hit->k);
        if (rv == 0) {
            hit->version = version;
        }
    }
    if (rv == 0) {
        out->enc = kyufu_storage_crypto_key_ref(hit->k.enc);
        out->nonce = kyufu_storage_crypto_key_ref(hit->k.nonce);
    }
    pthread_mutex_unlock(&s->keys_lock);
    return rv;
}

void kyufu_storage__keys_put(struct kyufu_storage__keys *k)
{
    kyufu_storage_crypto_key_free(k->enc);
    kyufu_storage_crypto_key_free(k->nonce);
    k->enc = NULL;
    k->nonce = NULL;
}

int kyufu_storage__keys_active_read(struct kyufu_storage *s,
                                    MDB_txn *txn,
                                    uint32_t *version)
{
    uint64_t v;
    int rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_KEYS_ACTIVE, &v);
    if (rv != 0) {
        return rv;
    }
    if (v > UINT32_MAX) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    /* Absent: version 1, the version of every store that first gets a CMK
     * (no command needed; all replicas read the same). */
    *version = v == 0 ? 1u : (uint32_t)v;
    return 0;
}

void kyufu_storage__keys_wipe(struct kyufu_storage *s)
{
    kyufu_storage_crypto_wipe(s->cmk, sizeof s->cmk);
    /* The last reference wipes each keyed context (crypto.c); at close no
     * other thread holds one. */
    for (size_t i = 0; i < KYUFU_KEYS_CACHED_MAX; i++) {
        kyufu_storage__keys_put(&s->keys_cache[i].k);
        s->keys_cache[i].version = 0;
    }
    s->has_cmk = false;
}
