/* node/keys.h: the key files of encryption at rest (docs/encryption.md).
 * Each malformed or misplaced file is refused with a clear message and
 * yields no key; a wrapped cluster key opens only with its KEK, its node's
 * binding and an untouched file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../client/check.h"
#include "keys.h"
#include "storage.h"

static char dir[] = "/tmp/kyufu-test-keys-XXXXXX";
static char errmsg[512];

static void put(const char *name, const void *data, size_t len, mode_t mode)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

static const char *at(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0)
            return false;
    }
    return true;
}

/* A made key file reads back; the parser takes exactly 64 hex digits with
 * an optional newline, nothing else, and never from a file others can read
 * or write. */
static void test_kek_file(void)
{
    uint8_t k1[32], k2[32];
    CHECK_EQ_INT(kyufu_keys_kek_create(dir, "kek", errmsg, sizeof errmsg), 0);
    struct stat st;
    CHECK(stat(at("kek"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("kek"), k1, errmsg, sizeof errmsg),
                 0);
    CHECK(!zero(k1, 32));
    /* Never overwritten. */
    CHECK_EQ_INT(kyufu_keys_kek_create(dir, "kek", errmsg, sizeof errmsg),
                 -1);
    CHECK(strstr(errmsg, "File exists") != NULL);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("kek"), k2, errmsg, sizeof errmsg),
                 0);
    CHECK(memcmp(k1, k2, 32) == 0);

    const char *good =
        "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
    put("k", good, 64, 0600);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("k"), k1, errmsg, sizeof errmsg), 0);
    for (int i = 0; i < 32; i++)
        CHECK(k1[i] == i);

    struct {
        const char *text;
        mode_t mode;
        const char *why;
    } bad[] = {
        {"0001", 0600, "64 hexadecimal"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n\n",
         0600, "64 hexadecimal"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
         0600, "not a hexadecimal"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f "
         "", 0600, "64 hexadecimal"},
        {"", 0600, "64 hexadecimal"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         0640, "group or others"},
        {"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         0602, "group or others"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("bad", bad[i].text, strlen(bad[i].text), bad[i].mode);
        memset(k1, 0x55, sizeof k1);
        CHECK_EQ_INT(
            kyufu_keys_kek_read(at("bad"), k1, errmsg, sizeof errmsg), -1);
        if (strstr(errmsg, bad[i].why) == NULL) {
            fprintf(stderr, "case %zu: %s\n", i, errmsg);
            CHECK(0);
        }
        CHECK(zero(k1, 32)); /* nothing half-parsed is handed out */
    }
    /* A symlink, a folder, a FIFO and a missing file: refused, no hang. */
    char target[1024];
    snprintf(target, sizeof target, "%s", at("k"));
    CHECK(symlink(target, at("link")) == 0);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("link"), k1, errmsg, sizeof errmsg),
                 -1);
    CHECK(mkdir(at("folder"), 0700) == 0);
    CHECK_EQ_INT(
        kyufu_keys_kek_read(at("folder"), k1, errmsg, sizeof errmsg), -1);
    CHECK(mkfifo(at("fifo"), 0600) == 0);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("fifo"), k1, errmsg, sizeof errmsg),
                 -1);
    CHECK_EQ_INT(kyufu_keys_kek_read(at("none"), k1, errmsg, sizeof errmsg),
                 -1);
    CHECK(strstr(errmsg, "No such file") != NULL);
}

static void test_passphrase(void)
{
    uint8_t salt[16] = {9}, a[32], b[32];
    const char *pass = "correct horse battery staple";
    CHECK_EQ_INT(kyufu_keys_kek_from_passphrase(
                     pass, strlen(pass), salt, KYUFU_KEYS_PBKDF2_ROUNDS_MIN,
                     a, errmsg, sizeof errmsg),
                 0);
    salt[0] ^= 1;
    CHECK_EQ_INT(kyufu_keys_kek_from_passphrase(
                     pass, strlen(pass), salt, KYUFU_KEYS_PBKDF2_ROUNDS_MIN,
                     b, errmsg, sizeof errmsg),
                 0);
    CHECK(memcmp(a, b, 32) != 0);
    CHECK_EQ_INT(kyufu_keys_kek_from_passphrase("short", 5, salt,
                                                KYUFU_KEYS_PBKDF2_ROUNDS, a,
                                                errmsg, sizeof errmsg),
                 -1);
    CHECK(strstr(errmsg, "16 to 1024") != NULL);
    CHECK_EQ_INT(kyufu_keys_kek_from_passphrase(pass, strlen(pass), salt,
                                                1000, a, errmsg,
                                                sizeof errmsg),
                 -1);
    CHECK(strstr(errmsg, "rounds") != NULL);
}

