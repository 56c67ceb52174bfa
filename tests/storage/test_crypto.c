/* The encryption-at-rest primitives (storage.h "encryption at rest",
 * docs/encryption.md): known answers from an independent implementation
 * and the GCM specification, tamper detection, the nonce derivation's
 * separation of every input, and keyed contexts reused and shared by
 * threads. */
#include <pthread.h>
#include <string.h>

#include "../client/check.h"
#include "storage.h"

static void unhex(const char *h, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        CHECK(sscanf(h + 2 * i, "%2x", &v) == 1);
        out[i] = (uint8_t)v;
    }
    CHECK(strlen(h) == 2 * n);
}

static void check_hex(const uint8_t *got, const char *want)
{
    size_t n = strlen(want) / 2;
    uint8_t w[128];
    CHECK(n <= sizeof w);
    unhex(want, w, n);
    CHECK(memcmp(got, w, n) == 0);
}

/* The GCM specification's test case 16 (AES-256, 60-byte plaintext, 20
 * bytes of AAD): seal gives its ciphertext and tag; open gives the
 * plaintext back; any flipped bit of ciphertext, tag, AAD, nonce or key
 * fails with AUTH and leaves no plaintext in the output. */
static void test_gcm_known_answer_and_tamper(void)
{
    uint8_t key[32], iv[12], pt[60], aad[20], ct[60 + 16], back[60];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          key, 32);
    unhex("cafebabefacedbaddecaf888", iv, 12);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          pt, 60);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
    CHECK_EQ_INT(kyufu_storage_crypto_seal(key, iv, aad, 20, pt, 60, ct), 0);
    check_hex(ct, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd"
                  "2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
                  "bcc9f662");
    check_hex(ct + 60, "76fc6ece0f4e1768cddf8853bb2d551b");
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back), 0);
    CHECK(memcmp(back, pt, 60) == 0);

    for (size_t bit = 0; bit < 76 * 8; bit += 7) {
        ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memset(back, 0xAA, sizeof back);
        CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back),
                     KYUFU_CRYPTO_EAUTH);
        for (size_t i = 0; i < 60; i++) {
            CHECK(back[i] != pt[i] || pt[i] == 0); /* wiped, not plaintext */
        }
        ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    aad[19] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back),
                 KYUFU_CRYPTO_EAUTH);
    aad[19] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 19, ct, 76, back),
                 KYUFU_CRYPTO_EAUTH);
    iv[0] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back),
                 KYUFU_CRYPTO_EAUTH);
    iv[0] ^= 1;
    key[31] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back),
                 KYUFU_CRYPTO_EAUTH);
    key[31] ^= 1;
    /* Truncated: a tag cut short, or dropped bytes, never verify. */
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 75, back),
                 KYUFU_CRYPTO_EAUTH);
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 15, back),
                 KYUFU_CRYPTO_EINVALID);
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, aad, 20, ct, 76, back), 0);
}

/* Empty plaintext and no AAD still authenticate (a tag alone). */
static void test_gcm_empty(void)
{
    uint8_t key[32] = {1}, iv[12] = {2}, ct[16], back[1];
    CHECK_EQ_INT(kyufu_storage_crypto_seal(key, iv, NULL, 0, NULL, 0, ct), 0);
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, NULL, 0, ct, 16, back), 0);
    ct[0] ^= 0x80;
    CHECK_EQ_INT(kyufu_storage_crypto_open(key, iv, NULL, 0, ct, 16, back),
                 KYUFU_CRYPTO_EAUTH);
    CHECK_EQ_INT(kyufu_storage_crypto_seal(key, iv, NULL, 3, NULL, 0, ct),
                 KYUFU_CRYPTO_EINVALID);
}

/* SP 800-108 counter mode, HMAC-SHA256, label ‖ 0x00 ‖ context ‖ L: the
 * values of Python cryptography's KBKDFHMAC (an implementation of its own)
 * for data key 00 01 .. 1f, version 7.  Versions and labels separate; the
 * snapshot key (format 3) likewise. */
