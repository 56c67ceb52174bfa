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
