/* The auditor's side of the audit chain (kyufuctl audit export, archive,
 * verify; docs/identity.md "Checking the operation log").  Pure functions
 * over AuditRecord messages: no network, no store.
 *
 * The chain (docs/ledger-rules.md "Audit"): hash = SHA-256(prev_hash ||
 * the record encoded with `hash` empty).  kyufuctl computes it itself, so a
 * check never trusts the node that serves the records.
 *
 * Export lines carry every field of AuditRecord (hash and prev_hash in hex)
 * so each record can be re-hashed from the line alone, plus "time" (ISO
 * 8601 UTC, for people; ignored when read back).  JSON lines: one object
 * per record.  CSV (RFC 4180): a header row of the same names, fields
 * quoted when they hold a comma, a quote, CR or LF, quotes doubled, CRLF
 * line ends. */
#ifndef KYUFU_CLIENT_AUDIT_CHAIN_H
#define KYUFU_CLIENT_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kyufu/v1/ledger.pb-c.h"

/* hash of record r over prev (r's own hash field is ignored). 0, or -1 on
 * out of memory. */
int kyufu_audit_hash(const uint8_t prev[32],
                     const Kyufu__V1__AuditRecord *r,
                     uint8_t out[32]);

/* --------------------------------------------------------------- export */

enum kyufu_audit_format { KYUFU_AUDIT_JSONL, KYUFU_AUDIT_CSV };

/* Write the CSV header row (CSV only; nothing for JSON lines). */
void kyufu_audit_write_header(FILE *out, enum kyufu_audit_format f);
/* Write one record as a line.  0, or -1 on out of memory. */
int kyufu_audit_write(FILE *out, enum kyufu_audit_format f,
                      const Kyufu__V1__AuditRecord *r);

/* Read the next record of an export (format found from the first line:
 * '{' JSON lines, else CSV with its header).  1 with *out (free with
 * kyufu__v1__audit_record__free_unpacked), 0 at the end, -1 with errmsg
 * naming the line for anything malformed. */
struct kyufu_audit_reader;
struct kyufu_audit_reader *kyufu_audit_reader_new(FILE *in);
int kyufu_audit_read(struct kyufu_audit_reader *rd,
                     Kyufu__V1__AuditRecord **out,
                     char *errmsg,
                     size_t errmsg_len);
void kyufu_audit_reader_free(struct kyufu_audit_reader *rd);

/* ------------------------------------------------------------ checking */

/* A signed checkpoint line (node/checkpoint.h) as read from a file. */
struct kyufu_audit_checkpoint
{
    unsigned line;
    uint64_t node;
    uint64_t seq;
    uint8_t hash[32];
    int64_t time_ms;
};

/* What a check found; the first problem of each kind is kept. */
struct kyufu_audit_check
{
    /* Input: checkpoints sorted by seq (verified signatures only), and
     * whether the records are a whole chain from seq 1 (a store, ListAudit)
     * or a segment (an export: gaps are a filter's, not damage). */
    const struct kyufu_audit_checkpoint *cps;
    size_t n_cps;
    bool whole;
    /* State. */
    size_t next_cp;
    bool started;
    uint64_t last_seq;          /* last record seen (0: none) */
    uint8_t last_hash[32];
    uint64_t records;
    uint64_t cps_matched;
    uint64_t last_match_seq;    /* last checkpoint that agreed (0: none) */
    /* Findings: seq 0 when none. */
    uint64_t bad_seq;           /* first record whose content or link fails */
    char bad_why[160];
    uint64_t diverge_seq;       /* first checkpoint the chain disagrees with */
    uint64_t diverge_after;     /* ... and the last one it agreed with */
    uint64_t diverge_node;
    uint64_t truncated_at;      /* a checkpoint's seq beyond the chain's end */
    uint64_t truncated_node;
};

/* Feed the records in seq order. */
void kyufu_audit_check_record(struct kyufu_audit_check *c,
                              const Kyufu__V1__AuditRecord *r);
/* After the last record (whole chains: checkpoints beyond the end). */
void kyufu_audit_check_end(struct kyufu_audit_check *c);
/* Whether it found nothing. */
bool kyufu_audit_check_ok(const struct kyufu_audit_check *c);

/* Parse one checkpoint line (JSON).  0 with *cp and the signature in
 * sig/sig_len, or -1 with errmsg. */
int kyufu_audit_checkpoint_parse(const char *line,
                                 struct kyufu_audit_checkpoint *cp,
                                 uint8_t *sig,
                                 size_t sig_max,
                                 size_t *sig_len,
                                 char *errmsg,
                                 size_t errmsg_len);

/* The node id a certificate names (SAN URI urn:kyufu:node:N); 0 when none. */
uint64_t kyufu_audit_cert_node(X509 *cert);

#endif /* KYUFU_CLIENT_AUDIT_CHAIN_H */
