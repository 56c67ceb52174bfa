/* Backup chunks, wrapped keys and the manifest: see backup_format.h. */
#include "backup_format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/rand.h>

static const char chunk_label[] = "kyufu-backup-chunk v1";
static const char key_label_bk[] = "kyufu-backup-key v1 bk";
static const char key_label_cmk[] = "kyufu-backup-key v1 cmk";

bool kyufu_backup_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KYUFU_BACKUP_NAME_BYTES_MAX || name[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
                  ch == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

void kyufu_backup_chunk_name(uint32_t n, char *buf, size_t len)
{
    snprintf(buf, len, "chunk-%06" PRIu32 ".bin", n);
}

void kyufu_backup_hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* AAD of chunk n: label ‖ id ‖ n (u32 BE) ‖ last. */
enum { CHUNK_AAD_BYTES = sizeof chunk_label - 1 + KYUFU_BACKUP_ID_BYTES + 5 };

static void chunk_aad(const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                      uint32_t n,
                      bool last,
                      uint8_t aad[CHUNK_AAD_BYTES])
{
    size_t o = sizeof chunk_label - 1;
    memcpy(aad, chunk_label, o);
    memcpy(aad + o, id, KYUFU_BACKUP_ID_BYTES);
    o += KYUFU_BACKUP_ID_BYTES;
    aad[o++] = (uint8_t)(n >> 24);
    aad[o++] = (uint8_t)(n >> 16);
    aad[o++] = (uint8_t)(n >> 8);
    aad[o++] = (uint8_t)n;
    aad[o++] = last ? 1 : 0;
}

int kyufu_backup_chunk_seal(const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            uint32_t n,
                            bool last,
                            const uint8_t *in,
                            size_t len,
                            uint8_t *out)
{
    uint8_t aad[CHUNK_AAD_BYTES];
    chunk_aad(id, n, last, aad);
    if (RAND_bytes(out, KYUFU_CRYPTO_NONCE_BYTES) != 1) {
        return KYUFU_CRYPTO_EINTERNAL;
    }
    return kyufu_storage_crypto_seal(bk, out, aad, sizeof aad, in, len,
                                     out + KYUFU_CRYPTO_NONCE_BYTES);
}

int kyufu_backup_chunk_open(const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            uint32_t n,
                            bool last,
                            const uint8_t *in,
                            size_t in_len,
                            uint8_t *out)
{
    if (in_len < KYUFU_BACKUP_SEAL_OVERHEAD) {
        return KYUFU_CRYPTO_EINVALID;
    }
    uint8_t aad[CHUNK_AAD_BYTES];
    chunk_aad(id, n, last, aad);
    return kyufu_storage_crypto_open(bk, in, aad, sizeof aad,
                                     in + KYUFU_CRYPTO_NONCE_BYTES,
                                     in_len - KYUFU_CRYPTO_NONCE_BYTES, out);
}

/* AAD of a wrapped key: label of its kind ‖ id. */
enum { KEY_AAD_BYTES_MAX = sizeof key_label_cmk + KYUFU_BACKUP_ID_BYTES };

static size_t key_aad(const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                      enum kyufu_backup_key_kind kind,
                      uint8_t aad[KEY_AAD_BYTES_MAX])
{
    const char *label = kind == KYUFU_BACKUP_KEY_CMK ? key_label_cmk
                                                      : key_label_bk;
    size_t o = strlen(label);
    memcpy(aad, label, o);
    memcpy(aad + o, id, KYUFU_BACKUP_ID_BYTES);
    return o + KYUFU_BACKUP_ID_BYTES;
}

int kyufu_backup_key_wrap(const uint8_t kek[KYUFU_BACKUP_KEY_BYTES],
                          const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                          enum kyufu_backup_key_kind kind,
                          const uint8_t key[KYUFU_BACKUP_KEY_BYTES],
                          uint8_t out[KYUFU_BACKUP_WRAPPED_BYTES])
{
    uint8_t aad[KEY_AAD_BYTES_MAX];
    size_t aad_len = key_aad(id, kind, aad);
    if (RAND_bytes(out, KYUFU_CRYPTO_NONCE_BYTES) != 1) {
        return KYUFU_CRYPTO_EINTERNAL;
    }
    return kyufu_storage_crypto_seal(kek, out, aad, aad_len, key,
                                     KYUFU_BACKUP_KEY_BYTES,
                                     out + KYUFU_CRYPTO_NONCE_BYTES);
}

int kyufu_backup_key_unwrap(const uint8_t kek[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            enum kyufu_backup_key_kind kind,
                            const uint8_t in[KYUFU_BACKUP_WRAPPED_BYTES],
                            uint8_t key[KYUFU_BACKUP_KEY_BYTES])
{
    uint8_t aad[KEY_AAD_BYTES_MAX];
    size_t aad_len = key_aad(id, kind, aad);
    return kyufu_storage_crypto_open(
        kek, in, aad, aad_len, in + KYUFU_CRYPTO_NONCE_BYTES,
        KYUFU_BACKUP_WRAPPED_BYTES - KYUFU_CRYPTO_NONCE_BYTES, key);
}

void kyufu_backup_manifest_free(struct kyufu_backup_manifest *m)
{
    free(m->chunks);
    m->chunks = NULL;
    m->n_chunks = 0;
}

/* ------------------------------------------------------------ writing */

/* Room for one chunk's entry. */
enum { CHUNK_JSON_BYTES = 160 };

int kyufu_backup_manifest_json(const struct kyufu_backup_manifest *m,
                               char **out,
                               size_t *len)
{
    size_t cap = 2048 + (size_t)m->n_chunks * CHUNK_JSON_BYTES;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return -1;
    }
    char id[2 * KYUFU_BACKUP_ID_BYTES + 1], cluster[65], digest[65],
        cert[65], bk[2 * KYUFU_BACKUP_WRAPPED_BYTES + 1],
        cmk[2 * KYUFU_BACKUP_WRAPPED_BYTES + 3], when[32];
    kyufu_backup_hex(m->id, sizeof m->id, id);
    kyufu_backup_hex(m->cluster_id, 32, cluster);
    kyufu_backup_hex(m->state_digest, 32, digest);
    kyufu_backup_hex(m->cert_sha256, 32, cert);
    kyufu_backup_hex(m->bk_wrapped, sizeof m->bk_wrapped, bk);
    if (m->has_cmk) {
        cmk[0] = '"';
        kyufu_backup_hex(m->cmk_wrapped, sizeof m->cmk_wrapped, cmk + 1);
        strcat(cmk, "\"");
    } else {
        strcpy(cmk, "null");
    }
    time_t t = (time_t)(m->created_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        strcpy(when, "1970-01-01T00:00:00Z");
    }
    size_t o = 0;
    int w = snprintf(buf, cap,
                     "{\"format\": \"kyufu-backup\", \"version\": 1,\n"
                     " \"backup_id\": \"%s\",\n"
                     " \"cluster_id\": \"%s\",\n"
                     " \"node\": %" PRIu64 ",\n"
                     " \"applied_index\": %" PRIu64
                     ", \"applied_term\": %" PRIu64 ",\n"
                     " \"created_ms\": %" PRId64 ", \"created\": \"%s\",\n"
                     " \"state_digest\": \"%s\",\n"
                     " \"stream_bytes\": %" PRIu64 ",\n"
                     " \"chunks\": [",
                     id, cluster, m->node, m->applied_index, m->applied_term,
                     m->created_ms, when, digest, m->stream_bytes);
    if (w < 0 || (size_t)w >= cap) {
        free(buf);
        return -1;
    }
    o = (size_t)w;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        char name[32], sha[65];
        kyufu_backup_chunk_name(i, name, sizeof name);
        kyufu_backup_hex(m->chunks[i].sha256, 32, sha);
        w = snprintf(buf + o, cap - o,
                     "%s\n  {\"file\": \"%s\", \"bytes\": %" PRIu64
                     ", \"sha256\": \"%s\"}",
                     i == 0 ? "" : ",", name, m->chunks[i].bytes, sha);
        if (w < 0 || (size_t)w >= cap - o) {
            free(buf);
            return -1;
        }
        o += (size_t)w;
    }
    w = snprintf(buf + o, cap - o,
                 "],\n \"bk_wrapped\": \"%s\",\n \"cmk_wrapped\": %s,\n"
                 " \"cert_sha256\": \"%s\"}\n",
                 bk, cmk, cert);
    if (w < 0 || (size_t)w >= cap - o) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = o + (size_t)w;
    return 0;
}

