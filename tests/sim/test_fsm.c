/* raft-glue's entry framing and FSM adapter (internal API):
 *
 *  - frame_decoder: glue__frame_read / glue__snapshot_header_read on
 *    kyufu's own frames of every payload length 0..40 (accepted, round
 *    trip) and on foreign and damaged ones: wrong magic, wrong version,
 *    truncated header, length past the end or short of it, nonzero
 *    padding, odd sizes, term 0, every single-bit flip of the header and
 *    seeded random bytes (all refused);
 *  - foreign_frames: three replicas on libraft's fixture cluster; foreign
 *    and damaged entries proposed through raft (among them a valid
 *    CommandBatch behind a wrong magic or version) are each recorded as a
 *    no-op at their index on every replica (n_bad_frames counted, applied
 *    index advanced alike, digest equal to a reference store that applied
 *    a no-op there), and a good entry after them still applies;
 *  - term_below_applied: a well-framed entry whose term is below the
 *    applied term poisons every replica (fatal hook once, CORRUPT, errmsg
 *    naming the index and both terms), the store untouched; it used to
 *    be an assert;
 *  - newer_command_set: an entry holding a command type outside this
 *    build's command set poisons every replica with NEWER, the store
 *    untouched (docs/operations.md "Upgrades");
 *  - restore_damaged: a snapshot with a damaged header or body is refused
 *    before anything is replaced (digest unchanged), the intact copy
 *    restores;
 *  - apply_runs: fsm counts runs of committed entries (raft applies from
 *    its last applied index to its commit index in one go): a lone entry
 *    is one run on every replica; eight entries proposed at once take
 *    between one and eight runs on each replica, fewer than eight on at
 *    least one, the last run ending at the last entry;
 *  - snapshot_behind: a snapshot asked for while raft's applied index is
 *    below the store's (a restart replaying entries the store already
 *    holds) is refused with RAFT_BUSY and changes nothing; it aborted the
 *    node before (the 1M install drill: store at 57,430, snapshot due at
 *    57,380); with raft caught up a snapshot is taken and finalized;
 *  - snapshot_spacing: the rule that spaces snapshots by the last one's
 *    size (glue__snapshot_threshold: floor, share, 64 MiB cap, entry
 *    ceiling); the period (a power of two at most that, kept within its
 *    hysteresis) and the slots (each voter rank/voters of a period past a
 *    multiple, at least a quarter period after the last snapshot); and
 *    three replicas with a floor of 8 whose periods grow with the ledger,
 *    each setting raft's threshold to the distance to its own next slot
 *    and taking its snapshots there, so no two at the same index.
 *
 * Deterministic: the fixture runs on virtual time, random bytes come from
 * a fixed seed.  One temporary directory under /tmp, removed at the end. */
#include <inttypes.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rm_tree.h"
#include "frame.h"
#include "fsm.h"
#include "glue_limits.h"
#include "kyufu/v1/ledger.pb-c.h"
#include "snapshot_spacing.h"
#include "staff_batch.h"
#include "storage.h"
#include "test_store.h"

#define N 3

static char dir[64];

/* xorshift64*, fixed seed: the "random bytes" are the same every run. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545f4914f6cdd1dull;
}

/* ------------------------------------------------------ frame decoder */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static bool reads(const uint8_t *buf, size_t size)
{
    uint64_t term = 0;
    const uint8_t *payload = NULL;
    size_t len = 0;
    return glue__frame_read(buf, size, &term, &payload, &len);
}

