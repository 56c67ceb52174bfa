/* Follower refusals (issue 8 item 7; node/refusal_batch.c): the follower's
 * bounded queue and its batches (what is packed, that a retry packs the
 * same batch, what an acknowledgement removes), the leader's check of a
 * received batch (every malformed field refused, naming it), and the
 * leader's state per reporting node (retries recognised, the bound per
 * window with its count), with the test's own clock. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../client/check.h"
#include "../../node/limits.h"
#include "oplog.h"
#include "refusal_batch.h"

static struct kyufu_node_refusal_queue q; /* large: not on the stack */

static struct kyufu_node_refusal_entry entry(unsigned i)
{
    struct kyufu_node_refusal_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.method, sizeof e.method, "connection: TLS handshake failed");
    e.outcome = KYUFU__V1__CODE__PERMISSION_DENIED;
    snprintf(e.message, sizeof e.message, "certificate revoked #%u", i);
    snprintf(e.peer, sizeof e.peer, "127.0.0.1:%u", 40000 + i);
    snprintf(e.certificate, sizeof e.certificate, "CN=counter-lost");
    e.has_cert = (i % 2) == 0;
    memset(e.cert_sha256, (int)(i & 0xff), sizeof e.cert_sha256);
    snprintf(e.actor, sizeof e.actor, "%s", i % 3 == 0 ? "clerk" : "");
    e.session = i % 3 == 0 ? 7 : 0;
    e.time_ms = 1764950400000 + i;
    return e;
}

static Kyufu__V1__ReportRefusalsRequest *unpack(const uint8_t *buf,
                                                size_t len)
{
    Kyufu__V1__ReportRefusalsRequest *r =
        kyufu__v1__report_refusals_request__unpack(NULL, len, buf);
    CHECK(r != NULL);
    return r;
}

/* Record i as it comes out of a batch. */
static void check_record(const Kyufu__V1__RefusalReport *r, unsigned i)
{
    struct kyufu_node_refusal_entry e = entry(i);
    CHECK(strcmp(r->method, e.method) == 0);
    CHECK_EQ_INT(r->outcome, e.outcome);
    CHECK(strcmp(r->message, e.message) == 0);
    CHECK(strcmp(r->peer, e.peer) == 0);
    CHECK(strcmp(r->certificate, e.certificate) == 0);
    CHECK_EQ_INT(r->cert_sha256.len, e.has_cert ? 32 : 0);
    if (e.has_cert) {
        CHECK(memcmp(r->cert_sha256.data, e.cert_sha256, 32) == 0);
    }
    CHECK(strcmp(r->actor, e.actor) == 0);
    CHECK_EQ_INT(r->session, e.session);
    CHECK_EQ_INT(r->time_ms, e.time_ms);
}

