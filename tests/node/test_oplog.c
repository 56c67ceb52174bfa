/* The operation log's pure parts (h/oplog): signed checkpoints
 * (node/checkpoint.c) and the bound on refusal records
 * (node/oplog_rate.c), with the test's own clock. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../client/check.h"
#include "checkpoint.h"
#include "../../node/limits.h"
#include "oplog.h"

static EVP_PKEY *p256(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    CHECK(k != NULL);
    return k;
}

/* The hex signature of a line as bytes. */
static size_t sig_of(const char *line, uint8_t *sig, size_t max)
{
    const char *s = strstr(line, "\"sig\":\"");
    CHECK(s != NULL);
    s += 7;
    size_t n = 0;
    while (s[0] != '"' && n < max) {
        unsigned v;
        CHECK(sscanf(s, "%2x", &v) == 1);
        sig[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void test_sign_verify(void)
{
    EVP_PKEY *key = p256(), *other = p256();
    uint8_t hash[32], sig[512];
    char line[KYUFU_NODE_CHECKPOINT_LINE_BYTES_MAX], err[256];
    for (int i = 0; i < 32; i++) {
        hash[i] = (uint8_t)(i * 7 + 1);
    }
    CHECK(kyufu_checkpoint_line(key, 2, 812, hash, 1764950400000, line,
                                sizeof line, err, sizeof err) == 0);
    CHECK(line[strlen(line) - 1] == '\n');
    CHECK(strstr(line, "\"node\":2,\"seq\":812,") != NULL);
    size_t n = sig_of(line, sig, sizeof sig);
    CHECK(n >= 8 && n <= 72); /* DER ECDSA P-256 */
    /* The signature holds for exactly what was signed. */
    CHECK(kyufu_checkpoint_verify(key, 2, 812, hash, 1764950400000, sig, n));
    CHECK(!kyufu_checkpoint_verify(key, 3, 812, hash, 1764950400000, sig, n));
    CHECK(!kyufu_checkpoint_verify(key, 2, 813, hash, 1764950400000, sig, n));
    CHECK(!kyufu_checkpoint_verify(key, 2, 812, hash, 1764950400001, sig, n));
    hash[31] ^= 1;
    CHECK(!kyufu_checkpoint_verify(key, 2, 812, hash, 1764950400000, sig, n));
    hash[31] ^= 1;
    CHECK(!kyufu_checkpoint_verify(other, 2, 812, hash, 1764950400000, sig, n));
    sig[n / 2] ^= 0x40;
    CHECK(!kyufu_checkpoint_verify(key, 2, 812, hash, 1764950400000, sig, n));
    CHECK(!kyufu_checkpoint_verify(key, 2, 812, hash, 1764950400000, sig, 0));
    /* Too small a buffer: an error, never a cut line. */
    CHECK(kyufu_checkpoint_line(key, 2, 812, hash, 1, line, 40, err,
                                sizeof err) == -1);
    CHECK(strstr(err, "longer") != NULL);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_append(void)
{
    char dir[] = "/tmp/kyufu-oplog-XXXXXX", path[256], err[256], buf[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/anchor.jsonl", dir);
    CHECK(kyufu_checkpoint_append(path, "one\n", err, sizeof err) == 0);
    CHECK(kyufu_checkpoint_append(path, "two\n", err, sizeof err) == 0);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    buf[got] = '\0';
    fclose(f);
    CHECK(strcmp(buf, "one\ntwo\n") == 0); /* appended, never rewritten */
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    /* A folder that does not exist: an error naming the file. */
    snprintf(buf, sizeof buf, "%s/missing/anchor.jsonl", dir);
    CHECK(kyufu_checkpoint_append(buf, "x\n", err, sizeof err) == -1);
    CHECK(strstr(err, "missing/anchor.jsonl") != NULL);
    /* A key file that is not a key. */
    EVP_PKEY *k = NULL;
    CHECK(kyufu_checkpoint_load_key(path, &k, err, sizeof err) == -1 &&
          k == NULL);
    unlink(path);
    rmdir(dir);
}

static void test_rate_bound(void)
{
    struct kyufu_node_oplog o;
    memset(&o, 0, sizeof o);
    uint64_t flush = 0, now = 1000;
    const unsigned burst = KYUFU_NODE_OPLOG_REFUSALS_BURST;
    /* A flood of one reason: the burst gets its own records, the rest is
     * counted. */
    unsigned own = 0;
    for (unsigned i = 0; i < 10000; i++) {
        own += kyufu_node__oplog_admit(&o, "connection: TLS handshake failed",
                                       16, now, &flush);
        CHECK(flush == 0);
    }
    CHECK_EQ_INT(own, burst);
    CHECK_EQ_INT(o.refusals_suppressed, 10000 - burst);
    /* Another reason has its own window. */
    CHECK(kyufu_node__oplog_admit(&o, "/kyufu.v1.Ledger/GetHousehold", 7, now,
                                  &flush));
    CHECK(flush == 0);
    /* Next window: the count of the last one comes out once, then a new
     * burst. */
    now += KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS;
    CHECK(kyufu_node__oplog_admit(&o, "connection: TLS handshake failed", 16,
                                  now, &flush));
    CHECK_EQ_INT(flush, 10000 - burst);
    CHECK(kyufu_node__oplog_admit(&o, "connection: TLS handshake failed", 16,
                                  now, &flush));
    CHECK(flush == 0);
    /* Many distinct reasons (an attacker varying the method): per window
     * at most TOTAL records (own and count records from admit), and every
     * refusal is recorded, counted in a record, or still counted. */
    memset(&o, 0, sizeof o);
    uint64_t recorded = 0, counted = 0, total = 0;
    char method[64];
    for (unsigned w = 0; w < 20; w++) {
        unsigned records = 0;
        now = 100000 + (uint64_t)w * KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS;
        for (unsigned i = 0; i < 3 * KYUFU_NODE_OPLOG_REASONS; i++) {
            snprintf(method, sizeof method, "/x/M%u", (i * 7 + w) % 61);
            for (unsigned j = 0; j < 2 * burst; j++) {
                bool mine = kyufu_node__oplog_admit(&o, method, 7, now, &flush);
                recorded += mine;
                counted += flush;
                records += mine + (flush > 0);
                total++;
            }
        }
        CHECK(records <= KYUFU_NODE_OPLOG_REFUSALS_TOTAL);
    }
    uint64_t pending = o.overflow;
    for (unsigned i = 0; i < KYUFU_NODE_OPLOG_REASONS; i++) {
        pending += o.reason[i].suppressed;
    }
    CHECK_EQ_INT(recorded + counted + pending, total);
    CHECK(recorded > 0 && pending > 0);
}

int main(void)
{
    test_sign_verify();
    test_append();
    test_rate_bound();
    printf("ok\n");
    return 0;
}
