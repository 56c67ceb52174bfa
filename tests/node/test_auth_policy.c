/* Identity (issue 8) pure parts of kyufud: the password policy
 * (node/password.c), TOTP against oathtool (node/totp.c) and the
 * `authorization: Bearer` metadata (node/auth_token.c).  Fixed secrets and
 * fixed times only: no clock is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth_token.h"
#include "bootstrap_file.h"
#include "password.h"
#include "pwhash.h"
#include "totp.h"

#include "../count_check.h"

static int policy(const char *pw, char *why, size_t len)
{
    return kyufu_node__password_policy(pw, strlen(pw), 12, "tanaka.h",
                                       "Hanako Tanaka", why, len);
}

static void test_policy(void)
{
    char why[256];
    /* kyufud's start-up check: the host's dictionary loads. */
    CHECK(kyufu_node__password_checker_ready(why, sizeof why) == 0);
    CHECK(policy("vivid-Lantern-47-quartz", why, sizeof why) == 0);
    /* Too short, whatever its quality. */
    CHECK(policy("x7#Lq9!zR2", why, sizeof why) == -1);
    CHECK(strstr(why, "at least 12") != NULL);
    /* Guessable: dictionary words, sequences, repeats. */
    CHECK(policy("password1234567", why, sizeof why) == -1);
    /* Refused by the dictionary itself, not for want of one. */
    CHECK(strstr(why, "dictionary check") != NULL &&
          strstr(why, "loading") == NULL);
    CHECK(policy("letmein12345678", why, sizeof why) == -1);
    CHECK(policy("123456789012345", why, sizeof why) == -1);
    CHECK(policy("aaaaaaaaaaaaaaaa", why, sizeof why) == -1);
    /* Account-derived: the staff id and the display name's words. */
    CHECK(policy("tanaka.h-Zq81!mVw", why, sizeof why) == -1);
    CHECK(policy("Zq81!mVw-hanako-x", why, sizeof why) == -1);
    CHECK(policy("Zq81!mVw-TANAKA-x", why, sizeof why) == -1);
    /* Control characters; over the byte cap. */
    CHECK(policy("vivid-Lantern\n47-quartz", why, sizeof why) == -1);
    char big[KYUFU_PASSWORD_BYTES_MAX + 2];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK(policy(big, why, sizeof why) == -1 && strstr(why, "too long"));
    /* A configured minimum holds. */
    CHECK(kyufu_node__password_policy("vivid-Lantern-47", 16, 20, "a", "",
                                      why, sizeof why) == -1);
    /* No message names the password. */
    CHECK(policy("Zq81!mVw-hanako-x", why, sizeof why) == -1 &&
          strstr(why, "Zq81") == NULL);
}

static void set_hash(Kyufu__V1__PasswordHash *h, uint8_t *salt, uint8_t *hash,
                     const char *pw)
{
    kyufu__v1__password_hash__init(h);
    CHECK(kyufu_pwhash_new(pw, strlen(pw), KYUFU_PWHASH_ITERATIONS_MIN, salt,
                           hash) == 0);
    h->iterations = KYUFU_PWHASH_ITERATIONS_MIN;
    h->salt.data = salt;
    h->salt.len = KYUFU_PWHASH_SALT_BYTES;
    h->hash.data = hash;
    h->hash.len = KYUFU_PWHASH_BYTES;
}

static void test_history(void)
{
    uint8_t s[3][KYUFU_PWHASH_SALT_BYTES], h[3][KYUFU_PWHASH_BYTES];
    Kyufu__V1__PasswordHash cur, p0, p1;
    set_hash(&cur, s[0], h[0], "current-Pass-991");
    set_hash(&p0, s[1], h[1], "older-Pass-992");
    set_hash(&p1, s[2], h[2], "oldest-Pass-993");
    Kyufu__V1__PasswordHash *prev[] = {&p0, &p1};
    const char *c = "current-Pass-991", *o = "oldest-Pass-993";
    CHECK(kyufu_node__password_reused(c, strlen(c), &cur, prev, 2, 5));
    CHECK(kyufu_node__password_reused(o, strlen(o), &cur, prev, 2, 5));
    /* Only `history` previous hashes count. */
    CHECK(!kyufu_node__password_reused(o, strlen(o), &cur, prev, 2, 1));
    const char *f = "fresh-Pass-994";
    CHECK(!kyufu_node__password_reused(f, strlen(f), &cur, prev, 2, 5));
    CHECK(!kyufu_node__password_matches(f, strlen(f), NULL));
    /* A corrupt record (short salt) never matches. */
    p0.salt.len = 3;
    CHECK(!kyufu_node__password_matches("older-Pass-992", 14, &p0));
}

static void test_temporary(void)
{
    char a[KYUFU_PWHASH_TEMPORARY_CHARS + 1], b[sizeof a];
    CHECK(kyufu_pwhash_temporary(a, sizeof a) == 0);
    CHECK(kyufu_pwhash_temporary(b, sizeof b) == 0);
    CHECK(strlen(a) == KYUFU_PWHASH_TEMPORARY_CHARS && strlen(a) >= 16);
    CHECK(strcmp(a, b) != 0);
    for (size_t i = 0; a[i] != '\0'; i++) {
        CHECK(a[i] > ' ' && a[i] < 0x7f && strchr("0O1lI", a[i]) == NULL);
    }
}