static void test_subkeys(void)
{
    uint8_t dek[32];
    for (int i = 0; i < 32; i++) {
        dek[i] = (uint8_t)i;
    }
    struct kyufu_crypto_subkeys k, k8;
    CHECK_EQ_INT(kyufu_storage_crypto_subkeys(dek, 7, &k), 0);
    check_hex(k.enc, "043730efc84dc8a3f735e50c42db0e91"
                     "db464142b42d2e68ed74ac954258f186");
    check_hex(k.nonce, "0d05988bf54beb7436028640d663932d"
                       "005ea5c6adace6011d14a76aa4c96bcf");
    check_hex(k.index, "fe6affe184c28517746f19c595f81ae5"
                       "6b66dde8d7d8f0214ef57f6879adade2");
    check_hex(k.stream, "e4051b0dfaac10a2d04e7fbcb8b6b06f"
                        "177f080317ec6b765697a8103cfb99b5");
    CHECK_EQ_INT(kyufu_storage_crypto_subkeys(dek, 8, &k8), 0);
    CHECK(memcmp(k.enc, k8.enc, 32) != 0);
    CHECK(memcmp(k.nonce, k8.nonce, 32) != 0);
    CHECK(memcmp(k.index, k8.index, 32) != 0);
    CHECK(memcmp(k.stream, k8.stream, 32) != 0);
    CHECK(memcmp(k.stream, k.enc, 32) != 0);
    /* A format-3 snapshot's key: label "kyufu at-rest snapshot v1",
     * context version 7 ‖ id a5 x 16 (the same KBKDFHMAC); another id or
     * version gives another key, and none is a subkey. */
    uint8_t id[16], snap[32], other[32];
    memset(id, 0xa5, sizeof id);
    CHECK_EQ_INT(kyufu_storage_crypto_snapshot_key(dek, 7, id, snap), 0);
    check_hex(snap, "d3194e96810043fd23dd2bda9ca4d704"
                    "a74442bc1b5509477279a3b342af0b44");
    id[15] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_snapshot_key(dek, 7, id, other), 0);
    CHECK(memcmp(snap, other, 32) != 0);
    id[15] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_snapshot_key(dek, 8, id, other), 0);
    CHECK(memcmp(snap, other, 32) != 0);
    CHECK(memcmp(snap, k.stream, 32) != 0 && memcmp(snap, k.enc, 32) != 0);
    kyufu_storage_crypto_wipe(&k, sizeof k);
    for (size_t i = 0; i < sizeof k.enc; i++) {
        CHECK(k.enc[i] == 0);
    }
}

/* The record nonce: HMAC-SHA256 known answer (Python's hmac), and each
 * input (salt, index, db, key, seq) changes it; a key and a seq that would
 * concatenate alike without the length prefix do not collide. */
static void test_record_nonce(void)
{
    uint8_t kn[32], salt[16], n[12], m[12];
    memset(kn, 0x11, sizeof kn);
    memset(salt, 0x22, sizeof salt);
    const uint8_t *key = (const uint8_t *)"H-0001";
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 3, key, 6, 2,
                                                   n), 0);
    check_hex(n, "9eb74b91fa80f5f937587755");

    salt[15] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 3, key, 6, 2,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) != 0);
    salt[15] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 6, 3, key, 6, 2,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) != 0);
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 4, key, 6, 2,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) != 0);
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 3, key, 5, 2,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) != 0);
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 3, key, 6, 3,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) != 0);
    /* Same inputs, same nonce: replicas write identical bytes. */
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 5, 3, key, 6, 2,
                                                   m), 0);
    CHECK(memcmp(n, m, 12) == 0);
    /* key "ab" seq 0x63000000 vs key "abc" seq 0: same bytes if the key's
     * length were not encoded before it. */
    uint8_t a[12], b[12];
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(
                     kn, salt, 1, 1, (const uint8_t *)"ab", 2, 0x63000000u, a),
                 0);
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(
                     kn, salt, 1, 1, (const uint8_t *)"abc", 3, 0, b),
                 0);
    CHECK(memcmp(a, b, 12) != 0);
    uint8_t big[600] = {0};
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 1, 1, big, 512,
                                                   0, a),
                 KYUFU_CRYPTO_EINVALID);
    CHECK_EQ_INT(kyufu_storage_crypto_record_nonce(kn, salt, 1, 1, big, 511,
                                                   0, a),
                 0);
}

