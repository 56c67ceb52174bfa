/* Session tokens on the wire: see auth_token.h. */
#include "auth_token.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

static int nibble(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

int kyufu_node__hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void kyufu_node__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

enum kyufu_node_bearer kyufu_node__bearer_parse(
    const struct kyufu_grpc_metadata *md,
    size_t n,
    uint8_t token[KYUFU_NODE_TOKEN_BYTES])
{
    const char *value = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(md[i].name, "authorization") == 0) {
            if (value != NULL) {
                return KYUFU_NODE_BEARER_BAD; /* which one would count? */
            }
            value = md[i].value;
        }
    }
    if (value == NULL) {
        return KYUFU_NODE_BEARER_NONE;
    }
    static const char scheme[] = "bearer ";
    if (strncasecmp(value, scheme, sizeof scheme - 1) != 0 ||
        kyufu_node__hex_decode(value + sizeof scheme - 1, token,
                               KYUFU_NODE_TOKEN_BYTES) != 0) {
        OPENSSL_cleanse(token, KYUFU_NODE_TOKEN_BYTES);
        return KYUFU_NODE_BEARER_BAD;
    }
    return KYUFU_NODE_BEARER_OK;
}

void kyufu_node__token_hash(const uint8_t token[KYUFU_NODE_TOKEN_BYTES],
                            uint8_t hash[32])
{
    SHA256(token, KYUFU_NODE_TOKEN_BYTES, hash);
}