/* ------------------------------------------------------------ reading */

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        char ch = s[i];
        int v;
        if (ch >= '0' && ch <= '9') {
            v = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            v = ch - 'a' + 10;
        } else {
            return -1;
        }
        if (i % 2 == 0) {
            out[i / 2] = (uint8_t)(v << 4);
        } else {
            out[i / 2] |= (uint8_t)v;
        }
    }
    return 0;
}

static const char *const manifest_keys[] = {
    "format",       "version",      "backup_id",   "cluster_id",
    "node",         "applied_index", "applied_term", "created_ms",
    "created",      "state_digest", "stream_bytes", "chunks",
    "bk_wrapped",   "cmk_wrapped",  "cert_sha256",
};
static const char *const chunk_keys[] = {"file", "bytes", "sha256"};

/* Whether every key of obj is one of names[0..n). */
static bool only_keys(json_t *obj, const char *const *names, size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < n; i++) {
            known = known || strcmp(k, names[i]) == 0;
        }
        if (!known) {
            return false;
        }
    }
    return true;
}

static bool get_u64(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return false;
    }
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool get_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) && unhex(json_string_value(v), out, n) == 0;
}

int kyufu_backup_manifest_parse(const char *text,
                                size_t len,
                                struct kyufu_backup_manifest *m,
                                char *errmsg,
                                size_t errmsg_len)
{
    memset(m, 0, sizeof *m);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *bad = NULL;
    if (root == NULL) {
        snprintf(errmsg, errmsg_len, "manifest is not JSON: line %d: %s",
                 jerr.line, jerr.text);
        return -1;
    }
    uint64_t version = 0, node = 0, created = 0;
    json_t *fmt = json_object_get(root, "format");
    json_t *chunks = json_object_get(root, "chunks");
    json_t *cmk = json_object_get(root, "cmk_wrapped");
    if (!json_is_object(root) ||
        !only_keys(root, manifest_keys,
                   sizeof manifest_keys / sizeof manifest_keys[0])) {
        bad = "not an object of the known keys";
    } else if (!json_is_string(fmt) ||
               strcmp(json_string_value(fmt), "kyufu-backup") != 0 ||
               !get_u64(root, "version", &version) || version != 1) {
        bad = "format is not kyufu-backup version 1";
    } else if (!get_hex(root, "backup_id", m->id, sizeof m->id)) {
        bad = "backup_id";
    } else if (!get_hex(root, "cluster_id", m->cluster_id, 32)) {
        bad = "cluster_id";
    } else if (!get_u64(root, "node", &node) || node == 0) {
        bad = "node";
    } else if (!get_u64(root, "applied_index", &m->applied_index) ||
               !get_u64(root, "applied_term", &m->applied_term)) {
        bad = "applied_index or applied_term";
    } else if (!get_u64(root, "created_ms", &created) ||
               !json_is_string(json_object_get(root, "created"))) {
        bad = "created_ms or created";
    } else if (!get_hex(root, "state_digest", m->state_digest, 32)) {
        bad = "state_digest";
    } else if (!get_u64(root, "stream_bytes", &m->stream_bytes)) {
        bad = "stream_bytes";
    } else if (!get_hex(root, "bk_wrapped", m->bk_wrapped,
                        sizeof m->bk_wrapped)) {
        bad = "bk_wrapped";
    } else if (!json_is_null(cmk) &&
               !get_hex(root, "cmk_wrapped", m->cmk_wrapped,
                        sizeof m->cmk_wrapped)) {
        bad = "cmk_wrapped";
    } else if (!get_hex(root, "cert_sha256", m->cert_sha256, 32)) {
        bad = "cert_sha256";
    } else if (!json_is_array(chunks) || json_array_size(chunks) == 0 ||
               json_array_size(chunks) > KYUFU_BACKUP_CHUNKS_MAX) {
        bad = "chunks (1..100000 entries)";
    }
    if (bad != NULL) {
        snprintf(errmsg, errmsg_len, "manifest is malformed: %s", bad);
        json_decref(root);
        return -1;
    }
    m->node = node;
    m->created_ms = (int64_t)created;
    m->has_cmk = !json_is_null(cmk);
    size_t n = json_array_size(chunks);
    m->chunks = calloc(n, sizeof *m->chunks);
    if (m->chunks == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        json_decref(root);
        return -1;
    }
    m->n_chunks = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(chunks, i);
        char want[32];
        kyufu_backup_chunk_name((uint32_t)i, want, sizeof want);
        json_t *file = json_object_get(c, "file");
        if (!json_is_object(c) ||
            !only_keys(c, chunk_keys, sizeof chunk_keys / sizeof chunk_keys[0]) ||
            !json_is_string(file) || strcmp(json_string_value(file), want) != 0 ||
            !get_u64(c, "bytes", &m->chunks[i].bytes) ||
            m->chunks[i].bytes < KYUFU_BACKUP_SEAL_OVERHEAD ||
            m->chunks[i].bytes >
                KYUFU_CRYPTO_TEXT_BYTES_MAX + KYUFU_BACKUP_SEAL_OVERHEAD ||
            !get_hex(c, "sha256", m->chunks[i].sha256, 32)) {
            snprintf(errmsg, errmsg_len,
                     "manifest is malformed: chunk entry %zu (want file %s, "
                     "bytes, sha256)",
                     i, want);
            kyufu_backup_manifest_free(m);
            json_decref(root);
            return -1;
        }
    }
    json_decref(root);
    return 0;
}

int kyufu_backup_read_file(const char *path,
                           size_t max,
                           uint8_t **out,
                           size_t *len,
                           char *errmsg,
                           size_t errmsg_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(errmsg, errmsg_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size > max) {
        snprintf(errmsg, errmsg_len,
                 "%s: not a regular file of at most %zu bytes", path, max);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n + 1);
    if (buf == NULL) {
        snprintf(errmsg, errmsg_len, "%s: out of memory", path);
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            snprintf(errmsg, errmsg_len, "%s: %s", path,
                     r < 0 ? strerror(errno) : "shorter than its size");
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
