/* api internals shared between the files of api/ (and its tests).  Not part
 * of the public contract: names are api__x. */
#ifndef KYUFU_API_INTERNAL_H
#define KYUFU_API_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc.h"

#define API__CONTENT_TYPE "application/grpc"
#define API__HEALTH_CHECK "/grpc.health.v1.Health/Check"
#define API__HEALTH_WATCH "/grpc.health.v1.Health/Watch"

size_t api__percent_encode(const char *in, char *out, size_t out_len);
size_t api__percent_decode(const char *in, size_t in_len, char *out, size_t out_len);
void api__prefix_encode(uint8_t prefix[5], bool compressed, uint32_t len);
uint32_t api__prefix_length(const uint8_t prefix[5]);
int api__http_to_grpc_status(int http_status);

/* True for names custom metadata may not use: pseudo-headers, HTTP/2
 * connection fields, gRPC's own fields and the "grpc-" prefix.  The client
 * leaves these out of what it hands to callbacks. */
bool api__metadata_name_reserved(const char *name, size_t len);

/* True for the metadata names that carry a credential ("authorization",
 * "kyufu-session"): the client sends them HPACK never-indexed
 * (api__client_nv, NGHTTP2_NV_FLAG_NO_INDEX), never in a dynamic table. */
bool api__metadata_name_secret(const char *name);

/* health.c: answer a health call (Check or Watch) from the table. */
void api__health_serve(struct kyufu_grpc_health *health, struct kyufu_grpc_call *call);

#endif /* KYUFU_API_INTERNAL_H */