/* The wrapped cluster key: round trip; refused with another KEK, another
 * binding (another node), any changed byte (a weaker round count
 * included), a short or long file, a group-readable file. */
static void test_cmk(void)
{
    uint8_t kek[32], other[32], cmk[32], back[32], salt[16];
    for (int i = 0; i < 32; i++) {
        kek[i] = (uint8_t)(i + 1);
        other[i] = (uint8_t)(i + 2);
        cmk[i] = (uint8_t)(0xC0 + i);
    }
    memset(salt, 7, sizeof salt);
    const uint8_t bind[] = "cluster A node 1";
    const uint8_t bind2[] = "cluster A node 2";
    CHECK_EQ_INT(kyufu_keys_cmk_write(dir, "cmk", KYUFU_KEYS_KEK_PASSPHRASE,
                                      KYUFU_KEYS_PBKDF2_ROUNDS, salt, kek,
                                      bind, sizeof bind, cmk, errmsg,
                                      sizeof errmsg),
                 0);
    struct stat st;
    CHECK(stat(at("cmk"), &st) == 0 && (st.st_mode & 0777) == 0600 &&
          st.st_size == KYUFU_KEYS_CMK_FILE_BYTES);
    struct kyufu_keys_cmk_file f;
    CHECK_EQ_INT(kyufu_keys_cmk_read(at("cmk"), &f, errmsg, sizeof errmsg),
                 0);
    CHECK(f.kind == KYUFU_KEYS_KEK_PASSPHRASE);
    CHECK(f.rounds == KYUFU_KEYS_PBKDF2_ROUNDS);
    CHECK(memcmp(f.salt, salt, 16) == 0);
    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, kek, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg),
                 0);
    CHECK(memcmp(back, cmk, 32) == 0);
    /* The key itself is nowhere in the file. */
    FILE *fp = fopen(at("cmk"), "rb");
    uint8_t raw[KYUFU_KEYS_CMK_FILE_BYTES];
    CHECK(fp != NULL && fread(raw, 1, sizeof raw, fp) == sizeof raw);
    fclose(fp);
    CHECK(memmem(raw, sizeof raw, cmk, 8) == NULL);

    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, other, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg),
                 -1);
    CHECK(strstr(errmsg, "does not unwrap") != NULL);
    CHECK(zero(back, 32));
    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, kek, bind2, sizeof bind2, back,
                                       errmsg, sizeof errmsg),
                 -1);
    /* Every byte matters: flip each in turn (header fields that the shape
     * check refuses are refused there; the rest fail the tag). */
    for (size_t i = 0; i < sizeof raw; i++) {
        raw[i] ^= 0x01;
        put("cmk-flip", raw, sizeof raw, 0600);
        raw[i] ^= 0x01;
        struct kyufu_keys_cmk_file g;
        int rv = kyufu_keys_cmk_read(at("cmk-flip"), &g, errmsg,
                                     sizeof errmsg);
        if (rv == 0) {
            rv = kyufu_keys_cmk_unwrap(&g, kek, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg);
        }
        if (rv != -1) {
            fprintf(stderr, "flipped byte %zu accepted\n", i);
            CHECK(0);
        }
    }
    put("cmk-short", raw, sizeof raw - 1, 0600);
    CHECK_EQ_INT(
        kyufu_keys_cmk_read(at("cmk-short"), &f, errmsg, sizeof errmsg), -1);
    CHECK(strstr(errmsg, "not a kyufu cluster key file") != NULL);
    uint8_t longer[KYUFU_KEYS_CMK_FILE_BYTES + 1] = {0};
    memcpy(longer, raw, sizeof raw);
    put("cmk-long", longer, sizeof longer, 0600);
    CHECK_EQ_INT(
        kyufu_keys_cmk_read(at("cmk-long"), &f, errmsg, sizeof errmsg), -1);
    put("cmk-open", raw, sizeof raw, 0644);
    CHECK_EQ_INT(
        kyufu_keys_cmk_read(at("cmk-open"), &f, errmsg, sizeof errmsg), -1);
    CHECK(strstr(errmsg, "group or others") != NULL);
    /* A weaker round count written by hand: refused before any PBKDF2. */
    raw[12] = raw[13] = raw[14] = 0;
    raw[15] = 1;
    put("cmk-weak", raw, sizeof raw, 0600);
    CHECK_EQ_INT(
        kyufu_keys_cmk_read(at("cmk-weak"), &f, errmsg, sizeof errmsg), -1);
    CHECK(strstr(errmsg, "round count") != NULL);
    /* A key-file KEK: rounds and salt are not used, binding still is. */
    CHECK_EQ_INT(kyufu_keys_cmk_write(dir, "cmk2", KYUFU_KEYS_KEK_FILE, 0,
                                      salt, kek, bind, sizeof bind, cmk,
                                      errmsg, sizeof errmsg),
                 0);
    CHECK_EQ_INT(kyufu_keys_cmk_read(at("cmk2"), &f, errmsg, sizeof errmsg),
                 0);
    CHECK(f.kind == KYUFU_KEYS_KEK_FILE && f.rounds == 0);
    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, kek, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg),
                 0);
    CHECK(memcmp(back, cmk, 32) == 0);
    /* Rewritten in place (a KEK rewrap) atomically: the old file is
     * replaced whole. */
    CHECK_EQ_INT(kyufu_keys_cmk_write(dir, "cmk2", KYUFU_KEYS_KEK_FILE, 0,
                                      salt, other, bind, sizeof bind, cmk,
                                      errmsg, sizeof errmsg),
                 0);
    CHECK_EQ_INT(kyufu_keys_cmk_read(at("cmk2"), &f, errmsg, sizeof errmsg),
                 0);
    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, kek, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg),
                 -1);
    CHECK_EQ_INT(kyufu_keys_cmk_unwrap(&f, other, bind, sizeof bind, back,
                                       errmsg, sizeof errmsg),
                 0);
}

