/* libkyufu: stand-in for the gRPC transport while api/ has no client side
 * yet (see client/meson.build).  Every client creation fails clearly. */
#include "transport.h"

int client__transport_grpc_create(void *arg,
                                  uv_loop_t *loop,
                                  const struct kyufu_client_config *cfg,
                                  struct client__transport **out,
                                  char *errmsg,
                                  size_t errmsg_len)
{
    (void)arg;
    (void)loop;
    (void)cfg;
    (void)out;
    return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EUNAVAILABLE,
                        "this build has no gRPC client transport (api/)");
}
