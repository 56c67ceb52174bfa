/* Small pieces of the gRPC wire format shared by the server and the client:
 * status names, error strings, grpc-timeout, percent-encoding of
 * grpc-message, the 5-byte message prefix.  Pure functions, no state. */
#include <assert.h>
#include <string.h>
#include <stdio.h>

#include "grpc.h"
#include "internal.h"
#include "grpc_limits.h"

const char *kyufu_api_strerror(int rv)
{
    switch (rv) {
#define KYUFU_API__STR(name, value, text) \
    case value:                           \
        return text;
        KYUFU_API_ERRORS(KYUFU_API__STR)
#undef KYUFU_API__STR
    }
    return "unknown api error";
}

const char *kyufu_grpc_status_name(int status)
{
    switch (status) {
#define KYUFU_GRPC__STATUS_STR(name, value) \
    case value:                             \
        return #name;
        KYUFU_GRPC_STATUSES(KYUFU_GRPC__STATUS_STR)
#undef KYUFU_GRPC__STATUS_STR
    }
    return "UNKNOWN_STATUS";
}

int kyufu_grpc_timeout_parse(const char *value, size_t len, uint64_t *timeout_ms)
{
    /* TimeoutValue: 1 to 8 ASCII digits; TimeoutUnit: one of HMSmun. */
    if (value == NULL || len < 2 || len > 9) {
        return KYUFU_API_EINVALID;
    }
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (value[i] < '0' || value[i] > '9') {
            return KYUFU_API_EINVALID;
        }
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    assert(n <= 99999999u);
    uint64_t ms;
    switch (value[len - 1]) {
    case 'H': ms = n * 3600u * 1000u; break;   /* < 3.6e14: no overflow */
    case 'M': ms = n * 60u * 1000u; break;
    case 'S': ms = n * 1000u; break;
    case 'm': ms = n; break;
    case 'u': ms = (n + 999u) / 1000u; break;  /* round up: never 0 for n > 0 */
    case 'n': ms = (n + 999999u) / 1000000u; break;
    default: return KYUFU_API_EINVALID;
    }
    if (ms > KYUFU_GRPC_TIMEOUT_MS_MAX) {
        ms = KYUFU_GRPC_TIMEOUT_MS_MAX;
    }
    *timeout_ms = ms;
    return 0;
}

void kyufu_grpc_timeout_format(uint64_t timeout_ms, char *buf, size_t len)
{
    assert(len >= 16);
    /* Milliseconds fit 8 digits up to ~27 hours; beyond, whole seconds
     * (rounded up, so the server never sees a shorter deadline). */
    if (timeout_ms <= 99999999u) {
        snprintf(buf, len, "%llum", (unsigned long long)timeout_ms);
    } else {
        unsigned long long s = (unsigned long long)((timeout_ms + 999u) / 1000u);
        if (s > 99999999u) {
            s = 99999999u;
        }
        snprintf(buf, len, "%lluS", s);
    }
}

/* Percent-encoding of grpc-message (PROTOCOL-HTTP2.md): bytes outside
 * 0x20..0x7E and '%' itself become %XX (upper-case hex).  Output is cut at
 * a whole escape so it never exceeds out_len - 1; always NUL-terminated. */
