/* Fuzz harness: the Raft entry frame and snapshot header decoders
 * (raft-glue/frame.c), the first code that reads bytes a peer sent, both
 * versions (plaintext and sealed) of each.
 * Properties: they never read outside the buffer (ASan), and whatever they
 * accept is canonical: writing the decoded fields again gives back exactly
 * the input bytes, so no two encodings of one entry exist. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"

static unsigned long accepted;
static unsigned long accepted2; /* sealed (version 2) frames */
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
    const uint8_t *payload = NULL;
    size_t len = 0;
    struct glue_snapshot_header h;
    struct glue_frame fr;
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
    if (glue__frame_parse(buf, size, &fr)) {
        accepted2 += fr.version == GLUE_FRAME_VERSION_SEALED;
        if (fr.version == GLUE_FRAME_VERSION_SEALED) {
            /* The header written again from what was parsed, with the
             * nonce, ciphertext and tag as they were: the same bytes. */
            uint8_t *again = aligned_alloc(8, (size + 7) & ~(size_t)7);
            if (again == NULL) {
                abort();
            }
            memcpy(again, buf, size);
            memset(again, 0xee, GLUE_FRAME2_AAD_BYTES);
            size_t pad = size - GLUE_FRAME2_CIPHER_OFFSET - fr.len -
                         GLUE_FRAME2_TAG_BYTES;
            memset(again + size - pad, 0xee, pad);
            glue__frame2_header(again, fr.term, fr.key_version, fr.len);
            if (glue__frame2_size(fr.len) != size ||
                fr.payload != buf + GLUE_FRAME2_CIPHER_OFFSET ||
                memcmp(again, buf, size) != 0) {
                finding("accepted sealed frame is not canonical");
            }
            free(again);
        } else if (fr.payload != payload || fr.len != len) {
            finding("frame_parse and frame_read disagree");
        }
    }
    if (glue__snapshot_header_read(buf, size, &h)) {
        uint8_t again[GLUE_SNAPSHOT2_HEADER_BYTES];
        size_t n = glue__snapshot_header_size(&h);
        glue__snapshot_header_write(again, &h);
        if (size < n || memcmp(again, buf, n) != 0) {
            finding("accepted snapshot header is not canonical");
        }
    }
    free(buf);
}

void fz_report(FILE *fp)
{
    fprintf(fp, "frame: %lu inputs, %lu frames accepted, %lu sealed\n",
            inputs, accepted, accepted2);
}

void fz_fini(void)
{
}
