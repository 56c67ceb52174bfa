/* Sealed Raft entries and snapshots (raft-glue/seal.h, frame.h version 2,
 * the FSM's use of them):
 *
 *  - frame_round_trip: a version-2 frame of every CommandBatch length
 *    0..40 parses (version, term, key version, length, 8-byte size) and
 *    opens to the bytes sealed; two seals of one batch differ (fresh
 *    nonce); no plaintext byte run of the batch shows in the frame;
 *  - frame_flips: every single-bit flip of a sealed frame, at every byte
 *    (header, nonce, ciphertext, tag, padding), is either refused by the
 *    parser (then the FSM treats it as a foreign frame) or fails
 *    authentication: none opens;
 *  - frame_truncated: a frame cut short is refused, also when its length
 *    field is rewritten to match the cut (then the tag fails);
 *  - frame_v1: version-1 frames still parse as before, plaintext;
 *  - chunks: a sealed stream of three chunks opens in place to the
 *    concatenated plaintext; reordered chunks, a dropped last chunk, a
 *    cut inside a chunk, bytes after the last chunk, a chunk spliced in
 *    from another snapshot (same index, other id), a changed header and
 *    every single-bit flip of the stream are all refused;
 *  - fsm_entries: the FSM applies a sealed entry (counted in n_sealed); a
 *    tampered one poisons it with CORRUPT and "entry N failed
 *    authentication", the store untouched; one sealed under another
 *    cluster's key likewise; a node without a key meets a sealed entry
 *    and stops with "no cluster master key"; a version-1 entry still
 *    applies on a node with a key;
 *  - fsm_snapshots: a snapshot of a store with a key has a version-2
 *    header and holds none of the store's staff ids in any byte run; it
 *    restores into another keyed store (same digest); a flipped byte, a
 *    truncation, another cluster's key and a node without a key are
 *    refused with the target untouched; a legacy (version-1) snapshot
 *    still restores into a keyed store;
 *  - fsm_snapshots_own_key: from cluster version 6 a keyed store's
 *    snapshot is format 3, its chunks under a key of the snapshot's own:
 *    they do not open with the version's stream subkey (which format 2
 *    used, and which a store below version 6 still uses), they do with
 *    the key derived from the header's id; it restores (same digest);
 *    relabelled format 2, or with its id changed, it is refused; one of
 *    format 4 stops the node as for a newer build (ENEWER).
 *
 * Deterministic apart from the nonces and snapshot ids the code under test
 * draws (no decision of the test depends on their values).  One temporary
 * directory under /tmp, removed at the end. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rm_tree.h"
#include "frame.h"
#include "fsm.h"
#include "internal.h" /* snapshot_chunk_bytes */
#include "kyufu/v1/ledger.pb-c.h"
#include "seal.h"
#include "staff_batch.h"
#include "storage.h"
#include "test_store.h"

static char dir[64];

