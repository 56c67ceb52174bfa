/* Protobuf base-128 varints, for the places that write wire bytes by hand
 * to embed bytes that are already packed, instead of unpacking and packing
 * again: storage/apply.c (a result's record), raft-glue/proposer.c (a
 * CommandBatch of packed commands), node/service_write.c (WriteResponse
 * around a packed result).  Reading varints is pb_strict.c's.  Pure, no
 * allocation; reachable through proto_dep's include folder. */
#ifndef KYUFU_PB_VARINT_H
#define KYUFU_PB_VARINT_H

#include <stddef.h>
#include <stdint.h>

/* The most bytes a varint of a uint64_t takes (ceil(64 / 7)). */
#define KYUFU_PB_VARINT_BYTES_MAX 10

/* Bytes kyufu_pb_varint_put writes for v (1..KYUFU_PB_VARINT_BYTES_MAX). */
static inline size_t kyufu_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Write v at out (room for kyufu_pb_varint_size(v) bytes); returns that
 * many. */
static inline size_t kyufu_pb_varint_put(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

#endif /* KYUFU_PB_VARINT_H */