/* oathtool's answer for a hex secret at unix time t. */
static void oathtool(const char *hex, long long t, char out[8])
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "oathtool --totp -N @%lld %s", t, hex);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    out[0] = '\0';
    if (p != NULL) {
        CHECK(fgets(out, 8, p) != NULL);
        CHECK(pclose(p) == 0);
    }
    out[strcspn(out, "\n")] = '\0';
}

static void test_totp(void)
{
    static const char *const hexes[] = {
        "3132333435363738393031323334353637383930", /* RFC 6238's */
        "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334",
    };
    static const long long times[] = {59, 1111111109, 1234567890,
                                      2000000000, 1765000000};
    for (size_t s = 0; s < 2; s++) {
        uint8_t secret[KYUFU_NODE_TOTP_SECRET_BYTES];
        CHECK(kyufu_node__hex_decode(hexes[s], secret, sizeof secret) == 0);
        for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
            char want[8], got[8];
            oathtool(hexes[s], times[i], want);
            CHECK(kyufu_node__totp_code(secret, sizeof secret, times[i], got,
                                        sizeof got) == 0);
            CHECK(strlen(want) == 6 && strcmp(want, got) == 0);
            uint64_t step = 0;
            uint64_t now_step = (uint64_t)times[i] / 30;
            /* This step and one either side, with the step that matched. */
            CHECK(kyufu_node__totp_check(secret, sizeof secret, times[i], want,
                                         &step) == 0 && step == now_step);
            CHECK(kyufu_node__totp_check(secret, sizeof secret, times[i] + 30,
                                         want, &step) == 0 &&
                  step == now_step);
            CHECK(times[i] < 60 || /* no step before the epoch's first */
                  (kyufu_node__totp_check(secret, sizeof secret, times[i] - 30,
                                          want, &step) == 0 &&
                   step == now_step));
            /* Two steps away: refused. */
            CHECK(kyufu_node__totp_check(secret, sizeof secret, times[i] + 60,
                                         want, &step) == -1);
        }
    }
    /* RFC 6238 appendix B, SHA-1, last 6 of 8 digits. */
    uint8_t rfc[20];
    memcpy(rfc, "12345678901234567890", 20);
    uint64_t step = 0;
    CHECK(kyufu_node__totp_check(rfc, 20, 59, "287082", &step) == 0 &&
          step == 1);
    CHECK(kyufu_node__totp_check(rfc, 20, 1111111109, "081804", &step) == 0);
    /* Malformed codes and secrets. */
    CHECK(kyufu_node__totp_check(rfc, 20, 59, "28708", &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 20, 59, "2870822", &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 20, 59, "28708a", &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 20, 59, " 87082", &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 20, 59, "", &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 20, 59, NULL, &step) == -1);
    CHECK(kyufu_node__totp_check(rfc, 19, 59, "287082", &step) == -1);
    /* Base32 and the URI apps read. */
    char b32[KYUFU_NODE_TOTP_BASE32_BYTES], uri[KYUFU_NODE_TOTP_URI_BYTES];
    CHECK(kyufu_node__totp_base32(rfc, 20, b32, sizeof b32) == 0);
    CHECK(strcmp(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == 0);
    CHECK(kyufu_node__totp_uri("tanaka.h", b32, uri, sizeof uri) == 0);
    CHECK(strncmp(uri, "otpauth://totp/kyufu:tanaka.h?secret=GEZDGNBV", 45) ==
          0);
    char tiny[8];
    CHECK(kyufu_node__totp_base32(rfc, 20, tiny, sizeof tiny) == -1);
    uint8_t s1[20], s2[20];
    CHECK(kyufu_node__totp_secret(s1) == 0 && kyufu_node__totp_secret(s2) == 0);
    CHECK(memcmp(s1, s2, 20) != 0);
}

