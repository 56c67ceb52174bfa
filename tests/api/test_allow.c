/* kyufu_allow_parse / kyufu_allow_match: address allow-lists at their
 * edges (prefix boundaries, /0, /32, /128, mapped IPv4) and malformed
 * lists refused with the item named. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "grpc.h"

#include "../count_check.h"

static bool match(const char *list, const char *ip)
{
    struct kyufu_allow a;
    char err[160];
    if (kyufu_allow_parse(list, &a, err, sizeof err) != 0) {
        fprintf(stderr, "parse %s: %s\n", list, err);
        failures++;
        return false;
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        CHECK(inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        CHECK(inet_pton(AF_INET, ip, &s4->sin_addr) == 1);
    }
    return kyufu_allow_match(&a, (struct sockaddr *)&ss);
}

int main(void)
{
    /* Prefix edges: the last address in, the first one out. */
    CHECK(match("10.1.2.0/24", "10.1.2.255"));
    CHECK(!match("10.1.2.0/24", "10.1.3.0"));
    CHECK(match("10.1.2.0/23", "10.1.3.255"));
    CHECK(!match("10.1.2.0/23", "10.1.4.0"));
    CHECK(match("192.168.1.7", "192.168.1.7")); /* bare address = /32 */
    CHECK(!match("192.168.1.7", "192.168.1.8"));
    CHECK(match("192.168.1.7/32", "192.168.1.7"));
    CHECK(match("0.0.0.0/0", "203.0.113.9"));
    CHECK(!match("0.0.0.0/0", "2001:db8::1")); /* IPv4 /0 is IPv4 only */
    CHECK(match("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!match("2001:db8::/32", "2001:db9::1"));
    CHECK(match("::1/128", "::1"));
    CHECK(!match("::1/128", "::2"));
    CHECK(match("127.0.0.0/8", "::ffff:127.0.0.1")); /* mapped peer */
    CHECK(match("10.0.0.0/8 127.0.0.1,::1", "127.0.0.1")); /* separators */
    /* No list: everyone. */
    struct sockaddr_in any = {.sin_family = AF_INET};
    CHECK(kyufu_allow_match(NULL, (struct sockaddr *)&any));
    /* Malformed: refused, the item named, the output untouched. */
    const char *bad[] = {"", " , ", "10.0.0.0/33", "::/129", "10.0.0.0/",
                         "10.0.0.0/x", "10.0.0/8", "host.example", "1.2.3.4/-1",
                         "10.0.0.0/8/8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct kyufu_allow a = {.n = 77};
        char err[160] = "";
        CHECK(kyufu_allow_parse(bad[i], &a, err, sizeof err) == KYUFU_API_EINVALID);
        CHECK(a.n == 77 && err[0] != '\0');
    }
    char err[160];
    struct kyufu_allow a;
    CHECK(kyufu_allow_parse("10.0.0.0/33", &a, err, sizeof err) != 0 &&
          strstr(err, "10.0.0.0/33") != NULL);
    /* At the limit and one over. */
    char list[KYUFU_ALLOW_NETS_MAX * 16 + 32] = "";
    for (unsigned i = 0; i < KYUFU_ALLOW_NETS_MAX; i++) {
        char item[16];
        snprintf(item, sizeof item, "10.%u.0.0/16 ", i);
        strcat(list, item);
    }
    CHECK(kyufu_allow_parse(list, &a, err, sizeof err) == 0 &&
          a.n == KYUFU_ALLOW_NETS_MAX);
    strcat(list, "11.0.0.0/8");
    CHECK(kyufu_allow_parse(list, &a, err, sizeof err) == KYUFU_API_EINVALID);
    return count_check_end("allow");
}
