/* Encrypted online backups (docs/backup.md): the directory format, shared
 * by kyufud (which writes backups) and kyufuctl (which verifies and lists
 * them).  A library of its own, like keys.h; no function logs, errors come
 * back as one line in errmsg.  Thread-safe (no global state).  Key
 * material passed in is borrowed; keys made here are wiped before return.
 *
 * backup_format.c: chunk and key sealing, the manifest as JSON (written
 * with snprintf, read with jansson).  backup_sign.c: the manifest's
 * signature and the certificate chain.  backup_write.c: writing a whole
 * backup from an open storage snapshot.  backup_verify.c: checking one
 * completely (signature, hashes, tags, state digest). */
#ifndef KYUFU_NODE_BACKUP_FORMAT_H
#define KYUFU_NODE_BACKUP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

#define KYUFU_BACKUP_ID_BYTES 16u
#define KYUFU_BACKUP_KEY_BYTES 32u
/* A sealed chunk or key: nonce ‖ ciphertext ‖ tag. */
#define KYUFU_BACKUP_SEAL_OVERHEAD                                            \
    (KYUFU_CRYPTO_NONCE_BYTES + KYUFU_CRYPTO_TAG_BYTES)
#define KYUFU_BACKUP_WRAPPED_BYTES                                            \
    (KYUFU_BACKUP_SEAL_OVERHEAD + KYUFU_BACKUP_KEY_BYTES)
/* At most this many chunks (4 MiB each: 400 GB of stream), so a hostile
 * manifest cannot make verify allocate without bound. */
#define KYUFU_BACKUP_CHUNKS_MAX 100000u
/* A manifest file at most this long (100,000 chunks of ~120 bytes). */
#define KYUFU_BACKUP_MANIFEST_BYTES_MAX ((size_t)16 << 20)
/* A certificate or signature file at most this long. */
#define KYUFU_BACKUP_SMALL_FILE_BYTES_MAX ((size_t)64 << 10)
/* A backup's name (its directory's last component). */
#define KYUFU_BACKUP_NAME_BYTES_MAX 64u
#define KYUFU_BACKUP_PATH_BYTES_MAX 1024u

#define KYUFU_BACKUP_MANIFEST "manifest.json"
#define KYUFU_BACKUP_SIGNATURE "manifest.sig"
#define KYUFU_BACKUP_CERT "node.pem"

/* Whether `name` is a plain backup name: 1..KYUFU_BACKUP_NAME_BYTES_MAX of
 * [A-Za-z0-9._-], not starting with '.'. */
bool kyufu_backup_name_ok(const char *name);

/* The file name of chunk n ("chunk-000042.bin"); buf ≥ 32 bytes. */
void kyufu_backup_chunk_name(uint32_t n, char *buf, size_t len);

/* Seal one piece of the stream as chunk n: out receives
 * len + KYUFU_BACKUP_SEAL_OVERHEAD bytes (random nonce, ciphertext, tag;
 * AAD docs/backup.md "Chunks").  0, or a KYUFU_CRYPTO_E* code. */
int kyufu_backup_chunk_seal(const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            uint32_t n,
                            bool last,
                            const uint8_t *in,
                            size_t len,
                            uint8_t *out);
/* Open chunk n (in_len ≥ overhead); out receives in_len - overhead bytes
 * only when the tag verifies (AUTH otherwise). */
