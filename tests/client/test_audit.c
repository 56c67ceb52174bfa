/* kyufuctl's side of the operation log (client/audit_chain.c,
 * client/ctl_audit.c): exports in JSON lines and CSV (RFC 4180 quoting)
 * read back exactly, and `audit verify` finding a rewritten record, a
 * chain rewritten consistently but against a signed checkpoint, a
 * truncated chain and a forged checkpoint line (exit 5), from files only
 * (no cluster). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "audit_chain.h"
#include "check.h"
#include "checkpoint.h"
#include "ctl.h"

enum { N = 12 };

static char dir[] = "/tmp/kyufu-audit-test-XXXXXX";

static Kyufu__V1__AuditRecord recs[N];
static uint8_t prevs[N][32], hashes[N][32];
static char *objects[] = { "household/H-001", "household/H-002" };

/* Record i (seq i + 1); awkward text on purpose: commas, quotes, CRLF,
 * UTF-8. */
static void make_chain(void)
{
    static char msgs[N][128];
    uint8_t prev[32] = { 0 };
    for (int i = 0; i < N; i++) {
        Kyufu__V1__AuditRecord *r = &recs[i];
        kyufu__v1__audit_record__init(r);
        r->seq = (uint64_t)i + 1;
        r->raft_index = 100 + (uint64_t)i;
        r->time_ms = 1764892800000 + (int64_t)i * 3600000; /* hourly from 2025-12-05 */
        r->actor = i % 3 == 0 ? "clerk1" : "approver1";
        r->terminal = "";
        r->command = i % 2 == 0 ? "RecordAccess" : "ApproveApplication";
        r->object = i % 2 == 0 ? "household/H-001" : "application/7";
        r->outcome = i == 5 ? KYUFU__V1__CODE__PERMISSION_DENIED : KYUFU__V1__CODE__OK;
        snprintf(msgs[i], sizeof msgs[i],
                 i == 4 ? "said \"no\", then left\r\nnext line, 山田" : "plain %d", i);
        r->message = msgs[i];
        r->client_id = "kyufu-node-1";
        r->client_seq = (uint64_t)i + 1;
        if (i % 2 == 0) {
            r->n_objects = 2;
            r->objects = objects;
        }
        memcpy(prevs[i], prev, 32);
        r->prev_hash.data = prevs[i];
        r->prev_hash.len = 32;
        CHECK(kyufu_audit_hash(prev, r, hashes[i]) == 0);
        r->hash.data = hashes[i];
        r->hash.len = 32;
        memcpy(prev, hashes[i], 32);
    }
}

static void write_export(const char *path, enum kyufu_audit_format f, int from, int to)
{
    FILE *out = fopen(path, "w");
    CHECK(out != NULL);
    kyufu_audit_write_header(out, f);
    for (int i = from; i < to; i++) {
        CHECK(kyufu_audit_write(out, f, &recs[i]) == 0);
    }
    fclose(out);
}

static bool same(const Kyufu__V1__AuditRecord *a, const Kyufu__V1__AuditRecord *b)
{
    size_t la = protobuf_c_message_get_packed_size(&a->base);
    size_t lb = protobuf_c_message_get_packed_size(&b->base);
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    protobuf_c_message_pack(&a->base, pa);
    protobuf_c_message_pack(&b->base, pb);
    bool eq = la == lb && memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return eq;
}

static void test_round_trip(enum kyufu_audit_format f)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/rt.%s", dir, f == KYUFU_AUDIT_CSV ? "csv" : "jsonl");
    write_export(path, f, 0, N);
    FILE *in = fopen(path, "r");
    CHECK(in != NULL);
    struct kyufu_audit_reader *rd = kyufu_audit_reader_new(in);
    Kyufu__V1__AuditRecord *r;
    int n = 0, rv;
    while ((rv = kyufu_audit_read(rd, &r, err, sizeof err)) == 1) {
        CHECK(n < N);
        CHECK(same(r, &recs[n])); /* byte for byte: the hash holds */
        kyufu__v1__audit_record__free_unpacked(r, NULL);
        n++;
    }
    if (rv != 0) {
        fprintf(stderr, "%s\n", err);
    }
    CHECK(rv == 0 && n == N);
    kyufu_audit_reader_free(rd);
    fclose(in);
}

