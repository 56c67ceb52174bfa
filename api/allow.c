/* Address allow-lists (clause 5(2)(4): network paths restricted to known
 * parties): "CIDR, CIDR, ..." parsed once, matched per connection.  Pure
 * functions, no allocation.  IPv4 entries and peers are kept as
 * IPv4-mapped IPv6 (::ffff:a.b.c.d), so a dual-stack listener's mapped
 * peer matches the IPv4 entries and one prefix compare serves both. */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "grpc_limits.h"

/* One "ADDR[/BITS]" of `len` bytes. */
static int parse_one(const char *text, size_t len, struct kyufu_allow_net *out,
                     char *errmsg, size_t errlen)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (len == 0 || len >= sizeof buf) {
        snprintf(errmsg, errlen, "bad network \"%.*s\": expected ADDRESS[/BITS]",
                 (int)(len < 64 ? len : 64), text);
        return KYUFU_API_EINVALID;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *slash = strchr(buf, '/');
    long bits = -1;
    if (slash != NULL) {
        char *end;
        *slash = '\0';
        if (slash[1] == '\0' || !isdigit((unsigned char)slash[1])) {
            goto bad;
        }
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0') {
            goto bad;
        }
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->addr + 12) == 1) {
        out->addr[10] = out->addr[11] = 0xff; /* kept as IPv4-mapped */
        if (bits > 32) {
            goto bad;
        }
        out->bits = (uint8_t)(96 + (bits < 0 ? 32 : bits));
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        if (bits > 128) {
            goto bad;
        }
        out->bits = (uint8_t)(bits < 0 ? 128 : bits);
    } else {
        goto bad;
    }
    return 0;

bad:
    snprintf(errmsg, errlen,
             "bad network \"%.*s\": expected an IPv4 or IPv6 address with an "
             "optional /BITS (0-32 or 0-128)",
             (int)len, text);
    return KYUFU_API_EINVALID;
}

int kyufu_allow_parse(const char *text, struct kyufu_allow *out, char *errmsg,
                      size_t errlen)
{
    assert(text != NULL && out != NULL);
    struct kyufu_allow list = {0};
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        const char *end = p;
        while (*end != '\0' && *end != ',' && *end != ' ' && *end != '\t') {
            end++;
        }
        if (list.n == KYUFU_ALLOW_NETS_MAX) {
            snprintf(errmsg, errlen, "more than %u networks",
                     KYUFU_ALLOW_NETS_MAX);
            return KYUFU_API_EINVALID;
        }
        int rv = parse_one(p, (size_t)(end - p), &list.nets[list.n], errmsg, errlen);
        if (rv != 0) {
            return rv;
        }
        list.n++;
        p = end;
    }
    if (list.n == 0) {
        snprintf(errmsg, errlen, "empty list: name at least one network");
        return KYUFU_API_EINVALID;
    }
    *out = list;
    return 0;
}

bool kyufu_allow_match(const struct kyufu_allow *allow, const struct sockaddr *sa)
{
    uint8_t a[16] = {0};
    if (allow == NULL || allow->n == 0) {
        return true; /* no list: everyone (the default) */
    }
    if (sa->sa_family == AF_INET) {
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return false;
    }
    for (size_t i = 0; i < allow->n; i++) {
        const struct kyufu_allow_net *net = &allow->nets[i];
        unsigned full = net->bits / 8u;
        unsigned rest = net->bits % 8u;
        if (memcmp(a, net->addr, full) != 0) {
            continue;
        }
        if (rest != 0) {
            uint8_t mask = (uint8_t)(0xffu << (8u - rest));
            if ((a[full] & mask) != (net->addr[full] & mask)) {
                continue;
            }
        }
        return true;
    }
    return false;
}
