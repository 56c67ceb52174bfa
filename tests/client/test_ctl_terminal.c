/* kyufuctl terminal / operator: what the operator relies on.  Each
 * terminal and operator gets its own certificate (CN its name, clientAuth,
 * chained to the cluster CA, key 0600); the registry records name, kind,
 * MAC, serial, SHA-256 and status and refuses duplicates; export --csv is
 * RFC 4180 (quotes doubled, CRLF); revoke marks the entry and writes a CRL
 * signed by the CA that lists exactly the revoked serials; every malformed
 * input is refused with a message and changes nothing; commands that sign
 * need the CA passphrase (a wrong one is refused). */
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "ctl_run.h"
#include "ctl.h"
#include "ctl_pki.h"
#include "ctl_registry.h"
#include "tls.h"

#define PASSPHRASE "terminal test passphrase"

static char out_buf[65536], err_buf[65536];

/* kyufuctl in-process (ctl_run.h), the arguments NULL-terminated. */
#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, NULL, __VA_ARGS__)

static char *slurp(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static X509 *load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(x != NULL);
    return x;
}

static unsigned mode_of(const char *path)
{
    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    return sb.st_mode & 0777;
}

/* The serials (upper-case hex) the CRL at path revokes, joined by ' ';
 * the CRL must verify with ca's key. */
static void crl_serials(const char *path, X509 *ca, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    X509_CRL *crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    fclose(f);
    CHECK(crl != NULL);
    CHECK(X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1);
    out[0] = '\0';
    STACK_OF(X509_REVOKED) *rs = X509_CRL_get_REVOKED(crl);
    for (int i = 0; i < sk_X509_REVOKED_num(rs); i++) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rs, i)), NULL);
        char *hex = BN_bn2hex(bn);
        snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", hex);
        OPENSSL_free(hex);
        BN_free(bn);
    }
    X509_CRL_free(crl);
}

static const char *entry_field(json_t *reg, const char *name, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(reg, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "name")), name) == 0) {
            return json_string_value(json_object_get(e, field));
        }
    }
    return NULL;
}

static void test_csv_field(void)
{
    static const char *const cases[][2] = {
        { "plain", "plain" },
        { "", "" },
        { "a,b", "\"a,b\"" },
        { "say \"hi\"", "\"say \"\"hi\"\"\"" },
        { "two\nlines", "\"two\nlines\"" },
        { "cr\r", "\"cr\r\"" },
        { "\"", "\"\"\"\"" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64];
        FILE *f = fmemopen(buf, sizeof buf, "w");
        CHECK(f != NULL);
        ctl__csv_field(f, cases[i][0]);
        fputc('\0', f);
        fclose(f);
        if (strcmp(buf, cases[i][1]) != 0) {
            fprintf(stderr, "csv of '%s': got '%s' want '%s'\n", cases[i][0], buf, cases[i][1]);
            exit(1);
        }
    }
    char mac[18];
    CHECK(ctl__registry_mac("aa-bb-cc-0d-ee-ff", mac) && strcmp(mac, "AA:BB:CC:0D:EE:FF") == 0);
    CHECK(ctl__registry_mac("00:11:22:33:44:55", mac));
    static const char *const bad_macs[] = { "", "00:11:22:33:44", "00:11:22:33:44:55:66",
                                            "00:11-22:33:44:55", "0g:11:22:33:44:55",
                                            "001122334455", "00:11:22:33:44:5 " };
    for (size_t i = 0; i < sizeof bad_macs / sizeof bad_macs[0]; i++) {
        CHECK(!ctl__registry_mac(bad_macs[i], mac));
    }
    CHECK(ctl__registry_name_ok("counter-1") && ctl__registry_name_ok("a.b_c"));
    static const char *const bad_names[] = { "", "-x", ".x", "a/b", "a b", "a,b", "ä",
                                             "../x", "x\n" };
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        CHECK(!ctl__registry_name_ok(bad_names[i]));
    }
}

