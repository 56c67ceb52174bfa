/* The key ring of encryption at rest: the cluster master key held in memory
 * and the per-version subkeys derived from it (storage.h "key ring",
 * docs/encryption.md "Keys"). */
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
