/* Fuzz harness: the gRPC request path from raw bytes, as a client's
 * plaintext arrives out of TLS: kyufu_grpc_server_conn (HTTP/2 via
 * nghttp2, gRPC framing, deadlines, flow control) and then, per call, the
 * unknown-field check and protobuf-c unpack of a real kyufu request type,
 * as node/service.c does.  The first byte sets the mode:
 *   bits 0-3: feed size class (1 << (bits + 2) bytes per recv call);
 *   bit 4:    hold calls and answer them after all input (async handler);
 *   bit 5:    advance the clock past every deadline halfway through;
 *   bit 6:    shut the connection down (GOAWAY) halfway through.
 * Properties: no crash, overread or leak (ASan/LSan), every call handed to
 * a handler is answered or cancelled exactly once, and the connection's
 * held request bytes never exceed its flow-control window. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include "grpc.h"
#include "grpc_limits.h"
#include "kyufu/v1/service.pb-c.h"

#define H2_HELD_MAX 128

static struct kyufu_grpc_health *health;
static struct kyufu_grpc_call *held[H2_HELD_MAX];
static size_t n_held;
static bool hold_mode;
static unsigned long inputs, calls, answered;

static _Noreturn void finding(const char *what)
{
    fprintf(stderr, "FUZZ FINDING: %s (input %lu)\n", what, inputs);
    abort();
}

/* What node/service.c does with a request before the node sees it. */
static void answer(struct kyufu_grpc_call *call)
{
    char why[160];
    const ProtobufCMessageDescriptor *d = call->user_data;
    answered++;
    if (kyufu_pb_check_known(d, call->request, call->request_len, why, sizeof why) != 0) {
        kyufu_grpc_call_respond(call, KYUFU_GRPC_INVALID_ARGUMENT, why, NULL, 0);
        return;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(
        d, NULL, call->request_len, call->request_len > 0 ? call->request : (const uint8_t *)"");
    if (m == NULL) {
        kyufu_grpc_call_respond(call, KYUFU_GRPC_INVALID_ARGUMENT, "bad", NULL, 0);
        return;
    }
    uint8_t out[64];
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n <= sizeof out) {
        protobuf_c_message_pack(m, out);
    } else {
        n = 0;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, out, n);
}

static void on_cancel(struct kyufu_grpc_call *call)
{
    for (size_t i = 0; i < n_held; i++) {
        if (held[i] == call) {
            /* Still to be answered (cancel does not free it). */
            return;
        }
    }
    finding("cancel of a call that is not held");
}

static void handler(void *data, struct kyufu_grpc_call *call)
{
    calls++;
    call->user_data = data;
    if (hold_mode && n_held < H2_HELD_MAX) {
        call->on_cancel = on_cancel;
        held[n_held++] = call;
        return;
    }
    answer(call);
}

static const struct kyufu_grpc_method methods[] = {
    {"/kyufu.v1.Ledger/GetProgram", handler,
     (void *)&kyufu__v1__get_program_request__descriptor},
    {"/kyufu.v1.Ledger/CreateProgram", handler,
     (void *)&kyufu__v1__create_program_request__descriptor},
    {"/kyufu.v1.Ledger/ListHouseholds", handler,
     (void *)&kyufu__v1__list_request__descriptor},
};

void fz_init(void)
{
    if (kyufu_grpc_health_new(&health) != 0 ||
        kyufu_grpc_health_set(health, "", KYUFU_GRPC_HEALTH_SERVING) != 0) {
        abort();
    }
}

static void drain(struct kyufu_grpc_server_conn *conn)
{
    const uint8_t *p;
    size_t n;
    while ((n = kyufu_grpc_server_conn_pending_output(conn, &p)) > 0) {
        (void)p; /* the client's side is not modelled: bytes are dropped */
    }
}

void fz_one(const uint8_t *data, size_t size)
{
    struct kyufu_grpc_server_config cfg = {
        .methods = methods,
        .n_methods = sizeof methods / sizeof methods[0],
        .health = health,
    };
    struct kyufu_grpc_server_conn *conn;
    inputs++;
    if (size == 0) {
        return;
    }
    uint8_t mode = data[0];
    size_t chunk = (size_t)1 << ((mode & 15) + 2);
    hold_mode = (mode & 16) != 0;
    n_held = 0;
    data++;
    size--;
    if (kyufu_grpc_server_conn_new(&cfg, "127.0.0.1:1", "CN=fuzz", 1000, &conn) != 0) {
        abort();
    }
    uint64_t now = 1000;
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        if ((mode & 32) && off <= size / 2 && off + n > size / 2) {
            now += KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX + 1;
            kyufu_grpc_server_conn_advance(conn, now);
        }
        if ((mode & 64) && off <= size / 2 && off + n > size / 2) {
            kyufu_grpc_server_conn_shutdown(conn);
        }
        int rv = kyufu_grpc_server_conn_recv(conn, data + off, n);
        drain(conn);
        if (kyufu_grpc_server_conn_buffered(conn) > KYUFU_GRPC_CONNECTION_WINDOW_BYTES) {
            finding("held request bytes exceed the connection window");
        }
        if (rv != 0) {
            break;
        }
    }
    /* Answer what was held (cancelled ones included: still owed). */
    for (size_t i = 0; i < n_held; i++) {
        answer(held[i]);
    }
    n_held = 0;
    drain(conn);
    kyufu_grpc_server_conn_free(conn);
}

void fz_report(FILE *fp)
{
    fprintf(fp, "h2: %lu inputs, %lu calls, %lu answered\n", inputs, calls, answered);
}

void fz_fini(void)
{
    kyufu_grpc_health_free(health);
}