int main(void)
{
    char tmp[] = "/tmp/kyufu-ctl-terminal-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    test_csv_field();
    CHECK(setenv("KYUFU_CA_PASSPHRASE", PASSPHRASE, 1) == 0);
    char dir[600], conf[700], ca_dir[700], out[700], path[900];
    snprintf(dir, sizeof dir, "%s/c", tmp);
    snprintf(conf, sizeof conf, "%s/kyufuctl.conf", dir);
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", dir);
    snprintf(out, sizeof out, "%s/terminals", tmp);
    /* cluster init with a token KDF cost: every signing command below
     * decrypts the CA key (the real cost is ctl-init's to check). */
    struct kyufu_ctl_init_opts io = { .dir = dir, .nodes = 3, .raft_port_base = 7001,
                                      .api_port_base = 8001, .ca_key_iterations = 1000 };
    char err[512];
    CHECK_EQ_INT(kyufu_ctl_init(&io, NULL, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/ca.pem", ca_dir);
    X509 *ca = load_cert(path);

    /* Two terminals and an operator; the CA folder found from the config. */
    CHECK_EQ_INT(run("--config", conf, "terminal", "issue", "counter-1", "--mac",
                     "aa:bb:cc:dd:ee:01", "--out", out, NULL), 0);
    CHECK_EQ_INT(run("--config", conf, "--as", "suzuki", "--json", "terminal", "issue",
                     "counter-2", "--mac", "AA-BB-CC-DD-EE-02", "--out", out, NULL), 0);
    json_t *doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    CHECK(strcmp(json_string_value(json_object_get(doc, "mac")), "AA:BB:CC:DD:EE:02") == 0);
    CHECK(strcmp(json_string_value(json_object_get(doc, "issued_by")), "suzuki") == 0);
    json_decref(doc);
    CHECK_EQ_INT(run("operator", "issue", "--ca-dir", ca_dir, "yamada", "--out", out, NULL), 0);
    for (const char *const *n = (const char *const[]){ "counter-1", "counter-2", "yamada", NULL };
         *n != NULL; n++) {
        snprintf(path, sizeof path, "%s/%s.key", out, *n);
        CHECK_EQ_INT(mode_of(path), 0600);
        snprintf(path, sizeof path, "%s/%s.pem", out, *n);
        X509 *x = load_cert(path);
        char cn[80];
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        CHECK(strcmp(cn, *n) == 0);
        CHECK(X509_verify(x, X509_get0_pubkey(ca)) == 1);
        CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) == 1);
        CHECK(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) != 1);
        X509_free(x);
    }

    /* Refused, the registry unchanged: duplicates and malformed input. */
    snprintf(path, sizeof path, "%s/registry.json", ca_dir);
    static char before[65536];
    snprintf(before, sizeof before, "%s", slurp(path));
    struct {
        const char *args[12];
        const char *want;
    } bad[] = {
        { { "terminal", "issue", "counter-1", "--mac", "AA:BB:CC:DD:EE:09", "--out", out },
          "already has an active certificate" },
        { { "terminal", "issue", "counter-3", "--mac", "AA:BB:CC:DD:EE:01", "--out", out },
          "is terminal counter-1's" },
        { { "terminal", "issue", "counter-3", "--mac", "AA:BB:CC:DD:EE", "--out", out },
          "--mac" },
        { { "terminal", "issue", "counter-3", "--out", out }, "--mac" },
        { { "terminal", "issue", "../etc", "--mac", "AA:BB:CC:DD:EE:03", "--out", out },
          "letters, digits" },
        { { "terminal", "issue", "counter-3", "--mac", "AA:BB:CC:DD:EE:03" }, "--out" },
        { { "operator", "issue", "sato", "--mac", "AA:BB:CC:DD:EE:03", "--out", out },
          "--mac does not apply" },
        { { "terminal", "issue", "a", "b", "--mac", "AA:BB:CC:DD:EE:03", "--out", out },
          "unexpected argument" },
        { { "terminal", "revoke", "counter-1" }, "--reason" },
        { { "terminal", "revoke", "counter-1", "--reason", "bad\nline" }, "--reason" },
        { { "terminal", "revoke", "nobody", "--reason", "lost" }, "no active certificate" },
        { { "operator", "revoke", "counter-1", "--reason", "lost" }, "no active certificate" },
        { { "terminal", "export" }, "--csv" },
        { { "terminal", "frobnicate" }, "unknown command" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char **a = bad[i].args;
        int rv = run("--config", conf, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
                     NULL);
        if (rv != KYUFU_CTL_EXIT_USAGE || strstr(err_buf, bad[i].want) == NULL) {
            fprintf(stderr, "case %zu: exit %d, stderr %s(want '%s')\n", i, rv, err_buf,
                    bad[i].want);
            exit(1);
        }
        CHECK(strcmp(slurp(path), before) == 0);
    }

    /* A wrong passphrase: refused, nothing written. */
    snprintf(path, sizeof path, "%s/wrong", tmp);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("not the CA passphrase\n", f);
    fclose(f);
    CHECK_EQ_INT(run("--config", conf, "terminal", "issue", "counter-9", "--mac",
                     "AA:BB:CC:DD:EE:09", "--out", out, "--ca-passphrase-file", path, NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "wrong passphrase") != NULL);
    snprintf(path, sizeof path, "%s/counter-9.pem", out);
    CHECK(access(path, F_OK) != 0);
    CHECK(unsetenv("KYUFU_CA_PASSPHRASE") == 0);
    if (access("/dev/tty", R_OK) != 0) {
        CHECK_EQ_INT(run("--config", conf, "terminal", "revoke", "counter-1", "--reason", "x",
                         NULL),
                     KYUFU_CTL_EXIT_USAGE);
        CHECK(strstr(err_buf, "KYUFU_CA_PASSPHRASE") != NULL);
    }
    /* list and export need no passphrase. */
    CHECK_EQ_INT(run("--config", conf, "terminal", "list", NULL), 0);
    CHECK(strstr(out_buf, "counter-1") != NULL && strstr(out_buf, "AA:BB:CC:DD:EE:02") != NULL);
    CHECK(strstr(out_buf, "yamada") == NULL); /* operators: operator list */
    CHECK(setenv("KYUFU_CA_PASSPHRASE", PASSPHRASE, 1) == 0);

    /* Revoke counter-1: the registry says so, the CRL lists its serial
     * only; the other terminal stays active. */
    CHECK_EQ_INT(run("--config", conf, "--as", "tanaka", "terminal", "revoke", "counter-1",
                     "--reason", "lost at desk 3, \"stolen\"?", NULL), 0);
    CHECK(strstr(out_buf, "crl.pem") != NULL);
    json_t *reg;
    CHECK_EQ_INT(ctl__registry_load(ca_dir, &reg, err, sizeof err), 0);
    CHECK(strcmp(entry_field(reg, "counter-1", "status"), "revoked") == 0);
    CHECK(strcmp(entry_field(reg, "counter-1", "revoked_by"), "tanaka") == 0);
    CHECK(strcmp(entry_field(reg, "counter-2", "status"), "active") == 0);
    char serials[512], serial1[64], sha1[65];
    snprintf(serial1, sizeof serial1, "%s", entry_field(reg, "counter-1", "serial"));
    snprintf(sha1, sizeof sha1, "%s", entry_field(reg, "counter-1", "sha256"));
    snprintf(path, sizeof path, "%s/crl.pem", ca_dir);
    crl_serials(path, ca, serials, sizeof serials);
    CHECK(strcmp(serials, serial1) == 0);
    snprintf(path, sizeof path, "%s/counter-1.pem", out);
    X509 *x = load_cert(path);
    char sha[65], ser[64];
    ctl__cert_sha256(x, sha);
    api__tls_cert_serial(x, ser, sizeof ser);
    CHECK(strcmp(sha, sha1) == 0 && strcmp(ser, serial1) == 0);
    X509_free(x);
    json_decref(reg);

    /* The name is free again: a new certificate for the replacement. */
    CHECK_EQ_INT(run("--config", conf, "terminal", "issue", "counter-1", "--mac",
                     "AA:BB:CC:DD:EE:01", "--out", out, NULL), 0);
    CHECK_EQ_INT(run("--config", conf, "--json", "operator", "revoke", "yamada", "--reason",
                     "left", NULL),
                 0);
    doc = json_loads(out_buf, 0, NULL);
    CHECK(doc != NULL);
    snprintf(path, sizeof path, "%s/crl.pem", ca_dir);
    CHECK(strcmp(json_string_value(json_object_get(doc, "crl_file")), path) == 0);
    CHECK(strcmp(json_string_value(json_object_get(doc, "revoked")), "yamada") == 0);
    json_decref(doc);
    snprintf(path, sizeof path, "%s/crl.pem", ca_dir);
    crl_serials(path, ca, serials, sizeof serials);
    CHECK(strstr(serials, serial1) != NULL && strchr(serials, ' ') != NULL); /* two now */

    /* CSV: a header, one CRLF line per terminal, the reason quoted. */
    CHECK_EQ_INT(run("--config", conf, "terminal", "export", "--csv", NULL), 0);
    static const char header[] = "name,kind,mac,serial,sha256,status,issued_at,issued_by,"
                                 "revoked_at,revoked_by,reason\r\n";
    CHECK(strncmp(out_buf, header, sizeof header - 1) == 0);
    CHECK(strstr(out_buf, ",\"lost at desk 3, \"\"stolen\"\"?\"\r\n") != NULL);
    char want[200];
    snprintf(want, sizeof want, "counter-1,terminal,AA:BB:CC:DD:EE:01,%s,%s,revoked,", serial1,
             sha1);
    CHECK(strstr(out_buf, want) != NULL);
    size_t lines = 0;
    for (const char *p = out_buf; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        lines++;
    }
    CHECK_EQ_INT(lines, 4); /* header, counter-1 twice, counter-2 */
    CHECK(strstr(out_buf, "yamada") == NULL);
    CHECK_EQ_INT(run("--config", conf, "operator", "export", "--csv", NULL), 0);
    CHECK(strstr(out_buf, "yamada,operator,,") != NULL && strstr(out_buf, ",revoked,") != NULL);
    CHECK(strstr(out_buf, "admin,operator,,") != NULL);

    /* A fresh CRL keeps the same revocations. */
    CHECK_EQ_INT(run("--config", conf, "terminal", "crl", NULL), 0);
    char again[512];
    crl_serials(path, ca, again, sizeof again);
    CHECK_EQ_INT(strlen(again), strlen(serials));

    /* A damaged registry: a clear error, nothing issued. */
    snprintf(path, sizeof path, "%s/registry.json", ca_dir);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("[{\"name\": \"x\", \"kind\": \"printer\"}]", f);
    fclose(f);
    CHECK_EQ_INT(run("--config", conf, "terminal", "list", NULL), KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "entry 1") != NULL);
    f = fopen(path, "w");
    CHECK(f != NULL);
    fputs("{not json", f);
    fclose(f);
    CHECK_EQ_INT(run("--config", conf, "terminal", "issue", "counter-7", "--mac",
                     "AA:BB:CC:DD:EE:07", "--out", out, NULL),
                 KYUFU_CTL_EXIT_USAGE);
    CHECK(strstr(err_buf, "registry.json") != NULL);
    snprintf(path, sizeof path, "%s/counter-7.pem", out);
    CHECK(access(path, F_OK) != 0);

    X509_free(ca);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0);
    printf("ok\n");
    return 0;
}