static void test_queue(void)
{
    uint8_t *buf, *again;
    size_t len, len2;
    char why[200];
    memset(&q, 0, sizeof q);
    /* Nothing queued: nothing to send. */
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &buf, &len), 1);
    CHECK(buf == NULL);
    /* Full at the bound; more is counted, not queued. */
    for (unsigned i = 0; i < KYUFU_NODE_REFUSAL_QUEUE_MAX; i++) {
        struct kyufu_node_refusal_entry e = entry(i);
        CHECK(kyufu_node__refusal_queue_push(&q, &e));
    }
    struct kyufu_node_refusal_entry extra = entry(9999);
    CHECK(!kyufu_node__refusal_queue_push(&q, &extra));
    CHECK_EQ_INT(q.count, KYUFU_NODE_REFUSAL_QUEUE_MAX);
    CHECK_EQ_INT(q.dropped, 1);

    /* The first batch: the oldest BATCH_MAX records, the dropped count,
     * number 1, and it passes the leader's check. */
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &buf, &len), 0);
    Kyufu__V1__ReportRefusalsRequest *r = unpack(buf, len);
    CHECK_EQ_INT(r->boot_id, 5);
    CHECK_EQ_INT(r->batch_seq, 1);
    CHECK_EQ_INT(r->n_refusals, KYUFU_NODE_REFUSAL_BATCH_MAX);
    CHECK_EQ_INT(r->dropped, 1);
    for (unsigned i = 0; i < r->n_refusals; i++) {
        check_record(r->refusals[i], i);
    }
    CHECK(kyufu_node__refusal_batch_check(r, why, sizeof why) == 0);
    kyufu__v1__report_refusals_request__free_unpacked(r, NULL);

    /* Not acknowledged (the call failed): the same batch again, byte for
     * byte, although another refusal was turned away meanwhile. */
    CHECK(!kyufu_node__refusal_queue_push(&q, &extra));
    CHECK_EQ_INT(q.dropped, 2);
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &again, &len2), 0);
    CHECK(len2 == len && memcmp(buf, again, len) == 0);
    free(buf);
    free(again);

    /* Acknowledged: its records and its dropped count leave the queue;
     * the next batch is number 2 and starts after it. */
    kyufu_node__refusal_queue_ack(&q);
    CHECK_EQ_INT(q.count,
                 KYUFU_NODE_REFUSAL_QUEUE_MAX - KYUFU_NODE_REFUSAL_BATCH_MAX);
    CHECK_EQ_INT(q.dropped, 1);
    kyufu_node__refusal_queue_ack(&q); /* nothing taken: no effect */
    CHECK_EQ_INT(q.count,
                 KYUFU_NODE_REFUSAL_QUEUE_MAX - KYUFU_NODE_REFUSAL_BATCH_MAX);
    /* Room again, at the ring's wrapped end. */
    struct kyufu_node_refusal_entry late = entry(KYUFU_NODE_REFUSAL_QUEUE_MAX);
    CHECK(kyufu_node__refusal_queue_push(&q, &late));
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &buf, &len), 0);
    r = unpack(buf, len);
    CHECK_EQ_INT(r->batch_seq, 2);
    CHECK_EQ_INT(r->dropped, 1);
    check_record(r->refusals[0], KYUFU_NODE_REFUSAL_BATCH_MAX);
    kyufu__v1__report_refusals_request__free_unpacked(r, NULL);
    free(buf);
    kyufu_node__refusal_queue_ack(&q);

    /* Drained batch by batch, in order, the late record last. */
    unsigned next = 2u * KYUFU_NODE_REFUSAL_BATCH_MAX;
    uint64_t seq = 2;
    while (kyufu_node__refusal_queue_pack(&q, 5, &buf, &len) == 0) {
        r = unpack(buf, len);
        CHECK_EQ_INT(r->batch_seq, ++seq);
        CHECK_EQ_INT(r->dropped, 0);
        for (unsigned i = 0; i < r->n_refusals; i++) {
            check_record(r->refusals[i], next++);
        }
        kyufu__v1__report_refusals_request__free_unpacked(r, NULL);
        free(buf);
        kyufu_node__refusal_queue_ack(&q);
    }
    CHECK_EQ_INT(next, KYUFU_NODE_REFUSAL_QUEUE_MAX + 1);
    CHECK_EQ_INT(q.count, 0);

    /* Only a dropped count: still a batch, with no records. */
    q.dropped = 3;
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &buf, &len), 0);
    r = unpack(buf, len);
    CHECK_EQ_INT(r->n_refusals, 0);
    CHECK_EQ_INT(r->dropped, 3);
    kyufu__v1__report_refusals_request__free_unpacked(r, NULL);
    free(buf);
    kyufu_node__refusal_queue_clear(&q);
    CHECK_EQ_INT(kyufu_node__refusal_queue_pack(&q, 5, &buf, &len), 1);
    printf("ok: queue and batches\n");
}

/* One malformed batch: refused, `why` naming `word`. */
static void refused(const Kyufu__V1__ReportRefusalsRequest *r,
                    const char *word)
{
    char why[200];
    CHECK(kyufu_node__refusal_batch_check(r, why, sizeof why) == -1);
    if (strstr(why, word) == NULL) {
        fprintf(stderr, "why '%s' does not name '%s'\n", why, word);
        exit(1);
    }
}

/* Record 1's text field `*field` set to `bad`: the batch refused, `why`
 * naming `word`; the field is put back. */
static void text_refused(const Kyufu__V1__ReportRefusalsRequest *r,
                         char **field,
                         char *bad,
                         const char *word)
{
    char *good = *field;
    *field = bad;
    refused(r, word);
    *field = good;
}