/* The binding of a node's CMK file: "node N" NUL CA-hash, so node 1's
 * and node 12's never collide, and the CA hash is of the certificate's
 * DER (here: a known PEM, its hash computed by `openssl x509 -outform
 * DER | sha256sum`). */
static void test_binding(void)
{
    uint8_t h[32], b[KYUFU_KEYS_BIND_BYTES_MAX];
    for (int i = 0; i < 32; i++)
        h[i] = (uint8_t)i;
    size_t n = kyufu_keys_bind_node(12, h, b);
    CHECK_EQ_INT((int)n, 8 + 32);
    CHECK(memcmp(b, "node 12\0", 8) == 0 && memcmp(b + 8, h, 32) == 0);
    CHECK_EQ_INT((int)kyufu_keys_bind_node(1, h, b), 7 + 32);
    CHECK(kyufu_keys_ca_hash(at("absent.pem"), h, errmsg, sizeof errmsg) == -1);
    put("notpem", "hello\n", 6, 0644);
    CHECK(kyufu_keys_ca_hash(at("notpem"), h, errmsg, sizeof errmsg) == -1);
    CHECK(strstr(errmsg, "no PEM certificate") != NULL);
    char cmd[4400];
    /* at() returns one static buffer: build the paths one by one. */
    char key[1024], pem[1024], sha[1024];
    snprintf(key, sizeof key, "%s", at("t.key"));
    snprintf(pem, sizeof pem, "%s", at("t.pem"));
    snprintf(sha, sizeof sha, "%s", at("t.sha"));
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
             "-nodes -keyout '%s' -subj /CN=t -days 1 -out '%s' 2>/dev/null "
             "&& openssl x509 -in '%s' -outform DER | sha256sum | "
             "cut -c1-64 > '%s'",
             key, pem, pem, sha);
    CHECK(system(cmd) == 0);
    CHECK_EQ_INT(kyufu_keys_ca_hash(pem, h, errmsg, sizeof errmsg), 0);
    FILE *f = fopen(sha, "r");
    char hex[65] = "", got[65];
    CHECK(f != NULL && fgets(hex, sizeof hex, f) != NULL);
    fclose(f);
    for (int i = 0; i < 32; i++)
        snprintf(got + 2 * i, 3, "%02x", h[i]);
    CHECK(strcmp(got, hex) == 0);
}

