/* Refusal of unknown protobuf fields (docs/api.md, "Unknown fields").
 *
 * protobuf-c keeps every field it does not know in the unpacked message
 * (a copy per field, plus bookkeeping), so a 4 MiB request of tiny unknown
 * fields costs about 100 MiB to unpack, and a field a newer client meant
 * for a newer server would be silently ignored.  The API refuses both by
 * walking the wire bytes against the request's descriptor *before*
 * unpacking: every field number must be one the schema declares, in the
 * message and in every nested message (to a bounded depth).  The walk
 * allocates nothing and reads each byte once.
 *
 * It checks only what unpack does not: field numbers.  Wire-type mismatches,
 * bad UTF-8 and truncated values inside known fields are left to
 * protobuf_c_message_unpack, which refuses them. */
#include <assert.h>
#include <stdio.h>

#include "grpc.h"
#include "grpc_limits.h"

/* A varint of at most 10 bytes; false on truncation or overlong. */
static bool get_varint(const uint8_t *buf, size_t len, size_t *off,
                       uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*off >= len) {
            return false;
        }
        uint8_t b = buf[(*off)++];
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = x;
            return true;
        }
    }
    return false;
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                size_t len, unsigned depth, char *errmsg, size_t errlen)
{
    size_t off = 0;
    if (depth > KYUFU_PB_NESTING_DEPTH_MAX) {
        snprintf(errmsg, errlen, "%s nested deeper than %u messages",
                 d->name, KYUFU_PB_NESTING_DEPTH_MAX);
        return KYUFU_API_EINVALID;
    }
    while (off < len) {
        uint64_t key;
        uint64_t n;
        if (!get_varint(buf, len, &off, &key)) {
            goto malformed;
        }
        uint64_t number = key >> 3;
        unsigned wire = (unsigned)(key & 7);
        const ProtobufCFieldDescriptor *f =
            number == 0 || number > UINT32_MAX
                ? NULL
                : protobuf_c_message_descriptor_get_field(d,
                                                          (unsigned)number);
        if (f == NULL) {
            snprintf(errmsg, errlen, "unknown field %llu in %s",
                     (unsigned long long)number, d->name);
            return KYUFU_API_EINVALID;
        }
        switch (wire) {
        case 0: /* varint */
            if (!get_varint(buf, len, &off, &n)) {
                goto malformed;
            }
            break;
        case 1: /* 64-bit */
            if (len - off < 8) {
                goto malformed;
            }
            off += 8;
            break;
        case 5: /* 32-bit */
            if (len - off < 4) {
                goto malformed;
            }
            off += 4;
            break;
        case 2: /* length-delimited */
            if (!get_varint(buf, len, &off, &n) || n > len - off) {
                goto malformed;
            }
            if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rv = walk(f->descriptor, buf + off, (size_t)n, depth + 1,
                              errmsg, errlen);
                if (rv != 0) {
                    return rv;
                }
            }
            off += (size_t)n;
            break;
        default: /* groups (3, 4) and reserved types: not in proto3 */
            goto malformed;
        }
    }
    assert(off == len);
    return 0;

malformed:
    snprintf(errmsg, errlen, "request is not a valid %s", d->name);
    return KYUFU_API_EINVALID;
}

int kyufu_pb_check_known(const ProtobufCMessageDescriptor *descriptor,
                         const uint8_t *buf,
                         size_t len,
                         char *errmsg,
                         size_t errlen)
{
    assert(descriptor != NULL && descriptor->magic ==
                                     PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    assert(buf != NULL || len == 0);
    return walk(descriptor, buf, len, 0, errmsg, errlen);
}