/* Keyed hash: HMAC-SHA256 known answer; another key, another hash. */
static void test_keyed_hash(void)
{
    uint8_t k[32], h[32], h2[32];
    memset(k, 0x33, sizeof k);
    const uint8_t *v = (const uint8_t *)"Yamada Taro";
    CHECK_EQ_INT(kyufu_storage_crypto_keyed_hash(k, v, 11, h), 0);
    check_hex(h, "b39da1c29fbe8adb1de7adfa4ab67342"
                 "c7ec064ac02f5bb57a067521feea5261");
    k[0] ^= 1;
    CHECK_EQ_INT(kyufu_storage_crypto_keyed_hash(k, v, 11, h2), 0);
    CHECK(memcmp(h, h2, 32) != 0);
}

/* The GCM specification's test case 16 again, through one keyed context
 * (storage.h "keyed contexts") used over and over: every seal gives the
 * known answer, a failed open (tampered) leaves the key as it was, and the
 * same key's HMAC gives the record nonce's known answer between seals. */
static void test_keyed_reuse(void)
{
    uint8_t key[32], iv[12], pt[60], aad[20], ct[60 + 16], back[60];
    unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
          key, 32);
    unhex("cafebabefacedbaddecaf888", iv, 12);
    unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
          "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
          pt, 60);
    unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, 20);
    struct kyufu_crypto_key *k = NULL;
    CHECK_EQ_INT(kyufu_storage_crypto_key_new(key, &k), 0);
    CHECK(k != NULL);
    uint8_t kn[32], salt[16], n[12];
    memset(kn, 0x11, sizeof kn);
    memset(salt, 0x22, sizeof salt);
    struct kyufu_crypto_key *kk = NULL;
    CHECK_EQ_INT(kyufu_storage_crypto_key_new(kn, &kk), 0);
    for (int round = 0; round < 3; round++) {
        memset(ct, 0, sizeof ct);
        CHECK_EQ_INT(kyufu_storage_crypto_key_seal(k, iv, aad, 20, pt, 60, ct),
                     0);
        check_hex(ct, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd"
                      "2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0a"
                      "bcc9f662");
        check_hex(ct + 60, "76fc6ece0f4e1768cddf8853bb2d551b");
        ct[3] ^= 1;
        CHECK_EQ_INT(kyufu_storage_crypto_key_open(k, iv, aad, 20, ct, 76,
                                                   back),
                     KYUFU_CRYPTO_EAUTH);
        ct[3] ^= 1;
        CHECK_EQ_INT(kyufu_storage_crypto_key_open(k, iv, aad, 20, ct, 76,
                                                   back),
                     0);
        CHECK(memcmp(back, pt, 60) == 0);
        /* Another nonce and plaintext: another ciphertext, not a keystream
         * left over from the call before. */
        uint8_t iv2[12], ct2[8 + 16];
        memcpy(iv2, iv, 12);
        iv2[11] ^= (uint8_t)(round + 1);
        CHECK_EQ_INT(kyufu_storage_crypto_key_seal(k, iv2, NULL, 0, pt, 8, ct2),
                     0);
        CHECK(memcmp(ct2, ct, 8) != 0);
        CHECK_EQ_INT(kyufu_storage_crypto_key_record_nonce(
                         kk, salt, 5, 3, (const uint8_t *)"H-0001", 6, 2, n),
                     0);
        check_hex(n, "9eb74b91fa80f5f937587755");
        CHECK_EQ_INT(kyufu_storage_crypto_key_record_nonce(
                         kk, salt, 5, 3, (const uint8_t *)"H-0001", 6, 3, n),
                     0);
    }
    /* Invalid arguments are refused before any context is touched. */
    CHECK_EQ_INT(kyufu_storage_crypto_key_seal(k, iv, NULL, 3, pt, 60, ct),
                 KYUFU_CRYPTO_EINVALID);
    CHECK_EQ_INT(kyufu_storage_crypto_key_open(k, iv, aad, 20, ct, 15, back),
                 KYUFU_CRYPTO_EINVALID);
    /* References: the key lives until the last one is dropped. */
    CHECK(kyufu_storage_crypto_key_ref(k) == k);
    kyufu_storage_crypto_key_free(k);
    CHECK_EQ_INT(kyufu_storage_crypto_key_open(k, iv, aad, 20, ct, 76, back),
                 0);
    kyufu_storage_crypto_key_free(k);
    kyufu_storage_crypto_key_free(kk);
    kyufu_storage_crypto_key_free(NULL);
}

