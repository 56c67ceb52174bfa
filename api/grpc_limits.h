/* kyufu api limits (named grpc_limits.h, not limits.h: api/ is on every
 * module's include path through proto_dep, and a "limits.h" there would
 * shadow the C library's <limits.h>).  Every bound the gRPC transport enforces, in one place,
 * units last in the name, each with the reason for its value.  Relations
 * between them are checked at compile time at the bottom. */
#ifndef KYUFU_API_GRPC_LIMITS_H
#define KYUFU_API_GRPC_LIMITS_H

#include <stdint.h>

/* One gRPC message (request or response payload, without the 5-byte
 * prefix).  4 MiB is gRPC's own default receive limit, so stock clients
 * already live within it; a ledger command is a few KiB. */
#define KYUFU_GRPC_MESSAGE_BYTES_MAX ((uint32_t)4 << 20)

/* Nesting of protobuf messages in a request that the unknown-field check
 * walks (pb_strict.c).  kyufu's schema nests 3 deep; 16 leaves room for
 * growth and bounds the walk's recursion for hostile input. */
#define KYUFU_PB_NESTING_DEPTH_MAX 16u

/* SETTINGS_MAX_CONCURRENT_STREAMS we advertise: calls in flight on one
 * connection.  100 is the RFC 9113 recommended minimum and grpc's default;
 * more in flight only queues behind the Raft log. */
#define KYUFU_GRPC_CONCURRENT_STREAMS_MAX 100u

/* SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce: gRPC requests carry
 * a handful of short headers; 16 KiB is grpc's default and bounds HPACK
 * memory per stream. */
#define KYUFU_GRPC_HEADER_LIST_BYTES_MAX (16u << 10)

/* Largest HEADERS block nghttp2 will send for us (our responses are tiny). */
#define KYUFU_GRPC_SEND_HEADER_BLOCK_BYTES_MAX (16u << 10)

/* HPACK dynamic table for headers we send (SETTINGS_HEADER_TABLE_SIZE
 * default); a bound on encoder memory. */
#define KYUFU_GRPC_DEFLATE_TABLE_BYTES_MAX 4096u

/* Initial per-stream flow-control window we advertise.  A whole maximum-size
 * message fits, so one unary call never stalls on WINDOW_UPDATEs. */
#define KYUFU_GRPC_STREAM_WINDOW_BYTES ((uint32_t)5 << 20)

/* A request message's buffer grows from this size by doubling as its bytes
 * arrive (never allocated from the 5-byte prefix alone, which a peer can
 * send for 100 streams at no cost). */
#define KYUFU_GRPC_RECEIVE_CHUNK_BYTES (16u << 10)

/* Connection-level window: a few large calls at once.  The server credits
 * a stream's bytes back only when it has answered or closed it
 * (server_conn.c credit()), so this is also the most request bytes one
 * connection can make the server hold. */
#define KYUFU_GRPC_CONNECTION_WINDOW_BYTES ((uint32_t)20 << 20)

/* SETTINGS_MAX_FRAME_SIZE stays at the RFC default (16 KiB); not a setting we
 * change.  Outbound control-frame queue bound (PING/SETTINGS ACK flood,
 * CVE-2019-9512/9515 class). */
#define KYUFU_GRPC_OUTBOUND_ACK_MAX 1000u

/* SETTINGS frames accepted in one batch (CVE-2019-9515 class). */
#define KYUFU_GRPC_SETTINGS_ENTRIES_MAX 32u

/* CONTINUATION frames per header block (CVE-2024-27316 class). */
#define KYUFU_GRPC_CONTINUATIONS_MAX 8u

/* Streams a client may reset per second before the connection is dropped
 * (burst, rate): the "rapid reset" attack (CVE-2023-44487). */
#define KYUFU_GRPC_STREAM_RESET_BURST 1000u
#define KYUFU_GRPC_STREAM_RESET_PER_SECOND 33u

/* A request's HEADERS to its END_STREAM, whether or not the caller sent
 * grpc-timeout: a stream that never finishes its request (slowloris) is
 * answered DEADLINE_EXCEEDED and reset after this.  A 4 MiB message takes
 * under 4 s even at 10 Mbit/s; 30 s leaves a slow link room. */
#define KYUFU_GRPC_REQUEST_RECEIVE_MS_MAX 30000u

/* Longest grpc-timeout we honour: the wire allows 8 digits of hours; a ledger
 * call that cannot finish in a day is a bug, and the cap keeps deadline
 * arithmetic far from overflow. */
#define KYUFU_GRPC_TIMEOUT_MS_MAX ((uint64_t)24 * 3600 * 1000)

/* Metadata entries (custom headers) copied into a call for the handler,
 * and, in the client, kept of a response's headers and of its trailers
 * (each); further entries are dropped. */
#define KYUFU_GRPC_METADATA_ENTRIES_MAX 32u

/* grpc-message we send, after percent-encoding; longer texts are cut. */
#define KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX 1024u

/* Custom trailer metadata a handler attaches to one response
 * (kyufu_grpc_call_respond_md).  kyufu sends one entry (kyufu-leader); a few
 * more leave room without letting a response's HEADERS grow. */
#define KYUFU_GRPC_TRAILER_ENTRIES_MAX 8u

/* Their total size, counted as RFC 9113 §6.5.2 does (name + value + 32 per
 * entry).  With grpc-status and grpc-message the trailers stay far below
 * grpc-core's default 8 KiB metadata limit, so a stock client never drops
 * them. */
#define KYUFU_GRPC_TRAILER_BYTES_MAX 2048u

/* The size grpc-core accepts by default for one metadata block
 * (GRPC_ARG_MAX_METADATA_SIZE); our trailers must fit a stock client. */
