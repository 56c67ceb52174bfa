/* A scripted client__transport for tests: each call takes the next scripted
 * reply (or fails with EUNAVAILABLE when the script is exhausted), delivered
 * from the loop on a zero timer; every call is logged with its endpoint and
 * a copy of its request bytes.  A reply marked `held` is a silent node: the
 * call stays unanswered (no timeout of its own) until the test releases it
 * (fake_release: then its scripted reply arrives), the client cancels it
 * (ECANCELED, counted in `cancels`) or the transport closes. */
#ifndef KYUFU_TEST_FAKE_TRANSPORT_H
#define KYUFU_TEST_FAKE_TRANSPORT_H

#include "transport.h"

#define FAKE_MAX 300

struct fake_reply
{
    int err;             /* 0, KYUFU_CLIENT_EUNAVAILABLE, KYUFU_CLIENT_EDEADLINE */
    int status;          /* gRPC status when err == 0 */
    const char *leader;  /* kyufu-leader or NULL */
    const char *message;
    const ProtobufCMessage *response; /* packed into the body when OK */
    bool held;           /* silent until fake_release / cancel / close */
};

struct fake_log
{
    unsigned endpoint;
    char path[96];
    uint8_t *body;
    size_t len;
    uint32_t timeout_ms;
    char authorization[96]; /* the `authorization` metadata sent, "" if none */
    bool cancelled;          /* the client cancelled it while in flight */
};

struct fake
{
    struct client__transport base;
    uv_loop_t *loop;
    uv_timer_t timer;
    struct fake_reply script[FAKE_MAX];
    unsigned n_script;
    unsigned next_reply;
    struct fake_log log[FAKE_MAX];
    unsigned n_log;
    struct client__tcall *pending[FAKE_MAX];
    int pending_reply[FAKE_MAX]; /* index into script, -1: exhausted */
    unsigned n_pending;
    /* Held calls (silent node): the call, its reply, its log index. */
    struct client__tcall *held[FAKE_MAX];
    int held_reply[FAKE_MAX];
    unsigned held_log[FAKE_MAX];
    unsigned n_held;
    unsigned cancels;    /* calls the client cancelled */
    bool closing;
    client__transport_close_cb close_cb;
    void *close_arg;
    bool freed;
};

/* Factory for client__create_with: arg is a struct fake * (test-owned,
 * must outlive the client; it is not freed by close). */
int fake_factory(void *arg, uv_loop_t *loop,
                 const struct kyufu_client_config *cfg,
                 struct client__transport **out, char *errmsg,
                 size_t errmsg_len);

void fake_push(struct fake *f, struct fake_reply r);
void fake_reset_log(struct fake *f);
/* Let the held call of log entry `log_index` answer (its scripted reply,
 * from the loop); false when that call is not held (answered, cancelled). */
bool fake_release(struct fake *f, unsigned log_index);

#endif