static void test_bearer(void)
{
    static const char hex[] =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char ok[80], upper[80];
    snprintf(ok, sizeof ok, "Bearer %s", hex);
    snprintf(upper, sizeof upper, "Bearer %s", hex);
    upper[10] = 'A'; /* a hex digit in upper case */
    uint8_t t[KYUFU_NODE_TOKEN_BYTES];
    struct kyufu_grpc_metadata md[2] = {{"x-request-id", "r1"},
                                        {"authorization", ok}};
    CHECK(kyufu_node__bearer_parse(md, 2, t) == KYUFU_NODE_BEARER_OK);
    CHECK(t[0] == 0x00 && t[1] == 0x11 && t[31] == 0xff);
    CHECK(kyufu_node__bearer_parse(md, 1, t) == KYUFU_NODE_BEARER_NONE);
    md[1].value = "bearer 00112233445566778899aabbccddeeff00112233445566778899"
                  "aabbccddeeff";
    CHECK(kyufu_node__bearer_parse(md, 2, t) == KYUFU_NODE_BEARER_OK);
    static const char *const bad[] = {
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer  00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        "Bearer 00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",
        "Bearer 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0",
        "Bearer 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff ",
        "Bearer 0011223344556677889gaabbccddeeff00112233445566778899aabbccddeeff",
        "Bearer:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        md[1].value = bad[i];
        CHECK(kyufu_node__bearer_parse(md, 2, t) == KYUFU_NODE_BEARER_BAD);
    }
    md[1].value = upper;
    CHECK(kyufu_node__bearer_parse(md, 2, t) == KYUFU_NODE_BEARER_BAD);
    /* Two authorization entries: refused, whatever they hold. */
    struct kyufu_grpc_metadata two[2] = {{"authorization", ok},
                                         {"authorization", ok}};
    CHECK(kyufu_node__bearer_parse(two, 2, t) == KYUFU_NODE_BEARER_BAD);
    /* Hex round trip and the hash (SHA-256 of 32 zero bytes). */
    uint8_t zero[32] = {0}, h[32];
    char out[65];
    kyufu_node__token_hash(zero, h);
    kyufu_node__hex_encode(h, 32, out);
    CHECK(strcmp(out, "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925") == 0);
    uint8_t back[32];
    CHECK(kyufu_node__hex_decode(out, back, 32) == 0 && memcmp(back, h, 32) == 0);
    CHECK(kyufu_node__hex_decode(out, back, 31) == -1);
}

static const char *parse(const char *text, struct kyufu_node_bootstrap *b)
{
    static char buf[8192];
    snprintf(buf, sizeof buf, "%s", text);
    return kyufu_node__bootstrap_parse(buf, b);
}

#define SALT "00112233445566778899aabbccddeeff"
#define HASH SALT SALT

static void test_bootstrap(void)
{
    struct kyufu_node_bootstrap b;
    CHECK(parse("# kyufuctl cluster init\n"
                "staff_id = admin\n"
                "display_name = ID administrator\n"
                "\n"
                "iterations = 600000\n"
                "salt = " SALT "\n"
                "hash = " HASH "\n",
                &b) == NULL);
    CHECK(strcmp(b.staff_id, "admin") == 0);
    CHECK(strcmp(b.display_name, "ID administrator") == 0);
    CHECK(b.iterations == 600000 && b.salt[1] == 0x11 && b.hash[31] == 0xff);
    /* Blanks around keys and values, CRLF. */
    CHECK(parse("  staff_id=admin\r\ndisplay_name =  A B \r\n"
                "iterations=600000\nsalt=" SALT "\nhash=" HASH,
                &b) == NULL);
    CHECK(strcmp(b.display_name, "A B") == 0);
    static const char *const bad[] = {
        "", /* every key missing */
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\n", /* no hash */
        "staff_id = admin\nstaff_id = admin\ndisplay_name = A\n"
        "iterations = 600000\nsalt = " SALT "\nhash = " HASH "\n",
        "staff_id = Admin\ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n", /* upper case id */
        "staff_id = \ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n",
        "staff_id = admin\ndisplay_name = \niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n",
        "staff_id = admin\ndisplay_name = A\niterations = 99999\n"
        "salt = " SALT "\nhash = " HASH "\n", /* too few */
        "staff_id = admin\ndisplay_name = A\niterations = 1000\n"
        "salt = " SALT "\nhash = " HASH "\n", /* a test node's: weak */
        "staff_id = admin\ndisplay_name = A\niterations = 10000001\n"
        "salt = " SALT "\nhash = " HASH "\n", /* too many */
        "staff_id = admin\ndisplay_name = A\niterations = -600000\n"
        "salt = " SALT "\nhash = " HASH "\n",
        "staff_id = admin\ndisplay_name = A\niterations = 6e5\n"
        "salt = " SALT "\nhash = " HASH "\n",
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = 0011\nhash = " HASH "\n", /* short salt */
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\nhash = " SALT "\n", /* short hash */
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "0\n", /* long hash */
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = 00112233445566778899AABBCCDDEEFF\nhash = " HASH "\n",
        "staff_id = admin\ndisplay_name = A\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\npassword = x\n", /* unknown */
        "staff_id admin\n", /* not key = value */
        "staff_id = admin\ndisplay_name = A\x1b[2JB\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n", /* an escape in the name */
        "staff_id = admin\ndisplay_name = A\tB\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n", /* a tab inside the name */
        "staff_id = admin\ndisplay_name = A\rB\niterations = 600000\n"
        "salt = " SALT "\nhash = " HASH "\n", /* a lone CR inside */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = parse(bad[i], &b);
        CHECK(why != NULL);
        if (why != NULL) {
            CHECK(strstr(why, SALT) == NULL); /* never a value */
        }
    }
}

int main(void)
{
    test_policy();
    test_history();
    test_temporary();
    test_totp();
    test_bearer();
    test_bootstrap();
    return count_check_end("auth_policy");
}
