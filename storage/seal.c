/* The stored value format of encryption at rest (docs/encryption.md "Store
 * records", docs/storage.md "Sealed values").
 *
 * A sealed LMDB value is
 *
 *   0x00 | format (1) | key version (u32 BE) | nonce (12) | ciphertext | tag
 * (16)
 *
 * sealed with AES-256-GCM under the `enc` subkey of the key version, with
 * associated data db number (u32 BE) ‖ the record's LMDB key, so a value
 * moved to another key or db fails authentication.  The nonce is
 * kyufu_storage_crypto_record_nonce(nonce subkey, entry salt, raft index,
 * db, key, seq), seq counting the seals of the entry being applied
 * (s->seal, set by apply for each attempt at an entry): replicas applying
 * one entry write identical bytes, and no two seals under one key share a
 * nonce unless two salts collide (docs/encryption.md "Nonces").
 *
 * A value whose first byte is not 0x00 is a legacy plaintext record (a
 * protobuf encoding never starts with 0x00: field number 0 is invalid) and
 * reads as before.  A value that fails authentication is CORRUPT: the log
 * line names the db and the key, never content; nothing of it is used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SEAL_MARK 0x00u
#define SEAL_FORMAT_V1 0x01u
#define SEAL_HEAD_BYTES (1u + 1u + 4u + KYUFU_CRYPTO_NONCE_BYTES)
#define SEAL_AAD_BYTES_MAX (4u + KYUFU_SNAPSHOT_KEY_BYTES_MAX)

/* The dbs whose values are sealed when the store has a CMK, and why
 * (docs/storage.md "Sealed values" lists the others and why not). */
static const bool sealed_dbs[KYUFU_DB_COUNT] = {
    [KYUFU_DB_HOUSEHOLDS] = true,   /* names, address, bank account */
    [KYUFU_DB_APPLICATIONS] = true, /* free-text reasons about a household */
    [KYUFU_DB_STAFF] = true,        /* staff display names */
    [KYUFU_DB_SESSIONS] = true,     /* results carry the Household (the
                                     * CommandResult part only, session.c) */
    [KYUFU_DB_AUDIT] = true,        /* messages and objects of commands */
    [KYUFU_DB_CREDENTIAL] = true,   /* password hashes, TOTP secrets */
    [KYUFU_DB_AUTH_SESSION] = true, /* a person's sign-in: peer, terminal */
};

bool kyufu_storage__sealed_db(enum kyufu_storage__db db)
{
    KYUFU_ASSERT((unsigned)db < KYUFU_DB_COUNT);
    return sealed_dbs[db];
}

bool kyufu_storage__seal_on(const struct kyufu_storage *s,
                            enum kyufu_storage__db db)
{
    return s->has_cmk && kyufu_storage__sealed_db(db);
}

static size_t make_aad(uint8_t *aad,
                       enum kyufu_storage__db db,
                       const void *key,
                       size_t klen)
{
    KYUFU_ASSERT(klen <= KYUFU_SNAPSHOT_KEY_BYTES_MAX);
    kyufu_storage__put_u32(aad, (uint32_t)db);
    memcpy(aad + 4, key, klen);
    return 4 + klen;
}

/* The key of a log line: printable bytes as they are, else hex (keys are
 * administrative numbers, ids and client ids, never personal data). */
static void name_key(const uint8_t *key, size_t klen, char *out, size_t cap)
{
    bool printable = true;
    for (size_t i = 0; i < klen; i++) {
        printable = printable && key[i] >= 0x21 && key[i] <= 0x7e;
    }
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < klen && n + 3 < cap; i++) {
        n += (size_t)snprintf(out + n, cap - n, printable ? "%c" : "%02x",
                              key[i]);
    }
}