#define KYUFU_GRPC_PEER_METADATA_BYTES_ASSUMED 8192u

/* Health service names (grpc.health.v1): short service names only. */
#define KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX 128u
#define KYUFU_GRPC_HEALTH_SERVICES_MAX 16u

/* ---- libuv server ---- */

/* Open TLS connections per server: front ends keep a few long-lived HTTP/2
 * connections each; beyond this a new connection is accepted and closed at
 * once (so the listen backlog does not fill with dead peers). */
#define KYUFU_API_CONNECTIONS_MAX_DEFAULT 256u

/* The most an operator may set connections_max to ([api] in kyufud.conf):
 * each connection can hold its 20 MiB flow-control window of request bytes,
 * so 4096 of them bound the worst case near the node's memory budget only
 * together with per-address limits; beyond that, a front-end proxy. */
#define KYUFU_API_CONNECTIONS_LIMIT_MAX 4096u

/* Open connections from one source address (handshakes included): one
 * misbehaving host must not take every slot.  A counter terminal keeps one
 * or two connections, an online back end a few per process; 32 leaves room
 * for a back end behind one NAT address, and operators can raise it. */
#define KYUFU_API_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT 32u

/* Networks in one allow-list (api/allow.c): a city's segments fit in a few;
 * the list is scanned per connection. */
#define KYUFU_ALLOW_NETS_MAX 64u

/* A TLS handshake must finish in this time, or the connection is closed:
 * bounds the cost of slowloris-style peers. */
#define KYUFU_API_HANDSHAKE_TIMEOUT_MS_DEFAULT 10000u

/* A connection with no stream open and no bytes received for this long is
 * closed with GOAWAY; clients reconnect on demand. */
#define KYUFU_API_IDLE_TIMEOUT_MS_DEFAULT 300000u

/* listen(2) backlog. */
#define KYUFU_API_LISTEN_BACKLOG 128

/* Encrypted bytes read from the socket per read callback. */
#define KYUFU_API_READ_BUFFER_BYTES (64u << 10)

/* Bytes queued for the socket on one connection beyond which the server
 * stops reading from that connection until the queue drains: backpressure
 * against a client that never reads its responses. */
#define KYUFU_API_WRITE_QUEUE_BYTES_MAX ((uint32_t)32 << 20)

/* HTTP/2 frames gathered into one TLS write (one record up to 16 KiB, the
 * TLS maximum): a unary answer is three frames (HEADERS, DATA, trailers),
 * and one record each cost a record header, a GCM tag and an SSL_write per
 * frame (docs/benchmarks.md, "What limits the plateau"). */
#define KYUFU_API_TLS_COALESCE_BYTES (16u << 10)

/* ---- client ---- */

/* Connecting plus TLS handshake: beyond this all pending calls fail with
 * UNAVAILABLE. */
#define KYUFU_GRPC_CLIENT_CONNECT_TIMEOUT_MS_DEFAULT 5000u

/* While calls are in flight and nothing has arrived from the server for this
 * long, the client sends an HTTP/2 PING: a silently partitioned server
 * (no RST, no FIN) is otherwise only noticed by call deadlines. */
#define KYUFU_GRPC_CLIENT_KEEPALIVE_MS 10000u

/* ... and if still nothing has arrived after twice as long, the connection
 * is declared dead and its calls fail with UNAVAILABLE (retryable). */

/* ---- relations ---- */
_Static_assert(KYUFU_GRPC_CLIENT_KEEPALIVE_MS * 2 < KYUFU_GRPC_TIMEOUT_MS_MAX,
               "keepalive arithmetic stays in range");
_Static_assert(KYUFU_GRPC_STREAM_WINDOW_BYTES >= KYUFU_GRPC_MESSAGE_BYTES_MAX + 5,
               "a maximum message must fit in one stream window");
_Static_assert(KYUFU_GRPC_CONNECTION_WINDOW_BYTES >= KYUFU_GRPC_STREAM_WINDOW_BYTES,
               "connection window must hold a stream window");
_Static_assert(KYUFU_GRPC_STREAM_WINDOW_BYTES <= 0x7fffffffu,
               "HTTP/2 window is 31 bits");
_Static_assert(KYUFU_API_WRITE_QUEUE_BYTES_MAX > KYUFU_GRPC_MESSAGE_BYTES_MAX,
               "one response must fit in the write queue");
_Static_assert(KYUFU_GRPC_TRAILER_BYTES_MAX + KYUFU_GRPC_STATUS_MESSAGE_BYTES_MAX + 256u <=
                   KYUFU_GRPC_PEER_METADATA_BYTES_ASSUMED,
               "trailers, grpc-status and grpc-message fit a stock client's limit");
_Static_assert(KYUFU_GRPC_PEER_METADATA_BYTES_ASSUMED <= KYUFU_GRPC_SEND_HEADER_BLOCK_BYTES_MAX,
               "nghttp2 must be allowed to send what the peer accepts");
_Static_assert(KYUFU_GRPC_TRAILER_ENTRIES_MAX <= KYUFU_GRPC_METADATA_ENTRIES_MAX,
               "our own client keeps every trailer we may send");
_Static_assert(KYUFU_GRPC_TIMEOUT_MS_MAX < (UINT64_MAX >> 2),
               "deadline arithmetic must not overflow");

_Static_assert(KYUFU_API_CONNECTIONS_PER_ADDRESS_MAX_DEFAULT <=
                   KYUFU_API_CONNECTIONS_MAX_DEFAULT,
               "one address may not need more than every slot");

#endif /* KYUFU_API_GRPC_LIMITS_H */
