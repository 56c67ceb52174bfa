/* Recorded member addresses: member_address.h. */
#include "member_address.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue.h"

size_t glue__address_raft_len(const char *recorded)
{
    assert(recorded != NULL);
    return strcspn(recorded, " ");
}

void glue__address_split(const char *recorded,
                         char *raft,
                         size_t raft_len,
                         char *api,
                         size_t api_len)
{
    assert(raft_len > 0 && api_len > 0);
    size_t n = glue__address_raft_len(recorded);
    snprintf(raft, raft_len, "%.*s", (int)n, recorded);
    snprintf(api, api_len, "%s", recorded[n] == ' ' ? recorded + n + 1 : "");
}

/* host: a DNS name or an IPv4 address (letters, digits, '.', '-'; what the
 * transport resolves, AF_INET as raft_uv_tcp); port: 1..65535, digits. */
bool kyufu_glue_address_ok(const char *address)
{
    if (address == NULL) {
        return false;
    }
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address ||
        (size_t)(colon - address) > 253) {
        return false;
    }
    for (const char *p = address; p < colon; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '-')) {
            return false;
        }
    }
    const char *port = colon + 1;
    size_t plen = strlen(port);
    if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen) {
        return false;
    }
    unsigned long v = strtoul(port, NULL, 10);
    return v >= 1 && v <= 65535;
}
