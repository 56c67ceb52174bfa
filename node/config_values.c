/* The rules of single kyufud.conf values that depend on nothing but the
 * value (config.c applies them to the keys that need them). */
#include "config_values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "limits.h"
#include "textconf.h"

/* "host:port": host is an IPv4 literal or a DNS name ([A-Za-z0-9.-]);
 * port 1..65535.  Writes why not into why. */
bool kyufu_config__check_address(const char *s, char *why, size_t why_len)
{
    size_t len = strlen(s);
    if (len == 0 || len > KYUFU_NODE_ADDRESS_BYTES_MAX) {
        snprintf(why, why_len, "expected host:port of at most %u bytes",
                 KYUFU_NODE_ADDRESS_BYTES_MAX);
        return false;
    }
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) {
        snprintf(why, why_len, "expected host:port, got '%s'", s);
        return false;
    }
    for (const char *p = s; p < colon; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
            snprintf(why, why_len,
                     "host of '%s' must be an IPv4 address or a DNS name", s);
            return false;
        }
    }
    uint64_t port;
    if (!kyufu_textconf_parse_uint(colon + 1, 1, 65535, &port)) {
        snprintf(why, why_len, "port of '%s' must be 1..65535", s);
        return false;
    }
    return true;
}

/* 1..KYUFU_NODE_POWER_NAME_BYTES_MAX bytes of [A-Za-z0-9_.-] and the
 * characters of `also`. */
bool kyufu_config__check_name(const char *s, const char *also, char *why,
                       size_t why_len)
{
    size_t len = strlen(s);
    if (len == 0 || len > KYUFU_NODE_POWER_NAME_BYTES_MAX) {
        snprintf(why, why_len, "expected 1..%u bytes",
                 KYUFU_NODE_POWER_NAME_BYTES_MAX);
        return false;
    }
    for (const char *p = s; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr("_.-", *p) == NULL &&
            strchr(also, *p) == NULL) {
            snprintf(why, why_len,
                     "'%s': only letters, digits and _.-%s allowed", s, also);
            return false;
        }
    }
    return true;
}

/* NAME@HOST[:PORT], as NUT names a UPS (upsc, upsmon's MONITOR). */
bool kyufu_config__check_ups(const char *s, char *why, size_t why_len)
{
    const char *at = strchr(s, '@');
    if (!kyufu_config__check_name(s, "@:", why, why_len)) {
        return false;
    }
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@')) {
        snprintf(why, why_len, "expected NAME@HOST[:PORT], got '%s'", s);
        return false;
    }
    if (memchr(s, ':', (size_t)(at - s)) != NULL) {
        snprintf(why, why_len, "UPS name of '%s' has a ':'", s);
        return false;
    }
    const char *colon = strchr(at, ':');
    if (colon != NULL) {
        uint64_t port;
        if (colon == at + 1 || !kyufu_textconf_parse_uint(colon + 1, 1, 65535, &port)) {
            snprintf(why, why_len, "port of '%s' must be 1..65535", s);
            return false;
        }
    }
    return true;
}

/* Whether address (host:port, checked) names a loopback IPv4 address
 * literally (a DNS name could resolve anywhere). */
bool kyufu_config__is_loopback(const char *address)
{
    char host[KYUFU_NODE_ADDRESS_BYTES_MAX + 1];
    unsigned char ip[4];
    const char *colon = strrchr(address, ':');
    if (colon == NULL) {
        return false;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - address), address);
    return inet_pton(AF_INET, host, ip) == 1 && ip[0] == 127;
}

void kyufu_config__cut_inline_comment(char *str)
{
    for (size_t i = 0; str[i] != '\0'; i++) {
        if (i > 0 && (str[i] == '#' || str[i] == ';') &&
            (str[i - 1] == ' ' || str[i - 1] == '\t')) {
            str[i] = '\0';
            return;
        }
    }
}
