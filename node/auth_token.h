/* Session tokens on the wire (issue 8; docs/identity.md "Sessions"): the
 * `authorization: Bearer <64 lowercase hex>` metadata, hex forms and the
 * token's SHA-256 (the key of its session).  Pure functions, no I/O: the
 * node's auth.c and its unit tests share them. */
#ifndef KYUFU_NODE_AUTH_TOKEN_H
#define KYUFU_NODE_AUTH_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "grpc.h"

#define KYUFU_NODE_TOKEN_BYTES 32u
#define KYUFU_NODE_TOKEN_HEX_BYTES 64u

enum kyufu_node_bearer {
    KYUFU_NODE_BEARER_BAD = -1, /* present but malformed, or twice */
    KYUFU_NODE_BEARER_NONE = 0, /* no authorization metadata */
    KYUFU_NODE_BEARER_OK = 1,   /* token[] holds its 32 bytes */
};

/* The token of the call's `authorization` metadata: the scheme "Bearer"
 * (any case, RFC 6750), one space, exactly 64 lowercase hex digits, nothing
 * else.  gRPC metadata names are lower case: "Authorization" never reaches
 * here as such. */
enum kyufu_node_bearer kyufu_node__bearer_parse(
    const struct kyufu_grpc_metadata *md,
    size_t n,
    uint8_t token[KYUFU_NODE_TOKEN_BYTES]);

/* Exactly 2 * n lowercase hex digits (and the string ends there) into out:
 * 0, else -1. */
int kyufu_node__hex_decode(const char *s, uint8_t *out, size_t n);
/* 2 * n lowercase hex digits and a NUL into out. */
void kyufu_node__hex_encode(const uint8_t *in, size_t n, char *out);

/* SHA-256 of the token's 32 bytes: the session's key. */
void kyufu_node__token_hash(const uint8_t token[KYUFU_NODE_TOKEN_BYTES],
                            uint8_t hash[32]);

#endif /* KYUFU_NODE_AUTH_TOKEN_H */
