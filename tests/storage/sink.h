/* A snapshot stream gathered into one buffer, for the storage tests (both
 * the command tests and the internals test): t_sink_emit is the `emit` of
 * kyufu_storage_snapshot_write, its arg a struct t_sink. */
#ifndef KYUFU_TEST_SINK_H
#define KYUFU_TEST_SINK_H

#include <stddef.h>
#include <stdint.h>

struct t_sink
{
    uint8_t *buf;     /* the stream so far (the caller frees it) */
    size_t len;
    size_t chunks;    /* chunks emitted */
    size_t max_chunk; /* the largest chunk's bytes */
};

/* Appends CHUNK to the sink ARG and frees it: 0, or -1 (the stream stops)
 * when the buffer cannot grow. */
int t_sink_emit(void *arg, void *chunk, size_t len);

#endif