size_t api__percent_encode(const char *in, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    assert(out_len > 0);
    for (size_t i = 0; in != NULL && in[i] != '\0'; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (o + 1 >= out_len) {
                break;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= out_len) {
                break;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decoding is lenient, as the spec asks: a malformed escape is kept as is. */
size_t api__percent_decode(const char *in, size_t in_len, char *out, size_t out_len)
{
    size_t o = 0;
    assert(out_len > 0);
    for (size_t i = 0; i < in_len && o + 1 < out_len; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < in_len && (hi = hexval(in[i + 1])) >= 0 &&
            (lo = hexval(in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

void api__prefix_encode(uint8_t prefix[5], bool compressed, uint32_t len)
{
    prefix[0] = compressed ? 1 : 0;
    prefix[1] = (uint8_t)(len >> 24);
    prefix[2] = (uint8_t)(len >> 16);
    prefix[3] = (uint8_t)(len >> 8);
    prefix[4] = (uint8_t)len;
}

uint32_t api__prefix_length(const uint8_t prefix[5])
{
    return (uint32_t)prefix[1] << 24 | (uint32_t)prefix[2] << 16 |
           (uint32_t)prefix[3] << 8 | (uint32_t)prefix[4];
}

int api__http_to_grpc_status(int http_status)
{
    /* doc/http-grpc-status-mapping.md */
    switch (http_status) {
    case 400: return KYUFU_GRPC_INTERNAL;
    case 401: return KYUFU_GRPC_UNAUTHENTICATED;
    case 403: return KYUFU_GRPC_PERMISSION_DENIED;
    case 404: return KYUFU_GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504: return KYUFU_GRPC_UNAVAILABLE;
    default: return KYUFU_GRPC_UNKNOWN;
    }
}

/* ---- metadata ---- */

/* Names no custom metadata may take, on either side: HTTP/2 pseudo-headers
 * and connection-specific fields (RFC 9113 §8.2.2), the fields gRPC itself
 * defines, and the whole "grpc-" prefix (reserved by PROTOCOL-HTTP2.md). */
bool api__metadata_name_reserved(const char *name, size_t len)
{
    static const char *const reserved[] = {
        "te",         "content-type",      "content-length", "user-agent",
        "connection", "keep-alive",        "proxy-connection", "transfer-encoding",
        "upgrade",    "host",              "accept-encoding",  "content-encoding",
    };
    if (len == 0 || name[0] == ':' || (len >= 5 && memcmp(name, "grpc-", 5) == 0)) {
        return true;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strlen(reserved[i]) == len && memcmp(reserved[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}

/* Credentials among the metadata a client sends (issue 8): the session
 * token's `authorization: Bearer ...` (libkyufu, kyufuctl) and the
 * forwarded `kyufu-session` (node/forward.c, KYUFU_NODE_MD_SESSION).  HPACK
 * must never index them (RFC 7541 §7.1.3): an indexed secret sits in both
 * ends' dynamic tables for the connection's life, and a compression oracle
 * (CRIME-style: the size of a frame whose other headers the attacker
 * chooses) could guess it byte by byte. */
bool api__metadata_name_secret(const char *name)
{
    static const char *const secret[] = {"authorization", "kyufu-session"};
    for (size_t i = 0; i < sizeof secret / sizeof secret[0]; i++) {
        if (strcmp(secret[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Header-Name of PROTOCOL-HTTP2.md: 1*( %x30-39 / %x61-7A / "_" / "-" / "." ). */
static bool name_ok(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-' ||
              c == '.')) {
            return false;
        }
    }
    return len > 0;
}

/* ASCII-Value: 1*( %x20-%x7E ), without leading or trailing space (RFC 9113
 * §8.2.1 forbids them); a "-bin" value is base64 as on the wire. */
static bool value_ok(const char *value, size_t len, bool binary)
{
    if (len == 0 || value[0] == ' ' || value[len - 1] == ' ') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (binary ? !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                       (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '=')
                   : (c < 0x20 || c > 0x7e)) {
            return false;
        }
    }
    return true;
}

int kyufu_grpc_metadata_check(const struct kyufu_grpc_metadata *md, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (md == NULL) {
        return KYUFU_API_EINVALID;
    }
    if (n > KYUFU_GRPC_TRAILER_ENTRIES_MAX) {
        return KYUFU_API_ELIMIT;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (md[i].name == NULL || md[i].value == NULL) {
            return KYUFU_API_EINVALID;
        }
        size_t nl = strnlen(md[i].name, KYUFU_GRPC_TRAILER_BYTES_MAX + 1);
        size_t vl = strnlen(md[i].value, KYUFU_GRPC_TRAILER_BYTES_MAX + 1);
        bytes += nl + vl + 32; /* RFC 9113 §6.5.2 accounting */
        if (bytes > KYUFU_GRPC_TRAILER_BYTES_MAX) {
            return KYUFU_API_ELIMIT;
        }
        bool binary = nl > 4 && memcmp(md[i].name + nl - 4, "-bin", 4) == 0;
        if (!name_ok(md[i].name, nl) || api__metadata_name_reserved(md[i].name, nl) ||
            !value_ok(md[i].value, vl, binary)) {
            return KYUFU_API_EINVALID;
        }
    }
    return 0;
}

const char *kyufu_grpc_metadata_find(const struct kyufu_grpc_metadata *md,
                                     size_t n,
                                     const char *name)
{
    assert(name != NULL);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(md[i].name, name) == 0) {
            return md[i].value;
        }
    }
    return NULL;
}
