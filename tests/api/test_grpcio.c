/* A stock gRPC client (Debian's python3-grpcio, grpcio_client.py) against
 * kyufu's libuv server over mutual TLS: the wire format is exactly gRPC
 * (framing, Trailers-Only errors, percent-encoded grpc-message, trailer
 * metadata, health, limits, deadlines).  Skipped (77) when /usr/bin/python3 has no grpc. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certs.h"
#include "grpc.h"
#include "h2_client.h" /* CHECK */

static uv_loop_t loop;
static struct kyufu_grpc_call *held[8];
static size_t n_held;

static void echo(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, call->request, call->request_len);
}

static void fail(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    kyufu_grpc_call_respond(call, KYUFU_GRPC_FAILED_PRECONDITION, "caf\xc3\xa9 100% done\n",
                            NULL, 0);
}

/* Trailer metadata with an OK answer (body "ok") and with an error. */
static void hint(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    static const struct kyufu_grpc_metadata md[] = {{"kyufu-leader", "127.0.0.1:8003"}};
    bool ok = call->request_len == 2 && memcmp(call->request, "ok", 2) == 0;
    CHECK(kyufu_grpc_call_respond_md(call, ok ? KYUFU_GRPC_OK : KYUFU_GRPC_UNAVAILABLE,
                                     ok ? NULL : "not the leader", call->request,
                                     call->request_len, md, 1) == 0);
}

static void hold(void *data, struct kyufu_grpc_call *call)
{
    (void)data;
    CHECK(n_held < 8);
    held[n_held++] = call;
}

static const struct kyufu_grpc_method methods[] = {
    {"/kyufu.v1.Ledger/Echo", echo, NULL},
    {"/kyufu.v1.Ledger/Fail", fail, NULL},
    {"/kyufu.v1.Ledger/Hold", hold, NULL},
    {"/kyufu.v1.Ledger/Hint", hint, NULL},
};

static int64_t exit_status = -1;
static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    exit_status = term_signal != 0 ? 128 + term_signal : status;
    uv_close((uv_handle_t *)p, NULL);
}

static bool closed;
static void on_closed(struct kyufu_api_server *s, void *data)
{
    (void)s;
    (void)data;
    closed = true;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import grpc' 2>/dev/null") != 0) {
        printf("skipped: /usr/bin/python3 with grpcio (python3-grpcio) not available\n");
        return 77;
    }
    char dir[64] = "/tmp/kyufu-api-grpcio-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(t_certs_make(dir) == 0);
    char cert[128], key[128], ca[128];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    CHECK(uv_loop_init(&loop) == 0);
    struct kyufu_api_server_config cfg = {
        .host = "127.0.0.1",
        .cert_file = cert,
        .key_file = key,
        .ca_file = ca,
        .require_client_cert = true,
        .methods = methods,
        .n_methods = sizeof methods / sizeof methods[0],
    };
    struct kyufu_api_server *server;
    char err[256];
    CHECK(kyufu_api_server_start(&loop, &cfg, &server, err, sizeof err) == 0);
    CHECK(kyufu_api_server_set_health(server, "", KYUFU_GRPC_HEALTH_SERVING) == 0);

    /* The script sits next to this test's source. */
    char script[512], port[8];
    const char *src = getenv("KYUFU_API_TEST_SRCDIR");
    CHECK(src != NULL);
    snprintf(script, sizeof script, "%s/grpcio_client.py", src);
    snprintf(port, sizeof port, "%u", (unsigned)kyufu_api_server_port(server));
    char *args[] = {"/usr/bin/python3", script, port, dir, NULL};
    uv_process_t proc;
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t opts = {.file = args[0], .args = args, .exit_cb = on_exit_cb,
                                 .stdio_count = 3, .stdio = stdio};
    CHECK(uv_spawn(&loop, &proc, &opts) == 0);
    while (exit_status < 0) {
        uv_run(&loop, UV_RUN_ONCE);
    }
    for (size_t i = 0; i < n_held; i++) {
        kyufu_grpc_call_respond(held[i], KYUFU_GRPC_OK, NULL, NULL, 0);
    }
    kyufu_api_server_close(server, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(closed);
    CHECK(uv_loop_close(&loop) == 0);
    const char *files[] = {"ca.pem", "server.pem", "server.key", "client.pem", "client.key",
                           "other-ca.pem", "other-client.pem", "other-client.key",
                           "client2.pem", "client2.key", "ca.key", "other-ca.key"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    printf("python3-grpcio client exit status %lld\n", (long long)exit_status);
    CHECK(n_held >= 1);
    return exit_status == 0 ? 0 : 1;
}