/* One keyed context shared by threads at once, as the store's keys are
 * (apply on the loop, reads on offload workers, snapshot threads): each
 * thread's seals, opens and nonces equal the one-shot calls' results. */
#define THREADS 4
#define THREAD_ROUNDS 300

struct thread_arg
{
    struct kyufu_crypto_key *k;
    const uint8_t *raw;
    unsigned id;
    int failures;
};

static void *thread_run(void *p)
{
    struct thread_arg *a = p;
    for (unsigned i = 0; i < THREAD_ROUNDS; i++) {
        uint8_t iv[12] = {0}, pt[40], ct[40 + 16], want[40 + 16], back[40];
        iv[0] = (uint8_t)a->id;
        iv[1] = (uint8_t)i;
        iv[2] = (uint8_t)(i >> 8);
        memset(pt, (int)(a->id * 31 + i), sizeof pt);
        uint8_t n1[12], n2[12], salt[16] = {(uint8_t)a->id};
        if (kyufu_storage_crypto_key_seal(a->k, iv, iv, 3, pt, 40, ct) != 0 ||
            kyufu_storage_crypto_seal(a->raw, iv, iv, 3, pt, 40, want) != 0 ||
            memcmp(ct, want, sizeof ct) != 0 ||
            kyufu_storage_crypto_key_open(a->k, iv, iv, 3, ct, sizeof ct,
                                          back) != 0 ||
            memcmp(back, pt, sizeof pt) != 0 ||
            kyufu_storage_crypto_key_record_nonce(a->k, salt, i, a->id, pt, 7,
                                                  i, n1) != 0 ||
            kyufu_storage_crypto_record_nonce(a->raw, salt, i, a->id, pt, 7, i,
                                              n2) != 0 ||
            memcmp(n1, n2, 12) != 0) {
            a->failures++;
        }
    }
    kyufu_storage_crypto_key_free(a->k); /* this thread's reference */
    return NULL;
}

static void test_keyed_threads(void)
{
    uint8_t raw[32];
    for (size_t i = 0; i < sizeof raw; i++) {
        raw[i] = (uint8_t)(0xC0 + i);
    }
    struct kyufu_crypto_key *k = NULL;
    CHECK_EQ_INT(kyufu_storage_crypto_key_new(raw, &k), 0);
    pthread_t t[THREADS];
    struct thread_arg a[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        a[i] = (struct thread_arg){kyufu_storage_crypto_key_ref(k), raw, i, 0};
        CHECK(pthread_create(&t[i], NULL, thread_run, &a[i]) == 0);
    }
    kyufu_storage_crypto_key_free(k); /* the threads' references keep it */
    for (unsigned i = 0; i < THREADS; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK_EQ_INT(a[i].failures, 0);
    }
}

static void test_strerror(void)
{
    CHECK(strstr(kyufu_storage_crypto_strerror(KYUFU_CRYPTO_EAUTH),
                 "authentication") != NULL);
    CHECK(kyufu_storage_crypto_strerror(-99) != NULL);
}

int main(void)
{
    test_gcm_known_answer_and_tamper();
    test_gcm_empty();
    test_subkeys();
    test_record_nonce();
    test_keyed_hash();
    test_keyed_reuse();
    test_keyed_threads();
    test_strerror();
    puts("crypto: ok");
    return 0;
}
