/* Fuzz harness: the Raft entry frame and snapshot header decoders
 * (raft-glue/frame.c), the first code that reads bytes a peer sent.
 * Properties: they never read outside the buffer (ASan), and whatever they
 * accept is canonical: writing the decoded fields again gives back exactly
 * the input bytes, so no two encodings of one entry exist. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

static unsigned long accepted;
static unsigned long inputs;

static _Noreturn void finding(const char *what)
{
    fprintf(stderr, "FUZZ FINDING: %s (input %lu)\n", what, inputs);
    abort();
}

void fz_init(void)
{
}

void fz_one(const uint8_t *data, size_t size)
{
    uint64_t term;
    const uint8_t *payload;
    size_t len;
    struct glue_snapshot_header h;
    inputs++;
    /* A heap copy of exactly `size` bytes: ASan sees any overread. */
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        abort();
    }
    memcpy(buf, data, size);
    if (glue__frame_read(buf, size, &term, &payload, &len)) {
        accepted++;
        if (payload != buf + GLUE_FRAME_HEADER_BYTES ||
            glue__frame_size(len) != size) {
            finding("accepted frame's payload or size is off");
        }
        uint8_t *again = aligned_alloc(8, (size + 7) & ~(size_t)7);
        if (again == NULL) {
            abort();
        }
        glue__frame_write(again, term, payload, len);
        if (memcmp(again, buf, size) != 0) {
            finding("accepted frame is not canonical");
        }
        free(again);
    }
    if (glue__snapshot_header_read(buf, size, &h)) {
        uint8_t again[GLUE_SNAPSHOT_HEADER_BYTES];
        glue__snapshot_header_write(again, &h);
        if (size < sizeof again || memcmp(again, buf, sizeof again) != 0) {
            finding("accepted snapshot header is not canonical");
        }
    }
    free(buf);
}

void fz_report(FILE *fp)
{
    fprintf(fp, "frame: %lu inputs, %lu frames accepted\n", inputs, accepted);
}

void fz_fini(void)
{
}