static void test_check(void)
{
    char why[200];
    char long_text[KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX + 1];
    memset(long_text, 'a', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    uint8_t short_hash[5] = {0};
    Kyufu__V1__RefusalReport x[2];
    Kyufu__V1__RefusalReport *p[KYUFU_NODE_REFUSAL_BATCH_MAX + 1];
    for (unsigned i = 0; i < 2; i++) {
        kyufu__v1__refusal_report__init(&x[i]);
        x[i].method = "/kyufu.v1.Ledger/ListHouseholds";
        x[i].outcome = KYUFU__V1__CODE__PERMISSION_DENIED;
        x[i].message = "unauthenticated: no token";
        x[i].peer = "127.0.0.1:5000";
        x[i].time_ms = 1;
    }
    for (unsigned i = 0; i <= KYUFU_NODE_REFUSAL_BATCH_MAX; i++) {
        p[i] = &x[i % 2];
    }
    Kyufu__V1__ReportRefusalsRequest r =
        KYUFU__V1__REPORT_REFUSALS_REQUEST__INIT;
    r.boot_id = 1;
    r.batch_seq = 1;
    r.refusals = p;
    r.n_refusals = 2;
    CHECK(kyufu_node__refusal_batch_check(&r, why, sizeof why) == 0);
    r.n_refusals = 0; /* a batch of a dropped count only */
    CHECK(kyufu_node__refusal_batch_check(&r, why, sizeof why) == 0);
    r.n_refusals = 2;

    r.boot_id = 0;
    refused(&r, "boot_id");
    r.boot_id = 1;
    r.batch_seq = 0;
    refused(&r, "batch_seq");
    r.batch_seq = 1;
    r.n_refusals = KYUFU_NODE_REFUSAL_BATCH_MAX + 1;
    refused(&r, "at most 64");
    r.n_refusals = 2;

    /* Each field of the second record, one at a time. */
    Kyufu__V1__RefusalReport good = x[1];
    text_refused(&r, &x[1].method, "", "refusal 1: bad method");
    text_refused(&r, &x[1].method, "/kyufu.v1.Ledger/List\nHouseholds",
                 "refusal 1: bad method");
    x[1].outcome = KYUFU__V1__CODE__OK;
    refused(&r, "outcome");
    x[1].outcome = 99;
    refused(&r, "outcome");
    /* Every Code oplog.c records may travel: a Get that found nothing
     * (NOT_FOUND) included; a batch refused for one would stall the
     * follower's queue. */
    x[1].outcome = KYUFU__V1__CODE__NOT_FOUND;
    CHECK(kyufu_node__refusal_batch_check(&r, why, sizeof why) == 0);
    x[1] = good;
    text_refused(&r, &x[1].message, long_text, "message");
    text_refused(&r, &x[1].message, "caf\xc3\xa9", "message");
    text_refused(&r, &x[1].peer, long_text, "peer");
    text_refused(&r, &x[1].certificate, long_text, "certificate");
    text_refused(&r, &x[1].certificate, "CN=a\x01", "certificate");
    text_refused(&r, &x[1].actor, "Clerk One", "actor");
    x[1].cert_sha256.data = short_hash;
    x[1].cert_sha256.len = sizeof short_hash;
    refused(&r, "cert_sha256");
    x[1] = good;
    x[1].time_ms = 0;
    refused(&r, "time_ms");
    x[1].time_ms = -5;
    refused(&r, "time_ms");
    x[1] = good;
    /* At the bounds: accepted. */
    long_text[KYUFU_NODE_REFUSAL_FIELD_BYTES_MAX - 1] = '\0';
    x[1].message = long_text;
    x[1].certificate = long_text;
    x[1].actor = "kyufu-node-2";
    CHECK(kyufu_node__refusal_batch_check(&r, why, sizeof why) == 0);
    printf("ok: a malformed batch is refused whole, naming the field\n");
}

static void test_senders(void)
{
    struct kyufu_node_refusal_senders ss;
    memset(&ss, 0, sizeof ss);
    struct kyufu_node_refusal_sender *s = kyufu_node__refusal_sender(&ss, 2);
    CHECK(s != NULL && s->node_id == 2);
    CHECK(kyufu_node__refusal_sender(&ss, 2) == s);

    /* Retries: a batch recorded is recognised in the same run only. */
    CHECK(!kyufu_node__refusal_sender_seen(s, 100, 1));
    s->last_seq = 1;
    CHECK(kyufu_node__refusal_sender_seen(s, 100, 1));
    CHECK(!kyufu_node__refusal_sender_seen(s, 100, 2));
    CHECK(!kyufu_node__refusal_sender_seen(s, 200, 1)); /* restarted */
    CHECK_EQ_INT(s->last_seq, 0);

    /* The bound: PER_NODE_MAX records a window, the rest counted; the
     * count is handed over once the window ends. */
    const unsigned max = KYUFU_NODE_REFUSAL_PER_NODE_MAX;
    const uint64_t w = KYUFU_NODE_OPLOG_REFUSALS_WINDOW_MS;
    uint64_t flush = 99;
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 1000, max - 10, &flush),
                 max - 10);
    CHECK_EQ_INT(flush, 0);
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 1500, 64, &flush), 10);
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 2000, 1, &flush), 0);
    CHECK_EQ_INT(s->bounded, 55);
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 1000 + w - 1, 0, &flush),
                 0);
    CHECK_EQ_INT(flush, 0);
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 1000 + w, 0, &flush), 0);
    CHECK_EQ_INT(flush, 55);
    CHECK_EQ_INT(s->bounded, 0);
    CHECK_EQ_INT(kyufu_node__refusal_sender_admit(s, 1000 + w, 64, &flush),
                 64);
    CHECK_EQ_INT(flush, 0);

    /* Slots: one per node; when all are taken, the oldest window not
     * busy goes to a new node; none when all are busy. */
    for (uint64_t id = 3; id < 2 + KYUFU_NODE_CLUSTER_SIZE_MAX; id++) {
        struct kyufu_node_refusal_sender *t =
            kyufu_node__refusal_sender(&ss, id);
        CHECK(t != NULL && t != s);
        (void)kyufu_node__refusal_sender_admit(t, 50000 + id, 1, &flush);
    }
    s->busy = true;
    struct kyufu_node_refusal_sender *t = kyufu_node__refusal_sender(&ss, 90);
    CHECK(t != NULL && t != s && t->node_id == 90 && t->last_seq == 0);
    for (size_t i = 0; i < KYUFU_NODE_CLUSTER_SIZE_MAX; i++) {
        ss.s[i].busy = true;
    }
    CHECK(kyufu_node__refusal_sender(&ss, 91) == NULL);
    CHECK(kyufu_node__refusal_sender(&ss, 90) == t); /* its own, busy */
    printf("ok: senders, retries and the leader's bound\n");
}

int main(void)
{
    test_queue();
    test_check();
    test_senders();
    return 0;
}
