/* Writes the seed corpora of the h2, frame, snapshot and config fuzz
 * targets (meson.build) under a directory:
 *   fuzz_gen_seeds tests/fuzz
 * makes corpus-h2/, corpus-frame/, corpus-snapshot/, corpus-config/.
 * Deterministic: the same bytes every run (no clock, no randomness), so a
 * regeneration shows in git only when this file or a format changes. */
#include <ftw.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../storage/cmd.h"
#include "frame.h"

static char out[4096];
static int nseeds;

static void seed(const char *name, const uint8_t *p, size_t n)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%02d-%s", out, nseeds++, name);
    FILE *fp = fopen(path, "wb");
    if (fp == NULL || (n > 0 && fwrite(p, 1, n, fp) != n) || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}

static void corpus(const char *root, const char *name)
{
    snprintf(out, sizeof out, "%s/%s", root, name);
    mkdir(out, 0755);
    nseeds = 0;
}

/* ---- h2: client byte streams from a real nghttp2 client session ---- */

struct wire
{
    uint8_t buf[1 << 16];
    size_t len;
};

static ssize_t on_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)s;
    (void)flags;
    struct wire *w = user;
    if (w->len + len > sizeof w->buf) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    memcpy(w->buf + w->len, data, len);
    w->len += len;
    return (ssize_t)len;
}

struct body
{
    const uint8_t *p;
    size_t n, off;
    bool end;
};

static ssize_t body_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)s;
    (void)id;
    (void)user;
    struct body *b = src->ptr;
    size_t n = b->n - b->off < len ? b->n - b->off : len;
    memcpy(buf, b->p + b->off, n);
    b->off += n;
    if (b->off == b->n) {
        *flags |= b->end ? NGHTTP2_DATA_FLAG_EOF : (NGHTTP2_DATA_FLAG_EOF |
                                                     NGHTTP2_DATA_FLAG_NO_END_STREAM);
    }
    return (ssize_t)n;
}

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, 0}

/* One session: `calls` requests on `path` carrying `msg` (gRPC-framed
 * here), optionally without END_STREAM, optionally with a grpc-timeout,
 * then a PING; written with mode byte `mode` (harness_h2.c). */
static void h2_seed(const char *name, uint8_t mode, const char *path, const uint8_t *msg,
                    size_t msg_len, int calls, bool end, bool timeout, bool rst)
{
    struct wire *w = calloc(1, sizeof *w);
    nghttp2_session_callbacks *cbs;
    nghttp2_session *s;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, on_send);
    nghttp2_session_client_new(&s, cbs, w);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
    uint8_t framed[512];
    framed[0] = 0;
    framed[1] = (uint8_t)(msg_len >> 24);
    framed[2] = (uint8_t)(msg_len >> 16);
    framed[3] = (uint8_t)(msg_len >> 8);
    framed[4] = (uint8_t)msg_len;
    memcpy(framed + 5, msg, msg_len);
    struct body bodies[8];
    for (int i = 0; i < calls && i < 8; i++) {
        nghttp2_nv nva[] = {NV(":method", "POST"), NV(":scheme", "https"),
                            NV(":authority", "kyufu"), NV(":path", ""),
                            NV("content-type", "application/grpc"), NV("te", "trailers"),
                            NV("grpc-timeout", "2S")};
        nva[3].value = (uint8_t *)path;
        nva[3].valuelen = strlen(path);
        bodies[i] = (struct body){framed, msg_len + 5, 0, end};
        nghttp2_data_provider prd = {.source.ptr = &bodies[i], .read_callback = body_read};
        int32_t id = nghttp2_submit_request(s, NULL, nva, timeout ? 7 : 6, &prd, NULL);
        if (rst && id > 0) {
            nghttp2_session_send(s);
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        }
    }
    nghttp2_submit_ping(s, NGHTTP2_FLAG_NONE, NULL);
    nghttp2_session_send(s);
    nghttp2_session_del(s);
    uint8_t *file = malloc(w->len + 1);
    file[0] = mode;
    memcpy(file + 1, w->buf, w->len);
    seed(name, file, w->len + 1);
    free(file);
    free(w);
}

static void h2_seeds(const char *root)
{
    corpus(root, "corpus-h2");
    static const uint8_t get[] = {0x0a, 0x02, 'P', '1', 0x12, 0x02, 0x08, 0x01};
    static const uint8_t unknown[] = {0x0a, 0x02, 'P', '1', 0x98, 0x06, 0x01};
    static const uint8_t nested_unknown[] = {0x12, 0x03, 0x98, 0x06, 0x01};
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f};
    static const uint8_t health[] = {0x0a, 0x00};
    h2_seed("get", 6, "/kyufu.v1.Ledger/GetProgram", get, sizeof get, 1, true, false, false);
    h2_seed("get-timeout-held", 16 | 6, "/kyufu.v1.Ledger/GetProgram", get, sizeof get, 3,
            true, true, false);
    h2_seed("unknown-field", 6, "/kyufu.v1.Ledger/GetProgram", unknown, sizeof unknown, 1,
            true, false, false);
    h2_seed("nested-unknown", 2, "/kyufu.v1.Ledger/GetProgram", nested_unknown,
            sizeof nested_unknown, 2, true, false, false);
    h2_seed("junk-message", 1, "/kyufu.v1.Ledger/CreateProgram", junk, sizeof junk, 1, true,
            false, false);
    h2_seed("no-end-stream-clock", 32 | 6, "/kyufu.v1.Ledger/ListHouseholds", get, sizeof get,
            4, false, false, false);
    h2_seed("reset", 16 | 3, "/kyufu.v1.Ledger/GetProgram", get, sizeof get, 2, true, false,
            true);
    h2_seed("goaway-midway", 64 | 4, "/kyufu.v1.Ledger/GetProgram", get, sizeof get, 5, true,
            false, false);
    h2_seed("health", 6, "/grpc.health.v1.Health/Check", health, sizeof health, 1, true, false,
            false);
    h2_seed("unknown-method", 6, "/kyufu.v1.Ledger/Nope", get, sizeof get, 1, true, false,
            false);
}