int kyufu_backup_chunk_open(const uint8_t bk[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            uint32_t n,
                            bool last,
                            const uint8_t *in,
                            size_t in_len,
                            uint8_t *out);

/* Which key a wrapped key is (part of its associated data). */
enum kyufu_backup_key_kind {
    KYUFU_BACKUP_KEY_BK,  /* the backup's chunk key */
    KYUFU_BACKUP_KEY_CMK, /* the cluster master key */
};

/* Wrap / unwrap a 32-byte key under the backup KEK, bound to the backup
 * id and the kind.  0, or a KYUFU_CRYPTO_E* code (AUTH: wrong KEK, another
 * backup's key, or altered bytes; key wiped). */
int kyufu_backup_key_wrap(const uint8_t kek[KYUFU_BACKUP_KEY_BYTES],
                          const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                          enum kyufu_backup_key_kind kind,
                          const uint8_t key[KYUFU_BACKUP_KEY_BYTES],
                          uint8_t out[KYUFU_BACKUP_WRAPPED_BYTES]);
int kyufu_backup_key_unwrap(const uint8_t kek[KYUFU_BACKUP_KEY_BYTES],
                            const uint8_t id[KYUFU_BACKUP_ID_BYTES],
                            enum kyufu_backup_key_kind kind,
                            const uint8_t in[KYUFU_BACKUP_WRAPPED_BYTES],
                            uint8_t key[KYUFU_BACKUP_KEY_BYTES]);

struct kyufu_backup_chunk
{
    uint64_t bytes; /* the file's size */
    uint8_t sha256[32];
};

/* What manifest.json says.  chunks is malloc'd (kyufu_backup_manifest_free). */
struct kyufu_backup_manifest
{
    uint8_t id[KYUFU_BACKUP_ID_BYTES];
    uint8_t cluster_id[32];
    uint64_t node;
    uint64_t applied_index;
    uint64_t applied_term;
    int64_t created_ms;
    uint8_t state_digest[32];
    uint64_t stream_bytes;
    struct kyufu_backup_chunk *chunks;
    uint32_t n_chunks;
    uint8_t bk_wrapped[KYUFU_BACKUP_WRAPPED_BYTES];
    bool has_cmk;
    uint8_t cmk_wrapped[KYUFU_BACKUP_WRAPPED_BYTES];
    uint8_t cert_sha256[32];
};

void kyufu_backup_manifest_free(struct kyufu_backup_manifest *m);

/* The manifest as JSON (docs/backup.md "Manifest"), malloc'd into *out
 * (NUL-terminated, *len without the NUL).  0, or -1 (no memory). */
int kyufu_backup_manifest_json(const struct kyufu_backup_manifest *m,
                               char **out,
                               size_t *len);

/* Parse manifest.json's bytes strictly: every key present with its type,
 * no unknown key, hex of the right lengths, chunk count within bounds and
 * equal to the array's.  0 (*m filled, free it), or -1 with errmsg. */
int kyufu_backup_manifest_parse(const char *json,
                                size_t len,
                                struct kyufu_backup_manifest *m,
                                char *errmsg,
                                size_t errmsg_len);

/* Read a whole file of at most max bytes into a malloc'd buffer (with a
 * NUL after it).  0, or -1 with errmsg naming the file. */
int kyufu_backup_read_file(const char *path,
                           size_t max,
                           uint8_t **out,
                           size_t *len,
                           char *errmsg,
                           size_t errmsg_len);

/* Lower-case hex of n bytes into out (2n + 1). */
void kyufu_backup_hex(const uint8_t *b, size_t n, char *out);

/* ------------------------------------------------------- backup_sign.c */

/* SHA-256 of the DER of the first certificate in the PEM file at path
 * (the cluster identity when path is the CA: docs/encryption.md
 * enc-common 2).  0, or -1 with errmsg. */
int kyufu_backup_cert_file_sha256(const char *path,
                                  uint8_t out[32],
                                  char *errmsg,
                                  size_t errmsg_len);

/* Sign msg with the PEM private key at key_path (ECDSA P-256, SHA-256):
 * *sig malloc'd DER.  0, or -1 with errmsg. */
int kyufu_backup_sign(const char *key_path,
                      const uint8_t *msg,
                      size_t len,
                      uint8_t **sig,
                      size_t *sig_len,
                      char *errmsg,
                      size_t errmsg_len);

/* Check that cert_pem (a node certificate) chains to the CA in ca_path,
 * names a node (SAN URI urn:kyufu:node:N: *node), and that sig is its
 * key's signature over msg; cert_sha256 receives its DER's hash (the
 * caller compares both with the manifest, parsed only after this).  0, or
 * -1 with errmsg naming which check failed. */
int kyufu_backup_check_signature(const char *ca_path,
                                 const uint8_t *cert_pem,
                                 size_t cert_len,
                                 const uint8_t *msg,
                                 size_t msg_len,
                                 const uint8_t *sig,
                                 size_t sig_len,
                                 uint64_t *node,
                                 uint8_t cert_sha256[32],
                                 char *errmsg,
                                 size_t errmsg_len);

/* ------------------------------------------------------ backup_write.c */

struct kyufu_backup_write_params
{
    const char *parent; /* an existing directory (the allowed one) */
    const char *name;   /* kyufu_backup_name_ok; must not exist */
    uint64_t node;
    const uint8_t *kek; /* the backup KEK, KYUFU_BACKUP_KEY_BYTES */
    /* The store's CMK when it has one (wrapped into the backup), or NULL. */
    const uint8_t *cmk;
    const char *ca_path;   /* the cluster CA (its hash: cluster_id) */
    const char *cert_path; /* the node's certificate (node.pem) */
    const char *key_path;  /* the node's TLS private key (signs) */
    int64_t now_ms;        /* the manifest's time */
    /* Throttle: the chunk files are written at most this fast (bytes per
     * second; 0: no limit). */
    uint64_t max_bytes_per_s;
    /* [backup] require_mount (NULL or "": none) and the id of the mount found
     * on top there by the check: the backup's folder, once made, must be
     * on that mount, or on the one on top there now (an automount the
     * mkdir triggered), or nothing is written and kyufu_backup_write
     * returns KYUFU_BACKUP_WRITE_OFF_MOUNT: the mount may have gone
     * between the check and the mkdir, which would put the backup on the
     * disk beneath it. */
    const char *require_mount;
    uint64_t require_mnt_id;
};

/* kyufu_backup_write's answer when the folder is not on require_mount. */
#define KYUFU_BACKUP_WRITE_OFF_MOUNT (-2)

struct kyufu_backup_write_result
{
    uint64_t applied_index;
    uint64_t applied_term;
    uint8_t state_digest[32];
    uint32_t n_chunks;
    uint64_t bytes; /* every file of the backup */
};

/* Write a whole backup of the open snapshot `snap` as parent/name
 * (through a temporary name, fsynced, renamed; docs/backup.md
 * "Atomicity").  Blocking: a work thread, never a loop.  0, or -1 (or
 * KYUFU_BACKUP_WRITE_OFF_MOUNT) with errmsg (nothing left under
 * parent/name; the temporary directory removed). */
int kyufu_backup_write(struct kyufu_storage_snapshot *snap,
                       const struct kyufu_backup_write_params *p,
                       struct kyufu_backup_write_result *res,
                       char *errmsg,
                       size_t errmsg_len);

/* ----------------------------------------------------- backup_verify.c */

struct kyufu_backup_verify_result
{
    struct kyufu_backup_manifest m; /* kyufu_backup_manifest_free it */
    uint64_t bytes;                 /* every file of the backup */
};

/* Check the backup in dir completely (docs/backup.md "Verify"); kek NULL:
 * the signature, chain and manifest only (list).  tmp_parent: where the
 * temporary store is made (NULL: $TMPDIR or /tmp); a backup of a keyed
 * store is restored into it under the backup's CMK (unwrapped with kek),
 * which is wiped afterwards.  0 (res->m filled even
 * when only the signature was checked), or -1 with errmsg naming what
 * failed (res->m freed). */
int kyufu_backup_verify(const char *dir,
                        const char *ca_path,
                        const uint8_t *kek,
                        const char *tmp_parent,
                        struct kyufu_backup_verify_result *res,
                        char *errmsg,
                        size_t errmsg_len);

/* For a restore (kyufuctl restore): every check of verify but the chunks'
 * contents and the digest, then a reader of the decrypted stream in
 * *reader and, when res->m.has_cmk, the cluster master key in cmk (the
 * caller wipes it).  The reader reads the stream chunk by chunk as a
 * kyufu_storage_source (kyufu_backup_reader_source): each chunk checked
 * (size, SHA-256, tag) as it is read, its plaintext handed out and
 * overwritten by the next, the total checked against the manifest at the
 * end; rewind starts again at chunk 0.  The caller restores it
 * (kyufu_storage_restore_stream) and compares the digest with
 * res->m.state_digest; res->m must outlive the reader.  kek is required.
 * 0, or -1 with errmsg (nothing returned). */
struct kyufu_backup_reader;
int kyufu_backup_open(const char *dir,
                      const char *ca_path,
                      const uint8_t *kek,
                      struct kyufu_backup_verify_result *res,
                      struct kyufu_backup_reader **reader,
                      uint8_t cmk[KYUFU_BACKUP_KEY_BYTES],
                      char *errmsg,
                      size_t errmsg_len);
void kyufu_backup_reader_source(struct kyufu_backup_reader *r,
                                struct kyufu_storage_source *src);
/* Wipes the plaintext and the chunk key; NULL is a no-op. */
void kyufu_backup_reader_close(struct kyufu_backup_reader *r);

#endif /* KYUFU_NODE_BACKUP_FORMAT_H */