static void test_frame_decoder(void)
{
    uint8_t payload[64];
    uint8_t frame[128];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t)(i * 37 + 1);
    }
    /* kyufu's own frames, every length 0..40: accepted, round trip, size
     * the next multiple of 8, and every other size refused. */
    for (size_t len = 0; len <= 40; len++) {
        size_t size = glue__frame_size(len);
        CHECK(size % 8 == 0 && size >= GLUE_FRAME_HEADER_BYTES + len &&
              size < GLUE_FRAME_HEADER_BYTES + len + 8);
        glue__frame_write(frame, 7, payload, len);
        uint64_t term;
        const uint8_t *p;
        size_t n;
        CHECK(glue__frame_read(frame, size, &term, &p, &n));
        CHECK(term == 7 && n == len && p == frame + GLUE_FRAME_HEADER_BYTES);
        CHECK(memcmp(p, payload, len) == 0);
        for (size_t other = 0; other <= size + 8; other++) {
            if (other != size) {
                CHECK(!reads(frame, other)); /* truncated, odd, too long */
            }
        }
        /* Nonzero padding, any byte of it. */
        for (size_t k = GLUE_FRAME_HEADER_BYTES + len; k < size; k++) {
            frame[k] = 1;
            CHECK(!reads(frame, size));
            frame[k] = 0;
        }
        /* Every single-bit flip of magic and version is refused; of the
         * term none is (7 has three bits set: no single flip makes it 0).
         * A flipped length is refused unless it stays inside the same
         * padded size over zero bytes (the length field is what says
         * where the payload ends): never past the end. */
        for (size_t bit = 0; bit < 8 * GLUE_FRAME_HEADER_BYTES; bit++) {
            frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            uint64_t t2;
            const uint8_t *p2;
            size_t n2;
            bool ok = glue__frame_read(frame, size, &t2, &p2, &n2);
            if (bit / 8 < 8) {
                CHECK(!ok);
            } else if (bit / 8 < 16) {
                CHECK(ok && t2 != 7 && n2 == len);
            } else if (ok) {
                CHECK(n2 != len && glue__frame_size(n2) == size);
                for (size_t k = len; k < n2; k++) {
                    CHECK(p2[k] == 0);
                }
            }
            frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        CHECK(reads(frame, size));
    }
    /* Length one past the end, and far past it (no overflow). */
    glue__frame_write(frame, 1, payload, 8);
    put64(frame + 16, 9);
    CHECK(!reads(frame, 32));
    put64(frame + 16, UINT64_MAX);
    CHECK(!reads(frame, 32));
    put64(frame + 16, UINT64_MAX - GLUE_FRAME_HEADER_BYTES + 1);
    CHECK(!reads(frame, 32));
    /* Length so short that the padding would be 8 bytes or more. */
    put64(frame + 16, 0);
    memset(frame + GLUE_FRAME_HEADER_BYTES, 0, 8);
    CHECK(!reads(frame, 32));
    /* Term 0 (no leader proposes in term 0). */
    glue__frame_write(frame, 1, payload, 8);
    put64(frame + 8, 0);
    CHECK(!reads(frame, 32));
    put64(frame + 8, UINT64_MAX);
    CHECK(reads(frame, 32));
    /* An empty buffer. */
    CHECK(!reads(frame, 0));
    /* Seeded random bytes, every multiple-of-8 size: never accepted, and
     * with kyufu's magic and version in front still refused unless the
     * length and padding happen to be right (checked, not assumed). */
    for (unsigned round = 0; round < 2000; round++) {
        size_t size = 8 * (1 + next_rand() % 15);
        for (size_t k = 0; k < size; k++) {
            frame[k] = (uint8_t)next_rand();
        }
        if (get32(frame) != GLUE_FRAME_MAGIC) {
            CHECK(!reads(frame, size));
        }
    }

    /* Snapshot header. */
    uint8_t sh[GLUE_SNAPSHOT_HEADER_BYTES];
    struct glue_snapshot_header h = {10, 8, 3, 0, {0}, false}, out;
    glue__snapshot_header_write(sh, &h);
    CHECK(glue__snapshot_header_read(sh, sizeof sh, &out));
    CHECK(out.raft_index == 10 && out.storage_index == 8 &&
          out.storage_term == 3);
    CHECK(!glue__snapshot_header_read(sh, sizeof sh - 1, &out));
    for (size_t bit = 0; bit < 8 * 8; bit++) { /* magic and version */
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK(!glue__snapshot_header_read(sh, sizeof sh, &out));
        sh[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    sh[39] = 1; /* reserved */
    CHECK(!glue__snapshot_header_read(sh, sizeof sh, &out));
    sh[39] = 0;
    h.storage_index = 11; /* storage ahead of raft: impossible */
    glue__snapshot_header_write(sh, &h);
    CHECK(!glue__snapshot_header_read(sh, sizeof sh, &out));
    h.storage_index = 10; /* equal: fine */
    glue__snapshot_header_write(sh, &h);
    CHECK(glue__snapshot_header_read(sh, sizeof sh, &out));
    /* Sealed headers: format 2 (stream subkey) and 3 (the snapshot's own
     * key) differ only in the version field; 4 is nobody's. */
    uint8_t sh2[GLUE_SNAPSHOT2_HEADER_BYTES];
    for (int own = 0; own < 2; own++) {
        struct glue_snapshot_header hs = {10, 8, 3, 2, {0}, own == 1};
        memset(hs.id, 0x37, sizeof hs.id);
        glue__snapshot_header_write(sh2, &hs);
        CHECK(sh2[4] == (own ? 3 : 2));
        CHECK(glue__snapshot_header_read(sh2, sizeof sh2, &out));
        CHECK(out.key_version == 2 && out.own_key == (own == 1) &&
              out.id[15] == 0x37 && out.raft_index == 10);
        CHECK(!glue__snapshot_header_read(sh2, sizeof sh2 - 1, &out));
    }
    uint32_t newer = 0;
    CHECK(!glue__snapshot_header_newer(sh2, sizeof sh2, &newer));
    CHECK(!glue__snapshot_header_newer(sh, sizeof sh, &newer));
    sh2[4] = 4;
    CHECK(!glue__snapshot_header_read(sh2, sizeof sh2, &out));
    CHECK(glue__snapshot_header_newer(sh2, sizeof sh2, &newer) && newer == 4);
    CHECK(!glue__snapshot_header_newer(sh2, 7, &newer));
    sh2[0] ^= 1;
    CHECK(!glue__snapshot_header_newer(sh2, sizeof sh2, &newer));
    /* A snapshot header is not an entry frame and vice versa. */
    CHECK(!reads(sh, sizeof sh));
    glue__frame_write(frame, 1, payload, 16);
    CHECK(!glue__snapshot_header_read(frame, 40, &out));
    printf("fsm: frame_decoder ok\n");
}

/* ------------------------------------------ three replicas, raft fixture */

struct cluster
{
    struct raft_fixture f;
    struct kyufu_storage *s[N];
    struct raft_fsm fsm[N];
    struct kyufu_fsm st[N];
    unsigned fatal_calls[N];
    char fatal_msg[N][256];
    /* Reference store: what every replica must equal. */
    struct kyufu_storage *ref;
    uint64_t seq;
};

static struct cluster cl;
/* Store names of the cluster: a later cluster starts on fresh stores. */
static const char *cl_prefix = "r";

static void on_fatal(void *arg, int rv, const char *msg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    CHECK(rv != 0);
    cl.fatal_calls[i]++;
    snprintf(cl.fatal_msg[i], sizeof cl.fatal_msg[i], "%s", msg);
}

static void cluster_start(void)
{
    struct raft_configuration conf;
    char ref_name[16];
    CHECK(raft_fixture_init(&cl.f) == 0);
    for (unsigned i = 0; i < N; i++) {
        char name[16];
        struct kyufu_fsm_hooks hooks = {(void *)(uintptr_t)i, NULL, on_fatal};
        snprintf(name, sizeof name, "%s%u", cl_prefix, i);
        cl.s[i] = test_store_open(dir, name, NULL);
        kyufu_fsm_init(&cl.fsm[i], &cl.st[i], cl.s[i],
                       KYUFU_FSM_SNAPSHOT_INLINE, &hooks);
        CHECK(raft_fixture_grow(&cl.f, &cl.fsm[i]) == 0);
        struct raft *r = raft_fixture_get(&cl.f, i);
        r->tracer = NULL;
        cl.st[i].raft = r;
    }
    snprintf(ref_name, sizeof ref_name, "%sref", cl_prefix);
    cl.ref = test_store_open(dir, ref_name, NULL);
    CHECK(raft_fixture_configuration(&cl.f, N, &conf) == 0);
    CHECK(raft_fixture_bootstrap(&cl.f, &conf) == 0);
    raft_configuration_close(&conf);
    CHECK(raft_fixture_start(&cl.f) == 0);
    raft_fixture_elect(&cl.f, 0);
}

static void cluster_stop(void)
{
    raft_fixture_close(&cl.f);
    for (unsigned i = 0; i < N; i++) {
        kyufu_storage_close(cl.s[i]);
    }
    kyufu_storage_close(cl.ref);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    CHECK(status == 0);
    free(req);
}

/* Propose `size` raw bytes through the leader and step until every replica
 * applied it.  Returns the entry's raft index. */
static raft_index propose_raw(const void *bytes, size_t size)
{
    struct raft *leader = raft_fixture_get(&cl.f, 0);
    CHECK(raft_state(leader) == RAFT_LEADER);
    struct raft_apply *req = calloc(1, sizeof *req);
    struct raft_buffer buf;
    CHECK(req != NULL);
    buf.len = size;
    buf.base = raft_malloc(size > 0 ? size : 1);
    CHECK(buf.base != NULL);
    if (size > 0) {
        memcpy(buf.base, bytes, size);
    }
    CHECK(raft_apply(leader, req, &buf, 1, apply_cb) == 0);
    raft_index index = raft_last_index(leader);
    CHECK(raft_fixture_step_until_applied(&cl.f, N, index, 10000));
    return index;
}

/* Every replica at the same applied index with the reference's digest. */
static void check_replicas(uint64_t want_index)
{
    uint8_t d0[32], d[32];
    uint64_t i0, idx;
    test_store_digest(cl.ref, d0, &i0);
    CHECK(i0 == want_index);
    for (unsigned i = 0; i < N; i++) {
        test_store_digest(cl.s[i], d, &idx);
        if (idx != want_index || memcmp(d, d0, 32) != 0) {
            fprintf(stderr, "replica %u at %" PRIu64 " (want %" PRIu64
                            "), digest %s\n",
                    i, idx, want_index,
                    memcmp(d, d0, 32) == 0 ? "equal" : "differs");
            exit(1);
        }
    }
}

/* The reference applies what a good entry carries. */
static void ref_apply(raft_index index, uint64_t term, const uint8_t *p,
                      size_t len)
{
    struct kyufu_storage_results res;
    char err[256] = "";
    CHECK(kyufu_storage_apply_bytes(cl.ref, index, term, p, len, &res, err,
                                    sizeof err) == 0);
    for (size_t i = 0; i < res.n; i++) {
        CHECK(res.items[i].code == KYUFU__V1__CODE__OK);
    }
    kyufu_storage_results_free(&res);
}

static void ref_noop(raft_index index)
{
    uint64_t ai, at;
    char err[256] = "";
    kyufu_storage_applied(cl.ref, &ai, &at);
    CHECK(kyufu_storage_apply_noop(cl.ref, index, at, err, sizeof err) == 0);
}

/* Propose a good frame of a CreateStaff at `term` on every replica and the
 * reference. */
static void good_entry(const char *actor, const char *id, uint64_t term)
{
    size_t len;
    uint8_t *p = test_staff_batch("test-fsm", actor, id, ++cl.seq, &len);
    size_t size = glue__frame_size(len);
    uint8_t *frame = calloc(1, size);
    CHECK(frame != NULL);
    glue__frame_write(frame, term, p, len);
    uint64_t bad[N];
    for (unsigned i = 0; i < N; i++) {
        bad[i] = cl.st[i].n_bad_frames;
    }
    raft_index index = propose_raw(frame, size);
    ref_apply(index, term, p, len);
    check_replicas(index);
    for (unsigned i = 0; i < N; i++) {
        CHECK(cl.st[i].n_bad_frames == bad[i]);
        CHECK(cl.st[i].fatal_rv == 0);
    }
    free(frame);
    free(p);
}

/* Propose bytes that are not a kyufu frame: a no-op everywhere. */
static unsigned n_bad_entries;

static void bad_entry(const char *what, const uint8_t *bytes, size_t size)
{
    n_bad_entries++;
    uint64_t bad[N], applied[N];
    for (unsigned i = 0; i < N; i++) {
        bad[i] = cl.st[i].n_bad_frames;
        applied[i] = cl.st[i].n_applied;
    }
    raft_index index = propose_raw(bytes, size);
    ref_noop(index);
    for (unsigned i = 0; i < N; i++) {
        if (cl.st[i].n_bad_frames != bad[i] + 1) {
            fprintf(stderr, "%s: replica %u n_bad_frames %" PRIu64
                            " (was %" PRIu64 ")\n",
                    what, i, cl.st[i].n_bad_frames, bad[i]);
            exit(1);
        }
        CHECK(cl.st[i].n_applied == applied[i]);
        CHECK(cl.st[i].fatal_rv == 0 && cl.fatal_calls[i] == 0);
    }
    check_replicas(index);
}

static void test_foreign_frames(void)
{
    cluster_start();
    uint64_t term = raft_current_term(raft_fixture_get(&cl.f, 0));
    good_entry("admin", "admin", term); /* bootstrap */

    /* A valid CommandBatch, framed as kyufu would but for one field. */
    size_t len;
    uint8_t *p =
        test_staff_batch("test-fsm", "admin", "intruder", ++cl.seq, &len);
    size_t size = glue__frame_size(len);
    uint8_t *frame = calloc(1, size + 16);
    CHECK(frame != NULL);

    glue__frame_write(frame, term, p, len);
    frame[0] ^= 0x20; /* "kYFE" */
    bad_entry("wrong magic", frame, size);

    glue__frame_write(frame, term, p, len);
    frame[4] = 2; /* version 2 */
    bad_entry("wrong version", frame, size);

    glue__frame_write(frame, term, p, len);
    bad_entry("truncated header", frame, GLUE_FRAME_HEADER_BYTES - 8);

    glue__frame_write(frame, term, p, len);
    put64(frame + 16, (uint64_t)len + 8); /* length past the end */
    bad_entry("length past end", frame, size);

    if (size > GLUE_FRAME_HEADER_BYTES + len) {
        glue__frame_write(frame, term, p, len);
        frame[size - 1] = 0xff; /* nonzero padding */
        bad_entry("nonzero padding", frame, size);
    }

    glue__frame_write(frame, term, p, len);
    put64(frame + 8, 0); /* term 0 */
    bad_entry("term 0", frame, size);

    /* The raw CommandBatch without any frame (an older kyufu). */
    uint8_t raw[512];
    CHECK(len <= sizeof raw);
    memset(raw, 0, sizeof raw);
    memcpy(raw, p, len);
    bad_entry("unframed batch", raw, (len + 7) & ~(size_t)7);

    /* Odd sizes (the fixture, unlike raft_uv, takes them). */
    glue__frame_write(frame, term, p, len);
    bad_entry("odd size +1", frame, size + 1);
    bad_entry("odd size -1", frame, size - 1);
    bad_entry("one byte", frame, 1);

    /* Seeded random bytes. */
    for (unsigned round = 0; round < 8; round++) {
        uint8_t rnd[64];
        size_t n = 8 + 8 * (next_rand() % 7);
        for (size_t k = 0; k < n; k++) {
            rnd[k] = (uint8_t)next_rand();
        }
        CHECK(get32(rnd) != GLUE_FRAME_MAGIC);
        bad_entry("random bytes", rnd, n);
    }

    /* After all of it a good entry still applies everywhere, and the
     * intruder never got in. */
    good_entry("admin", "second", term);
    for (unsigned i = 0; i < N; i++) {
        Kyufu__V1__StaffAccount *a = NULL;
        CHECK(kyufu_storage_get_staff(cl.s[i], "intruder", &a) ==
              KYUFU_STORAGE_ENOTFOUND);
        CHECK(kyufu_storage_get_staff(cl.s[i], "second", &a) == 0);
        kyufu__v1__staff_account__free_unpacked(a, NULL);
        CHECK(cl.st[i].n_bad_frames == n_bad_entries);
    }
    free(frame);
    free(p);
    printf("fsm: foreign_frames ok\n");
}

/* Runs on the cluster of test_foreign_frames. */
static void test_term_below_applied(void)
{
    uint64_t term = raft_current_term(raft_fixture_get(&cl.f, 0));
    /* A frame may carry any term >= the applied one: jump ahead. */
    good_entry("admin", "ahead", term + 5);
    uint8_t before[N][32], d[32];
    uint64_t idx_before[N], idx;
    for (unsigned i = 0; i < N; i++) {
        test_store_digest(cl.s[i], before[i], &idx_before[i]);
    }
    size_t len;
    uint8_t *p =
        test_staff_batch("test-fsm", "admin", "behind", ++cl.seq, &len);
    size_t size = glue__frame_size(len);
    uint8_t *frame = calloc(1, size);
    CHECK(frame != NULL);
    glue__frame_write(frame, term + 4, p, len);
    raft_index index = propose_raw(frame, size);
    char want[128];
    snprintf(want, sizeof want,
             "entry %" PRIu64 " has term %" PRIu64
             " below the applied term %" PRIu64,
             (uint64_t)index, term + 4, term + 5);
    for (unsigned i = 0; i < N; i++) {
        CHECK(cl.st[i].fatal_rv == KYUFU_STORAGE_ECORRUPT);
        CHECK(cl.fatal_calls[i] == 1);
        if (strstr(cl.fatal_msg[i], want) == NULL) {
            fprintf(stderr, "replica %u: \"%s\" lacks \"%s\"\n", i,
                    cl.fatal_msg[i], want);
            exit(1);
        }
        CHECK(strcmp(cl.st[i].errmsg, cl.fatal_msg[i]) == 0);
        test_store_digest(cl.s[i], d, &idx);
        CHECK(idx == idx_before[i] && memcmp(d, before[i], 32) == 0);
        CHECK(cl.st[i].n_dropped == 1);
    }
    /* Poisoned: a later good entry is dropped, not applied. */
    glue__frame_write(frame, term + 6, p, len);
    propose_raw(frame, size);
    for (unsigned i = 0; i < N; i++) {
        test_store_digest(cl.s[i], d, &idx);
        CHECK(idx == idx_before[i] && memcmp(d, before[i], 32) == 0);
        CHECK(cl.st[i].n_dropped == 2 && cl.fatal_calls[i] == 1);
    }
    free(frame);
    free(p);
    printf("fsm: term_below_applied ok\n");
}

/* A well-framed entry holding a command type this build's command set
 * does not have (the test build's Annotate; docs/operations.md
 * "Upgrades"): every replica of this build stops with NEWER and the entry
 * unapplied, where it used to record an "unknown command" rejection that
 * an upgraded replica would not. */
static void test_newer_command_set(void)
{
    cl_prefix = "v";
    memset(&cl, 0, sizeof cl);
    cluster_start();
    uint64_t term = raft_current_term(raft_fixture_get(&cl.f, 0));
    good_entry("admin", "admin", term);
    uint8_t before[N][32], d[32];
    uint64_t idx_before[N], idx;
    for (unsigned i = 0; i < N; i++) {
        test_store_digest(cl.s[i], before[i], &idx_before[i]);
    }
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__Annotate a = KYUFU__V1__ANNOTATE__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__Command *cp = &c;
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    key.client_id = "test-fsm";
    key.sequence = ++cl.seq;
    h.actor = "admin";
    h.terminal = "t";
    h.time_ms = 1775001600000 + (int64_t)cl.seq;
    h.key = &key;
    a.text = "from a newer build";
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_ANNOTATE;
    c.annotate = &a;
    b.n_commands = 1;
    b.commands = &cp;
    size_t len = kyufu__v1__command_batch__get_packed_size(&b);
    uint8_t *p = malloc(len);
    CHECK(p != NULL);
    kyufu__v1__command_batch__pack(&b, p);
    size_t size = glue__frame_size(len);
    uint8_t *frame = calloc(1, size);
    CHECK(frame != NULL);
    glue__frame_write(frame, term, p, len);
    propose_raw(frame, size);
    for (unsigned i = 0; i < N; i++) {
        CHECK(cl.st[i].fatal_rv == KYUFU_STORAGE_ENEWER);
        CHECK(cl.fatal_calls[i] == 1);
        if (strstr(cl.fatal_msg[i], "not in this build's command set") ==
            NULL) {
            fprintf(stderr, "replica %u: \"%s\"\n", i, cl.fatal_msg[i]);
            exit(1);
        }
        test_store_digest(cl.s[i], d, &idx);
        CHECK(idx == idx_before[i] && memcmp(d, before[i], 32) == 0);
        CHECK(cl.st[i].n_dropped == 1);
    }
    free(frame);
    free(p);
    cluster_stop();
    printf("fsm: newer_command_set ok\n");
}

/* ----------------------------------------------------------- apply runs */

/* Frame a CreateStaff at `term` into a new raft buffer. */
static struct raft_buffer staff_frame(const char *id, uint64_t term)
{
    size_t len;
    uint8_t *p = test_staff_batch("test-fsm", "admin", id, ++cl.seq, &len);
    struct raft_buffer buf;
    buf.len = glue__frame_size(len);
    buf.base = raft_calloc(1, buf.len);
    CHECK(buf.base != NULL);
    glue__frame_write(buf.base, term, p, len);
    free(p);
    return buf;
}

static void test_apply_runs(void)
{
    cl_prefix = "u";
    memset(&cl, 0, sizeof cl);
    cluster_start();
    struct raft *leader = raft_fixture_get(&cl.f, 0);
    uint64_t term = raft_current_term(leader);
    uint64_t runs[N], applied[N];

    /* A lone entry is a run of its own on every replica. */
    for (unsigned i = 0; i < N; i++) {
        runs[i] = cl.st[i].n_apply_runs;
        applied[i] = cl.st[i].n_applied;
    }
    struct raft_buffer buf = staff_frame("admin", term);
    struct raft_apply *req = calloc(1, sizeof *req);
    CHECK(req != NULL);
    CHECK(raft_apply(leader, req, &buf, 1, apply_cb) == 0);
    raft_index last = raft_last_index(leader);
    CHECK(raft_fixture_step_until_applied(&cl.f, N, last, 10000));
    for (unsigned i = 0; i < N; i++) {
        CHECK(cl.st[i].n_applied == applied[i] + 1);
        CHECK(cl.st[i].n_apply_runs == runs[i] + 1);
        CHECK(cl.st[i].run_end == last);
        runs[i] = cl.st[i].n_apply_runs;
        applied[i] = cl.st[i].n_applied;
    }

    /* Eight entries proposed before any commits: a follower learns their
     * commit from the leader's next message, so it applies them in fewer
     * runs than entries; no replica counts more runs than entries, and
     * every run ends at a commit index, the last at the last entry. */
    enum { K = 8 };
    for (unsigned k = 0; k < K; k++) {
        char id[16];
        snprintf(id, sizeof id, "runs%u", k);
        buf = staff_frame(id, term);
        req = calloc(1, sizeof *req);
        CHECK(req != NULL);
        CHECK(raft_apply(leader, req, &buf, 1, apply_cb) == 0);
    }
    last = raft_last_index(leader);
    CHECK(raft_fixture_step_until_applied(&cl.f, N, last, 10000));
    bool batched = false;
    for (unsigned i = 0; i < N; i++) {
        uint64_t d = cl.st[i].n_apply_runs - runs[i];
        CHECK(cl.st[i].n_applied == applied[i] + K);
        CHECK(d >= 1 && d <= K);
        CHECK(cl.st[i].run_end == last);
        printf("fsm: apply_runs: replica %u applied %u entries in %" PRIu64
               " runs\n",
               i, (unsigned)K, d);
        batched = batched || d < K;
    }
    CHECK(batched);
    cluster_stop();
    printf("fsm: apply_runs ok\n");
}

/* ----------------------------------------------------- restore damaged */

/* Restore `bytes` into a fresh FSM over `target`; returns raft's code. */
static int restore_copy(struct kyufu_storage *target, const uint8_t *bytes,
                        size_t size, struct kyufu_fsm *st)
{
    struct raft_fsm fsm;
    struct raft_buffer buf;
    kyufu_fsm_init(&fsm, st, target, KYUFU_FSM_SNAPSHOT_INLINE, NULL);
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

static void test_restore_damaged(void)
{
    /* A snapshot of replica 0 of the (poisoned) cluster is refused; take
     * one from a fresh single fixture server over a copy of the state. */
    struct raft_fixture f;
    struct raft_fsm fsm;
    struct kyufu_fsm st;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    struct kyufu_storage *src = test_store_open(dir, "snap-src", NULL);
    struct kyufu_storage *dst = test_store_open(dir, "snap-dst", NULL);
    char err[256] = "";
    /* Source: bootstrap and two more staff at indexes 1..3. */
    for (uint64_t i = 1; i <= 3; i++) {
        size_t len;
        const char *who = i == 1 ? "admin" : i == 2 ? "x" : "y";
        uint8_t *p = test_staff_batch("test-fsm", "admin", who, 100 + i, &len);
        struct kyufu_storage_results res;
        CHECK(kyufu_storage_apply_bytes(src, i, 2, p, len, &res, err,
                                        sizeof err) == 0);
        kyufu_storage_results_free(&res);
        free(p);
    }
    kyufu_fsm_init(&fsm, &st, src, KYUFU_FSM_SNAPSHOT_INLINE, NULL);
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    st.raft = raft_fixture_get(&f, 0);
    st.raft->last_applied = 3; /* what raft sets after applying 1..3 */
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == 0);
    size_t size = 0;
    for (unsigned i = 0; i < n_bufs; i++) {
        size += bufs[i].len;
    }
    uint8_t *snap = malloc(size);
    CHECK(snap != NULL);
    size = 0;
    for (unsigned i = 0; i < n_bufs; i++) {
        memcpy(snap + size, bufs[i].base, bufs[i].len);
        size += bufs[i].len;
    }
    CHECK(fsm.snapshot_finalize(&fsm, &bufs, &n_bufs) == 0);
    CHECK(size > GLUE_SNAPSHOT_HEADER_BYTES + 8);

    /* Target: bootstrap only, at index 1. */
    {
        size_t len;
        uint8_t *p = test_staff_batch("test-fsm", "admin", "admin", 1, &len);
        struct kyufu_storage_results res;
        CHECK(kyufu_storage_apply_bytes(dst, 1, 1, p, len, &res, err,
                                        sizeof err) == 0);
        kyufu_storage_results_free(&res);
        free(p);
    }
    uint8_t d0[32], d[32], ds[32];
    uint64_t i0, idx, is;
    test_store_digest(dst, d0, &i0);

    uint8_t *copy = malloc(size);
    CHECK(copy != NULL);
    struct
    {
        const char *what;
        size_t at;    /* byte to change, or SIZE_MAX */
        uint8_t xor;
        size_t len;   /* bytes handed over */
    } cases[] = {
        {"header magic", 0, 0x01, size},
        {"header version", 4, 0x02, size},
        {"header raft index below storage index", 8, 0x03, size},
        {"header reserved", 39, 0x01, size},
        {"truncated header", SIZE_MAX, 0, GLUE_SNAPSHOT_HEADER_BYTES - 1},
        {"header only", SIZE_MAX, 0, GLUE_SNAPSHOT_HEADER_BYTES},
        {"body first byte", GLUE_SNAPSHOT_HEADER_BYTES, 0x01, size},
        {"body middle", GLUE_SNAPSHOT_HEADER_BYTES +
                            (size - GLUE_SNAPSHOT_HEADER_BYTES) / 2,
         0x40, size},
        {"body last byte", size - 1, 0x01, size},
        {"body truncated", SIZE_MAX, 0, size - 1},
        {"body one byte longer", SIZE_MAX, 0, size + 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct kyufu_fsm rst;
        uint8_t *b = realloc(copy, size + 1);
        CHECK(b != NULL);
        copy = b;
        memcpy(copy, snap, size);
        copy[size] = 0;
        if (cases[k].at != SIZE_MAX) {
            copy[cases[k].at] ^= cases[k].xor;
        }
        int rv = restore_copy(dst, copy, cases[k].len, &rst);
        test_store_digest(dst, d, &idx);
        if (rv == 0 || rst.fatal_rv == 0 || idx != i0 ||
            memcmp(d, d0, 32) != 0) {
            fprintf(stderr, "restore %s: rv %d fatal %d index %" PRIu64
                            " digest %s\n",
                    cases[k].what, rv, rst.fatal_rv, idx,
                    memcmp(d, d0, 32) == 0 ? "unchanged" : "CHANGED");
            exit(1);
        }
        CHECK(rst.n_restores == 0);
    }
    /* A poisoned FSM refuses even an intact copy: nothing replaced. */
    {
        struct raft_fsm pf;
        struct kyufu_fsm pst;
        struct raft_buffer buf;
        kyufu_fsm_init(&pf, &pst, dst, KYUFU_FSM_SNAPSHOT_INLINE, NULL);
        memcpy(copy, snap, size);
        copy[0] ^= 1;
        buf.len = size;
        buf.base = raft_malloc(size);
        CHECK(buf.base != NULL);
        memcpy(buf.base, copy, size);
        CHECK(pf.restore(&pf, &buf) != 0 && pst.fatal_rv != 0);
        memcpy(buf.base, snap, size); /* raft would free it; reuse it */
        CHECK(pf.restore(&pf, &buf) != 0);
        raft_free(buf.base);
        CHECK(pst.n_restores == 0);
        test_store_digest(dst, d, &idx);
        CHECK(idx == i0 && memcmp(d, d0, 32) == 0);
    }
    /* The intact copy restores: dst equals src. */
    struct kyufu_fsm rst;
    CHECK(restore_copy(dst, snap, size, &rst) == 0);
    CHECK(rst.n_restores == 1 && rst.fatal_rv == 0);
    test_store_digest(dst, d, &idx);
    test_store_digest(src, ds, &is);
    CHECK(idx == 3 && is == 3 && memcmp(d, ds, 32) == 0);
    /* Again: the store already holds the snapshot's point: skipped, not
     * replaced a second time. */
    CHECK(restore_copy(dst, snap, size, &rst) == 0);
    CHECK(rst.n_restores == 0 && rst.n_restores_skipped == 1);
    test_store_digest(dst, d, &idx);
    CHECK(idx == 3 && memcmp(d, ds, 32) == 0);

    free(copy);
    free(snap);
    raft_fixture_close(&f);
    kyufu_storage_close(src);
    kyufu_storage_close(dst);
    printf("fsm: restore_damaged ok\n");
}

/* -------------------------------------------------- snapshot behind */

static void test_snapshot_behind(void)
{
    char err[256] = "";
    struct kyufu_storage *s = test_store_open(dir, "behind", NULL);
    struct raft_fixture f;
    struct raft_fsm fsm;
    struct kyufu_fsm state;
    struct raft_buffer *bufs = NULL;
    unsigned n_bufs = 0;
    uint64_t index, term;

    kyufu_fsm_init(&fsm, &state, s, KYUFU_FSM_SNAPSHOT_INLINE, NULL);
    CHECK(raft_fixture_init(&f) == 0);
    CHECK(raft_fixture_grow(&f, &fsm) == 0);
    state.raft = raft_fixture_get(&f, 0);
    CHECK(raft_last_applied(state.raft) == 0);

    /* Raft caught up with the store: a snapshot is taken. */
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == 0);
    CHECK(n_bufs >= 1 && state.n_snapshots == 1);
    CHECK(fsm.snapshot_finalize(&fsm, &bufs, &n_bufs) == 0);

    /* The store ahead of raft: refused, nothing held. */
    CHECK(kyufu_storage_apply_noop(s, 3, 1, err, sizeof err) == 0);
    kyufu_storage_applied(s, &index, &term);
    CHECK(index == 3);
    bufs = NULL;
    n_bufs = 0;
    CHECK(fsm.snapshot(&fsm, &bufs, &n_bufs) == RAFT_BUSY);
    CHECK(bufs == NULL && n_bufs == 0 && state.snap == NULL);
    CHECK(state.n_snapshots == 1 && state.n_snapshots_refused == 1);
    CHECK(state.fatal_rv == 0);

    raft_fixture_close(&f);
    kyufu_storage_close(s);
    printf("fsm: snapshot_behind ok\n");
}

/* ------------------------------------------------------ the block mean */

/* Propose `size` bytes that are no kyufu frame (each replica records a
 * no-op: the FSM sees the entry and its size all the same). */
static raft_index propose_noise(size_t size)
{
    uint8_t b[512];
    CHECK(size <= sizeof b);
    memset(b, 0xA5, size);
    return propose_raw(b, size);
}

/* Propose no-ops of `size` bytes until the leader's log ends just before
 * index `next`. */
static void fill_before(raft_index next, size_t size)
{
    struct raft *leader = raft_fixture_get(&cl.f, 0);
    while (raft_last_index(leader) + 1 < next) {
        propose_noise(size);
    }
    CHECK(raft_last_index(leader) + 1 == next);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    CHECK(status == 0);
    free(req);
}

/* Every replica's mean, all equal to `want`, except `odd` (N: none) which
 * must hold `odd_want`. */
static void check_means(uint64_t want, unsigned odd, uint64_t odd_want)
{
    for (unsigned i = 0; i < N; i++) {
        uint64_t w = i == odd ? odd_want : want;
        if (cl.st[i].mean_entry_bytes != w) {
            printf("fsm: block_mean: replica %u mean %" PRIu64
                   ", want %" PRIu64 "\n",
                   i, cl.st[i].mean_entry_bytes, w);
        }
        CHECK(cl.st[i].mean_entry_bytes == w);
    }
}

/* The mean command entry that sizes the snapshot period (fsm.c): taken
 * over the commands of index-aligned blocks, when a later block's first
 * command arrives; the same on every replica at the same index; none from
 * the first block after a start or a restore (entered part-way); a block
 * holding a barrier (which never reaches the FSM) still gives one. */
static void test_block_mean(void)
{
    const raft_index B = KYUFU_SNAPSHOT_SIZING_ENTRIES_MIN;
    cl_prefix = "m";
    memset(&cl, 0, sizeof cl);
    cluster_start();
    struct raft *leader = raft_fixture_get(&cl.f, 0);

    /* The first block seen: part-way (or not), no mean from it. */
    raft_index b0 = (raft_last_index(leader) + 1) / B;
    fill_before((b0 + 1) * B, 100);
    check_means(0, N, 0);

    /* The next block: commands of 200 and 300 bytes and one barrier. */
    uint64_t bytes = 0;
    uint64_t commands = 0;
    while (raft_last_index(leader) + 1 < (b0 + 2) * B) {
        if (raft_last_index(leader) + 1 == (b0 + 1) * B + B / 2) {
            struct raft_barrier *req = calloc(1, sizeof *req);
            CHECK(req != NULL);
            CHECK(raft_barrier(leader, req, barrier_cb) == 0);
            CHECK(raft_fixture_step_until_applied(
                &cl.f, N, raft_last_index(leader), 10000));
            continue;
        }
        size_t size = commands % 2 == 0 ? 200 : 300;
        propose_noise(size);
        bytes += size;
        commands++;
    }
    CHECK(commands == B - 1);
    /* Complete, but not closed until a later block's command. */
    check_means(0, N, 0);
    propose_noise(40);
    check_means(bytes / commands, N, 0);
    uint64_t first_mean = bytes / commands;

    /* Halfway through the block after, replica 1 restores a snapshot of
     * its own state (its store holds it: the restore keeps the store). */
    fill_before((b0 + 2) * B + B / 2, 40);
    {
        struct raft_buffer *bufs = NULL;
        unsigned n_bufs = 0;
        struct raft_buffer whole;
        CHECK(cl.fsm[1].snapshot(&cl.fsm[1], &bufs, &n_bufs) == 0);
        whole.len = 0;
        for (unsigned k = 0; k < n_bufs; k++) {
            whole.len += bufs[k].len;
        }
        whole.base = raft_malloc(whole.len);
        CHECK(whole.base != NULL);
        size_t at = 0;
        for (unsigned k = 0; k < n_bufs; k++) {
            memcpy((uint8_t *)whole.base + at, bufs[k].base, bufs[k].len);
            at += bufs[k].len;
        }
        CHECK(cl.fsm[1].snapshot_finalize(&cl.fsm[1], &bufs, &n_bufs) == 0);
        uint64_t skipped = cl.st[1].n_restores_skipped;
        CHECK(cl.fsm[1].restore(&cl.fsm[1], &whole) == 0);
        CHECK(cl.st[1].n_restores_skipped == skipped + 1);
    }
    fill_before((b0 + 3) * B, 40);
    propose_noise(60);
    /* The others close that block at 40; replica 1 entered it part-way
     * since its restore: its mean stays the one before. */
    check_means(40, 1, first_mean);

    /* And the block after that is whole on every replica again. */
    fill_before((b0 + 4) * B, 60);
    propose_noise(60);
    check_means(60, N, 0);
    for (unsigned i = 0; i < N; i++) {
        CHECK(cl.st[i].fatal_rv == 0);
    }
    cluster_stop();
    printf("fsm: block_mean ok (first mean %" PRIu64 " over %" PRIu64
           " commands)\n",
           first_mean, commands);
}

/* ---------------------------------------------------- snapshot spacing */

static void test_snapshot_spacing(void)
{
    /* The rule: an eighth of the snapshot's bytes in entries of the mean
     * size, between the floor and the ceilings. */
    CHECK(glue__snapshot_threshold(64, 1u << 30, 0) == 64); /* no mean yet */
    CHECK(glue__snapshot_threshold(64, 10000, 100) == 64);  /* 12 < floor */
    CHECK(glue__snapshot_threshold(64, 8u << 20, 100) == (1u << 20) / 100);
    CHECK(glue__snapshot_threshold(8192, 1u << 20, 100) == 8192);
    CHECK(glue__snapshot_threshold(64, 8ull << 30, 100) ==
          KYUFU_SNAPSHOT_LOG_BYTES_MAX / 100); /* 64 MiB of log at most */
    CHECK(glue__snapshot_threshold(64, 8ull << 30, 10) ==
          KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX);

    /* The period: the largest power of two at most the spacing, the
     * floor when that is smaller. */
    CHECK(glue__snapshot_period(8192, 8192) == 8192);
    CHECK(glue__snapshot_period(10000, 10000) == 10000);
    CHECK(glue__snapshot_period(10000, 15000) == 10000); /* 8192 < floor */
    CHECK(glue__snapshot_period(10000, 16384) == 16384);
    CHECK(glue__snapshot_period(64, 100000) == 65536);
    CHECK(glue__snapshot_period(64, 65536) == 65536);
    CHECK(glue__snapshot_period(64, 65535) == 32768);
    CHECK(glue__snapshot_period(64, KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX) ==
          KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX);

    /* Slots, windows of 3,000 entries (a third of a 9,000 floor): from the
     * same snapshot three voters a third of a period apart; at its slot a
     * voter's next is a period on; never closer than a quarter period; a
     * node that is not a voter is voter 0 of 1. */
#define DIST(last, ...) glue__snapshot_slot_distance(last, 0, __VA_ARGS__)
    CHECK(DIST(0, 9000, 0, 3, 3000) == 9000);
    CHECK(DIST(0, 9000, 1, 3, 3000) == 3000);
    CHECK(DIST(0, 9000, 2, 3, 3000) == 6000);
    CHECK(DIST(3000, 9000, 1, 3, 3000) == 9000);
    CHECK(DIST(3007, 9000, 1, 3, 3000) == 8993);
    CHECK(DIST(2000, 9000, 1, 3, 3000) == 10000);
    CHECK(DIST(750, 9000, 1, 3, 3000) == 2250);
    CHECK(DIST(751, 9000, 1, 3, 3000) == 11249); /* gap */
    CHECK(DIST(5, 9000, 3, 3, 9000) == 8995);
    CHECK(DIST(5, 4, 0, 1, 4) == 3);
    /* Windows that do not divide the period (8,192 / 3): a slot is the
     * start of the voter's own window nearest to its aim ... */
    CHECK(DIST(0, 8192, 0, 3, 2730) == 8190);  /* window 3 */
    CHECK(DIST(0, 8192, 1, 3, 2730) == 2730);  /* window 1 */
    CHECK(DIST(0, 8192, 2, 3, 2730) == 5460);  /* window 2 */
    CHECK(DIST(2730, 8192, 1, 3, 2730) == 8190);
    CHECK(DIST(100000, 8192, 2, 3, 2730) == 103740 - 100000); /* 38 */
    /* ... its first window when the aim lies before it. */
    CHECK(DIST(0, 9000, 2, 3, 5000) == 10000);
    CHECK(DIST(0, KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX, 0, 1,
               KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX) ==
          KYUFU_SNAPSHOT_THRESHOLD_ENTRIES_MAX);
    CHECK(DIST(UINT64_MAX / 2, 1u << 20, 4, 5, 1u << 18) < (3u << 20));

    /* Deferral: slot 2,730 passed by a run ending at 6,000 (voter 2's
     * window) moves voter 1 to its next slot after it; one ending at
     * 3,000 (its own window) stays. */
    CHECK(glue__snapshot_slot_distance(0, 6000, 8192, 1, 3, 2730) == 10920);
    CHECK(glue__snapshot_slot_distance(0, 3000, 8192, 1, 3, 2730) == 2730);
    CHECK(glue__snapshot_slot_distance(0, 2000, 8192, 1, 3, 2730) == 2730);

    /* Three voters applying the same runs of committed entries, libraft's
     * way: a snapshot when a run ends at least the threshold past the last
     * one, at the run's end, the threshold set again at each run's start.
     * Whatever periods they hold (one restarted, spacings either side of a
     * power of two) and however long the runs (1 to 8,000 entries; a
     * window is 2,730), every snapshot lands in its voter's own window
     * unless the voter waited DEFER_PERIODS_MAX periods, never closer than
     * a quarter period to the last, and each voter keeps taking them;
     * with runs shorter than a window no two at one index; with runs of
     * exactly a round of windows (8,190: every run ends in the same
     * voter's window) the others still take one every DEFER_PERIODS_MAX
     * periods or so, outside their windows then. */
    {
        enum { W = 8192 / 3, SPAN = 4u << 20 };
        const unsigned periods[] = {8192, 16384, 32768, 65536, 131072};
        const unsigned runs_max[] = {1, 100, 2000, 8000, 0 /* 3 x W */};
        const unsigned np = sizeof periods / sizeof periods[0];
        unsigned long taken_same_period[3] = {0, 0, 0};
        for (unsigned combo = 0; combo < np * np * np * 5; combo++) {
            unsigned per[3] = {periods[combo % np], periods[combo / np % np],
                               periods[combo / np / np % np]};
            unsigned run_max = runs_max[combo / np / np / np];
            uint64_t last[3] = {0, 0, 0};
            unsigned long n_taken[3] = {0, 0, 0};
            uint64_t prev_taken = 0; /* the newest snapshot index, any voter */
            unsigned long n_together = 0; /* two voters at one index */
            uint32_t rnd = 12345u + combo;
            uint64_t commit = 0;
            while (commit < SPAN) {
                rnd = rnd * 1103515245u + 12345u;
                commit += run_max != 0 ? 1 + (rnd >> 8) % run_max : 3 * W;
                for (unsigned r = 0; r < 3; r++) {
                    unsigned d = glue__snapshot_slot_distance(
                        last[r], commit, per[r], r, 3, W);
                    CHECK(d > 0);
                    if (commit - last[r] >= d) {
                        /* Outside its window only once deferred for
                         * DEFER_PERIODS_MAX periods; two at one index only
                         * when one of them is such. */
                        bool own = commit / W % 3 == r;
                        CHECK(own || commit - last[r] >=
                                         KYUFU_SNAPSHOT_DEFER_PERIODS_MAX *
                                             (uint64_t)per[r]);
                        n_together += commit == prev_taken;
                        last[r] = commit;
                        prev_taken = commit;
                        n_taken[r]++;
                    }
                }
            }
            /* Runs shorter than a window: never two at one index.  Runs
             * of a window or more (a period at the floor is barely more
             * than a round): a starved voter's capped snapshot may meet
             * another's, unavoidably when every run ends in one window. */
            if (run_max != 0 && run_max < W) {
                CHECK(n_together == 0);
            }
            for (unsigned r = 0; r < 3; r++) {
                /* Never closer than a quarter period, and at least one per
                 * four periods and a long run (deferrals). */
                CHECK(n_taken[r] <= SPAN / (per[r] / 4) + 2);
                CHECK(n_taken[r] + 1 >=
                      SPAN / ((KYUFU_SNAPSHOT_DEFER_PERIODS_MAX + 2) * per[r] +
                              3 * (run_max != 0 ? run_max : 3 * W)));
                if (per[0] == per[1] && per[1] == per[2]) {
                    taken_same_period[r] += n_taken[r];
                }
            }
        }
        CHECK(taken_same_period[0] > 0 && taken_same_period[2] > 0);
    }
#undef DIST

    /* Three replicas whose floor is 8 entries: as the ledger grows past
     * eight entries' worth of log per eighth, each raises raft's threshold
     * to what the rule gives for its last snapshot and mean entry, and
     * takes fewer snapshots than one per 8 entries. */
    cl_prefix = "p";
    memset(&cl, 0, sizeof cl);
    cluster_start();
    for (unsigned i = 0; i < N; i++) {
        raft_set_snapshot_threshold(cl.st[i].raft, 8);
        raft_set_snapshot_trailing(cl.st[i].raft, 4);
        cl.st[i].threshold_floor = 8;
        cl.st[i].threshold_set = 8;
        glue__fsm_retune(&cl.st[i]); /* as the glue does after its start */
    }
    struct raft *leader = raft_fixture_get(&cl.f, 0);
    uint64_t term = raft_current_term(leader);
    enum { K = 600 };
    /* Every snapshot index of each replica, seen after each entry. */
    static uint64_t taken_at[N][K];
    unsigned n_taken[N] = {0};
    for (unsigned k = 0; k < K; k++) {
        char id[16];
        snprintf(id, sizeof id, "space%u", k);
        struct raft_buffer buf = staff_frame(id, term);
        struct raft_apply *req = calloc(1, sizeof *req);
        CHECK(req != NULL);
        CHECK(raft_apply(leader, req, &buf, 1, apply_cb) == 0);
        CHECK(raft_fixture_step_until_applied(&cl.f, N,
                                              raft_last_index(leader), 10000));
        for (unsigned i = 0; i < N; i++) {
            uint64_t at = cl.st[i].last_snapshot_index;
            if (at != 0 && (n_taken[i] == 0 || taken_at[i][n_taken[i] - 1] != at)) {
                taken_at[i][n_taken[i]++] = at;
            }
        }
    }
    /* Windows of 8 / 3 = 2 entries, window j voter j mod 3's; entries
     * commit one at a time here, so each snapshot is at its slot's index
     * exactly, and no index holds two. */
    for (unsigned i = 0; i < N; i++) {
        CHECK(n_taken[i] >= 2);
        for (unsigned x = 0; x < n_taken[i]; x++) {
            CHECK(taken_at[i][x] % 2 == 0 && taken_at[i][x] / 2 % N == i);
        }
    }
    for (unsigned i = 0; i < N; i++) {
        const struct kyufu_fsm *st = &cl.st[i];
        unsigned want = glue__snapshot_threshold(8, st->last_snapshot_bytes,
                                                 st->mean_entry_bytes);
        unsigned rank;
        unsigned voters;
        glue__snapshot_voter_rank(st->raft, &rank, &voters);
        printf("fsm: snapshot_spacing: replica %u (rank %u of %u): %" PRIu64
               " snapshots, the last at %" PRIu64 " of %" PRIu64
               " bytes, entries of %" PRIu64 " bytes: spacing %u, period %u,"
               " threshold %u\n",
               i, rank, voters, st->n_snapshots, st->last_snapshot_index,
               st->last_snapshot_bytes, st->mean_entry_bytes, want,
               st->period, st->threshold_set);
        CHECK(rank == i && voters == N);
        CHECK(st->mean_entry_bytes > 0 && st->last_snapshot_bytes > 0);
        CHECK(want > 8 && st->period > 8 && st->period <= want);
        CHECK((st->period & (st->period - 1)) == 0);
        CHECK(st->threshold_set ==
              glue__snapshot_slot_distance(st->last_snapshot_index, 0,
                                           st->period, rank, voters, 8 / 3));
        CHECK(st->raft->legacy.snapshot_threshold == st->threshold_set);
        CHECK(st->n_snapshots >= 2 && st->n_snapshots < K / 8 / 2);
        CHECK(st->fatal_rv == 0);
    }
    CHECK(cl.st[0].period == cl.st[1].period &&
          cl.st[1].period == cl.st[2].period);
    cluster_stop();
    printf("fsm: snapshot_spacing ok\n");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/kyufu-fsm-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    test_frame_decoder();
    test_foreign_frames();
    test_term_below_applied();
    cluster_stop();
    test_newer_command_set();
    test_apply_runs();
    test_restore_damaged();
    test_snapshot_behind();
    test_block_mean();
    test_snapshot_spacing();
    test_rm_tree(dir);
    printf("fsm: ok\n");
    return 0;
}
