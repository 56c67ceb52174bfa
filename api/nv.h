/* api internals: one request header for nghttp2 (api/client.c), kept apart
 * so the flag it sets is testable without a connection.  Only api/ and its
 * tests include this (it includes nghttp2). */
#ifndef KYUFU_API_NV_H
#define KYUFU_API_NV_H

#include <nghttp2/nghttp2.h>

/* name: value, borrowed (they must outlive the nghttp2_submit_request that
 * copies them).  A credential (api__metadata_name_secret) gets
 * NGHTTP2_NV_FLAG_NO_INDEX, HPACK's never-indexed literal, which an
 * intermediary must keep never-indexed too (RFC 7541 §6.2.3); every other
 * header NGHTTP2_NV_FLAG_NONE. */
nghttp2_nv api__client_nv(const char *name, const char *value);

#endif /* KYUFU_API_NV_H */
