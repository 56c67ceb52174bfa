/* SHA-256 of a few parts, with the algorithm fetched from OpenSSL once per
 * process.
 *
 * EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) makes OpenSSL 3 look the
 * algorithm up in its provider store on every call (an implicit
 * EVP_MD_fetch: a lock, a hash-table lookup, about 2.5 k instructions).
 * Apply hashes each audit record twice (append, then the invariant check)
 * and each command once (its key's owner digest), so that lookup was
 * about 6 % of every replica's apply instructions (docs/benchmarks.md,
 * "What limits the plateau").  The digest itself is unchanged.
 */
#include <pthread.h>

#include <openssl/evp.h>

#include "internal.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
/* Held for the life of the process (still reachable: not a leak). */
static EVP_MD *sha256_md;

static void fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int kyufu_storage__sha256(const uint8_t *const parts[],
                          const size_t lens[],
                          size_t n,
                          uint8_t out[32])
{
    unsigned outlen = 0;
    int rv = 0;
    KYUFU_ASSERT(parts != NULL && lens != NULL && out != NULL);
    pthread_once(&once, fetch);
    if (sha256_md == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex2(ctx, sha256_md, NULL) != 1) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > 0 && EVP_DigestUpdate(ctx, parts[i], lens[i]) != 1) {
            rv = KYUFU_STORAGE_ENOMEM;
            goto out;
        }
    }
    if (EVP_DigestFinal_ex(ctx, out, &outlen) != 1 || outlen != 32) {
        rv = KYUFU_STORAGE_ENOMEM;
    }
out:
    EVP_MD_CTX_free(ctx);
    return rv;
}