static const uint8_t cmk_a[KYUFU_CRYPTO_KEY_BYTES] = {
    0x6b, 0x79, 0x75, 0x66, 0x75, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20,
    0x63, 0x6d, 0x6b, 0x20, 0x41, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t cmk_b[KYUFU_CRYPTO_KEY_BYTES] = {
    0x6b, 0x79, 0x75, 0x66, 0x75, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20,
    0x63, 0x6d, 0x6b, 0x20, 0x42, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

/* True when `needle` (n ≥ 4 bytes) occurs in hay. */
static bool contains(const uint8_t *hay, size_t size, const void *needle,
                     size_t n)
{
    for (size_t i = 0; i + n <= size; i++) {
        if (memcmp(hay + i, needle, n) == 0) {
            return true;
        }
    }
    return false;
}

/* A sealed frame of `plain` under k, term 5, in an 8-aligned buffer. */
static uint8_t *sealed(const struct glue_stream_key *k, const uint8_t *plain,
                       size_t len, size_t *size)
{
    *size = glue__frame2_size(len);
    uint8_t *f = aligned_alloc(8, *size);
    CHECK(f != NULL);
    CHECK(glue__entry_seal(k, f, 5, plain, len) == 0);
    return f;
}

/* The store whose key try_open uses (as the FSM: the frame's version). */
static struct kyufu_storage *keyed;

/* Opens f (size bytes) as the FSM would, into a scratch buffer: 1 opened,
 * 0 refused by the parser (the FSM's foreign-frame no-op), -1 failed
 * authentication. */
static int try_open(const uint8_t *f, size_t size)
{
    struct glue_frame fr;
    static struct glue_stream_key k; /* the last version used, as the FSM */
    uint8_t out[128];
    if (!glue__frame_parse(f, size, &fr) ||
        fr.version != GLUE_FRAME_VERSION_SEALED) {
        return 0;
    }
    CHECK(fr.len <= sizeof out);
    CHECK(glue__stream_key_load(keyed, fr.key_version, &k) == 0);
    int rv = glue__entry_open(&k, &fr, out);
    CHECK(rv == 0 || rv == KYUFU_CRYPTO_EAUTH);
    return rv == 0 ? 1 : -1;
}

/* ------------------------------------------------------------ frames */

static void test_frames(struct kyufu_storage *s)
{
    struct glue_stream_key k = {0, NULL, false};
    uint8_t plain[40];
    uint8_t out[40];
    CHECK(glue__stream_key_load(s, kyufu_storage_keys_active(s), &k) == 0);
    CHECK(k.version == 1);
    for (size_t i = 0; i < sizeof plain; i++) {
        plain[i] = (uint8_t)(0x41 + i);
    }

    /* Round trip at every length; size is 8-aligned and exact. */
    for (size_t len = 0; len <= sizeof plain; len++) {
        size_t size;
        struct glue_frame fr;
        uint8_t *f = sealed(&k, plain, len, &size);
        CHECK(size % 8 == 0 && size >= GLUE_FRAME2_CIPHER_OFFSET + len + 16 &&
              size < GLUE_FRAME2_CIPHER_OFFSET + len + 16 + 8);
        CHECK(glue__frame_parse(f, size, &fr));
        CHECK(fr.version == GLUE_FRAME_VERSION_SEALED && fr.term == 5 &&
              fr.key_version == 1 && fr.len == len &&
              fr.payload == f + GLUE_FRAME2_CIPHER_OFFSET);
        CHECK(!glue__frame_read(f, size, &fr.term, &fr.payload, &fr.len));
        CHECK(glue__entry_open(&k, &fr, out) == 0);
        CHECK(len == 0 || memcmp(out, plain, len) == 0);
        if (len >= 8) {
            CHECK(!contains(f, size, plain, 4));
            CHECK(!contains(f, size, plain + len - 4, 4));
        }
        /* A second seal of the same batch: another nonce and ciphertext. */
        size_t size2;
        uint8_t *f2 = sealed(&k, plain, len, &size2);
        CHECK(size2 == size &&
              memcmp(f + GLUE_FRAME2_AAD_BYTES, f2 + GLUE_FRAME2_AAD_BYTES,
                     GLUE_FRAME2_NONCE_BYTES) != 0 &&
              memcmp(f + GLUE_FRAME2_CIPHER_OFFSET,
                     f2 + GLUE_FRAME2_CIPHER_OFFSET, len + 16) != 0);
        free(f2);
        free(f);
    }

    /* Every single-bit flip of a frame with 3 padding bytes. */
    {
        size_t size;
        uint8_t *f = sealed(&k, plain, 37, &size);
        unsigned refused = 0, auth = 0;
        CHECK(size == 96); /* 40 + 37 + 16 = 93, padded */
        CHECK(try_open(f, size) == 1);
        for (size_t i = 0; i < size; i++) {
            for (unsigned bit = 0; bit < 8; bit++) {
                f[i] ^= (uint8_t)(1u << bit);
                int r = try_open(f, size);
                f[i] ^= (uint8_t)(1u << bit);
                if (r == 1) {
                    fprintf(stderr, "flip of byte %zu bit %u opened\n", i,
                            bit);
                    exit(1);
                }
                refused += r == 0;
                auth += r == -1;
            }
        }
        /* Nonce, ciphertext and tag bits all reach the tag check. */
        CHECK(auth >= 8 * (12 + 37 + 16));
        CHECK(refused + auth == 8 * size);
        CHECK(try_open(f, size) == 1);

        /* Truncated: every shorter size is refused by the parser; cut by
         * 8 with the length and padding rewritten to match, the tag
         * fails. */
        for (size_t cut = 1; cut < size; cut++) {
            CHECK(try_open(f, size - cut) == 0);
        }
        glue__le_put64(f + 16, 37 - 8);
        {
            uint8_t keep[3];
            memcpy(keep, f + 85, 3); /* 40 + 29 + 16: the new padding */
            memset(f + 85, 0, 3);
            CHECK(try_open(f, size - 8) == -1);
            memcpy(f + 85, keep, 3);
        }
        /* Another key version named in the header. */
        glue__le_put64(f + 16, 37);
        glue__le_put32(f + 24, 2);
        CHECK(try_open(f, size) == -1);
        free(f);
    }

    /* Version 1 still reads, plaintext, as before. */
    {
        uint8_t f[GLUE_FRAME_HEADER_BYTES + 40] __attribute__((aligned(8)));
        struct glue_frame fr;
        glue__frame_write(f, 9, plain, 40);
        CHECK(glue__frame_parse(f, sizeof f, &fr));
        CHECK(fr.version == GLUE_FRAME_VERSION && fr.term == 9 &&
              fr.key_version == 0 && fr.len == 40 &&
              fr.payload == f + GLUE_FRAME_HEADER_BYTES);
    }
    glue__stream_key_wipe(&k);
    CHECK(k.version == 0);
    printf("frames: ok\n");
}

/* ------------------------------------------------------------ chunks */

struct stream
{
    uint8_t *b;
    size_t size;
    size_t chunk_at[4]; /* offsets of the chunks */
};

/* header (56 bytes, id `id_byte`) and chunks of 5, 7 and 3 bytes. */
static void make_stream(const struct glue_stream_key *k, uint8_t id_byte,
                        struct stream *st)
{
    static const uint8_t text[15] = "abcdeFGHIJKLmno";
    const size_t lens[3] = {5, 7, 3};
    struct glue_snapshot_header h = {20, 18, 2, k->version, {0}, false};
    memset(h.id, id_byte, sizeof h.id);
    st->size = GLUE_SNAPSHOT2_HEADER_BYTES;
    for (unsigned i = 0; i < 3; i++) {
        st->size += glue__chunk_sealed_size(lens[i]);
    }
    st->b = malloc(st->size);
    CHECK(st->b != NULL);
    glue__snapshot_header_write(st->b, &h);
    size_t at = GLUE_SNAPSHOT2_HEADER_BYTES, from = 0;
    for (unsigned i = 0; i < 3; i++) {
        st->chunk_at[i] = at;
        CHECK(glue__chunk_seal(k, st->b, GLUE_SNAPSHOT2_HEADER_BYTES, i,
                               i == 2, text + from, lens[i],
                               st->b + at) == 0);
        at += glue__chunk_sealed_size(lens[i]);
        from += lens[i];
    }
    st->chunk_at[3] = at;
    CHECK(at == st->size);
}

/* glue__snapshot_open on a copy of b: the plaintext length, or -1. */
static long open_copy(const struct glue_stream_key *k, const uint8_t *b,
                      size_t size, uint8_t *plain_out)
{
    uint8_t *c = malloc(size > 0 ? size : 1);
    size_t n = 0;
    char err[160] = "";
    CHECK(c != NULL);
    memcpy(c, b, size);
    int rv = glue__snapshot_open(k, c, size, GLUE_SNAPSHOT2_HEADER_BYTES, &n,
                                 err, sizeof err);
    if (rv == 0 && plain_out != NULL) {
        memcpy(plain_out, c + GLUE_SNAPSHOT2_HEADER_BYTES, n);
    }
    free(c);
    if (rv != 0) {
        CHECK(rv == KYUFU_STORAGE_ECORRUPT && err[0] != '\0');
        return -1;
    }
    return (long)n;
}

static void test_chunks(struct kyufu_storage *s)
{
    struct glue_stream_key k = {0, NULL, false};
    struct stream a, b;
    uint8_t plain[16];
    CHECK(glue__stream_key_load(s, 1, &k) == 0);
    make_stream(&k, 0x11, &a);
    make_stream(&k, 0x22, &b);

    CHECK(open_copy(&k, a.b, a.size, plain) == 15);
    CHECK(memcmp(plain, "abcdeFGHIJKLmno", 15) == 0);
    CHECK(!contains(a.b, a.size, "FGHI", 4));

    uint8_t *t = malloc(a.size + 64);
    CHECK(t != NULL);
    /* Chunks 0 and 1 swapped. */
    {
        size_t l0 = a.chunk_at[1] - a.chunk_at[0];
        size_t l1 = a.chunk_at[2] - a.chunk_at[1];
        memcpy(t, a.b, a.size);
        memcpy(t + a.chunk_at[0], a.b + a.chunk_at[1], l1);
        memcpy(t + a.chunk_at[0] + l1, a.b + a.chunk_at[0], l0);
        CHECK(open_copy(&k, t, a.size, NULL) == -1);
    }
    /* The last chunk dropped; cut anywhere inside the stream. */
    CHECK(open_copy(&k, a.b, a.chunk_at[2], NULL) == -1);
    for (size_t cut = GLUE_SNAPSHOT2_HEADER_BYTES; cut < a.size; cut++) {
        CHECK(open_copy(&k, a.b, cut, NULL) == -1);
    }
    /* Bytes after the last chunk. */
    memcpy(t, a.b, a.size);
    memset(t + a.size, 0, 8);
    CHECK(open_copy(&k, t, a.size + 8, NULL) == -1);
    /* Chunk 1 of snapshot b (same index, other id) spliced into a. */
    memcpy(t, a.b, a.size);
    memcpy(t + a.chunk_at[1], b.b + b.chunk_at[1],
           a.chunk_at[2] - a.chunk_at[1]);
    CHECK(open_copy(&k, t, a.size, NULL) == -1);
    /* a's chunks behind b's header. */
    memcpy(t, a.b, a.size);
    memcpy(t, b.b, GLUE_SNAPSHOT2_HEADER_BYTES);
    CHECK(open_copy(&k, t, a.size, NULL) == -1);
    /* Every single-bit flip, header included. */
    for (size_t i = 0; i < a.size; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            a.b[i] ^= (uint8_t)(1u << bit);
            if (open_copy(&k, a.b, a.size, NULL) != -1) {
                fprintf(stderr, "chunk stream flip %zu/%u opened\n", i, bit);
                exit(1);
            }
            a.b[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Another key. */
    {
        struct glue_stream_key k2 = {0, NULL, false};
        CHECK(glue__stream_key_load(s, 2, &k2) == 0);
        CHECK(open_copy(&k2, a.b, a.size, NULL) == -1);
        glue__stream_key_wipe(&k2);
    }
    CHECK(open_copy(&k, a.b, a.size, NULL) == 15);
    free(t);
    free(a.b);
    free(b.b);
    glue__stream_key_wipe(&k);
    printf("chunks: ok\n");
}

/* ------------------------------------------------------- FSM: entries */

static char fatal_msg[256];
static unsigned n_fatal;
static void on_fatal(void *arg, int rv, const char *msg)
{
    (void)arg;
    (void)rv;
    n_fatal++;
    snprintf(fatal_msg, sizeof fatal_msg, "%s", msg);
}

/* Apply `frame` as the entry after the store's (index 1 on a new store)
 * through a fresh FSM over s; returns the FSM's fatal_rv. */
static int apply_frame(struct kyufu_storage *s, const uint8_t *frame,
                       size_t size, struct kyufu_fsm *st)
{
    struct raft_fsm fsm;
    struct raft_fixture f;
    struct kyufu_fsm_hooks hooks = {NULL, NULL, on_fatal};
    uint64_t idx, term;
    void *result;
    kyufu_storage_applied(s, &idx, &term);
    kyufu_fsm_init(&fsm, st, s, KYUFU_FSM_SNAPSHOT_INLINE, &hooks);
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    st->raft = raft_fixture_get(&f, 0);
    st->raft->last_applied = idx; /* the entry is at idx + 1 */
    st->raft->commit_index = idx + 1;
    struct raft_buffer buf = {(void *)frame, size};
    CHECK(fsm.apply(&fsm, &buf, &result) == 0 && result == NULL);
    raft_fixture_close(&f);
    kyufu_fsm_wipe_keys(st);
    return st->fatal_rv;
}

static void test_fsm_entries(void)
{
    struct kyufu_storage *ka = test_store_open(dir, "ent-a", cmk_a);
    struct kyufu_storage *kb = test_store_open(dir, "ent-b", cmk_b);
    struct kyufu_storage *none = test_store_open(dir, "ent-none", NULL);
    struct glue_stream_key k = {0, NULL, false};
    struct kyufu_fsm st;
    size_t len, size;
    uint8_t d0[32], d[32];
    uint64_t i0, idx;
    uint8_t *batch = test_staff_batch("test-seal", "admin", "admin", 1, &len);
    CHECK(glue__stream_key_load(ka, 1, &k) == 0);
    uint8_t *f = sealed(&k, batch, len, &size);

    /* Tampered: one ciphertext bit. */
    test_store_digest(ka, d0, &i0);
    f[GLUE_FRAME2_CIPHER_OFFSET + 3] ^= 0x20;
    n_fatal = 0;
    CHECK(apply_frame(ka, f, size, &st) == KYUFU_STORAGE_ECORRUPT);
    CHECK(n_fatal == 1 && st.n_applied == 0 && st.n_bad_frames == 0);
    CHECK(strstr(fatal_msg, "entry 1 failed authentication") != NULL);
    test_store_digest(ka, d, &idx);
    CHECK(idx == i0 && memcmp(d, d0, 32) == 0);
    f[GLUE_FRAME2_CIPHER_OFFSET + 3] ^= 0x20;

    /* Tampered term (authenticated, in the header). */
    glue__le_put64(f + 8, 6);
    n_fatal = 0;
    CHECK(apply_frame(ka, f, size, &st) == KYUFU_STORAGE_ECORRUPT);
    CHECK(strstr(fatal_msg, "entry 1 failed authentication") != NULL);
    glue__le_put64(f + 8, 5);

    /* Another cluster's key. */
    n_fatal = 0;
    CHECK(apply_frame(kb, f, size, &st) == KYUFU_STORAGE_ECORRUPT);
    CHECK(n_fatal == 1 && st.n_applied == 0);
    CHECK(strstr(fatal_msg, "entry 1 failed authentication") != NULL);

    /* No key at all: a clear stop, nothing applied. */
    n_fatal = 0;
    CHECK(apply_frame(none, f, size, &st) == KYUFU_STORAGE_ECORRUPT);
    CHECK(n_fatal == 1 && st.n_applied == 0);
    CHECK(strstr(fatal_msg, "entry 1 is encrypted") != NULL &&
          strstr(fatal_msg, "no cluster master key") != NULL);
    test_store_digest(none, d, &idx);
    CHECK(idx == 0);

    /* Intact: applied, on the node with the key. */
    n_fatal = 0;
    CHECK(apply_frame(ka, f, size, &st) == 0);
    CHECK(n_fatal == 0 && st.n_applied == 1 && st.n_sealed == 1);
    test_store_digest(ka, d, &idx);
    CHECK(idx == 1);
    {
        Kyufu__V1__StaffAccount *acct = NULL;
        CHECK(kyufu_storage_get_staff(ka, "admin", &acct) == 0);
        kyufu__v1__staff_account__free_unpacked(acct, NULL);
    }
    free(f);
    free(batch);

    /* A version-1 entry (an old log) on the node with a key. */
    batch = test_staff_batch("test-seal", "admin", "old-entry", 2, &len);
    size = glue__frame_size(len);
    f = aligned_alloc(8, size);
    CHECK(f != NULL);
    glue__frame_write(f, 5, batch, len);
    CHECK(apply_frame(ka, f, size, &st) == 0);
    CHECK(st.n_applied == 1 && st.n_sealed == 0);
    test_store_digest(ka, d, &idx);
    CHECK(idx == 2);
    free(f);
    free(batch);

    glue__stream_key_wipe(&k);
    kyufu_storage_close(ka);
    kyufu_storage_close(kb);
    kyufu_storage_close(none);
    printf("fsm entries: ok\n");
}

/* ----------------------------------------------------- FSM: snapshots */

/* The concatenated snapshot of s (INLINE mode), raft index = store's. */
static uint8_t *take_snapshot(struct kyufu_storage *s, size_t *size)
{
    struct raft_fsm fsm;
    struct kyufu_fsm st;
    struct raft_fixture f;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    uint64_t idx, term;
    kyufu_storage_applied(s, &idx, &term);
    kyufu_fsm_init(&fsm, &st, s, KYUFU_FSM_SNAPSHOT_INLINE, NULL);
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    st.raft = raft_fixture_get(&f, 0);
    st.raft->last_applied = idx;
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == 0);
    *size = 0;
    for (unsigned i = 0; i < n_bufs; i++) {
        *size += bufs[i].len;
    }
    uint8_t *snap = malloc(*size);
    CHECK(snap != NULL);
    *size = 0;
    for (unsigned i = 0; i < n_bufs; i++) {
        memcpy(snap + *size, bufs[i].base, bufs[i].len);
        *size += bufs[i].len;
    }
    CHECK(fsm.snapshot_finalize(&fsm, &bufs, &n_bufs) == 0);
    CHECK(st.snap_key.version == 0); /* wiped at finalize */
    raft_fixture_close(&f);
    return snap;
}

/* Restore a copy of bytes into target; returns raft's rv. */
static int restore_copy(struct kyufu_storage *target, const uint8_t *bytes,
                        size_t size, struct kyufu_fsm *st)
{
    struct raft_fsm fsm;
    struct raft_buffer buf;
    struct kyufu_fsm_hooks hooks = {NULL, NULL, on_fatal};
    kyufu_fsm_init(&fsm, st, target, KYUFU_FSM_SNAPSHOT_INLINE, &hooks);
    buf.len = size;
    buf.base = raft_malloc(size > 0 ? size : 1);
    CHECK(buf.base != NULL);
    memcpy(buf.base, bytes, size);
    int rv = fsm.restore(&fsm, &buf);
    if (rv != 0) {
        raft_free(buf.base); /* raft frees it on failure */
    }
    return rv;
}

/* An intact snapshot restores into dst: the source's index and digest. */
static void restores_intact(struct kyufu_storage *dst, const uint8_t *snap,
                            size_t size, uint64_t is, const uint8_t ds[32])
{
    struct kyufu_fsm st;
    uint8_t d[32];
    uint64_t idx;
    n_fatal = 0;
    CHECK(restore_copy(dst, snap, size, &st) == 0);
    CHECK(n_fatal == 0 && st.n_restores == 1);
    test_store_digest(dst, d, &idx);
    CHECK(idx == is && memcmp(d, ds, 32) == 0);
}


static void test_fsm_snapshots(void)
{
    struct kyufu_storage *src = test_store_open(dir, "snap-src", cmk_a);
    struct kyufu_storage *plain_src = test_store_open(dir, "snap-plain", NULL);
    struct kyufu_storage *dst = test_store_open(dir, "snap-dst", cmk_a);
    struct kyufu_storage *other = test_store_open(dir, "snap-other", cmk_b);
    struct kyufu_storage *none = test_store_open(dir, "snap-none", NULL);
    struct kyufu_fsm st;
    struct glue_snapshot_header h;
    uint8_t ds[32], d[32], d0[32];
    uint64_t is, idx, i0;
    size_t size, psize;

    test_store_fill(src, 12);
    test_store_fill(plain_src, 12);
    uint8_t *snap = take_snapshot(src, &size);
    uint8_t *psnap = take_snapshot(plain_src, &psize);
    test_store_digest(src, ds, &is);
    CHECK(is == 12);

    /* Sealed: version-2 header; no staff id in the bytes.  The legacy
     * snapshot of the same state does show them (the scan works). */
    CHECK(glue__snapshot_header_read(snap, size, &h));
    CHECK(h.key_version == 1 && h.storage_index == 12 && !h.own_key &&
          glue__snapshot_header_size(&h) == GLUE_SNAPSHOT2_HEADER_BYTES);
    CHECK(!contains(snap, size, "canary-staff", 12));
    CHECK(!contains(snap, size, "admin", 5));
    CHECK(glue__snapshot_header_read(psnap, psize, &h));
    CHECK(h.key_version == 0);
    CHECK(contains(psnap, psize, "canary-staff", 12));

    /* Refusals, each leaving the target as it was (empty). */
    test_store_digest(dst, d0, &i0);
    struct
    {
        const char *what;
        struct kyufu_storage *target;
        size_t at; /* byte to flip, or SIZE_MAX */
        size_t len;
        const char *msg;
    } cases[] = {
        {"header key version", dst, 32, size, "failed authentication"},
        {"header id", dst, 45, size, "failed authentication"},
        {"header raft index", dst, 8, size, "bad snapshot header"},
        {"header storage index", dst, 16, size, "failed authentication"},
        {"first chunk length", dst, GLUE_SNAPSHOT2_HEADER_BYTES, size,
         "chunk 0"},
        {"first chunk flags", dst, GLUE_SNAPSHOT2_HEADER_BYTES + 4, size,
         "chunk 0"},
        {"first chunk nonce", dst, GLUE_SNAPSHOT2_HEADER_BYTES + 8, size,
         "chunk 0 failed authentication"},
        {"middle", dst, size / 2, size, "failed authentication"},
        {"tag", dst, size - 1, size, "failed authentication"},
        {"truncated by one", dst, SIZE_MAX, size - 1, "truncated"},
        {"header only", dst, SIZE_MAX, GLUE_SNAPSHOT2_HEADER_BYTES,
         "truncated"},
        {"one byte more", dst, SIZE_MAX, size + 1, "after its last chunk"},
        {"other cluster", other, SIZE_MAX, size, "failed authentication"},
        {"no key", none, SIZE_MAX, size, "no cluster master key"},
    };
    uint8_t *copy = malloc(size + 1);
    CHECK(copy != NULL);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t dt0[32];
        uint64_t it0;
        test_store_digest(cases[c].target, dt0, &it0);
        memcpy(copy, snap, size);
        copy[size] = 0x5a;
        if (cases[c].at != SIZE_MAX) {
            copy[cases[c].at] ^= 0x04;
        }
        n_fatal = 0;
        int rv = restore_copy(cases[c].target, copy, cases[c].len, &st);
        test_store_digest(cases[c].target, d, &idx);
        if (rv == 0 || st.fatal_rv != KYUFU_STORAGE_ECORRUPT ||
            n_fatal != 1 || strstr(fatal_msg, cases[c].msg) == NULL ||
            idx != it0 || memcmp(d, dt0, 32) != 0 || st.n_restores != 0) {
            fprintf(stderr, "restore %s: rv %d fatal %d (%s) index %llu\n",
                    cases[c].what, rv, st.fatal_rv, fatal_msg,
                    (unsigned long long)idx);
            exit(1);
        }
    }
    free(copy);

    /* Intact: restores, the same state. */
    restores_intact(dst, snap, size, is, ds);

    /* Cut into 64-byte chunks (each sealed where storage wrote it, the
     * last one behind): one sealed chunk per 64 plaintext bytes, and it
     * restores to the same state. */
    {
        struct kyufu_storage *cut = test_store_open(dir, "snap-cut", cmk_a);
        size_t plain = size - GLUE_SNAPSHOT2_HEADER_BYTES -
                       glue__chunk_sealed_size(0);
        size_t csize;
        src->snapshot_chunk_bytes = 64;
        uint8_t *csnap = take_snapshot(src, &csize);
        src->snapshot_chunk_bytes = KYUFU_SNAPSHOT_CHUNK_BYTES_MAX;
        CHECK(csize == GLUE_SNAPSHOT2_HEADER_BYTES + plain +
                           (plain + 63) / 64 * glue__chunk_sealed_size(0));
        restores_intact(cut, csnap, csize, is, ds);
        free(csnap);
        kyufu_storage_close(cut);
    }

    /* A legacy (version-1) snapshot restores into a keyed store. */
    {
        struct kyufu_storage *legacy =
            test_store_open(dir, "snap-legacy", cmk_b);
        uint8_t dp[32];
        uint64_t ip;
        test_store_digest(plain_src, dp, &ip);
        CHECK(restore_copy(legacy, psnap, psize, &st) == 0);
        test_store_digest(legacy, d, &idx);
        CHECK(idx == ip && memcmp(d, dp, 32) == 0);
        kyufu_storage_close(legacy);
    }
    (void)d0;
    (void)i0;

    free(snap);
    free(psnap);
    kyufu_storage_close(src);
    kyufu_storage_close(plain_src);
    kyufu_storage_close(dst);
    kyufu_storage_close(other);
    kyufu_storage_close(none);
    printf("fsm snapshots: ok\n");
}

static void test_fsm_snapshots_own_key(void)
{
    struct kyufu_storage *src = test_store_open(dir, "own-src", cmk_a);
    struct kyufu_storage *dst = test_store_open(dir, "own-dst", cmk_a);
    struct kyufu_fsm st;
    struct glue_snapshot_header h;
    struct glue_stream_key k = {0, NULL, false};
    uint8_t ds[32], d[32];
    uint64_t is, idx;
    size_t size, len;
    char err[256];

    test_store_fill(src, 6);
    struct kyufu_storage_results res;
    uint8_t *b = test_versions_batch(7, kyufu_storage_command_version(), &len);
    CHECK(kyufu_storage_apply_bytes(src, 7, 1, b, len, &res, err,
                                    sizeof err) == 0);
    kyufu_storage_results_free(&res);
    free(b);
    uint32_t cluster = 0;
    CHECK(kyufu_storage_cluster_version(src, &cluster, NULL) == 0);
    CHECK(cluster >= KYUFU_STORAGE_SEAL_COUNT_SINCE);
    uint8_t *snap = take_snapshot(src, &size);
    test_store_digest(src, ds, &is);

    CHECK(glue__snapshot_header_read(snap, size, &h));
    CHECK(h.key_version == 1 && h.own_key && snap[4] == 3 &&
          glue__snapshot_header_size(&h) == GLUE_SNAPSHOT2_HEADER_BYTES);
    CHECK(!contains(snap, size, "canary-staff", 12));
    /* Not under the stream subkey; under the snapshot's own key. */
    CHECK(glue__stream_key_load(src, 1, &k) == 0);
    CHECK(open_copy(&k, snap, size, NULL) == -1);
    CHECK(glue__snapshot_header_key(src, &h, &k) == 0 && k.snapshot);
    CHECK(open_copy(&k, snap, size, NULL) > 0);
    glue__stream_key_wipe(&k);

    /* Relabelled format 2, or another id: refused, the target untouched. */
    uint8_t *copy = malloc(size);
    CHECK(copy != NULL);
    for (int c = 0; c < 2; c++) {
        memcpy(copy, snap, size);
        if (c == 0) {
            copy[4] = 2;
        } else {
            copy[45] ^= 0x10;
        }
        n_fatal = 0;
        CHECK(restore_copy(dst, copy, size, &st) != 0);
        CHECK(st.fatal_rv == KYUFU_STORAGE_ECORRUPT && n_fatal == 1 &&
              strstr(fatal_msg, "failed authentication") != NULL);
        test_store_digest(dst, d, &idx);
        CHECK(idx == 0);
    }
    /* A format this build does not know (a newer build's): it stops as
     * for a newer command set, not as for damage. */
    memcpy(copy, snap, size);
    copy[4] = 4;
    n_fatal = 0;
    CHECK(restore_copy(dst, copy, size, &st) != 0);
    CHECK(st.fatal_rv == KYUFU_STORAGE_ENEWER && n_fatal == 1 &&
          strstr(fatal_msg, "snapshot format 4 is newer") != NULL);
    free(copy);
    restores_intact(dst, snap, size, is, ds);

    free(snap);
    kyufu_storage_close(src);
    kyufu_storage_close(dst);
    printf("fsm snapshots, own key: ok\n");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kyufu-test-seal-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    struct kyufu_storage *s = test_store_open(dir, "keys", cmk_a);
    keyed = s;
    test_frames(s);
    test_chunks(s);
    kyufu_storage_close(s);
    test_fsm_entries();
    test_fsm_snapshots();
    test_fsm_snapshots_own_key();
    test_rm_tree(dir);
    printf("seal: ok\n");
    return 0;
}