static void log_failure(enum kyufu_storage__db db,
                        const void *key,
                        size_t klen,
                        const char *why)
{
    char name[2 * 64 + 1];
    name_key(key, klen < 64 ? klen : 64, name, sizeof name);
    fprintf(stderr,
            "kyufu storage: stored value in db %s, key %s%s, %s: not used\n",
            kyufu_storage__db_names[db], name, klen > 64 ? "..." : "", why);
}

int kyufu_storage__seal(struct kyufu_storage *s,
                        enum kyufu_storage__db db,
                        const void *key,
                        size_t klen,
                        const uint8_t *plain,
                        size_t plen,
                        uint8_t **out,
                        size_t *out_len)
{
    struct kyufu_storage__keys k;
    uint8_t aad[SEAL_AAD_BYTES_MAX];
    int rv;
    KYUFU_ASSERT(kyufu_storage__seal_on(s, db));
    /* Sealing happens only while apply writes an entry: its salt and index
     * make the nonce (a seal elsewhere would repeat one). */
    KYUFU_ASSERT(s->seal.active);
    KYUFU_ASSERT(s->seal.seq < UINT32_MAX);
    if (plen > KYUFU_CRYPTO_TEXT_BYTES_MAX) {
        return KYUFU_STORAGE_EINVALID;
    }
    uint32_t version = s->keys_active;
    KYUFU_ASSERT(version >= 1);
    size_t n = SEAL_HEAD_BYTES + plen + KYUFU_CRYPTO_TAG_BYTES;
    uint8_t *buf = malloc(n);
    if (buf == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    rv = kyufu_storage__keys_get(s, version, &k);
    if (rv != 0) {
        goto err_after_alloc;
    }
    buf[0] = SEAL_MARK;
    buf[1] = SEAL_FORMAT_V1;
    kyufu_storage__put_u32(buf + 2, version);
    if (kyufu_storage_crypto_key_record_nonce(
            k.nonce, s->seal.salt, s->seal.index, (uint32_t)db, key, klen,
            s->seal.seq, buf + 6) != 0) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_keys;
    }
    s->seal.seq++;
    size_t alen = make_aad(aad, db, key, klen);
    if (kyufu_storage_crypto_key_seal(k.enc, buf + 6, aad, alen, plain, plen,
                                      buf + SEAL_HEAD_BYTES) != 0) {
        rv = KYUFU_STORAGE_ENOMEM;
        goto err_after_keys;
    }
    kyufu_storage__keys_put(&k);
    *out = buf;
    *out_len = n;
    return 0;

err_after_keys:
    kyufu_storage__keys_put(&k);
err_after_alloc:
    free(buf);
    KYUFU_ASSERT(rv != 0);
    return rv;
}

bool kyufu_storage__is_sealed(const uint8_t *stored, size_t len)
{
    return len > 0 && stored[0] == SEAL_MARK;
}

uint32_t kyufu_storage__sealed_version(const uint8_t *stored, size_t len)
{
    if (!kyufu_storage__is_sealed(stored, len) ||
        len < SEAL_HEAD_BYTES + KYUFU_CRYPTO_TAG_BYTES) {
        return 0;
    }
    return kyufu_storage__get_u32(stored + 2);
}