/* Hostile export: the last record's line with "\0xx" put before its line
 * end ("{...}\0xx\n" in JSONL, "...,cell\0xx\r\n" in CSV) is refused
 * naming that line, not read as the record (the line or cell cut at the
 * NUL and the rest read away). */
static void test_nul_byte(enum kyufu_audit_format fmt, const char *eol,
                          const char *want)
{
    char *text = NULL, err[256] = "";
    size_t len = 0, eol_len = strlen(eol);
    FILE *mem = open_memstream(&text, &len);
    CHECK(mem != NULL);
    kyufu_audit_write_header(mem, fmt); /* CSV only */
    CHECK(kyufu_audit_write(mem, fmt, &recs[0]) == 0);
    CHECK(kyufu_audit_write(mem, fmt, &recs[1]) == 0);
    fclose(mem);
    char *buf = malloc(len + 3);
    CHECK(buf != NULL);
    CHECK(len >= eol_len && memcmp(text + len - eol_len, eol, eol_len) == 0);
    memcpy(buf, text, len - eol_len);
    memcpy(buf + len - eol_len, "\0xx", 3);
    memcpy(buf + len - eol_len + 3, eol, eol_len);
    free(text);
    text = buf;
    len += 3;
    FILE *in = fmemopen(text, len, "r");
    CHECK(in != NULL);
    struct kyufu_audit_reader *rd = kyufu_audit_reader_new(in);
    Kyufu__V1__AuditRecord *r = NULL;
    CHECK_EQ_INT(kyufu_audit_read(rd, &r, err, sizeof err), 1);
    kyufu__v1__audit_record__free_unpacked(r, NULL);
    CHECK_EQ_INT(kyufu_audit_read(rd, &r, err, sizeof err), -1);
    CHECK(strstr(err, want) != NULL);
    kyufu_audit_reader_free(rd);
    fclose(in);
    free(text);
}

static void test_csv_quoting(void)
{
    char path[256], buf[8192];
    snprintf(path, sizeof path, "%s/q.csv", dir);
    write_export(path, KYUFU_AUDIT_CSV, 4, 5);
    FILE *in = fopen(path, "r");
    size_t got = fread(buf, 1, sizeof buf - 1, in);
    fclose(in);
    buf[got] = '\0';
    /* Header then one row, CRLF ends; the message quoted, quotes doubled,
     * the embedded CRLF kept inside the quotes. */
    CHECK(strncmp(buf, "time,seq,raft_index,time_ms,actor,", 34) == 0);
    CHECK(strstr(buf, "\r\n2025-12-05T04:00:00Z,5,104,") != NULL);
    CHECK(strstr(buf, ",\"said \"\"no\"\", then left\r\nnext line, 山田\",") != NULL);
    /* The repeated objects: a JSON array in one quoted cell. */
    CHECK(strstr(buf, ",\"[\"\"household/H-001\"\", \"\"household/H-002\"\"]\"") != NULL ||
          strstr(buf, ",\"[\"\"household/H-001\"\",\"\"household/H-002\"\"]\"") != NULL);
    CHECK(got >= 2 && strcmp(buf + got - 2, "\r\n") == 0);
}

static int ctl(const char *out_path, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL) {
        argc++;
    }
    FILE *out = fopen(out_path, "w+");
    FILE *err = fopen("/dev/null", "w");
    int rv = kyufu_ctl_main(argc, argv, out, err);
    fclose(out);
    fclose(err);
    return rv;
}

static bool output_has(const char *path, const char *what)
{
    static char buf[16384];
    FILE *f = fopen(path, "r");
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = '\0';
    if (strstr(buf, what) == NULL) {
        fprintf(stderr, "output lacks '%s':\n%s\n", what, buf);
        return false;
    }
    return true;
}

/* A self-signed certificate naming node 1 for key k. */
static void write_cert(EVP_PKEY *k, const char *path)
{
    X509 *x = X509_new();
    CHECK(x != NULL);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kyufu-node-1",
                               -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name,
                                            "URI:urn:kyufu:node:1");
    CHECK(e != NULL && X509_add_ext(x, e, -1) == 1);
    X509_EXTENSION_free(e);
    CHECK(X509_sign(x, k, EVP_sha256()) > 0);
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, x);
    fclose(f);
    CHECK(kyufu_audit_cert_node(x) == 1);
    X509_free(x);
}

