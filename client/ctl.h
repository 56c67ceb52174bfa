/* kyufuctl internals shared by its source files and by tests/client: exit
 * codes, cluster init (certificates and config files), and output helpers.
 * Not part of libkyufu's public interface (that is kyufu.h). */
#ifndef KYUFU_CTL_H
#define KYUFU_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <getopt.h>
#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "client_limits.h"

/* kyufuctl's exit statuses (docs/kyufuctl.md "Exit codes"). */
#define KYUFU_CTL_EXITS(X)                                                   \
    X(OK, 0, "success")                                                      \
    X(REJECTED, 1, "the server answered with a non-OK gRPC status")          \
    X(USAGE, 2, "bad command line or configuration")                         \
    X(UNAVAILABLE, 3, "no node answered in time")                            \
    X(LOCAL, 4, "local failure: files, TLS, crypto, malformed response")     \
    X(CHECK, 5, "a check found a problem (audit chain, cluster health)")

enum kyufu_ctl_exit {
#define KYUFU_CTL__ENUM(name, value, text) KYUFU_CTL_EXIT_##name = value,
    KYUFU_CTL_EXITS(KYUFU_CTL__ENUM)
#undef KYUFU_CTL__ENUM
};

/* ------------------------------------------------------------ init */

struct kyufu_ctl_init_opts
{
    const char *dir;                 /* created if missing */
    unsigned nodes;                  /* 1..KYUFU_CTL_INIT_NODES_MAX */
    const char *hosts[KYUFU_CTL_INIT_NODES_MAX]; /* 1 (shared) or `nodes` */
    unsigned n_hosts;                /* 0: 127.0.0.1 */
    uint16_t raft_port_base;         /* node i (1-based) gets base + i - 1 */
    uint16_t api_port_base;
    bool force;                      /* overwrite config and certificates */
};

/* Create the CA, node and client certificates and keys, every node's
 * kyufud.conf and kyufuctl.conf under opts->dir (layout in
 * docs/kyufuctl.md).  Returns a KYUFU_CTL_EXIT_* value with errmsg filled
 * on failure: USAGE for bad options or a folder that is not empty (without
 * force) or holds node data (always), LOCAL for I/O and crypto failures.
 * `log` (may be NULL) gets one line per file written. */
int kyufu_ctl_init(const struct kyufu_ctl_init_opts *opts,
                   FILE *log,
                   char *errmsg,
                   size_t errmsg_len);

/* ------------------------------------------------------------ output */

/* A protobuf message as a JSON object (proto field names; enums as their
 * value names; 64-bit integers as JSON integers (a uint64 above INT64_MAX
 * as a string); bytes as lower-case hex; unset sub-messages omitted).
 * Returns a new reference, or NULL on out of memory. */
json_t *kyufu_ctl_to_json(const ProtobufCMessage *msg);

/* Print a record as "field: value" lines (nested messages indented). */
void kyufu_ctl_print_record(FILE *out, const ProtobufCMessage *msg, int indent);

/* Print records as a table with the given columns (field names of the
 * records' type; NULL-terminated). */
void kyufu_ctl_print_table(FILE *out,
                           const ProtobufCMessage *const *records,
                           size_t n,
                           const char *const *columns);

/* One field of a message as text into buf ("" when unset); enums by their
 * short name, roles as a list, bytes as hex.  Returns buf. */
const char *kyufu_ctl_field_text(const ProtobufCMessage *msg,
                                 const ProtobufCFieldDescriptor *f,
                                 char *buf,
                                 size_t len);

/* kyufuctl's main, callable from tests (argv as for main).  Output goes to
 * out/err. */
int kyufu_ctl_main(int argc, char **argv, FILE *out, FILE *err);

/* ------------------------------------------------------------ internal */

struct kyufu_client;

/* State of one kyufuctl run, shared by its source files. */
struct ctl__run
{
    FILE *out;
    FILE *err;
    bool json;
    bool stale;
    const char *config_path;
    const char *actor;        /* --as, else the config's (actor_buf) */
    char actor_buf[KYUFU_CLIENT_ACTOR_BYTES_MAX + 1];
    uint32_t deadline_ms;     /* --deadline-ms, 0: the config's */
    /* --idempotency-key CLIENT_ID:SEQUENCE for a write (a script repeating
     * a write whose outcome is unknown); key_seq 0: none given. */
    char key_id[KYUFU_CLIENT_ID_BYTES_MAX + 1];
    uint64_t key_seq;
    struct kyufu_client *client; /* opened on demand by ctl__client */
};

/* Print "kyufuctl: ..." to err (and a JSON error document to out with
 * --json); returns code. */
int ctl__fail(struct ctl__run *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Print a JSON document (taking the reference) on out, indented, with a
 * newline; a NULL doc (out of memory building it) is reported as a local
 * failure.  Returns 0 or that exit code. */
int ctl__emit_json(struct ctl__run *r, json_t *doc);

/* Open the client from the config on first use; returns an exit code. */
int ctl__client(struct ctl__run *r, struct kyufu_client **out);
/* A new client from the same config on `loop` (asynchronous use; the
 * caller closes it), or a synchronous one kept in r (loop NULL). */
#include <uv.h>
int ctl__client_on(struct ctl__run *r, uv_loop_t *loop, struct kyufu_client **out);

/* Map a finished call (kyufu_client_call's return and result) to an exit
 * code, printing the error; 0 when the call succeeded with OK. */
struct kyufu_client_result;
int ctl__call_exit(struct ctl__run *r, int rv,
                   const struct kyufu_client_result *res);

/* Ledger commands (ctl_ledger.c): returns an exit code, or -1 when
 * noun/verb name no ledger command. */
int ctl__ledger(struct ctl__run *r, const char *noun, const char *verb,
                int argc, char **argv);
/* Usage lines of every ledger command. */
void ctl__ledger_usage(FILE *out);

/* Cluster commands (ctl_cluster.c), same convention. */
int ctl__cluster(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__cluster_usage(FILE *out);

/* Node commands (ctl_node.c), same convention: about one node, sent to it
 * alone. */
int ctl__node(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__node_usage(FILE *out);

/* Drills (ctl_drill.c), same convention. */
int ctl__drill(struct ctl__run *r, const char *verb, int argc, char **argv);
void ctl__drill_usage(FILE *out);

/* Common options every command accepts (after the command too). */
#define CTL__COMMON_OPTS_N 6
extern const struct option ctl__common_opts[CTL__COMMON_OPTS_N];
/* Apply a common option (getopt_long's return value >= 0x100); returns 0,
 * or an exit code. */
int ctl__common_opt(struct ctl__run *r, int opt, const char *arg);

#endif
