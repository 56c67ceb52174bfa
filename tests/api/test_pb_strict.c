/* kyufu_pb_check_known: unknown protobuf fields refused before unpacking,
 * at the top level and nested; malformed encodings refused; every known
 * field of a real request accepted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "kyufu/v1/service.pb-c.h"

#include "../count_check.h"

static const ProtobufCMessageDescriptor *get_desc =
    &kyufu__v1__get_program_request__descriptor;

static int check(const ProtobufCMessageDescriptor *d, const void *buf,
                 size_t len, char *why, size_t whylen)
{
    why[0] = '\0';
    return kyufu_pb_check_known(d, buf, len, why, whylen);
}

/* A real request with every field set, packed by protobuf-c: accepted. */
static void test_known_fields_accepted(void)
{
    Kyufu__V1__ReadOptions read = KYUFU__V1__READ_OPTIONS__INIT;
    Kyufu__V1__GetProgramRequest req = KYUFU__V1__GET_PROGRAM_REQUEST__INIT;
    uint8_t buf[256];
    char why[160];
    read.stale = true;
    req.code = "P2026";
    req.read = &read;
    size_t n = kyufu__v1__get_program_request__pack(&req, buf);
    CHECK(check(get_desc, buf, n, why, sizeof why) == 0);
    CHECK(check(get_desc, buf, 0, why, sizeof why) == 0); /* empty: defaults */
}

static void test_unknown_refused(void)
{
    char why[160];
    /* field 1 "P1", then field 99 varint 1 */
    static const uint8_t top[] = {0x0a, 0x02, 'P', '1', 0x98, 0x06, 0x01};
    CHECK(check(get_desc, top, sizeof top, why, sizeof why) ==
          KYUFU_API_EINVALID);
    CHECK(strstr(why, "unknown field 99 in kyufu.v1.GetProgramRequest") !=
          NULL);
    /* field 2 (ReadOptions) holding field 99 */
    static const uint8_t nested[] = {0x12, 0x03, 0x98, 0x06, 0x01};
    CHECK(check(get_desc, nested, sizeof nested, why, sizeof why) ==
          KYUFU_API_EINVALID);
    CHECK(strstr(why, "unknown field 99 in kyufu.v1.ReadOptions") != NULL);
    /* field number 0 is never valid */
    static const uint8_t zero[] = {0x00, 0x01};
    CHECK(check(get_desc, zero, sizeof zero, why, sizeof why) ==
          KYUFU_API_EINVALID);
    /* each wire type of an unknown field is refused by number */
    static const uint8_t fixed64[] = {0x99, 0x06, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t fixed32[] = {0x9d, 0x06, 1, 2, 3, 4};
    static const uint8_t bytes[] = {0x9a, 0x06, 0x01, 'x'};
    CHECK(check(get_desc, fixed64, sizeof fixed64, why, sizeof why) != 0);
    CHECK(check(get_desc, fixed32, sizeof fixed32, why, sizeof why) != 0);
    CHECK(check(get_desc, bytes, sizeof bytes, why, sizeof why) != 0);
    CHECK(strstr(why, "unknown field 99") != NULL);
}

static void test_malformed_refused(void)
{
    char why[160];
    static const uint8_t cut_key[] = {0x98};             /* key cut short */
    static const uint8_t cut_len[] = {0x0a, 0x05, 'P'};  /* length past end */
    static const uint8_t group[] = {0x0b};               /* wire type 3 */
    static const uint8_t overlong[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t cut_nested[] = {0x12, 0x01, 0x08}; /* varint cut */
    CHECK(check(get_desc, cut_key, sizeof cut_key, why, sizeof why) != 0);
    CHECK(check(get_desc, cut_len, sizeof cut_len, why, sizeof why) != 0);
    CHECK(check(get_desc, group, sizeof group, why, sizeof why) != 0);
    CHECK(check(get_desc, overlong, sizeof overlong, why, sizeof why) != 0);
    CHECK(check(get_desc, cut_nested, sizeof cut_nested, why, sizeof why) !=
          0);
    CHECK(strstr(why, "not a valid kyufu.v1.ReadOptions") != NULL);
}

int main(void)
{
    test_known_fields_accepted();
    test_unknown_refused();
    test_malformed_refused();
    return count_check_end("pb_strict");
}