/* ---- frame: valid entry frames and snapshot headers ---- */

static void frame_seeds(const char *root)
{
    corpus(root, "corpus-frame");
    static const uint8_t payload[] = {0x0a, 0x03, 0x08, 0x01, 0x10};
    uint8_t buf[64] __attribute__((aligned(8)));
    for (size_t n = 0; n <= sizeof payload; n += 5) {
        size_t size = glue__frame_size(n);
        glue__frame_write(buf, 7, payload, n);
        seed(n == 0 ? "frame-empty" : "frame", buf, size);
    }
    struct glue_snapshot_header h = {.raft_index = 99, .storage_index = 98, .storage_term = 3};
    glue__snapshot_header_write(buf, &h);
    seed("snapshot-header", buf, GLUE_SNAPSHOT_HEADER_BYTES);
    /* Sealed (version 2): header, then stand-in nonce, ciphertext, tag. */
    memset(buf, 0x5a, sizeof buf);
    glue__frame2_header(buf, 7, 1, sizeof payload);
    seed("frame-sealed", buf, glue__frame2_size(sizeof payload));
    h.key_version = 1;
    memset(h.id, 0xa5, sizeof h.id);
    glue__snapshot_header_write(buf, &h);
    seed("snapshot-header-sealed", buf, GLUE_SNAPSHOT2_HEADER_BYTES);
}

/* ---- snapshot: the stream of a real store (the standard world) ---- */

struct stream
{
    uint8_t *buf;
    size_t len;
};

static int collect(void *arg, void *chunk, size_t len)
{
    struct stream *s = arg;
    s->buf = realloc(s->buf, s->len + len);
    memcpy(s->buf + s->len, chunk, len);
    s->len += len;
    free(chunk);
    return 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void snapshot_seeds(const char *root)
{
    corpus(root, "corpus-snapshot");
    snprintf(t_dir, 64, "/tmp/kyufu-seeds-XXXXXX");
    if (mkdtemp(t_dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    struct fx f;
    memset(&f, 0, sizeof f);
    fx_open(&f);
    struct kyufu_storage_snapshot *snap;
    struct stream empty = {0}, world = {0};
    if (kyufu_storage_snapshot_begin(f.s, &snap) != 0 ||
        kyufu_storage_snapshot_write(snap, NULL, collect, &empty) != 0) {
        exit(1);
    }
    kyufu_storage_snapshot_end(snap);
    fx_world(&f);
    if (kyufu_storage_snapshot_begin(f.s, &snap) != 0 ||
        kyufu_storage_snapshot_write(snap, NULL, collect, &world) != 0) {
        exit(1);
    }
    kyufu_storage_snapshot_end(snap);
    fx_close(&f);
    nftw(t_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    /* Mode 0: as written (trailer included); mode 1: trailer dropped, the
     * harness appends a correct one. */
    struct stream *all[] = {&empty, &world};
    const char *names[] = {"empty", "world"};
    for (int i = 0; i < 2; i++) {
        uint8_t *b = malloc(all[i]->len + 1);
        b[0] = 0;
        memcpy(b + 1, all[i]->buf, all[i]->len);
        seed(names[i], b, all[i]->len + 1);
        b[0] = 1;
        seed(names[i], b, all[i]->len + 1 - 32);
        free(b);
        free(all[i]->buf);
    }
}

/* ---- config: what kyufuctl cluster init writes, and variants ---- */

static void config_seeds(const char *root)
{
    corpus(root, "corpus-config");
    static const char full[] =
        "[node]\nid = 1\ndata_dir = /tmp/kyufu-none/data\n"
        "raft_address = 127.0.0.1:7001\napi_address = 127.0.0.1:8001\n\n"
        "[cluster]\n1 = 127.0.0.1:7001 127.0.0.1:8001\n"
        "2 = 127.0.0.1:7002 127.0.0.1:8002\n3 = 127.0.0.1:7003 127.0.0.1:8003\n\n"
        "[tls]\nca = /tmp/kyufu-none/ca.pem\ncert = /tmp/kyufu-none/node.pem\n"
        "key = /tmp/kyufu-none/node.key\n\n"
        "[raft]\nelection_timeout_ms = 1000\nheartbeat_timeout_ms = 100\n"
        "snapshot_threshold = 8192\nsnapshot_trailing = 2048\n\n[log]\nlevel = info\n";
    static const char bad[] =
        "[node]\nid = 0\nid = 2\nbogus = 1\n[cluster]\n1 = 127.0.0.1 x\n"
        "[raft]\nelection_timeout_ms = 99999999999999999999\n[nowhere]\n";
    static const char comments[] =
        "; comment\n# comment\n[node]\nid = 1 # inline\n\n[log]\nlevel = debug\n";
    seed("full", (const uint8_t *)full, sizeof full - 1);
    seed("bad", (const uint8_t *)bad, sizeof bad - 1);
    seed("comments", (const uint8_t *)comments, sizeof comments - 1);
    seed("empty", (const uint8_t *)"", 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_gen_seeds DIR (e.g. tests/fuzz)\n");
        return 2;
    }
    h2_seeds(argv[1]);
    frame_seeds(argv[1]);
    snapshot_seeds(argv[1]);
    config_seeds(argv[1]);
    return 0;
}
