/* A snapshot stream gathered into one buffer: see sink.h. */
#include "sink.h"

#include <stdlib.h>
#include <string.h>

int t_sink_emit(void *arg, void *chunk, size_t len)
{
    struct t_sink *k = arg;
    uint8_t *p = realloc(k->buf, k->len + len);
    if (p == NULL) {
        free(chunk);
        return -1;
    }
    memcpy(p + k->len, chunk, len);
    k->buf = p;
    k->len += len;
    k->chunks++;
    k->max_chunk = len > k->max_chunk ? len : k->max_chunk;
    free(chunk);
    return 0;
}