int kyufu_storage__unseal(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const void *key,
                          size_t klen,
                          const uint8_t *stored,
                          size_t len,
                          const uint8_t **plain,
                          size_t *plen,
                          uint8_t **owned)
{
    struct kyufu_storage__keys k;
    uint8_t aad[SEAL_AAD_BYTES_MAX];
    *owned = NULL;
    if (!kyufu_storage__is_sealed(stored, len)) {
        *plain = stored; /* legacy plaintext */
        *plen = len;
        return 0;
    }
    if (len < SEAL_HEAD_BYTES + KYUFU_CRYPTO_TAG_BYTES ||
        stored[1] != SEAL_FORMAT_V1 || klen > KYUFU_SNAPSHOT_KEY_BYTES_MAX) {
        log_failure(db, key, klen, "unknown or truncated sealed format");
        return KYUFU_STORAGE_ECORRUPT;
    }
    uint32_t version = kyufu_storage__get_u32(stored + 2);
    if (!s->has_cmk || version == 0) {
        log_failure(
            db, key, klen,
            s->has_cmk ? "key version 0" : "sealed but the store has no key");
        return KYUFU_STORAGE_ECORRUPT;
    }
    size_t n = len - SEAL_HEAD_BYTES - KYUFU_CRYPTO_TAG_BYTES;
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    int rv = kyufu_storage__keys_get(s, version, &k);
    if (rv != 0) {
        free(buf);
        return rv;
    }
    size_t alen = make_aad(aad, db, key, klen);
    int crv = kyufu_storage_crypto_key_open(k.enc, stored + 6, aad, alen,
                                            stored + SEAL_HEAD_BYTES,
                                            len - SEAL_HEAD_BYTES, buf);
    kyufu_storage__keys_put(&k);
    if (crv != 0) {
        free(buf);
        if (crv == KYUFU_CRYPTO_EAUTH) {
            log_failure(db, key, klen, "failed authentication");
            return KYUFU_STORAGE_ECORRUPT;
        }
        return KYUFU_STORAGE_ENOMEM;
    }
    *owned = buf;
    *plain = buf;
    *plen = n;
    return 0;
}

int kyufu_storage__unpack(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const MDB_val *k,
                          const MDB_val *v,
                          const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **out)
{
    const uint8_t *plain;
    size_t plen;
    uint8_t *owned;
    *out = NULL;
    int rv = kyufu_storage__unseal(s, db, k->mv_data, k->mv_size, v->mv_data,
                                   v->mv_size, &plain, &plen, &owned);
    if (rv != 0) {
        return rv;
    }
    *out = protobuf_c_message_unpack(desc, NULL, plen, plain);
    if (owned != NULL) {
        kyufu_storage_crypto_wipe(owned, plen);
        free(owned);
    }
    return *out == NULL ? KYUFU_STORAGE_ECORRUPT : 0;
}

ProtobufCMessage *kyufu_storage__unpack_or_null(
    struct kyufu_storage *s,
    enum kyufu_storage__db db,
    const MDB_val *k,
    const MDB_val *v,
    const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m;
    return kyufu_storage__unpack(s, db, k, v, desc, &m) == 0 ? m : NULL;
}

int kyufu_storage__encode(struct kyufu_storage *s,
                          enum kyufu_storage__db db,
                          const void *key,
                          size_t klen,
                          const ProtobufCMessage *m,
                          uint8_t **out,
                          size_t *len)
{
    uint8_t *plain;
    size_t plen;
    int rv = kyufu_storage__pack(m, &plain, &plen);
    if (rv != 0) {
        return rv;
    }
    if (!kyufu_storage__seal_on(s, db)) {
        *out = plain;
        *len = plen;
        return 0;
    }
    rv = kyufu_storage__seal(s, db, key, klen, plain, plen, out, len);
    kyufu_storage_crypto_wipe(plain, plen);
    free(plain);
    return rv;
}

void kyufu_storage__seal_begin(struct kyufu_storage *s,
                               uint64_t index,
                               const uint8_t *salt,
                               size_t salt_len)
{
    KYUFU_ASSERT(!s->seal.active);
    /* An entry proposed before encryption at rest has no salt: 16 zero
     * bytes (enc-common 3; such entries came from the one old timeline). */
    memset(s->seal.salt, 0, sizeof s->seal.salt);
    if (salt_len == KYUFU_CRYPTO_SALT_BYTES) {
        memcpy(s->seal.salt, salt, salt_len);
    }
    s->seal.index = index;
    s->seal.seq = 0;
    s->seal.active = true;
}

void kyufu_storage__seal_end(struct kyufu_storage *s)
{
    s->seal.active = false;
}