static void append_cp(EVP_PKEY *k, const char *path, uint64_t seq, const uint8_t hash[32])
{
    char line[1024], err[256];
    CHECK(kyufu_checkpoint_line(k, 1, seq, hash, 1764892800000 + (int64_t)seq, line,
                                sizeof line, err, sizeof err) == 0);
    CHECK(kyufu_checkpoint_append(path, line, err, sizeof err) == 0);
}

static void test_verify(void)
{
    char exp[256], cps[256], cert[256], out[256], forged[256];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    snprintf(exp, sizeof exp, "%s/chain.jsonl", dir);
    snprintf(cps, sizeof cps, "%s/cps.jsonl", dir);
    snprintf(cert, sizeof cert, "%s/node1.pem", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(forged, sizeof forged, "%s/forged.jsonl", dir);
    write_cert(k, cert);
    append_cp(k, cps, 4, hashes[3]);
    append_cp(k, cps, 8, hashes[7]);
    append_cp(k, cps, 12, hashes[11]);

    /* The whole chain as an export, checked against the checkpoints. */
    write_export(exp, KYUFU_AUDIT_JSONL, 0, N);
    char *ok[] = { "kyufuctl", "audit", "verify", "--export", exp, "--checkpoints", cps,
                   "--cert", cert, NULL };
    CHECK_EQ_INT(ctl(out, ok), 0);
    CHECK(output_has(out, "3 compared with the chain and matched"));

    /* A record's content changed in place: found at its seq. */
    char *saved = recs[6].message;
    recs[6].message = "plain 6, edited";
    write_export(exp, KYUFU_AUDIT_JSONL, 0, N);
    CHECK_EQ_INT(ctl(out, ok), KYUFU_CTL_EXIT_CHECK);
    CHECK(output_has(out, "REWRITTEN: seq 7: the record's content does not hash"));
    /* Rewritten consistently (every hash after it recomputed): the chain
     * holds together, the signed checkpoint at seq 8 does not. */
    uint8_t prev[32];
    memcpy(prev, hashes[5], 32);
    uint8_t saved_hashes[N][32], saved_prevs[N][32];
    memcpy(saved_hashes, hashes, sizeof hashes);
    memcpy(saved_prevs, prevs, sizeof prevs);
    for (int i = 6; i < N; i++) {
        memcpy(prevs[i], prev, 32);
        CHECK(kyufu_audit_hash(prev, &recs[i], hashes[i]) == 0);
        memcpy(prev, hashes[i], 32);
    }
    write_export(exp, KYUFU_AUDIT_JSONL, 0, N);
    CHECK_EQ_INT(ctl(out, ok), KYUFU_CTL_EXIT_CHECK);
    CHECK(output_has(out, "REWRITTEN: the chain differs from node 1's signed checkpoint at "
                          "seq 8 (it agreed up to seq 4): a record in seq 5..8 was changed"));
    recs[6].message = saved;
    memcpy(hashes, saved_hashes, sizeof hashes);
    memcpy(prevs, saved_prevs, sizeof prevs);

    /* Truncated: a store (whole chain) that ends at seq 10.  An export is a
     * segment, so --export never says truncated; --store does, and the C
     * check says the same for a whole chain. */
    struct kyufu_audit_checkpoint cpa[2] = { { .seq = 8 }, { .seq = 12, .node = 1 } };
    memcpy(cpa[0].hash, hashes[7], 32);
    memcpy(cpa[1].hash, hashes[11], 32);
    struct kyufu_audit_check chk = { .cps = cpa, .n_cps = 2, .whole = true };
    for (int i = 0; i < 10; i++) {
        kyufu_audit_check_record(&chk, &recs[i]);
    }
    kyufu_audit_check_end(&chk);
    CHECK(!kyufu_audit_check_ok(&chk));
    CHECK_EQ_INT(chk.truncated_at, 12);
    CHECK_EQ_INT(chk.last_seq, 10);
    CHECK_EQ_INT(chk.cps_matched, 1);
    /* A whole chain missing a record in the middle. */
    struct kyufu_audit_check gap = { .whole = true };
    for (int i = 0; i < N; i++) {
        if (i != 3) {
            kyufu_audit_check_record(&gap, &recs[i]);
        }
    }
    CHECK_EQ_INT(gap.bad_seq, 4);

    /* A forged checkpoint: a valid line with its hash changed. */
    FILE *src = fopen(cps, "r"), *dst = fopen(forged, "w");
    char line[1024];
    int no = 0;
    while (fgets(line, sizeof line, src) != NULL) {
        if (++no == 2) {
            char *h = strstr(line, "\"hash\":\"") + 8;
            *h = *h == '0' ? '1' : '0';
        }
        fputs(line, dst);
    }
    fclose(src);
    fclose(dst);
    char *fv[] = { "kyufuctl", "audit", "verify", "--export", exp, "--checkpoints", forged,
                   "--cert", cert, NULL };
    CHECK_EQ_INT(ctl(out, fv), KYUFU_CTL_EXIT_CHECK);
    CHECK(output_has(out, "FORGED: "));
    CHECK(output_has(out, " line 2: node 1 seq 8: the signature does not verify"));

    /* Options of another verb are refused. */
    char *filt[] = { "kyufuctl", "audit", "export", "--format", "csv", "--actor", "clerk1",
                     "--export", exp, NULL };
    CHECK(ctl(out, filt) == KYUFU_CTL_EXIT_USAGE); /* --export is verify's */
    write_export(exp, KYUFU_AUDIT_CSV, 0, N);
    char *csvv[] = { "kyufuctl", "audit", "verify", "--export", exp, NULL };
    CHECK_EQ_INT(ctl(out, csvv), 0);
    CHECK(output_has(out, "12 records checked (seq 1..12)"));
    /* A filtered export (every third record) still verifies: each record
     * against its own prev_hash; a changed one is still found. */
    FILE *ff = fopen(exp, "w");
    kyufu_audit_write_header(ff, KYUFU_AUDIT_CSV);
    for (int i = 0; i < N; i += 3) {
        CHECK(kyufu_audit_write(ff, KYUFU_AUDIT_CSV, &recs[i]) == 0);
    }
    fclose(ff);
    CHECK_EQ_INT(ctl(out, csvv), 0);
    CHECK(output_has(out, "skips records in 3 places"));
    recs[9].actor = "clerk2";
    ff = fopen(exp, "w");
    kyufu_audit_write_header(ff, KYUFU_AUDIT_CSV);
    for (int i = 0; i < N; i += 3) {
        CHECK(kyufu_audit_write(ff, KYUFU_AUDIT_CSV, &recs[i]) == 0);
    }
    fclose(ff);
    recs[9].actor = "clerk1";
    CHECK_EQ_INT(ctl(out, csvv), KYUFU_CTL_EXIT_CHECK);
    CHECK(output_has(out, "REWRITTEN: seq 10:"));
    write_export(exp, KYUFU_AUDIT_CSV, 0, N);

    /* Hostile input: a malformed line is an error naming the line. */
    FILE *bad = fopen(exp, "a");
    fputs("1,2,3\r\n", bad);
    fclose(bad);
    CHECK_EQ_INT(ctl(out, csvv), KYUFU_CTL_EXIT_CHECK);
    char *nocert[] = { "kyufuctl", "audit", "verify", "--checkpoints", cps, "--export", exp,
                       NULL };
    CHECK_EQ_INT(ctl(out, nocert), KYUFU_CTL_EXIT_USAGE);
    char *badtime[] = { "kyufuctl", "audit", "export", "--from", "2026-02-30", NULL };
    CHECK_EQ_INT(ctl(out, badtime), KYUFU_CTL_EXIT_USAGE);
    EVP_PKEY_free(k);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    make_chain();
    test_round_trip(KYUFU_AUDIT_JSONL);
    test_round_trip(KYUFU_AUDIT_CSV);
    test_csv_quoting();
    test_nul_byte(KYUFU_AUDIT_JSONL, "\n", "line 2: holds a NUL byte");
    test_nul_byte(KYUFU_AUDIT_CSV, "\r\n", "line 3: holds a NUL byte");
    test_verify();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
