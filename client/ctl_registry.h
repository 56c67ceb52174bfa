/* The registry of issued client certificates (ctl_registry.c), next to
 * the CA: CA_DIR/registry.json, one JSON object per certificate:
 *
 *   name, kind ("terminal" | "operator"), mac ("" for operators), serial
 *   (upper-case hex), sha256 (lower-case hex of the DER), status ("active"
 *   | "revoked"), issued_at, issued_by, revoked_at, revoked_by, reason
 *   (times RFC 3339 UTC; "" while active)
 *
 * Commands change it under an exclusive lock (CA_DIR/registry.lock) and
 * replace the file whole.  A revocation writes CA_DIR/crl.pem from every
 * revoked entry (docs/operations.md "Terminals and revocation").
 * Functions return 0 or a KYUFU_CTL_EXIT_* value with errmsg. */
#ifndef KYUFU_CTL_REGISTRY_H
#define KYUFU_CTL_REGISTRY_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* A NAME (terminal) or STAFF_ID (operator): 1..KYUFU_CTL_TERMINAL_NAME_BYTES_MAX
 * of [A-Za-z0-9._-], the first a letter or digit. */
bool ctl__registry_name_ok(const char *name);
/* "AA:BB:CC:DD:EE:FF" (':' or '-', either case) -> upper case with ':'. */
bool ctl__registry_mac(const char *in, char out[18]);

/* Load CA_DIR/registry.json (a missing file: empty) into *reg (a JSON
 * array, the caller's); USAGE with the entry and field for a malformed
 * file. */
int ctl__registry_load(const char *ca_dir, json_t **reg, char *errmsg, size_t errmsg_len);
int ctl__registry_save(const char *ca_dir, json_t *reg, char *errmsg, size_t errmsg_len);
/* Hold CA_DIR/registry.lock (flock, exclusive, waits): a descriptor to
 * close, or -1 with errmsg. */
int ctl__registry_lock(const char *ca_dir, char *errmsg, size_t errmsg_len);

struct ctl__issue
{
    const char *kind;    /* "terminal" or "operator" */
    const char *name;    /* checked by ctl__registry_name_ok */
    const char *mac;     /* terminals: normalized; operators: NULL */
    const char *by;      /* who issues (registry issued_by) */
    const char *out_dir; /* gets NAME.pem, NAME.key (0600) */
};
/* Whether ctl__registry_issue would refuse is (name, an active name or
 * MAC): 0 or USAGE, before the CA key is even read. */
int ctl__registry_can_issue(json_t *reg, const struct ctl__issue *is, char *errmsg,
                            size_t errmsg_len);
/* Issue a client certificate (EKU clientAuth, O=kyufu, OU=kind, CN=name,
 * SAN URI urn:kyufu:KIND:NAME) from the CA, write it and its key to
 * out_dir and register it.  USAGE when an active entry of that kind has
 * the name (or, for a terminal, the MAC).  The caller holds the lock and
 * saves reg. */
int ctl__registry_issue(json_t *reg, const struct ctl__issue *is, X509 *ca, EVP_PKEY *ca_key,
                        FILE *log, char *errmsg, size_t errmsg_len);
/* Whether kind/name has an active entry to revoke: 0 or USAGE. */
int ctl__registry_can_revoke(json_t *reg, const char *kind, const char *name, char *errmsg,
                             size_t errmsg_len);
/* Mark the active entry of kind/name revoked (USAGE: none).  The caller
 * then writes the CRL. */
int ctl__registry_revoke(json_t *reg, const char *kind, const char *name, const char *by,
                         const char *reason, char *errmsg, size_t errmsg_len);
/* CA_DIR/crl.pem from every revoked entry, signed by the CA. */
int ctl__registry_crl(const char *ca_dir, json_t *reg, X509 *ca, EVP_PKEY *ca_key,
                      char *errmsg, size_t errmsg_len);

/* The entries of `kind` (NULL: all) as CSV (RFC 4180: a header line,
 * CRLF line ends, fields with ',', '"', CR or LF quoted, '"' doubled). */
void ctl__registry_csv(FILE *out, json_t *reg, const char *kind);
/* One CSV field (RFC 4180 quoting as above). */
void ctl__csv_field(FILE *out, const char *s);

#endif /* KYUFU_CTL_REGISTRY_H */