/* The hand-over of a joining node's CMK: the joiner opens what a member
 * sealed for it; not with another joiner id, another cluster's CA hash,
 * another exchange's key or a flipped bit; a public key that is not a
 * P-256 point is refused by the member. */
static void test_handover(void)
{
    uint8_t ca[32], cmk[32], got[32], mpub[KYUFU_KEYS_HANDOVER_PUB_BYTES];
    uint8_t nonce[12], sealed[48];
    for (int i = 0; i < 32; i++) {
        ca[i] = (uint8_t)(0xa0 + i);
        cmk[i] = (uint8_t)(0x30 + i);
    }
    struct kyufu_keys_handover h, other;
    CHECK_EQ_INT(kyufu_keys_handover_begin(&h, errmsg, sizeof errmsg), 0);
    CHECK_EQ_INT(kyufu_keys_handover_begin(&other, errmsg, sizeof errmsg), 0);
    CHECK(h.pub[0] == 0x04 && memcmp(h.pub, other.pub, sizeof h.pub) != 0);
    CHECK_EQ_INT(kyufu_keys_handover_seal(4, ca, h.pub, sizeof h.pub, cmk,
                                          mpub, nonce, sealed, errmsg,
                                          sizeof errmsg), 0);
    /* Neither the CMK nor its bytes in the clear in what travels. */
    CHECK(memmem(sealed, sizeof sealed, cmk, 8) == NULL);
    CHECK_EQ_INT(kyufu_keys_handover_finish(&h, 4, ca, mpub, sizeof mpub,
                                            nonce, 12, sealed, 48, got,
                                            errmsg, sizeof errmsg), 0);
    CHECK(memcmp(got, cmk, 32) == 0);
    CHECK_EQ_INT(kyufu_keys_handover_finish(&h, 5, ca, mpub, sizeof mpub,
                                            nonce, 12, sealed, 48, got,
                                            errmsg, sizeof errmsg), -1);
    CHECK(zero(got, 32));
    ca[0] ^= 1;
    CHECK_EQ_INT(kyufu_keys_handover_finish(&h, 4, ca, mpub, sizeof mpub,
                                            nonce, 12, sealed, 48, got,
                                            errmsg, sizeof errmsg), -1);
    ca[0] ^= 1;
    CHECK_EQ_INT(kyufu_keys_handover_finish(&other, 4, ca, mpub, sizeof mpub,
                                            nonce, 12, sealed, 48, got,
                                            errmsg, sizeof errmsg), -1);
    sealed[40] ^= 1;
    CHECK_EQ_INT(kyufu_keys_handover_finish(&h, 4, ca, mpub, sizeof mpub,
                                            nonce, 12, sealed, 48, got,
                                            errmsg, sizeof errmsg), -1);
    CHECK(strstr(errmsg, "does not open") != NULL);
    sealed[40] ^= 1;
    CHECK_EQ_INT(kyufu_keys_handover_finish(&h, 4, ca, mpub, 64, nonce, 12,
                                            sealed, 48, got, errmsg,
                                            sizeof errmsg), -1);
    CHECK(strstr(errmsg, "malformed") != NULL);
    /* Hostile public keys at the member: wrong size, compressed form, a
     * point off the curve. */
    uint8_t bad[KYUFU_KEYS_HANDOVER_PUB_BYTES];
    memcpy(bad, h.pub, sizeof bad);
    CHECK_EQ_INT(kyufu_keys_handover_seal(4, ca, bad, 33, cmk, mpub, nonce,
                                          sealed, errmsg, sizeof errmsg), -1);
    bad[0] = 0x02;
    CHECK_EQ_INT(kyufu_keys_handover_seal(4, ca, bad, sizeof bad, cmk, mpub,
                                          nonce, sealed, errmsg,
                                          sizeof errmsg), -1);
    bad[0] = 0x04;
    bad[64] ^= 1;
    CHECK_EQ_INT(kyufu_keys_handover_seal(4, ca, bad, sizeof bad, cmk, mpub,
                                          nonce, sealed, errmsg,
                                          sizeof errmsg), -1);
    CHECK(strstr(errmsg, "public_key") != NULL);
    kyufu_keys_handover_free(&h);
    kyufu_keys_handover_free(&other);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    test_kek_file();
    test_passphrase();
    test_cmk();
    test_binding();
    test_handover();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    puts("keys: ok");
    return 0;
}
